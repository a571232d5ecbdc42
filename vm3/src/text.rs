//! Printing programs in the `.vm3` text format: [`format_inst`] for listings and
//! [`to_text`] for whole programs that [`assemble`](crate::asm::assemble) reads back.
//!
//! Included by `asm.rs` (as `asm::text`); the public functions are re-exported there.

use crate::asm::{default_label_name, default_table_name, is_ident, PoolKey};
use crate::program::{Const, Function, Program};
use crate::verify::{const_kind, counts_of, needed_regs};
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use stencils::{ArgBanks, Bank, Inst, Opcode, OperandKind};

/// How constant operands are printed.
enum ConstMode {
    /// As the literal of the entry, whatever it is (listings).
    Listing,
    /// As literals: the pool is exactly what the assembler builds from them.
    Canonical,
    /// The pool is printed with `const` lines; an operand is a literal when the
    /// assembler would find that very entry for it, else `#N`. Holds the first index of
    /// each distinct entry.
    Explicit(HashMap<PoolKey, usize>),
}

/// What the operands of one function's instructions are printed with.
struct Names<'a> {
    program: &'a Program,
    func: &'a Function,
    /// Branch target → label.
    labels: HashMap<u32, String>,
    /// Table index → name.
    tables: Vec<String>,
    consts: ConstMode,
    /// Function index → name, where the name can be written (an identifier, unique).
    callees: &'a dyn Fn(usize) -> Option<String>,
}

/// One instruction of `func` (part of `program`, which names the callees) in text form:
/// the mnemonic, then its operands, as spec §5 writes them. Branch targets print as
/// the function's label for that instruction ([`Function::labels`]) or `L<index>`,
/// callees by name, constants as literals and tables by name (`table<i>` when
/// [`Function::table_names`] has none). Values out of range print raw (`@N`, `#N`,
/// `$N`); an unknown opcode prints as `<unknown opcode N ...>`.
///
/// # Panics
///
/// If `index` is not an instruction of `func`.
pub fn format_inst(program: &Program, func: &Function, index: usize) -> String {
    let inst = func.code[index];
    let mut labels = HashMap::new();
    for (i, name) in &func.labels {
        labels.entry(*i).or_insert_with(|| name.clone());
    }
    let tables = (0..func.tables.len())
        .map(|i| {
            func.table_names
                .get(i)
                .cloned()
                .unwrap_or_else(|| default_table_name(i))
        })
        .collect();
    let callees = |i: usize| program.functions.get(i).map(|f| f.name.clone());
    let names = Names {
        program,
        func,
        labels,
        tables,
        consts: ConstMode::Listing,
        callees: &callees,
    };
    inst_text(&names, &inst)
}

/// The whole program in text form, so that `assemble(&to_text(p), ..)` gives back a
/// program equal to `p` (code, constant pools, tables, register counts, labels and
/// table names) whenever `p` verifies and its names are identifiers, distinct where
/// they must be (functions; labels and tables within a function), except that fields an
/// opcode does not use print as nothing and come back as 0 (the verifier accepts any
/// value there, as the spec does not constrain them, and neither tier reads them). Label names of
/// [`Function::labels`] are kept; branch targets without one get `L<index>`.
///
/// To reach that exactly it uses the syntax the assembler adds to spec §5 (see the
/// [module documentation](super)): a `regs` line when a function has more registers
/// than its code uses, `const` lines when its pool is not what the assembler would
/// build from literals (unused or repeated entries, another order), `bits(0x...)` for
/// NaN payloads. Programs that do not verify print as far as the format can express
/// them (raw `@N`, `#N`, `$N` operands); a nonzero `flags` outside `CallMixed`, an
/// invalid bank in its `flags` and unknown opcodes cannot be expressed.
pub fn to_text(program: &Program) -> String {
    let mut name_count: HashMap<&str, usize> = HashMap::new();
    for f in &program.functions {
        *name_count.entry(f.name.as_str()).or_default() += 1;
    }
    let callees = |i: usize| {
        let f = program.functions.get(i)?;
        (is_ident(&f.name) && name_count[f.name.as_str()] == 1).then(|| f.name.clone())
    };
    let mut out = String::new();
    for (fi, func) in program.functions.iter().enumerate() {
        if fi > 0 {
            out.push('\n');
        }
        function_text(program, func, &callees, &mut out);
    }
    out
}

