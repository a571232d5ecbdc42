//! Running compiled code: the entry, the helpers stencils call, and how exits become
//! results, traps or a hand-over to the interpreter.

use crate::compile::{self, CompileError, Compiled, FunctionCode, Options};
use crate::{gdb_jit, native_stack, perf_map, preserving};
use std::ffi::c_void;
use stencil_table::StencilSet;
use stencils::helpers::HelperFns;
use stencils::{Ctx, Exit, ExitKind, Trap};
use vm3::tier_support::{BegunRun, Machine, NativeEntry, Prepared, RunLimits};
use vm3::{Heap, RunError, TrapInfo, VerifiedProgram};

/// Native stack one level of compiled call nesting may use: the call stencil pushes
/// three registers and a return address (32 bytes on x86-64 and aarch64, 40 with
/// Apple's frame pointer); the bound leaves room for other shapes. Compiled code is
/// entered on a stack of `depth_limit` times this plus margins, and in the compiled tier
/// nothing else nests natively (the interpreter keeps its activations on the register
/// stack, and a deopt finishes in it without calling compiled code), so the depth limit
/// is reached before the stack runs out and the call stencil compares no stack pointer.
/// Under tier-up, where interpreted and compiled calls nest in each other, every entry
/// from the interpreter checks the stack left first (`native_stack_allows`). `tests/` recurse
/// to depth limits of 10,000 and 200,000 on stacks sized by this bound.
const NATIVE_BYTES_PER_CALL: usize = 128;
/// Stack kept free below the deepest compiled frame, for helpers (a deopt runs the
/// interpreter from inside compiled code).
const NATIVE_MARGIN: usize = 256 * 1024;
/// Native stack one bridge from compiled code into the interpreter may use before the
/// interpreter checks again (`native_stack_allows`) where it enters compiled code: the
/// helper, the interpreter's loop and the tier-up hook's frames, and the entry.
const BRIDGE_BYTES: usize = 64 * 1024;

