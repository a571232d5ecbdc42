//! Tier-up on demand (`Tier::Auto`): every function starts interpreted; the interpreter
//! asks this module's hook at calls, tail calls and backward jumps
//! (`vm3::tier_support::TierUp`), which counts, compiles a function alone once it is
//! hot, and from then on runs its activations natively: a call from its frame entry, an
//! activation spinning in a loop from the loop header's on-stack-replacement entry.
//!
//! A unit (one function) calls the functions outside it through bridge stubs that
//! finish in `runtime::vm3_deopt_resume`, which enters the callee natively if it got
//! compiled since and interprets it otherwise: calls cross tiers both ways.
//!
//! Concurrency: a module is shared by threads. Each function's counters are relaxed
//! atomics; its code is published in a `OnceLock` once executable. Compiles take the
//! module's lock with `try_lock`: a thread that finds another compiling keeps
//! interpreting and asks again at its next call, rather than waiting (a compile is
//! short, but a thread that waits gains nothing over interpreting meanwhile, and no
//! thread ever blocks in the interpreter's hook). One compile per function: the lock
//! holder looks at the function's state again before it compiles.

use crate::code_cache::{CodeCache, Lease};
use crate::engine::{EngineOptions, TierUp};
use crate::lower::Role;
use crate::regalloc::{Assignment, CachedSet};
use crate::runtime::{self, CompiledCode};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock, TryLockError};
use stencil_table::StencilSet;
use stencils::{Opcode, OperandKind};
use vm3::tier_support::{BegunRun, Machine, NativeEntry, Prepared, TierUp as TierUpHook};
use vm3::{Program, RunError, TrapInfo};

/// A module's tier-up state.
pub(crate) struct TierState {
    funcs: Box<[FuncState]>,
    /// The units compiled so far (they own their code and their bytes of the cache):
    /// dropped with the module, when no run can be in them.
    units: Mutex<Vec<Unit>>,
}

#[derive(Default)]
struct FuncState {
    calls: AtomicU32,
    back_edges: AtomicU32,
    /// Set once its unit is executable.
    native: OnceLock<NativeFn>,
    /// The cap refused its unit (or its compile failed): it stays interpreted.
    refused: AtomicBool,
}

/// Where a compiled function is entered.
struct NativeFn {
    /// Its frame entry.
    entry: usize,
    /// Its register entry, and the registers it keeps in machine registers: what a
    /// unit compiled later calls directly ([`Role::Linked`]).
    register_entry: usize,
    cached: CachedSet,
    /// Its on-stack-replacement entries: loop header, address; by header.
    osr: Box<[(u32, usize)]>,
}

struct Unit {
    /// Declared first: the code goes before its bytes are given back.
    _code: CompiledCode,
    _lease: Lease,
}

impl TierState {
    pub(crate) fn new(functions: usize) -> TierState {
        TierState {
            funcs: (0..functions).map(|_| FuncState::default()).collect(),
            units: Mutex::new(Vec::new()),
        }
    }

    /// How many of its functions are compiled (tests).
    pub(crate) fn compiled_functions(&self) -> usize {
        self.funcs
            .iter()
            .filter(|f| f.native.get().is_some())
            .count()
    }
}

/// One run of a tier-up module: what the hook needs to count, compile and enter.
pub(crate) struct AutoRun<'a> {
    pub(crate) state: &'a TierState,
    pub(crate) prepared: &'a Prepared,
    pub(crate) stencils: &'a StencilSet<'a>,
    pub(crate) options: &'a EngineOptions,
    pub(crate) cache: &'a Arc<CodeCache>,
}

/// Counts one event against `threshold` ([`TierUp`]): true once `threshold` events
/// were counted before this one. Racy increments may lose counts under contention,
/// which only delays a compile.
fn hot(counter: &AtomicU32, threshold: u32) -> bool {
    if threshold == TierUp::NEVER {
        return false;
    }
    let seen = counter.load(Relaxed);
    if seen >= threshold {
        return true;
    }
    counter.store(seen + 1, Relaxed);
    false
}

/// A unit of `func` alone: the functions it calls that are compiled already, and lie
/// within a direct call's reach (`link`), are called directly; the others through
/// bridges.
fn roles(program: &Program, func: usize, funcs: &[FuncState], link: bool) -> Vec<Role> {
    let mut roles = vec![Role::Absent; program.functions.len()];
    for inst in &program.functions[func].code {
        let Some(op) = Opcode::from_u8(inst.code) else {
            continue;
        };
        for &(field, kind) in op.info().operands {
            if kind == OperandKind::Callee {
                let callee = inst.field(field) as usize;
                roles[callee] = match funcs[callee].native.get() {
                    Some(native) if link => Role::Linked(native.register_entry as u64),
                    _ => Role::Bridge,
                };
            }
        }
    }
    roles[func] = Role::Compiled;
    roles
}

