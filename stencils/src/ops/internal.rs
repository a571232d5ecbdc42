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

/// The run-limit check ([`Tier::check_limits`]): the JIT puts it first in a function's
/// entry instruction and in every target of a backward branch, only when the engine
/// has run limits on (the interpreter checks at the same instructions).
#[stencil(internal)]
pub fn CheckLimits<T: Tier>(t: &mut T) -> Flow {
    match t.check_limits() {
        Some(trap) => Flow::Trap(trap),
        None => Flow::Next,
    }
}

/// The trap of a call that finds no activation left (spec §2, depth limit), out of the
/// call's line: on x86-64 a call stencil branches here (its `_JIT_TARGET`), and the JIT
/// places one after the function's code for each call, with the call's pc.
#[stencil(internal, terminal)]
pub fn CallStackOverflow<T: Tier>(_t: &mut T) -> Flow {
    Flow::Trap(Trap::CallStackOverflow)
}

/// `FmaF64` for CPUs without a fused multiply-add instruction: the JIT uses it in place
/// of `FmaF64` when the CPU lacks FMA (`jit::Options::baseline_cpu`).
#[stencil(internal)]
pub fn FmaF64Baseline<T: Tier>(t: &mut T, a: RegF, b: RegF, c: FmaPair) -> Flow {
    let v = t.fma_baseline(t.f(b), t.f(c.x), t.f(c.y));
    t.set_f(a, super::float::canonical_nan(v));
    Flow::Next
}

/// iA = iB / d for a constant d outside -1..=1, without a divide instruction: C holds
/// the words `jit` computes for d (multiplier, add and subtract masks, shift).
#[stencil(internal)]
pub fn DivI64KMagic<T: Tier>(t: &mut T, a: RegI, b: RegI, c: ConstI64) -> Flow {
    let (m, add, sub, shift) = (
        t.const_i64_at(c, 0),
        t.const_i64_at(c, 1),
        t.const_i64_at(c, 2),
        t.const_i64_at(c, 3),
    );
    let q = magic_quotient(t.i(b), m, add, sub, shift);
    t.set_i(a, q);
    Flow::Next
}

/// iA = iB % d for a constant d outside -1..=1: C holds the words of `DivI64KMagic`,
/// then d.
#[stencil(internal)]
pub fn ModI64KMagic<T: Tier>(t: &mut T, a: RegI, b: RegI, c: ConstI64) -> Flow {
    let (m, add, sub, shift, d) = (
        t.const_i64_at(c, 0),
        t.const_i64_at(c, 1),
        t.const_i64_at(c, 2),
        t.const_i64_at(c, 3),
        t.const_i64_at(c, 4),
    );
    let r = magic_remainder(t.i(b), m, add, sub, shift, d);
    t.set_i(a, r);
    Flow::Next
}

/// The truncating quotient `x / d` from d's magic words (Hacker's Delight 10-1): the
/// high half of `x * m`, corrected by `x` where the multiplier's sign needs it, shifted,
/// plus one when negative.
#[inline(always)]
pub fn magic_quotient(x: i64, m: i64, add: i64, sub: i64, shift: i64) -> i64 {
    let high = ((x as i128 * m as i128) >> 64) as i64;
    let q = high
        .wrapping_add(x & add)
        .wrapping_sub(x & sub)
        .wrapping_shr(shift as u32);
    q.wrapping_add((q as u64 >> 63) as i64)
}

/// The remainder `x % d` with the sign of `x`, from the quotient.
#[inline(always)]
pub fn magic_remainder(x: i64, m: i64, add: i64, sub: i64, shift: i64, d: i64) -> i64 {
    x.wrapping_sub(magic_quotient(x, m, add, sub, shift).wrapping_mul(d))
}

/// iA = iB / 2^s for s = C in 1..=15: the truncating quotient (spec §2) as a shift,
/// after adding 2^s - 1 to a negative dividend.
#[stencil(internal)]
pub fn DivI64KPow2<T: Tier>(t: &mut T, a: RegI, b: RegI, c: Imm) -> Flow {
    let x = t.i(b);
    let s = c.0 as u32;
    let bias = ((x >> 63) as u64).wrapping_shr(64 - s) as i64;
    t.set_i(a, x.wrapping_add(bias).wrapping_shr(s));
    Flow::Next
}

/// iA = iB % m + 1 for m = C = 2^s - 1: the remainder with the sign of the dividend
/// (spec §2), with masks only.
#[stencil(internal)]
pub fn ModI64KPow2<T: Tier>(t: &mut T, a: RegI, b: RegI, c: Imm) -> Flow {
    let r = pow2_remainder(t.i(b), c.0);
    t.set_i(a, r);
    Flow::Next
}

/// `x % (m + 1)` for `m + 1` a positive power of two, with the sign of `x`: a negative
/// dividend is biased by m so that the masked bits round toward zero, and the bias is
/// taken back, `((x + m) & m) - m` (seven instructions with the mask in a register,
/// where `x - ((x + bias) & !m)` took nine).
#[inline(always)]
pub fn pow2_remainder(x: i64, m: i64) -> i64 {
    let bias = (x >> 63) & m;
    (x.wrapping_add(bias) & m).wrapping_sub(bias)
}
