//! An *unstructured* program generator for attacking the boundary between the verifier
//! and the tiers (spec §4: "What the verifier accepts, the JIT must be able to compile
//! or hand to the interpreter"; spec §3: "nothing a program does can crash the
//! process").
//!
//! Unlike [`crate::gen`], which only builds well-formed programs, [`generate`] builds
//! programs from raw [`Inst`] values whose fields are random but *biased*: each program
//! draws an error rate, and every choice that could be right (a register below its
//! bank's count, a constant of the kind the opcode wants, a forward branch target, a
//! callee whose signature fits, a return of the function's result bank at the end)
//! goes wrong with that probability. Programs with a zero error rate mostly verify;
//! the others mostly do not, and fail in one or a few places. Besides that the
//! generator produces odd register counts (0, 1, 255, 256, 300, 65,535 and past the
//! limit), up to 16 parameters of any bank, results of any bank, constant pools with
//! every kind (odd NaNs included), tables (empty ones too), unknown opcodes, nonzero
//! `flags`, random values in fields an opcode does not use, callee indexes out of
//! range, backward branches, tail calls, `Deopt`, functions of 32,000 to 70,000
//! instructions, repeated or non-identifier function names, entry arguments that do
//! not fit, and now and then 250+ functions or none at all.
//!
//! [`expected_errors`] is an independent model of spec §4: which functions and
//! instructions the verifier must reject. [`runnable`] says whether an accepted program
//! is sure to terminate (no loop in the control flow of the functions its entry can
//! reach, no cycle of tail calls alone, and a bounded call tree under the case's depth
//! limit), so that the tiers can be run on it and compared.

use fastrand::Rng;
use std::collections::BTreeSet;
use stencils::{ArgBanks, Bank, ConstKind, Field, Inst, OpInfo, Opcode, OperandKind, OPCODE_COUNT};
use vm3::{Const, Function, Program, RegCounts, Value};

/// The depth limit most accepted programs run with: recursion traps quickly. Some run
/// with 0 to 3, 100 or the default 10,000 ([`RawCase::depth_limit`]).
pub const DEPTH_LIMIT: u64 = 32;

/// Most work (instructions, plus frame slots zeroed / 16) a run may be estimated to
/// take; programs above it are not run.
pub const COST_BUDGET: u64 = 200_000;

/// Largest register count per bank the verifier allows (spec §1).
const MAX_REGS: u32 = 65_535;

/// One generated program and how to run it.
#[derive(Clone, Debug)]
pub struct RawCase {
    pub seed: u64,
    pub program: Program,
    pub entry: String,
    pub args: Vec<Value>,
    /// The chance (per mille) that a biased choice went wrong.
    pub error_rate: u32,
    /// Whether the function names are distinct identifiers (`to_text` promises an
    /// exact round trip only then).
    pub plain_names: bool,
    /// The depth limit to run with (`Config::depth_limit`).
    pub depth_limit: u64,
}

/// The odd register counts of the brief, and some past the limit.
const ODD_COUNTS: &[u32] = &[0, 1, 2, 255, 256, 257, 300, 65_534, 65_535];
const BAD_COUNTS: &[u32] = &[65_536, 65_537, 70_000, 1 << 20, u32::MAX];

const INTERESTING_I64: &[i64] = &[
    0,
    1,
    -1,
    2,
    7,
    -8,
    i64::MIN,
    i64::MAX,
    i64::MIN + 1,
    1 << 47,
    -(1 << 47),
    1 << 32,
    u32::MAX as i64,
    0x7fff,
    -0x8000,
    0x8000,
];

const INTERESTING_IMM: &[i16] = &[0, 1, -1, 2, -2, 3, 7, 255, 256, i16::MIN, i16::MAX, -32767];

const INTERESTING_F64: &[u64] = &[
    0xFFF8_0000_0000_0001, // -NaN with payload
    0xFFF0_0000_0000_0ABC, // -sNaN with payload
    0x7FFF_FFFF_FFFF_FFFF, // NaN, all payload bits
    0x0000_0000_0000_0000, // 0.0
    0x8000_0000_0000_0000, // -0.0
    0x3FF0_0000_0000_0000, // 1.0
    0xBFF8_0000_0000_0000, // -1.5
    0x4004_0000_0000_0000, // 2.5
    0x7FF0_0000_0000_0000, // inf
    0xFFF0_0000_0000_0000, // -inf
    0x7FF8_0000_0000_0000, // NaN
    0xFFF8_0000_0000_0000, // -NaN
    0x7FF0_0000_0000_0001, // signalling NaN
    0x7FF8_0000_0000_0123, // NaN with payload
    0x7FEF_FFFF_FFFF_FFFF, // MAX
    0x0000_0000_0000_0001, // smallest subnormal
    0x43E0_0000_0000_0000, // 2^63
    0xC3E0_0000_0000_0000, // -2^63
    0x4340_0000_0000_0001, // 2^53 + 2
];

const STRINGS: &[&str] = &["", "hi", "a\nb", "\"q\\", "\u{7f}\u{1}", "hello, world"];

fn pick<T: Copy>(rng: &mut Rng, items: &[T]) -> T {
    items[rng.usize(..items.len())]
}

fn random_bank(rng: &mut Rng) -> Bank {
    match rng.u32(0..100) {
        0..=49 => Bank::I64,
        50..=84 => Bank::F64,
        _ => Bank::Cell,
    }
}

