// The function's name is the mnemonic; the function itself is a plain `pub fn`.
use stencils::*;

#[stencil]
pub fn add_i64<T: Tier>(t: &mut T, a: RegI, b: RegI, c: RegI) -> Flow {
    let v = t.i(b).wrapping_add(t.i(c));
    t.set_i(a, v);
    Flow::Next
}

#[stencil]
pub fn negI64<T: Tier>(t: &mut T, a: RegI, b: RegI) -> Flow {
    let v = t.i(b).wrapping_neg();
    t.set_i(a, v);
    Flow::Next
}

#[stencil]
pub unsafe fn LoadRaw<T: Tier>(t: &mut T, a: RegI, b: RegI) -> Flow {
    t.set_i(a, t.i(b));
    Flow::Next
}

#[stencil]
pub const fn ConstNop<T: Tier>(_t: &mut T) -> Flow {
    Flow::Next
}

#[stencil]
pub async fn AsyncNop<T: Tier>(_t: &mut T) -> Flow {
    Flow::Next
}

#[stencil]
pub extern "C" fn CNop<T: Tier>(_t: &mut T) -> Flow {
    Flow::Next
}

#[stencil]
fn PrivateNop<T: Tier>(_t: &mut T) -> Flow {
    Flow::Next
}

#[stencil]
pub(crate) fn CrateNop<T: Tier>(_t: &mut T) -> Flow {
    Flow::Next
}

fn main() {}
