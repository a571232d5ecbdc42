//! Lowering: which stencils, with which hole values, implement each instruction.
//!
//! Most instructions are one stencil: the register variant of the opcode's own that
//! matches where the function keeps each operand (`regalloc`). The rest is built from
//! other stencils, chiefly the variants of `MovI64` and `MovF64`, which copy between
//! any two places (a frame slot, any 8-byte one, or a cached machine register):
//! - a function has two entries: the frame entry loads its cached parameters from the
//!   frame (callers outside compiled code), the register entry takes them in machine
//!   registers (compiled callers); then the prologue clears every non-parameter register
//!   (spec §1): frame slots with one `ConstI64K 0` or `NullSlot` per slot for short runs
//!   and `ZeroRange` / `NullRange` for long ones, cached registers with their variants;
//! - a call saves the cached registers read after it to their slots, moves each
//!   argument where the callee keeps that parameter (its machine register or its frame,
//!   just past the caller's) as a parallel move, runs the call stencil and reloads;
//! - a tail call moves the arguments to the callee's places in the *same* frame as a
//!   parallel move (a source may be another move's destination), then jumps;
//! - a `Deopt` first stores every cached register to its slot, since the interpreter
//!   resumes from the frame; an operand a stencil reads only from its slot
//!   (`FmaF64`'s X and Y) is stored there first.

use crate::regalloc::{Assignment, MachineReg};
use std::ops::Range;
use stencils::variant::Loc;
use stencils::{
    Bank, ConstKind, Field, Inst, Internal, Opcode, OperandKind, IMM_BIAS, OPCODE_COUNT,
};
use vm3::{Function, Program};

/// A hole value the layout decides: an address in the region's constant pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OperandValue {
    Known(u32),
    /// The 8-byte constant `index` of the function's pool.
    Const(u32),
    /// The table `index` of the function, laid out as length then entries.
    Table(u32),
    /// Word `index` of the data the compiler made (`Lowered::data`).
    Data(u32),
}

/// One stencil instance of the code. Kept small (a compile writes and reads one per
/// instruction or more): every hole value the compiler knows fits 32 bits (frame
/// offsets, biased immediates, string numbers, shift counts and masks).
#[derive(Clone, Debug)]
pub struct Piece {
    /// Index into the stencil table.
    pub stencil: u32,
    /// Values of `_JIT_A` .. `_JIT_D`.
    pub operands: [OperandValue; 4],
    /// The instruction this piece belongs to (the prologue uses 0).
    pub pc: u32,
    /// Branch target, as an instruction index; for a call (`callee` set), the index of
    /// its out-of-line `CallStackOverflow` among the function's cold pieces.
    pub target: Option<u32>,
    /// Called function.
    pub callee: Option<u32>,
}

/// What a compile covers.
#[derive(Clone, Copy)]
pub enum Scope<'a> {
    /// Every function, calls being direct (the compiled tier, ahead-of-time objects).
    Program,
    /// A unit compiled alone (tier-up): the role of every function of the program, and
    /// the register assignment of each [`Role::Linked`] one (kept from its own unit).
    Unit(&'a [Role], &'a dyn Fn(usize) -> Assignment),
}

/// What a function is to a unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Compiled in another unit of the same pool, within a direct call's reach: calls
    /// go to its register entry at this address, arguments where it keeps them.
    Linked(u64),
    /// Not called from the unit: no code.
    Absent,
    /// Called from the unit but not in it: a bridge stub stands for it, a `Deopt` whose
    /// status names the function at pc [`BRIDGE_PC`]` + 1`, which the runtime reads as
    /// a fresh activation (`runtime::vm3_deopt_resume`). Callers see it as a function
    /// that keeps nothing in machine registers.
    Bridge,
    /// Compiled in the unit, with an on-stack-replacement entry per loop header.
    Compiled,
}

/// The `_JIT_PC` of a bridge stub. A deopt resumes at its pc + 1, and the Deopt
/// stencil folds that + 1 into the hole's addend (x86-64 `mov ecx, imm32`), so the
/// brief's `u32::MAX` would patch `2^32`, out of the field's reach: one less, and the
/// status's pc is `u32::MAX`, which no instruction has.
pub const BRIDGE_PC: u32 = u32::MAX - 1;