fn random_i64(rng: &mut Rng) -> i64 {
    if rng.bool() {
        pick(rng, INTERESTING_I64)
    } else {
        rng.i64(-1000..1000)
    }
}

fn random_f64(rng: &mut Rng) -> f64 {
    match rng.u32(0..3) {
        0 => f64::from_bits(pick(rng, INTERESTING_F64)),
        1 => rng.f64() * 200.0 - 100.0,
        _ => f64::from_bits(rng.u64(..)),
    }
}

fn random_const(rng: &mut Rng, kind: ConstKind) -> Const {
    match kind {
        ConstKind::I64 => Const::I64(random_i64(rng)),
        ConstKind::F64 => Const::F64(random_f64(rng)),
        ConstKind::Str => Const::Str(pick(rng, STRINGS).as_bytes().to_vec()),
    }
}

fn random_const_kind(rng: &mut Rng) -> ConstKind {
    pick(rng, &[ConstKind::I64, ConstKind::F64, ConstKind::Str])
}

fn random_arg(rng: &mut Rng, bank: Bank) -> Value {
    match bank {
        Bank::I64 => Value::I64(random_i64(rng)),
        Bank::F64 => Value::F64(random_f64(rng)),
        // Raw cell bits cannot be passed (issue 10): a null, a bool or an empty list.
        Bank::Cell => match rng.u32(0..3) {
            0 => Value::Null,
            1 => Value::Bool(rng.bool()),
            _ => Value::List(Vec::new()),
        },
    }
}

fn function_name(idx: usize) -> String {
    if idx == 0 {
        "main".to_string()
    } else {
        format!("f{idx}")
    }
}

/// A function's signature and register counts, fixed before any code is generated.
#[derive(Clone, Debug)]
struct Sig {
    params: Vec<Bank>,
    result: Bank,
    regs: RegCounts,
}

/// The error rate and the random source.
struct Dice {
    rng: Rng,
    /// Per mille.
    error_rate: u32,
    /// Whether branches go backward now and then (else only when nothing is ahead).
    loopy: bool,
}

impl Dice {
    /// Whether a choice that could be right goes wrong.
    fn bad(&mut self) -> bool {
        self.rng.u32(0..1000) < self.error_rate
    }

    fn percent(&mut self, p: u32) -> bool {
        self.rng.u32(0..100) < p
    }
}

/// Generates the case of `seed`. The same seed always gives the same case.
pub fn generate(seed: u64) -> RawCase {
    let mut rng = Rng::with_seed(seed);
    let error_rate = pick(&mut rng, &[0, 0, 0, 0, 0, 2, 10, 30, 100, 300, 1000]);
    let loopy = rng.u32(0..10) < 6;
    let mut d = Dice {
        rng,
        error_rate,
        loopy,
    };
    // Now and then a program of a shape random choices do not reach (`raw_shapes`).
    match d.rng.u32(0..100) {
        0..=2 => {
            let f = crate::raw_shapes::random_nesting(&mut d.rng);
            return shaped(seed, f, Vec::new());
        }
        3 => {
            let f = crate::raw_shapes::handle_user(&mut d.rng);
            let arg = crate::raw_shapes::cell_argument(&mut d.rng);
            return shaped(seed, f, vec![arg]);
        }
        _ => {}
    }
    let n = match d.rng.u32(0..1000) {
        0..=4 => 0,
        5..=399 => 1,
        400..=799 => d.rng.usize(2..4),
        800..=989 => d.rng.usize(4..9),
        _ => d.rng.usize(250..300),
    };
    let sigs: Vec<Sig> = (0..n).map(|_| random_sig(&mut d)).collect();
    let mut functions: Vec<Function> = (0..n).map(|i| random_function(&mut d, i, &sigs)).collect();
    // Now and then one unknown opcode in a program that is otherwise fine.
    if n > 0 && d.rng.u32(0..100) < 3 {
        let f = &mut functions[d.rng.usize(..n)];
        if !f.code.is_empty() {
            let pc = d.rng.usize(..f.code.len());
            f.code[pc].code = d.rng.u8(OPCODE_COUNT as u8..);
        }
    }
    // Now and then thousands of labels at one instruction.
    if n > 0 && d.rng.u32(0..100) < 2 {
        let k = d.rng.usize(..n);
        let count = pick(&mut d.rng, &[2_000, 20_000, 100_000]);
        crate::raw_shapes::add_labels(&mut d.rng, &mut functions[k], count);
    }
    // Now and then names the verifier does not care about: repeated ones (calls go by
    // index, the entry is the first of that name) and ones that are not identifiers.
    let mut plain_names = true;
    if n > 0 && d.rng.u32(0..100) < 3 {
        plain_names = false;
        let k = d.rng.usize(..n);
        functions[k].name = match d.rng.u32(0..4) {
            0 => functions[d.rng.usize(..n)].name.clone(),
            1 => String::new(),
            2 => pick(&mut d.rng, &["two words", "1st", "ünï", "a;b", "x\n"]).to_string(),
            _ => "main".to_string(),
        };
    }
    let (entry, args) = if n == 0 || d.rng.u32(0..200) == 0 {
        ("nope".to_string(), Vec::new())
    } else {
        let e = if d.percent(90) { 0 } else { d.rng.usize(..n) };
        let mut args: Vec<Value> = sigs[e]
            .params
            .iter()
            .map(|&b| random_arg(&mut d.rng, b))
            .collect();
        // Now and then arguments that do not fit: both tiers must refuse them alike.
        match d.rng.u32(0..200) {
            0 => {
                args.pop();
            }
            1 => args.push(Value::I64(1)),
            2 if !args.is_empty() => {
                let k = d.rng.usize(..args.len());
                args[k] = match args[k] {
                    Value::I64(_) => Value::F64(0.5),
                    _ => Value::I64(3),
                };
            }
            _ => {}
        }
        (functions[e].name.clone(), args)
    };
    let depth_limit = match d.rng.u32(0..100) {
        0..=1 => d.rng.u64(0..4),
        2..=3 => 100,
        4..=6 => 10_000,
        _ => DEPTH_LIMIT,
    };
    RawCase {
        seed,
        program: Program { functions },
        entry,
        args,
        error_rate,
        plain_names,
        depth_limit,
    }
}

