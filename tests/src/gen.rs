//! A generator of random, verifier-valid, terminating vm3 programs, for testing the
//! tiers against each other (spec §2, §3, §4).
//!
//! [`generate`] builds a [`Case`] from a seed: a program, its entry and the entry's
//! arguments. The same seed always gives the same case.
//!
//! What it covers: i64 arithmetic on registers and with 16-bit immediates (zero
//! divisors, `i16` extremes), wide constants (`i64::MIN`, -1, 2^47, ...), f64
//! arithmetic on interesting constants (NaNs with payloads and signs, infinities,
//! -0.0, subnormals, huge values), FmaF64, SqrtF64, conversions both ways, every
//! compare-and-branch form, Jump, LookupI64KW in and out of range, counted loops
//! (including one whose head is instruction 0), forward branches, `continue`/`break`,
//! calls of every form with arguments of mixed banks, self-recursion, tail calls (to
//! itself and to other functions, with argument blocks that shift registers), early
//! returns, Deopt anywhere, and traps (zero divisors, tables, the depth limit).
//! The heap: string constants (some not UTF-8), concatenation, lists and maps created,
//! grown in loops, read and written in and out of range, items of every kind (48-bit
//! integers and ones that do not fit, floats with NaNs, cells), handles of the wrong
//! kind or null, cell parameters and results, string/list/map/forged-handle arguments,
//! and small heap limits that runs pass (`heap limit exceeded`).
//! Functions have 0 to 7 parameters of any bank and register counts from 0 to 65,535
//! per bank; the entry is usually `main` (function 0); a few programs have more than
//! 256 functions. `generator_covers_what_it_promises` counts all of this.
//!
//! How termination is guaranteed:
//! - functions only call functions later in the list (the call graph is a DAG), except
//!   for self-recursion and self tail calls;
//! - a loop counts a *reserved* i64 register down to 0 (or, at instruction 0, from the
//!   zero it holds at entry down to a negative bound); no other instruction of the
//!   function writes a reserved register;
//! - self-recursion and self tail calls are driven by parameter `i0`, which the
//!   function first reduces with `ModI64K i0, i0, K+1`, tests with `CmpLeI64KBr i0, 0`,
//!   and passes on as `i0 - 1`; nothing else writes `i0`. The "runaway" recursion
//!   skips the reduction and stops only at a small negative `i0`, so it usually ends
//!   at the depth limit ([`DEPTH_LIMIT`]) with `call stack overflow`;
//! - every other branch goes forward.
//!
//! The generator also estimates the number of instructions a call of each function can
//! execute and keeps it under a budget, so that a case runs in well under a millisecond.

use fastrand::Rng;
use stencils::{Bank, Inst, Opcode, OperandKind};
use vm3::{Const, Function, Program, RegCounts, Value};

/// The depth limit the generated programs are meant to run with: recursion deeper than
/// this traps with `call stack overflow`, and the cost estimate assumes it.
pub const DEPTH_LIMIT: u64 = 64;

/// Estimated instructions one call of a function may execute (soft limit).
const FUNC_BUDGET: u64 = 20_000;
/// Most iterations an instruction may be nested in, counting all enclosing loops.
const MAX_MULT: u64 = 300;
/// `Kind::Recursive`'s k for a recursion bounded only by the depth limit.
const RUNAWAY: i64 = i64::MAX;
/// Deepest nesting of ifs and loops.
const MAX_NESTING: usize = 3;

/// One generated test case.
#[derive(Clone, Debug)]
pub struct Case {
    pub seed: u64,
    pub program: Program,
    pub entry: String,
    pub args: Vec<Value>,
    /// The heap limit to run with: usually roomy, sometimes small enough to pass.
    pub heap_limit: usize,
}

/// What the caller of a function needs to know about it.
#[derive(Clone, Debug)]
struct Sig {
    params: Vec<Bank>,
    result: Bank,
    /// Estimated instructions a call may execute.
    cost: u64,
}

/// How a function is shaped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Plain,
    /// Calls itself (not in a tail position) with `i0 - 1` while `i0 % (k + 1) > 0`
    /// (while `i0 != s` for a small negative `s` when `k == RUNAWAY`).
    Recursive {
        k: i64,
    },
    /// Tail-calls itself with `i0 - 1` while `i0 % (m + 1) > 0`.
    TailLoop {
        m: i64,
    },
}

const INTERESTING_I64: &[i64] = &[
    0,
    1,
    -1,
    2,
    -2,
    3,
    7,
    i64::MIN,
    i64::MAX,
    i64::MIN + 1,
    i64::MAX - 1,
    1 << 47,
    -(1 << 47),
    (1 << 47) - 1,
    1 << 32,
    -(1 << 32),
    u32::MAX as i64,
    i32::MIN as i64,
    3_037_000_499,
    9_007_199_254_740_993,
    -9_007_199_254_740_993,
    0x7fff,
    -0x8000,
    0x8000,
];

const INTERESTING_IMM: &[i16] = &[
    0,
    1,
    -1,
    2,
    -2,
    3,
    // Powers of two and their neighbours: the shift and mask forms of DivI64K and
    // ModI64K, and the magic-number form next to them.
    4,
    8,
    -8,
    7,
    16384,
    -16384,
    10,
    255,
    256,
    -256,
    i16::MIN,
    i16::MAX,
    i16::MIN + 1,
];

fn interesting_f64() -> &'static [f64] {
    &[
        0.0,
        -0.0,
        1.0,
        -1.0,
        0.5,
        2.0,
        3.0,
        0.1,
        -2.5,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::MAX,
        f64::MIN,
        f64::MIN_POSITIVE,
        f64::EPSILON,
        5e-324,
        -5e-324,
        1e300,
        -1e300,
        1e-300,
        1e-160,
        9.223372036854775e18,
        9.223372036854776e18,
        -9.223372036854776e18,
        -9.223372036854778e18,
        4503599627370497.0,
        9007199254740993.0,
        1e16,
        -0.49999999999999994,
        2.5,
        -1.5,
    ]
}

/// NaNs with payloads and signs other than the default one.
const ODD_NANS: &[u64] = &[
    0xFFF8_0000_0000_0000,
    0x7FF0_0000_0000_0001,
    0x7FF8_0000_0000_0123,
    0xFFF4_0000_0000_0042,
];

const CMP_I64: [Opcode; 6] = [
    Opcode::CmpEqI64Br,
    Opcode::CmpNeI64Br,
    Opcode::CmpLtI64Br,
    Opcode::CmpLeI64Br,
    Opcode::CmpGtI64Br,
    Opcode::CmpGeI64Br,
];
const CMP_I64K: [Opcode; 6] = [
    Opcode::CmpEqI64KBr,
    Opcode::CmpNeI64KBr,
    Opcode::CmpLtI64KBr,
    Opcode::CmpLeI64KBr,
    Opcode::CmpGtI64KBr,
    Opcode::CmpGeI64KBr,
];
const CMP_F64: [Opcode; 6] = [
    Opcode::CmpEqF64Br,
    Opcode::CmpNeF64Br,
    Opcode::CmpLtF64Br,
    Opcode::CmpLeF64Br,
    Opcode::CmpGtF64Br,
    Opcode::CmpGeF64Br,
];

fn pick<T: Copy>(rng: &mut Rng, items: &[T]) -> T {
    items[rng.usize(..items.len())]
}

fn random_i64(rng: &mut Rng) -> i64 {
    match rng.u32(0..10) {
        0..=5 => pick(rng, INTERESTING_I64),
        6..=7 => rng.i64(-100..100),
        _ => rng.i64(..),
    }
}

fn random_imm(rng: &mut Rng) -> i16 {
    match rng.u32(0..10) {
        0..=4 => pick(rng, INTERESTING_IMM),
        5..=7 => rng.i16(-20..20),
        _ => rng.i16(..),
    }
}

fn random_f64(rng: &mut Rng) -> f64 {
    match rng.u32(0..20) {
        0..=11 => pick(rng, interesting_f64()),
        12 => f64::from_bits(pick(rng, ODD_NANS)),
        13..=16 => (rng.f64() - 0.5) * 200.0,
        17 => rng.i32(-1000..1000) as f64,
        _ => f64::from_bits(rng.u64(..)),
    }
}

fn random_arg(rng: &mut Rng, bank: Bank) -> Value {
    match bank {
        Bank::I64 => Value::I64(if rng.bool() {
            rng.i64(-3..12)
        } else {
            random_i64(rng)
        }),
        Bank::F64 => Value::F64(random_f64(rng)),
        Bank::Cell => random_cell_arg(rng),
    }
}