/// An on-stack-replacement entry: loads every cached register from the frame and jumps
/// to the code of loop header `pc` (its `CheckLimits` piece first, if any).
#[derive(Clone, Copy, Debug)]
pub struct OsrEntry {
    pub func: u32,
    pub pc: u32,
    /// Its first piece.
    pub piece: u32,
}

/// A whole program as one array of pieces, function after function.
pub struct Lowered {
    pub pieces: Vec<Piece>,
    pub functions: Vec<LoweredFunction>,
    /// First piece (an index into `pieces`) of each instruction, function after function.
    pub inst_start: Vec<u32>,
    /// Words the compiler computed for stencils to read (division magic), laid out
    /// with the constants.
    pub data: Vec<u64>,
    /// On-stack-replacement entries (only in units), in function and pc order.
    pub osr: Vec<OsrEntry>,
}

/// Where one function's pieces are.
pub struct LoweredFunction {
    /// Its pieces: the frame entry (loads the cached parameters from the frame, for
    /// callers outside compiled code), the prologue, then the instructions.
    pub pieces: Range<u32>,
    /// The first piece of the prologue: where compiled callers enter, with the cached
    /// parameters in their machine registers.
    pub register_entry: u32,
    /// The first piece after the prologue.
    pub body: u32,
    /// The first piece after the instructions: the out-of-line code of their rare paths
    /// (the depth-limit traps of calls whose stencil branches to one), up to
    /// `pieces.end`.
    pub cold: u32,
    /// Its instructions' entries in `Lowered::inst_start`.
    pub insts: Range<u32>,
    /// Where its out-of-line code ends and its on-stack-replacement entries (units
    /// only) begin.
    pub code_end: u32,
    /// The address of its register entry when it lies outside this code
    /// ([`Role::Linked`]).
    pub linked: Option<u64>,
}

impl Lowered {
    /// The first piece of instruction `pc` of function `func`.
    pub fn inst_piece(&self, func: usize, pc: usize) -> usize {
        self.inst_start[self.functions[func].insts.start as usize + pc] as usize
    }
}

/// Slots above this count are zeroed with a loop rather than one store each.
const UNROLLED_ZEROING: usize = 4;

/// The table index of variant `locs` of base stencil `base` (see `stencils::variant`).
fn variant(base: usize, locs: [Loc; 3]) -> usize {
    crate::variants::stencil_index(base, locs)
}

fn internal_stencil(which: Internal) -> usize {
    OPCODE_COUNT + which as usize
}

fn known(v: u64) -> OperandValue {
    debug_assert!(
        v <= u32::MAX as u64,
        "hole value {v:#x} of the compiler's own"
    );
    OperandValue::Known(v as u32)
}

fn piece(stencil: usize, pc: u32, operands: [OperandValue; 4]) -> Piece {
    Piece {
        stencil: stencil as u32,
        operands,
        pc,
        target: None,
        callee: None,
    }
}

fn zero_slot(pc: u32, slot: u64) -> Piece {
    piece(
        Opcode::ConstI64K as usize,
        pc,
        [known(slot * 8), known(0), known(IMM_BIAS as u64), known(0)],
    )
}

fn null_slot(pc: u32, slot: u64) -> Piece {
    piece(
        internal_stencil(Internal::NullSlot),
        pc,
        [known(slot * 8), known(0), known(0), known(0)],
    )
}

/// Optional instructions the code may use, decided once per compile.
#[derive(Clone, Copy, Debug)]
pub struct CpuFeatures {
    /// A fused multiply-add instruction (baseline on aarch64, optional on x86-64).
    pub fma: bool,
}

impl CpuFeatures {
    /// What this CPU offers.
    pub fn detect() -> CpuFeatures {
        #[cfg(target_arch = "x86_64")]
        let fma = std::arch::is_x86_feature_detected!("fma");
        #[cfg(not(target_arch = "x86_64"))]
        let fma = true;
        CpuFeatures { fma }
    }

    /// Only the target's baseline instruction set.
    pub fn baseline() -> CpuFeatures {
        CpuFeatures {
            fma: cfg!(not(target_arch = "x86_64")),
        }
    }
}

