//! Windows: `VirtualAlloc` read-write, `VirtualProtect` to execute-read, then
//! `FlushInstructionCache` (required by the documentation for code written at run time;
//! cheap on x86-64).

use std::ffi::c_void;
use std::io;

use windows_sys::Win32::System::Diagnostics::Debug::FlushInstructionCache;
use windows_sys::Win32::System::Memory::{
    VirtualAlloc, VirtualFree, VirtualProtect, MEM_COMMIT, MEM_RELEASE, MEM_RESERVE,
    PAGE_EXECUTE_READ, PAGE_READWRITE,
};
use windows_sys::Win32::System::Threading::GetCurrentProcess;

struct Pages {
    ptr: *mut u8,
    len: usize,
}

impl Drop for Pages {
    fn drop(&mut self) {
        // SAFETY: `ptr` is an allocation of `VirtualAlloc` this value owns.
        unsafe { VirtualFree(self.ptr as *mut c_void, 0, MEM_RELEASE) };
    }
}

// SAFETY: `Pages` owns its mapping exclusively; `&self` only reads it.
unsafe impl Send for Pages {}
unsafe impl Sync for Pages {}

pub struct WritablePages(Pages);
pub struct ExecutablePages(Pages);

impl WritablePages {
    pub fn new(len: usize) -> io::Result<WritablePages> {
        // SAFETY: fresh committed pages anywhere in the address space.
        let ptr = unsafe {
            VirtualAlloc(
                std::ptr::null(),
                len,
                MEM_COMMIT | MEM_RESERVE,
                PAGE_READWRITE,
            )
        };
        if ptr.is_null() {
            return Err(io::Error::last_os_error());
        }
        Ok(WritablePages(Pages {
            ptr: ptr as *mut u8,
            len,
        }))
    }

    pub fn bytes(&self) -> &[u8] {
        // SAFETY: the pages are readable and `len` bytes long.
        unsafe { std::slice::from_raw_parts(self.0.ptr, self.0.len) }
    }

    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: the pages are writable and `len` bytes long.
        unsafe { std::slice::from_raw_parts_mut(self.0.ptr, self.0.len) }
    }

    pub fn make_executable(self) -> io::Result<ExecutablePages> {
        let pages = self.0;
        let mut old = 0;
        // SAFETY: the pages are ours; only their protection changes.
        let ok = unsafe {
            VirtualProtect(
                pages.ptr as *const c_void,
                pages.len,
                PAGE_EXECUTE_READ,
                &mut old,
            )
        };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the range is this process's memory.
        unsafe {
            FlushInstructionCache(GetCurrentProcess(), pages.ptr as *const c_void, pages.len)
        };
        Ok(ExecutablePages(pages))
    }
}

impl ExecutablePages {
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: the pages are readable and `len` bytes long.
        unsafe { std::slice::from_raw_parts(self.0.ptr, self.0.len) }
    }
}
