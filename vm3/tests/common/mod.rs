//! Helpers shared by the vm3 integration tests: the kernels of `shared/kernels`,
//! program comparison that treats f64 constants by their bits, and a generator of
//! random valid programs driven by the opcode table.
#![allow(dead_code)]

use std::path::PathBuf;
use stencils::{ArgBanks, OperandKind};
use vm3::{Bank, Const, Function, Inst, Opcode, Program, RegCounts};

/// Mnemonics of spec §2's "Strings, lists, maps" table (plus the cell call and return
/// that come with them). Kernels using one of these are skipped while the opcode is
/// not in the table yet.
pub const HEAP_MNEMONICS: &[&str] = &[
    "ConstStrKW",
    "LenStr",
    "ConcatStr",
    "NewList",
    "ListLenI64",
    "ListPushI64",
    "ListGetI64",
    "ListSetI64",
    "ListGetF64",
    "ListSetF64",
    "ListGetCell",
    "ListSetCell",
    "NewMap",
    "MapSetI64I64",
    "MapGetI64I64",
    "ReturnCell",
    "CallCell",
];

/// Every `.vm3` kernel: (file name, source).
pub fn kernels() -> Vec<(String, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/kernels");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "vm3") {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            out.push((name, std::fs::read_to_string(&path).unwrap()));
        }
    }
    out.sort();
    assert!(out.len() >= 10, "kernels not found in {}", dir.display());
    out
}

/// Whether `source` uses a string/list/map opcode that the table does not have yet.
pub fn uses_missing_heap_opcode(source: &str) -> bool {
    source.lines().any(|line| {
        let code = line.split(';').next().unwrap();
        let code = code.rsplit(':').next().unwrap();
        let first = code.split_whitespace().next().unwrap_or("");
        HEAP_MNEMONICS.contains(&first) && !Opcode::ALL.iter().any(|op| op.name() == first)
    })
}

/// The kernels that the current opcode table can assemble (at least the eleven
/// without strings, lists or maps).
pub fn plain_kernels() -> Vec<(String, String)> {
    let all = kernels();
    let plain: Vec<_> = all
        .into_iter()
        .filter(|(_, s)| !uses_missing_heap_opcode(s))
        .collect();
    assert!(
        plain.len() >= 11,
        "expected the eleven kernels without heap opcodes, found {}",
        plain.len()
    );
    plain
}

/// A comparable form of a constant: f64 by bits.
#[derive(Debug, PartialEq, Eq)]
pub enum ConstBits {
    I64(i64),
    F64(u64),
    Str(Vec<u8>),
}

/// A comparable form of a function (`Function`'s `PartialEq` says NaN != NaN).
#[derive(Debug, PartialEq, Eq)]
pub struct FuncBits {
    pub name: String,
    pub params: Vec<Bank>,
    pub result: Bank,
    pub regs: RegCounts,
    pub code: Vec<Inst>,
    pub consts: Vec<ConstBits>,
    pub tables: Vec<Vec<i64>>,
    pub table_names: Vec<String>,
    pub labels: Vec<(u32, String)>,
}

pub fn bits(p: &Program) -> Vec<FuncBits> {
    p.functions
        .iter()
        .map(|f| FuncBits {
            name: f.name.clone(),
            params: f.params.clone(),
            result: f.result,
            regs: f.regs,
            code: f.code.clone(),
            consts: f
                .consts
                .iter()
                .map(|c| match c {
                    Const::I64(v) => ConstBits::I64(*v),
                    Const::F64(v) => ConstBits::F64(v.to_bits()),
                    Const::Str(s) => ConstBits::Str(s.clone()),
                })
                .collect(),
            tables: f.tables.clone(),
            table_names: f.table_names.clone(),
            labels: f.labels.clone(),
        })
        .collect()
}

/// xorshift64*: a small deterministic generator.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in 0..n (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn chance(&mut self, one_in: u64) -> bool {
        self.below(one_in) == 0
    }
    pub fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }
}

fn return_opcodes(bank: Bank) -> Vec<Opcode> {
    Opcode::ALL
        .iter()
        .copied()
        .filter(|op| op.info().returned_bank() == Some(bank))
        .collect()
}

fn random_f64(rng: &mut Rng) -> f64 {
    match rng.below(6) {
        0 => rng.pick(&[
            0.0,
            -0.0,
            1.0,
            -2.5,
            1e300,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            -f64::NAN,
        ]),
        1 => f64::from_bits(0x7FF0_0000_0000_0000 | (rng.next() & 0x000F_FFFF_FFFF_FFFF) | 1), // NaN payloads
        2 => f64::from_bits(rng.below(1 << 20)), // subnormals
        _ => f64::from_bits(rng.next()),
    }
}

