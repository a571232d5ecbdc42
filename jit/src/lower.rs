//! Lowering: which stencils, with which hole values, implement each instruction.
//!
//! Most instructions are one stencil: the opcode's own. The exceptions are built from
//! other stencils:
//! - the function prologue clears every non-parameter register (spec §1): numbers to
//!   0 with one `ConstI64K 0` per slot for short runs and `ZeroRange` for long ones,
//!   cells to null with `NullSlot` and `NullRange`;
//! - a call first moves each argument into the callee's frame (`MovI64` copies any
//!   8-byte slot), then runs the call stencil;
//! - a tail call moves the arguments into the parameter slots of the *same* frame as a
//!   parallel move (a source may be another move's destination), then jumps.

use std::ops::Range;
use stencils::{
    Bank, ConstKind, Field, Inst, Opcode, OperandKind, IMM_BIAS, INTERNAL_STENCILS, OPCODE_COUNT,
};
use vm3::{Function, Program};

/// A hole value the layout decides: an address in the region's constant pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OperandValue {
    Known(u64),
    /// The 8-byte constant `index` of the function's pool.
    Const(usize),
    /// The table `index` of the function, laid out as length then entries.
    Table(usize),
}

/// One stencil instance of the code.
#[derive(Clone, Debug)]
pub struct Piece {
    /// Index into the stencil table.
    pub stencil: usize,
    /// Values of `_JIT_A` .. `_JIT_D`.
    pub operands: [OperandValue; 4],
    /// The instruction this piece belongs to (the prologue uses 0).
    pub pc: u32,
    /// Branch target, as an instruction index.
    pub target: Option<usize>,
    /// Called function.
    pub callee: Option<usize>,
}

/// A whole program as one array of pieces, function after function.
pub struct Lowered {
    pub pieces: Vec<Piece>,
    pub functions: Vec<LoweredFunction>,
    /// First piece (an index into `pieces`) of each instruction, function after function.
    pub inst_start: Vec<u32>,
}

/// Where one function's pieces are.
pub struct LoweredFunction {
    /// Its pieces: the prologue, then the instructions.
    pub pieces: Range<u32>,
    /// The first piece after the prologue.
    pub body: u32,
    /// Its instructions' entries in `Lowered::inst_start`.
    pub insts: Range<u32>,
}

impl Lowered {
    /// The first piece of instruction `pc` of function `func`.
    pub fn inst_piece(&self, func: usize, pc: usize) -> usize {
        self.inst_start[self.functions[func].insts.start as usize + pc] as usize
    }
}

/// Slots above this count are zeroed with a loop rather than one store each.
const UNROLLED_ZEROING: usize = 4;

fn internal_stencil(name: &str) -> usize {
    let i = INTERNAL_STENCILS
        .iter()
        .position(|s| s.trim_start_matches(stencils::STENCIL_SYMBOL_PREFIX) == name)
        .unwrap_or_else(|| panic!("internal stencil {name} is not declared"));
    OPCODE_COUNT + i
}

fn known(v: u64) -> OperandValue {
    OperandValue::Known(v)
}

fn piece(stencil: usize, pc: u32, operands: [OperandValue; 4]) -> Piece {
    Piece {
        stencil,
        operands,
        pc,
        target: None,
        callee: None,
    }
}

