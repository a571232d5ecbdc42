// The compile-fail cases are well-formed but for the rule they break: in the same
// setting (a separate crate with `use stencils::*;`, which the paths the macro emits
// resolve through), valid stencils of every kind compile.
//
// The stencil entry points are under `#[cfg(stencil_jit)]`, a cfg this crate does not
// declare.
#![allow(unexpected_cfgs)]

use stencils::*;

/// iA = iB + iC
#[stencil]
pub fn AddI64<T: Tier>(t: &mut T, a: RegI, b: RegI, c: RegI) -> Flow {
    let v = t.i(b).wrapping_add(t.i(c));
    t.set_i(a, v);
    Flow::Next
}

#[stencil]
pub fn DivI64K<T: Tier>(t: &mut T, a: RegI, b: RegI, _c: Imm) -> Flow {
    match t.i(b).checked_div(_c.0) {
        Some(v) => t.set_i(a, v),
        None => return Flow::Trap(Trap::DivisionByZero),
    }
    Flow::Next
}

#[stencil(terminal)]
pub fn Goto<T: Tier>(_t: &mut T, c: Target) -> Flow {
    let _ = c;
    Flow::Jump
}

#[stencil(returns)]
pub fn Leave<T: Tier>(t: &mut T, a: RegI) -> Flow {
    Flow::Return(t.i(a) as u64)
}

#[stencil(internal)]
pub fn Nothing<T: Tier>(_t: &mut T) -> Flow {
    Flow::Next
}

fn main() {
    assert_eq!(__OPINFO_AddI64.name, "AddI64");
    assert_eq!(__OPINFO_AddI64.operands.len(), 3);
    assert_eq!(__OPINFO_DivI64K.operands.len(), 3);
    assert!(!__OPINFO_AddI64.terminal);
    assert!(__OPINFO_Goto.terminal && !__OPINFO_Goto.returns);
    assert!(__OPINFO_Leave.terminal && __OPINFO_Leave.returns);
}
