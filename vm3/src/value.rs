//! Values crossing the embedding boundary, and traps as a user sees them.

use stencils::{Bank, Trap};

/// An argument or a result.
///
/// No variant holds a cell's raw bits (issue 10: handles were forged and leaked as
/// `Value::Cell(bits)`):
/// ```compile_fail
/// let forged = vm3::Value::Cell(0xFFFF_0001_0000_0000);
/// ```
///
/// Cell results are read out of the run's heap before it is freed: a string comes back
/// as its text, a list as its items, a map as its pairs. Cell arguments are allocated in
/// the run's heap the same way.
#[derive(Clone, Debug)]
pub enum Value {
    I64(i64),
    F64(f64),
    /// A string that is valid UTF-8.
    Str(String),
    /// A string that is not valid UTF-8 (strings are bytes; `\xNN` spells any byte).
    Bytes(Vec<u8>),
    /// A list: 48-bit integers come back as `I64`, floats as `F64`, other cells as
    /// their values.
    List(Vec<Value>),
    /// An i64→i64 map, as its pairs in key order.
    Map(Vec<(i64, i64)>),
    /// The null cell.
    Null,
    /// A bool cell.
    Bool(bool),
}
// No variant holds a cell's raw bits: a heap handle is only meaningful inside the run
// that made it, so none is handed to an embedder or taken from one (issue 10: forged
// and stale handles came in, and leaked out, as `Value::Cell(bits)`).

impl Value {
    pub fn bank(&self) -> Bank {
        match self {
            Value::I64(_) => Bank::I64,
            Value::F64(_) => Bank::F64,
            _ => Bank::Cell,
        }
    }

    /// Deep equality with floats compared bit for bit (NaN equals NaN with the same
    /// bits, `0.0` differs from `-0.0`); how tiers are compared.
    pub fn same_bits(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::I64(a), Value::I64(b)) => a == b,
            (Value::F64(a), Value::F64(b)) => a.to_bits() == b.to_bits(),
            (Value::Str(a), Value::Str(b)) => a == b,
            (Value::Bytes(a), Value::Bytes(b)) => a == b,
            (Value::List(a), Value::List(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.same_bits(y))
            }
            (Value::Map(a), Value::Map(b)) => a == b,
            (Value::Null, Value::Null) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            _ => false,
        }
    }

    /// How an item inside a list prints: strings quoted, so `["1", 1]` is unambiguous.
    fn fmt_item(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Str(s) => write!(f, "{s:?}"),
            Value::Bytes(b) => write!(f, "\"{}\"", b.escape_ascii()),
            other => write!(f, "{other}"),
        }
    }
}

impl PartialEq for Value {
    /// [`Value::same_bits`].
    fn eq(&self, other: &Value) -> bool {
        self.same_bits(other)
    }
}

impl std::fmt::Display for Value {
    /// As spec §5 prints a result: integers in decimal, floats as Rust's `Display`, a
    /// string as its text, a list as `[1, 2, 3]`; a map as `{1: 2, 3: 4}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::I64(v) => write!(f, "{v}"),
            Value::F64(v) => write!(f, "{v}"),
            Value::Str(s) => f.write_str(s),
            Value::Bytes(b) => f.write_str(&String::from_utf8_lossy(b)),
            Value::List(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    item.fmt_item(f)?;
                }
                f.write_str("]")
            }
            Value::Map(pairs) => {
                f.write_str("{")?;
                for (i, (k, v)) in pairs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k}: {v}")?;
                }
                f.write_str("}")
            }
            Value::Null => f.write_str("null"),
            Value::Bool(b) => write!(f, "{b}"),
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
    /// The run ended with a result that cannot be handed back as a [`Value`]: nested
    /// too deep, containing itself, or expanding to too many values
    /// ([`crate::Heap::value_of`]).
    #[error("{0}")]
    Result(String),
    /// The run could not get what its limits need from the system (the register stack's
    /// address space, the native stack for compiled calls), said with the numbers.
    #[error("{0}")]
    Resources(String),
}