/// A cell argument: an object the run's heap allocates, or raw bits (null, a float, a
/// 48-bit integer, a forged or stale handle).
fn random_cell_arg(rng: &mut Rng) -> Value {
    match rng.u32(0..10) {
        0..=2 => Value::Str(pick(rng, &["", "a", "hello", "h\u{e9}!"]).to_string()),
        3 => Value::Bytes(vec![0xFF, b'x']),
        4..=5 => Value::List(
            (0..rng.usize(0..6))
                .map(|_| match rng.u32(0..4) {
                    0 => Value::F64(random_f64(rng)),
                    _ => Value::I64(rng.i64(-5..100)),
                })
                .collect(),
        ),
        6 => Value::Map(
            (0..rng.i64(0..5))
                .map(|k| (k * 3, rng.i64(-9..9)))
                .collect(),
        ),
        7 => Value::Null,
        // No forged or stale handles: raw cell bits cannot cross the embedding boundary
        // (issue 10), so a run only sees handles it made.
        8 => Value::Bool(rng.bool()),
        _ => Value::List(vec![Value::Null, Value::Bool(rng.bool())]),
    }
}

/// Short strings to build constants from; some pieces are not UTF-8.
const STRING_PIECES: &[&[u8]] = &[
    b"",
    b"a",
    b"ab-",
    b"hello",
    b"h\xC3\xA9",
    b"\xFF\x00",
    b"\n\t\"\\",
];

/// What a cell register probably holds, as far as straight-line code tells: reads
/// prefer a register of the kind they want, so that most heap instructions do work
/// rather than trap (the tiers must agree either way).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CellGuess {
    Unknown,
    Str,
    List,
    Map,
}

/// A register count for a bank whose parameters need `need` registers.
fn register_count(rng: &mut Rng, need: u32, bank: Bank) -> u32 {
    let extra = match (bank, rng.u32(0..100)) {
        (Bank::Cell, 0..=34) => 0,
        (Bank::Cell, 35..=97) => rng.u32(1..7),
        (Bank::Cell, _) => rng.u32(7..40),
        (_, 0..=9) => 0,
        (_, 10..=44) => rng.u32(1..5),
        (_, 45..=89) => rng.u32(5..13),
        (_, 90..=97) => rng.u32(13..40),
        (_, 98) => rng.u32(260..320),
        (_, _) => match rng.u32(0..3) {
            0 => rng.u32(1000..65536 - need),
            _ => rng.u32(260..320),
        },
    };
    need + extra
}

/// Generates the case of `seed`.
pub fn generate(seed: u64) -> Case {
    let mut rng = Rng::with_seed(seed);
    let n = match rng.u32(0..100) {
        0..=9 => 1,
        10..=39 => rng.usize(2..4),
        40..=97 => rng.usize(4..8),
        // Function indexes past 255 (traps and deopts encode them).
        _ => rng.usize(260..400),
    };
    // Built last to first, so that a function knows everything about its callees.
    let mut sigs: Vec<Sig> = Vec::new(); // sigs[n - 1 - idx] is function idx
    let mut functions: Vec<Function> = Vec::new();
    for idx in (0..n).rev() {
        let callees: Vec<Sig> = sigs.iter().rev().cloned().collect(); // function idx+1+j
        let (func, sig) = FnGen::build(&mut rng, idx, &callees);
        sigs.push(sig);
        functions.push(func);
    }
    functions.reverse();
    // Usually main (function 0); sometimes a function further down the list.
    let entry = if rng.u32(0..10) == 0 {
        rng.usize(..n)
    } else {
        0
    };
    let args = functions[entry]
        .params
        .iter()
        .map(|&b| random_arg(&mut rng, b))
        .collect();
    let entry = functions[entry].name.clone();
    let heap_limit = match rng.u32(0..10) {
        0 => rng.usize(0..2048),
        1 => rng.usize(2048..65536),
        _ => 4 << 20,
    };
    Case {
        seed,
        program: Program { functions },
        entry,
        args,
        heap_limit,
    }
}

fn function_name(idx: usize) -> String {
    if idx == 0 {
        "main".to_string()
    } else {
        format!("f{idx}")
    }
}

/// A compare-and-branch condition.
#[derive(Clone, Copy)]
enum Cond {
    I64(Opcode, u16, u16),
    I64K(Opcode, u16, i16),
    F64(Opcode, u16, u16),
}

struct FnGen<'r> {
    rng: &'r mut Rng,
    idx: usize,
    kind: Kind,
    /// Signatures of functions `idx + 1 ..`.
    callees: &'r [Sig],
    params: Vec<Bank>,
    result: Bank,
    regs: RegCounts,
    code: Vec<Inst>,
    /// (instruction, label) pairs whose `c` is the label's position.
    fixups: Vec<(usize, usize)>,
    labels: Vec<Option<usize>>,
    consts: Vec<Const>,
    tables: Vec<Vec<i64>>,
    /// i64 registers no instruction may write except their loop's (or the recursion's).
    protected: Vec<bool>,
    /// Reserved loop counters not used by an enclosing loop.
    free_counters: Vec<u16>,
    /// i64 registers loaded once with a constant before the first branch and never
    /// written again (so `DivI64`/`ModI64` by them is division by a known constant in
    /// compiled code, `jit/src/constants.rs`); they are `protected` too.
    divisors: Vec<u16>,
    /// (latch, exit) labels of the enclosing loops.
    loops: Vec<(usize, usize)>,
    /// How many times the code being generated may run per activation.
    mult: u64,
    cost: u64,
    budget: u64,
    nesting: usize,
    /// Inside a conditional: an early return or tail call does not end every path.
    in_cond: usize,
    /// What each cell register probably holds.
    cells: Vec<CellGuess>,
}

impl<'r> FnGen<'r> {
    fn build(rng: &'r mut Rng, idx: usize, callees: &'r [Sig]) -> (Function, Sig) {
        let kind = match rng.u32(0..100) {
            0..=69 => Kind::Plain,
            70..=84 => Kind::Recursive {
                k: match rng.u32(0..20) {
                    0..=10 => rng.i64(1..7),
                    11..=15 => rng.i64(7..21),
                    16 => rng.i64(40..90),
                    _ => RUNAWAY,
                },
            },
            _ => Kind::TailLoop {
                m: match rng.u32(0..10) {
                    0..=4 => rng.i64(1..11),
                    5..=7 => rng.i64(10..200),
                    _ => rng.i64(200..3000),
                },
            },
        };
        let nparams = match rng.u32(0..10) {
            0..=1 => 0,
            2..=7 => rng.usize(1..4),
            _ => rng.usize(4..7),
        };
        let mut params: Vec<Bank> = (0..nparams)
            .map(|_| match rng.u32(0..20) {
                0..=10 => Bank::I64,
                11..=18 => Bank::F64,
                _ => Bank::Cell,
            })
            .collect();
        if kind != Kind::Plain {
            if params.is_empty() {
                params.push(Bank::I64);
            }
            params[0] = Bank::I64;
        }
        let result = match rng.u32(0..20) {
            0..=10 => Bank::I64,
            11..=16 => Bank::F64,
            _ => Bank::Cell,
        };
        let mut need = [0u32; 3];
        for (k, &b) in params.iter().enumerate() {
            need[b as usize] = need[b as usize].max(k as u32 + 1);
        }
        let mut regs = RegCounts::default();
        for b in Bank::ALL {
            regs.set(b, register_count(rng, need[b as usize], b));
        }
        if result == Bank::F64 && regs.f64 == 0 {
            regs.f64 = 1;
        }
        if result == Bank::Cell && regs.cell == 0 {
            regs.cell = 1;
        }
        // The recursion kinds need i0 plus a writable register for the counter argument.
        if kind != Kind::Plain && regs.i64 < 2 {
            regs.i64 = 2;
        }

        // Reserve loop counters among the i64 registers (never i0 of the recursion kinds).
        let mut protected = vec![false; regs.i64 as usize];
        if kind != Kind::Plain {
            protected[0] = true;
        }
        let mut free_counters = Vec::new();
        let want = rng.usize(0..4);
        for _ in 0..want {
            let writable = protected.iter().filter(|p| !**p).count();
            if writable <= 3 {
                break;
            }
            let r = loop {
                let r = hot(rng, regs.i64);
                if !protected[r as usize] {
                    break r;
                }
            };
            protected[r as usize] = true;
            free_counters.push(r);
        }
        // Constant divisors: never a parameter's register (a parameter is written at
        // entry), never the last writable ones.
        let mut divisors = Vec::new();
        let want = if rng.u32(0..3) == 0 {
            rng.usize(1..3)
        } else {
            0
        };
        for _ in 0..want {
            let writable: Vec<u16> = (params.len() as u16..regs.i64 as u16)
                .filter(|&r| !protected[r as usize])
                .collect();
            if writable.len() <= 3 {
                break;
            }
            let r = pick(rng, &writable);
            protected[r as usize] = true;
            divisors.push(r);
        }

        let budget = match kind {
            Kind::Plain => FUNC_BUDGET,
            Kind::Recursive { k } => FUNC_BUDGET / (k.min(DEPTH_LIMIT as i64) as u64 + 1),
            Kind::TailLoop { m } => (FUNC_BUDGET * 4 / (m as u64 + 1)).max(8),
        };
        let mut g = FnGen {
            rng,
            idx,
            kind,
            callees,
            params,
            result,
            regs,
            code: Vec::new(),
            fixups: Vec::new(),
            labels: Vec::new(),
            consts: Vec::new(),
            tables: Vec::new(),
            protected,
            free_counters,
            divisors,
            loops: Vec::new(),
            mult: 1,
            cost: 0,
            budget,
            nesting: 0,
            in_cond: 0,
            cells: vec![CellGuess::Unknown; regs.cell as usize],
        };
        let ntables = g.rng.usize(0..4);
        for _ in 0..ntables {
            let len = match g.rng.u32(0..10) {
                0 => 0,
                1..=7 => g.rng.usize(1..9),
                _ => g.rng.usize(9..40),
            };
            let table = (0..len).map(|_| random_i64(g.rng)).collect();
            g.tables.push(table);
        }
        g.body();
        // Zeroing the frame at entry costs too.
        g.cost += g.regs.total() as u64 / 16;
        let cost = match kind {
            Kind::Plain => g.cost,
            Kind::Recursive { k } => g.cost * (k.min(DEPTH_LIMIT as i64) as u64 + 1),
            Kind::TailLoop { m } => g.cost * (m as u64 + 1),
        };
        g.finish(cost)
    }