/// Lowers every function of `program` (one allocation per array, not per function:
/// compile speed is the point of copy-and-patch).
///
/// `pieces` and `inst_start` are buffers to fill (emptied first), so that a thread that
/// compiles again reuses their memory (`compile::Buffers`).
/// `overflow_out_of_line`: the call stencils branch to an out-of-line
/// `CallStackOverflow` (x86-64's do: see `stencils::jit`'s `call`), which each call then
/// gets after its function's code.
#[allow(clippy::too_many_arguments)] // The passes' inputs; one caller (`compile::plan`).
pub fn lower(
    program: &Program,
    assignments: &[Assignment],
    scope: Scope,
    cpu: CpuFeatures,
    run_limits: bool,
    overflow_out_of_line: bool,
    mut pieces: Vec<Piece>,
    mut inst_start: Vec<u32>,
) -> Lowered {
    let insts: usize = program.functions.iter().map(|f| f.code.len()).sum();
    pieces.clear();
    pieces.reserve(2 * insts + 4 * program.functions.len());
    inst_start.clear();
    inst_start.reserve(insts);
    let mut lowered = Lowered {
        pieces,
        functions: Vec::with_capacity(program.functions.len()),
        inst_start,
        data: Vec::new(),
        osr: Vec::new(),
    };
    let (mut string_ids, mut next_string) = (Vec::new(), 0);
    let (mut moves, mut cold) = (Vec::new(), Vec::new());
    for (f, func) in program.functions.iter().enumerate() {
        next_string = func.string_constant_ids(next_string, &mut string_ids);
        let assignment = &assignments[f];
        let first = lowered.pieces.len() as u32;
        let role = match scope {
            Scope::Program => Role::Compiled,
            Scope::Unit(roles, _) => roles[f],
        };
        if role != Role::Compiled {
            if role == Role::Bridge {
                let deopt = variant(Opcode::Deopt as usize, [Loc::Frame; 3]);
                lowered.pieces.push(piece(deopt, BRIDGE_PC, [known(0); 4]));
            }
            let end = lowered.pieces.len() as u32;
            let insts = lowered.inst_start.len() as u32;
            lowered.functions.push(LoweredFunction {
                pieces: first..end,
                register_entry: first,
                body: end,
                insts: insts..insts,
                cold: end,
                code_end: end,
                linked: match role {
                    Role::Linked(address) => Some(address),
                    _ => None,
                },
            });
            continue;
        }
        // The entry from outside compiled code: the arguments are in the frame.
        for (k, &bank) in func.params.iter().enumerate() {
            if let Some(m) = assignment.machine_reg(bank, k) {
                let slot = Place::Slot(func.regs.slot(bank, k) as u64 * 8);
                lowered.pieces.push(move_piece(0, Place::from(m), slot));
            }
        }
        let register_entry = lowered.pieces.len() as u32;
        lower_prologue(func, assignment, &mut lowered.pieces);
        let body = lowered.pieces.len() as u32;
        let first_inst = lowered.inst_start.len() as u32;
        let context = InstContext {
            program,
            func,
            string_ids: &string_ids,
            cpu,
            assignments,
            assignment,
            overflow_out_of_line,
        };
        // Run limits: a check first in each instruction `limit_checks` names, so that
        // branches to it run the check too (`CheckLimits`; none without run limits).
        let limit_checks = run_limits.then(|| func.limit_checks());
        for (pc, &inst) in func.code.iter().enumerate() {
            lowered.inst_start.push(lowered.pieces.len() as u32);
            if limit_checks.as_ref().is_some_and(|checks| checks[pc]) {
                let check = variant(internal_stencil(Internal::CheckLimits), [Loc::Frame; 3]);
                lowered.pieces.push(piece(check, pc as u32, [known(0); 4]));
            }
            lower_inst(
                &context,
                pc as u32,
                inst,
                &mut lowered.pieces,
                &mut lowered.data,
                &mut moves,
                &mut cold,
            );
        }
        let cold_start = lowered.pieces.len() as u32;
        lowered.pieces.append(&mut cold);
        let code_end = lowered.pieces.len() as u32;
        if let Scope::Unit(..) = scope {
            lower_osr_entries(f, func, assignment, &mut lowered);
        }
        lowered.functions.push(LoweredFunction {
            pieces: first..lowered.pieces.len() as u32,
            register_entry,
            body,
            cold: cold_start,
            insts: first_inst..lowered.inst_start.len() as u32,
            code_end,
            linked: None,
        });
    }
    lowered
}

