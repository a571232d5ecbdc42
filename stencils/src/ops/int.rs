//! i64 arithmetic. Everything wraps (two's complement); a zero divisor traps, and
//! `i64::MIN / -1 == i64::MIN`, `i64::MIN % -1 == 0` (spec §2).

use crate::*;

macro_rules! binary {
    ($($(#[$doc:meta])* $name:ident => $op:ident;)*) => {$(
        $(#[$doc])*
        #[stencil]
        pub fn $name<T: Tier>(t: &mut T, a: RegI, b: RegI, c: RegI) -> Flow {
            let v = t.i(b).$op(t.i(c));
            t.set_i(a, v);
            Flow::Next
        }
    )*};
}

binary! {
    /// iA = iB + iC
    AddI64 => wrapping_add;
    /// iA = iB - iC
    SubI64 => wrapping_sub;
    /// iA = iB * iC
    MulI64 => wrapping_mul;
}

/// iA = iB / iC, truncating; iC == 0 traps.
#[stencil]
pub fn DivI64<T: Tier>(t: &mut T, a: RegI, b: RegI, c: RegI) -> Flow {
    let d = t.i(c);
    if d == 0 {
        return Flow::Trap(Trap::DivisionByZero);
    }
    let v = t.i(b).wrapping_div(d);
    t.set_i(a, v);
    Flow::Next
}

/// iA = iB % iC (sign of the dividend); iC == 0 traps.
#[stencil]
pub fn ModI64<T: Tier>(t: &mut T, a: RegI, b: RegI, c: RegI) -> Flow {
    let d = t.i(c);
    if d == 0 {
        return Flow::Trap(Trap::DivisionByZero);
    }
    let v = t.i(b).wrapping_rem(d);
    t.set_i(a, v);
    Flow::Next
}

/// iA = -iB
#[stencil]
pub fn NegI64<T: Tier>(t: &mut T, a: RegI, b: RegI) -> Flow {
    let v = t.i(b).wrapping_neg();
    t.set_i(a, v);
    Flow::Next
}

macro_rules! binary_k {
    ($($(#[$doc:meta])* $name:ident => $op:ident;)*) => {$(
        $(#[$doc])*
        #[stencil]
        pub fn $name<T: Tier>(t: &mut T, a: RegI, b: RegI, c: Imm) -> Flow {
            let v = t.i(b).$op(c.0);
            t.set_i(a, v);
            Flow::Next
        }
    )*};
}

binary_k! {
    /// iA = iB + kC
    AddI64K => wrapping_add;
    /// iA = iB - kC
    SubI64K => wrapping_sub;
    /// iA = iB * kC
    MulI64K => wrapping_mul;
}

/// iA = iB / kC; kC == 0 traps.
#[stencil]
pub fn DivI64K<T: Tier>(t: &mut T, a: RegI, b: RegI, c: Imm) -> Flow {
    if c.0 == 0 {
        return Flow::Trap(Trap::DivisionByZero);
    }
    let v = t.i(b).wrapping_div(c.0);
    t.set_i(a, v);
    Flow::Next
}

/// iA = iB % kC; kC == 0 traps.
#[stencil]
pub fn ModI64K<T: Tier>(t: &mut T, a: RegI, b: RegI, c: Imm) -> Flow {
    if c.0 == 0 {
        return Flow::Trap(Trap::DivisionByZero);
    }
    let v = t.i(b).wrapping_rem(c.0);
    t.set_i(a, v);
    Flow::Next
}
