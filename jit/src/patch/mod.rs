//! Relocation arithmetic: writing a hole's value into code, as a linker would.
//!
//! Pure byte manipulation with no dependence on the host, so a table for any target
//! can be patched into a buffer anywhere (tests compare the result with real linkers).
//! This module dispatches on the instruction set a relocation kind names
//! ([`RelocKind::isa`]); each CPU's arithmetic and instruction rewrites live in a
//! submodule of their own (`x86_64`, `aarch64`).

use stencil_table::{Isa, RelocKind};

mod aarch64;
mod x86_64;

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
    #[error("{kind:?} at offset {offset}: value {value:#x} is not aligned as the field needs")]
    Misaligned {
        kind: RelocKind,
        offset: usize,
        value: i128,
    },
    /// The value reaches the instruction only through a GOT slot: the caller gives it
    /// one and calls [`apply_through_got`].
    #[error("{kind:?} at offset {offset}: the value needs a GOT slot and none was given")]
    NeedsGot { kind: RelocKind, offset: usize },
}

/// Writes `value + addend` into `code` at `offset` with the arithmetic of `kind`.
/// `place` is the address `code[offset]` will have when it runs.
///
/// A branch that does not reach returns `Overflow`: the caller reroutes it through a
/// trampoline. A PC-relative address computation that cannot reach a small value (an
/// x86-64 `lea`, an aarch64 `adrp` + `add` pair) is relaxed in place to instructions
/// that load the value itself. A hole of a GOT kind ([`RelocKind::uses_got`]) is
/// relaxed to instructions that compute the value without a memory access where they
/// can, else returns `NeedsGot`.
pub fn apply(
    kind: RelocKind,
    code: &mut [u8],
    offset: usize,
    value: u64,
    addend: i64,
    place: u64,
) -> Result<(), PatchError> {
    let field = Field::new(kind, code, offset, value, addend, place)?;
    match kind.isa() {
        Isa::X86_64 => x86_64::apply(&field, code),
        Isa::Aarch64 => aarch64::apply(&field, code),
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
    if !kind.uses_got() {
        return Err(PatchError::Shape { kind, offset });
    }
    let field = Field::new(kind, code, offset, slot, addend, place)?;
    match kind.isa() {
        Isa::X86_64 => x86_64::apply_through_got(&field, code),
        Isa::Aarch64 => aarch64::apply_through_got(&field, code),
    }
}

/// Whether [`apply`] fills a hole of `kind` with `value` without a GOT slot wherever the
/// code is placed (the value fits an immediate form). Always true of kinds that do not
/// use the GOT. The compiler asks this before the code has an address, to know which
/// values need a slot; relaxations that depend on the place (x86-64 `lea`, aarch64
/// `adrp` + `add`) are tried later.
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
    // The place is not known yet and matters to none of the immediate forms.
    let Ok(field) = Field::new(kind, code, offset, value, addend, 0) else {
        return false;
    };
    match kind.isa() {
        Isa::X86_64 => x86_64::relaxes_to_immediate(&field, code),
        Isa::Aarch64 => aarch64::relaxes_to_immediate(&field, code),
    }
}

/// Whether a GOT-kind hole whose value has a slot may still try [`apply`]'s relaxed
/// forms first, falling back to the slot on `NeedsGot`. True when the field's
/// instruction is rewritten on its own (x86-64). False for the halves of an aarch64
/// `adrp` + `ldr` GOT load: each half is patched alone, and a choice the `adrp` makes
/// from the place (reaching the value itself) the `ldr` cannot see, so both halves of
/// a value with a slot go through the slot.
pub fn relaxes_per_instruction(kind: RelocKind) -> bool {
    kind.isa() == Isa::X86_64
}

/// One relocation being applied: what the per-ISA arithmetic needs.
struct Field {
    kind: RelocKind,
    /// Offset of the field in the code buffer.
    offset: usize,
    /// `A` (an x86-64 GOT load relaxes only when it addresses its slot exactly).
    addend: i64,
    /// `S + A`.
    s_plus_a: i128,
    /// `P`, the address the field will have.
    place: i128,
}

