//! Calls, returns and deoptimisation. The mechanics of an activation (frames, the
//! depth limit, native calls) belong to the tier; these bodies say which.

use crate::*;

/// iA = call C with i64 arguments from iB on.
#[stencil]
pub fn CallI64<T: Tier>(t: &mut T, a: RegI, b: ArgsI, c: Callee) -> Flow {
    t.call(c, b.into(), a.into())
}

/// fA = call C with f64 arguments from fB on.
#[stencil]
pub fn CallF64<T: Tier>(t: &mut T, a: RegF, b: ArgsF, c: Callee) -> Flow {
    t.call(c, b.into(), a.into())
}

/// cA = call C with arguments of any bank from B on.
#[stencil]
pub fn CallCell<T: Tier>(t: &mut T, a: RegC, b: ArgsAny, c: Callee) -> Flow {
    t.call(c, b.into(), a.into())
}

/// xA = call C with arguments of any bank from B on; the bank of A is in `flags`.
#[stencil]
pub fn CallMixed<T: Tier>(t: &mut T, a: Dest, b: ArgsAny, c: Callee) -> Flow {
    t.call(c, b.into(), a)
}

/// Replace this activation by C with i64 arguments from iB on.
#[stencil(terminal)]
pub fn TailCallI64<T: Tier>(t: &mut T, b: ArgsI, c: Callee) -> Flow {
    t.tail_call(c, b.into())
}

/// Replace this activation by C with arguments of any bank from B on.
#[stencil(terminal)]
pub fn TailCallMixed<T: Tier>(t: &mut T, b: ArgsAny, c: Callee) -> Flow {
    t.tail_call(c, b.into())
}

/// Return iA.
#[stencil(returns)]
pub fn ReturnI64<T: Tier>(t: &mut T, a: RegI) -> Flow {
    Flow::Return(t.i(a) as u64)
}

/// Return fA.
#[stencil(returns)]
pub fn ReturnF64<T: Tier>(t: &mut T, a: RegF) -> Flow {
    Flow::Return(t.f(a).to_bits())
}

/// Return cA.
#[stencil(returns)]
pub fn ReturnCell<T: Tier>(t: &mut T, a: RegC) -> Flow {
    Flow::Return(t.cell(a))
}

/// Return the i64 kC.
#[stencil(returns)]
pub fn ReturnConstK<T: Tier>(_t: &mut T, c: Imm) -> Flow {
    Flow::Return(c.0 as u64)
}

/// No effect in the interpreter; compiled code leaves native code here and the
/// interpreter continues at the next instruction with the exact register state.
#[stencil]
pub fn Deopt<T: Tier>(_t: &mut T) -> Flow {
    Flow::Deopt
}
