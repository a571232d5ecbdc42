//! Stencils the JIT uses that are not opcodes.

use crate::*;

/// Zero the frame slots from byte offset A up to (not including) B: the prologue of a
/// function with many registers (spec §1: every register but the parameters is zero
/// at entry). Small ranges use one `ConstI64K` stencil per slot instead.
#[stencil(internal, frame_only)]
pub fn ZeroRange<T: Tier>(t: &mut T, a: RegI, b: RegI) -> Flow {
    t.fill_slots(a, b, 0);
    Flow::Next
}

/// fA = +0.0: a function prologue's f64 register kept in a machine register.
#[stencil(internal)]
pub fn ZeroF64<T: Tier>(t: &mut T, a: RegF) -> Flow {
    t.set_f(a, 0.0);
    Flow::Next
}

/// cA = null: a function prologue's cell register (in its slot or a machine register).
#[stencil(internal)]
pub fn NullSlot<T: Tier>(t: &mut T, a: RegC) -> Flow {
    t.set_cell(a, cell::NULL);
    Flow::Next
}

/// Set the cells from byte offset A up to (not including) B to null: the prologue of a
/// function with many cell registers.
#[stencil(internal, frame_only)]
pub fn NullRange<T: Tier>(t: &mut T, a: RegI, b: RegI) -> Flow {
    t.fill_slots(a, b, cell::NULL);
    Flow::Next
}

/// `FmaF64` for CPUs without a fused multiply-add instruction: the JIT uses it in place
/// of `FmaF64` when the CPU lacks FMA (`jit::Options::baseline_cpu`).
#[stencil(internal)]
pub fn FmaF64Baseline<T: Tier>(t: &mut T, a: RegF, b: RegF, c: FmaPair) -> Flow {
    let v = t.fma_baseline(t.f(b), t.f(c.x), t.f(c.y));
    t.set_f(a, super::float::canonical_nan(v));
    Flow::Next
}
