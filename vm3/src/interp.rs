//! The reference interpreter: a dispatch loop over the 8-byte instructions.
//!
//! The opcode handlers are the `#[stencil]` functions of the `stencils` crate,
//! instantiated with [`Machine`] as their tier and inlined into one `match`
//! ([`stencils::dispatch`]). Calls do not recurse on the native stack: activations are
//! records in a `Vec`, frames live on the shared [`RegisterStack`].
//!
//! Safety: the loop reads registers through raw pointers without bounds checks. That is
//! sound because the program is verified (every register index is below its bank's
//! count, every branch target and callee exists, no function falls off its end) and the
//! register stack is sized so that any call passing the depth check fits.

use crate::stack::{clear_frame, RegisterStack, DEFAULT_DEPTH_LIMIT};
use crate::{Const, Function, Heap, RunError, TrapInfo, Value, VerifiedProgram};
use crate::{DEFAULT_HEAP_LIMIT, NOT_A_STRING};
use std::sync::atomic::{AtomicU64, Ordering};
use stencils::heap::HeapView;
use stencils::{
    dispatch, ArgStart, Bank, Callee, ConstF64, ConstI64, ConstStr, Dest, Flow, Inst, RegC, RegF,
    RegI, Table, Tier, Trap,
};

/// Settings of a run.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// Maximum number of live activations (spec §2, default 10,000).
    pub depth_limit: u64,
    /// Bytes a run may allocate on its heap before it traps with `heap limit exceeded`
    /// (default 256 MiB; see [`crate::heap`] for what counts).
    pub heap_limit: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            depth_limit: DEFAULT_DEPTH_LIMIT,
            heap_limit: DEFAULT_HEAP_LIMIT,
        }
    }
}

/// Runs `entry` of a verified program with `args` in the interpreter, on a heap of its
/// own that is freed when the run ends. (The reference interpreter, as tests compare
/// against it; an embedder uses the `jit` crate's `Engine`, which keeps its per-program
/// work and its store from call to call.)
pub fn run(
    program: &VerifiedProgram,
    entry: &str,
    args: &[Value],
    config: &Config,
) -> Result<Value, RunError> {
    run_on(
        program,
        entry,
        args,
        config,
        &mut Heap::new(config.heap_limit),
    )
}

/// Runs `entry` on `heap`, which a caller running many programs can keep: each run
/// frees the objects of the one before, and keeps its slot tables. The heap's limit is
/// set from `config`.
pub fn run_on(
    program: &VerifiedProgram,
    entry: &str,
    args: &[Value],
    config: &Config,
    heap: &mut Heap,
) -> Result<Value, RunError> {
    let func = program
        .function_index(entry)
        .ok_or_else(|| RunError::Arguments(format!("no function named `{entry}`")))?;
    let prepared = Prepared::new(program.clone());
    let mut stack = RegisterStack::new(program, config.depth_limit.max(1))?;
    run_prepared(
        &prepared, func, args, config, None, heap, &mut stack, interpret,
    )
}

/// The interpreter as a tier: executes a begun run.
pub fn interpret(prepared: &Prepared, run: BegunRun<'_>) -> Result<u64, RunError> {
    // SAFETY: the heap began this run and is ours until it ends; the limits' pointers
    // are the run's (`run_prepared`).
    let mut machine =
        unsafe { Machine::new(prepared, run.depth_limit, 1, run.heap, run.limits, None) };
    // SAFETY: verified program, sized stack (module docs).
    unsafe { machine.execute(run.func, 0, run.frame) }.map_err(RunError::Trap)
}

/// A run that has begun, as a tier's `execute` gets it: the entry's frame holds the
/// arguments, the heap holds the run's constants and argument objects.
pub struct BegunRun<'a> {
    /// The entry function's index.
    pub func: usize,
    /// The entry's frame: the base of a register stack sized for `depth_limit`.
    pub frame: *mut u64,
    /// The depth limit the stack was sized for.
    pub depth_limit: u64,
    pub heap: &'a mut Heap,
    /// The run limits, when the run has them: the fuel left (a tier that keeps it
    /// elsewhere while it runs writes back what is left) and the interrupt flag.
    pub limits: Option<RunLimits>,
}

