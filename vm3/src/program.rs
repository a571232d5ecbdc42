//! Functions and programs (spec §1, §2).

use crate::verify;
use crate::VerifyErrors;
use stencils::{Bank, Inst};

/// A constant-pool entry.
#[derive(Clone, Debug)]
pub enum Const {
    I64(i64),
    F64(f64),
    /// A string's bytes (not necessarily UTF-8: `\xNN` escapes may spell any byte).
    Str(Vec<u8>),
}

/// Constants are equal when they hold the same bits: a NaN constant equals itself, and
/// `0.0` differs from `-0.0`, which is what a pool needs.
impl PartialEq for Const {
    fn eq(&self, other: &Const) -> bool {
        match (self, other) {
            (Const::I64(a), Const::I64(b)) => a == b,
            (Const::F64(a), Const::F64(b)) => a.to_bits() == b.to_bits(),
            (Const::Str(a), Const::Str(b)) => a == b,
            _ => false,
        }
    }
}

/// Registers per bank (each at most 65,535).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RegCounts {
    pub i64: u32,
    pub f64: u32,
    pub cell: u32,
}

/// Marks a constant that is not a string in [`Program::string_constant_ids`].
pub const NOT_A_STRING: u32 = u32::MAX;

impl RegCounts {
    pub fn get(&self, bank: Bank) -> u32 {
        match bank {
            Bank::I64 => self.i64,
            Bank::F64 => self.f64,
            Bank::Cell => self.cell,
        }
    }

    pub fn set(&mut self, bank: Bank, n: u32) {
        match bank {
            Bank::I64 => self.i64 = n,
            Bank::F64 => self.f64 = n,
            Bank::Cell => self.cell = n,
        }
    }

    /// Registers in all banks: the frame size in 8-byte slots.
    pub fn total(&self) -> usize {
        self.i64 as usize + self.f64 as usize + self.cell as usize
    }

    /// The frame slot of register `index` of `bank`. A frame holds the i64 registers,
    /// then the f64 registers, then the cells, one 8-byte slot each; both tiers use
    /// this layout, which is what lets compiled code hand a live frame to the
    /// interpreter on `Deopt`.
    /// The register held in frame slot `slot` (the inverse of [`RegCounts::slot`]).
    pub fn register_of_slot(&self, slot: usize) -> (Bank, usize) {
        let (i, f) = (self.i64 as usize, self.f64 as usize);
        if slot < i {
            (Bank::I64, slot)
        } else if slot < i + f {
            (Bank::F64, slot - i)
        } else {
            (Bank::Cell, slot - i - f)
        }
    }

    pub fn slot(&self, bank: Bank, index: usize) -> usize {
        match bank {
            Bank::I64 => index,
            Bank::F64 => self.i64 as usize + index,
            Bank::Cell => self.i64 as usize + self.f64 as usize + index,
        }
    }
}

/// One function: a signature, register counts, code, constants and tables.
#[derive(Clone, Debug, PartialEq)]
pub struct Function {
    pub name: String,
    /// Parameter `k` arrives in register `k` of bank `params[k]`.
    pub params: Vec<Bank>,
    pub result: Bank,
    pub regs: RegCounts,
    pub code: Vec<Inst>,
    pub consts: Vec<Const>,
    pub tables: Vec<Vec<i64>>,
    /// Names of tables and branch labels, for listings; not part of the semantics.
    pub table_names: Vec<String>,
    /// `(instruction index, label)` pairs from the source, for listings.
    pub labels: Vec<(u32, String)>,
}

impl Function {
    /// The program-wide number of each of this function's constants into `ids` (emptied
    /// first), [`NOT_A_STRING`] for those that are not strings, when its first string is
    /// number `first`; returns the number after its last string. See
    /// [`Program::string_constant_ids`] (a compiler fills one buffer function after
    /// function instead).
    pub fn string_constant_ids(&self, first: u32, ids: &mut Vec<u32>) -> u32 {
        let mut next = first;
        ids.clear();
        ids.extend(self.consts.iter().map(|c| match c {
            Const::Str(_) => {
                next += 1;
                next - 1
            }
            _ => NOT_A_STRING,
        }));
        next
    }

