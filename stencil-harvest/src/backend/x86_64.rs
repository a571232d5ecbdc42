//! x86-64 instruction shapes, shared by the x86-64 backends of every object format:
//! which instruction a 32-bit field sits in, the tail jump, alignment padding.

use stencil_table::{Hole, HoleValue, RelocKind};

use super::Transfer;

/// `call rel32`.
const CALL_REL32: u8 = 0xE8;
/// `jmp rel32`.
const JMP_REL32: u8 = 0xE9;

/// Is the field at `offset` the rel32 of `call`/`jmp`/`jcc`?
pub(crate) fn branch_at(bytes: &[u8], offset: usize) -> Option<Transfer> {
    let before = |n: usize| offset.checked_sub(n).and_then(|i| bytes.get(i)).copied();
    match before(1)? {
        CALL_REL32 => Some(Transfer::Call),
        JMP_REL32 => Some(Transfer::Jump),
        0x80..=0x8F if before(2) == Some(0x0F) => Some(Transfer::Jump),
        _ => None,
    }
}

/// Is the field at `offset` the disp32 of `REX.W <opcode> modrm(mod=00, rm=101)`, an
/// instruction `op r64, [rip + disp32]`?
fn is_rex_w_rip(bytes: &[u8], offset: usize, opcode: u8) -> bool {
    let Some(start) = offset.checked_sub(3) else {
        return false;
    };
    match bytes.get(start..offset) {
        Some(&[rex, op, modrm]) => {
            (0x48..=0x4F).contains(&rex) && op == opcode && modrm & 0xC7 == 0x05
        }
        _ => false,
    }
}

/// Is the field at `offset` a 32-bit field that its instruction sign-extends to 64 bits,
/// recognisably: the displacement of `lea r64, [reg + disp32]` (`REX.W 8D`, mod=10,
/// no SIB), or the immediate of `add`/`sub`/... `r64, imm32` (`REX.W 81`), of
/// `mov r64, imm32` (`REX.W C7`) or of `imul r64, r64, imm32` (`REX.W 69`), each with a
/// register operand (mod=11) so that the field follows the ModRM byte directly.
/// Also the short forms on `rax` (`REX.W 05`, `2D`, `3D`, ...: `add`/`or`/`adc`/`sbb`/
/// `and`/`sub`/`xor`/`cmp rax, imm32`), where the field follows the opcode.
pub(crate) fn sign_extends_field(bytes: &[u8], offset: usize) -> bool {
    let rex_w = |b: u8| (0x48..=0x4F).contains(&b);
    let before = |n: usize| offset.checked_sub(n).and_then(|i| bytes.get(i)).copied();
    if let (Some(rex), Some(op), Some(modrm)) = (before(3), before(2), before(1)) {
        let (mode, rm) = (modrm >> 6, modrm & 7);
        let long_form = match op {
            0x8D => mode == 0b10 && rm != 0b100,
            0x81 | 0xC7 | 0x69 => mode == 0b11,
            _ => false,
        };
        if rex_w(rex) && long_form {
            return true;
        }
    }
    matches!(
        (before(2), before(1)),
        (Some(rex), Some(0x05 | 0x0D | 0x15 | 0x1D | 0x25 | 0x2D | 0x35 | 0x3D)) if rex_w(rex)
    )
}

/// `lea r64, [rip + disp32]`.
pub(crate) fn is_lea_rip(bytes: &[u8], offset: usize) -> bool {
    is_rex_w_rip(bytes, offset, 0x8D)
}

/// `mov r64, [rip + disp32]`.
pub(crate) fn is_mov_load_rip(bytes: &[u8], offset: usize) -> bool {
    is_rex_w_rip(bytes, offset, 0x8B)
}

/// The kind of a PC-relative 32-bit field to a symbol or data, by its instruction.
pub(crate) fn pc32_kind(bytes: &[u8], offset: usize) -> RelocKind {
    if branch_at(bytes, offset).is_some() {
        RelocKind::X86_64Branch32
    } else if is_lea_rip(bytes, offset) {
        RelocKind::X86_64LeaPc32
    } else {
        // `S + A - P` where the JIT can neither reroute nor rewrite the instruction.
        RelocKind::X86_64Pc32
    }
}

