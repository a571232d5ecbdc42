//! Executable memory: written while read-write, then read-execute, never both.
//!
//! The platform part is in `memory/`: `mmap.rs` (Linux and other Unix: `memmap2`, then
//! `mprotect`), `macos.rs` (`MAP_JIT`, `pthread_jit_write_protect_np`,
//! `sys_icache_invalidate`), `windows.rs` (`VirtualAlloc`, `VirtualProtect`,
//! `FlushInstructionCache`).

#[cfg_attr(target_os = "macos", path = "memory/macos.rs")]
#[cfg_attr(windows, path = "memory/windows.rs")]
#[cfg_attr(not(any(target_os = "macos", windows)), path = "memory/mmap.rs")]
mod sys;

/// A region being filled: read-write, not executable.
pub struct WritableRegion {
    pages: sys::WritablePages,
}

/// A finished region: read-execute, not writable. Unmapped when dropped.
pub struct ExecutableRegion {
    pages: sys::ExecutablePages,
}

impl WritableRegion {
    pub fn new(len: usize) -> std::io::Result<WritableRegion> {
        Ok(WritableRegion {
            pages: sys::WritablePages::new(len.max(1))?,
        })
    }

    /// The address the first byte has, and will keep once executable.
    pub fn address(&self) -> u64 {
        self.pages.bytes().as_ptr() as u64
    }

    pub fn bytes(&mut self) -> &mut [u8] {
        self.pages.bytes_mut()
    }

    /// Drops write permission and grants execute permission, then makes the
    /// instruction cache see the new code.
    pub fn make_executable(self) -> std::io::Result<ExecutableRegion> {
        Ok(ExecutableRegion {
            pages: self.pages.make_executable()?,
        })
    }
}

impl ExecutableRegion {
    pub fn address(&self) -> u64 {
        self.pages.bytes().as_ptr() as u64
    }

    pub fn bytes(&self) -> &[u8] {
        self.pages.bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_bytes_survive_and_the_address_stays() {
        let mut region = WritableRegion::new(100).unwrap();
        let address = region.address();
        region.bytes()[..3].copy_from_slice(&[1, 2, 3]);
        let region = region.make_executable().unwrap();
        assert_eq!(region.address(), address);
        assert_eq!(&region.bytes()[..3], &[1, 2, 3]);
        assert!(region.bytes().len() >= 100);
    }
}
