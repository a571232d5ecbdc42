//! The native stack compiled code runs on. Compiled calls nest natively, so a run needs
//! stack for the depth limit: the runtime asks for enough that the depth check of the
//! call stencil always trips first (`runtime.rs`, `NATIVE_BYTES_PER_CALL`).
//!
//! [`with_stack`] runs a closure on the current thread when its stack has room, else on
//! a new thread with a stack of the size asked for. The current thread's stack bounds
//! come from the platform (`pthread_getattr_np` on Linux, `pthread_get_stack*_np` on
//! macOS, `GetCurrentThreadStackLimits` on Windows); on platforms without a way to ask,
//! every run gets a thread of its own. (A stack-switching crate would avoid the thread,
//! but the ones available build C or assembly for the target, which cross-checking the
//! crate for macOS and Windows from Linux cannot do.)

/// The lowest usable address of the current thread's stack, if the platform says.
#[cfg(target_os = "linux")]
fn current_floor() -> Option<usize> {
    // SAFETY: the attribute object is initialised by `pthread_getattr_np` and destroyed
    // after use; the out-parameters are plain values.
    unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) != 0 {
            return None;
        }
        let mut addr = std::ptr::null_mut();
        let mut size = 0;
        let r = libc::pthread_attr_getstack(&attr, &mut addr, &mut size);
        libc::pthread_attr_destroy(&mut attr);
        (r == 0).then_some(addr as usize)
    }
}

#[cfg(target_os = "macos")]
fn current_floor() -> Option<usize> {
    // SAFETY: queries of the calling thread.
    unsafe {
        let this = libc::pthread_self();
        let top = libc::pthread_get_stackaddr_np(this) as usize;
        Some(top - libc::pthread_get_stacksize_np(this))
    }
}

#[cfg(windows)]
fn current_floor() -> Option<usize> {
    let (mut low, mut high) = (0usize, 0usize);
    // SAFETY: writes the calling thread's stack limits.
    unsafe {
        windows_sys::Win32::System::Threading::GetCurrentThreadStackLimits(&mut low, &mut high)
    };
    (low != 0).then_some(low)
}

#[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
fn current_floor() -> Option<usize> {
    None
}

#[inline(never)]
fn stack_pointer() -> usize {
    let here = 0u8;
    std::hint::black_box(&here) as *const u8 as usize
}

thread_local! {
    /// The current thread's floor, asked once per thread: asking costs a read of
    /// `/proc/self/maps` on Linux (glibc's `pthread_getattr_np` for the main thread),
    /// tens of microseconds, and a thread's stack does not move.
    static FLOOR: std::cell::Cell<Option<Option<usize>>> = const { std::cell::Cell::new(None) };
}

/// [`current_floor`], asked once per thread.
fn cached_floor() -> Option<usize> {
    FLOOR.with(|cached| {
        cached.get().unwrap_or_else(|| {
            let floor = current_floor();
            cached.set(Some(floor));
            floor
        })
    })
}

/// Whether the current thread has at least `needed` bytes of native stack below the
/// current frame (false where the platform does not say).
pub fn has_room(needed: usize) -> bool {
    cached_floor().is_some_and(|floor| stack_pointer().saturating_sub(floor) >= needed)
}

/// Runs `f` with at least `needed` bytes of native stack below the current frame.
/// Fails only when a thread with a stack that large cannot be made.
pub fn with_stack<R: Send>(needed: usize, f: impl FnOnce() -> R + Send) -> std::io::Result<R> {
    if has_room(needed) {
        return Ok(f());
    }
    // A thread whose stack is `needed` plus room for the thread's own start-up frames
    // and thread-local storage.
    const SLACK: usize = 256 * 1024;
    std::thread::scope(|scope| {
        let worker = std::thread::Builder::new()
            .name("jit".into())
            .stack_size(needed.saturating_add(SLACK))
            .spawn_scoped(scope, f)?;
        match worker.join() {
            Ok(r) => Ok(r),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_closure_runs_with_the_room_asked_for() {
        for needed in [64 * 1024, 64 << 20] {
            let (sp, floor) = with_stack(needed, || (stack_pointer(), current_floor())).unwrap();
            let floor = floor.expect("Linux reports a thread's stack");
            assert!(floor < sp);
            assert!(sp - floor >= needed, "{needed}: {}", sp - floor);
        }
    }
}