    fn finish(mut self, cost: u64) -> (Function, Sig) {
        for &(at, label) in &self.fixups {
            let target = self.labels[label].expect("every label is placed");
            self.code[at].c = target as i16;
        }
        // One name per branch target (`l<label>`: the assembler treats `L<n>` names
        // specially).
        let mut labels: Vec<(u32, String)> = Vec::new();
        for &(_, label) in &self.fixups {
            let at = self.labels[label].unwrap() as u32;
            if !labels.iter().any(|(pc, _)| *pc == at) {
                labels.push((at, format!("l{label}")));
            }
        }
        labels.sort();
        let mut func = Function::new(function_name(self.idx), self.params.clone(), self.result);
        func.regs = self.regs;
        func.code = self.code;
        func.consts = self.consts;
        func.table_names = (0..self.tables.len()).map(|t| format!("t{t}")).collect();
        func.tables = self.tables;
        func.labels = labels;
        let sig = Sig {
            params: self.params,
            result: self.result,
            cost: cost.max(1),
        };
        (func, sig)
    }

    // ---- emission helpers ----

    fn emit(&mut self, op: Opcode, a: u16, b: u16, c: i16) {
        self.code.push(Inst::new(op as u8, a, b, c));
        self.cost += self.mult;
    }

    fn new_label(&mut self) -> usize {
        self.labels.push(None);
        self.labels.len() - 1
    }

    fn place(&mut self, label: usize) {
        self.labels[label] = Some(self.code.len());
    }

    /// Emits a branch whose target is `label`.
    fn emit_branch(&mut self, op: Opcode, a: u16, b: u16, label: usize) {
        self.fixups.push((self.code.len(), label));
        self.emit(op, a, b, 0);
    }

    fn emit_cond(&mut self, cond: Cond, label: usize) {
        match cond {
            Cond::I64(op, a, b) | Cond::F64(op, a, b) => self.emit_branch(op, a, b, label),
            Cond::I64K(op, a, k) => self.emit_branch(op, a, k as u16, label),
        }
    }

    fn const_i64(&mut self, v: i64) -> i16 {
        self.consts.push(Const::I64(v));
        (self.consts.len() - 1) as i16
    }

    fn const_f64(&mut self, v: f64) -> i16 {
        self.consts.push(Const::F64(v));
        (self.consts.len() - 1) as i16
    }

    // ---- registers ----

    /// Any i64 register (reading is always allowed).
    fn ri(&mut self) -> Option<u16> {
        (self.regs.i64 > 0).then(|| hot(self.rng, self.regs.i64))
    }

    /// An i64 register the body may write.
    fn wi(&mut self) -> Option<u16> {
        for _ in 0..8 {
            let r = self.ri()?;
            if !self.protected[r as usize] {
                return Some(r);
            }
        }
        let writable: Vec<u16> = (0..self.regs.i64 as u16)
            .filter(|&r| !self.protected[r as usize])
            .collect();
        (!writable.is_empty()).then(|| pick(self.rng, &writable))
    }

    fn rf(&mut self) -> Option<u16> {
        (self.regs.f64 > 0).then(|| hot(self.rng, self.regs.f64))
    }

    /// f64 registers are never reserved.
    fn wf(&mut self) -> Option<u16> {
        self.rf()
    }

    // ---- the function ----

    fn body(&mut self) {
        self.load_divisors();
        match self.kind {
            Kind::Plain => {
                if self.rng.u32(0..10) == 0 {
                    self.loop_at_entry();
                }
                let n = self.rng.usize(3..30);
                self.block(n);
                self.end();
            }
            Kind::Recursive { k } => {
                let base = self.new_label();
                // The largest k recurses as deep as i0 says: bounded by the depth limit.
                // The runaway kind stops only when i0 passes a small negative number on
                // its way down, so mostly by hitting the depth limit.
                if k < RUNAWAY {
                    self.emit(Opcode::ModI64K, 0, 0, (k + 1) as i16);
                    self.emit_branch(Opcode::CmpLeI64KBr, 0, 0, base);
                } else {
                    let stop = self.rng.i16(-40..0);
                    self.emit_branch(Opcode::CmpEqI64KBr, 0, stop as u16, base);
                }
                let n = self.rng.usize(0..8);
                self.block(n);
                self.self_call(false);
                let n = self.rng.usize(0..6);
                self.block(n);
                self.end();
                self.place(base);
                let n = self.rng.usize(0..6);
                self.block(n);
                self.end();
            }
            Kind::TailLoop { .. } => {
                let done = self.new_label();
                let m = match self.kind {
                    Kind::TailLoop { m } => m,
                    _ => unreachable!(),
                };
                self.emit(Opcode::ModI64K, 0, 0, (m + 1) as i16);
                self.emit_branch(Opcode::CmpLeI64KBr, 0, 0, done);
                let n = self.rng.usize(0..8);
                self.block(n);
                self.self_call(true);
                self.place(done);
                let n = self.rng.usize(0..6);
                self.block(n);
                self.end();
            }
        }
    }

    /// The call of a recursion kind to itself with `i0 - 1` as its first argument.
    fn self_call(&mut self, tail: bool) {
        let me = Sig {
            params: self.params.clone(),
            result: self.result,
            cost: 0,
        };
        // B: iB receives i0 - 1, so it must be writable (or i0 itself).
        let bmax = self
            .arg_base_max(&me.params)
            .expect("the function's own registers hold its parameters");
        let mut b = 0u16;
        for _ in 0..8 {
            let cand = self.choose_base(bmax);
            if cand == 0 || !self.protected[cand as usize] {
                b = cand;
                break;
            }
        }
        self.set_args(&me.params, b, 1);
        self.emit(Opcode::SubI64K, b, 0, 1);
        let all_i64 = me.params.iter().all(|&p| p == Bank::I64);
        if tail {
            let op = if all_i64 && self.rng.bool() {
                Opcode::TailCallI64
            } else {
                Opcode::TailCallMixed
            };
            self.emit(op, 0, b, self.idx as i16);
        } else {
            self.emit_call_inst(&me, self.idx, b);
        }
    }

    fn block(&mut self, n: usize) {
        for _ in 0..n {
            if self.cost >= self.budget {
                break;
            }
            self.stmt();
        }
    }

