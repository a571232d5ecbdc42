//! x86-64: absolute and RIP-relative 32-bit fields, `lea` and GOT-load relaxation,
//! trampolines.

use super::{write_u32, write_u64, Field, PatchError};
use stencil_table::RelocKind;

/// [`super::apply`] for the x86-64 kinds.
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
        RelocKind::X86_64Abs31 => {
            // Means the same zero- or sign-extended only below 2^31.
            let v = u32::try_from(s_plus_a)
                .ok()
                .filter(|v| *v < 1 << 31)
                .ok_or(f.overflow(s_plus_a))?;
            write_u32(code, offset, v);
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
                rip_operand_to_imm(code, f, LEA)?;
                write_u32(code, offset, imm as u32);
            }
        },
        RelocKind::X86_64GotLoadPc32 => {
            if !is_rex_w_rip(code, offset, MOV_LOAD) {
                return Err(f.shape());
            }
            // The relaxed forms produce the slot's content `S` itself only when the
            // field addresses the slot exactly (`A = -4`: RIP is the field's end).
            if f.addend != -4 {
                return Err(f.needs_got());
            }
            if let Ok(v) = i32::try_from(relative) {
                // `mov r64, [rip + slot]` -> `lea r64, [rip + S]`: the opcode byte only.
                code[offset - 2] = LEA;
                write_u32(code, offset, v as u32);
            } else if let Ok(imm) = i32::try_from(f.value() as i64) {
                rip_operand_to_imm(code, f, MOV_LOAD)?;
                write_u32(code, offset, imm as u32);
            } else {
                return Err(f.needs_got());
            }
        }
        RelocKind::X86_64GotPc32 => return Err(f.needs_got()),
        _ => return Err(f.shape()),
    }
    Ok(())
}

/// [`super::apply_through_got`] for the x86-64 kinds: the field addresses the slot
/// (`f`'s value), RIP-relative.
pub(super) fn apply_through_got(f: &Field, code: &mut [u8]) -> Result<(), PatchError> {
    let relative = f.relative();
    let v = i32::try_from(relative).map_err(|_| f.overflow(relative))?;
    write_u32(code, f.offset, v as u32);
    Ok(())
}

/// [`super::relaxes_to_immediate`] for the x86-64 GOT kinds.
pub(super) fn relaxes_to_immediate(f: &Field, code: &[u8]) -> bool {
    match f.kind {
        RelocKind::X86_64GotLoadPc32 => {
            f.addend == -4
                && is_rex_w_rip(code, f.offset, MOV_LOAD)
                && i32::try_from(f.value() as i64).is_ok()
        }
        RelocKind::X86_64GotPc32 => false,
        _ => true,
    }
}

/// `lea r64, m`.
const LEA: u8 = 0x8D;
/// `mov r64, r/m64`.
const MOV_LOAD: u8 = 0x8B;

/// Is `code[offset..]` the disp32 of `REX.W(+R) <opcode> modrm(mod=00, rm=101)`?
fn is_rex_w_rip(code: &[u8], offset: usize, opcode: u8) -> bool {
    match offset
        .checked_sub(3)
        .and_then(|start| code.get(start..offset))
    {
        Some(&[rex, op, modrm]) => rex & 0xF8 == 0x48 && op == opcode && modrm & 0xC7 == 0x05,
        _ => false,
    }
}