/// The case of one function `main` from `raw_shapes`, run as it is.
fn shaped(seed: u64, main: Function, args: Vec<Value>) -> RawCase {
    RawCase {
        seed,
        program: Program {
            functions: vec![main],
        },
        entry: "main".to_string(),
        args,
        error_rate: 0,
        plain_names: true,
        depth_limit: DEPTH_LIMIT,
    }
}

fn random_sig(d: &mut Dice) -> Sig {
    let nparams = match d.rng.u32(0..100) {
        0..=29 => 0,
        30..=54 => 1,
        55..=74 => 2,
        75..=89 => d.rng.usize(3..5),
        90..=98 => d.rng.usize(5..9),
        _ => d.rng.usize(9..17),
    };
    let params: Vec<Bank> = (0..nparams).map(|_| random_bank(&mut d.rng)).collect();
    let result = match d.rng.u32(0..100) {
        0..=54 => Bank::I64,
        55..=91 => Bank::F64,
        _ => Bank::Cell,
    };
    let mut regs = RegCounts::default();
    for bank in Bank::ALL {
        // Parameter k arrives in register k of its bank.
        let need = params
            .iter()
            .enumerate()
            .filter(|(_, &b)| b == bank)
            .map(|(k, _)| k as u32 + 1)
            .max()
            .unwrap_or(0);
        let n = if d.bad() {
            if d.rng.bool() {
                pick(&mut d.rng, BAD_COUNTS)
            } else {
                // Possibly too few for the parameters.
                need.saturating_sub(d.rng.u32(0..3))
            }
        } else {
            match d.rng.u32(0..100) {
                0..=84 => need + d.rng.u32(0..6),
                85..=96 => pick(&mut d.rng, ODD_COUNTS).max(need),
                _ => MAX_REGS,
            }
        };
        regs.set(bank, n);
    }
    Sig {
        params,
        result,
        regs,
    }
}

/// Opcodes by how often they are drawn: calls and returns more often than the rest,
/// branches (whose targets are chosen forward most of the time) a little less.
fn random_opcode(d: &mut Dice) -> Opcode {
    loop {
        let op = pick(&mut d.rng, &Opcode::ALL);
        let info = op.info();
        let weight = if info.is_tail_call() || op == Opcode::Jump {
            3
        } else if info.is_call() || info.returns {
            8
        } else if info.target_field().is_some() {
            3
        } else {
            5
        };
        if d.rng.u32(0..8) < weight {
            return op;
        }
    }
}

/// The opcodes that return `bank` (`ReturnI64` and `ReturnConstK` for i64, ...).
fn return_opcodes(bank: Bank) -> Vec<Opcode> {
    Opcode::ALL
        .iter()
        .copied()
        .filter(|op| op.info().returned_bank() == Some(bank))
        .collect()
}

/// What a call opcode lets its callee be: which parameter banks, and which result.
fn callee_fits(info: &OpInfo, inst_flags: Option<Bank>, caller: &Sig, callee: &Sig) -> bool {
    let params_fit = info.operands.iter().all(|(_, k)| match k {
        OperandKind::Args(ArgBanks::I64) => callee.params.iter().all(|&b| b == Bank::I64),
        OperandKind::Args(ArgBanks::F64) => callee.params.iter().all(|&b| b == Bank::F64),
        _ => true,
    });
    let result_fits = if info.is_tail_call() {
        callee.result == caller.result
    } else {
        match destination_bank(info, inst_flags) {
            Some(bank) => callee.result == bank,
            None => true,
        }
    };
    params_fit && result_fits
}

/// The bank of a call's destination: its `Dest` (from flags) or its first register.
fn destination_bank(info: &OpInfo, flags: Option<Bank>) -> Option<Bank> {
    for (_, k) in info.operands {
        match *k {
            OperandKind::Dest => return flags,
            OperandKind::Reg(bank) => return Some(bank),
            _ => {}
        }
    }
    None
}

/// Everything one function's code generation needs.
struct FnGen<'a> {
    idx: usize,
    sigs: &'a [Sig],
    len: usize,
    consts: Vec<Const>,
    tables: Vec<Vec<i64>>,
}

