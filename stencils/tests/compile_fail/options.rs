// `#[stencil]` takes only the options `terminal`, `returns` and `internal`.
use stencils::*;

#[stencil(jump)]
pub fn Goto<T: Tier>(_t: &mut T, c: Target) -> Flow {
    Flow::Jump
}

#[stencil(terminal, Returns)]
pub fn Leave<T: Tier>(t: &mut T, a: RegI) -> Flow {
    Flow::Return(t.i(a) as u64)
}

#[stencil(terminal = true)]
pub fn Goto2<T: Tier>(_t: &mut T, c: Target) -> Flow {
    Flow::Jump
}

fn main() {}