/// Enters compiled code at address `entry`, a function's frame entry (which reads the
/// parameters from the frame), with the run context, the entry's frame and the cached
/// registers cleared (every stencil takes them: see `stencils::variant`), and with
/// `Ctx::calls_left` in the register compiled code keeps it in while it runs (r15 on
/// x86-64, x28 on aarch64). Returns the result's bits, or 0 after a trap.
///
/// A trap leaves every compiled activation at once through [`vm3_trap_exit`], which
/// returns here as the entry call would, but past frames that did not restore the
/// callee-saved registers: so the entry saves them all itself (the `asm!` may not
/// change a register it does not declare) and records in `Ctx::entry_sp` (and
/// `entry_return`) where the trap comes back to.
///
/// # Safety
/// `entry` must be a frame entry of compiled code for this machine, `ctx` a run's
/// context and `frame` the entry function's frame on the run's register stack.
unsafe fn enter(entry: usize, ctx: *mut Ctx, frame: *mut u64) -> u64 {
    let bits: u64;
    #[cfg(target_arch = "x86_64")]
    unsafe {
        std::arch::asm!(
            // Six pushes keep the stack aligned for the call, as at any call.
            "push rbx",
            "push rbp",
            "push r12",
            "push r13",
            "push r14",
            "push r15",
            // Where the call below puts its return address, for `vm3_trap_exit`.
            "lea rax, [rsp - 8]",
            "mov [rdi + {entry_sp}], rax",
            "mov r15, [rdi + {calls_left}]",
            "call r11",
            "pop r15",
            "pop r14",
            "pop r13",
            "pop r12",
            "pop rbp",
            "pop rbx",
            calls_left = const std::mem::offset_of!(Ctx, calls_left),
            entry_sp = const std::mem::offset_of!(Ctx, entry_sp),
            in("r11") entry,
            in("rdi") ctx,
            in("rsi") frame,
            in("rdx") 0u64,
            in("rcx") 0u64,
            in("r8") 0u64,
            in("r9") 0u64,
            in("xmm0") 0f64,
            in("xmm1") 0f64,
            in("xmm2") 0f64,
            in("xmm3") 0f64,
            in("xmm4") 0f64,
            in("xmm5") 0f64,
            in("xmm6") 0f64,
            in("xmm7") 0f64,
            out("rax") bits,
            clobber_abi("sysv64"),
        );
    }
    #[cfg(target_arch = "aarch64")]
    unsafe {
        std::arch::asm!(
            // Every callee-saved register (x19-x28, the frame pointer and the link
            // register, d8-d15), 16-byte aligned.
            "stp x29, x30, [sp, #-96]!",
            "stp x19, x20, [sp, #16]",
            "stp x21, x22, [sp, #32]",
            "stp x23, x24, [sp, #48]",
            "stp x25, x26, [sp, #64]",
            "stp x27, x28, [sp, #80]",
            "stp d8, d9, [sp, #-64]!",
            "stp d10, d11, [sp, #16]",
            "stp d12, d13, [sp, #32]",
            "stp d14, d15, [sp, #48]",
            // Where a trap comes back to: this stack pointer, and the label below.
            "mov x10, sp",
            "str x10, [x0, #{entry_sp}]",
            "adr x10, 2f",
            "str x10, [x0, #{entry_return}]",
            "ldr x28, [x0, #{calls_left}]",
            "blr x9",
            "2:",
            "ldp d14, d15, [sp, #48]",
            "ldp d12, d13, [sp, #32]",
            "ldp d10, d11, [sp, #16]",
            "ldp d8, d9, [sp], #64",
            "ldp x27, x28, [sp, #80]",
            "ldp x25, x26, [sp, #64]",
            "ldp x23, x24, [sp, #48]",
            "ldp x21, x22, [sp, #32]",
            "ldp x19, x20, [sp, #16]",
            "ldp x29, x30, [sp], #96",
            calls_left = const std::mem::offset_of!(Ctx, calls_left),
            entry_sp = const std::mem::offset_of!(Ctx, entry_sp),
            entry_return = const std::mem::offset_of!(Ctx, entry_return),
            in("x9") entry,
            inout("x0") ctx as u64 => bits,
            in("x1") frame,
            in("x2") 0u64,
            in("x3") 0u64,
            in("x4") 0u64,
            in("x5") 0u64,
            in("d0") 0f64,
            in("d1") 0f64,
            in("d2") 0f64,
            in("d3") 0f64,
            in("d4") 0f64,
            in("d5") 0f64,
            in("d6") 0f64,
            in("d7") 0f64,
            clobber_abi("C"),
        );
    }
    bits
}

/// Leaves compiled code after a trap (the helper `vm3_trap_exit`; the status is in
/// `Ctx::exit`): returns 0 from [`enter`]'s call into compiled code, with the stack as
/// it was there. The frames skipped hold nothing to release: compiled activations keep
/// their registers on the register stack, and a trap in the interpreter under a deopt
/// comes back through `vm3_deopt_resume` before its stencil leaves this way.
#[cfg(target_arch = "x86_64")]
#[unsafe(naked)]
#[no_mangle]
pub(crate) unsafe extern "sysv64" fn vm3_trap_exit(_ctx: *mut Ctx) -> u64 {
    std::arch::naked_asm!(
        "mov rsp, [rdi + {entry_sp}]",
        "xor eax, eax",
        "ret",
        entry_sp = const std::mem::offset_of!(Ctx, entry_sp),
    )
}

/// See the x86-64 version.
#[cfg(target_arch = "aarch64")]
#[unsafe(naked)]
#[no_mangle]
pub(crate) unsafe extern "C" fn vm3_trap_exit(_ctx: *mut Ctx) -> u64 {
    std::arch::naked_asm!(
        "ldr x9, [x0, #{entry_sp}]",
        "mov sp, x9",
        "ldr x30, [x0, #{entry_return}]",
        "mov x0, #0",
        "ret",
        entry_sp = const std::mem::offset_of!(Ctx, entry_sp),
        entry_return = const std::mem::offset_of!(Ctx, entry_return),
    )
}

/// A verified program's functions compiled to native code for this machine (what a
/// compiled [`crate::Module`] holds beside the program).
pub struct CompiledCode {
    /// Declared first so that it is dropped first: a debugger is told the code is gone
    /// before it is unmapped.
    _debugger: Option<gdb_jit::Registration>,
    compiled: Compiled,
}

/// The stencils harvested for the target this crate was built for.
pub fn host_stencils() -> &'static StencilSet<'static> {
    &crate::table::STENCILS
}