    fn stmt(&mut self) {
        match self.rng.u32(0..122) {
            0..=15 => self.int_op(),
            16..=24 => self.int_k_op(),
            25..=29 => self.int_const(),
            30..=33 => self.div_reg(),
            34..=47 => self.float_op(),
            48..=51 => self.float_const(),
            52..=56 => self.convert(),
            57..=59 => self.lookup(),
            60..=67 => self.if_stmt(),
            68..=71 => self.if_else(),
            72..=77 => self.loop_stmt(),
            78..=86 => self.call_stmt(),
            87..=88 => self.emit(Opcode::Deopt, 0, 0, 0),
            89..=91 => self.early_exit(),
            92..=94 => self.moves(),
            95 => self.emit(Opcode::Nop, 0, 0, 0),
            118..=121 => self.pressure_loop(),
            _ => self.heap_stmt(),
        }
    }

    /// A loop that keeps more values alive than compiled code has machine registers for
    /// (4 integer, 8 float), in every bank: each trip updates chains of i64 and f64
    /// registers from one another, so each value is read again on the next trip, mixed
    /// with heap statements on the cell registers; a `Deopt`, a division that may trap
    /// or a call (whose arguments may be cached) can sit at any point of the body.
    fn pressure_loop(&mut self) {
        if self.nesting >= MAX_NESTING || self.free_counters.is_empty() {
            return;
        }
        let trips = self.rng.i64(1..6);
        let mult = self.mult * (trips as u64 + 1);
        if mult > MAX_MULT {
            return;
        }
        let ctr = self.free_counters.pop().unwrap();
        let ints: Vec<u16> = (0..self.regs.i64.min(16) as u16)
            .filter(|&r| r != ctr && !self.protected[r as usize])
            .collect();
        let floats: Vec<u16> = (0..self.regs.f64.min(16) as u16).collect();
        let latch = self.new_label();
        let exit = self.new_label();
        let outer_mult = self.mult;
        self.do_while(ctr, trips, mult, (latch, exit), |g| {
            let steps = g.rng.usize(4..24);
            for step in 0..steps {
                if g.cost >= g.budget {
                    break;
                }
                match g.rng.u32(0..20) {
                    0..=6 if ints.len() >= 2 => {
                        let j = step % ints.len();
                        let (a, b) = (ints[j], ints[(j + 1) % ints.len()]);
                        let op = pick(g.rng, &[Opcode::AddI64, Opcode::SubI64, Opcode::MulI64]);
                        g.emit(op, a, a, b as i16);
                    }
                    7..=13 if floats.len() >= 2 => {
                        let j = step % floats.len();
                        let (a, b) = (floats[j], floats[(j + 1) % floats.len()]);
                        let op = pick(g.rng, &[Opcode::AddF64, Opcode::SubF64, Opcode::MulF64]);
                        g.emit(op, a, a, b as i16);
                    }
                    14 | 15 => g.heap_stmt(),
                    16 => g.emit(Opcode::Deopt, 0, 0, 0),
                    17 => g.div_reg(),
                    18 => g.call_stmt(),
                    _ => g.stmt(),
                }
            }
        });
        self.mult = outer_mult;
        self.place(exit);
        self.free_counters.push(ctr);
    }

    fn int_op(&mut self) {
        let (Some(a), Some(b), Some(c)) = (self.wi(), self.ri(), self.ri()) else {
            return;
        };
        let op = pick(
            self.rng,
            &[
                Opcode::AddI64,
                Opcode::SubI64,
                Opcode::MulI64,
                Opcode::NegI64,
            ],
        );
        self.emit(op, a, b, if op == Opcode::NegI64 { 0 } else { c as i16 });
    }

    fn int_k_op(&mut self) {
        let (Some(a), Some(b)) = (self.wi(), self.ri()) else {
            return;
        };
        let op = pick(
            self.rng,
            &[
                Opcode::AddI64K,
                Opcode::SubI64K,
                Opcode::MulI64K,
                Opcode::DivI64K,
                Opcode::ModI64K,
            ],
        );
        let mut k = random_imm(self.rng);
        // A zero divisor always traps: keep it rare.
        if k == 0 && matches!(op, Opcode::DivI64K | Opcode::ModI64K) && self.rng.u32(0..8) != 0 {
            k = pick(self.rng, &[-1, 1, i16::MIN, i16::MAX, 3]);
        }
        self.emit(op, a, b, k);
    }

    fn int_const(&mut self) {
        let Some(a) = self.wi() else { return };
        if self.rng.bool() {
            let k = random_imm(self.rng);
            self.emit(Opcode::ConstI64K, a, 0, k);
        } else {
            let v = random_i64(self.rng);
            let k = self.const_i64(v);
            self.emit(Opcode::ConstI64KW, a, 0, k);
        }
    }

    /// Loads each constant divisor register, first thing in the function: a wide
    /// constant, a 16-bit one, or one of the interesting values (powers of two, +-1,
    /// `i64::MIN`, 0).
    fn load_divisors(&mut self) {
        for r in self.divisors.clone() {
            match self.rng.u32(0..3) {
                0 => {
                    let k = random_imm(self.rng);
                    self.emit(Opcode::ConstI64K, r, 0, k)
                }
                1 => {
                    let v = pick(self.rng, INTERESTING_I64);
                    let k = self.const_i64(v);
                    self.emit(Opcode::ConstI64KW, r, 0, k)
                }
                _ => {
                    let v = random_i64(self.rng);
                    let v = v >> self.rng.u32(0..63);
                    let k = self.const_i64(v);
                    self.emit(Opcode::ConstI64KW, r, 0, k)
                }
            }
        }
    }

    /// DivI64 / ModI64 by a register (often one holding a known constant): usually
    /// guarded against a zero divisor.
    fn div_reg(&mut self) {
        let (Some(a), Some(b), Some(mut c)) = (self.wi(), self.ri(), self.ri()) else {
            return;
        };
        if !self.divisors.is_empty() && self.rng.bool() {
            c = pick(self.rng, &self.divisors);
        }
        let op = if self.rng.bool() {
            Opcode::DivI64
        } else {
            Opcode::ModI64
        };
        if self.rng.u32(0..6) == 0 {
            self.emit(op, a, b, c as i16);
        } else {
            let skip = self.new_label();
            self.emit_branch(Opcode::CmpEqI64KBr, c, 0, skip);
            self.emit(op, a, b, c as i16);
            self.place(skip);
        }
    }

    fn float_op(&mut self) {
        let (Some(a), Some(b), Some(c)) = (self.wf(), self.rf(), self.rf()) else {
            return;
        };
        let op = pick(
            self.rng,
            &[
                Opcode::AddF64,
                Opcode::SubF64,
                Opcode::MulF64,
                Opcode::DivF64,
                Opcode::NegF64,
                Opcode::FmaF64,
                Opcode::SqrtF64,
                Opcode::MovF64,
            ],
        );
        match op {
            Opcode::NegF64 | Opcode::SqrtF64 | Opcode::MovF64 => self.emit(op, a, b, 0),
            Opcode::FmaF64 => {
                let lim = self.regs.f64.min(256);
                let x = hot(self.rng, lim);
                let y = hot(self.rng, lim);
                self.emit(op, a, b, (x | y << 8) as i16);
            }
            _ => self.emit(op, a, b, c as i16),
        }
    }

    fn float_const(&mut self) {
        let Some(a) = self.wf() else { return };
        let v = random_f64(self.rng);
        let k = self.const_f64(v);
        self.emit(Opcode::ConstF64K, a, 0, k);
    }

    fn convert(&mut self) {
        if self.rng.bool() {
            let (Some(a), Some(b)) = (self.wi(), self.rf()) else {
                return;
            };
            self.emit(Opcode::F64ToI64, a, b, 0);
        } else {
            let (Some(a), Some(b)) = (self.wf(), self.ri()) else {
                return;
            };
            self.emit(Opcode::I64ToF64, a, b, 0);
        }
    }

    fn moves(&mut self) {
        if self.rng.bool() {
            let (Some(a), Some(b)) = (self.wi(), self.ri()) else {
                return;
            };
            self.emit(Opcode::MovI64, a, b, 0);
        } else {
            let (Some(a), Some(b)) = (self.wf(), self.rf()) else {
                return;
            };
            self.emit(Opcode::MovF64, a, b, 0);
        }
    }