fn function_text(
    program: &Program,
    func: &Function,
    callees: &dyn Fn(usize) -> Option<String>,
    out: &mut String,
) {
    let params: Vec<&str> = func.params.iter().map(|b| b.name()).collect();
    let _ = writeln!(
        out,
        "func {}({}) -> {}",
        func.name,
        params.join(", "),
        func.result.name()
    );

    // Register counts the assembler would not infer.
    let need = counts_of(needed_regs(func, |i| {
        program.functions.get(i).map(|f| f.params.as_slice())
    }));
    if need != func.regs {
        let items: Vec<String> = Bank::ALL
            .into_iter()
            .filter(|&b| need.get(b) != func.regs.get(b))
            .map(|b| format!("{} {}", b.name(), func.regs.get(b)))
            .collect();
        let _ = writeln!(out, "    regs {}", items.join(", "));
    }

    // The constant pool, when literals alone would not rebuild it.
    let consts = if pool_is_canonical(func) {
        ConstMode::Canonical
    } else {
        let mut first = HashMap::new();
        for (i, c) in func.consts.iter().enumerate() {
            let kind = match c {
                Const::I64(_) => "i64",
                Const::F64(_) => "f64",
                Const::Str(_) => "str",
            };
            let _ = writeln!(out, "    const {kind} {}", literal(c));
            first.entry(PoolKey::of(c)).or_insert(i);
        }
        ConstMode::Explicit(first)
    };

    // Tables, with names that can be written and are distinct.
    let mut used = HashSet::new();
    let mut tables = Vec::new();
    for i in 0..func.tables.len() {
        let given = func
            .table_names
            .get(i)
            .filter(|n| is_ident(n) && !used.contains(*n))
            .cloned();
        let name = given.unwrap_or_else(|| unique(default_table_name(i), &used));
        used.insert(name.clone());
        tables.push(name);
    }
    for (values, name) in func.tables.iter().zip(&tables) {
        let values: Vec<String> = values.iter().map(|v| v.to_string()).collect();
        let _ = writeln!(out, "    table {name} = [{}]", values.join(", "));
    }

    // Labels: the recorded ones (that can be written), then one for every other target.
    let len = func.code.len();
    let mut used = HashSet::new();
    let mut at: Vec<Vec<String>> = vec![Vec::new(); len + 1];
    let mut labels: HashMap<u32, String> = HashMap::new();
    for (i, name) in &func.labels {
        if (*i as usize) <= len && is_ident(name) && used.insert(name.clone()) {
            at[*i as usize].push(name.clone());
            labels.entry(*i).or_insert_with(|| name.clone());
        }
    }
    for inst in &func.code {
        let Some(op) = Opcode::from_u8(inst.code) else {
            continue;
        };
        let Some(field) = op.info().target_field() else {
            continue;
        };
        let t = inst.field(field) as i16;
        if t < 0 || t as usize > len || labels.contains_key(&(t as u32)) {
            continue;
        }
        let name = unique(default_label_name(t as u32), &used);
        used.insert(name.clone());
        at[t as usize].push(name.clone());
        labels.insert(t as u32, name);
    }

    let names = Names {
        program,
        func,
        labels,
        tables,
        consts,
        callees,
    };
    for (pc, inst) in func.code.iter().enumerate() {
        for l in &at[pc] {
            let _ = writeln!(out, "{l}:");
        }
        let _ = writeln!(out, "    {}", inst_text(&names, inst));
    }
    for l in &at[len] {
        let _ = writeln!(out, "{l}:");
    }
    out.push_str("end\n");
}

/// `base`, or `base_`, `base__`, ... whichever is not in `used`.
fn unique(mut base: String, used: &HashSet<String>) -> String {
    while used.contains(&base) {
        base.push('_');
    }
    base
}

/// Whether assembling the function's constant operands as literals rebuilds its pool
/// exactly: every operand's entry of the right kind, entries distinct and in order of
/// first use, none unused.
fn pool_is_canonical(func: &Function) -> bool {
    let mut seen: HashMap<PoolKey, usize> = HashMap::new();
    for inst in &func.code {
        let Some(op) = Opcode::from_u8(inst.code) else {
            continue;
        };
        for &(field, kind) in op.info().operands {
            let OperandKind::Const(want) = kind else {
                continue;
            };
            let idx = inst.field(field) as i16;
            let Some(c) = usize::try_from(idx).ok().and_then(|i| func.consts.get(i)) else {
                return false;
            };
            if const_kind(c) != want {
                return false;
            }
            let next = seen.len();
            if *seen.entry(PoolKey::of(c)).or_insert(next) != idx as usize {
                return false;
            }
        }
    }
    seen.len() == func.consts.len()
}