/// An entry per loop header (the targets of backward branches, where
/// `Function::limit_checks` holds past pc 0; pc 0 too when a branch targets it): the
/// interpreter's frame is exact there, so the entry loads every cached register from its
/// slot and jumps to the header's code (past the prologue), its `CheckLimits` piece
/// included, so that fuel is counted where the interpreter counts it.
fn lower_osr_entries(f: usize, func: &Function, assignment: &Assignment, lowered: &mut Lowered) {
    let branches_to_entry = func.code.iter().any(|inst| {
        Opcode::from_u8(inst.code).is_some_and(|op| {
            op.info()
                .operands
                .iter()
                .any(|&(field, kind)| kind == OperandKind::Target && inst.field(field) == 0)
        })
    });
    let headers = func.limit_checks();
    for (pc, _) in headers
        .iter()
        .enumerate()
        .filter(|&(pc, &header)| header && (pc > 0 || branches_to_entry))
    {
        let pc = pc as u32;
        lowered.osr.push(OsrEntry {
            func: f as u32,
            pc,
            piece: lowered.pieces.len() as u32,
        });
        for (bank, reg, m) in assignment.cached() {
            let slot = Place::Slot(func.regs.slot(bank, reg) as u64 * 8);
            lowered.pieces.push(move_piece(pc, Place::from(m), slot));
        }
        let jump = variant(Opcode::Jump as usize, [Loc::Frame; 3]);
        let mut jump = piece(jump, pc, [known(0); 4]);
        jump.target = Some(pc);
        lowered.pieces.push(jump);
    }
}

/// Clears every register but the parameters (spec §1) that can be read before it is
/// written (the others' entry value is never seen: not by the code, and not by the
/// interpreter after a `Deopt`, which then writes them before it reads them too): the
/// frame slots of the registers that live in the frame, run by run between the slots it
/// skips (the number banks to 0, the cells, the last bank, to null), then the cached
/// registers in their machine registers.
fn lower_prologue(func: &Function, assignment: &Assignment, pieces: &mut Vec<Piece>) {
    // Slots skipped: the parameters', the cached registers', and those of registers
    // written before they are read.
    let is_param = |bank: Bank, reg: usize| func.params.get(reg) == Some(&bank);
    let skipped = (0..func.frame_slots()).filter(|&slot| {
        let (bank, reg) = func.regs.register_of_slot(slot);
        is_param(bank, reg)
            || assignment.machine_reg(bank, reg).is_some()
            || !assignment.live_at_entry(func, bank, reg)
    });
    let first_cell = func.regs.slot(Bank::Cell, 0);
    let mut clear_run = |start: usize, end: usize| {
        let numbers = start..end.min(first_cell);
        let cells = start.max(first_cell)..end;
        for (run, slot_piece, range_stencil) in [
            (
                numbers,
                zero_slot as fn(u32, u64) -> Piece,
                Internal::ZeroRange,
            ),
            (cells, null_slot, Internal::NullRange),
        ] {
            if run.len() <= UNROLLED_ZEROING {
                pieces.extend(run.map(|s| slot_piece(0, s as u64)));
            } else {
                let operands = [
                    known(run.start as u64 * 8),
                    known(run.end as u64 * 8),
                    known(0),
                    known(0),
                ];
                pieces.push(piece(internal_stencil(range_stencil), 0, operands));
            }
        }
    };
    let mut next = 0;
    for slot in skipped {
        clear_run(next, slot);
        next = slot + 1;
    }
    clear_run(next.min(func.frame_slots()), func.frame_slots());
    for (bank, reg, m) in assignment.cached() {
        if is_param(bank, reg) || !assignment.live_at_entry(func, bank, reg) {
            continue;
        }
        let (stencil, operands) = match bank {
            Bank::I64 => (
                Opcode::ConstI64K as usize,
                [known(0), known(0), known(IMM_BIAS as u64), known(0)],
            ),
            Bank::F64 => (internal_stencil(Internal::ZeroF64), [known(0); 4]),
            Bank::Cell => (internal_stencil(Internal::NullSlot), [known(0); 4]),
        };
        let locs = [cached_loc(m), Loc::Frame, Loc::Frame];
        pieces.push(piece(variant(stencil, locs), 0, operands));
    }
}

