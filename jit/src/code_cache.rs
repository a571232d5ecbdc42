//! The engine's account of executable memory: the cap (`EngineOptions::code_limit`),
//! what is compiled, what was refused, and how often runs crossed tiers
//! ([`CodeReport`]). Shared by the engine's modules and threads; all counters relaxed
//! (they are reports, not synchronisation).

use crate::memory::WritableRegion;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

/// Granule of executable memory: code is mapped page by page, so a unit's bytes count
/// whole pages (the smallest page of the platforms supported; larger pages only make
/// the account an underestimate of the address space used).
pub(crate) const PAGE: usize = 4096;

/// How much code an engine holds and how its runs crossed tiers ([`crate::Engine::code_report`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CodeReport {
    /// Bytes of executable memory the engine's live modules hold (whole pages), the
    /// quantity `EngineOptions::code_limit` caps.
    pub compiled_bytes: usize,
    /// Functions compiled in those bytes (a whole-program compile counts each).
    pub compiled_functions: usize,
    /// Bytes of compiles the cap refused, since the engine was made: their functions
    /// stay interpreted.
    pub refused_bytes: usize,
    pub refused_functions: usize,
    /// Entries into compiled code from the interpreter at a call (tier-up).
    pub calls_into_compiled: u64,
    /// Calls from tier-up units of functions that then ran in the interpreter (through
    /// a bridge).
    pub calls_into_interpreter: u64,
    /// Interpreted activations that went on in compiled code at a loop header
    /// (on-stack replacement).
    pub osr_entries: u64,
    /// Compiled activations that deoptimised and finished in the interpreter, in
    /// modules that tier up.
    pub deopts: u64,
    /// A compile that failed (a bug or a table that does not fit this machine): its
    /// function stays interpreted, and the error is kept here.
    pub last_compile_error: Option<String>,
}

#[derive(Default)]
pub(crate) struct CodeCache {
    limit: Option<usize>,
    used: AtomicUsize,
    functions: AtomicUsize,
    refused_bytes: AtomicUsize,
    refused_functions: AtomicUsize,
    pub(crate) calls_into_compiled: AtomicU64,
    pub(crate) calls_into_interpreter: AtomicU64,
    pub(crate) osr_entries: AtomicU64,
    pub(crate) deopts: AtomicU64,
    last_compile_error: Mutex<Option<String>>,
    /// Where units go, made at the first (`memory/pool.rs`; platforms without one map
    /// each unit on its own).
    #[cfg(all(unix, not(target_os = "macos")))]
    pool: Mutex<Option<crate::memory::pool::Pool>>,
}

/// Bytes of the cache held by one compile; given back when dropped (with the module).
pub(crate) struct Lease {
    cache: Arc<CodeCache>,
    bytes: usize,
    functions: usize,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.cache.used.fetch_sub(self.bytes, Relaxed);
        self.cache.functions.fetch_sub(self.functions, Relaxed);
    }
}

fn pages(len: usize) -> usize {
    len.div_ceil(PAGE).max(1) * PAGE
}

impl CodeCache {
    pub(crate) fn new(limit: Option<usize>) -> CodeCache {
        CodeCache {
            limit,
            ..CodeCache::default()
        }
    }

    /// Takes `len` bytes (rounded up to pages) for code of `functions` functions if the
    /// cap allows; else counts them as refused and returns `None`.
    pub(crate) fn reserve(self: &Arc<Self>, len: usize, functions: usize) -> Option<Lease> {
        let bytes = pages(len);
        let admitted = self.used.fetch_update(Relaxed, Relaxed, |used| {
            let after = used.checked_add(bytes)?;
            self.limit
                .is_none_or(|limit| after <= limit)
                .then_some(after)
        });
        if admitted.is_err() {
            self.refused_bytes.fetch_add(bytes, Relaxed);
            self.refused_functions.fetch_add(functions, Relaxed);
            return None;
        }
        self.functions.fetch_add(functions, Relaxed);
        Some(Lease {
            cache: self.clone(),
            bytes,
            functions,
        })
    }

    /// Memory for a unit of `len` bytes and its lease: whole pages of the engine's
    /// pool, if the cap and the pool have room (else counted as refused: `None`).
    pub(crate) fn unit_region(
        self: &Arc<Self>,
        len: usize,
    ) -> std::io::Result<Option<(WritableRegion, Lease)>> {
        #[cfg(all(unix, not(target_os = "macos")))]
        {
            let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
            if pool.is_none() {
                let size = self.limit.unwrap_or(usize::MAX);
                *pool = Some(crate::memory::pool::Pool::new(size)?);
            }
            let pool = pool.as_ref().expect("made above");
            // The cap counts what the pool gives: its pages may be larger than `PAGE`.
            let given = len.max(1).div_ceil(pool.page()) * pool.page();
            let Some(lease) = self.reserve(given, 1) else {
                return Ok(None);
            };
            match pool.allocate(given)? {
                Some(slice) => Ok(Some((WritableRegion::pooled(slice), lease))),
                None => {
                    // The pool's reservation is full: as if the cap were reached.
                    self.refused_bytes.fetch_add(lease.bytes, Relaxed);
                    self.refused_functions.fetch_add(lease.functions, Relaxed);
                    Ok(None)
                }
            }
        }
        #[cfg(not(all(unix, not(target_os = "macos"))))]
        {
            let Some(lease) = self.reserve(len, 1) else {
                return Ok(None);
            };
            Ok(Some((WritableRegion::new(len)?, lease)))
        }
    }

    /// Whether units can call each other directly: they all lie in one pool, within
    /// a direct call's reach.
    pub(crate) fn units_reach_each_other(&self) -> bool {
        cfg!(all(unix, not(target_os = "macos")))
    }

    pub(crate) fn compile_failed(&self, error: String) {
        *self
            .last_compile_error
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(error);
    }

    pub(crate) fn report(&self) -> CodeReport {
        CodeReport {
            compiled_bytes: self.used.load(Relaxed),
            compiled_functions: self.functions.load(Relaxed),
            refused_bytes: self.refused_bytes.load(Relaxed),
            refused_functions: self.refused_functions.load(Relaxed),
            calls_into_compiled: self.calls_into_compiled.load(Relaxed),
            calls_into_interpreter: self.calls_into_interpreter.load(Relaxed),
            osr_entries: self.osr_entries.load(Relaxed),
            deopts: self.deopts.load(Relaxed),
            last_compile_error: self
                .last_compile_error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_admits_whole_pages_until_full_and_leases_give_them_back() {
        let cache = Arc::new(CodeCache::new(Some(3 * PAGE)));
        let a = cache.reserve(100, 1).expect("one page fits");
        let b = cache.reserve(PAGE + 1, 2).expect("two more pages fit");
        assert!(
            cache.reserve(1, 1).is_none(),
            "a fourth page is over the cap"
        );
        let report = cache.report();
        assert_eq!(
            (report.compiled_bytes, report.compiled_functions),
            (3 * PAGE, 3)
        );
        assert_eq!((report.refused_bytes, report.refused_functions), (PAGE, 1));
        drop(a);
        drop(b);
        assert_eq!(cache.report().compiled_bytes, 0);
        assert!(cache.reserve(3 * PAGE, 1).is_some());
    }
}
