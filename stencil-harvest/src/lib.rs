//! The stencil harvester: builds the `stencils` crate for a target as a static library
//! with the stencil flags, finds every stencil in its object file, checks the rules a
//! stencil must obey, and writes the stencil table as Rust source.
//!
//! ```text
//! build(&BuildOptions)  ->  libstencils.a  ->  harvest_staticlib  ->  OwnedStencilSet
//!                                                  |                      |
//!                                   rules checked here         summary / to_rust_source
//! ```
//!
//! The rules (each a [`HarvestError`] variant naming the stencil and code offset):
//! 1. a continuation (`_JIT_CONTINUE`, `_JIT_TARGET`, and `_JIT_CALLEE` of tail-call
//!    opcodes) is reached by a jump, never a call;
//! 2. a stencil references only `_JIT_*` holes, declared helpers
//!    (`stencils::helpers::HELPER_NAMES`) and read-only constants;
//! 3. every relocation is of a kind the table can express;
//! 4. every expected stencil exists;
//! 5. every relocation of a stencil's code section belongs to a stencil.
//!
//! Object formats and CPUs plug in as backends (`backend/`); x86-64 ELF, Mach-O and COFF
//! and aarch64 ELF and Mach-O are implemented.

mod backend;
mod build_script;
mod cargo_build;
mod error;
mod harvest;
mod literal;
mod output;

pub use build_script::{
    build_script_main, rerun_directives, run_build_script, workspace_root, write_if_changed,
    BuildScriptEnv, BuildScriptOutput, TARGET_DIR_ENV,
};
pub use cargo_build::{build, build_command, check_target, stencil_rustflags, BuildOptions};
pub use error::HarvestError;
pub use harvest::{
    harvest, harvest_staticlib, harvest_staticlib_with, harvest_with, stencil_object,
    vm3_stencil_specs, StencilSpec,
};
pub use output::{summary, summary_of_set, to_rust_source};
pub use stencil_table::{OwnedStencil, OwnedStencilSet};

/// Targets with a harvesting backend.
pub fn is_supported_target(target: &str) -> bool {
    backend::backend_for(target).is_ok()
}

/// Every relocation kind the harvester can give a hole of `target`'s stencils (the
/// backend's list, which the harvester enforces).
pub fn reloc_kinds(target: &str) -> Result<&'static [stencil_table::RelocKind], HarvestError> {
    backend::backend_for(target).map(|b| b.kinds())
}

/// `Err(HarvestError::UnsupportedTarget)` when no backend harvests `target`'s objects
/// (checked before a build, so an unsupported target fails fast).
pub fn check_supported(target: &str) -> Result<(), HarvestError> {
    backend::backend_for(target).map(|_| ())
}
