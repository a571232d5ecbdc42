//! f64 arithmetic (IEEE-754) and conversions.

use crate::ordered::{ordered_add, ordered_mul};
use crate::*;

macro_rules! binary {
    ($($(#[$doc:meta])* $name:ident => $op:expr;)*) => {$(
        $(#[$doc])*
        #[stencil]
        pub fn $name<T: Tier>(t: &mut T, a: RegF, b: RegF, c: RegF) -> Flow {
            let v = ($op)(t.f(b), t.f(c));
            t.set_f(a, v);
            Flow::Next
        }
    )*};
}

binary! {
    /// fA = fB + fC
    AddF64 => ordered_add;
    /// fA = fB - fC
    SubF64 => |x: f64, y: f64| x - y;
    /// fA = fB * fC
    MulF64 => ordered_mul;
    /// fA = fB / fC
    DivF64 => |x: f64, y: f64| x / y;
}

/// fA = -fB (flips the sign bit, NaN included).
#[stencil]
pub fn NegF64<T: Tier>(t: &mut T, a: RegF, b: RegF) -> Flow {
    let v = -t.f(b);
    t.set_f(a, v);
    Flow::Next
}

/// fA = fB * fX + fY with one rounding; c packs X (low byte) and Y (high byte).
///
/// IEEE-754 leaves open which NaN operand a fused multiply-add returns, and CPUs and
/// libms choose differently, so a NaN result is the canonical quiet NaN
/// (`0x7FF8_0000_0000_0000`) in every tier.
#[stencil]
pub fn FmaF64<T: Tier>(t: &mut T, a: RegF, b: RegF, c: FmaPair) -> Flow {
    let v = t.fma(t.f(b), t.f(c.x), t.f(c.y));
    t.set_f(a, canonical_nan(v));
    Flow::Next
}

/// `v`, with any NaN replaced by the canonical quiet NaN.
#[inline(always)]
pub fn canonical_nan(v: f64) -> f64 {
    if v.is_nan() {
        f64::NAN
    } else {
        v
    }
}

/// fA = sqrt(fB), correctly rounded.
#[stencil]
pub fn SqrtF64<T: Tier>(t: &mut T, a: RegF, b: RegF) -> Flow {
    let v = t.sqrt(t.f(b));
    t.set_f(a, v);
    Flow::Next
}

/// fA = iB as the nearest double.
#[stencil]
pub fn I64ToF64<T: Tier>(t: &mut T, a: RegF, b: RegI) -> Flow {
    let v = t.i(b) as f64;
    t.set_f(a, v);
    Flow::Next
}

/// iA = fB truncated toward zero, saturating at the i64 bounds; NaN gives 0.
#[stencil]
pub fn F64ToI64<T: Tier>(t: &mut T, a: RegI, b: RegF) -> Flow {
    let v = t.f(b) as i64;
    t.set_i(a, v);
    Flow::Next
}