impl CompiledCode {
    /// Compiles every function of `program` with `stencils`, with the run-limit checks
    /// if `run_limits`.
    ///
    /// # Safety
    /// Running the result runs the table's machine code: `stencils` must be a table
    /// harvested by `stencil-harvest` from this workspace's stencils, for this CPU and
    /// this build's stencil convention (a table of other bytes runs whatever they are).
    pub(crate) unsafe fn new(
        program: &VerifiedProgram,
        stencils: &StencilSet<'_>,
        options: Options,
        run_limits: bool,
    ) -> Result<CompiledCode, CompileError> {
        let compiled = compile::compile(program, stencils, options, run_limits)?;
        CompiledCode::announced(program, compiled, options)
    }

    /// Compiles a unit of `program` alone (tier-up; see `compile::compile_unit`):
    /// `None` when `allocate` gives no memory for it.
    ///
    /// # Safety
    /// As [`CompiledCode::new`].
    pub(crate) unsafe fn unit(
        program: &VerifiedProgram,
        stencils: &StencilSet<'_>,
        options: Options,
        run_limits: bool,
        roles: &[crate::lower::Role],
        linked: &dyn Fn(usize) -> crate::regalloc::Assignment,
        allocate: impl FnOnce(usize) -> Result<Option<crate::memory::WritableRegion>, CompileError>,
    ) -> Result<Option<CompiledCode>, CompileError> {
        match compile::compile_unit(
            program, stencils, options, run_limits, roles, linked, allocate,
        )? {
            Some(compiled) => CompiledCode::announced(program, compiled, options).map(Some),
            None => Ok(None),
        }
    }

    /// Tells profilers and debuggers where the code is, if the options ask.
    fn announced(
        program: &VerifiedProgram,
        compiled: Compiled,
        options: Options,
    ) -> Result<CompiledCode, CompileError> {
        if options.perf_map {
            perf_map::append(program, &compiled).map_err(|error| CompileError::PerfMap {
                path: perf_map::path(),
                error,
            })?;
        }
        let debugger = options
            .gdb_jit
            .then(|| gdb_jit::register(program, &compiled));
        Ok(CompiledCode {
            _debugger: debugger,
            compiled,
        })
    }

    pub(crate) fn compiled(&self) -> &Compiled {
        &self.compiled
    }

    /// Bytes of machine code (without trampolines, stencil data and constants).
    pub fn code_len(&self) -> usize {
        self.compiled.code_len
    }

    /// The address compiled code starts at.
    pub fn region_address(&self) -> u64 {
        self.compiled.region.address()
    }

    /// The whole executable region: code, then trampolines, stencil data, constants.
    pub fn region_bytes(&self) -> &[u8] {
        self.compiled.region.bytes()
    }

    /// The vm3 registers function `func` keeps in machine registers, with the names of
    /// those registers.
    pub fn cached_registers(&self, func: usize) -> Vec<(vm3::Bank, usize, &'static str)> {
        self.compiled.cached[func]
            .iter()
            .map(|(bank, reg, m)| (bank, reg, m.name()))
            .collect()
    }

    /// Where each function's code lies in the region.
    pub fn function_code(&self, func: usize) -> &FunctionCode {
        &self.compiled.functions[func]
    }

    /// Where the machine code of each instruction of function `func` lies in the
    /// region.
    pub fn inst_code(&self, func: usize) -> &[std::ops::Range<usize>] {
        &self.compiled.inst_code[self.compiled.functions[func].insts.clone()]
    }

    /// Enters the compiled entry of a begun run and turns its exit status into the
    /// result's bits or a trap. A `Deopt` finishes the activation in the interpreter.
    pub(crate) fn execute(&self, prepared: &Prepared, run: BegunRun<'_>) -> Result<u64, RunError> {
        let entry = self.region_address() as usize + self.compiled.functions[run.func].entry;
        // SAFETY: the frame entry of `run.func`, compiled from the prepared program.
        unsafe { execute_at(prepared, entry, run) }
    }
}