impl FnGen<'_> {
    fn sig(&self) -> &Sig {
        &self.sigs[self.idx]
    }

    /// A register of `bank`: below the count unless the choice goes wrong.
    fn reg(&self, d: &mut Dice, bank: Bank) -> u16 {
        let n = self.sig().regs.get(bank);
        if n > 0 && !d.bad() {
            let n = n.min(65_536);
            if d.percent(75) {
                d.rng.u32(0..n.min(8)) as u16
            } else {
                d.rng.u32(0..n) as u16
            }
        } else {
            let n16 = n.min(65_535) as u16;
            match d.rng.u32(0..5) {
                0 => n16,
                1 => n16.saturating_add(1),
                2 => pick(&mut d.rng, &[255, 256, 65_534]),
                3 => 65_535,
                _ => d.rng.u16(..),
            }
        }
    }

    /// Whether `op` can be used here without a forced error: its banks have registers
    /// and, for a call, some callee fits.
    fn feasible(&self, op: Opcode, pc: usize) -> bool {
        let info = op.info();
        if info.target_field().is_some() && pc >= 1 << 15 {
            return false;
        }
        let regs = self.sig().regs;
        let banks_ok = info.operands.iter().all(|(_, k)| match *k {
            OperandKind::Reg(bank) => regs.get(bank) > 0,
            OperandKind::FmaPair => regs.f64 > 0,
            _ => true,
        });
        let returns_ok = info.returned_bank().is_none_or(|b| b == self.sig().result);
        let has_dest = info.operands.iter().any(|(_, k)| *k == OperandKind::Dest);
        let callee_ok = !info.is_call()
            || self.sigs.iter().any(|callee| {
                callee_fits(info, Some(callee.result), self.sig(), callee)
                    && (!has_dest || regs.get(callee.result) > 0)
                    && self.args_bound(&callee.params) > 0
            });
        banks_ok && returns_ok && callee_ok
    }

    /// Index of a constant of `kind`, appending one if the pool has none.
    fn constant(&mut self, d: &mut Dice, kind: ConstKind) -> i16 {
        if d.bad() {
            return match d.rng.u32(0..3) {
                0 => self.consts.len() as i16 + d.rng.i16(0..3),
                1 => pick(&mut d.rng, &[-1, i16::MIN, i16::MAX]),
                // Any entry, probably of another kind.
                _ if !self.consts.is_empty() => d.rng.usize(..self.consts.len()) as i16,
                _ => 0,
            };
        }
        let have: Vec<usize> = (0..self.consts.len())
            .filter(|&i| vm3_const_kind(&self.consts[i]) == kind)
            .collect();
        if !have.is_empty() && d.percent(80) {
            return pick(&mut d.rng, &have) as i16;
        }
        self.consts.push(random_const(&mut d.rng, kind));
        self.consts.len() as i16 - 1
    }

    fn table(&mut self, d: &mut Dice) -> i16 {
        if d.bad() {
            return match d.rng.u32(0..2) {
                0 => self.tables.len() as i16 + d.rng.i16(0..2),
                _ => pick(&mut d.rng, &[-1, i16::MIN, i16::MAX]),
            };
        }
        if self.tables.is_empty() || d.percent(10) {
            self.tables.push(random_table(&mut d.rng));
        }
        d.rng.usize(..self.tables.len()) as i16
    }

    fn target(&self, d: &mut Dice, pc: usize) -> i16 {
        let len = self.len;
        if d.bad() {
            return match d.rng.u32(0..4) {
                0 => len as i16,
                1 => -1,
                2 => pick(&mut d.rng, &[i16::MIN, i16::MAX, len as i16 + 1]),
                _ => d.rng.i16(..),
            };
        }
        // Targets past i16::MAX cannot be written.
        let end = len.min(1 << 15);
        if pc + 1 < end && (!d.loopy || d.rng.u32(0..8) != 0) {
            d.rng.usize(pc + 1..end) as i16
        } else {
            // Backward or to itself: a program whose control flow loops is not run.
            d.rng.usize(..(pc + 1).min(end)) as i16
        }
    }

    /// A callee index for a call `info` (with the destination bank `flags` when it has
    /// one): one that fits unless the choice goes wrong.
    fn callee(&self, d: &mut Dice, info: &OpInfo) -> (i16, Option<Bank>) {
        let n = self.sigs.len();
        let has_dest = info.operands.iter().any(|(_, k)| *k == OperandKind::Dest);
        if !d.bad() {
            let fits: Vec<usize> = (0..n)
                .filter(|&c| {
                    let callee = &self.sigs[c];
                    let flags = has_dest.then_some(callee.result);
                    callee_fits(info, flags, self.sig(), callee)
                        && flags.is_none_or(|b| self.sig().regs.get(b) > 0)
                        && self.args_bound(&callee.params) > 0
                })
                .collect();
            if !fits.is_empty() {
                // Later functions a little more often: the call graph stays shallower.
                let c = if d.percent(60) {
                    let later: Vec<usize> =
                        fits.iter().copied().filter(|&c| c > self.idx).collect();
                    if later.is_empty() {
                        pick(&mut d.rng, &fits)
                    } else {
                        pick(&mut d.rng, &later)
                    }
                } else {
                    pick(&mut d.rng, &fits)
                };
                return (c as i16, Some(self.sigs[c].result));
            }
        }
        let c = match d.rng.u32(0..4) {
            0 => n as i16,
            1 => pick(&mut d.rng, &[-1, i16::MIN, i16::MAX]),
            _ if n > 0 => d.rng.usize(..n) as i16,
            _ => 0,
        };
        let result = usize::try_from(c)
            .ok()
            .and_then(|c| self.sigs.get(c))
            .map(|s| s.result);
        (c, result)
    }

    /// One more than the largest first argument register B that a call passing
    /// `params` can use: `B + k` must be below the count of parameter k's bank.
    fn args_bound(&self, params: &[Bank]) -> i64 {
        let regs = self.sig().regs;
        params
            .iter()
            .enumerate()
            .map(|(k, &b)| regs.get(b) as i64 - k as i64)
            .min()
            .unwrap_or(65_536)
            .min(65_536)
    }

    /// The first argument register B for a call to `callee` (if it exists): every
    /// `B + k` below the count of parameter k's bank unless the choice goes wrong.
    fn args_base(&self, d: &mut Dice, callee: Option<usize>) -> u16 {
        let params = callee
            .and_then(|c| self.sigs.get(c))
            .map(|s| s.params.as_slice())
            .unwrap_or(&[]);
        let bound = self.args_bound(params);
        if bound > 0 && !d.bad() {
            if d.percent(70) {
                d.rng.i64(0..bound.min(8)) as u16
            } else {
                d.rng.i64(0..bound) as u16
            }
        } else {
            let b = bound.clamp(0, 65_535) as u16;
            match d.rng.u32(0..4) {
                0 => b,
                1 => b.saturating_add(1),
                2 => 65_535,
                _ => d.rng.u16(..),
            }
        }
    }

    fn inst(&mut self, d: &mut Dice, pc: usize, op: Opcode) -> Inst {
        let info = op.info();
        let mut inst = Inst::new(op as u8, 0, 0, 0);
        let mut callee: Option<usize> = None;
        let mut dest_bank: Option<Bank> = None;
        if info.is_call() {
            let (c, result) = self.callee(d, info);
            inst.c = c;
            callee = usize::try_from(c).ok().filter(|&c| c < self.sigs.len());
            dest_bank = result;
        }
        for &(field, kind) in info.operands {
            let v: u16 = match kind {
                OperandKind::Reg(bank) => self.reg(d, bank),
                OperandKind::Dest => {
                    let bank = match dest_bank {
                        Some(b) if !d.bad() => b,
                        _ => random_bank(&mut d.rng),
                    };
                    inst.flags = bank as u8;
                    if d.bad() {
                        inst.flags = d.rng.u8(3..);
                    }
                    self.reg(d, bank)
                }
                OperandKind::Imm => {
                    (if d.percent(70) {
                        pick(&mut d.rng, INTERESTING_IMM)
                    } else {
                        d.rng.i16(..)
                    }) as u16
                }
                OperandKind::Target => self.target(d, pc) as u16,
                OperandKind::Const(kind) => {
                    let kind = if d.bad() {
                        random_const_kind(&mut d.rng)
                    } else {
                        kind
                    };
                    self.constant(d, kind) as u16
                }
                OperandKind::Table => self.table(d) as u16,
                OperandKind::Callee => inst.c as u16,
                OperandKind::Args(_) => self.args_base(d, callee),
                OperandKind::FmaPair => {
                    let n = self.sig().regs.f64.min(256);
                    let mut xy = || {
                        if n > 0 && !d.bad() {
                            let small = d.rng.bool();
                            d.rng.u32(0..n.min(if small { 8 } else { 256 })) as u16
                        } else {
                            d.rng.u16(0..256)
                        }
                    };
                    let x = xy();
                    let y = xy();
                    x | (y << 8)
                }
            };
            match field {
                Field::A => inst.a = v,
                Field::B => inst.b = v,
                Field::C => inst.c = v as i16,
            }
        }
        // Fields an opcode does not use are ignored by the tiers, whatever they hold.
        for field in [Field::A, Field::B, Field::C] {
            if info.operand(field).is_none() && d.percent(20) {
                let v = d.rng.u16(..);
                match field {
                    Field::A => inst.a = v,
                    Field::B => inst.b = v,
                    Field::C => inst.c = v as i16,
                }
            }
        }
        if d.bad() {
            inst.flags = d.rng.u8(1..);
        }
        inst
    }
}

