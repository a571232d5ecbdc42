//! A pool of executable memory for code compiled piece by piece (tier-up units): one
//! reservation of address space, mapped once with no access, handed out page by page.
//! Each allocation is made read-write, written, then read-execute with `mprotect` on
//! its own pages only, so a unit being written shares no page with code another thread
//! may be running, and no page is ever writable and executable at once. A freed
//! allocation's pages lose all access and their memory (`MADV_DONTNEED`) and return to
//! the pool. Everything lies in one reservation of at most [`REACH`] bytes, so code in
//! one allocation reaches any other with a direct call (x86-64 `call rel32`, aarch64
//! `bl`, ±128 MiB).
//!
//! Linux and other Unix but macOS (whose `MAP_JIT` pages toggle per thread; there, and
//! on Windows, each unit gets a mapping of its own: `memory/macos.rs`, `windows.rs`).

use std::io;
use std::ops::Range;
use std::sync::{Arc, Mutex};

/// The largest reservation: the reach of aarch64's `bl` (x86-64's `rel32` reaches
/// further), so that any two allocations can call each other directly.
pub const REACH: usize = 128 << 20;

/// A reservation and its free page runs.
struct Reservation {
    base: usize,
    len: usize,
    page: usize,
    /// Free runs as offsets, sorted and coalesced.
    free: Vec<Range<usize>>,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        // SAFETY: the reservation this value mapped; every allocation holds the pool
        // alive, so none is left when it drops.
        unsafe { libc::munmap(self.base as *mut libc::c_void, self.len) };
    }
}

/// A pool shared by the allocations it gave out (cheap to clone).
#[derive(Clone)]
pub struct Pool {
    inner: Arc<Mutex<Reservation>>,
}

fn page_size() -> usize {
    // SAFETY: a query without side effects.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(page)
        .ok()
        .filter(|&p| p > 0)
        .unwrap_or(4096)
}

fn check(result: libc::c_int) -> io::Result<()> {
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

impl Pool {
    /// Reserves `len` bytes (at most [`REACH`], rounded up to pages) of address space,
    /// without memory behind them until allocations are written.
    pub fn new(len: usize) -> io::Result<Pool> {
        let page = page_size();
        let len = len.clamp(page, REACH).div_ceil(page) * page;
        // SAFETY: a fresh anonymous mapping anywhere, with no access.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Pool {
            inner: Arc::new(Mutex::new(Reservation {
                base: base as usize,
                len,
                page,
                free: std::iter::once(0..len).collect(),
            })),
        })
    }

    /// The pool's granule: allocations are whole pages.
    pub fn page(&self) -> usize {
        self.lock().page
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Reservation> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `len` bytes rounded up to whole pages, read-write; `None` when no run of free
    /// pages is that long.
    pub fn allocate(&self, len: usize) -> io::Result<Option<Slice>> {
        let mut r = self.lock();
        let len = len.max(1).div_ceil(r.page) * r.page;
        let Some(k) = r.free.iter().position(|run| run.len() >= len) else {
            return Ok(None);
        };
        let start = r.free[k].start;
        let ptr = r.base + start;
        // SAFETY: pages of the reservation that no allocation holds.
        check(unsafe {
            libc::mprotect(
                ptr as *mut libc::c_void,
                len,
                libc::PROT_READ | libc::PROT_WRITE,
            )
        })?;
        r.free[k].start += len;
        if r.free[k].is_empty() {
            r.free.remove(k);
        }
        Ok(Some(Slice {
            pool: self.clone(),
            ptr,
            len,
        }))
    }

    fn release(&self, ptr: usize, len: usize) {
        let mut r = self.lock();
        // SAFETY: the pages of an allocation being dropped: nothing runs in them (their
        // owner, a unit of a module, goes with the module). Failures leave the pages
        // as they were, still out of the pool's free list, never executable and
        // writable.
        let given_back = unsafe {
            libc::mprotect(ptr as *mut libc::c_void, len, libc::PROT_NONE) == 0
                && libc::madvise(ptr as *mut libc::c_void, len, libc::MADV_DONTNEED) == 0
        };
        if !given_back {
            return;
        }
        let start = ptr - r.base;
        let at = r.free.partition_point(|run| run.start < start);
        r.free.insert(at, start..start + len);
        // Coalesce with the neighbours.
        if at + 1 < r.free.len() && r.free[at].end == r.free[at + 1].start {
            r.free[at].end = r.free.remove(at + 1).end;
        }
        if at > 0 && r.free[at - 1].end == r.free[at].start {
            r.free[at - 1].end = r.free.remove(at).end;
        }
    }

    /// Bytes in free runs (tests).
    #[cfg(test)]
    fn free_bytes(&self) -> usize {
        self.lock().free.iter().map(|r| r.len()).sum()
    }
}

/// Pages of a pool: read-write until [`Slice::make_executable`], then read-execute.
/// Given back to the pool when dropped.
pub struct Slice {
    pool: Pool,
    ptr: usize,
    len: usize,
}

impl Slice {
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: readable pages this slice owns.
        unsafe { std::slice::from_raw_parts(self.ptr as *const u8, self.len) }
    }

    /// Only while read-write (a [`super::WritableRegion`]).
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: read-write pages this slice owns exclusively.
        unsafe { std::slice::from_raw_parts_mut(self.ptr as *mut u8, self.len) }
    }

    /// Drops write permission and grants execute permission on these pages only, then
    /// makes the instruction cache see the new code.
    pub fn make_executable(self) -> io::Result<Slice> {
        // SAFETY: this slice's own pages.
        check(unsafe {
            libc::mprotect(
                self.ptr as *mut libc::c_void,
                self.len,
                libc::PROT_READ | libc::PROT_EXEC,
            )
        })?;
        super::sys::flush_instruction_cache(self.ptr as *const u8, self.len);
        Ok(self)
    }
}

impl Drop for Slice {
    fn drop(&mut self) {
        self.pool.release(self.ptr, self.len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocations_are_whole_pages_and_come_back_coalesced() {
        let pool = Pool::new(16 * page_size()).unwrap();
        let page = pool.page();
        let mut a = pool.allocate(1).unwrap().unwrap();
        let b = pool.allocate(page + 1).unwrap().unwrap();
        assert_eq!((a.bytes().len(), b.bytes().len()), (page, 2 * page));
        assert_eq!(b.ptr, a.ptr + page, "first fit, in order");
        a.bytes_mut()[..2].copy_from_slice(&[0xC3, 0x90]);
        let a = a.make_executable().unwrap();
        assert_eq!(&a.bytes()[..2], &[0xC3, 0x90]);
        assert!(
            pool.allocate(14 * page).unwrap().is_none(),
            "13 pages are left"
        );
        drop(a);
        drop(b);
        assert_eq!(pool.free_bytes(), 16 * page);
        // Coalesced: the whole reservation is one run again.
        let all = pool.allocate(16 * page).unwrap().unwrap();
        assert_eq!(all.bytes().len(), 16 * page);
    }
}