/// Enters the frame entry at address `entry` of the code compiled from `prepared`'s
/// program for the function of a begun run, and turns its exit status into the result's
/// bits or a trap. Shared by the JIT and linked ahead-of-time code (`aot`).
///
/// # Safety
/// `entry` must be the frame entry of function `run.func` of code compiled from the
/// prepared program for this machine, with every hole patched or relocated.
pub(crate) unsafe fn execute_at(
    prepared: &Prepared,
    entry: usize,
    run: BegunRun<'_>,
) -> Result<u64, RunError> {
    // SAFETY: compiled from a verified program; the frame is on a register stack sized
    // for the depth limit, and the native stack too (the depth limit is checked by every
    // call).
    on_run_stack(run, |native| unsafe {
        enter_native(prepared, entry, native, None)
    })
}

/// Runs `f` with the entry activation of a begun run (depth 1) on a native stack sized
/// for the run's depth limit (`native_stack_needed`), on this thread or one made for it.
pub(crate) fn on_run_stack(
    run: BegunRun<'_>,
    f: impl FnOnce(&NativeEntry) -> Result<u64, TrapInfo> + Send,
) -> Result<u64, RunError> {
    let depth_limit = run.depth_limit;
    let needed = native_stack_needed(depth_limit)?;
    let entered = Entered(NativeEntry {
        func: run.func,
        pc: 0,
        frame: run.frame,
        // The entry's activation is live.
        depth: 1,
        depth_limit,
        heap: run.heap,
        limits: run.limits,
    });
    native_stack::with_stack(needed, move || {
        // Moving the whole value makes the closure capture it whole (and so `Send`).
        let entered = entered;
        f(&entered.0)
    })
    .map_err(|e| native_stack_error(depth_limit, format!("{needed} bytes: {e}")))?
    .map_err(RunError::Trap)
}

/// The native stack a run of `depth_limit` nested compiled calls is entered on: the
/// calls, a bridge into the interpreter and back (tier-up), and helpers.
pub(crate) fn native_stack_needed(depth_limit: u64) -> Result<usize, RunError> {
    stack_for_calls(depth_limit, 2 * NATIVE_MARGIN + BRIDGE_BYTES)
        .ok_or_else(|| native_stack_error(depth_limit, "the size overflows".into()))
}

/// Native stack for `calls` nested compiled calls plus `margin` bytes, if it has a size.
fn stack_for_calls(calls: u64, margin: usize) -> Option<usize> {
    usize::try_from(calls)
        .ok()
        .and_then(|c| c.checked_mul(NATIVE_BYTES_PER_CALL))
        .and_then(|b| b.checked_add(margin))
}

/// Whether compiled code may be entered from here for an activation at `depth`: the
/// native stack left must hold every compiled call the depth limit still allows, one
/// bridge into the interpreter (which checks again before it enters compiled code) and
/// the helpers' margin. Calls nest natively across tiers (tier-up), so the runtime's
/// guarantee that the depth limit trips before the native stack runs out holds only
/// because every interpreter-to-compiled entry asks this first; when it says no, the
/// interpreter keeps the activation (the same semantics, on the register stack).
pub(crate) fn native_stack_allows(depth: u64, depth_limit: u64) -> bool {
    stack_for_calls(
        depth_limit.saturating_sub(depth),
        NATIVE_MARGIN + BRIDGE_BYTES,
    )
    .is_some_and(native_stack::has_room)
}