fn vm3_const_kind(c: &Const) -> ConstKind {
    match c {
        Const::I64(_) => ConstKind::I64,
        Const::F64(_) => ConstKind::F64,
        Const::Str(_) => ConstKind::Str,
    }
}

fn random_table(rng: &mut Rng) -> Vec<i64> {
    let len = match rng.u32(0..10) {
        0..=1 => 0,
        2..=8 => rng.usize(1..5),
        _ => rng.usize(5..40),
    };
    (0..len).map(|_| random_i64(rng)).collect()
}

fn random_function(d: &mut Dice, idx: usize, sigs: &[Sig]) -> Function {
    let sig = sigs[idx].clone();
    let len = match d.rng.u32(0..1000) {
        0..=9 if d.bad() => 0,
        // Past what a branch target (i16) can reach, and past 65,535 instructions.
        10 if sigs.len() < 10 => d.rng.usize(32_000..70_000),
        0..=99 => 1,
        100..=799 => d.rng.usize(2..10),
        800..=979 => d.rng.usize(10..30),
        _ => d.rng.usize(30..80),
    };
    let mut consts: Vec<Const> = Vec::new();
    for _ in 0..d.rng.usize(0..4) {
        let kind = random_const_kind(&mut d.rng);
        consts.push(random_const(&mut d.rng, kind));
    }
    let tables: Vec<Vec<i64>> = (0..d.rng.usize(0..3))
        .map(|_| random_table(&mut d.rng))
        .collect();
    let mut g = FnGen {
        idx,
        sigs,
        len,
        consts,
        tables,
    };
    let mut code = Vec::with_capacity(len);
    for pc in 0..len {
        if d.rng.u32(0..1000) < d.error_rate / 10 {
            // An unknown opcode with random fields.
            code.push(Inst {
                code: d.rng.u8(OPCODE_COUNT as u8..),
                flags: d.rng.u8(..),
                a: d.rng.u16(..),
                b: d.rng.u16(..),
                c: d.rng.i16(..),
            });
            continue;
        }
        let last = pc + 1 == len;
        let op = if last && !d.bad() {
            let returns: Vec<Opcode> = return_opcodes(sig.result)
                .into_iter()
                .filter(|&op| g.feasible(op, pc))
                .collect();
            if !returns.is_empty() && d.percent(92) {
                pick(&mut d.rng, &returns)
            } else {
                // No usable return of this bank (or now and then): another terminal.
                let mut op = Opcode::Jump;
                for _ in 0..500 {
                    let candidate = random_opcode(d);
                    let info = candidate.info();
                    if info.terminal
                        && info.returned_bank().is_none_or(|b| b == sig.result)
                        && g.feasible(candidate, pc)
                    {
                        op = candidate;
                        break;
                    }
                }
                op
            }
        } else {
            // Prefer opcodes that can be right here.
            let mut op = random_opcode(d);
            for _ in 0..30 {
                if g.feasible(op, pc) || d.bad() {
                    break;
                }
                op = random_opcode(d);
            }
            op
        };
        code.push(g.inst(d, pc, op));
    }
    // Label every branch target inside the function and name every table, as the
    // assembler would, so that printing and assembling give back an equal program.
    let mut targets = BTreeSet::new();
    for inst in &code {
        if let Some(field) = Opcode::from_u8(inst.code).and_then(|op| op.info().target_field()) {
            let t = inst.field(field) as i16;
            if t >= 0 && (t as usize) < len {
                targets.insert(t as u32);
            }
        }
    }
    let mut func = Function::new(function_name(idx), sig.params, sig.result);
    func.regs = sig.regs;
    func.code = code;
    func.consts = g.consts;
    func.table_names = (0..g.tables.len()).map(|t| format!("t{t}")).collect();
    func.tables = g.tables;
    // (Not `L<t>`: the assembler does not record the names it would make up itself.)
    func.labels = targets.into_iter().map(|t| (t, format!("at{t}"))).collect();
    func
}

