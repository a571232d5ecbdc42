//! The 8-byte instruction (spec §2) and the names of its parts.

/// One vm3 instruction: `{ code: u8, flags: u8, a: u16, b: u16, c: i16 }` (spec §2).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Inst {
    pub code: u8,
    /// The destination bank of `CallMixed`; 0 everywhere else.
    pub flags: u8,
    pub a: u16,
    pub b: u16,
    pub c: i16,
}

const _: () = assert!(core::mem::size_of::<Inst>() == 8);

impl Inst {
    pub const fn new(code: u8, a: u16, b: u16, c: i16) -> Inst {
        Inst {
            code,
            flags: 0,
            a,
            b,
            c,
        }
    }

    /// The raw 16 bits of a field (`c` as its two's-complement bits).
    #[inline(always)]
    pub const fn field(self, field: Field) -> u16 {
        match field {
            Field::A => self.a,
            Field::B => self.b,
            Field::C => self.c as u16,
        }
    }
}

/// An operand field of an instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    A,
    B,
    C,
}

impl Field {
    /// The field's bit in [`crate::OpInfo::reads`] and [`crate::OpInfo::writes`].
    pub const fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// A register bank (spec §1). The discriminant is the encoding in `CallMixed`'s flags.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Bank {
    I64 = 0,
    F64 = 1,
    Cell = 2,
}

impl Bank {
    pub const ALL: [Bank; 3] = [Bank::I64, Bank::F64, Bank::Cell];

    pub const fn from_u8(v: u8) -> Option<Bank> {
        match v {
            0 => Some(Bank::I64),
            1 => Some(Bank::F64),
            2 => Some(Bank::Cell),
            _ => None,
        }
    }

    /// The register prefix of the text format: `i`, `f` or `c`.
    pub const fn prefix(self) -> char {
        match self {
            Bank::I64 => 'i',
            Bank::F64 => 'f',
            Bank::Cell => 'c',
        }
    }

    /// The bank's name in a function signature: `i64`, `f64` or `cell`.
    pub const fn name(self) -> &'static str {
        match self {
            Bank::I64 => "i64",
            Bank::F64 => "f64",
            Bank::Cell => "cell",
        }
    }
}