impl Field {
    /// The field of `kind` at `offset`, which must lie within `code`.
    fn new(
        kind: RelocKind,
        code: &[u8],
        offset: usize,
        value: u64,
        addend: i64,
        place: u64,
    ) -> Result<Field, PatchError> {
        if offset + kind.width() > code.len() {
            return Err(PatchError::Shape { kind, offset });
        }
        Ok(Field {
            kind,
            offset,
            addend,
            s_plus_a: value as i128 + addend as i128,
            place: place as i128,
        })
    }

    fn overflow(&self, value: i128) -> PatchError {
        PatchError::Overflow {
            kind: self.kind,
            offset: self.offset,
            value,
        }
    }

    fn shape(&self) -> PatchError {
        PatchError::Shape {
            kind: self.kind,
            offset: self.offset,
        }
    }

    fn misaligned(&self, value: i128) -> PatchError {
        PatchError::Misaligned {
            kind: self.kind,
            offset: self.offset,
            value,
        }
    }

    fn needs_got(&self) -> PatchError {
        PatchError::NeedsGot {
            kind: self.kind,
            offset: self.offset,
        }
    }

    /// `S`.
    fn value(&self) -> u64 {
        (self.s_plus_a - self.addend as i128) as u64
    }

    /// `S + A - P`.
    fn relative(&self) -> i128 {
        self.s_plus_a - self.place
    }
}

/// A stub placed after the code that jumps to an address a branch cannot reach.
#[derive(Clone, Copy, Debug)]
pub struct Trampoline {
    /// Bytes it takes.
    pub len: usize,
    /// Writes it at `code[offset..offset + len]`, jumping to `target`.
    pub write: fn(code: &mut [u8], offset: usize, target: u64),
}

/// The trampoline a branch of `kind` can be redirected to, if `kind` is a branch that
/// may call a helper.
pub fn trampoline(kind: RelocKind) -> Option<Trampoline> {
    match kind {
        RelocKind::X86_64Branch32 => Some(Trampoline {
            len: x86_64::TRAMPOLINE_LEN,
            write: x86_64::write_trampoline,
        }),
        RelocKind::Aarch64Branch26 => Some(Trampoline {
            len: aarch64::TRAMPOLINE_LEN,
            write: aarch64::write_trampoline,
        }),
        _ => None,
    }
}

fn read_u32(code: &[u8], offset: usize) -> u32 {
    u32::from_le_bytes(code[offset..offset + 4].try_into().expect("4 bytes"))
}

fn write_u32(code: &mut [u8], offset: usize, v: u32) {
    code[offset..offset + 4].copy_from_slice(&v.to_le_bytes());
}

fn write_u64(code: &mut [u8], offset: usize, v: u64) {
    code[offset..offset + 8].copy_from_slice(&v.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_past_the_buffer_are_refused() {
        let mut code = [0u8; 6];
        let err = apply(RelocKind::X86_64Abs32, &mut code, 4, 1, 0, 0).unwrap_err();
        assert!(matches!(err, PatchError::Shape { .. }));
        let err = apply(RelocKind::Aarch64Branch26, &mut code, 4, 1, 0, 0).unwrap_err();
        assert!(matches!(err, PatchError::Shape { .. }));
        let err =
            apply_through_got(RelocKind::Aarch64GotLo12, &mut code, 4, 0x1000, 0, 0).unwrap_err();
        assert!(matches!(err, PatchError::Shape { .. }));
        assert!(!relaxes_to_immediate(
            RelocKind::X86_64GotLoadPc32,
            &code,
            4,
            1,
            -4
        ));
    }

    #[test]
    fn only_got_kinds_go_through_a_slot() {
        let mut code = [0u8; 8];
        for kind in [RelocKind::X86_64Pc32, RelocKind::Aarch64AdrpAddPage21] {
            let err = apply_through_got(kind, &mut code, 0, 0x1000, 0, 0).unwrap_err();
            assert!(matches!(err, PatchError::Shape { .. }), "{kind:?}");
        }
    }

    #[test]
    fn every_branch_that_may_call_a_helper_has_a_trampoline() {
        for kind in [RelocKind::X86_64Branch32, RelocKind::Aarch64Branch26] {
            let t = trampoline(kind).unwrap();
            let mut code = vec![0u8; t.len];
            (t.write)(&mut code, 0, 0x1234_5678_9abc_def0);
            assert!(code
                .windows(8)
                .any(|w| w == 0x1234_5678_9abc_def0u64.to_le_bytes()));
        }
        assert!(trampoline(RelocKind::Aarch64CondBranch19).is_none());
    }
}