    /// LookupI64KW with an index in range, out of range (traps), or data-dependent
    /// behind a range check.
    fn lookup(&mut self) {
        if self.tables.is_empty() {
            return;
        }
        let (Some(a), Some(ix)) = (self.wi(), self.wi()) else {
            return;
        };
        let t = self.rng.usize(..self.tables.len());
        let len = self.tables[t].len() as i64;
        match self.rng.u32(0..10) {
            0..=5 if len > 0 => {
                let i = self.rng.i64(0..len);
                self.emit(Opcode::ConstI64K, ix, 0, i as i16);
                self.emit(Opcode::LookupI64KW, a, ix, t as i16);
            }
            0..=6 => {
                let i = pick(
                    self.rng,
                    &[-1, len, len + 1, i16::MIN as i64, i16::MAX as i64],
                );
                self.emit(Opcode::ConstI64K, ix, 0, i as i16);
                self.emit(Opcode::LookupI64KW, a, ix, t as i16);
            }
            7 => {
                // Whatever the register holds (often far outside).
                let Some(src) = self.ri() else { return };
                self.emit(Opcode::LookupI64KW, a, src, t as i16);
            }
            _ => {
                let Some(src) = self.ri() else { return };
                let skip = self.new_label();
                self.emit_branch(Opcode::CmpLtI64KBr, src, 0, skip);
                self.emit_branch(Opcode::CmpGeI64KBr, src, len as u16, skip);
                self.emit(Opcode::LookupI64KW, a, src, t as i16);
                self.place(skip);
            }
        }
    }

    fn cond(&mut self) -> Option<Cond> {
        match self.rng.u32(0..3) {
            0 => {
                let (a, b) = (self.ri()?, self.ri()?);
                Some(Cond::I64(pick(self.rng, &CMP_I64), a, b))
            }
            1 => {
                let a = self.ri()?;
                let k = random_imm(self.rng);
                Some(Cond::I64K(pick(self.rng, &CMP_I64K), a, k))
            }
            _ => {
                let (a, b) = (self.rf()?, self.rf()?);
                Some(Cond::F64(pick(self.rng, &CMP_F64), a, b))
            }
        }
    }

    /// `if cond goto skip; ...; skip:` (the target may also be the enclosing loop's
    /// latch or exit: a forward `continue` or `break`).
    fn if_stmt(&mut self) {
        if self.nesting >= MAX_NESTING {
            return;
        }
        let Some(cond) = self.cond() else { return };
        let skip = self.new_label();
        let target = match (self.loops.last(), self.rng.u32(0..6)) {
            (Some(&(latch, _)), 0) => latch,
            (Some(&(_, exit)), 1) => exit,
            _ => skip,
        };
        self.emit_cond(cond, target);
        self.nesting += 1;
        self.in_cond += 1;
        let n = self.rng.usize(1..5);
        self.block(n);
        self.in_cond -= 1;
        self.nesting -= 1;
        self.place(skip);
    }

    fn if_else(&mut self) {
        if self.nesting >= MAX_NESTING {
            return;
        }
        let Some(cond) = self.cond() else { return };
        let other = self.new_label();
        let end = self.new_label();
        self.emit_cond(cond, other);
        self.nesting += 1;
        self.in_cond += 1;
        let n = self.rng.usize(1..4);
        self.block(n);
        self.emit_branch(Opcode::Jump, 0, 0, end);
        self.place(other);
        let n = self.rng.usize(1..4);
        self.block(n);
        self.in_cond -= 1;
        self.nesting -= 1;
        self.place(end);
    }

    /// A counted loop on a reserved register, in one of two shapes.
    fn loop_stmt(&mut self) {
        if self.nesting >= MAX_NESTING || self.free_counters.is_empty() {
            return;
        }
        let trips: i64 = match self.rng.u32(0..10) {
            0 => self.rng.i64(-2..1),
            1..=7 => self.rng.i64(1..6),
            _ => self.rng.i64(6..30),
        };
        let mult = self.mult * (trips.max(0) as u64 + 1);
        if mult > MAX_MULT {
            return;
        }
        let ctr = self.free_counters.pop().unwrap();
        let latch = self.new_label();
        let exit = self.new_label();
        let outer_mult = self.mult;
        if trips >= 1 && self.rng.bool() {
            self.do_while(ctr, trips, mult, (latch, exit), |g| {
                let n = g.rng.usize(1..6);
                g.block(n);
            });
        } else {
            // while (ctr > 0) { body; ctr -= 1 }
            self.emit(Opcode::ConstI64K, ctr, 0, trips as i16);
            let head = self.new_label();
            self.place(head);
            self.mult = mult;
            if self.rng.bool() {
                self.emit_branch(Opcode::CmpLeI64KBr, ctr, 0, exit);
            } else {
                self.emit_branch(Opcode::CmpLtI64KBr, ctr, 1, exit);
            }
            self.loops.push((latch, exit));
            self.nesting += 1;
            let n = self.rng.usize(1..6);
            self.block(n);
            self.nesting -= 1;
            self.loops.pop();
            self.place(latch);
            if self.rng.bool() {
                self.emit(Opcode::SubI64K, ctr, ctr, 1);
            } else {
                self.emit(Opcode::AddI64K, ctr, ctr, -1);
            }
            self.emit_branch(Opcode::Jump, 0, 0, head);
        }
        self.mult = outer_mult;
        self.place(exit);
        self.free_counters.push(ctr);
    }

    /// `ctr = trips; do { body } while (--ctr > 0)`, with `latch` and `exit` as the
    /// labels a `continue` or `break` of the body jumps to and the body run `mult` times
    /// per activation.
    fn do_while(
        &mut self,
        ctr: u16,
        trips: i64,
        mult: u64,
        (latch, exit): (usize, usize),
        body: impl FnOnce(&mut Self),
    ) {
        self.emit(Opcode::ConstI64K, ctr, 0, trips as i16);
        let head = self.new_label();
        self.place(head);
        self.mult = mult;
        self.loops.push((latch, exit));
        self.nesting += 1;
        body(self);
        self.nesting -= 1;
        self.loops.pop();
        self.place(latch);
        self.emit(Opcode::SubI64K, ctr, ctr, 1);
        self.emit_branch(Opcode::CmpGtI64KBr, ctr, 0, head);
    }

    /// A do-while loop whose head is instruction 0 (a branch there must not run the
    /// prologue again) and whose counter is a non-parameter register, counted down from
    /// the zero it holds at entry (spec §1).
    fn loop_at_entry(&mut self) {
        let params = &self.params;
        let is_param = |r: u16| params.get(r as usize) == Some(&Bank::I64);
        let Some(pos) = self.free_counters.iter().position(|&r| !is_param(r)) else {
            return;
        };
        let trips = self.rng.i64(1..6);
        let ctr = self.free_counters.remove(pos);
        let head = self.new_label();
        let latch = self.new_label();
        let exit = self.new_label();
        self.place(head);
        let outer = self.mult;
        self.mult *= trips as u64 + 1;
        self.loops.push((latch, exit));
        self.nesting += 1;
        let n = self.rng.usize(1..6);
        self.block(n);
        self.nesting -= 1;
        self.loops.pop();
        self.place(latch);
        self.emit(Opcode::SubI64K, ctr, ctr, 1);
        self.emit_branch(Opcode::CmpGtI64KBr, ctr, -trips as u16, head);
        self.mult = outer;
        self.place(exit);
    }

    /// The largest first-argument register B for which every argument register
    /// `B + k` (in parameter k's bank) exists.
    fn arg_base_max(&self, params: &[Bank]) -> Option<u16> {
        let mut max = u16::MAX as i64;
        for (k, &b) in params.iter().enumerate() {
            max = max.min(self.regs.get(b) as i64 - 1 - k as i64);
        }
        (max >= 0).then_some(max as u16)
    }

    fn choose_base(&mut self, max: u16) -> u16 {
        match self.rng.u32(0..10) {
            0..=5 => self.rng.u16(0..=max.min(3)),
            6..=7 => self.rng.u16(0..=max),
            _ => max,
        }
    }

