//! Running compiled code: the entry, the helpers stencils call, and how exits become
//! results, traps or a hand-over to the interpreter.

use crate::compile::{self, CompileError, Compiled, FunctionCode, Options};
use crate::{native_stack, preserving};
use std::ffi::c_void;
use stencil_table::StencilSet;
use stencils::helpers::HelperFns;
use stencils::{Ctx, Exit, ExitKind};
use vm3::interp::{BegunRun, Config, Machine, Prepared};
use vm3::{Heap, RunError, TrapInfo, Value, VerifiedProgram};

/// Native stack one level of compiled call nesting may use: the call stencil pushes
/// three registers and a return address (32 bytes on x86-64); the bound leaves room for
/// other shapes. `tests/` checks the depth limit is reached before the stack limit.
const NATIVE_BYTES_PER_CALL: usize = 128;
/// Stack kept free below the deepest compiled frame, for helpers (a deopt runs the
/// interpreter from inside compiled code).
const NATIVE_MARGIN: usize = 256 * 1024;

/// The signature of compiled code: a function's entry or any stencil.
/// The cached registers are arguments too (see `stencils::variant`); a function's frame
/// entry reads its parameters from the frame, so they enter as zeros.
#[cfg(target_arch = "x86_64")]
type Entry = unsafe extern "sysv64" fn(
    *mut Ctx,
    *mut u64,
    u64,
    u64,
    u64,
    u64,
    f64,
    f64,
    f64,
    f64,
    f64,
    f64,
    f64,
    f64,
) -> u64;
#[cfg(not(target_arch = "x86_64"))]
type Entry = unsafe extern "C" fn(
    *mut Ctx,
    *mut u64,
    u64,
    u64,
    u64,
    u64,
    f64,
    f64,
    f64,
    f64,
    f64,
    f64,
    f64,
    f64,
) -> u64;

/// A verified program compiled to native code for this machine.
pub struct CompiledProgram {
    program: VerifiedProgram,
    compiled: Compiled,
}

/// The stencils harvested for the target this crate was built for.
pub fn host_stencils() -> &'static StencilSet<'static> {
    &crate::table::STENCILS
}

impl CompiledProgram {
    /// Compiles every function of `program` with the host's stencils.
    pub fn new(program: &VerifiedProgram) -> Result<CompiledProgram, CompileError> {
        CompiledProgram::with_options(program, Options::default())
    }

    pub fn with_options(
        program: &VerifiedProgram,
        options: Options,
    ) -> Result<CompiledProgram, CompileError> {
        // SAFETY: the host's own table, harvested by this build for this target.
        unsafe { CompiledProgram::with_stencils(program, host_stencils(), options) }
    }

    /// Compiles with another stencil table. Its code must run on this machine: the same
    /// CPU and the stencil convention of this build (on x86-64 every OS's stencils use
    /// `sysv64`, so tests run the tables harvested for macOS and Windows here to execute
    /// their relocation forms, which no Linux table has).
    ///
    /// # Safety
    /// Running the result runs the table's machine code: `stencils` must be a table
    /// harvested by `stencil-harvest` from this workspace's stencils, for this CPU and
    /// this build's stencil convention (a table of other bytes runs whatever they are).
    /// Hence `unsafe` (issue 10: as a safe function, a forged table crashed safe code):
    ///
    /// ```compile_fail
    /// fn compile(p: &vm3::VerifiedProgram, table: &stencil_table::StencilSet<'_>) {
    ///     let _ = jit::CompiledProgram::with_stencils(p, table, jit::Options::default());
    /// }
    /// ```
    /// ```no_run
    /// fn compile(p: &vm3::VerifiedProgram, table: &stencil_table::StencilSet<'_>) {
    ///     // SAFETY: (the caller's) a table harvested for this machine.
    ///     let _ = unsafe { jit::CompiledProgram::with_stencils(p, table, jit::Options::default()) };
    /// }
    /// ```
    pub unsafe fn with_stencils(
        program: &VerifiedProgram,
        stencils: &StencilSet<'_>,
        options: Options,
    ) -> Result<CompiledProgram, CompileError> {
        let compiled = compile::compile(program, stencils, options)?;
        Ok(CompiledProgram {
            program: program.clone(),
            compiled,
        })
    }

    pub fn program(&self) -> &VerifiedProgram {
        &self.program
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
            .map(|&(bank, reg, m)| (bank, reg, m.name()))
            .collect()
    }

    /// Where each function's code lies in the region.
    pub fn function_code(&self, func: usize) -> &FunctionCode {
        &self.compiled.functions[func]
    }

    /// Runs `entry` with `args` on a heap of its own, freed when the run ends. Traps
    /// come back as `RunError::Trap`, exactly as the interpreter reports them; a `Deopt`
    /// finishes the activation in the interpreter.
    pub fn run(&self, entry: &str, args: &[Value], config: &Config) -> Result<Value, RunError> {
        self.run_on(entry, args, config, &mut Heap::new(config.heap_limit))
    }