/// An activation a tier-up hook may run natively: its frame holds its parameters (a
/// call) or its whole register state (a loop header reached by a backward jump).
pub struct NativeEntry {
    pub func: usize,
    /// 0 for a call; a loop header (a target of a backward jump) for on-stack
    /// replacement.
    pub pc: usize,
    pub frame: *mut u64,
    /// Live activations, this one included.
    pub depth: u64,
    pub depth_limit: u64,
    pub heap: *mut Heap,
    pub limits: Option<RunLimits>,
}

/// What the interpreter asks, when a machine has one, at calls, tail calls and backward
/// jumps (never elsewhere, so the loop pays nothing per instruction): whether the
/// activation should run natively instead. `None`: keep interpreting (the hook may
/// have counted). `Some`: the activation ran to its end natively, with this result or
/// trap. The `jit` crate implements it for its tier-up (`Tier::Auto`); `vm3` knows
/// nothing of compiled code.
pub trait TierUp {
    /// A call or tail call of `entry.func`: the frame is cleared and holds the
    /// arguments, as the interpreter's own call leaves it.
    ///
    /// # Safety
    /// The entry's pointers are the run's and its frame lies on the run's register
    /// stack at the depth given.
    unsafe fn call(&self, entry: &NativeEntry) -> Option<Result<u64, TrapInfo>>;

    /// A backward jump to `entry.pc`, before the limit check there.
    ///
    /// # Safety
    /// As [`TierUp::call`]; the frame holds the activation's exact register state.
    unsafe fn back_edge(&self, entry: &NativeEntry) -> Option<Result<u64, TrapInfo>>;
}

/// A run's limits as the tiers reach them.
#[derive(Clone, Copy, Debug)]
pub struct RunLimits {
    /// Fuel left: one unit per check (see [`crate::Function::limit_checks`]).
    pub fuel: *mut u64,
    /// Non-zero when another thread asks the run to stop.
    pub interrupt: *const AtomicU64,
}