/// Enters compiled code at address `entry` (a frame entry, or an on-stack-replacement
/// entry of a tier-up unit) for the activation `native` describes, with a run context
/// of its own whose fuel is copied from the run's counter and written back, and turns
/// the exit status into the result's bits or the trap. `tier_up`: the run's tier-up
/// hook, which bridges from the code into the interpreter use.
///
/// # Safety
/// `entry` must be an entry of code compiled from the prepared program for this machine
/// for the activation's function; its pointers must be the run's, its frame on the
/// run's register stack at its depth, with enough native stack (`native_stack_allows`).
pub(crate) unsafe fn enter_native(
    prepared: &Prepared,
    entry: usize,
    native: &NativeEntry,
    tier_up: Option<&crate::tier_up::AutoRun<'_>>,
) -> Result<u64, TrapInfo> {
    let mut state = RunState {
        prepared,
        depth_limit: native.depth_limit,
        // SAFETY: the run's heap, which nothing else uses while compiled code runs.
        heap: unsafe { &mut *native.heap },
        tier_up: tier_up.map(|t| t as *const crate::tier_up::AutoRun<'_> as *const ()),
    };
    let limits = native.limits;
    let mut ctx = Ctx {
        exit: Exit::NONE,
        calls_left: native.depth_limit - native.depth,
        heap: state.heap.view(),
        runtime: &mut state as *mut RunState as *mut c_void,
        // SAFETY: the run's fuel counter (`run_prepared`); copied back below.
        fuel: limits.map_or(0, |l| unsafe { *l.fuel }),
        interrupt: limits.map_or(std::ptr::null(), |l| l.interrupt),
        // Set by `enter`: a trap in this code comes back to this entry, so entries
        // nested through bridges each catch the traps of their own code.
        entry_sp: 0,
        entry_return: 0,
    };
    // SAFETY: the caller's contract. A deopt finishes in the interpreter inside the
    // compiled code (`vm3_deopt_resume`), so only a trap can be pending after it.
    let bits = unsafe { enter(entry, &mut ctx, native.frame) };
    if let Some(limits) = limits {
        // SAFETY: the run's fuel counter, which outlives the run.
        unsafe { *limits.fuel = ctx.fuel };
    }
    let status = ctx.exit;
    if status == Exit::NONE {
        return Ok(bits);
    }
    match Exit::decode(status) {
        Some(Exit {
            kind: ExitKind::Trap(trap),
            func,
            pc,
        }) => Err(trap_info(prepared.program(), trap, func, pc)),
        _ => panic!("compiled code ended with a malformed exit status {status:#x}"),
    }
}

fn native_stack_error(depth_limit: u64, why: String) -> RunError {
    RunError::Resources(format!(
        "cannot get a native stack for compiled calls nested {depth_limit} deep: {why}"
    ))
}

fn trap_info(program: &VerifiedProgram, trap: Trap, func: u32, pc: u32) -> TrapInfo {
    let func = func as usize;
    TrapInfo {
        trap,
        func,
        function: program.functions[func].name.clone(),
        pc,
    }
}

/// What helpers need from the run, reached through `Ctx::runtime`.
struct RunState<'a> {
    prepared: &'a Prepared,
    depth_limit: u64,
    heap: &'a mut Heap,
    /// The run's tier-up hook (`tier_up::AutoRun`, type-erased for its lifetime), if
    /// the module tiers up: bridges into the interpreter hand it on.
    tier_up: Option<*const ()>,
}

/// The run's heap, from inside a helper.
///
/// # Safety
/// `ctx` must be the context of a run in progress (its `runtime` a `RunState`).
unsafe fn heap_of<'a>(ctx: *mut Ctx) -> &'a mut Heap {
    unsafe { &mut *(*((*ctx).runtime as *mut RunState)).heap }
}

/// The activation a run starts with, handed to the thread that runs it.
struct Entered(NativeEntry);

// SAFETY: the thread that receives an `Entered` runs while the sending thread waits for
// it (`native_stack::with_stack` joins before returning), so the context and frame are
// never used from two threads at once.
unsafe impl Send for Entered {}

/// The helpers, in the stencil calling convention.
pub(crate) fn helper_fns() -> HelperFns {
    HelperFns {
        vm3_deopt_resume,
        vm3_trap_exit,
        vm3_fma,
        vm3_new_list,
        vm3_new_map,
        vm3_concat,
        vm3_list_push_grow,
        vm3_map_set_grow,
        vm3_new_list_preserving: preserving::vm3_new_list_preserving,
        vm3_new_map_preserving: preserving::vm3_new_map_preserving,
        vm3_concat_preserving: preserving::vm3_concat_preserving,
        vm3_list_push_grow_preserving: preserving::vm3_list_push_grow_preserving,
        vm3_map_set_grow_preserving: preserving::vm3_map_set_grow_preserving,
    }
}

