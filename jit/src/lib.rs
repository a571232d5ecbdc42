//! A copy-and-patch JIT for vm3.
//!
//! [`CompiledProgram::new`] compiles a verified program: every instruction becomes a
//! copy of its opcode's stencil (machine code harvested at build time from the
//! `stencils` crate for this target), with its holes patched: register offsets,
//! immediates, the addresses of the next instruction, branch targets, callees, helpers
//! and constants. [`CompiledProgram::run`] runs it, with the same results and traps as
//! the interpreter.
//!
//! Start reading at `compile.rs` (the two passes), then `lower.rs` (instructions to
//! stencils) and `patch/` (relocation arithmetic).

pub mod aot;
pub mod compile;
mod divide;
mod emit;
mod layout;
pub mod lower;
pub mod memory;
mod native_stack;
pub mod patch;
mod preserving;
pub mod regalloc;
mod runtime;
pub mod variants;

mod table {
    include!(concat!(env!("OUT_DIR"), "/stencils.rs"));
}

pub use compile::{CompileError, FunctionCode, Options};
pub use runtime::{helper_fns, host_stencils, CompiledProgram};
pub use vm3::interp::Config;