/// A random string constant; some are not UTF-8 (strings are bytes).
fn random_str(rng: &mut Rng) -> Vec<u8> {
    let pieces = [
        "",
        "a",
        "hi\n",
        "tab\there",
        "q\"uote",
        "back\\slash",
        "h\u{e9}",
        "semi;colon",
        "\u{1}\u{7f}",
        "\u{1F600}",
    ];
    let mut bytes: Vec<u8> = (0..rng.below(3))
        .flat_map(|_| rng.pick(&pieces).as_bytes().to_vec())
        .collect();
    if rng.below(4) == 0 {
        bytes.extend_from_slice(&[0xFF, 0x00, 0xC3]);
    }
    bytes
}

fn kind_of(c: &Const) -> stencils::ConstKind {
    match c {
        Const::I64(_) => stencils::ConstKind::I64,
        Const::F64(_) => stencils::ConstKind::F64,
        Const::Str(_) => stencils::ConstKind::Str,
    }
}

fn random_const(rng: &mut Rng, kind: stencils::ConstKind) -> Const {
    match kind {
        stencils::ConstKind::I64 => Const::I64(match rng.below(4) {
            0 => rng.pick(&[i64::MIN, i64::MAX, 0, -1, 1 << 47]),
            1 => rng.below(8) as i64, // repeats, for pooling
            _ => rng.next() as i64,
        }),
        stencils::ConstKind::F64 => Const::F64(if rng.chance(3) {
            rng.below(4) as f64
        } else {
            random_f64(rng)
        }),
        stencils::ConstKind::Str => Const::Str(random_str(rng)),
    }
}

/// A random program that verifies: every operand is generated from its
/// `OperandKind`, calls go to callees whose signature fits, and each function ends
/// with a return of its result bank. Pools are sometimes deduplicated and sometimes
/// not; register counts are sometimes larger than the code needs.
pub fn random_program(rng: &mut Rng) -> Program {
    let returnable: Vec<Bank> = Bank::ALL
        .into_iter()
        .filter(|&b| !return_opcodes(b).is_empty())
        .collect();
    let n = 1 + rng.below(5) as usize;
    let mut functions = Vec::new();
    for fi in 0..n {
        let params: Vec<Bank> = (0..rng.below(4)).map(|_| rng.pick(&Bank::ALL)).collect();
        let result = rng.pick(&returnable);
        let mut f = Function::new(format!("f{fi}"), params, result);
        for bank in Bank::ALL {
            let least = f
                .params
                .iter()
                .enumerate()
                .filter(|(_, &b)| b == bank)
                .map(|(k, _)| k as u32 + 1)
                .max()
                .unwrap_or(0);
            let n = match rng.below(8) {
                0 => 0,
                1 => 300,
                _ => 1 + rng.below(8) as u32,
            };
            f.regs.set(bank, n.max(least));
        }
        for _ in 0..rng.below(3) {
            let len = rng.below(4) as usize;
            f.tables.push((0..len).map(|_| rng.next() as i64).collect());
        }
        functions.push(f);
    }
    let sigs: Vec<(Vec<Bank>, Bank)> = functions
        .iter()
        .map(|f| (f.params.clone(), f.result))
        .collect();
    let dedupe = rng.chance(2);
    for f in functions.iter_mut() {
        let body = rng.below(25) as usize;
        let len = body + 1;
        let mut tries = 0;
        while f.code.len() < body && tries < 1000 {
            tries += 1;
            if let Some(inst) = random_inst(rng, f, &sigs, len, dedupe) {
                f.code.push(inst);
            }
        }
        if !dedupe && rng.chance(4) {
            // An unused entry.
            f.consts.push(Const::I64(rng.next() as i64));
        }
        // The final return.
        loop {
            let op = rng.pick(&return_opcodes(f.result));
            if let Some(inst) = random_inst_of(rng, op, f, &sigs, len, dedupe) {
                f.code.push(inst);
                break;
            }
            // No register of the bank: make one.
            let b = f.result;
            f.regs.set(b, f.regs.get(b).max(1));
        }
    }
    Program { functions }
}

fn random_inst(
    rng: &mut Rng,
    f: &mut Function,
    sigs: &[(Vec<Bank>, Bank)],
    len: usize,
    dedupe: bool,
) -> Option<Inst> {
    let op = rng.pick(&Opcode::ALL);
    random_inst_of(rng, op, f, sigs, len, dedupe)
}

