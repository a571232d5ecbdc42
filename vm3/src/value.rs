//! Values crossing the embedding boundary, and traps as a user sees them.

use stencils::{Bank, Trap};

/// An argument or a result.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value {
    I64(i64),
    F64(f64),
    /// A raw cell (spec §1 NaN-boxing).
    Cell(u64),
}

impl Value {
    pub fn bank(&self) -> Bank {
        match self {
            Value::I64(_) => Bank::I64,
            Value::F64(_) => Bank::F64,
            Value::Cell(_) => Bank::Cell,
        }
    }

    /// The 8 bytes a register of the value's bank holds.
    pub fn to_bits(self) -> u64 {
        match self {
            Value::I64(v) => v as u64,
            Value::F64(v) => v.to_bits(),
            Value::Cell(v) => v,
        }
    }

    pub fn from_bits(bank: Bank, bits: u64) -> Value {
        match bank {
            Bank::I64 => Value::I64(bits as i64),
            Bank::F64 => Value::F64(f64::from_bits(bits)),
            Bank::Cell => Value::Cell(bits),
        }
    }

    /// Bit-for-bit equality (NaN equals NaN with the same bits); how tiers are compared.
    pub fn same_bits(&self, other: &Value) -> bool {
        self.bank() == other.bank() && self.to_bits() == other.to_bits()
    }
}

impl std::fmt::Display for Value {
    /// As spec §5 prints a result: integers in decimal, floats as Rust's `Display`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::I64(v) => write!(f, "{v}"),
            Value::F64(v) => write!(f, "{v}"),
            Value::Cell(v) => write!(f, "cell({v:#018x})"),
        }
    }
}

/// A trap: where and why (spec §3).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("trap: {} in {function} at {pc}", trap.message())]
pub struct TrapInfo {
    pub trap: Trap,
    /// Index of the function that trapped.
    pub func: usize,
    /// Its name, as printed.
    pub function: String,
    /// The instruction index.
    pub pc: u32,
}

/// Why a run did not produce a value.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Trap(TrapInfo),
    /// The entry function does not exist or the arguments do not fit its parameters.
    #[error("{0}")]
    Arguments(String),
}
