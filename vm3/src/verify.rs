//! The verifier (spec §4): bytecode is untrusted, so before anything runs a program
//! every function is checked against the opcode metadata ([`stencils::OPCODES`]).
//!
//! Nothing here names an opcode: every rule is driven by the [`OpInfo`] of the
//! instruction's code (operand kinds, `terminal`, `returns`, calls and tail calls), so
//! opcodes added to `stencils` are verified without changes here.

use crate::program::{Const, Function, Program, RegCounts};
use stencils::{ArgBanks, Bank, ConstKind, Field, Inst, OpInfo, Opcode, OperandKind};

/// At most this many registers per bank (spec §1).
pub const MAX_REGS: u32 = 65_535;
/// At most this many functions in a program.
pub const MAX_FUNCTIONS: usize = 65_536;
/// At most this many instructions in a function (indexes fit a `u32`).
pub const MAX_CODE_LEN: u64 = u32::MAX as u64;

/// One reason a program is rejected: the function, the instruction (if the error is
/// about one) and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct VerifyError {
    /// Index of the function.
    pub func: usize,
    /// Its name.
    pub function: String,
    /// The instruction index, or `None` for an error about the function as a whole.
    pub index: Option<u32>,
    pub reason: String,
}

impl std::fmt::Display for VerifyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.index {
            Some(i) => write!(
                f,
                "function {}, instruction {}: {}",
                self.function, i, self.reason
            ),
            None => write!(f, "function {}: {}", self.function, self.reason),
        }
    }
}

/// What an instruction uses a register for; see [`for_each_register`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RegUse {
    /// The register operand held in this field (`Reg` and `Dest` kinds).
    Operand(Field),
    /// X of `FmaF64`'s packed pair.
    FmaX,
    /// Y of `FmaF64`'s packed pair.
    FmaY,
    /// Argument `k` of a call: register `B + k` of the callee's parameter `k`'s bank.
    Arg(usize),
}

/// Calls `f(bank, index, use)` for every register `inst` names, per `info`: register
/// operands, a `Dest` (if `flags` holds a bank), both registers of an `FmaPair`, and for
/// a call every argument register, given the callee's parameters (`None` when the
/// callee is unknown). Indexes are `u32` so that `B + k` cannot overflow.
pub(crate) fn for_each_register(
    inst: &Inst,
    info: &OpInfo,
    callee_params: Option<&[Bank]>,
    mut f: impl FnMut(Bank, u32, RegUse),
) {
    for &(field, kind) in info.operands {
        let raw = inst.field(field);
        match kind {
            OperandKind::Reg(bank) => f(bank, raw as u32, RegUse::Operand(field)),
            OperandKind::Dest => {
                if let Some(bank) = Bank::from_u8(inst.flags) {
                    f(bank, raw as u32, RegUse::Operand(field));
                }
            }
            OperandKind::FmaPair => {
                f(Bank::F64, (raw & 0xFF) as u32, RegUse::FmaX);
                f(Bank::F64, (raw >> 8) as u32, RegUse::FmaY);
            }
            OperandKind::Args(_) => {
                if let Some(params) = callee_params {
                    for (k, &bank) in params.iter().enumerate() {
                        f(bank, raw as u32 + k as u32, RegUse::Arg(k));
                    }
                }
            }
            OperandKind::Imm
            | OperandKind::Target
            | OperandKind::Const(_)
            | OperandKind::Table
            | OperandKind::Callee => {}
        }
    }
}

/// The function index `inst` calls, if `info` is a call (the raw, sign-extended field;
/// it may be out of range).
pub(crate) fn callee_index(inst: &Inst, info: &OpInfo) -> Option<i64> {
    info.operands
        .iter()
        .find(|(_, k)| *k == OperandKind::Callee)
        .map(|(field, _)| inst.field(*field) as i16 as i64)
}

/// The register counts a function needs: one more than the highest index each bank's
/// registers use (argument registers included, given the callees' parameters), and at
/// least enough for the parameters. `params_of(i)` gives function `i`'s parameters.
/// Counts may exceed [`MAX_REGS`]; callers report that.
pub(crate) fn needed_regs<'p>(
    func: &Function,
    params_of: impl Fn(usize) -> Option<&'p [Bank]>,
) -> [u32; 3] {
    let mut need = [0u32; 3];
    for (k, &bank) in func.params.iter().enumerate() {
        let slot = &mut need[bank as usize];
        *slot = (*slot).max(k as u32 + 1);
    }
    for inst in &func.code {
        let Some(op) = Opcode::from_u8(inst.code) else {
            continue;
        };
        let info = op.info();
        let callee = callee_index(inst, info)
            .and_then(|c| usize::try_from(c).ok())
            .and_then(&params_of);
        for_each_register(inst, info, callee, |bank, index, _| {
            let slot = &mut need[bank as usize];
            *slot = (*slot).max(index + 1);
        });
    }
    need
}