/// Rewrites `REX.W(+R) <opcode> /r (mod=00, rm=101) disp32` (`lea r64, [rip + disp32]`
/// or `mov r64, [rip + disp32]`) into `REX.W(+B) C7 /0 (mod=11, rm=r) imm32`
/// (`mov r64, sign-extended imm32`): same length, same field position.
fn rip_operand_to_imm(code: &mut [u8], f: &Field, opcode: u8) -> Result<(), PatchError> {
    if !is_rex_w_rip(code, f.offset, opcode) {
        return Err(f.shape());
    }
    let start = f.offset - 3;
    let (rex, modrm) = (code[start], code[start + 2]);
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
    use super::super::{apply, apply_through_got, relaxes_to_immediate, PatchError};
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
    fn abs31_accepts_only_values_both_extensions_agree_on() {
        let mut code = [0u8; 4];
        apply(RelocKind::X86_64Abs31, &mut code, 0, 0x7FFF_FFFF, 0, 0).unwrap();
        assert_eq!(code, [0xFF, 0xFF, 0xFF, 0x7F]);
        for bad in [0x8000_0000u64, u64::MAX] {
            let err = apply(RelocKind::X86_64Abs31, &mut code, 0, bad, 0, 0).unwrap_err();
            assert!(matches!(err, PatchError::Overflow { .. }));
        }
    }

    /// `mov r10, [rip + disp32]` = 4C 8B 15 disp32.
    const MOV_R10_GOT: [u8; 7] = [0x4C, 0x8B, 0x15, 0, 0, 0, 0];

    #[test]
    fn got_load_of_a_near_value_becomes_lea() {
        let mut code = MOV_R10_GOT;
        apply(
            RelocKind::X86_64GotLoadPc32,
            &mut code,
            3,
            0x7f00_0000_2000,
            -4,
            0x7f00_0000_1003,
        )
        .unwrap();
        // lea r10, [rip + 0xFF9]: rip = 0x7f00_0000_1007.
        assert_eq!(code, [0x4C, 0x8D, 0x15, 0xF9, 0x0F, 0, 0]);
    }

    #[test]
    fn got_load_of_a_small_value_becomes_mov_imm() {
        let mut code = MOV_R10_GOT;
        apply(
            RelocKind::X86_64GotLoadPc32,
            &mut code,
            3,
            0x48,
            -4,
            0x7f00_0000_1003,
        )
        .unwrap();
        // mov r10, 0x48 = 49 C7 C2 48 00 00 00
        assert_eq!(code, [0x49, 0xC7, 0xC2, 0x48, 0, 0, 0]);
        // A negative value sign-extends.
        let mut code = [0x48, 0x8B, 0x05, 0, 0, 0, 0];
        apply(
            RelocKind::X86_64GotLoadPc32,
            &mut code,
            3,
            (-8i64) as u64,
            -4,
            0x7f00_0000_1003,
        )
        .unwrap();
        assert_eq!(code, [0x48, 0xC7, 0xC0, 0xF8, 0xFF, 0xFF, 0xFF]);
    }

    #[test]
    fn got_load_of_a_far_large_value_needs_a_slot() {
        let mut code = MOV_R10_GOT;
        let far = 0x1234_5678_9ABC;
        let err = apply(
            RelocKind::X86_64GotLoadPc32,
            &mut code,
            3,
            far,
            -4,
            0x7f00_0000_1003,
        )
        .unwrap_err();
        assert!(matches!(err, PatchError::NeedsGot { .. }));
        assert_eq!(code, MOV_R10_GOT, "nothing written");
        assert!(!relaxes_to_immediate(
            RelocKind::X86_64GotLoadPc32,
            &code,
            3,
            far,
            -4
        ));
        assert!(relaxes_to_immediate(
            RelocKind::X86_64GotLoadPc32,
            &code,
            3,
            0x48,
            -4
        ));
        // Through a slot: the instruction stays a load, the field reaches the slot.
        apply_through_got(
            RelocKind::X86_64GotLoadPc32,
            &mut code,
            3,
            0x7f00_0000_3000,
            -4,
            0x7f00_0000_1003,
        )
        .unwrap();
        assert_eq!(code, [0x4C, 0x8B, 0x15, 0xF9, 0x1F, 0, 0]);
    }

    #[test]
    fn other_got_reads_always_need_a_slot() {
        // add rcx, [rip + disp32] = 48 03 0D disp32
        let mut code = [0x48, 0x03, 0x0D, 0, 0, 0, 0];
        let err = apply(RelocKind::X86_64GotPc32, &mut code, 3, 8, -4, 0x1003).unwrap_err();
        assert!(matches!(err, PatchError::NeedsGot { .. }));
        assert!(!relaxes_to_immediate(
            RelocKind::X86_64GotPc32,
            &code,
            3,
            8,
            -4
        ));
    }

    #[test]
    fn got_load_relaxation_refuses_other_instructions() {
        let mut code = [0x48, 0x8D, 0x05, 0, 0, 0, 0]; // already a lea
        let err = apply(RelocKind::X86_64GotLoadPc32, &mut code, 3, 8, -4, 0x1003).unwrap_err();
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