    /// Writes some of the argument registers `B + k` for `k >= from` (those the body
    /// may write).
    fn set_args(&mut self, params: &[Bank], b: u16, from: usize) {
        for (k, &bank) in params.iter().enumerate().skip(from) {
            let r = b + k as u16;
            if self.rng.u32(0..10) < 4 {
                continue;
            }
            match bank {
                Bank::I64 => {
                    if self.protected[r as usize] {
                        continue;
                    }
                    match self.rng.u32(0..3) {
                        0 => {
                            let k = random_imm(self.rng);
                            self.emit(Opcode::ConstI64K, r, 0, k)
                        }
                        1 => {
                            let v = random_i64(self.rng);
                            let k = self.const_i64(v);
                            self.emit(Opcode::ConstI64KW, r, 0, k)
                        }
                        _ => {
                            let s = self.ri().unwrap();
                            self.emit(Opcode::MovI64, r, s, 0)
                        }
                    }
                }
                Bank::F64 => {
                    if self.rng.bool() {
                        let v = random_f64(self.rng);
                        let k = self.const_f64(v);
                        self.emit(Opcode::ConstF64K, r, 0, k)
                    } else {
                        let s = self.rf().unwrap();
                        self.emit(Opcode::MovF64, r, s, 0)
                    }
                }
                Bank::Cell => {
                    if self.rng.bool() {
                        let k = self.const_str();
                        self.write_cell(Opcode::ConstStrKW, r, 0, k, CellGuess::Str);
                    } else {
                        self.write_cell(Opcode::NewList, r, 0, 2, CellGuess::List);
                    }
                }
            }
        }
    }

    // ---- the heap ----

    /// A string constant of the pool.
    fn const_str(&mut self) -> i16 {
        let mut bytes = Vec::new();
        for _ in 0..self.rng.usize(0..3) {
            bytes.extend_from_slice(pick(self.rng, STRING_PIECES));
        }
        self.consts.push(Const::Str(bytes));
        (self.consts.len() - 1) as i16
    }

    /// Any cell register (none are reserved).
    fn rc(&mut self) -> Option<u16> {
        (self.regs.cell > 0).then(|| hot(self.rng, self.regs.cell))
    }

    /// A cell register that probably holds `want`; sometimes any register, so that
    /// null and wrong-kind handles are exercised too.
    fn rc_of(&mut self, want: CellGuess) -> Option<u16> {
        let matching: Vec<u16> = (0..self.regs.cell as u16)
            .filter(|&r| self.cells[r as usize] == want)
            .collect();
        if self.rng.u32(0..20) == 0 {
            return self.rc();
        }
        if !matching.is_empty() {
            return Some(pick(self.rng, &matching));
        }
        // Nothing of that kind yet: make one.
        let r = self.rc()?;
        match want {
            CellGuess::Str => {
                let k = self.const_str();
                self.write_cell(Opcode::ConstStrKW, r, 0, k, want);
            }
            CellGuess::List => {
                let k = self.capacity_hint();
                self.write_cell(Opcode::NewList, r, 0, k, want);
            }
            CellGuess::Map => {
                let k = self.capacity_hint();
                self.write_cell(Opcode::NewMap, r, 0, k, want);
            }
            CellGuess::Unknown => {}
        }
        Some(r)
    }

    fn write_cell(&mut self, op: Opcode, a: u16, b: u16, c: i16, guess: CellGuess) {
        self.emit(op, a, b, c);
        self.cells[a as usize] = guess;
    }

    /// An i64 register set to an index near the list's valid range (usually inside it),
    /// or any register.
    fn index_reg(&mut self) -> Option<u16> {
        if self.rng.u32(0..20) == 0 {
            return self.ri();
        }
        let r = self.wi()?;
        let k = match self.rng.u32(0..20) {
            0 => pick(self.rng, &[-1, i16::MIN, 100, 4096]),
            1..=2 => self.rng.i16(2..8),
            _ => self.rng.i16(0..2),
        };
        self.emit(Opcode::ConstI64K, r, 0, k);
        Some(r)
    }

    /// A capacity hint: small inside loops (the allocation repeats), anything outside.
    fn capacity_hint(&mut self) -> i16 {
        if self.mult > 1 || self.rng.u32(0..4) != 0 {
            self.rng.i16(-2..10)
        } else {
            pick(self.rng, &[0, 1, 100, 1000, i16::MIN, i16::MAX])
        }
    }

    /// A map key: mostly a few small keys, so that lookups hit; sometimes any i64.
    fn key_reg(&mut self) -> Option<u16> {
        if self.rng.u32(0..4) == 0 {
            return self.ri();
        }
        let r = self.wi()?;
        let k = self.rng.i16(-3..24);
        self.emit(Opcode::ConstI64K, r, 0, k);
        Some(r)
    }

    /// A list register for a read or write at an index: usually given a few items
    /// first, so that indexes near 0 are in range.
    fn list_with_items(&mut self) -> Option<u16> {
        let list = self.rc_of(CellGuess::List)?;
        if self.rng.u32(0..10) < 9 {
            for _ in 0..self.rng.usize(1..4) {
                let item = self.wi()?;
                let v = self.rng.i16(-100..100);
                self.emit(Opcode::ConstI64K, item, 0, v);
                self.emit(Opcode::ListPushI64, list, item, 0);
            }
        }
        Some(list)
    }

    fn heap_stmt(&mut self) {
        if self.regs.cell == 0 {
            return;
        }
        use CellGuess as G;
        match self.rng.u32(0..20) {
            19 => self.nesting_loop(),
            0 => {
                let a = self.rc().unwrap();
                let k = self.const_str();
                self.write_cell(Opcode::ConstStrKW, a, 0, k, G::Str);
            }
            1 => {
                let a = self.rc().unwrap();
                let (b, c) = (self.rc_of(G::Str).unwrap(), self.rc_of(G::Str).unwrap());
                self.write_cell(Opcode::ConcatStr, a, b, c as i16, G::Str);
            }
            2 => {
                let (Some(a), Some(b)) = (self.wi(), self.rc_of(G::Str)) else {
                    return;
                };
                self.emit(Opcode::LenStr, a, b, 0);
            }
            3 => {
                let a = self.rc().unwrap();
                let k = self.capacity_hint();
                self.write_cell(Opcode::NewList, a, 0, k, G::List);
            }
            4 => {
                let (Some(a), Some(b)) = (self.wi(), self.rc_of(G::List)) else {
                    return;
                };
                self.emit(Opcode::ListLenI64, a, b, 0);
            }
            5..=7 => {
                // Pushes, often several in a row (growth), of values that mostly fit.
                let a = self.rc_of(G::List).unwrap();
                for _ in 0..self.rng.usize(1..4) {
                    let Some(b) = self.ri() else { return };
                    self.emit(Opcode::ListPushI64, a, b, 0);
                }
            }
            8 => {
                let (Some(a), Some(b), Some(c)) =
                    (self.wi(), self.list_with_items(), self.index_reg())
                else {
                    return;
                };
                self.emit(Opcode::ListGetI64, a, b, c as i16);
            }
            9 => {
                let (Some(a), Some(b), Some(c)) =
                    (self.list_with_items(), self.ri(), self.index_reg())
                else {
                    return;
                };
                self.emit(Opcode::ListSetI64, a, b, c as i16);
            }
            10 => {
                let (Some(a), Some(b), Some(c)) =
                    (self.wf(), self.list_with_items(), self.index_reg())
                else {
                    return;
                };
                // Usually read back a float stored at the same index.
                if self.rng.u32(0..3) != 0 {
                    if let Some(f) = self.rf() {
                        self.emit(Opcode::ListSetF64, b, f, c as i16);
                    }
                }
                self.emit(Opcode::ListGetF64, a, b, c as i16);
            }
            11 => {
                let (Some(a), Some(b), Some(c)) =
                    (self.list_with_items(), self.rf(), self.index_reg())
                else {
                    return;
                };
                self.emit(Opcode::ListSetF64, a, b, c as i16);
            }
            12 => {
                let (a, Some(b), Some(c)) =
                    (self.rc().unwrap(), self.list_with_items(), self.index_reg())
                else {
                    return;
                };
                self.write_cell(Opcode::ListGetCell, a, b, c as i16, G::Unknown);
            }
            13 => {
                let (Some(a), b, Some(c)) =
                    (self.list_with_items(), self.rc().unwrap(), self.index_reg())
                else {
                    return;
                };
                self.emit(Opcode::ListSetCell, a, b, c as i16);
            }
            14 => {
                let a = self.rc().unwrap();
                let k = self.capacity_hint();
                self.write_cell(Opcode::NewMap, a, 0, k, G::Map);
            }
            15..=16 => {
                let a = self.rc_of(G::Map).unwrap();
                for _ in 0..self.rng.usize(1..4) {
                    let (Some(b), Some(c)) = (self.key_reg(), self.ri()) else {
                        return;
                    };
                    self.emit(Opcode::MapSetI64I64, a, b, c as i16);
                }
            }
            _ => {
                let (Some(a), Some(b), Some(c)) = (self.wi(), self.rc_of(G::Map), self.key_reg())
                else {
                    return;
                };
                self.emit(Opcode::MapGetI64I64, a, b, c as i16);
            }
        }
    }

