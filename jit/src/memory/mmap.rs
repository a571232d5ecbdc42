//! Linux and other Unix: an anonymous `memmap2` mapping, `mprotect`ed from read-write
//! to read-execute.

use memmap2::{Mmap, MmapMut};

pub struct WritablePages(MmapMut);
pub struct ExecutablePages(Mmap);

impl WritablePages {
    /// Pre-faulted (`MAP_POPULATE` on Linux): the compiler writes every page, and one
    /// call that maps them all costs less than a page fault per page.
    pub fn new(len: usize) -> std::io::Result<WritablePages> {
        Ok(WritablePages(
            memmap2::MmapOptions::new().len(len).populate().map_anon()?,
        ))
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }

    pub fn make_executable(self) -> std::io::Result<ExecutablePages> {
        let map = self.0.make_exec()?;
        flush_instruction_cache(map.as_ptr(), map.len());
        Ok(ExecutablePages(map))
    }
}

impl ExecutablePages {
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

/// x86-64 keeps instruction fetch coherent with stores, so there is nothing to do.
#[cfg(not(target_arch = "aarch64"))]
pub(crate) fn flush_instruction_cache(_start: *const u8, _len: usize) {}

/// aarch64: clean the data cache and invalidate the instruction cache by line.
#[cfg(target_arch = "aarch64")]
pub(crate) fn flush_instruction_cache(start: *const u8, len: usize) {
    extern "C" {
        fn __clear_cache(start: *mut core::ffi::c_void, end: *mut core::ffi::c_void);
    }
    unsafe { __clear_cache(start as *mut _, start.add(len) as *mut _) };
}
