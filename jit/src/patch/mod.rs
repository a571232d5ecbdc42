//! Relocation arithmetic: writing a hole's value into code, as a linker would.
//!
//! Pure byte manipulation with no dependence on the host, so a table for any target
//! can be patched into a buffer anywhere (tests compare the result with real linkers).
//! This module dispatches on the relocation kind; each CPU's arithmetic and
//! instruction rewrites live in a submodule of their own.

use stencil_table::RelocKind;

mod x86_64;

pub use self::x86_64::{write_x86_64_trampoline, X86_64_TRAMPOLINE_LEN};

/// A hole that could not be filled.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    #[error("{kind:?} at offset {offset}: value {value:#x} does not fit the field")]
    Overflow {
        kind: RelocKind,
        offset: usize,
        value: i128,
    },
    #[error("{kind:?} at offset {offset}: the instruction is not the shape this relocation needs")]
    Shape { kind: RelocKind, offset: usize },
}

/// Writes `value + addend` into `code` at `offset` with the arithmetic of `kind`.
/// `place` is the address `code[offset]` will have when it runs.
///
/// A branch that does not reach returns `Overflow`: the caller reroutes it through a
/// trampoline. A RIP-relative `lea` that does not reach is relaxed in place to
/// `mov r64, imm32` loading the same value.
pub fn apply(
    kind: RelocKind,
    code: &mut [u8],
    offset: usize,
    value: u64,
    addend: i64,
    place: u64,
) -> Result<(), PatchError> {
    if offset + kind.width() > code.len() {
        return Err(PatchError::Shape { kind, offset });
    }
    match kind {
        RelocKind::X86_64Abs64
        | RelocKind::X86_64Abs32
        | RelocKind::X86_64Abs32S
        | RelocKind::X86_64Pc32
        | RelocKind::X86_64LeaPc32
        | RelocKind::X86_64Branch32 => x86_64::apply(kind, code, offset, value, addend, place),
    }
}

fn write_u32(code: &mut [u8], offset: usize, v: u32) {
    code[offset..offset + 4].copy_from_slice(&v.to_le_bytes());
}

fn write_u64(code: &mut [u8], offset: usize, v: u64) {
    code[offset..offset + 8].copy_from_slice(&v.to_le_bytes());
}
