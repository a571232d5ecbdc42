//! A copy-and-patch JIT for vm3, and the interface to embed it.
//!
//! Embedding ([`engine`]): an [`Engine`] holds the stencils and the options; a
//! [`Module`] is a verified program prepared and, in the compiled tier, compiled (every
//! instruction becomes a copy of its opcode's stencil, machine code harvested at build
//! time from the `stencils` crate for this target, with its holes patched); a [`Store`]
//! per thread holds the heap, the register stack and the limits; [`Func`] and
//! [`TypedFunc`] call a function, with the same results and traps in both tiers.
//!
//! Start reading the compiler at `compile.rs` (the two passes), then `lower.rs`
//! (instructions to stencils) and `patch/` (relocation arithmetic).

pub mod aot;
mod code_cache;
mod compile;
mod constants;
mod divide;
mod emit;
pub mod engine;
mod gdb_jit;
mod layout;
mod lower;
mod memory;
mod native_stack;
mod patch;
pub mod perf_map;
mod preserving;
mod regalloc;
mod runtime;
mod tier_up;
mod variants;

mod table {
    include!(concat!(env!("OUT_DIR"), "/stencils.rs"));
}

pub use code_cache::CodeReport;
pub use compile::{CompileError, Options as CompileOptions};
pub use engine::{
    Engine, EngineOptions, Func, InterruptHandle, Limits, Module, Param, Params, Return, Store,
    Tier, TierUp, TypedFunc,
};
pub use patch::PatchError;

/// What `stitch dump` and the JIT's own tests look at inside compiled code: not an
/// embedding interface, and without stability.
#[doc(hidden)]
pub mod testing {
    pub use crate::compile::FunctionCode;
    pub use crate::patch::{apply, apply_through_got};
    pub use crate::regalloc::reg_uses;
    pub use crate::runtime::{host_stencils, CompiledCode};
    use stencils::helpers::HelperFns;

    /// The compiled code of a module (`None` when it is interpreted).
    pub fn compiled_code(module: &crate::Module) -> Option<&CompiledCode> {
        module.code()
    }

    /// A module compiled with another stencil table than this machine's (tests run the
    /// tables harvested for other operating systems of this CPU, to execute relocation
    /// forms no Linux table has).
    ///
    /// # Safety
    /// Running the module runs the table's machine code: `stencils` must be a table
    /// harvested by `stencil-harvest` from this workspace's stencils, for this CPU and
    /// this build's stencil convention (a table of other bytes runs whatever they are;
    /// issue 10: as a safe function, a forged table crashed safe code).
    ///
    /// ```compile_fail
    /// fn compile(p: &vm3::VerifiedProgram, table: &stencil_table::StencilSet<'_>) {
    ///     let engine = jit::Engine::default();
    ///     let _ = jit::testing::module_with_stencils(&engine, p, table);
    /// }
    /// ```
    pub unsafe fn module_with_stencils(
        engine: &crate::Engine,
        program: &vm3::VerifiedProgram,
        stencils: &stencil_table::StencilSet<'_>,
    ) -> Result<crate::Module, crate::CompileError> {
        // SAFETY: the caller's contract.
        unsafe { crate::Module::with_stencils(engine, program, stencils) }
    }

    /// The helpers compiled code calls, with their addresses.
    pub fn helper_fns() -> HelperFns {
        crate::runtime::helper_fns()
    }
}
