//! The opcodes, one `#[stencil]` function each (spec §2). The function's name is the
//! mnemonic; its parameters after the tier are the operand fields; its body is the
//! semantics, for both tiers. Each opcode's number is its line in `stencils/opcodes.txt`
//! (append-only); `build.rs` reports a file below that has no `pub mod` line here.

pub mod branch;
pub mod call;
pub mod float;
pub mod int;
pub mod internal;
pub mod moves;
pub mod objects;