/// What lowering an instruction needs to know besides the instruction.
struct InstContext<'a> {
    program: &'a Program,
    func: &'a Function,
    /// The program-wide number of each string constant of `func`.
    string_ids: &'a [u32],
    cpu: CpuFeatures,
    /// Every function's register assignment (a call passes arguments where its callee
    /// keeps them).
    assignments: &'a [Assignment],
    assignment: &'a Assignment,
    /// Calls branch to an out-of-line depth trap (see [`lower`]).
    overflow_out_of_line: bool,
}

impl InstContext<'_> {
    /// Where register `reg` of `bank` of this function is.
    fn place(&self, bank: Bank, reg: usize) -> Place {
        match self.assignment.machine_reg(bank, reg) {
            Some(m) => Place::from(m),
            None => Place::Slot(self.func.regs.slot(bank, reg) as u64 * 8),
        }
    }

    /// Copies a cached register to its frame slot.
    fn spill(&self, pc: u32, bank: Bank, reg: usize, pieces: &mut Vec<Piece>) {
        if let Some(m) = self.assignment.machine_reg(bank, reg) {
            let slot = Place::Slot(self.func.regs.slot(bank, reg) as u64 * 8);
            pieces.push(move_piece(pc, slot, Place::from(m)));
        }
    }

    /// Reloads a cached register from its frame slot.
    fn fill(&self, pc: u32, bank: Bank, reg: usize, pieces: &mut Vec<Piece>) {
        if let Some(m) = self.assignment.machine_reg(bank, reg) {
            let slot = Place::Slot(self.func.regs.slot(bank, reg) as u64 * 8);
            pieces.push(move_piece(pc, Place::from(m), slot));
        }
    }
}