/// What every tier does around executing a program: begins the run on `heap` (limit,
/// constants), places the arguments on `stack` (made anew when it does not fit the
/// program and the depth limit), calls `execute`, reads the result out of the heap, and
/// ends the run whatever happened.
#[allow(clippy::too_many_arguments)] // What a run is made of; one caller per tier.
pub fn run_prepared(
    prepared: &Prepared,
    func: usize,
    args: &[Value],
    config: &Config,
    limits: Option<(u64, &AtomicU64)>,
    heap: &mut Heap,
    stack: &mut RegisterStack,
    execute: impl FnOnce(&Prepared, BegunRun<'_>) -> Result<u64, RunError>,
) -> Result<Value, RunError> {
    if config.depth_limit == 0 {
        // The entry's own activation counts: no run fits a limit of 0 (it used to be
        // taken as 1 without a word).
        return Err(RunError::Arguments(
            "the depth limit must be at least 1 (the entry function's activation counts)".into(),
        ));
    }
    let program = &prepared.program;
    if !stack.fits(program, config.depth_limit) {
        *stack = RegisterStack::new(program, config.depth_limit)?;
    }
    heap.set_limit(config.heap_limit);
    heap.begin_run(program);
    let mut fuel = limits.map_or(0, |(fuel, _)| fuel);
    let limits = limits.map(|(_, interrupt)| RunLimits {
        fuel: &mut fuel,
        interrupt,
    });
    let result = stack
        .place_arguments(program, func, args, heap)
        .and_then(|()| {
            let run = BegunRun {
                func,
                frame: stack.base(),
                depth_limit: config.depth_limit,
                heap: &mut *heap,
                limits,
            };
            let bits = execute(prepared, run)?;
            heap.value_of(program.functions[func].result, bits)
                .map_err(RunError::Result)
        });
    heap.end_run();
    result
}

/// A verified program with constants decoded for the loop, made once per program: the
/// JIT and a store keep one.
pub struct Prepared {
    program: VerifiedProgram,
    funcs: Vec<PreparedFn>,
    /// Where a run with limits checks them ([`Function::limit_checks`]), instruction
    /// after instruction of every function. Program-wide arrays, not one per function:
    /// a module of many functions is made (and dropped) with a few allocations.
    limit_checks: Vec<bool>,
    /// Constant-pool entries as register bits, pool after pool; a string constant holds
    /// its program-wide number (its handle is in the heap's table of constants).
    consts: Vec<u64>,
    /// Frame slot of each parameter, function after function.
    param_slots: Vec<usize>,
}

/// Where a function's parts of the program-wide arrays of [`Prepared`] begin.
struct PreparedFn {
    limit_checks: usize,
    consts: usize,
    param_slots: usize,
}

impl Prepared {
    pub fn new(program: VerifiedProgram) -> Prepared {
        let string_ids = program.string_constant_ids();
        let functions = program.functions();
        let mut prepared = Prepared {
            funcs: Vec::with_capacity(functions.len()),
            limit_checks: Vec::with_capacity(functions.iter().map(|f| f.code.len()).sum()),
            consts: Vec::with_capacity(functions.iter().map(|f| f.consts.len()).sum()),
            param_slots: Vec::with_capacity(functions.iter().map(|f| f.params.len()).sum()),
            program: program.clone(),
        };
        for (func, ids) in functions.iter().zip(string_ids) {
            prepared.funcs.push(PreparedFn {
                limit_checks: prepared.limit_checks.len(),
                consts: prepared.consts.len(),
                param_slots: prepared.param_slots.len(),
            });
            func.limit_checks_into(&mut prepared.limit_checks);
            prepared
                .consts
                .extend(func.consts.iter().zip(ids).map(|(c, id)| match c {
                    Const::I64(v) => *v as u64,
                    Const::F64(v) => v.to_bits(),
                    Const::Str(_) => {
                        debug_assert_ne!(id, NOT_A_STRING);
                        id as u64
                    }
                }));
            prepared
                .param_slots
                .extend((func.params.iter().enumerate()).map(|(k, &b)| func.regs.slot(b, k)));
        }
        prepared
    }

    /// The frame slot of each parameter of `func`.
    #[inline(always)]
    fn param_slots(&self, func: usize) -> &[usize] {
        let start = self.funcs[func].param_slots;
        &self.param_slots[start..start + self.func(func).params.len()]
    }

    pub fn program(&self) -> &VerifiedProgram {
        &self.program
    }

    /// Makes the frame of `func` at `frame` that of a fresh activation whose arguments
    /// are already in their parameter slots: every other register cleared, as the
    /// interpreter's call leaves a callee's frame (spec §1).
    ///
    /// # Safety
    /// `frame` must hold `func`'s frame on a register stack.
    pub unsafe fn clear_all_but_parameters(&self, func: usize, frame: *mut u64) {
        let slots = self.param_slots(func);
        let mut kept = [0u64; 16];
        let mut spilled = Vec::new();
        let saved: &mut [u64] = if slots.len() <= kept.len() {
            &mut kept[..slots.len()]
        } else {
            spilled.resize(slots.len(), 0);
            &mut spilled
        };
        // SAFETY: the caller's contract; parameter slots lie in the frame.
        unsafe {
            for (bits, &slot) in saved.iter_mut().zip(slots) {
                *bits = *frame.add(slot);
            }
            clear_frame(self.func(func), frame);
            for (&bits, &slot) in saved.iter().zip(slots) {
                *frame.add(slot) = bits;
            }
        }
    }

    #[inline(always)]
    fn func(&self, index: usize) -> &Function {
        &self.program.functions[index]
    }
}

/// What a caller left behind when it called: where to continue and where the result goes.
struct Activation {
    func: usize,
    pc: usize,
    frame: *mut u64,
    dest: Dest,
}

/// The interpreter's state; also the tier its handlers run in.
pub struct Machine<'a> {
    prog: &'a Prepared,
    func: usize,
    frame: *mut u64,
    ri: *mut i64,
    rf: *mut f64,
    rc: *mut u64,
    consts: *const u64,
    calls: Vec<Activation>,
    depth: u64,
    depth_limit: u64,
    /// Arguments of a tail call, staged while the frame is rebuilt.
    staged: Vec<u64>,
    /// The run limits, if the run has them.
    limits: Option<RunLimits>,
    /// The run's heap. A raw pointer: compiled code that deoptimised hands its heap to
    /// a machine from inside a helper.
    heap: *mut Heap,
    view: *const HeapView,
    /// Asked at calls, tail calls and backward jumps whether to run natively.
    tier_up: Option<&'a dyn TierUp>,
}