fn random_inst_of(
    rng: &mut Rng,
    op: Opcode,
    f: &mut Function,
    sigs: &[(Vec<Bank>, Bank)],
    len: usize,
    dedupe: bool,
) -> Option<Inst> {
    let info = op.info();
    if info.returned_bank().is_some_and(|b| b != f.result) {
        return None;
    }
    let mut inst = Inst::new(op as u8, 0, 0, 0);
    let reg = |rng: &mut Rng, bank: Bank, f: &Function| -> Option<u16> {
        let n = f.regs.get(bank);
        (n > 0).then(|| rng.below(n as u64) as u16)
    };
    // Pick the destination bank first (it constrains the callee).
    let mut dest_bank = None;
    for &(_, kind) in info.operands {
        match kind {
            OperandKind::Dest => dest_bank = Some(rng.pick(&Bank::ALL)),
            OperandKind::Reg(b) if dest_bank.is_none() => dest_bank = Some(b),
            _ => {}
        }
    }
    let callee = if info.is_call() {
        let allowed = info.operands.iter().find_map(|(_, k)| match k {
            OperandKind::Args(a) => Some(*a),
            _ => None,
        });
        let fits: Vec<usize> = (0..sigs.len())
            .filter(|&i| {
                let (params, result) = &sigs[i];
                let params_ok = match allowed {
                    Some(ArgBanks::I64) => params.iter().all(|&b| b == Bank::I64),
                    Some(ArgBanks::F64) => params.iter().all(|&b| b == Bank::F64),
                    _ => true,
                };
                let result_ok = if info.is_tail_call() {
                    *result == f.result
                } else {
                    dest_bank.is_none_or(|d| d == *result)
                };
                params_ok && result_ok
            })
            .collect();
        if fits.is_empty() {
            return None;
        }
        Some(rng.pick(&fits))
    } else {
        None
    };
    for &(field, kind) in info.operands {
        let v: u16 = match kind {
            OperandKind::Reg(b) => reg(rng, b, f)?,
            OperandKind::Imm => rng.next() as i16 as u16,
            OperandKind::Target => rng.below(len as u64) as u16,
            OperandKind::Const(k) => {
                let same_kind: Vec<usize> = (0..f.consts.len())
                    .filter(|&i| kind_of(&f.consts[i]) == k)
                    .collect();
                if !same_kind.is_empty() && rng.chance(2) {
                    // Reuse an entry, or (without deduplication) repeat it.
                    let i = rng.pick(&same_kind);
                    if dedupe || rng.chance(2) {
                        i as u16
                    } else {
                        f.consts.push(f.consts[i].clone());
                        (f.consts.len() - 1) as u16
                    }
                } else {
                    let c = random_const(rng, k);
                    let same = |x: &Const| match (x, &c) {
                        (Const::F64(a), Const::F64(b)) => a.to_bits() == b.to_bits(),
                        _ => *x == c,
                    };
                    let i = match f.consts.iter().position(same) {
                        Some(i) if dedupe => i,
                        _ => {
                            f.consts.push(c);
                            f.consts.len() - 1
                        }
                    };
                    i as u16
                }
            }
            OperandKind::Table => {
                if f.tables.is_empty() {
                    return None;
                }
                rng.below(f.tables.len() as u64) as u16
            }
            OperandKind::Callee => callee.unwrap() as u16,
            OperandKind::Args(_) => {
                let params = &sigs[callee.unwrap()].0;
                // B + k must be a register of param k's bank for every k.
                let mut room = u32::MAX;
                for (k, &b) in params.iter().enumerate() {
                    room = room.min(f.regs.get(b).saturating_sub(k as u32));
                }
                if params.is_empty() {
                    rng.below(70_000) as u16
                } else if room == 0 {
                    return None;
                } else {
                    rng.below(room as u64) as u16
                }
            }
            OperandKind::Dest => {
                let b = dest_bank.unwrap();
                inst.flags = b as u8;
                reg(rng, b, f)?
            }
            OperandKind::FmaPair => {
                let n = f.regs.get(Bank::F64).min(256);
                if n == 0 {
                    return None;
                }
                (rng.below(n as u64) | rng.below(n as u64) << 8) as u16
            }
        };
        match field {
            stencils::Field::A => inst.a = v,
            stencils::Field::B => inst.b = v,
            stencils::Field::C => inst.c = v as i16,
        }
    }
    Some(inst)
}
