//! Moves and constants.

use crate::*;

/// Nothing.
#[stencil]
pub fn Nop<T: Tier>(_t: &mut T) -> Flow {
    Flow::Next
}

/// iA = iB
#[stencil]
pub fn MovI64<T: Tier>(t: &mut T, a: RegI, b: RegI) -> Flow {
    let v = t.i(b);
    t.set_i(a, v);
    Flow::Next
}

/// fA = fB (a bit-exact copy: NaN payloads survive).
#[stencil]
pub fn MovF64<T: Tier>(t: &mut T, a: RegF, b: RegF) -> Flow {
    let v = t.f(b);
    t.set_f(a, v);
    Flow::Next
}

/// iA = kC
#[stencil]
pub fn ConstI64K<T: Tier>(t: &mut T, a: RegI, c: Imm) -> Flow {
    t.set_i(a, c.0);
    Flow::Next
}

/// iA = i64 constant #C (any i64).
#[stencil]
pub fn ConstI64KW<T: Tier>(t: &mut T, a: RegI, c: ConstI64) -> Flow {
    let v = t.const_i64(c);
    t.set_i(a, v);
    Flow::Next
}

/// fA = f64 constant #C
#[stencil]
pub fn ConstF64K<T: Tier>(t: &mut T, a: RegF, c: ConstF64) -> Flow {
    let v = t.const_f64(c);
    t.set_f(a, v);
    Flow::Next
}