    /// Runs `entry` on `heap`, which a caller running many programs can keep (see
    /// [`vm3::interp::run_on`]).
    pub fn run_on(
        &self,
        entry: &str,
        args: &[Value],
        config: &Config,
        heap: &mut Heap,
    ) -> Result<Value, RunError> {
        vm3::interp::run_tier(&self.program, entry, args, config, heap, |run| {
            self.execute(run)
        })
    }

    /// Enters the compiled entry of a begun run and turns its exit status into the
    /// result's bits or a trap.
    fn execute(&self, run: BegunRun<'_>) -> Result<u64, RunError> {
        let entry = self.region_address() as usize + self.compiled.functions[run.func].entry;
        // SAFETY: the frame entry of `run.func`, compiled from `self.program`.
        unsafe { execute_at(&self.program, entry, run) }
    }
}

/// Enters the frame entry at address `entry` of the code compiled from `program` for
/// the function of a begun run, and turns its exit status into the result's bits or a
/// trap. Shared by the JIT and linked ahead-of-time code (`aot::run_linked`).
///
/// # Safety
/// `entry` must be the frame entry of function `run.func` of code compiled from
/// `program` for this machine, with every hole patched or relocated.
pub(crate) unsafe fn execute_at(
    program: &VerifiedProgram,
    entry: usize,
    run: BegunRun<'_>,
) -> Result<u64, RunError> {
    let BegunRun {
        func: _,
        frame,
        depth_limit,
        heap,
    } = run;
    let prepared = Prepared::new(program);
    let mut state = RunState {
        prepared: &prepared,
        depth_limit,
        heap,
    };
    let mut ctx = Ctx {
        exit: Exit::NONE,
        depth: 1,
        depth_limit,
        native_stack_limit: 0,
        heap: state.heap.view(),
        runtime: &mut state as *mut RunState as *mut c_void,
    };
    let entry_fn: Entry = unsafe { std::mem::transmute(entry) };
    let needed = depth_limit as usize * NATIVE_BYTES_PER_CALL + 2 * NATIVE_MARGIN;
    let entered = Entered {
        ctx: &mut ctx,
        frame,
        entry: entry_fn,
    };
    let bits = native_stack::with_stack(needed, move |floor| {
        // Moving the whole value makes the closure capture it whole (and so `Send`).
        let entered = entered;
        let Entered { ctx, frame, entry } = entered;
        // SAFETY: `ctx` outlives the call (`with_stack` returns after it).
        let ctx = unsafe { &mut *ctx };
        ctx.native_stack_limit = floor + NATIVE_MARGIN;
        // SAFETY: compiled from a verified program; the frame is on a register stack
        // sized for the depth limit; the native stack is checked by every call.
        let bits = unsafe {
            entry(
                ctx, frame, 0, 0, 0, 0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
            )
        };
        // A deopt finished in the interpreter inside the compiled code
        // (`vm3_deopt_resume`), so only a trap can be pending.
        bits
    });
    let status = ctx.exit;
    if status == Exit::NONE {
        return Ok(bits);
    }
    match Exit::decode(status) {
        Some(Exit {
            kind: ExitKind::Trap(trap),
            func,
            pc,
        }) => Err(RunError::Trap(TrapInfo {
            trap,
            func: func as usize,
            function: program.functions[func as usize].name.clone(),
            pc,
        })),
        _ => panic!("compiled code ended with a malformed exit status {status:#x}"),
    }
}

/// What helpers need from the run, reached through `Ctx::runtime`.
struct RunState<'a, 'p> {
    prepared: &'a Prepared<'p>,
    depth_limit: u64,
    heap: &'a mut Heap,
}

/// The run's heap, from inside a helper.
///
/// # Safety
/// `ctx` must be the context of a run in progress (its `runtime` a `RunState`).
unsafe fn heap_of<'a>(ctx: *mut Ctx) -> &'a mut Heap {
    unsafe { &mut *(*((*ctx).runtime as *mut RunState)).heap }
}

/// What compiled code is entered with, handed to the thread that runs it.
struct Entered {
    ctx: *mut Ctx,
    frame: *mut u64,
    entry: Entry,
}

// SAFETY: the thread that receives an `Entered` runs while the sending thread waits for
// it (`native_stack::with_stack` joins before returning), so the context and frame are
// never used from two threads at once.
unsafe impl Send for Entered {}

/// The helpers, in the stencil calling convention.
pub fn helper_fns() -> HelperFns {
    HelperFns {
        vm3_deopt_resume,
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
    /// to resume at. Returns the result's bits, or stores a trap in `Ctx::exit`.
    fn vm3_deopt_resume(ctx: *mut Ctx, frame: *mut u64, exit: u64) -> u64 {
        let ctx = unsafe { &mut *ctx };
        let Some(Exit { kind: ExitKind::Deopt, func, pc }) = Exit::decode(exit) else {
            ctx.exit = exit;
            return 0;
        };
        let state = unsafe { &mut *(ctx.runtime as *mut RunState) };
        let heap: *mut Heap = &mut *state.heap;
        // SAFETY: compiled code is stopped in this helper; the heap is the run's.
        let mut machine =
            unsafe { Machine::new(state.prepared, state.depth_limit, ctx.depth, heap) };
        // A panic must not unwind through compiled frames, which have no unwind tables.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| unsafe {
            machine.execute(func as usize, pc as usize, frame)
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
