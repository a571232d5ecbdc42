// `Flow::branch` in a stencil with no `Target` operand: there is nowhere to branch to
// (the interpreter would jump to whatever field C holds, the JIT has no target to patch).
use stencils::*;

#[stencil]
pub fn BranchNowhere<T: Tier>(t: &mut T, a: RegI, b: RegI) -> Flow {
    Flow::branch(t.i(a) < t.i(b))
}

fn main() {}