/// `moves` is scratch for a call's argument moves; `cold` gathers the function's
/// out-of-line pieces.
fn lower_inst(
    cx: &InstContext,
    pc: u32,
    inst: Inst,
    pieces: &mut Vec<Piece>,
    data: &mut Vec<u64>,
    moves: &mut Vec<(Place, Place)>,
    cold: &mut Vec<Piece>,
) {
    let (program, func) = (cx.program, cx.func);
    let op = match Opcode::from_u8(inst.code).expect("verified opcode") {
        // The compiler moves a call's arguments itself, so the call stencils differ only
        // in where the result goes: `CallMixed` is the call of its destination's bank,
        // whose variants keep that destination in a machine register (`CallMixed`'s
        // `Dest` has none, so its result went through the frame).
        Opcode::CallMixed => match Bank::from_u8(inst.flags).expect("verified bank") {
            Bank::I64 => Opcode::CallI64,
            Bank::F64 => Opcode::CallF64,
            Bank::Cell => Opcode::CallCell,
        },
        op => op,
    };
    let info = op.info();
    let known_divisor = match op {
        Opcode::DivI64K | Opcode::ModI64K if inst.c != 0 => Some(inst.c as i64),
        Opcode::DivI64 | Opcode::ModI64 => cx.assignment.known_divisor(pc as usize),
        _ => None,
    };
    if let Some(divisor) = known_divisor {
        let divide = matches!(op, Opcode::DivI64K | Opcode::DivI64);
        pieces.push(divide_by_constant(cx, pc, inst, divide, divisor, data));
        return;
    }
    let base = match op {
        Opcode::FmaF64 if !cx.cpu.fma => internal_stencil(Internal::FmaF64Baseline),
        _ => op as usize,
    };
    if op == Opcode::SubI64K {
        // x - k is x + (-k): one `lea`, where the subtraction of a patched immediate
        // takes LLVM three instructions. The hole holds -k + IMM_BIAS, for k = -32768
        // 65536: still a small non-negative hole value.
        let slot = |reg: u16| known(func.regs.slot(Bank::I64, reg as usize) as u64 * 8);
        let operands = [
            slot(inst.a),
            slot(inst.b),
            known((IMM_BIAS - inst.c as i64) as u64),
            known(0),
        ];
        let locs = [
            cx.assignment.loc(Bank::I64, inst.a as usize),
            cx.assignment.loc(Bank::I64, inst.b as usize),
            Loc::Frame,
        ];
        pieces.push(piece(variant(Opcode::AddI64K as usize, locs), pc, operands));
        return;
    }
    let mut main = piece(base, pc, [known(0); 4]);
    let mut locs = [Loc::Frame; 3];
    // Registers the stencil reads from their frame slots although they are cached
    // (only FmaF64's X and Y).
    let mut read_from_frame: [Option<(Bank, usize)>; 2] = [None; 2];
    let mut dest: Option<(Bank, usize)> = None;
    for &(field, kind) in info.operands {
        let raw = inst.field(field);
        let slot = |bank: Bank, index: usize| known(func.regs.slot(bank, index) as u64 * 8);
        let value = match kind {
            OperandKind::Reg(bank) => {
                locs[field as usize] = cx.assignment.loc(bank, raw as usize);
                if info.writes(field) {
                    dest = Some((bank, raw as usize));
                }
                slot(bank, raw as usize)
            }
            OperandKind::Dest => {
                let bank = Bank::from_u8(inst.flags).expect("verified bank");
                dest = Some((bank, raw as usize));
                slot(bank, raw as usize)
            }
            OperandKind::Imm => known((raw as i16 as i64 + IMM_BIAS) as u64),
            // A string's handle is the run's: the stencil reads it from the heap's
            // table of constants, by the string's number.
            OperandKind::Const(ConstKind::Str) => known(cx.string_ids[raw as usize] as u64),
            OperandKind::Const(_) => OperandValue::Const(raw as u32),
            OperandKind::Table => OperandValue::Table(raw as u32),
            OperandKind::FmaPair => {
                let (x, y) = ((raw & 0xFF) as usize, (raw >> 8) as usize);
                read_from_frame = [Some((Bank::F64, x)), Some((Bank::F64, y))];
                main.operands[3] = slot(Bank::F64, y);
                slot(Bank::F64, x)
            }
            OperandKind::Target => {
                main.target = Some(raw as u32);
                continue;
            }
            OperandKind::Callee => {
                main.callee = Some(raw as u32);
                continue;
            }
            OperandKind::Args(_) => continue,
        };
        main.operands[field_index(field)] = value;
    }
    main.stencil = variant(base, locs) as u32;
    if op == Opcode::Deopt {
        // The interpreter resumes from the frame: it must hold every register.
        for (bank, reg, _) in cx.assignment.cached() {
            cx.spill(pc, bank, reg, pieces);
        }
    }
    for &(bank, reg) in read_from_frame.iter().flatten() {
        cx.spill(pc, bank, reg, pieces);
    }
    let Some(callee) = main.callee.map(|c| c as usize) else {
        pieces.push(main);
        return;
    };
    let args = info.operand(Field::B).map(|_| inst.b as usize).unwrap_or(0);
    let callee_fn = &program.functions[callee];
    let callee_regs = &cx.assignments[callee];
    if info.is_tail_call() {
        // Into the parameters of the same frame; the slot past both layouts is free
        // scratch (the register stack keeps one extra frame).
        argument_moves(cx, callee_fn, callee_regs, args, 0, moves);
        let scratch = func.frame_slots().max(callee_fn.frame_slots()) as u64 * 8;
        emit_moves(pc, moves, scratch, pieces);
        pieces.push(main);
        return;
    }
    // The callee may use every cached machine register: save what is read after the
    // call (the destination is written by it).
    let dest_bit = dest
        .and_then(|(bank, reg)| cx.assignment.machine_reg(bank, reg))
        .map_or(0, |m| m.bit());
    let live_after = cx.assignment.cached_live_after(func, pc as usize) & !dest_bit;
    let saved = || {
        cx.assignment
            .cached()
            .filter(move |&(_, _, m)| live_after & m.bit() != 0)
            .map(|(bank, reg, _)| (bank, reg))
    };
    for (bank, reg) in saved() {
        cx.spill(pc, bank, reg, pieces);
    }
    // Into the callee's frame, just past the caller's, or its machine registers.
    let base = func.frame_slots() as u64 * 8;
    argument_moves(cx, callee_fn, callee_regs, args, base, moves);
    let scratch = base + callee_fn.frame_slots() as u64 * 8;
    emit_moves(pc, moves, scratch, pieces);
    if cx.overflow_out_of_line {
        main.target = Some(cold.len() as u32);
        let overflow = internal_stencil(Internal::CallStackOverflow);
        cold.push(piece(overflow, pc, [known(0); 4]));
    }
    pieces.push(main);
    // A destination the call stencil cannot write in a machine register (`CallMixed`'s)
    // is written to its slot and reloaded.
    if !info.cached || info.operand(Field::A) == Some(OperandKind::Dest) {
        if let Some((bank, reg)) = dest {
            cx.fill(pc, bank, reg, pieces);
        }
    }
    for (bank, reg) in saved() {
        cx.fill(pc, bank, reg, pieces);
    }
}

