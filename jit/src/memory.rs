//! Executable memory: written while read-write, then read-execute, never both.
//!
//! The platform part is in `memory/`: `mmap.rs` (Linux and other Unix: `memmap2`, then
//! `mprotect`), `macos.rs` (`MAP_JIT`, `pthread_jit_write_protect_np`,
//! `sys_icache_invalidate`), `windows.rs` (`VirtualAlloc`, `VirtualProtect`,
//! `FlushInstructionCache`). Tier-up units take pages of a pool instead where the
//! platform allows it (`memory/pool.rs`).

#[cfg_attr(target_os = "macos", path = "memory/macos.rs")]
#[cfg_attr(windows, path = "memory/windows.rs")]
#[cfg_attr(not(any(target_os = "macos", windows)), path = "memory/mmap.rs")]
mod sys;

/// Executable memory sub-allocated page by page for tier-up (`memory/pool.rs`), where
/// `mprotect` on a unit's own pages can make them executable alone.
#[cfg(all(unix, not(target_os = "macos")))]
pub mod pool;

/// A region being filled: read-write, not executable.
pub struct WritableRegion {
    pages: Writable,
}

/// A finished region: read-execute, not writable. Unmapped (or given back to its pool)
/// when dropped.
pub struct ExecutableRegion {
    pages: Executable,
}

enum Writable {
    Own(sys::WritablePages),
    #[cfg(all(unix, not(target_os = "macos")))]
    Pooled(pool::Slice),
}

enum Executable {
    Own(sys::ExecutablePages),
    #[cfg(all(unix, not(target_os = "macos")))]
    Pooled(pool::Slice),
}

impl WritableRegion {
    /// A mapping of its own.
    pub fn new(len: usize) -> std::io::Result<WritableRegion> {
        Ok(WritableRegion {
            pages: Writable::Own(sys::WritablePages::new(len.max(1))?),
        })
    }

    /// Pages of a pool.
    #[cfg(all(unix, not(target_os = "macos")))]
    pub fn pooled(slice: pool::Slice) -> WritableRegion {
        WritableRegion {
            pages: Writable::Pooled(slice),
        }
    }

    /// The address the first byte has, and will keep once executable.
    pub fn address(&self) -> u64 {
        self.bytes_ref().as_ptr() as u64
    }

    fn bytes_ref(&self) -> &[u8] {
        match &self.pages {
            Writable::Own(pages) => pages.bytes(),
            #[cfg(all(unix, not(target_os = "macos")))]
            Writable::Pooled(slice) => slice.bytes(),
        }
    }

    pub fn bytes(&mut self) -> &mut [u8] {
        match &mut self.pages {
            Writable::Own(pages) => pages.bytes_mut(),
            #[cfg(all(unix, not(target_os = "macos")))]
            Writable::Pooled(slice) => slice.bytes_mut(),
        }
    }

    /// Drops write permission and grants execute permission, then makes the
    /// instruction cache see the new code.
    pub fn make_executable(self) -> std::io::Result<ExecutableRegion> {
        Ok(ExecutableRegion {
            pages: match self.pages {
                Writable::Own(pages) => Executable::Own(pages.make_executable()?),
                #[cfg(all(unix, not(target_os = "macos")))]
                Writable::Pooled(slice) => Executable::Pooled(slice.make_executable()?),
            },
        })
    }
}

impl ExecutableRegion {
    pub fn address(&self) -> u64 {
        self.bytes().as_ptr() as u64
    }

    pub fn bytes(&self) -> &[u8] {
        match &self.pages {
            Executable::Own(pages) => pages.bytes(),
            #[cfg(all(unix, not(target_os = "macos")))]
            Executable::Pooled(slice) => slice.bytes(),
        }
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