// ---------------------------------------------------------------------------------
// An independent model of the verifier.

/// Where spec §4 says `program` must be rejected: `(function, None)` for a fault of the
/// function as a whole (register counts past the limit, parameters without a register,
/// no code), `(function, Some(pc))` for an instruction. Empty when it must be accepted.
pub fn expected_errors(program: &Program) -> BTreeSet<(usize, Option<u32>)> {
    let mut out = BTreeSet::new();
    let funcs = &program.functions;
    for (fi, f) in funcs.iter().enumerate() {
        let regs = f.regs;
        if Bank::ALL.iter().any(|&b| regs.get(b) > MAX_REGS) {
            out.insert((fi, None));
        }
        if f.params
            .iter()
            .enumerate()
            .any(|(k, &b)| k as u64 >= regs.get(b) as u64)
        {
            out.insert((fi, None));
        }
        if f.code.is_empty() {
            out.insert((fi, None));
            continue;
        }
        let reg_ok = |bank: Bank, index: u64| index < regs.get(bank) as u64;
        for (pc, inst) in f.code.iter().enumerate() {
            let bad = match Opcode::from_u8(inst.code) {
                None => true,
                Some(op) => !inst_ok(funcs, f, inst, op.info(), &reg_ok),
            };
            let falls_off = pc + 1 == f.code.len()
                && Opcode::from_u8(inst.code).is_some_and(|op| !op.info().terminal);
            if bad || falls_off {
                out.insert((fi, Some(pc as u32)));
            }
        }
    }
    out
}