impl<'a> AutoRun<'a> {
    /// The function's code, compiling it now if nobody else is (`None`: not compiled,
    /// by the cap, a failure, or another thread compiling).
    fn compile(&self, func: usize) -> Option<&'a NativeFn> {
        let state = &self.state.funcs[func];
        if state.refused.load(Relaxed) {
            return None;
        }
        let mut units = match self.state.units.try_lock() {
            Ok(units) => units,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => return None,
        };
        if let Some(native) = state.native.get() {
            return Some(native);
        }
        if state.refused.load(Relaxed) {
            return None;
        }
        let program = self.prepared.program();
        let mut lease = None;
        // SAFETY: the engine's stencils are this machine's (`Engine::new`).
        let compiled = unsafe {
            CompiledCode::unit(
                program,
                self.stencils,
                self.options.compile,
                self.options.run_limits,
                &roles(
                    program,
                    func,
                    &self.state.funcs,
                    self.cache.units_reach_each_other(),
                ),
                &|f| {
                    Assignment::of_callee(self.state.funcs[f].native.get().expect("linked").cached)
                },
                |len| match self.cache.unit_region(len)? {
                    Some((region, taken)) => {
                        lease = Some(taken);
                        Ok(Some(region))
                    }
                    None => Ok(None),
                },
            )
        };
        let code = match compiled {
            Ok(Some(code)) => code,
            Ok(None) => {
                state.refused.store(true, Relaxed);
                return None;
            }
            Err(error) => {
                self.cache.compile_failed(format!(
                    "function `{}`: {error}",
                    program.functions[func].name
                ));
                state.refused.store(true, Relaxed);
                return None;
            }
        };
        let compiled = code.compiled();
        let base = compiled.region.address() as usize;
        let native = NativeFn {
            entry: base + compiled.functions[func].entry,
            register_entry: base + compiled.functions[func].register_entry,
            cached: compiled.cached[func],
            osr: compiled
                .osr
                .iter()
                .filter(|&&(f, _, _)| f as usize == func)
                .map(|&(_, pc, offset)| (pc, base + offset))
                .collect(),
        };
        units.push(Unit {
            _code: code,
            _lease: lease.expect("admitted"),
        });
        // The code is executable (`make_executable` ran); publishing it releases that.
        let _ = state.native.set(native);
        state.native.get()
    }

    /// Runs the activation natively at `address` if the native stack allows.
    ///
    /// # Safety
    /// `address` is an entry of the activation's function at the entry's pc.
    unsafe fn enter(&self, address: usize, entry: &NativeEntry) -> Option<Result<u64, TrapInfo>> {
        if !runtime::native_stack_allows(entry.depth, entry.depth_limit) {
            return None;
        }
        // SAFETY: the caller's contract and the stack check above.
        Some(unsafe { runtime::enter_native(self.prepared, address, entry, Some(self)) })
    }

    /// A call from compiled code of a function outside its unit (`vm3_deopt_resume`):
    /// natively if it is compiled (or now hot), else `None` and the caller interprets.
    ///
    /// # Safety
    /// As [`TierUpHook::call`].
    pub(crate) unsafe fn bridge(&self, entry: &NativeEntry) -> Option<Result<u64, TrapInfo>> {
        // SAFETY: the caller's contract.
        let result = unsafe { self.call(entry) };
        if result.is_none() {
            self.cache.calls_into_interpreter.fetch_add(1, Relaxed);
        }
        result
    }

    /// Counts a deopt of compiled code of this run.
    pub(crate) fn deopted(&self) {
        self.cache.deopts.fetch_add(1, Relaxed);
    }
}

impl TierUpHook for AutoRun<'_> {
    unsafe fn call(&self, entry: &NativeEntry) -> Option<Result<u64, TrapInfo>> {
        let state = &self.state.funcs[entry.func];
        let native = match state.native.get() {
            Some(native) => native,
            None if hot(&state.calls, self.options.tier_up.calls) => self.compile(entry.func)?,
            None => return None,
        };
        // SAFETY: the frame entry of the called function.
        let result = unsafe { self.enter(native.entry, entry) }?;
        self.cache.calls_into_compiled.fetch_add(1, Relaxed);
        Some(result)
    }

    unsafe fn back_edge(&self, entry: &NativeEntry) -> Option<Result<u64, TrapInfo>> {
        let state = &self.state.funcs[entry.func];
        let native = match state.native.get() {
            Some(native) => native,
            None if hot(&state.back_edges, self.options.tier_up.back_edges) => {
                self.compile(entry.func)?
            }
            None => return None,
        };
        let at = native
            .osr
            .binary_search_by_key(&(entry.pc as u32), |&(pc, _)| pc)
            .ok()?;
        // SAFETY: the on-stack-replacement entry of this loop header; the interpreter's
        // frame is exact at a backward jump.
        let result = unsafe { self.enter(native.osr[at].1, entry) }?;
        self.cache.osr_entries.fetch_add(1, Relaxed);
        Some(result)
    }
}

/// Runs a begun run of a tier-up module: its entry natively if compiled (or hot now),
/// else in the interpreter with the hook, on a native stack sized as a compiled run's
/// so that entries into compiled code normally pass their stack check.
pub(crate) fn execute(auto: &AutoRun<'_>, run: BegunRun<'_>) -> Result<u64, RunError> {
    let depth_limit = run.depth_limit;
    runtime::on_run_stack(run, |native| {
        // SAFETY: the begun run's frame (with its arguments), heap and limits.
        if let Some(result) = unsafe { auto.call(native) } {
            return result;
        }
        // SAFETY: as `vm3::tier_support::interpret`.
        let mut machine = unsafe {
            Machine::new(
                auto.prepared,
                depth_limit,
                1,
                native.heap,
                native.limits,
                Some(auto),
            )
        };
        unsafe { machine.execute(native.func, 0, native.frame) }
    })
}