    /// A loop that nests lists in two cell registers, four levels a trip, so that a
    /// result may be nested past `vm3::MAX_VALUE_DEPTH`; when `shared`, each level holds
    /// the one below twice, so that a result may expand to 2^levels values (issue 10).
    fn nesting_loop(&mut self) {
        if self.nesting >= MAX_NESTING || self.free_counters.is_empty() || self.regs.cell < 2 {
            return;
        }
        let trips: i64 = match self.rng.u32(0..4) {
            0 => self.rng.i64(245..255),
            _ => self.rng.i64(1..20),
        };
        let mult = self.mult * (trips as u64 + 1);
        if mult > MAX_MULT {
            return;
        }
        let x = self.rc().unwrap();
        let Some(y) = (0..16).map(|_| self.rc().unwrap()).find(|&r| r != x) else {
            return;
        };
        let Some(t) = self.wi() else {
            return;
        };
        let shared = self.rng.bool();
        let ctr = self.free_counters.pop().unwrap();
        let (latch, exit) = (self.new_label(), self.new_label());
        let outer_mult = self.mult;
        self.do_while(ctr, trips, mult, (latch, exit), |g| {
            for (list, inner) in [(y, x), (x, y), (y, x), (x, y)] {
                g.emit(Opcode::ConstI64K, t, 0, 0);
                g.write_cell(Opcode::NewList, list, 0, 2, CellGuess::List);
                g.emit(Opcode::ListPushI64, list, t, 0);
                if shared {
                    g.emit(Opcode::ListPushI64, list, t, 0);
                }
                g.emit(Opcode::ListSetCell, list, inner, t as i16);
                if shared {
                    g.emit(Opcode::ConstI64K, t, 0, 1);
                    g.emit(Opcode::ListSetCell, list, inner, t as i16);
                }
            }
        });
        self.mult = outer_mult;
        self.place(exit);
        self.free_counters.push(ctr);
    }

    /// A callee (function index) that fits the budget and whose arguments fit this
    /// function's registers, with the largest possible B.
    fn pick_callee(&mut self, same_result: bool) -> Option<(usize, u16)> {
        let mut candidates = Vec::new();
        for (j, sig) in self.callees.iter().enumerate() {
            if self.cost + self.mult * (sig.cost + sig.params.len() as u64 + 1) > self.budget {
                continue;
            }
            if same_result && sig.result != self.result {
                continue;
            }
            if let Some(max) = self.arg_base_max(&sig.params) {
                candidates.push((self.idx + 1 + j, max));
            }
        }
        (!candidates.is_empty()).then(|| pick(self.rng, &candidates))
    }

    fn call_stmt(&mut self) {
        let Some((callee, max)) = self.pick_callee(false) else {
            return;
        };
        let sig = self.callees[callee - self.idx - 1].clone();
        let b = if sig.params.is_empty() && self.rng.u32(0..4) == 0 {
            pick(self.rng, &[max, 65535, 300, 1])
        } else {
            self.choose_base(max)
        };
        self.set_args(&sig.params, b, 0);
        self.cost += self.mult * sig.cost;
        self.emit_call_inst(&sig, callee, b);
    }

    /// CallI64 / CallF64 when the callee allows, else CallMixed. The destination is a
    /// writable register of the callee's result bank.
    fn emit_call_inst(&mut self, sig: &Sig, callee: usize, b: u16) {
        let dest = match sig.result {
            Bank::I64 => self.wi(),
            Bank::F64 => self.wf(),
            Bank::Cell => self.rc(),
        };
        let Some(dest) = dest else {
            // No register to receive the result: a tail call if allowed, else nothing.
            return;
        };
        let all = |bank| sig.params.iter().all(|&p| p == bank);
        let narrow = match sig.result {
            Bank::I64 if all(Bank::I64) => Some(Opcode::CallI64),
            Bank::F64 if all(Bank::F64) => Some(Opcode::CallF64),
            Bank::Cell => Some(Opcode::CallCell),
            _ => None,
        };
        if sig.result == Bank::Cell {
            self.cells[dest as usize] = CellGuess::Unknown;
        }
        match narrow {
            Some(op) if self.rng.u32(0..4) != 0 => self.emit(op, dest, b, callee as i16),
            _ => {
                self.code.push(Inst {
                    code: Opcode::CallMixed as u8,
                    flags: sig.result as u8,
                    a: dest,
                    b,
                    c: callee as i16,
                });
                self.cost += self.mult;
            }
        }
    }

    /// A return or a tail call to another function, inside a conditional.
    fn early_exit(&mut self) {
        if self.in_cond == 0 {
            return;
        }
        if self.rng.bool() {
            self.ret();
        } else {
            self.tail_call_other();
        }
    }

    /// A tail call to a later function with the same result bank, or a return if none
    /// fits.
    fn tail_call_other(&mut self) {
        let Some((callee, max)) = self.pick_callee(true) else {
            self.ret();
            return;
        };
        let sig = self.callees[callee - self.idx - 1].clone();
        let b = self.choose_base(max);
        self.set_args(&sig.params, b, 0);
        self.cost += self.mult * sig.cost;
        let all_i64 = sig.params.iter().all(|&p| p == Bank::I64);
        let op = if all_i64 && self.rng.bool() {
            Opcode::TailCallI64
        } else {
            Opcode::TailCallMixed
        };
        self.emit(op, 0, b, callee as i16);
    }

    fn ret(&mut self) {
        match self.result {
            Bank::I64 => match self.ri() {
                Some(r) if self.rng.u32(0..5) != 0 => self.emit(Opcode::ReturnI64, r, 0, 0),
                _ => {
                    let k = random_imm(self.rng);
                    self.emit(Opcode::ReturnConstK, 0, 0, k)
                }
            },
            Bank::F64 => {
                let r = self.rf().expect("an f64 function has an f64 register");
                self.emit(Opcode::ReturnF64, r, 0, 0)
            }
            Bank::Cell => {
                let r = self.rc().expect("a cell function has a cell register");
                self.emit(Opcode::ReturnCell, r, 0, 0)
            }
        }
    }

    /// The end of a path through the function: fold registers into one, then return it,
    /// or tail-call another function.
    fn end(&mut self) {
        if self.rng.u32(0..100) < 15 {
            self.tail_call_other();
            return;
        }
        if self.rng.u32(0..10) < 6 {
            match (self.checksum(), self.result) {
                (Some(acc), Bank::I64) => return self.emit(Opcode::ReturnI64, acc, 0, 0),
                (Some(acc), Bank::F64) => {
                    let f = self.wf().expect("an f64 function has an f64 register");
                    let g = self.rf().unwrap();
                    self.emit(Opcode::I64ToF64, f, acc, 0);
                    self.emit(Opcode::AddF64, f, f, g as i16);
                    return self.emit(Opcode::ReturnF64, f, 0, 0);
                }
                _ => {}
            }
        }
        self.ret();
    }

    /// Folds a sample of the registers (all of them, when there are few) into an i64
    /// register and returns it, so that the result depends on as much state as possible.
    fn checksum(&mut self) -> Option<u16> {
        let (acc, tmp) = (self.wi()?, self.wi()?);
        if acc == tmp {
            return None;
        }
        let ni = self.regs.i64 as u16;
        let int_regs: Vec<u16> = if ni <= 12 {
            (0..ni).collect()
        } else {
            (0..8).map(|_| self.rng.u16(0..ni)).collect()
        };
        for r in int_regs {
            if r == acc {
                continue;
            }
            self.emit(Opcode::MulI64K, acc, acc, 31);
            self.emit(Opcode::AddI64, acc, acc, r as i16);
        }
        let nf = self.regs.f64 as u16;
        let float_regs: Vec<u16> = if nf <= 4 {
            (0..nf).collect()
        } else {
            (0..4).map(|_| self.rng.u16(0..nf)).collect()
        };
        if nf > 0 {
            // A scratch f64 register for a scaled copy, which sees fractions.
            let fs = self.rng.u16(0..nf);
            let scale = self.const_f64(1048576.0);
            for r in float_regs {
                self.emit(Opcode::F64ToI64, tmp, r, 0);
                self.emit(Opcode::AddI64, acc, acc, tmp as i16);
                self.emit(Opcode::ConstF64K, fs, 0, scale);
                self.emit(Opcode::MulF64, fs, fs, r as i16);
                self.emit(Opcode::F64ToI64, tmp, fs, 0);
                self.emit(Opcode::MulI64K, acc, acc, 7);
                self.emit(Opcode::AddI64, acc, acc, tmp as i16);
            }
        }
        Some(acc)
    }
}