fn inst_ok(
    funcs: &[Function],
    f: &Function,
    inst: &Inst,
    info: &OpInfo,
    reg_ok: &dyn Fn(Bank, u64) -> bool,
) -> bool {
    let has_dest = info.operands.iter().any(|(_, k)| *k == OperandKind::Dest);
    let flags_bank = Bank::from_u8(inst.flags);
    if has_dest {
        if flags_bank.is_none() {
            return false;
        }
    } else if inst.flags != 0 {
        return false;
    }
    let callee: Option<&Function> = if info.is_call() {
        let c = inst.c;
        match usize::try_from(c).ok().and_then(|c| funcs.get(c)) {
            Some(callee) => Some(callee),
            None => return false,
        }
    } else {
        None
    };
    for &(field, kind) in info.operands {
        let raw = inst.field(field);
        let signed = raw as i16 as i64;
        let ok = match kind {
            OperandKind::Reg(bank) => reg_ok(bank, raw as u64),
            OperandKind::Dest => reg_ok(flags_bank.unwrap(), raw as u64),
            OperandKind::Imm => true,
            OperandKind::Target => signed >= 0 && (signed as usize) < f.code.len(),
            OperandKind::Const(want) => usize::try_from(signed)
                .ok()
                .and_then(|i| f.consts.get(i))
                .is_some_and(|c| vm3_const_kind(c) == want),
            OperandKind::Table => usize::try_from(signed)
                .ok()
                .is_some_and(|i| i < f.tables.len()),
            OperandKind::Callee => true, // checked above
            OperandKind::FmaPair => {
                reg_ok(Bank::F64, (raw & 0xFF) as u64) && reg_ok(Bank::F64, (raw >> 8) as u64)
            }
            OperandKind::Args(allowed) => {
                let callee = callee.expect("a call has a callee");
                let banks_ok = callee.params.iter().all(|&b| match allowed {
                    ArgBanks::I64 => b == Bank::I64,
                    ArgBanks::F64 => b == Bank::F64,
                    ArgBanks::Any => true,
                });
                banks_ok
                    && callee
                        .params
                        .iter()
                        .enumerate()
                        .all(|(k, &b)| reg_ok(b, raw as u64 + k as u64))
            }
        };
        if !ok {
            return false;
        }
    }
    if let Some(callee) = callee {
        let result_ok = if info.is_tail_call() {
            callee.result == f.result
        } else {
            destination_bank(info, flags_bank).is_none_or(|b| b == callee.result)
        };
        if !result_ok {
            return false;
        }
    }
    if let Some(bank) = info.returned_bank() {
        if bank != f.result {
            return false;
        }
    }
    true
}

// ---------------------------------------------------------------------------------
// Termination.

/// Why an accepted (verified) program is not run with `depth_limit`, or `Ok(cost)`
/// with its estimated work. A program is run when it is sure to terminate: in every function the entry
/// can reach, the control flow graph of the instructions reachable from instruction 0
/// has no cycle (backward branches are fine when they do not close a loop), and tail
/// calls never form a cycle on their own (a cycle through an ordinary call ends at the
/// depth limit); and when its estimated work ([`COST_BUDGET`]) is small.
pub fn runnable(program: &Program, entry: &str, depth_limit: u64) -> Result<u64, &'static str> {
    let Some(entry) = program.function_index(entry) else {
        return Ok(0);
    };
    let funcs = &program.functions;
    // Functions the entry can reach, and the tail calls between them.
    let mut reach = vec![false; funcs.len()];
    let mut live_code: Vec<Vec<bool>> = vec![Vec::new(); funcs.len()];
    let mut tail_edges: Vec<Vec<usize>> = vec![Vec::new(); funcs.len()];
    let mut todo = vec![entry];
    reach[entry] = true;
    while let Some(f) = todo.pop() {
        let live = reachable_code(&funcs[f])?;
        for (pc, inst) in funcs[f].code.iter().enumerate() {
            let Some(op) = Opcode::from_u8(inst.code) else {
                continue;
            };
            let info = op.info();
            if !live[pc] || !info.is_call() {
                continue;
            }
            let c = inst.c as usize;
            if info.is_tail_call() {
                tail_edges[f].push(c);
            }
            if !reach[c] {
                reach[c] = true;
                todo.push(c);
            }
        }
        live_code[f] = live;
    }
    let tail_cycle = (0..funcs.len())
        .filter(|&f| reach[f] && !tail_edges[f].is_empty())
        .any(|f| has_cycle(funcs.len(), |g| tail_edges[g].clone(), f));
    if tail_cycle {
        return Err("tail call cycle");
    }
    let cost = cost(
        funcs,
        &reach,
        &live_code,
        &tail_edges,
        depth_limit.max(1),
        entry,
    );
    if cost > COST_BUDGET {
        Err("call tree too big")
    } else {
        Ok(cost)
    }
}

/// The instructions of a verified function reachable from instruction 0, or an error
/// if they contain a loop.
fn reachable_code(func: &Function) -> Result<Vec<bool>, &'static str> {
    let succ = |pc: usize| -> Vec<usize> {
        let inst = func.code[pc];
        let info = Opcode::from_u8(inst.code).expect("verified").info();
        let mut out = Vec::new();
        if let Some(field) = info.target_field() {
            out.push(inst.field(field) as usize);
        }
        if !info.terminal {
            out.push(pc + 1);
        }
        out
    };
    if has_cycle(func.code.len(), succ, 0) {
        return Err("loop");
    }
    let mut live = vec![false; func.code.len()];
    let mut todo = vec![0];
    live[0] = true;
    while let Some(pc) = todo.pop() {
        for next in succ(pc) {
            if !live[next] {
                live[next] = true;
                todo.push(next);
            }
        }
    }
    Ok(live)
}

/// Whether the graph of `n` nodes with successors `succ` has a cycle reachable from
/// `start` (iterative depth-first search).
fn has_cycle(n: usize, succ: impl Fn(usize) -> Vec<usize>, start: usize) -> bool {
    // 0 unvisited, 1 on the current path, 2 done.
    let mut state = vec![0u8; n];
    let mut stack: Vec<(usize, Vec<usize>)> = vec![(start, succ(start))];
    state[start] = 1;
    while let Some((node, next)) = stack.last_mut() {
        match next.pop() {
            Some(m) => match state[m] {
                0 => {
                    state[m] = 1;
                    let s = succ(m);
                    stack.push((m, s));
                }
                1 => return true,
                _ => {}
            },
            None => {
                state[*node] = 2;
                stack.pop();
            }
        }
    }
    false
}

