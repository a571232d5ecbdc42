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
    /// The value reaches the instruction only through a GOT slot: the caller gives it
    /// one and calls [`apply_through_got`].
    #[error("{kind:?} at offset {offset}: the value needs a GOT slot and none was given")]
    NeedsGot { kind: RelocKind, offset: usize },
}

/// Writes `value + addend` into `code` at `offset` with the arithmetic of `kind`.
/// `place` is the address `code[offset]` will have when it runs.
///
/// A branch that does not reach returns `Overflow`: the caller reroutes it through a
/// trampoline. A RIP-relative `lea` that does not reach is relaxed in place to
/// `mov r64, imm32` loading the same value. A hole of a GOT kind
/// ([`RelocKind::uses_got`]) is relaxed to an instruction that computes the value
/// without a memory access where one fits, else returns `NeedsGot`.
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
        | RelocKind::X86_64Branch32
        | RelocKind::X86_64Abs31
        | RelocKind::X86_64GotLoadPc32
        | RelocKind::X86_64GotPc32 => x86_64::apply(kind, code, offset, value, addend, place),
    }
}

/// Fills a hole of a GOT kind through the GOT slot at address `slot`, which holds the
/// hole's value: the instruction is left as it is and its field addresses the slot, as
/// a linker that does not relax would write it. `place` as in [`apply`].
pub fn apply_through_got(
    kind: RelocKind,
    code: &mut [u8],
    offset: usize,
    slot: u64,
    addend: i64,
    place: u64,
) -> Result<(), PatchError> {
    if !kind.uses_got() || offset + kind.width() > code.len() {
        return Err(PatchError::Shape { kind, offset });
    }
    match kind {
        RelocKind::X86_64GotLoadPc32 | RelocKind::X86_64GotPc32 => {
            x86_64::apply_through_got(kind, code, offset, slot, addend, place)
        }
        _ => Err(PatchError::Shape { kind, offset }),
    }
}

/// Whether [`apply`] fills a hole of `kind` with `value` without a GOT slot wherever the
/// code is placed (the value fits an immediate form). Always true of kinds that do not
/// use the GOT. The compiler asks this before the code has an address, to know which
/// values need a slot; relaxations that depend on the place (`lea`) are tried later.
pub fn relaxes_to_immediate(
    kind: RelocKind,
    code: &[u8],
    offset: usize,
    value: u64,
    addend: i64,
) -> bool {
    if !kind.uses_got() {
        return true;
    }
    x86_64::relaxes_to_immediate(kind, code, offset, value, addend)
}

fn write_u32(code: &mut [u8], offset: usize, v: u32) {
    code[offset..offset + 4].copy_from_slice(&v.to_le_bytes());
}

fn write_u64(code: &mut [u8], offset: usize, v: u64) {
    code[offset..offset + 8].copy_from_slice(&v.to_le_bytes());
}