macro_rules! helper {
    ($(#[$m:meta])* fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty $body:block) => {
        // Unmangled: ahead-of-time code (`aot.rs`) is linked against these names, the
        // names of `stencils::helpers::HELPER_NAMES`.
        $(#[$m])*
        #[cfg(target_arch = "x86_64")]
        #[no_mangle]
        pub(crate) unsafe extern "sysv64" fn $name($($arg: $ty),*) -> $ret $body
        $(#[$m])*
        #[cfg(not(target_arch = "x86_64"))]
        #[no_mangle]
        pub(crate) unsafe extern "C" fn $name($($arg: $ty),*) -> $ret $body
    };
}

helper! {
    /// Finishes a deoptimised activation in the interpreter: the frame holds the exact
    /// register state, `exit` (the deopt status) names the function and the instruction
    /// to resume at (`Ctx::calls_left` says how deep it is). Returns the result's bits,
    /// or stores a trap in `Ctx::exit`.
    fn vm3_deopt_resume(ctx: *mut Ctx, frame: *mut u64, exit: u64) -> u64 {
        let ctx = unsafe { &mut *ctx };
        let Some(Exit { kind: ExitKind::Deopt, func, pc }) = Exit::decode(exit) else {
            ctx.exit = exit;
            return 0;
        };
        let state = unsafe { &mut *(ctx.runtime as *mut RunState) };
        let heap: *mut Heap = &mut *state.heap;
        // The interpreter goes on counting the fuel compiled code counts.
        let limits = (!ctx.interrupt.is_null()).then_some(RunLimits {
            fuel: &mut ctx.fuel,
            interrupt: ctx.interrupt,
        });
        // SAFETY: set by `enter_native` from an `AutoRun` that outlives the run.
        let tier_up = state
            .tier_up
            .map(|t| unsafe { &*(t as *const crate::tier_up::AutoRun<'_>) });
        let depth = state.depth_limit - ctx.calls_left;
        let (func, prepared, depth_limit) = (func as usize, state.prepared, state.depth_limit);
        // A panic must not unwind through compiled frames, which have no unwind tables.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| unsafe {
            let mut pc = pc as usize;
            if pc == crate::lower::BRIDGE_PC as usize + 1 {
                // A bridge: a call from a tier-up unit of a function outside it. A fresh
                // activation, as the interpreter's call makes it (its arguments are in
                // their slots); compiled since, it runs natively.
                prepared.clear_all_but_parameters(func, frame);
                let native = NativeEntry { func, pc: 0, frame, depth, depth_limit, heap, limits };
                if let Some(result) = tier_up.and_then(|t| t.bridge(&native)) {
                    return result;
                }
                pc = 0;
            } else if let Some(tier_up) = tier_up {
                tier_up.deopted();
            }
            // SAFETY: compiled code is stopped in this helper; the heap and the limits
            // are the run's.
            let mut machine = Machine::new(
                prepared,
                depth_limit,
                depth,
                heap,
                limits,
                tier_up.map(|t| t as &dyn vm3::tier_support::TierUp),
            );
            machine.execute(func, pc, frame)
        }));
        match result {
            Ok(Ok(bits)) => bits,
            Ok(Err(trap)) => {
                ctx.exit = Exit::trap_status(trap.trap, trap.func as u64, trap.pc as u64);
                0
            }
            Err(_) => std::process::abort(),
        }
    }
}

helper! {
    /// `x * y + z` with one rounding.
    fn vm3_fma(x: f64, y: f64, z: f64) -> f64 {
        x.mul_add(y, z)
    }
}

// The heap helpers: what the stencils of allocating instructions call. Each returns what
// `stencils::cell::helper_result` decodes (a handle or 0, or a trap code). None of them
// can panic on a checked path; allocation failure aborts, as it does everywhere in Rust.

helper! {
    fn vm3_new_list(ctx: *mut Ctx, cap: i64) -> u64 {
        unsafe { heap_of(ctx) }.new_list(cap)
    }
}

helper! {
    fn vm3_new_map(ctx: *mut Ctx, cap: i64) -> u64 {
        unsafe { heap_of(ctx) }.new_map(cap)
    }
}

helper! {
    fn vm3_concat(ctx: *mut Ctx, a: u64, b: u64) -> u64 {
        unsafe { heap_of(ctx) }.concat(a, b)
    }
}

helper! {
    fn vm3_list_push_grow(ctx: *mut Ctx, list: u64, item: u64) -> u64 {
        unsafe { heap_of(ctx) }.list_push_grow(list, item)
    }
}

helper! {
    fn vm3_map_set_grow(ctx: *mut Ctx, map: u64, key: i64, value: i64) -> u64 {
        unsafe { heap_of(ctx) }.map_set_grow(map, key, value)
    }
}
