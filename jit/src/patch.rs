//! Relocation arithmetic: writing a hole's value into code, as a linker would.
//!
//! Pure byte manipulation with no dependence on the host, so a table for any target
//! can be patched into a buffer anywhere (tests compare the result with real linkers).
//! The instruction-set specific parts are in `x86_64` and `aarch64`; a relocation kind
//! names its instruction set ([`RelocKind::isa`]).

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
}

/// Writes `value + addend` into `code` at `offset` with the arithmetic of `kind`.
/// `place` is the address `code[offset]` will have when it runs.
///
/// A branch that does not reach returns `Overflow`: the caller reroutes it through a
/// trampoline. A PC-relative address computation that cannot reach a small value (an
/// x86-64 `lea`, an aarch64 `adrp` + `add` pair) is relaxed in place to instructions
/// that load the value itself.
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
    let field = Field {
        kind,
        offset,
        s_plus_a: value as i128 + addend as i128,
        place: place as i128,
    };
    match kind.isa() {
        Isa::X86_64 => x86_64::apply(&field, code),
        Isa::Aarch64 => aarch64::apply(&field, code),
    }
}

/// One relocation being applied: what the per-ISA arithmetic needs.
struct Field {
    kind: RelocKind,
    /// Offset of the field in the code buffer.
    offset: usize,
    /// `S + A`.
    s_plus_a: i128,
    /// `P`, the address the field will have.
    place: i128,
}

impl Field {
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