/// Upper bound of the work a call of `entry` does (at depth 1, calls past `limit`
/// trapping), saturating just past [`COST_BUDGET`]. Only the functions `reach` marks
/// and the instructions `live` marks count; `tail` are the tail calls, which must not
/// form a cycle (a tail call continues at the same depth).
///
/// Computed level by level from the deepest up, without recursion (the limit may be
/// 10,000): the cost of each function at depth `d` from the costs at `d + 1`, and of
/// its tail callees at `d`, which come first in `order`. It stops early once a level
/// equals the one below: all the levels above are then equal too.
fn cost(
    funcs: &[Function],
    reach: &[bool],
    live: &[Vec<bool>],
    tail: &[Vec<usize>],
    limit: u64,
    entry: usize,
) -> u64 {
    let n = funcs.len();
    // Tail callees before their callers (post-order).
    let mut order = Vec::new();
    let mut seen = vec![false; n];
    for root in (0..n).filter(|&f| reach[f]) {
        if seen[root] {
            continue;
        }
        seen[root] = true;
        let mut stack = vec![(root, 0usize)];
        while let Some((f, i)) = stack.last_mut() {
            if let Some(&g) = tail[*f].get(*i) {
                *i += 1;
                if !seen[g] {
                    seen[g] = true;
                    stack.push((g, 0));
                }
            } else {
                order.push(*f);
                stack.pop();
            }
        }
    }
    let cap = COST_BUDGET + 1;
    let mut below = vec![0u64; n]; // costs at depth d + 1
    let mut level = vec![0u64; n];
    for d in (1..=limit).rev() {
        for &f in &order {
            let func = &funcs[f];
            let mut total = func.code.len() as u64 + func.frame_slots() as u64 / 16;
            for (pc, inst) in func.code.iter().enumerate() {
                let Some(info) = Opcode::from_u8(inst.code).map(|op| op.info()) else {
                    continue;
                };
                if !live[f][pc] {
                    continue;
                }
                let callee = inst.c as usize;
                if info.is_tail_call() {
                    total = total.saturating_add(level[callee]);
                } else if info.is_call() && d < limit {
                    total = total.saturating_add(below[callee]);
                }
            }
            level[f] = total.min(cap);
        }
        if level == below {
            break;
        }
        std::mem::swap(&mut level, &mut below);
    }
    // `below` holds the last level computed (depth 1), or one equal to it.
    below[entry]
}

/// What a program contains, for coverage counts: tail calls, backward branches, calls,
/// `Deopt`, functions over 32,767 instructions, banks of 65,535 registers, more than
/// 255 functions.
pub fn features(program: &Program) -> Vec<&'static str> {
    let mut out = BTreeSet::new();
    if program.functions.len() > 255 {
        out.insert(">255 functions");
    }
    for f in &program.functions {
        if f.code.len() > 32_767 {
            out.insert("long function");
        }
        if f.labels.len() >= 1000 {
            out.insert("thousands of labels");
        }
        let nests = f
            .code
            .iter()
            .filter(|i| i.code == Opcode::ListSetCell as u8)
            .count();
        if nests >= 8 {
            out.insert("nested lists");
        }
        if Bank::ALL.iter().any(|&b| f.regs.get(b) == MAX_REGS) {
            out.insert("65535 registers");
        }
        for (pc, inst) in f.code.iter().enumerate() {
            let Some(op) = Opcode::from_u8(inst.code) else {
                continue;
            };
            let info = op.info();
            if info.is_tail_call() {
                out.insert("tail call");
            } else if info.is_call() {
                out.insert("call");
            }
            if op == Opcode::Deopt {
                out.insert("deopt");
            }
            if info
                .target_field()
                .is_some_and(|field| inst.field(field) as i16 as i64 <= pc as i64)
            {
                out.insert("backward branch");
            }
        }
    }
    out.into_iter().collect()
}

/// `program` with every field its opcodes do not use set to zero (the text format has
/// no way to write them), or `None` if nothing changes.
pub fn without_unused_fields(program: &Program) -> Option<Program> {
    let mut out = program.clone();
    let mut changed = false;
    for f in &mut out.functions {
        for inst in &mut f.code {
            let Some(op) = Opcode::from_u8(inst.code) else {
                continue;
            };
            let info = op.info();
            if info.operand(Field::A).is_none() && inst.a != 0 {
                inst.a = 0;
                changed = true;
            }
            if info.operand(Field::B).is_none() && inst.b != 0 {
                inst.b = 0;
                changed = true;
            }
            if info.operand(Field::C).is_none() && inst.c != 0 {
                inst.c = 0;
                changed = true;
            }
        }
    }
    changed.then_some(out)
}

/// The program as raw instructions, for reports that must not depend on the printer.
pub fn raw_listing(program: &Program) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for (i, f) in program.functions.iter().enumerate() {
        let _ = writeln!(
            out,
            "function {i} `{}` params {:?} result {:?} regs {:?}\n  consts {:?}\n  tables {:?}",
            f.name, f.params, f.result, f.regs, f.consts, f.tables
        );
        for (pc, inst) in f.code.iter().enumerate() {
            let name = Opcode::from_u8(inst.code).map_or("?", |op| op.name());
            let _ = writeln!(
                out,
                "  {pc:3}: {name:<14} Inst {{ code: {}, flags: {}, a: {}, b: {}, c: {} }}",
                inst.code, inst.flags, inst.a, inst.b, inst.c
            );
        }
    }
    out
}