impl<'a> Machine<'a> {
    /// A machine whose first activation will be at call depth `depth`, on `heap`.
    ///
    /// # Safety
    /// `heap` must point to a heap that has begun the run, outlives the machine, and is
    /// used by nothing else while the machine executes; so must the limits' pointers.
    pub unsafe fn new(
        prog: &'a Prepared,
        depth_limit: u64,
        depth: u64,
        heap: *mut Heap,
        limits: Option<RunLimits>,
        tier_up: Option<&'a dyn TierUp>,
    ) -> Machine<'a> {
        Machine {
            prog,
            func: 0,
            frame: std::ptr::null_mut(),
            ri: std::ptr::null_mut(),
            rf: std::ptr::null_mut(),
            rc: std::ptr::null_mut(),
            consts: std::ptr::null(),
            calls: Vec::new(),
            depth,
            depth_limit,
            staged: Vec::new(),
            limits,
            heap,
            view: unsafe { (*heap).view() },
            tier_up,
        }
    }

    #[inline(always)]
    fn heap_mut(&mut self) -> &mut Heap {
        // SAFETY: `new`'s contract; nothing else uses the heap while the machine runs.
        unsafe { &mut *self.heap }
    }

    /// Makes `func` with its frame at `frame` the current activation.
    #[inline(always)]
    fn enter(&mut self, func: usize, frame: *mut u64) {
        let regs = self.prog.func(func).regs;
        self.func = func;
        self.frame = frame;
        // SAFETY: the banks lie inside the frame (RegCounts::slot).
        unsafe {
            self.ri = frame as *mut i64;
            self.rf = frame.add(regs.i64 as usize) as *mut f64;
            self.rc = frame.add(regs.i64 as usize + regs.f64 as usize);
        }
        // SAFETY: the function's pool lies in the program-wide one (an empty pool at its
        // end is never read).
        self.consts = unsafe { self.prog.consts.as_ptr().add(self.prog.funcs[func].consts) };
    }

    #[inline(always)]
    fn reg_ptr(&self, bank: Bank, index: usize) -> *mut u64 {
        // SAFETY: verified register index.
        unsafe {
            match bank {
                Bank::I64 => self.ri.add(index) as *mut u64,
                Bank::F64 => self.rf.add(index) as *mut u64,
                Bank::Cell => self.rc.add(index),
            }
        }
    }

    /// Runs `func` from instruction `pc` on the frame at `frame`, whose parameters (or,
    /// when resuming after a deopt, all registers) are already in place, until that
    /// activation returns. Returns the result's bits.
    ///
    /// # Safety
    /// `frame` must lie in a [`RegisterStack`] built for this program with this
    /// machine's depth limit, at a depth consistent with the machine's depth.
    pub unsafe fn execute(
        &mut self,
        func: usize,
        pc: usize,
        frame: *mut u64,
    ) -> Result<u64, TrapInfo> {
        // A loop per combination, so that a run without limits does not test for them
        // per instruction, nor one without a tier-up hook for backward jumps. The two
        // loops with a hook live in a function of their own, so that this one keeps the
        // code it had before tier-up (two copies of the dispatch, not four, which cost
        // the plain interpreter a fifth of its speed on some programs).
        if self.tier_up.is_some() {
            return unsafe { self.execute_tiering_up(func, pc, frame) };
        }
        if self.limits.is_some() {
            unsafe { self.execute_loop::<true, false>(func, pc, frame) }
        } else {
            unsafe { self.execute_loop::<false, false>(func, pc, frame) }
        }
    }

    /// [`Machine::execute`] with a tier-up hook.
    #[inline(never)]
    unsafe fn execute_tiering_up(
        &mut self,
        func: usize,
        pc: usize,
        frame: *mut u64,
    ) -> Result<u64, TrapInfo> {
        if self.limits.is_some() {
            unsafe { self.execute_loop::<true, true>(func, pc, frame) }
        } else {
            unsafe { self.execute_loop::<false, true>(func, pc, frame) }
        }
    }

    /// [`Machine::execute`], checking the run limits where `LIMITS`, asking the tier-up
    /// hook at backward jumps where `TIER_UP`.
    #[inline(always)]
    unsafe fn execute_loop<const LIMITS: bool, const TIER_UP: bool>(
        &mut self,
        func: usize,
        pc: usize,
        frame: *mut u64,
    ) -> Result<u64, TrapInfo> {
        self.enter(func, frame);
        let mut code: *const Inst = self.prog.func(func).code.as_ptr();
        let mut pc = pc;
        loop {
            if LIMITS && self.prog.limit_checks[self.prog.funcs[self.func].limit_checks + pc] {
                if let Some(trap) = self.check_limits() {
                    return Err(self.trap_info(trap, pc));
                }
            }
            // SAFETY: pc stays inside the function: verified targets, no fall-off.
            let inst = unsafe { *code.add(pc) };
            let mut flow = dispatch(self, inst);
            if TIER_UP {
                // Only this loop asks the hook, so the plain loops keep the code they had
                // before tier-up. An activation the hook runs natively to its end comes
                // back as if it had returned.
                let native = match flow {
                    // On-stack replacement: the hook may finish the activation natively
                    // from the loop header, before the limit check there.
                    Flow::Jump if inst.c as u16 as usize <= pc => {
                        self.back_edge(inst.c as u16 as usize)
                    }
                    // A call or tail call set up the callee's activation (frame cleared,
                    // arguments in place): the hook may run all of it natively.
                    Flow::Enter | Flow::TailCall => {
                        if flow == Flow::Enter {
                            if let Some(caller) = self.calls.last_mut() {
                                caller.pc = pc;
                            }
                        }
                        self.entered()
                    }
                    _ => None,
                };
                match native {
                    Some(Ok(bits)) => flow = Flow::Return(bits),
                    Some(Err(trap)) => return Err(trap),
                    None => {}
                }
            }
            match flow {
                Flow::Next | Flow::Deopt => pc += 1,
                Flow::Jump => pc = inst.c as u16 as usize,
                Flow::Enter => {
                    // A call: remember where the caller continues.
                    if let Some(caller) = self.calls.last_mut() {
                        caller.pc = pc;
                    }
                    code = self.prog.func(self.func).code.as_ptr();
                    pc = 0;
                }
                Flow::TailCall => {
                    code = self.prog.func(self.func).code.as_ptr();
                    pc = 0;
                }
                Flow::Return(bits) => match self.calls.pop() {
                    None => return Ok(bits),
                    Some(caller) => {
                        self.depth -= 1;
                        self.enter(caller.func, caller.frame);
                        unsafe {
                            *self.reg_ptr(caller.dest.__tier_bank(), caller.dest.__tier_raw()) =
                                bits
                        };
                        code = self.prog.func(self.func).code.as_ptr();
                        pc = caller.pc + 1;
                    }
                },
                Flow::Trap(trap) => return Err(self.trap_info(trap, pc)),
                // An opcode the verifier would have refused.
                Flow::Unwind => unreachable!(
                    "unverified instruction {inst:?} in {}",
                    self.prog.func(self.func).name
                ),
            }
        }
    }

    /// Asks the hook whether the current activation continues natively at loop header
    /// `pc`.
    #[inline(never)]
    fn back_edge(&mut self, pc: usize) -> Option<Result<u64, TrapInfo>> {
        let hook = self.tier_up?;
        let entry = NativeEntry {
            func: self.func,
            pc,
            frame: self.frame,
            depth: self.depth,
            depth_limit: self.depth_limit,
            heap: self.heap,
            limits: self.limits,
        };
        // SAFETY: the machine's own run state; the frame is exact.
        unsafe { hook.back_edge(&entry) }
    }

    /// Asks the hook whether the activation a call or tail call just entered (its frame
    /// cleared, its arguments in place) runs natively to its end.
    #[cold]
    #[inline(never)]
    fn entered(&mut self) -> Option<Result<u64, TrapInfo>> {
        let hook = self.tier_up?;
        let entry = NativeEntry {
            func: self.func,
            pc: 0,
            frame: self.frame,
            depth: self.depth,
            depth_limit: self.depth_limit,
            heap: self.heap,
            limits: self.limits,
        };
        // SAFETY: the machine's own run state; the frame is cleared with its arguments.
        unsafe { hook.call(&entry) }
    }

    fn trap_info(&self, trap: Trap, pc: usize) -> TrapInfo {
        TrapInfo {
            trap,
            func: self.func,
            function: self.prog.func(self.func).name.clone(),
            pc: pc as u32,
        }
    }

    /// Copies the arguments of a call from the current frame (`B + k` of each
    /// parameter's bank) into `dst`, the callee's frame, at the callee's parameter slots.
    #[inline(always)]
    fn copy_arguments(&self, callee: usize, args: ArgStart, dst: *mut u64) {
        let params = &self.prog.func(callee).params;
        for (k, (&bank, &slot)) in params.iter().zip(self.prog.param_slots(callee)).enumerate() {
            // SAFETY: verified argument registers; the callee frame fits the stack.
            unsafe { *dst.add(slot) = *self.reg_ptr(bank, args.__tier_raw() + k) };
        }
    }
}

