//! vm3 bytecode (see `../shared/spec/bytecode.md`, "the spec"): the program model,
//! a builder for embedders, the `.vm3` assembler, the verifier and the reference
//! interpreter.
//!
//! Nothing runs unverified: [`Program::verify`] is the only way to a
//! [`VerifiedProgram`], and both tiers take one.

pub mod asm;
pub mod builder;
mod errors;
pub mod heap;
#[path = "interp.rs"]
mod machine;
mod program;
mod stack;
pub mod text;
mod value;
pub mod verify;

pub use errors::{AsmErrors, VerifyErrors};
pub use heap::{Heap, DEFAULT_HEAP_LIMIT, MAX_VALUE_DEPTH};
pub use program::{Const, Function, Program, RegCounts, VerifiedProgram, NOT_A_STRING};
pub use stencils::{Bank, Field, Inst, Opcode, OperandKind, Trap};
pub use value::{RunError, TrapInfo, Value};
pub use verify::VerifyError;

/// The reference interpreter, as tests compare the tiers against it. An embedder runs
/// programs through the `jit` crate's `Engine`, which does the per-program work once.
pub mod interp {
    pub use crate::machine::{run, run_on, Config};
}

/// What the `jit` crate needs to run a program in a tier of its own and to hand an
/// activation over to the interpreter. Not an embedding interface: no stability, and
/// its functions have safety contracts of their own.
#[doc(hidden)]
pub mod tier_support {
    pub use crate::machine::{
        interpret, run_prepared, BegunRun, Machine, NativeEntry, Prepared, RunLimits, TierUp,
    };
    pub use crate::stack::RegisterStack;
}
