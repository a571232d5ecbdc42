//! vm3 bytecode (see `../shared/spec/bytecode.md`, "the spec"): the program model,
//! a builder for embedders, the `.vm3` assembler, the verifier and the reference
//! interpreter.
//!
//! Nothing runs unverified: [`Program::verify`] is the only way to a
//! [`VerifiedProgram`], and both tiers take one.

pub mod asm;
pub mod builder;
pub mod heap;
pub mod interp;
mod program;
mod stack;
pub mod text;
mod value;
pub mod verify;

pub use heap::{Heap, DEFAULT_HEAP_LIMIT, MAX_VALUE_DEPTH};
pub use program::{Const, Function, Program, RegCounts, VerifiedProgram, NOT_A_STRING};
pub use stack::RegisterStack;
pub use stencils::{Bank, Field, Inst, Opcode, OperandKind, Trap};
pub use value::{RunError, TrapInfo, Value};
pub use verify::VerifyError;