impl Tier for Machine<'_> {
    #[inline(always)]
    fn i(&self, r: RegI) -> i64 {
        unsafe { *self.ri.add(r.__tier_raw()) }
    }
    #[inline(always)]
    fn set_i(&mut self, r: RegI, v: i64) {
        unsafe { *self.ri.add(r.__tier_raw()) = v }
    }
    #[inline(always)]
    fn f(&self, r: RegF) -> f64 {
        unsafe { *self.rf.add(r.__tier_raw()) }
    }
    #[inline(always)]
    fn set_f(&mut self, r: RegF, v: f64) {
        unsafe { *self.rf.add(r.__tier_raw()) = v }
    }
    #[inline(always)]
    fn cell(&self, r: RegC) -> u64 {
        unsafe { *self.rc.add(r.__tier_raw()) }
    }
    #[inline(always)]
    fn set_cell(&mut self, r: RegC, v: u64) {
        unsafe { *self.rc.add(r.__tier_raw()) = v }
    }
    /// Only compiled prologues use this; here the registers are i64 indexes.
    #[inline(always)]
    fn fill_slots(&mut self, from: RegI, to: RegI, bits: u64) {
        for r in from.__tier_raw()..to.__tier_raw() {
            unsafe { *self.ri.add(r) = bits as i64 }
        }
    }

    #[inline(always)]
    fn const_i64(&self, k: ConstI64) -> i64 {
        unsafe { *self.consts.add(k.__tier_raw()) as i64 }
    }
    #[inline(always)]
    fn const_i64_at(&self, k: ConstI64, i: usize) -> i64 {
        unsafe { *self.consts.add(k.__tier_raw() + i) as i64 }
    }
    #[inline(always)]
    fn const_f64(&self, k: ConstF64) -> f64 {
        f64::from_bits(unsafe { *self.consts.add(k.__tier_raw()) })
    }
    #[inline(always)]
    fn lookup(&self, t: Table, index: i64) -> Option<i64> {
        let table = &self.prog.func(self.func).tables[t.__tier_raw()];
        usize::try_from(index)
            .ok()
            .and_then(|i| table.get(i).copied())
    }

    #[inline(always)]
    fn sqrt(&self, x: f64) -> f64 {
        x.sqrt()
    }
    #[inline(always)]
    fn fma(&self, x: f64, y: f64, z: f64) -> f64 {
        x.mul_add(y, z)
    }
    #[inline(always)]
    fn fma_baseline(&self, x: f64, y: f64, z: f64) -> f64 {
        x.mul_add(y, z)
    }

    #[inline(always)]
    fn call(&mut self, callee: Callee, args: ArgStart, dest: Dest) -> Flow {
        if self.depth >= self.depth_limit {
            return Flow::Trap(Trap::CallStackOverflow);
        }
        let prog = self.prog;
        let frame = unsafe { self.frame.add(prog.func(self.func).frame_slots()) };
        unsafe { clear_frame(prog.func(callee.__tier_raw()), frame) };
        self.copy_arguments(callee.__tier_raw(), args, frame);
        self.depth += 1;
        self.calls.push(Activation {
            func: self.func,
            pc: 0,
            frame: self.frame,
            dest,
        });
        self.enter(callee.__tier_raw(), frame);
        Flow::Enter
    }

    #[inline(always)]
    fn tail_call(&mut self, callee: Callee, args: ArgStart) -> Flow {
        let prog = self.prog;
        let target = prog.func(callee.__tier_raw());
        let mut staged = std::mem::take(&mut self.staged);
        staged.clear();
        staged.extend(
            target
                .params
                .iter()
                .enumerate()
                .map(|(k, &bank)| unsafe { *self.reg_ptr(bank, args.__tier_raw() + k) }),
        );
        let frame = self.frame;
        unsafe {
            clear_frame(target, frame);
            for (&slot, &bits) in prog.param_slots(callee.__tier_raw()).iter().zip(&staged) {
                *frame.add(slot) = bits;
            }
        }
        self.staged = staged;
        self.enter(callee.__tier_raw(), frame);
        Flow::TailCall
    }

    #[inline(always)]
    fn check_limits(&mut self) -> Option<Trap> {
        let limits = self.limits?;
        // SAFETY: `new`'s contract: the pointers are the run's.
        unsafe {
            if (*limits.interrupt).load(Ordering::Relaxed) != 0 {
                return Some(Trap::Interrupted);
            }
            if *limits.fuel == 0 {
                return Some(Trap::OutOfFuel);
            }
            *limits.fuel -= 1;
        }
        None
    }

    #[inline(always)]
    fn heap(&self) -> &HeapView {
        // SAFETY: the heap keeps its view at one address and current.
        unsafe { &*self.view }
    }
    #[inline(always)]
    fn str_const(&self, k: ConstStr) -> u64 {
        // The pool entry holds the string's program-wide number.
        let id = unsafe { *self.consts.add(k.__tier_raw()) } as usize;
        // SAFETY: `id` is one of the verified program's string constants, all of which
        // `Heap::begin_run` allocated.
        unsafe { self.heap().str_const(id) }
    }
    #[inline(always)]
    fn new_list(&mut self, cap: i64) -> u64 {
        self.heap_mut().new_list(cap)
    }
    #[inline(always)]
    fn new_map(&mut self, cap: i64) -> u64 {
        self.heap_mut().new_map(cap)
    }
    #[inline(always)]
    fn concat(&mut self, a: u64, b: u64) -> u64 {
        self.heap_mut().concat(a, b)
    }
    #[inline(always)]
    fn list_push_grow(&mut self, list: u64, item: u64) -> u64 {
        self.heap_mut().list_push_grow(list, item)
    }
    #[inline(always)]
    fn map_set_grow(&mut self, map: u64, key: i64, value: i64) -> u64 {
        self.heap_mut().map_set_grow(map, key, value)
    }
}
