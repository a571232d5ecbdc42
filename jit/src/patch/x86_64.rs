//! x86-64: absolute and rip-relative 32-bit fields, `lea` relaxation, trampolines.

use super::{write_u32, write_u64, Field, PatchError};
use stencil_table::RelocKind;

pub(super) fn apply(f: &Field, code: &mut [u8]) -> Result<(), PatchError> {
    let (offset, s_plus_a, relative) = (f.offset, f.s_plus_a, f.relative());
    match f.kind {
        RelocKind::X86_64Abs64 => write_u64(code, offset, s_plus_a as u64),
        RelocKind::X86_64Abs32 => {
            let v = u32::try_from(s_plus_a).map_err(|_| f.overflow(s_plus_a))?;
            write_u32(code, offset, v);
        }
        RelocKind::X86_64Abs32S => {
            let v = i32::try_from(s_plus_a).map_err(|_| f.overflow(s_plus_a))?;
            write_u32(code, offset, v as u32);
        }
        RelocKind::X86_64Pc32 | RelocKind::X86_64Branch32 => {
            let v = i32::try_from(relative).map_err(|_| f.overflow(relative))?;
            write_u32(code, offset, v as u32);
        }
        RelocKind::X86_64LeaPc32 => match i32::try_from(relative) {
            Ok(v) => write_u32(code, offset, v as u32),
            Err(_) => {
                // `lea r, [rip + disp]` computes P + 4 + disp = S + A + 4.
                let absolute = s_plus_a + 4;
                let imm = i32::try_from(absolute).map_err(|_| f.overflow(absolute))?;
                relax_lea_to_mov(code, f)?;
                write_u32(code, offset, imm as u32);
            }
        },
        _ => return Err(f.shape()),
    }
    Ok(())
}

/// Rewrites `REX.W(+R) 8D /r (mod=00, rm=101) disp32` (`lea r64, [rip + disp32]`) into
/// `REX.W(+B) C7 /0 (mod=11, rm=r) imm32` (`mov r64, sign-extended imm32`): same length,
/// same field position.
fn relax_lea_to_mov(code: &mut [u8], f: &Field) -> Result<(), PatchError> {
    let start = f.offset.checked_sub(3).ok_or(f.shape())?;
    let (rex, opcode, modrm) = (code[start], code[start + 1], code[start + 2]);
    let is_lea_rip = rex & 0xF8 == 0x48 && opcode == 0x8D && modrm & 0xC7 == 0x05;
    if !is_lea_rip {
        return Err(f.shape());
    }
    let reg = (modrm >> 3) & 7;
    let rex_r = (rex >> 2) & 1;
    code[start] = 0x48 | rex_r;
    code[start + 1] = 0xC7;
    code[start + 2] = 0xC0 | reg;
    Ok(())
}

/// Bytes of an x86-64 trampoline: `jmp [rip + 0]` followed by the 8-byte address.
pub(super) const TRAMPOLINE_LEN: usize = 14;

/// Writes a trampoline to `target` at `code[offset..]`. It clobbers no register.
pub(super) fn write_trampoline(code: &mut [u8], offset: usize, target: u64) {
    code[offset..offset + 6].copy_from_slice(&[0xFF, 0x25, 0, 0, 0, 0]);
    write_u64(code, offset + 6, target);
}

#[cfg(test)]
mod tests {
    use super::super::{apply, PatchError};
    use super::*;

    #[test]
    fn abs32s_writes_sign_extended_and_rejects_overflow() {
        let mut code = [0u8; 8];
        apply(RelocKind::X86_64Abs32S, &mut code, 2, 0x10, -0x20, 0).unwrap();
        assert_eq!(&code[2..6], &(-0x10i32).to_le_bytes());
        let err = apply(RelocKind::X86_64Abs32S, &mut code, 2, 1 << 31, 0, 0).unwrap_err();
        assert!(matches!(err, PatchError::Overflow { .. }));
    }

    #[test]
    fn abs32_rejects_negative() {
        let mut code = [0u8; 4];
        assert!(apply(RelocKind::X86_64Abs32, &mut code, 0, 0, -1, 0).is_err());
        apply(RelocKind::X86_64Abs32, &mut code, 0, 0xFFFF_FFFF, 0, 0).unwrap();
        assert_eq!(code, [0xFF; 4]);
    }

    #[test]
    fn branch_is_relative_to_the_field() {
        let mut code = [0xE9, 0, 0, 0, 0];
        // jmp from 0x1000 to 0x2000: disp = S + A - P = 0x2000 - 4 - 0x1001.
        apply(RelocKind::X86_64Branch32, &mut code, 1, 0x2000, -4, 0x1001).unwrap();
        assert_eq!(
            i32::from_le_bytes(code[1..5].try_into().unwrap()),
            0x2000 - 0x1005
        );
        assert!(apply(
            RelocKind::X86_64Branch32,
            &mut code,
            1,
            0x2_0000_0000,
            -4,
            0x1001
        )
        .is_err());
    }

    #[test]
    fn far_lea_of_a_small_value_becomes_mov_imm() {
        // lea r9, [rip + disp32] = 4C 8D 0D disp32
        let mut code = [0x4C, 0x8D, 0x0D, 0, 0, 0, 0];
        apply(
            RelocKind::X86_64LeaPc32,
            &mut code,
            3,
            0x8005,
            -0x8004,
            0x7f00_0000_0000,
        )
        .unwrap();
        // mov r9, 5 = 49 C7 C1 05 00 00 00
        assert_eq!(code, [0x49, 0xC7, 0xC1, 5, 0, 0, 0]);
    }

    #[test]
    fn near_lea_stays_a_lea() {
        let mut code = [0x48, 0x8D, 0x05, 0, 0, 0, 0];
        apply(RelocKind::X86_64LeaPc32, &mut code, 3, 0x1100, -4, 0x1003).unwrap();
        assert_eq!(&code[..3], &[0x48, 0x8D, 0x05]);
        assert_eq!(
            i32::from_le_bytes(code[3..7].try_into().unwrap()),
            0x1100 - 0x1007
        );
    }

    #[test]
    fn lea_relaxation_refuses_other_instructions() {
        let mut code = [0x48, 0x8B, 0x05, 0, 0, 0, 0]; // mov rax, [rip + disp]
        let err = apply(
            RelocKind::X86_64LeaPc32,
            &mut code,
            3,
            5,
            -4,
            0x7f00_0000_0000,
        )
        .unwrap_err();
        assert!(matches!(err, PatchError::Shape { .. }));
    }

    #[test]
    fn trampoline_encodes_an_indirect_jump() {
        let mut code = [0u8; TRAMPOLINE_LEN];
        write_trampoline(&mut code, 0, 0x1122_3344_5566_7788);
        assert_eq!(&code[..6], &[0xFF, 0x25, 0, 0, 0, 0]);
        assert_eq!(
            u64::from_le_bytes(code[6..].try_into().unwrap()),
            0x1122_3344_5566_7788
        );
    }
}
