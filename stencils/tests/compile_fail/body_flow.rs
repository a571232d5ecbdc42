// `Flow::Enter`, `Flow::TailCall` and `Flow::Exit` are produced by the tiers (calls,
// tail calls, exits), never by a stencil body.
use stencils::*;

#[stencil(terminal)]
pub fn FakeCall<T: Tier>(t: &mut T, a: RegI, c: Callee) -> Flow {
    match t.i(a) {
        0 => Flow::Enter,
        1 => Flow::TailCall,
        2 => stencils::Flow::Exit(7),
        _ => Flow::Next,
    }
}

fn main() {}
