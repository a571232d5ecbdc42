//! Executable memory: written while read-write, then read-execute, never both.

use memmap2::{Mmap, MmapMut};

/// A region being filled: read-write, not executable.
pub struct WritableRegion {
    map: MmapMut,
}

/// A finished region: read-execute, not writable. Unmapped when dropped.
pub struct ExecutableRegion {
    map: Mmap,
}

impl WritableRegion {
    pub fn new(len: usize) -> std::io::Result<WritableRegion> {
        Ok(WritableRegion {
            map: MmapMut::map_anon(len.max(1))?,
        })
    }

    /// The address the first byte has, and will keep once executable.
    pub fn address(&self) -> u64 {
        self.map.as_ptr() as u64
    }

    pub fn bytes(&mut self) -> &mut [u8] {
        &mut self.map
    }

    /// Drops write permission and grants execute permission (`mprotect`), then makes
    /// the instruction cache see the new code.
    pub fn make_executable(self) -> std::io::Result<ExecutableRegion> {
        let map = self.map.make_exec()?;
        flush_instruction_cache(map.as_ptr(), map.len());
        Ok(ExecutableRegion { map })
    }
}

impl ExecutableRegion {
    pub fn address(&self) -> u64 {
        self.map.as_ptr() as u64
    }

    pub fn bytes(&self) -> &[u8] {
        &self.map
    }
}

/// x86-64 keeps instruction fetch coherent with stores, so there is nothing to do.
#[cfg(target_arch = "x86_64")]
fn flush_instruction_cache(_start: *const u8, _len: usize) {}

/// aarch64: clean the data cache and invalidate the instruction cache by line.
#[cfg(target_arch = "aarch64")]
fn flush_instruction_cache(start: *const u8, len: usize) {
    extern "C" {
        fn __clear_cache(start: *mut core::ffi::c_void, end: *mut core::ffi::c_void);
    }
    unsafe { __clear_cache(start as *mut _, start.add(len) as *mut _) };
}