/// A register index below `n`, biased towards the first few so that instructions use
/// each other's results.
fn hot(rng: &mut Rng, n: u32) -> u16 {
    debug_assert!(n > 0);
    if rng.u32(0..10) < 8 {
        rng.u32(0..n.min(8)) as u16
    } else {
        rng.u32(0..n) as u16
    }
}

/// The program as text in the spirit of spec §5 (plus each function's register counts,
/// which the text format would infer), for failure messages.
pub fn listing(program: &Program) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    for f in &program.functions {
        let params: Vec<&str> = f.params.iter().map(|b| b.name()).collect();
        let _ = writeln!(
            out,
            "func {}({}) -> {}    ; registers: i64 {}, f64 {}, cell {}",
            f.name,
            params.join(", "),
            f.result.name(),
            f.regs.i64,
            f.regs.f64,
            f.regs.cell
        );
        for (t, table) in f.tables.iter().enumerate() {
            let vals: Vec<String> = table.iter().map(|v| v.to_string()).collect();
            let _ = writeln!(out, "    table t{t} = [{}]", vals.join(", "));
        }
        for (pc, inst) in f.code.iter().enumerate() {
            for (_, l) in f.labels.iter().filter(|(at, _)| *at as usize == pc) {
                let _ = writeln!(out, "{l}:");
            }
            let _ = writeln!(
                out,
                "    {:<14}{}    ; {pc}",
                mnemonic(inst),
                operands(program, f, inst)
            );
        }
        let _ = writeln!(out, "end\n");
    }
    out
}

fn mnemonic(inst: &Inst) -> String {
    match Opcode::from_u8(inst.code) {
        Some(op) => op.name().to_string(),
        None => format!("<opcode {}>", inst.code),
    }
}

fn operands(program: &Program, f: &Function, inst: &Inst) -> String {
    let Some(op) = Opcode::from_u8(inst.code) else {
        return format!("{inst:?}");
    };
    let label = |target: usize| {
        f.labels
            .iter()
            .find(|(at, _)| *at as usize == target)
            .map(|(_, l)| l.clone())
            .unwrap_or(format!("@{target}"))
    };
    let mut parts = Vec::new();
    for &(field, kind) in op.info().operands {
        let raw = inst.field(field);
        parts.push(match kind {
            OperandKind::Reg(b) => format!("{}{raw}", b.prefix()),
            OperandKind::Imm => format!("{}", raw as i16),
            OperandKind::Target => label(raw as usize),
            OperandKind::Const(_) => match f.consts.get(raw as usize) {
                Some(Const::I64(v)) => v.to_string(),
                Some(Const::F64(v)) if v.is_nan() && v.to_bits() != f64::NAN.to_bits() => {
                    format!("nan /*{:#x}*/", v.to_bits())
                }
                Some(Const::F64(v)) => format!("{v:?}"),
                Some(Const::Str(s)) => format!("{s:?}"),
                None => format!("#{raw}"),
            },
            OperandKind::Table => format!("t{raw}"),
            OperandKind::Callee => program
                .functions
                .get(raw as usize)
                .map(|c| c.name.clone())
                .unwrap_or(format!("${raw}")),
            OperandKind::Args(stencils::ArgBanks::F64) => format!("f{raw}"),
            OperandKind::Args(_) => format!("i{raw}"),
            OperandKind::Dest => match Bank::from_u8(inst.flags) {
                Some(b) => format!("{}{raw}", b.prefix()),
                None => format!("?{raw}"),
            },
            OperandKind::FmaPair => format!("f{}, f{}", raw & 0xFF, raw >> 8),
        });
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// The generator reaches every opcode and every frame and call shape it promises;
    /// each count is printed (`cargo test -p vm3-tests --lib -- --nocapture`).
    #[test]
    fn generator_covers_what_it_promises() {
        let mut ops: BTreeMap<&str, u64> = Opcode::ALL.iter().map(|op| (op.name(), 0)).collect();
        let mut shapes: BTreeMap<&str, u64> = BTreeMap::new();
        let mut count =
            |what: &'static str, yes: bool| *shapes.entry(what).or_default() += yes as u64;
        for seed in 0..2000 {
            let case = generate(seed);
            let p = &case.program;
            count(
                "programs with a function index past 255",
                p.functions.len() > 256,
            );
            for f in &p.functions {
                let mut is_param = vec![false; f.frame_slots()];
                for (k, &b) in f.params.iter().enumerate() {
                    is_param[f.regs.slot(b, k)] = true;
                }
                let longest_run = is_param
                    .split(|&p| p)
                    .map(|run| run.len())
                    .max()
                    .unwrap_or(0);
                count(
                    "functions zeroing more than 4 consecutive slots",
                    longest_run > 4,
                );
                count(
                    "functions zeroing 1 to 4 consecutive slots",
                    (1..=4).contains(&longest_run),
                );
                count(
                    "functions with no register in some bank",
                    Bank::ALL.iter().any(|&b| f.regs.get(b) == 0),
                );
                count("functions with no registers at all", f.frame_slots() == 0);
                count(
                    "functions with 256+ registers in a bank",
                    Bank::ALL.iter().any(|&b| f.regs.get(b) >= 256),
                );
                count(
                    "functions with 1000+ registers in a bank",
                    Bank::ALL.iter().any(|&b| f.regs.get(b) >= 1000),
                );
                count(
                    "functions with parameters in all three banks",
                    Bank::ALL.iter().all(|b| f.params.contains(b)),
                );
                count(
                    "functions with f64 parameters but f0 not one",
                    f.params.contains(&Bank::F64) && f.params.first() != Some(&Bank::F64),
                );
                for (pc, inst) in f.code.iter().enumerate() {
                    let op = Opcode::from_u8(inst.code).unwrap();
                    *ops.get_mut(op.name()).unwrap() += 1;
                    if let Some(field) = op.info().target_field() {
                        count("branches to instruction 0", inst.field(field) == 0);
                        count("backward branches", (inst.field(field) as usize) <= pc);
                    }
                    if !op.info().is_call() {
                        continue;
                    }
                    let callee = &p.functions[inst.c as usize];
                    let banks = Bank::ALL
                        .iter()
                        .filter(|b| callee.params.contains(b))
                        .count();
                    count("calls passing parameters of two or more banks", banks >= 2);
                    count("calls to a function index past 255", inst.c > 255);
                    count(
                        "calls with an argument register past 255",
                        inst.b > 255 && !callee.params.is_empty(),
                    );
                    if op.info().is_tail_call() {
                        count(
                            "self tail calls",
                            inst.c as usize == p.function_index(&f.name).unwrap(),
                        );
                        // The moves the JIT makes: does one read what another writes?
                        let moves: Vec<(usize, usize)> = callee
                            .params
                            .iter()
                            .enumerate()
                            .map(|(k, &b)| {
                                (callee.regs.slot(b, k), f.regs.slot(b, inst.b as usize + k))
                            })
                            .filter(|(d, s)| d != s)
                            .collect();
                        let chained = moves.iter().any(|(d, _)| moves.iter().any(|(_, s)| s == d));
                        count("tail calls whose argument moves must be ordered", chained);
                        count(
                            "tail calls to a larger frame",
                            callee.frame_slots() > f.frame_slots(),
                        );
                    } else if callee.name == f.name {
                        count("self calls (recursion)", true);
                    }
                }
            }
        }
        eprintln!("opcodes: {ops:?}");
        eprintln!("shapes: {shapes:#?}");
        let missing: Vec<&str> = ops
            .iter()
            .filter(|(_, &n)| n == 0)
            .map(|(name, _)| *name)
            .collect();
        assert!(
            missing.is_empty(),
            "the generator never emits {missing:?}: teach it the new opcodes"
        );
        let missing: Vec<&str> = shapes
            .iter()
            .filter(|(_, &n)| n == 0)
            .map(|(what, _)| *what)
            .collect();
        assert!(missing.is_empty(), "the generator never makes {missing:?}");
    }
}
