//! Float operations whose operand order is part of the result: kept out of `ops/`,
//! whose macro invocations `build.rs` reads as opcode definitions.

/// Defines `$name(x, y)`: `x $op y` computed by that very instruction, operands in
/// this order.
macro_rules! ordered {
    ($(#[$doc:meta])* $name:ident, $x86:literal, $arm:literal, $op:tt) => {
        $(#[$doc])*
        #[inline(always)]
        pub fn $name(x: f64, y: f64) -> f64 {
            #[cfg(target_arch = "x86_64")]
            {
                let mut r = x;
                unsafe {
                    core::arch::asm!(concat!($x86, " {r}, {y}"), r = inout(xmm_reg) r,
                        y = in(xmm_reg) y, options(pure, nomem, nostack, preserves_flags));
                }
                r
            }
            #[cfg(target_arch = "aarch64")]
            {
                let r: f64;
                unsafe {
                    core::arch::asm!(concat!($arm, " {r:d}, {x:d}, {y:d}"), r = lateout(vreg) r,
                        x = in(vreg) x, y = in(vreg) y,
                        options(pure, nomem, nostack, preserves_flags));
                }
                r
            }
            #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
            {
                x $op y
            }
        }
    };
}

ordered!(
    /// `x + y` computed as exactly that: when both are NaNs the CPU returns the first
    /// one's payload (x86-64 and aarch64 alike), and LLVM, for which `+` commutes, may
    /// swap the operands to save a move, which a register variant does and the
    /// interpreter does not. The instruction is written out so both tiers give the same
    /// bits.
    ordered_add, "addsd", "fadd", +
);
ordered!(
    /// `x * y` with the operands in this order (see [`ordered_add`]).
    ordered_mul, "mulsd", "fmul", *
);