/// `iA = iB / divisor` (`divide`) or `iA = iB % divisor` for a divisor the compiler
/// knows and that is not 0 (which keeps the trapping stencil): `DivI64K` / `ModI64K`, or
/// `DivI64` / `ModI64` by a register holding a known constant (`constants.rs`). A move,
/// a negation or a zero for 1 and -1, a shift or masks for a small positive power of
/// two, else the magic-number stencils.
fn divide_by_constant(
    cx: &InstContext,
    pc: u32,
    inst: Inst,
    divide: bool,
    divisor: i64,
    data: &mut Vec<u64>,
) -> Piece {
    let (a, b) = (inst.a as usize, inst.b as usize);
    // The shift and the mask are immediates: a small positive hole value.
    let small_power_of_two = divisor > 0 && divisor.count_ones() == 1 && divisor <= 1 << 16;
    let slot = |reg: usize| known(cx.func.regs.slot(Bank::I64, reg) as u64 * 8);
    let loc = |reg: usize| cx.assignment.loc(Bank::I64, reg);
    let (base, operands) = match (divide, divisor) {
        (true, 1) => return move_piece(pc, cx.place(Bank::I64, a), cx.place(Bank::I64, b)),
        (true, -1) => (
            Opcode::NegI64 as usize,
            [slot(a), slot(b), known(0), known(0)],
        ),
        (false, 1 | -1) => {
            let zero = [slot(a), known(0), known(IMM_BIAS as u64), known(0)];
            (Opcode::ConstI64K as usize, zero)
        }
        // A positive power of two: a shift, or masks.
        (true, _) if small_power_of_two => {
            let shift = known((divisor.trailing_zeros() as i64 + IMM_BIAS) as u64);
            let stencil = internal_stencil(Internal::DivI64KPow2);
            (stencil, [slot(a), slot(b), shift, known(0)])
        }
        (false, _) if small_power_of_two => {
            let mask = known((divisor - 1 + IMM_BIAS) as u64);
            let stencil = internal_stencil(Internal::ModI64KPow2);
            (stencil, [slot(a), slot(b), mask, known(0)])
        }
        _ => {
            let words = OperandValue::Data(data.len() as u32);
            data.extend(crate::divide::magic_words(divisor));
            let stencil = if divide {
                Internal::DivI64KMagic
            } else {
                Internal::ModI64KMagic
            };
            (
                internal_stencil(stencil),
                [slot(a), slot(b), words, known(0)],
            )
        }
    };
    let locs = [
        loc(a),
        if base == Opcode::ConstI64K as usize {
            Loc::Frame
        } else {
            loc(b)
        },
        Loc::Frame,
    ];
    piece(variant(base, locs), pc, operands)
}

fn field_index(field: Field) -> usize {
    match field {
        Field::A => 0,
        Field::B => 1,
        Field::C => 2,
    }
}

/// A place a value can be moved between: a frame slot (a byte offset from the frame)
/// or a cached machine register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    Slot(u64),
    Int(u8),
    Float(u8),
}

impl From<MachineReg> for Place {
    fn from(m: MachineReg) -> Place {
        match m {
            MachineReg::Int(k) => Place::Int(k),
            MachineReg::Float(k) => Place::Float(k),
        }
    }
}

