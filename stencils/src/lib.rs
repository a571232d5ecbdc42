//! The vm3 instruction set, written once.
//!
//! Every opcode is one `#[stencil]` function in [`ops`]. Its body is generic over a
//! [`Tier`]: the interpreter (crate `vm3`) instantiates it with a tier that reads
//! registers through three bank pointers and decodes operands from the 8-byte
//! instruction; the stencil build (`--cfg stencil_jit`, done by `stencil-harvest`)
//! instantiates it with [`jit::JitTier`](crate), whose operands are *holes*: addresses
//! of undefined `_JIT_*` symbols that the JIT patches at run time.
//!
//! `build.rs` collects the `#[stencil]` functions of `src/ops/*.rs` into the opcode
//! table ([`OPCODES`], [`Opcode`]) and the interpreter's [`dispatch`].
#![cfg_attr(not(test), no_std)]
// Stencils may not call memset/memcpy: keep LLVM from turning loops into them.
#![cfg_attr(stencil_jit, no_builtins)]

pub mod cell;
mod exit;
pub mod heap;
pub mod helpers;
mod inst;
mod operand;
pub mod ops;
mod ordered;
mod tier;
pub mod variant;

#[cfg(stencil_jit)]
#[doc(hidden)]
pub mod jit;

pub use exit::{Ctx, Exit, ExitKind, Trap};
pub use inst::{Bank, Field, Inst};
pub use operand::{
    ArgBanks, ArgStart, ArgsAny, ArgsF, ArgsI, Callee, ConstF64, ConstI64, ConstKind, ConstStr,
    Dest, FmaPair, Imm, OpInfo, Operand, OperandKind, RegC, RegF, RegI, Table, Target,
};
pub use stencil_macros::stencil;
pub use tier::{Cond, Flow, Tier};

mod registry {
    use crate::*;
    include!(concat!(env!("OUT_DIR"), "/registry.rs"));
}
pub use registry::{
    dispatch, Internal, Opcode, INTERNAL_INFOS, INTERNAL_STENCILS, OPCODES, OPCODE_COUNT,
};

/// Prefix of the symbol of every stencil in the stencil object (`__stencil_AddI64`).
pub const STENCIL_SYMBOL_PREFIX: &str = "__stencil_";

/// The bias added to a sign-extended 16-bit immediate before it is patched into a hole,
/// so that every hole value is a small non-negative number (see `Imm`).
pub const IMM_BIAS: i64 = 0x8000;

/// Expands to the exported entry point of one stencil variant (only in the stencil
/// build): `$sym` is its symbol, `[$la, $lb, $lc, $ld]` where the registers of fields A,
/// B, C and D live ([`variant::FRAME`] or a cached register's number). Every stencil
/// takes and passes on the run context, the frame and the cached machine registers;
/// on x86-64 with the System V convention on every OS (Windows included), since its
/// continuations compile to tail jumps, elsewhere with the C convention.
#[doc(hidden)]
#[macro_export]
macro_rules! __stencil_entry {
    ($sym:literal, [$la:expr, $lb:expr, $lc:expr, $ld:expr], |$t:ident| $call:expr) => {
        #[cfg(all(stencil_jit, target_arch = "x86_64"))]
        $crate::__stencil_entry!(@abi "sysv64", $sym, [$la, $lb, $lc, $ld], |$t| $call);
        #[cfg(all(stencil_jit, not(target_arch = "x86_64")))]
        $crate::__stencil_entry!(@abi "C", $sym, [$la, $lb, $lc, $ld], |$t| $call);
    };
    (@abi $abi:literal, $sym:literal, [$la:expr, $lb:expr, $lc:expr, $ld:expr], |$t:ident| $call:expr) => {
        const _: () = {
            #[export_name = $sym]
            pub unsafe extern $abi fn stencil(
                ctx: *mut $crate::Ctx, frame: *mut u64,
                r0: u64, r1: u64, r2: u64, r3: u64,
                f0: f64, f1: f64, f2: f64, f3: f64, f4: f64, f5: f64, f6: f64, f7: f64,
            ) -> u64 {
                let mut tier = unsafe {
                    $crate::__jit::JitTier::<$la, $lb, $lc, $ld>::new(
                        ctx, frame, [r0, r1, r2, r3], [f0, f1, f2, f3, f4, f5, f6, f7],
                    )
                };
                let flow = {
                    let $t = &mut tier;
                    $call
                };
                unsafe { tier.finish(flow) }
            }
        };
    };
}

#[cfg(stencil_jit)]
#[doc(hidden)]
pub use jit as __jit;

/// The stencil build is a `no_std` staticlib: it needs a panic handler to link, but a
/// stencil that can reach it references `core::panicking`, which the harvester refuses.
#[cfg(stencil_jit)]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {}
}
