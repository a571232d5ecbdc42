// Operands are named after the instruction field they read (`a`, `b`, `c`, optionally
// `_`-prefixed), each at most once, and typed by an operand type.
use stencils::*;

#[stencil]
pub fn Wrongly<T: Tier>(t: &mut T, dst: RegI, b: RegI) -> Flow {
    t.set_i(dst, t.i(b));
    Flow::Next
}

#[stencil]
pub fn FieldD<T: Tier>(t: &mut T, a: RegI, d: RegI) -> Flow {
    t.set_i(a, t.i(d));
    Flow::Next
}

#[stencil]
pub fn Twice<T: Tier>(t: &mut T, a: RegI, b: RegI, b: RegI) -> Flow {
    Flow::Next
}

#[stencil]
pub fn TwiceUnderscored<T: Tier>(t: &mut T, a: RegI, _a: RegI) -> Flow {
    Flow::Next
}

#[stencil]
pub fn PlainInt<T: Tier>(t: &mut T, a: RegI, b: i64) -> Flow {
    t.set_i(a, b);
    Flow::Next
}

#[stencil]
pub fn RefOperand<T: Tier>(t: &mut T, a: &RegI) -> Flow {
    Flow::Next
}

#[stencil]
pub fn Destructured<T: Tier>(t: &mut T, (a, b): (RegI, RegI)) -> Flow {
    Flow::Next
}

fn main() {}