fn inst_text(names: &Names<'_>, inst: &Inst) -> String {
    let Some(op) = Opcode::from_u8(inst.code) else {
        return format!(
            "<unknown opcode {} (flags {}, a {}, b {}, c {})>",
            inst.code, inst.flags, inst.a, inst.b, inst.c
        );
    };
    let info = op.info();
    let func = names.func;
    let callee = crate::verify::callee_index(inst, info).and_then(|c| usize::try_from(c).ok());
    let mut ops = Vec::new();
    for &(field, kind) in info.operands {
        let raw = inst.field(field);
        let signed = raw as i16;
        ops.push(match kind {
            OperandKind::Reg(bank) => format!("{}{raw}", bank.prefix()),
            OperandKind::Imm => signed.to_string(),
            OperandKind::Dest => match Bank::from_u8(inst.flags) {
                Some(bank) => format!("{}{raw}", bank.prefix()),
                None => format!("?{raw}"),
            },
            OperandKind::Args(allowed) => {
                let bank = match allowed {
                    ArgBanks::I64 => Bank::I64,
                    ArgBanks::F64 => Bank::F64,
                    ArgBanks::Any => callee
                        .and_then(|c| names.program.functions.get(c))
                        .and_then(|f| f.params.first().copied())
                        .unwrap_or(Bank::I64),
                };
                format!("{}{raw}", bank.prefix())
            }
            OperandKind::FmaPair => format!("f{}, f{}", raw & 0xFF, raw >> 8),
            OperandKind::Target => {
                if signed >= 0 && signed as usize <= func.code.len() {
                    let t = signed as u32;
                    names
                        .labels
                        .get(&t)
                        .cloned()
                        .unwrap_or_else(|| default_label_name(t))
                } else {
                    format!("@{signed}")
                }
            }
            OperandKind::Table => match usize::try_from(signed)
                .ok()
                .and_then(|i| names.tables.get(i))
            {
                Some(n) => n.clone(),
                None => format!("#{signed}"),
            },
            OperandKind::Callee => match usize::try_from(signed).ok().and_then(names.callees) {
                Some(n) => n,
                None => format!("${signed}"),
            },
            OperandKind::Const(want) => {
                let entry = usize::try_from(signed)
                    .ok()
                    .and_then(|i| func.consts.get(i).map(|c| (i, c)));
                match (&names.consts, entry) {
                    (ConstMode::Listing | ConstMode::Canonical, Some((_, c))) => literal(c),
                    (ConstMode::Explicit(first), Some((i, c)))
                        if const_kind(c) == want && first.get(&PoolKey::of(c)) == Some(&i) =>
                    {
                        literal(c)
                    }
                    _ => format!("#{signed}"),
                }
            }
        });
    }
    if ops.is_empty() {
        info.name.to_string()
    } else {
        format!("{:<11} {}", info.name, ops.join(", "))
    }
}

/// A constant as the assembler reads it back.
pub(crate) fn literal(c: &Const) -> String {
    match c {
        Const::I64(v) => v.to_string(),
        Const::F64(v) => f64_literal(*v),
        Const::Str(s) => str_literal(s),
    }
}

/// Shortest round-trip form; NaNs other than `nan` and `-nan` as `bits(0x...)`.
fn f64_literal(v: f64) -> String {
    let bits = v.to_bits();
    if v.is_nan() {
        if bits == 0x7FF8_0000_0000_0000 {
            "nan".to_string()
        } else if bits == 0xFFF8_0000_0000_0000 {
            "-nan".to_string()
        } else {
            format!("bits(0x{bits:016X})")
        }
    } else {
        // Debug prints the shortest form that parses back to the same bits and always
        // looks like a float (`1.0`, `-0.0`, `1e300`, `inf`).
        format!("{v:?}")
    }
}

/// A string literal: printable ASCII as is, `\n \t \\ \"`, every other byte `\xNN`.
fn str_literal(s: &[u8]) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for &b in s {
        match b {
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            0x20..=0x7E => out.push(b as char),
            _ => {
                let _ = write!(out, "\\x{b:02X}");
            }
        }
    }
    out.push('"');
    out
}
