//! Stencils the JIT uses that are not opcodes.

use crate::*;

/// Zero the frame slots from byte offset A up to (not including) B: the prologue of a
/// function with many registers (spec §1: every register but the parameters is zero
/// at entry). Small ranges use one `ConstI64K` stencil per slot instead.
#[stencil(internal)]
pub fn ZeroRange<T: Tier>(t: &mut T, a: RegI, b: RegI) -> Flow {
    let mut slot = a.0;
    while slot < b.0 {
        t.set_i(RegI(slot), 0);
        slot += 8;
    }
    Flow::Next
}
