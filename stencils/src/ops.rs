//! The opcodes, one `#[stencil]` function each (spec §2). The function's name is the
//! mnemonic; its parameters after the tier are the operand fields; its body is the
//! semantics, for both tiers. `build.rs` numbers them in file order (files sorted by
//! name, functions in source order).

pub mod branch;
pub mod call;
pub mod float;
pub mod int;
pub mod internal;
pub mod moves;
pub mod objects;