pub(crate) fn transfer(kind: RelocKind, code: &[u8], offset: usize) -> Transfer {
    if kind != RelocKind::X86_64Branch32 {
        return Transfer::NotABranch;
    }
    branch_at(code, offset).unwrap_or(Transfer::NotABranch)
}

/// 5 when `code` ends in `jmp rel32` to `_JIT_CONTINUE` (addend -4), else 0.
pub(crate) fn tail_jump(code: &[u8], holes: &[Hole]) -> u32 {
    let Some(field) = code.len().checked_sub(4) else {
        return 0;
    };
    if field == 0 || code[field - 1] != JMP_REL32 {
        return 0;
    }
    let ends_in_continue = holes.iter().any(|h| {
        h.offset as usize == field
            && h.value == HoleValue::Continue
            && h.kind == RelocKind::X86_64Branch32
            && h.addend == -4
    });
    if ends_in_continue {
        5
    } else {
        0
    }
}

/// Length of one no-op at the start of `bytes` in the encodings assemblers pad with
/// (`90`, `0F 1F /0` with a zero displacement, after `66` and `2E` prefixes).
fn nop_len(bytes: &[u8]) -> Option<usize> {
    let prefixes = bytes
        .iter()
        .take_while(|&&b| b == 0x66 || b == 0x2E)
        .count();
    let rest = &bytes[prefixes..];
    let len = match rest {
        [0x90, ..] => 1,
        [0x0F, 0x1F, modrm, tail @ ..] => {
            let extra = match *modrm {
                0x00 => 0,
                0x40 => 1,
                0x44 => 2,
                0x80 => 4,
                0x84 => 5,
                _ => return None,
            };
            if tail.len() < extra || tail[..extra].iter().any(|&b| b != 0) {
                return None;
            }
            3 + extra
        }
        _ => return None,
    };
    Some(prefixes + len)
}

/// The no-op padding after a `jmp rel32` that carries a relocation, when only no-ops
/// follow it to the end of `code`. The relocation fixes where the jump's bytes are, so
/// the padding is known to start at an instruction boundary; a function cannot fall
/// off its end, so no-ops after its last jump are padding.
pub(crate) fn trailing_padding(code: &[u8], holes: &[Hole]) -> usize {
    for h in holes.iter().rev() {
        let field = h.offset as usize;
        if h.kind != RelocKind::X86_64Branch32 || field == 0 || code[field - 1] != JMP_REL32 {
            continue;
        }
        let end = field + 4;
        if end >= code.len() {
            return 0;
        }
        let mut at = end;
        while at < code.len() {
            match nop_len(&code[at..]) {
                Some(n) => at += n,
                None => return 0,
            }
        }
        return if at == code.len() {
            code.len() - end
        } else {
            0
        };
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hole(offset: u32) -> Hole {
        Hole {
            offset,
            kind: RelocKind::X86_64Branch32,
            value: HoleValue::Continue,
            addend: -4,
        }
    }

    #[test]
    fn padding_after_the_last_jump_is_found() {
        // pop rbp; jmp _JIT_CONTINUE; nopw %cs:0(%rax,%rax); nopl 0(%rax)
        let code = [
            0x5D, 0xE9, 0, 0, 0, 0, 0x66, 0x2E, 0x0F, 0x1F, 0x84, 0, 0, 0, 0, 0, 0x0F, 0x1F, 0x40,
            0,
        ];
        assert_eq!(trailing_padding(&code, &[hole(2)]), 14);
        assert_eq!(trailing_padding(&code[..6], &[hole(2)]), 0);
        // Something that is not a no-op after the jump: no padding claimed.
        let mut other = code;
        other[19] = 1;
        assert_eq!(trailing_padding(&other, &[hole(2)]), 0);
        // A hole that is not in a jmp rel32.
        let mut call = code;
        call[1] = 0xE8;
        assert_eq!(trailing_padding(&call, &[hole(2)]), 0);
    }

    #[test]
    fn nop_encodings() {
        assert_eq!(nop_len(&[0x90]), Some(1));
        assert_eq!(nop_len(&[0x66, 0x90]), Some(2));
        assert_eq!(nop_len(&[0x0F, 0x1F, 0x44, 0, 0]), Some(5));
        assert_eq!(nop_len(&[0x0F, 0x1F, 0x44, 0, 1]), None);
        assert_eq!(nop_len(&[0x0F, 0x1F, 0x80, 0, 0]), None);
        assert_eq!(nop_len(&[0xC3]), None);
    }
}
