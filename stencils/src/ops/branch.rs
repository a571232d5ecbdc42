//! Compare-and-branch (every comparison is fused with its branch), jumps and tables.
//! f64 comparisons are IEEE: NaN makes Eq, Lt, Le, Gt, Ge false and Ne true.

use crate::*;

/// `v`, with what the comparison proves about it kept from the optimiser. After
/// `x == k`, LLVM passes the constant `k` on the equal path instead of `x` (GVN's
/// equality propagation), which puts a `mov` on that path and so turns the conditional
/// tail jump into `jne` around a `mov` + `jmp`: comparing with a value LLVM cannot see
/// through keeps the branch one `je`. For a register pair that is a copy of the left
/// one; against an immediate it is the immediate itself, which is materialised into a
/// scratch register anyway (`mov rax, k; cmp rdx, rax; je`, where a copy of the register
/// took one instruction more). The interpreter needs nothing.
#[inline(always)]
fn compared(v: i64) -> i64 {
    #[cfg(stencil_jit)]
    {
        let mut v = v;
        unsafe {
            core::arch::asm!("/* {0} */", inout(reg) v, options(pure, nomem, nostack, preserves_flags));
        }
        v
    }
    #[cfg(not(stencil_jit))]
    v
}

/// `v` as it is: the operand of every comparison but the integer Eq and Ne that goes
/// through `compared` there.
#[inline(always)]
fn as_is<V>(v: V) -> V {
    v
}

// Each entry: name, register type, the tier's read, the operator, and what the left
// operand goes through (`compared` or `as_is`).
macro_rules! compare {
    ($($(#[$doc:meta])* $name:ident, $reg:ident, $read:ident, $op:tt, $left:ident;)*) => {$(
        $(#[$doc])*
        #[stencil]
        pub fn $name<T: Tier>(t: &mut T, a: $reg, b: $reg, c: Target) -> Flow {
            let _ = c;
            Flow::branch($left(t.$read(a)) $op t.$read(b))
        }
    )*};
}

compare! {
    /// if iA == iB goto C
    CmpEqI64Br, RegI, i, ==, compared;
    /// if iA != iB goto C
    CmpNeI64Br, RegI, i, !=, compared;
    /// if iA < iB goto C
    CmpLtI64Br, RegI, i, <, as_is;
    /// if iA <= iB goto C
    CmpLeI64Br, RegI, i, <=, as_is;
    /// if iA > iB goto C
    CmpGtI64Br, RegI, i, >, as_is;
    /// if iA >= iB goto C
    CmpGeI64Br, RegI, i, >=, as_is;
    /// if fA == fB goto C
    CmpEqF64Br, RegF, f, ==, as_is;
    /// if fA != fB goto C (taken when either is NaN)
    CmpNeF64Br, RegF, f, !=, as_is;
    /// if fA < fB goto C
    CmpLtF64Br, RegF, f, <, as_is;
    /// if fA <= fB goto C
    CmpLeF64Br, RegF, f, <=, as_is;
    /// if fA > fB goto C
    CmpGtF64Br, RegF, f, >, as_is;
    /// if fA >= fB goto C
    CmpGeF64Br, RegF, f, >=, as_is;
}

// Each entry: name, the comparison, its operator, and what the immediate goes through
// where the tier compares as Rust does.
macro_rules! compare_k {
    ($($(#[$doc:meta])* $name:ident, $cond:ident, $op:tt, $right:ident;)*) => {$(
        $(#[$doc])*
        #[stencil]
        pub fn $name<T: Tier>(t: &mut T, a: RegI, b: Imm, c: Target) -> Flow {
            let _ = c;
            if T::BRANCHES_ON_IMMEDIATES {
                t.branch_imm(Cond::$cond, a, b)
            } else {
                Flow::branch(t.i(a) $op $right(b.0))
            }
        }
    )*};
}

compare_k! {
    /// if iA == kB goto C
    CmpEqI64KBr, Eq, ==, compared;
    /// if iA != kB goto C
    CmpNeI64KBr, Ne, !=, compared;
    /// if iA < kB goto C
    CmpLtI64KBr, Lt, <, as_is;
    /// if iA <= kB goto C
    CmpLeI64KBr, Le, <=, as_is;
    /// if iA > kB goto C
    CmpGtI64KBr, Gt, >, as_is;
    /// if iA >= kB goto C
    CmpGeI64KBr, Ge, >=, as_is;
}

/// goto C
#[stencil(terminal)]
pub fn Jump<T: Tier>(_t: &mut T, c: Target) -> Flow {
    let _ = c;
    Flow::Jump
}

/// iA = table C of this function at index iB; an index outside the table traps.
#[stencil]
pub fn LookupI64KW<T: Tier>(t: &mut T, a: RegI, b: RegI, c: Table) -> Flow {
    match t.lookup(c, t.i(b)) {
        Some(v) => {
            t.set_i(a, v);
            Flow::Next
        }
        None => Flow::Trap(Trap::IndexOutOfRange),
    }
}