/// The counts of `need` as a [`RegCounts`].
pub(crate) fn counts_of(need: [u32; 3]) -> RegCounts {
    RegCounts {
        i64: need[0],
        f64: need[1],
        cell: need[2],
    }
}

/// `an i64`, `an f64`, `a cell`.
pub(crate) fn bank_article(bank: Bank) -> &'static str {
    match bank {
        Bank::I64 => "an i64",
        Bank::F64 => "an f64",
        Bank::Cell => "a cell",
    }
}

/// The kind of a constant-pool entry.
pub(crate) fn const_kind(c: &Const) -> ConstKind {
    match c {
        Const::I64(_) => ConstKind::I64,
        Const::F64(_) => ConstKind::F64,
        Const::Str(_) => ConstKind::Str,
    }
}

/// `an i64`, `an f64`, `a string`.
pub(crate) fn const_kind_article(kind: ConstKind) -> &'static str {
    match kind {
        ConstKind::I64 => "an i64",
        ConstKind::F64 => "an f64",
        ConstKind::Str => "a string",
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

fn signature(f: &Function) -> String {
    let params: Vec<&str> = f.params.iter().map(|b| b.name()).collect();
    format!("({}) -> {}", params.join(", "), f.result.name())
}

/// Checks `p` against every rule of spec §4 and the implementation limits (registers
/// per bank, number of functions, code length). Returns every error found, in function
/// then instruction order.
pub fn verify(p: &Program) -> Result<(), Vec<VerifyError>> {
    let mut errors = Vec::new();
    for (fi, func) in p.functions.iter().enumerate() {
        let mut err = |index: Option<u32>, reason: String| {
            errors.push(VerifyError {
                func: fi,
                function: func.name.clone(),
                index,
                reason,
            });
        };
        if fi == MAX_FUNCTIONS {
            err(
                None,
                format!(
                    "too many functions: the program has {}, at most {MAX_FUNCTIONS} are allowed",
                    p.functions.len()
                ),
            );
        }
        verify_function(p, func, &mut err);
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn verify_function(p: &Program, func: &Function, err: &mut impl FnMut(Option<u32>, String)) {
    // The function as a whole.
    for bank in Bank::ALL {
        let n = func.regs.get(bank);
        if n > MAX_REGS {
            err(
                None,
                format!(
                    "too many {} registers: {n} (at most {MAX_REGS})",
                    bank.name()
                ),
            );
        }
    }
    if func.code.len() as u64 > MAX_CODE_LEN {
        err(
            None,
            format!(
                "code too long: {} instructions (at most {MAX_CODE_LEN})",
                func.code.len()
            ),
        );
    }
    for (k, &bank) in func.params.iter().enumerate() {
        let n = func.regs.get(bank);
        if k as u64 >= n as u64 {
            err(
                None,
                format!(
                    "parameter {k} ({}) arrives in register {}{k}, but the function has {}",
                    bank.name(),
                    bank.prefix(),
                    plural(
                        n as usize,
                        &format!("{} register", bank.name()),
                        &format!("{} registers", bank.name())
                    )
                ),
            );
        }
    }
    if func.code.is_empty() {
        err(
            None,
            "the function is empty: execution falls off its end".to_string(),
        );
        return;
    }

    let len = func.code.len();
    for (pc, inst) in func.code.iter().enumerate() {
        let index = Some(pc as u32);
        let mut err = |reason: String| err(index, reason);
        let Some(op) = Opcode::from_u8(inst.code) else {
            err(format!("unknown opcode {}", inst.code));
            continue;
        };
        let info = op.info();
        let name = info.name;

        // flags: a bank where a Dest operand uses it, zero everywhere else.
        let has_dest = info.operands.iter().any(|(_, k)| *k == OperandKind::Dest);
        if has_dest {
            if Bank::from_u8(inst.flags).is_none() {
                err(format!(
                    "flags {} is not a register bank (0 i64, 1 f64, 2 cell) for {name}'s destination",
                    inst.flags
                ));
            }
        } else if inst.flags != 0 {
            err(format!("flags must be 0 for {name}, found {}", inst.flags));
        }

        // The callee, when this is a call to a function that exists.
        let callee: Option<&Function> = callee_index(inst, info)
            .and_then(|c| usize::try_from(c).ok())
            .and_then(|c| p.functions.get(c));

        for &(field, kind) in info.operands {
            let raw = inst.field(field);
            let signed = raw as i16 as i64;
            match kind {
                OperandKind::Reg(_)
                | OperandKind::Dest
                | OperandKind::FmaPair
                | OperandKind::Imm => {}
                OperandKind::Target => {
                    if signed < 0 || signed as usize >= len {
                        err(format!(
                            "branch target {signed} is outside the function ({})",
                            plural(len, "instruction", "instructions")
                        ));
                    }
                }
                OperandKind::Const(want) => match usize::try_from(signed)
                    .ok()
                    .and_then(|i| func.consts.get(i))
                {
                    None => err(format!(
                        "constant #{signed} is out of range (the function has {})",
                        plural(func.consts.len(), "constant", "constants")
                    )),
                    Some(c) if const_kind(c) != want => err(format!(
                        "{name} expects {} constant, but constant #{signed} is {}",
                        const_kind_article(want),
                        const_kind_article(const_kind(c))
                    )),
                    Some(_) => {}
                },
                OperandKind::Table => {
                    if signed < 0 || signed as usize >= func.tables.len() {
                        err(format!(
                            "table #{signed} is out of range (the function has {})",
                            plural(func.tables.len(), "table", "tables")
                        ));
                    }
                }
                OperandKind::Callee => {
                    if callee.is_none() {
                        err(format!(
                            "function index {signed} is out of range (the program has {})",
                            plural(p.functions.len(), "function", "functions")
                        ));
                    }
                }
                OperandKind::Args(allowed) => {
                    if let Some(callee) = callee {
                        let fits = match allowed {
                            ArgBanks::I64 => callee.params.iter().all(|&b| b == Bank::I64),
                            ArgBanks::F64 => callee.params.iter().all(|&b| b == Bank::F64),
                            ArgBanks::Any => true,
                        };
                        if !fits {
                            let only = if allowed == ArgBanks::I64 {
                                "i64"
                            } else {
                                "f64"
                            };
                            err(format!(
                                "{name} passes only {only} arguments, but `{}` is {}",
                                callee.name,
                                signature(callee)
                            ));
                        }
                    }
                }
            }
        }

        // Every register the instruction names, argument registers included.
        for_each_register(
            inst,
            info,
            callee.map(|c| c.params.as_slice()),
            |bank, reg, what| {
                let n = func.regs.get(bank);
                if reg < n {
                    return;
                }
                let has = plural(
                    n as usize,
                    &format!("{} register", bank.name()),
                    &format!("{} registers", bank.name()),
                );
                let prefix = bank.prefix();
                match what {
                    RegUse::Operand(_) => err(format!(
                        "register {prefix}{reg} is out of range (the function has {has})"
                    )),
                    RegUse::FmaX | RegUse::FmaY => {
                        let xy = if what == RegUse::FmaX { "X" } else { "Y" };
                        err(format!("register {prefix}{reg} ({name}'s {xy}) is out of range (the function has {has})"))
                    }
                    RegUse::Arg(k) => {
                        let callee = callee.map(|c| c.name.as_str()).unwrap_or("?");
                        if reg > MAX_REGS {
                            err(format!(
                            "argument {k} of the call to `{callee}` would be register {prefix}{reg}, past the largest register index {}",
                            MAX_REGS - 1
                        ))
                        } else {
                            err(format!(
                            "argument {k} of the call to `{callee}` is register {prefix}{reg}, which is out of range (the function has {has})"
                        ))
                        }
                    }
                }
            },
        );

        // The result of a call.
        if let Some(callee) = callee {
            if info.is_tail_call() {
                if callee.result != func.result {
                    err(format!(
                        "tail call to `{}`, which returns {}, from a function that returns {}",
                        callee.name,
                        callee.result.name(),
                        func.result.name()
                    ));
                }
            } else if let Some((bank, field)) = destination(inst, info) {
                if callee.result != bank {
                    err(format!(
                        "`{}` returns {}, but {name}'s destination {}{} is {} register",
                        callee.name,
                        callee.result.name(),
                        bank.prefix(),
                        inst.field(field),
                        bank_article(bank)
                    ));
                }
            }
        }

        // Returns.
        if let Some(bank) = info.returned_bank() {
            if bank != func.result {
                err(format!(
                    "{name} returns {}, but the function returns {}",
                    bank.name(),
                    func.result.name()
                ));
            }
        }
    }

    // Falling off the end.
    let last = func.code[len - 1];
    if let Some(op) = Opcode::from_u8(last.code) {
        if !op.info().terminal {
            err(
                Some(len as u32 - 1),
                format!(
                    "the last instruction ({}) can fall off the end of the function",
                    op.name()
                ),
            );
        }
    }
}

/// The bank and field of a call's destination: its `Dest` operand (bank from `flags`)
/// or else its first register operand.
fn destination(inst: &Inst, info: &OpInfo) -> Option<(Bank, Field)> {
    for &(field, kind) in info.operands {
        match kind {
            OperandKind::Dest => return Bank::from_u8(inst.flags).map(|b| (b, field)),
            OperandKind::Reg(bank) => return Some((bank, field)),
            _ => {}
        }
    }
    None
}