    pub fn new(name: impl Into<String>, params: Vec<Bank>, result: Bank) -> Function {
        Function {
            name: name.into(),
            params,
            result,
            regs: RegCounts::default(),
            code: Vec::new(),
            consts: Vec::new(),
            tables: Vec::new(),
            table_names: Vec::new(),
            labels: Vec::new(),
        }
    }

    /// Frame size in 8-byte slots.
    pub fn frame_slots(&self) -> usize {
        self.regs.total()
    }

    /// Where a run with run limits checks them (fuel, interrupt), per instruction: the
    /// entry (instruction 0, so every call and tail call is counted) and every target
    /// of a backward branch (so every loop iteration is). Both tiers check at the start
    /// of these instructions however they are reached, so they stop at the same one.
    pub fn limit_checks(&self) -> Vec<bool> {
        let mut checks = Vec::with_capacity(self.code.len());
        self.limit_checks_into(&mut checks);
        checks
    }

    /// [`Function::limit_checks`], appended to `out`.
    pub fn limit_checks_into(&self, out: &mut Vec<bool>) {
        let first = out.len();
        out.resize(first + self.code.len(), false);
        let checks = &mut out[first..];
        if let Some(entry) = checks.first_mut() {
            *entry = true;
        }
        for (pc, inst) in self.code.iter().enumerate() {
            let Some(op) = stencils::Opcode::from_u8(inst.code) else {
                continue;
            };
            for &(field, kind) in op.info().operands {
                if kind == stencils::OperandKind::Target {
                    let target = inst.field(field) as i16;
                    if let Ok(target) = usize::try_from(target) {
                        if target <= pc && target < checks.len() {
                            checks[target] = true;
                        }
                    }
                }
            }
        }
    }
}

/// A whole program: functions calling each other by index.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Program {
    pub functions: Vec<Function>,
}

impl Program {
    /// The index of the function called `name`.
    pub fn function_index(&self, name: &str) -> Option<usize> {
        self.functions.iter().position(|f| f.name == name)
    }

    /// The program-wide number of every string constant, per function and constant
    /// index ([`NOT_A_STRING`] for other constants): strings are numbered in function
    /// order, then pool order. A run's heap allocates them in this order, and
    /// `ConstStrKW` in compiled code names its string by this number.
    pub fn string_constant_ids(&self) -> Vec<Vec<u32>> {
        let mut next = 0;
        self.functions
            .iter()
            .map(|f| {
                let mut ids = Vec::new();
                next = f.string_constant_ids(next, &mut ids);
                ids
            })
            .collect()
    }

    /// Runs the verifier (spec §4); every error found, in function and instruction order.
    pub fn verify(self) -> Result<VerifiedProgram, VerifyErrors> {
        verify::verify(&self).map_err(VerifyErrors)?;
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Ok(VerifiedProgram {
            program: std::sync::Arc::new(self),
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        })
    }
}

/// A program the verifier accepted. Its invariants (register indexes in range, branch
/// targets inside the function, calls matching their callees, no falling off the end)
/// are what lets both tiers run it without run-time checks on those.
///
/// It is immutable, so clones share it: a compiled program keeps one without copying
/// every function (a quarter of the malloc traffic of compiling a large program).
#[derive(Clone, Debug)]
pub struct VerifiedProgram {
    program: std::sync::Arc<Program>,
    /// Unique per verification in this process (clones share it: they are the same
    /// program). A heap keeps a program's string constants by it.
    id: u64,
}

impl VerifiedProgram {
    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn program(&self) -> &Program {
        &self.program
    }

    pub fn functions(&self) -> &[Function] {
        &self.program.functions
    }

    pub fn into_program(self) -> Program {
        std::sync::Arc::unwrap_or_clone(self.program)
    }
}

impl std::ops::Deref for VerifiedProgram {
    type Target = Program;
    fn deref(&self) -> &Program {
        &self.program
    }
}