/// `slot[dst] = slot[src]` for two byte offsets from the frame.
fn word_move(pc: u32, dst: u64, src: u64) -> Piece {
    piece(
        Opcode::MovI64 as usize,
        pc,
        [known(dst), known(src), known(0), known(0)],
    )
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
        internal_stencil("NullSlot"),
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
pub fn lower(program: &Program, cpu: CpuFeatures) -> Lowered {
    let insts: usize = program.functions.iter().map(|f| f.code.len()).sum();
    let mut lowered = Lowered {
        pieces: Vec::with_capacity(insts + insts / 2 + 4 * program.functions.len()),
        functions: Vec::with_capacity(program.functions.len()),
        inst_start: Vec::with_capacity(insts),
    };
    let string_ids = program.string_constant_ids();
    for (func, string_ids) in program.functions.iter().zip(&string_ids) {
        let first = lowered.pieces.len() as u32;
        lower_prologue(func, &mut lowered.pieces);
        let body = lowered.pieces.len() as u32;
        let first_inst = lowered.inst_start.len() as u32;
        let context = InstContext {
            program,
            func,
            string_ids,
            cpu,
        };
        for (pc, &inst) in func.code.iter().enumerate() {
            lowered.inst_start.push(lowered.pieces.len() as u32);
            lower_inst(&context, pc as u32, inst, &mut lowered.pieces);
        }
        lowered.functions.push(LoweredFunction {
            pieces: first..lowered.pieces.len() as u32,
            body,
            insts: first_inst..lowered.inst_start.len() as u32,
        });
    }
    lowered
}

/// Clears every slot but the parameters', run by run between parameter slots: the
/// number banks to 0, the cells (the last bank) to null.
fn lower_prologue(func: &Function, pieces: &mut Vec<Piece>) {
    let mut params: Vec<usize> = func
        .params
        .iter()
        .enumerate()
        .map(|(k, &bank)| func.regs.slot(bank, k))
        .collect();
    params.sort_unstable();
    let first_cell = func.regs.slot(Bank::Cell, 0);
    let mut clear_run = |start: usize, end: usize| {
        let numbers = start..end.min(first_cell);
        let cells = start.max(first_cell)..end;
        for (run, slot_piece, range_stencil) in [
            (numbers, zero_slot as fn(u32, u64) -> Piece, "ZeroRange"),
            (cells, null_slot, "NullRange"),
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
    for slot in params {
        clear_run(next, slot);
        next = slot + 1;
    }
    clear_run(next, func.frame_slots());
}

/// What lowering an instruction needs to know besides the instruction.
struct InstContext<'a> {
    program: &'a Program,
    func: &'a Function,
    /// The program-wide number of each string constant of `func`.
    string_ids: &'a [u32],
    cpu: CpuFeatures,
}

fn lower_inst(cx: &InstContext, pc: u32, inst: Inst, pieces: &mut Vec<Piece>) {
    let (program, func) = (cx.program, cx.func);
    let op = Opcode::from_u8(inst.code).expect("verified opcode");
    let info = op.info();
    let stencil = match op {
        Opcode::FmaF64 if !cx.cpu.fma => internal_stencil("FmaF64Baseline"),
        _ => op as usize,
    };
    let mut main = piece(stencil, pc, [known(0); 4]);
    for &(field, kind) in info.operands {
        let raw = inst.field(field);
        let slot = |bank: Bank, index: usize| known(func.regs.slot(bank, index) as u64 * 8);
        let value = match kind {
            OperandKind::Reg(bank) => slot(bank, raw as usize),
            OperandKind::Dest => slot(
                Bank::from_u8(inst.flags).expect("verified bank"),
                raw as usize,
            ),
            OperandKind::Imm => known((raw as i16 as i64 + IMM_BIAS) as u64),
            // A string's handle is the run's: the stencil reads it from the heap's
            // table of constants, by the string's number.
            OperandKind::Const(ConstKind::Str) => known(cx.string_ids[raw as usize] as u64),
            OperandKind::Const(_) => OperandValue::Const(raw as usize),
            OperandKind::Table => OperandValue::Table(raw as usize),
            OperandKind::FmaPair => {
                main.operands[3] = slot(Bank::F64, (raw >> 8) as usize);
                slot(Bank::F64, (raw & 0xFF) as usize)
            }
            OperandKind::Target => {
                main.target = Some(raw as usize);
                continue;
            }
            OperandKind::Callee => {
                main.callee = Some(raw as usize);
                continue;
            }
            OperandKind::Args(_) => continue,
        };
        main.operands[field_index(field)] = value;
    }
    if let Some(callee) = main.callee {
        let args = info.operand(Field::B).map(|_| inst.b as usize).unwrap_or(0);
        argument_moves(
            func,
            &program.functions[callee],
            args,
            pc,
            info.is_tail_call(),
            pieces,
        );
    }
    pieces.push(main);
}

fn field_index(field: Field) -> usize {
    match field {
        Field::A => 0,
        Field::B => 1,
        Field::C => 2,
    }
}

/// Moves the arguments `args + k` (in the caller's layout) to the callee's parameter
/// slots: in the callee's frame just past the caller's for a call, in place for a
/// tail call.
fn argument_moves(
    caller: &Function,
    callee: &Function,
    args: usize,
    pc: u32,
    tail: bool,
    pieces: &mut Vec<Piece>,
) {
    let moves: Vec<(u64, u64)> = callee
        .params
        .iter()
        .enumerate()
        .map(|(k, &bank)| {
            let src = caller.regs.slot(bank, args + k) as u64 * 8;
            let dst = callee.regs.slot(bank, k) as u64 * 8;
            (dst, src)
        })
        .collect();
    if !tail {
        let base = caller.frame_slots() as u64 * 8;
        pieces.extend(
            moves
                .iter()
                .map(|&(dst, src)| word_move(pc, base + dst, src)),
        );
        return;
    }
    // The slot just past both layouts is free scratch (the register stack keeps one
    // extra frame): it breaks cycles.
    let scratch = caller.frame_slots().max(callee.frame_slots()) as u64 * 8;
    for (dst, src) in parallel_move(moves, scratch) {
        pieces.push(word_move(pc, dst, src));
    }
}

/// Orders `(dst, src)` moves that happen "at once" into a sequence of single moves:
/// a move runs once no pending move still reads its destination; a cycle is broken by
/// saving one source in `scratch`.
pub fn parallel_move(moves: Vec<(u64, u64)>, scratch: u64) -> Vec<(u64, u64)> {
    let mut pending: Vec<(u64, u64)> = moves.into_iter().filter(|(d, s)| d != s).collect();
    let mut out = Vec::new();
    while !pending.is_empty() {
        let ready = pending
            .iter()
            .position(|&(dst, _)| !pending.iter().any(|&(_, src)| src == dst));
        match ready {
            Some(i) => out.push(pending.remove(i)),
            None => {
                // Every destination is still read: a cycle. Park one source.
                let (_, src) = pending[0];
                out.push((scratch, src));
                for m in pending.iter_mut() {
                    if m.1 == src {
                        m.1 = scratch;
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::parallel_move;

    /// Runs the moves on a small memory and checks every destination got its source's
    /// original value.
    fn check(moves: Vec<(u64, u64)>) {
        let mut mem: Vec<u64> = (0..16).map(|i| 100 + i).collect();
        let original = mem.clone();
        for (dst, src) in parallel_move(moves.clone(), 15) {
            mem[dst as usize] = mem[src as usize];
        }
        for (dst, src) in moves {
            assert_eq!(mem[dst as usize], original[src as usize], "slot {dst}");
        }
    }

    #[test]
    fn identity_moves_vanish() {
        assert!(parallel_move(vec![(0, 0), (1, 1)], 9).is_empty());
    }

    #[test]
    fn chains_and_swaps_and_rotations() {
        check(vec![(0, 1), (1, 2)]);
        check(vec![(0, 1), (1, 0)]);
        check(vec![(0, 1), (1, 2), (2, 0), (5, 0)]);
        check(vec![(3, 4), (4, 3), (6, 7), (7, 8), (8, 6), (9, 3)]);
    }
}
