//! macOS: `MAP_JIT` mappings, which a hardened-runtime app (with the
//! `com.apple.security.cs.allow-jit` entitlement) may make executable.
//!
//! On Apple silicon a `MAP_JIT` mapping is mapped read-write-execute, and each thread
//! sees it either writable or executable, switched by `pthread_jit_write_protect_np`:
//! the hardware keeps it from being both for any thread. On Intel that switch does
//! nothing, so there the mapping starts read-write and is `mprotect`ed to
//! read-execute, as on Linux. New code needs `sys_icache_invalidate` on arm64 (a no-op
//! on Intel).

use std::ffi::c_void;
use std::io;

extern "C" {
    /// libSystem's instruction-cache invalidation (`<libkern/OSCacheControl.h>`).
    fn sys_icache_invalidate(start: *mut c_void, len: usize);
}

struct Pages {
    ptr: *mut u8,
    len: usize,
}

impl Drop for Pages {
    fn drop(&mut self) {
        // SAFETY: `ptr..ptr + len` is a mapping this value owns.
        unsafe { libc::munmap(self.ptr as *mut c_void, self.len) };
    }
}

// SAFETY: `Pages` owns its mapping exclusively; `&self` only reads it.
unsafe impl Send for Pages {}
unsafe impl Sync for Pages {}

pub struct WritablePages(Pages);
pub struct ExecutablePages(Pages);

#[cfg(target_arch = "aarch64")]
const INITIAL_PROTECTION: libc::c_int = libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC;
#[cfg(not(target_arch = "aarch64"))]
const INITIAL_PROTECTION: libc::c_int = libc::PROT_READ | libc::PROT_WRITE;

impl WritablePages {
    pub fn new(len: usize) -> io::Result<WritablePages> {
        // SAFETY: an anonymous private mapping of fresh pages.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                INITIAL_PROTECTION,
                libc::MAP_PRIVATE | libc::MAP_ANON | libc::MAP_JIT,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        // This thread sees MAP_JIT pages writable (not executable) until
        // `make_executable`.
        #[cfg(target_arch = "aarch64")]
        unsafe {
            libc::pthread_jit_write_protect_np(0)
        };
        Ok(WritablePages(Pages {
            ptr: ptr as *mut u8,
            len,
        }))
    }

    pub fn bytes(&self) -> &[u8] {
        // SAFETY: the mapping is readable and `len` bytes long.
        unsafe { std::slice::from_raw_parts(self.0.ptr, self.0.len) }
    }

    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: the mapping is writable for this thread and `len` bytes long.
        unsafe { std::slice::from_raw_parts_mut(self.0.ptr, self.0.len) }
    }

    pub fn make_executable(self) -> io::Result<ExecutablePages> {
        let pages = self.0;
        #[cfg(target_arch = "aarch64")]
        unsafe {
            libc::pthread_jit_write_protect_np(1)
        };
        #[cfg(not(target_arch = "aarch64"))]
        {
            // SAFETY: the mapping is ours; only its protection changes.
            let r = unsafe {
                libc::mprotect(
                    pages.ptr as *mut c_void,
                    pages.len,
                    libc::PROT_READ | libc::PROT_EXEC,
                )
            };
            if r != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        // SAFETY: the range is mapped.
        unsafe { sys_icache_invalidate(pages.ptr as *mut c_void, pages.len) };
        Ok(ExecutablePages(pages))
    }
}

impl ExecutablePages {
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: the mapping is readable and `len` bytes long.
        unsafe { std::slice::from_raw_parts(self.0.ptr, self.0.len) }
    }
}