fn cached_loc(m: MachineReg) -> Loc {
    match m {
        MachineReg::Int(k) | MachineReg::Float(k) => Loc::Cached(k),
    }
}

/// `dst = src` for two places of one bank: `MovI64` for integer registers and any two
/// slots, `MovF64` when a float register is involved.
fn move_piece(pc: u32, dst: Place, src: Place) -> Piece {
    let float = matches!(dst, Place::Float(_)) || matches!(src, Place::Float(_));
    let base = if float {
        Opcode::MovF64
    } else {
        Opcode::MovI64
    } as usize;
    let part = |p: Place| match p {
        Place::Slot(offset) => (Loc::Frame, known(offset)),
        Place::Int(k) | Place::Float(k) => (Loc::Cached(k), known(0)),
    };
    let ((la, a), (lb, b)) = (part(dst), part(src));
    piece(
        variant(base, [la, lb, Loc::Frame]),
        pc,
        [a, b, known(0), known(0)],
    )
}

/// The moves that put a call's arguments (`args + k` in the caller) where the callee
/// keeps its parameters: its machine registers, or its frame at byte offset `base`.
fn argument_moves(
    cx: &InstContext,
    callee: &Function,
    callee_regs: &Assignment,
    args: usize,
    base: u64,
    moves: &mut Vec<(Place, Place)>,
) {
    moves.clear();
    moves.extend(callee.params.iter().enumerate().map(|(k, &bank)| {
        let src = cx.place(bank, args + k);
        let dst = match callee_regs.machine_reg(bank, k) {
            Some(m) => Place::from(m),
            None => Place::Slot(base + callee.regs.slot(bank, k) as u64 * 8),
        };
        (dst, src)
    }));
}

fn emit_moves(pc: u32, moves: &mut Vec<(Place, Place)>, scratch: u64, pieces: &mut Vec<Piece>) {
    parallel_move(moves, Place::Slot(scratch), |dst, src| {
        pieces.push(move_piece(pc, dst, src))
    });
}

/// Orders `(dst, src)` moves that happen "at once" into a sequence of single moves,
/// handed to `emit` in order: a move runs once no pending move still reads its
/// destination; a cycle is broken by saving one source in `scratch`. `moves` is used
/// up (no allocation: calls are frequent and their moves few).
pub fn parallel_move<P: Copy + PartialEq>(
    moves: &mut Vec<(P, P)>,
    scratch: P,
    mut emit: impl FnMut(P, P),
) {
    let pending = moves;
    pending.retain(|(d, s)| d != s);
    while !pending.is_empty() {
        let ready = pending
            .iter()
            .position(|&(dst, _)| !pending.iter().any(|&(_, src)| src == dst));
        match ready {
            Some(i) => {
                let (dst, src) = pending.remove(i);
                emit(dst, src);
            }
            None => {
                // Every destination is still read: a cycle. Park one source.
                let (_, src) = pending[0];
                emit(scratch, src);
                for m in pending.iter_mut() {
                    if m.1 == src {
                        m.1 = scratch;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parallel_move;

    fn ordered(mut moves: Vec<(u64, u64)>, scratch: u64) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        parallel_move(&mut moves, scratch, |d, s| out.push((d, s)));
        out
    }

    /// Runs the moves on a small memory and checks every destination got its source's
    /// original value.
    fn check(moves: Vec<(u64, u64)>) {
        let mut mem: Vec<u64> = (0..16).map(|i| 100 + i).collect();
        let original = mem.clone();
        for (dst, src) in ordered(moves.clone(), 15) {
            mem[dst as usize] = mem[src as usize];
        }
        for (dst, src) in moves {
            assert_eq!(mem[dst as usize], original[src as usize], "slot {dst}");
        }
    }

    #[test]
    fn identity_moves_vanish() {
        assert!(ordered(vec![(0, 0), (1, 1)], 9).is_empty());
    }

    #[test]
    fn chains_and_swaps_and_rotations() {
        check(vec![(0, 1), (1, 2)]);
        check(vec![(0, 1), (1, 0)]);
        check(vec![(0, 1), (1, 2), (2, 0), (5, 0)]);
        check(vec![(3, 4), (4, 3), (6, 7), (7, 8), (8, 6), (9, 3)]);
    }
}
