//! aarch64: immediates inside 32-bit instructions, `adrp` pair relaxation, trampolines.
//!
//! Every field is one little-endian instruction; the relocation fills its immediate and
//! keeps the other bits (opcode, registers). The pairs that only compute an address
//! (`adrp` + `add`, and GOT loads) are rewritten to `movz` + `movk` when the value is a
//! small number, which `adrp` (PC-relative, ±4 GiB) cannot reach from the code.

use super::{read_u32, write_u32, write_u64, Field, PatchError};
use stencil_table::aarch64::{
    is_add_imm, is_adrp, is_b_or_bl, is_imm14_branch, is_imm19_branch, is_ldr_x_uimm, is_ldst_uimm,
    is_movz_or_movk, rd, rn,
};
use stencil_table::RelocKind;

/// `movz xd, #imm16`.
const MOVZ_X: u32 = 0xD280_0000;
/// `movk xd, #imm16, lsl #16`.
const MOVK_X_LSL16: u32 = 0xF2A0_0000;
/// `add xd, xn, #imm12`.
const ADD_X_IMM: u32 = 0x9100_0000;
/// `add xd, xn, #imm12, lsl #12`.
const ADD_X_IMM_LSL12: u32 = 0x9140_0000;
/// `ldr x16, #8` (the literal two instructions on).
const LDR_X16_LITERAL_8: u32 = 0x5800_0050;
/// `br x16`.
const BR_X16: u32 = 0xD61F_0200;

/// Replaces the bits of `mask` in `insn` with `value` shifted to the mask's position.
fn with_bits(insn: u32, mask: u32, value: u32) -> u32 {
    (insn & !mask) | ((value << mask.trailing_zeros()) & mask)
}

const IMM12: u32 = 0x003F_FC00;
const IMM16: u32 = 0x001F_FFE0;
const IMM19: u32 = 0x00FF_FFE0;
const IMM14: u32 = 0x0007_FFE0;
const IMM26: u32 = 0x03FF_FFFF;

/// `S + A` when it is a small number the relaxed pair can load (below 2^32).
fn small(s_plus_a: i128) -> Option<u64> {
    (0..1i128 << 32)
        .contains(&s_plus_a)
        .then_some(s_plus_a as u64)
}

pub(super) fn apply(f: &Field, code: &mut [u8]) -> Result<(), PatchError> {
    use RelocKind::*;
    let insn = read_u32(code, f.offset);
    let s = f.s_plus_a;
    let need = |ok: bool| if ok { Ok(()) } else { Err(f.shape()) };
    let patched = match f.kind {
        Aarch64AdrpPage21 => {
            need(is_adrp(insn))?;
            adrp(f, insn, s)?
        }
        Aarch64AddLo12 => {
            need(is_add_imm(insn))?;
            with_bits(insn, IMM12, (s & 0xFFF) as u32)
        }
        Aarch64Ldst8Lo12 | Aarch64Ldst16Lo12 | Aarch64Ldst32Lo12 | Aarch64Ldst64Lo12
        | Aarch64Ldst128Lo12 => {
            need(is_ldst_uimm(insn))?;
            let scale = match f.kind {
                Aarch64Ldst8Lo12 => 0,
                Aarch64Ldst16Lo12 => 1,
                Aarch64Ldst32Lo12 => 2,
                Aarch64Ldst64Lo12 => 3,
                _ => 4,
            };
            let lo = (s & 0xFFF) as u32;
            if lo & ((1 << scale) - 1) != 0 {
                return Err(f.misaligned(s));
            }
            with_bits(insn, IMM12, lo >> scale)
        }
        Aarch64AdrpAddPage21 | Aarch64GotPage21 => {
            need(is_adrp(insn))?;
            match small(s) {
                Some(v) => MOVZ_X | (((v & 0xFFFF) as u32) << 5) | rd(insn),
                // The GOT form loads `S + A` from a slot; pointing the `adrp` at the
                // value itself (and its `ldr` becoming an `add`) gives the same result.
                // Out of the `adrp`'s reach only a slot can hold the value.
                None if f.kind == Aarch64GotPage21 => {
                    adrp(f, insn, s).map_err(|_| f.needs_got())?
                }
                None => adrp(f, insn, s)?,
            }
        }
        Aarch64AdrpAddLo12 => {
            need(is_add_imm(insn))?;
            match small(s) {
                Some(v) => relaxed_high_half(f, rd(insn), rn(insn), v)?,
                None => with_bits(insn, IMM12, (s & 0xFFF) as u32),
            }
        }
        Aarch64GotLo12 => {
            need(is_ldr_x_uimm(insn))?;
            match small(s) {
                Some(v) => relaxed_high_half(f, rd(insn), rn(insn), v)?,
                None => ADD_X_IMM | (((s & 0xFFF) as u32) << 10) | (rn(insn) << 5) | rd(insn),
            }
        }
        Aarch64Branch26 => {
            need(is_b_or_bl(insn))?;
            with_bits(insn, IMM26, branch_offset(f, 28)?)
        }
        Aarch64CondBranch19 => {
            need(is_imm19_branch(insn))?;
            with_bits(insn, IMM19, branch_offset(f, 21)?)
        }
        Aarch64TestBranch14 => {
            need(is_imm14_branch(insn))?;
            with_bits(insn, IMM14, branch_offset(f, 16)?)
        }
        Aarch64MovwG0 | Aarch64MovwG0Nc | Aarch64MovwG1 | Aarch64MovwG1Nc | Aarch64MovwG2
        | Aarch64MovwG2Nc | Aarch64MovwG3 => {
            need(is_movz_or_movk(insn))?;
            let (group, checked_bits) = match f.kind {
                Aarch64MovwG0 => (0, Some(16)),
                Aarch64MovwG0Nc => (0, None),
                Aarch64MovwG1 => (1, Some(32)),
                Aarch64MovwG1Nc => (1, None),
                Aarch64MovwG2 => (2, Some(48)),
                Aarch64MovwG2Nc => (2, None),
                _ => (3, None),
            };
            if let Some(bits) = checked_bits {
                if !(0..1i128 << bits).contains(&s) {
                    return Err(f.overflow(s));
                }
            }
            with_bits(insn, IMM16, ((s as u64 >> (16 * group)) & 0xFFFF) as u32)
        }
        _ => return Err(f.shape()),
    };
    write_u32(code, f.offset, patched);
    Ok(())
}

/// [`super::apply_through_got`] for the aarch64 GOT kinds: the `adrp` addresses the
/// slot's page and the `ldr` the slot within it (`f`'s value is the slot's address),
/// as a linker that keeps the GOT load writes them.
pub(super) fn apply_through_got(f: &Field, code: &mut [u8]) -> Result<(), PatchError> {
    let insn = read_u32(code, f.offset);
    let s = f.s_plus_a;
    let patched = match f.kind {
        RelocKind::Aarch64GotPage21 if is_adrp(insn) => adrp(f, insn, s)?,
        RelocKind::Aarch64GotLo12 if is_ldr_x_uimm(insn) => {
            let lo = (s & 0xFFF) as u32;
            if lo & 7 != 0 {
                return Err(f.misaligned(s));
            }
            with_bits(insn, IMM12, lo >> 3)
        }
        _ => return Err(f.shape()),
    };
    write_u32(code, f.offset, patched);
    Ok(())
}

/// [`super::relaxes_to_immediate`] for the aarch64 GOT kinds: whether [`apply`] turns
/// the instruction into part of a `movz` + `movk` (or `add ..., lsl #12`) load of the
/// value, which does not depend on the place.
pub(super) fn relaxes_to_immediate(f: &Field, code: &[u8]) -> bool {
    let insn = read_u32(code, f.offset);
    match (f.kind, small(f.s_plus_a)) {
        (RelocKind::Aarch64GotPage21, Some(_)) => is_adrp(insn),
        (RelocKind::Aarch64GotLo12, Some(v)) => {
            is_ldr_x_uimm(insn) && relaxed_high_half(f, rd(insn), rn(insn), v).is_ok()
        }
        _ => false,
    }
}

/// `adrp`: the distance in 4 KiB pages from the instruction's page to the value's,
/// 21 bits signed, split into immlo (bits 29..31) and immhi (bits 5..24).
fn adrp(f: &Field, insn: u32, s: i128) -> Result<u32, PatchError> {
    let pages = (s >> 12) - (f.place >> 12);
    if !(-(1i128 << 20)..1i128 << 20).contains(&pages) {
        return Err(f.overflow(s - f.place));
    }
    let pages = pages as u32;
    Ok((insn & !0x60FF_FFE0) | ((pages & 3) << 29) | (((pages >> 2) & 0x7FFFF) << 5))
}

/// The second instruction of a relaxed pair whose first is `movz xn, #(v & 0xFFFF)`:
/// `movk xd, #(v >> 16), lsl #16` when it writes the same register, else
/// `add xd, xn, #(v >> 16 << 4), lsl #12`, which only reaches values below 2^24.
fn relaxed_high_half(f: &Field, d: u32, n: u32, v: u64) -> Result<u32, PatchError> {
    let high = (v >> 16) as u32;
    if d == n {
        Ok(MOVK_X_LSL16 | (high << 5) | d)
    } else if high < 1 << 8 {
        Ok(ADD_X_IMM_LSL12 | ((high << 4) << 10) | (n << 5) | d)
    } else {
        Err(f.overflow(v as i128))
    }
}

/// `(S + A - P) >> 2` for a branch whose offset has `bits` bits (sign included).
fn branch_offset(f: &Field, bits: u32) -> Result<u32, PatchError> {
    let delta = f.relative();
    if delta & 3 != 0 {
        return Err(f.misaligned(delta));
    }
    if !(-(1i128 << (bits - 1))..1i128 << (bits - 1)).contains(&delta) {
        return Err(f.overflow(delta));
    }
    Ok((delta >> 2) as u32)
}

/// Bytes of an aarch64 trampoline: `ldr x16, #8; br x16; .quad target`.
pub(super) const TRAMPOLINE_LEN: usize = 16;

/// Writes a trampoline to `target` at `code[offset..]` (8-byte aligned, so the literal
/// is). It clobbers only x16, which the procedure call standard reserves for veneers.
pub(super) fn write_trampoline(code: &mut [u8], offset: usize, target: u64) {
    write_u32(code, offset, LDR_X16_LITERAL_8);
    write_u32(code, offset + 4, BR_X16);
    write_u64(code, offset + 8, target);
}

#[cfg(test)]
mod tests {
    use super::super::{apply, apply_through_got, relaxes_to_immediate, PatchError};
    use super::*;

    fn code(insns: &[u32]) -> Vec<u8> {
        insns.iter().flat_map(|i| i.to_le_bytes()).collect()
    }

    fn insns(code: &[u8]) -> Vec<u32> {
        code.chunks(4)
            .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
            .collect()
    }

    /// What x`reg` holds after running `insns` (only the instructions the relaxations
    /// produce: adrp, movz, movk, add immediate) with the first at `pc`.
    fn run(insns: &[u32], pc: u64, reg: u32) -> u64 {
        let mut x = [0u64; 32];
        for (i, &insn) in insns.iter().enumerate() {
            let here = pc + 4 * i as u64;
            let (d, n) = (rd(insn) as usize, rn(insn) as usize);
            let imm12 = ((insn >> 10) & 0xFFF) as u64;
            let imm16 = ((insn >> 5) & 0xFFFF) as u64;
            if is_adrp(insn) {
                let pages = (((insn >> 5) & 0x7FFFF) << 2 | (insn >> 29) & 3) as i64;
                let pages = (pages << 43) >> 43;
                x[d] = (here & !0xFFF).wrapping_add((pages << 12) as u64);
            } else if insn & 0xFFE0_0000 == MOVZ_X {
                x[d] = imm16;
            } else if insn & 0xFFE0_0000 == MOVK_X_LSL16 {
                x[d] = (x[d] & !0xFFFF_0000) | imm16 << 16;
            } else if insn & 0xFFC0_0000 == ADD_X_IMM {
                x[d] = x[n] + imm12;
            } else if insn & 0xFFC0_0000 == ADD_X_IMM_LSL12 {
                x[d] = x[n] + (imm12 << 12);
            } else {
                panic!("unexpected instruction {insn:#010x}");
            }
        }
        x[reg as usize]
    }

    const ADRP_X8: u32 = 0x9000_0008;
    const ADD_X8_X8: u32 = 0x9100_0108;
    const ADD_X9_X8: u32 = 0x9100_0109;
    const LDR_X8_X8: u32 = 0xF940_0108;
    const LDR_X9_X8: u32 = 0xF940_0109;

    /// Patches an `adrp` + second instruction pair at `pc` for `value`.
    fn pair(
        kinds: (RelocKind, RelocKind),
        second: u32,
        value: u64,
        pc: u64,
    ) -> Result<Vec<u32>, PatchError> {
        let mut c = code(&[ADRP_X8, second]);
        apply(kinds.0, &mut c, 0, value, 0, pc)?;
        apply(kinds.1, &mut c, 4, value, 0, pc + 4)?;
        Ok(insns(&c))
    }

    const ADD_PAIR: (RelocKind, RelocKind) = (
        RelocKind::Aarch64AdrpAddPage21,
        RelocKind::Aarch64AdrpAddLo12,
    );
    const GOT_PAIR: (RelocKind, RelocKind) =
        (RelocKind::Aarch64GotPage21, RelocKind::Aarch64GotLo12);

    #[test]
    fn adrp_encodes_the_page_distance() {
        // As `llvm-mc`: adrp x8, #0x12345000 at 0 is b0 09 1a 28.
        let mut c = code(&[ADRP_X8]);
        apply(RelocKind::Aarch64AdrpPage21, &mut c, 0, 0x1234_5678, 0, 0).unwrap();
        assert_eq!(insns(&c), [0xB009_1A28]);
        // Backwards, from the middle of a page, keeping the register.
        let pc = 0x7f00_1234_5abc;
        let mut c = code(&[0x9000_0013]);
        apply(
            RelocKind::Aarch64AdrpPage21,
            &mut c,
            0,
            pc - 0x9_8000,
            8,
            pc,
        )
        .unwrap();
        assert_eq!(run(&insns(&c), pc, 19), (pc - 0x9_8000 + 8) & !0xFFF);
        // ±4 GiB is the limit.
        let far = apply(
            RelocKind::Aarch64AdrpPage21,
            &mut c,
            0,
            pc + (1 << 32),
            0,
            pc,
        );
        assert!(matches!(far, Err(PatchError::Overflow { .. })));
        let mut add = code(&[ADD_X8_X8]);
        assert!(matches!(
            apply(RelocKind::Aarch64AdrpPage21, &mut add, 0, 0, 0, 0),
            Err(PatchError::Shape { .. })
        ));
    }

    #[test]
    fn add_and_loads_take_the_low_twelve_bits() {
        let mut c = code(&[ADD_X9_X8]);
        apply(RelocKind::Aarch64AddLo12, &mut c, 0, 0x5000_0123, 0, 0).unwrap();
        assert_eq!(insns(&c), [0x9104_8D09]); // add x9, x8, #0x123
                                              // ldr x3, [x8, #0x18]: the offset is scaled by 8.
        let mut c = code(&[0xF940_0103]);
        apply(RelocKind::Aarch64Ldst64Lo12, &mut c, 0, 0x7000_2010, 8, 0).unwrap();
        assert_eq!(insns(&c), [0xF940_0D03]);
        // str d0, [x1, #0xff8]
        let mut c = code(&[0xFD00_0020]);
        apply(RelocKind::Aarch64Ldst64Lo12, &mut c, 0, 0x1FF8, 0, 0).unwrap();
        assert_eq!(insns(&c), [0xFD07_FC20]);
        // ldr q0, [x2, #0x20]: scaled by 16.
        let mut c = code(&[0x3DC0_0040]);
        apply(RelocKind::Aarch64Ldst128Lo12, &mut c, 0, 0x4020, 0, 0).unwrap();
        assert_eq!(insns(&c), [0x3DC0_0840]);
        // An 8-byte access at an offset that is not a multiple of 8.
        let mut c = code(&[0xF940_0103]);
        assert!(matches!(
            apply(RelocKind::Aarch64Ldst64Lo12, &mut c, 0, 0x1004, 0, 0),
            Err(PatchError::Misaligned { .. })
        ));
        // Byte accesses are unscaled.
        let mut c = code(&[0x3940_0000]); // ldrb w0, [x0]
        apply(RelocKind::Aarch64Ldst8Lo12, &mut c, 0, 0xABC, 0, 0).unwrap();
        assert_eq!(insns(&c)[0] >> 10 & 0xFFF, 0xABC);
    }

    #[test]
    fn branches_encode_word_offsets_and_keep_the_opcode() {
        // b #0x100 and bl #-8, as llvm-mc encodes them.
        let mut c = code(&[0x1400_0000, 0x9400_0000]);
        apply(RelocKind::Aarch64Branch26, &mut c, 0, 0x1100, 0, 0x1000).unwrap();
        apply(RelocKind::Aarch64Branch26, &mut c, 4, 0x1000 - 4, 0, 0x1004).unwrap();
        assert_eq!(insns(&c), [0x1400_0040, 0x97FF_FFFE]);
        // ±128 MiB.
        let mut c = code(&[0x9400_0000]);
        apply(RelocKind::Aarch64Branch26, &mut c, 0, (1 << 27) - 4, 0, 0).unwrap();
        assert_eq!(insns(&c), [0x95FF_FFFF]);
        assert!(matches!(
            apply(RelocKind::Aarch64Branch26, &mut c, 0, 1 << 27, 0, 0),
            Err(PatchError::Overflow { .. })
        ));
        assert!(matches!(
            apply(RelocKind::Aarch64Branch26, &mut c, 0, 6, 0, 0),
            Err(PatchError::Misaligned { .. })
        ));
        // b.ne #0x40, cbz x2, #-0x40, tbnz w3, #5, #0x20.
        let mut c = code(&[0x5400_0001, 0xB400_0002, 0x3728_0003]);
        apply(RelocKind::Aarch64CondBranch19, &mut c, 0, 0x40, 0, 0).unwrap();
        apply(
            RelocKind::Aarch64CondBranch19,
            &mut c,
            4,
            0x1000 - 0x40,
            0,
            0x1000,
        )
        .unwrap();
        apply(RelocKind::Aarch64TestBranch14, &mut c, 8, 0x28, 0, 8).unwrap();
        assert_eq!(insns(&c), [0x5400_0201, 0xB4FF_FE02, 0x3728_0103]);
        assert!(apply(RelocKind::Aarch64CondBranch19, &mut c, 0, 1 << 20, 0, 0).is_err());
        assert!(apply(
            RelocKind::Aarch64CondBranch19,
            &mut c,
            0,
            (1 << 20) - 4,
            0,
            0
        )
        .is_ok());
        assert!(apply(RelocKind::Aarch64TestBranch14, &mut c, 8, 0x8000, 0, 0).is_err());
        // A data relocation on a branch is a table bug.
        assert!(matches!(
            apply(
                RelocKind::Aarch64CondBranch19,
                &mut code(&[ADD_X8_X8]),
                0,
                0,
                0,
                0
            ),
            Err(PatchError::Shape { .. })
        ));
    }

    #[test]
    fn movw_groups_write_sixteen_bits_each() {
        let value = 0x1122_3344_5566_7788u64;
        let kinds = [
            RelocKind::Aarch64MovwG0Nc,
            RelocKind::Aarch64MovwG1Nc,
            RelocKind::Aarch64MovwG2Nc,
            RelocKind::Aarch64MovwG3,
        ];
        // movz x8, #0; movk x8, #0, lsl 16; lsl 32; lsl 48
        let mut c = code(&[0xD280_0008, 0xF2A0_0008, 0xF2C0_0008, 0xF2E0_0008]);
        for (i, kind) in kinds.into_iter().enumerate() {
            apply(kind, &mut c, 4 * i, value - 8, 8, 0).unwrap();
        }
        assert_eq!(
            insns(&c),
            [0xD28E_F108, 0xF2AA_ACC8, 0xF2C6_6888, 0xF2E2_2448]
        );
        // The checked groups refuse what the following groups would have to carry.
        let mut c = code(&[0xD280_0008]);
        apply(RelocKind::Aarch64MovwG0, &mut c, 0, 0xFFFF, 0, 0).unwrap();
        assert!(apply(RelocKind::Aarch64MovwG0, &mut c, 0, 0x1_0000, 0, 0).is_err());
        assert!(apply(RelocKind::Aarch64MovwG1, &mut c, 0, 1 << 32, 0, 0).is_err());
        assert!(apply(RelocKind::Aarch64MovwG2, &mut c, 0, 1 << 48, 0, 0).is_err());
        assert!(apply(RelocKind::Aarch64MovwG0, &mut c, 0, 0, -1, 0).is_err());
        assert!(apply(RelocKind::Aarch64MovwG0Nc, &mut c, 0, 0x1_0000, 0, 0).is_ok());
    }

    #[test]
    fn small_values_relax_the_pair_to_movz_movk() {
        let pc = 0x7fff_f7a0_1000;
        // movz x8, #0x5678; movk x8, #0x1234, lsl #16
        let relaxed = pair(ADD_PAIR, ADD_X8_X8, 0x1234_5678, pc).unwrap();
        assert_eq!(relaxed, [0xD28A_CF08, 0xF2A2_4688]);
        for value in [0, 1, 0x8000, 0xFFFF, 0x1_0000, 0xFF_FFFF, 0xFFFF_FFFF] {
            let relaxed = pair(ADD_PAIR, ADD_X8_X8, value, pc).unwrap();
            assert_eq!(run(&relaxed, pc, 8), value, "{value:#x}");
            let relaxed = pair(GOT_PAIR, LDR_X8_X8, value, pc).unwrap();
            assert_eq!(run(&relaxed, pc, 8), value, "GOT {value:#x}");
        }
    }

    #[test]
    fn a_pair_into_another_register_relaxes_below_two_to_the_24() {
        let pc = 0x7fff_f7a0_1000;
        for value in [0, 0xFFFF, 0x1_0000, 0x12_3456, 0xFF_FFFF] {
            // movz x8, #lo; add x9, x8, #hi, lsl #12
            let relaxed = pair(ADD_PAIR, ADD_X9_X8, value, pc).unwrap();
            assert_eq!(run(&relaxed, pc, 9), value, "{value:#x}");
            let relaxed = pair(GOT_PAIR, LDR_X9_X8, value, pc).unwrap();
            assert_eq!(run(&relaxed, pc, 9), value, "GOT {value:#x}");
        }
        assert!(matches!(
            pair(ADD_PAIR, ADD_X9_X8, 1 << 24, pc),
            Err(PatchError::Overflow { .. })
        ));
    }

    #[test]
    fn addresses_near_the_code_keep_the_adrp() {
        let pc = 0x7fff_f7a0_1ff8;
        for value in [pc + 0x10_0123, pc - 0x8000_0000, pc + 0xFFFF_0000] {
            let patched = pair(ADD_PAIR, ADD_X9_X8, value, pc).unwrap();
            assert!(is_adrp(patched[0]));
            assert_eq!(run(&patched, pc, 9), value, "{value:#x}");
            // A GOT load of an address within reach becomes adrp + add of the address.
            let patched = pair(GOT_PAIR, LDR_X9_X8, value, pc).unwrap();
            assert!(is_adrp(patched[0]) && is_add_imm(patched[1]));
            assert_eq!(run(&patched, pc, 9), value, "GOT {value:#x}");
        }
        // Neither small nor near (a helper in the binary, far from the region): only a
        // GOT slot can hold it.
        assert!(matches!(
            pair(GOT_PAIR, LDR_X9_X8, pc + (8 << 30), pc),
            Err(PatchError::NeedsGot { .. })
        ));
    }

    #[test]
    fn a_got_load_through_a_slot_addresses_the_slot() {
        let pc = 0x7fff_f7a0_1ff8;
        let slot = pc + 0x3_0008 + 0x100;
        let mut c = code(&[ADRP_X8, LDR_X9_X8]);
        apply_through_got(RelocKind::Aarch64GotPage21, &mut c, 0, slot, 0, pc).unwrap();
        apply_through_got(RelocKind::Aarch64GotLo12, &mut c, 4, slot, 0, pc + 4).unwrap();
        let patched = insns(&c);
        // The adrp computes the slot's page, the ldr keeps its registers and loads
        // from the slot's offset in the page (imm12 is scaled by 8).
        assert_eq!(run(&patched[..1], pc, 8), slot & !0xFFF);
        assert_eq!(patched[1] & !IMM12, LDR_X9_X8);
        assert_eq!(u64::from((patched[1] & IMM12) >> 10) * 8, slot & 0xFFF);
        // Slots are 8-byte aligned; anything else is a bug in the caller.
        assert!(matches!(
            apply_through_got(RelocKind::Aarch64GotLo12, &mut c, 4, slot + 4, 0, pc + 4),
            Err(PatchError::Misaligned { .. })
        ));
        // The instructions must be the GOT load's.
        assert!(matches!(
            apply_through_got(RelocKind::Aarch64GotLo12, &mut c, 0, slot, 0, pc),
            Err(PatchError::Shape { .. })
        ));
    }

    #[test]
    fn only_small_values_relax_to_an_immediate_before_placing() {
        let adrp = code(&[ADRP_X8]);
        let same = code(&[LDR_X8_X8]);
        let other = code(&[LDR_X9_X8]);
        let relaxes = |kind, c: &[u8], v| relaxes_to_immediate(kind, c, 0, v, 0);
        assert!(relaxes(RelocKind::Aarch64GotPage21, &adrp, 0xFFFF_FFFF));
        assert!(!relaxes(RelocKind::Aarch64GotPage21, &adrp, 1 << 32));
        assert!(relaxes(RelocKind::Aarch64GotLo12, &same, 0xFFFF_FFFF));
        // Into another register the second half reaches only 2^24.
        assert!(relaxes(RelocKind::Aarch64GotLo12, &other, 0xFF_FFFF));
        assert!(!relaxes(RelocKind::Aarch64GotLo12, &other, 1 << 24));
        // Kinds without a GOT never need a slot.
        assert!(relaxes(RelocKind::Aarch64AdrpAddPage21, &adrp, 1 << 40));
    }

    #[test]
    fn trampoline_loads_the_target_into_x16() {
        let mut c = vec![0u8; TRAMPOLINE_LEN];
        write_trampoline(&mut c, 0, 0x0000_aaaa_dead_beef);
        // ldr x16, #8; br x16 (as llvm-mc encodes them), then the address.
        assert_eq!(insns(&c[..8]), [0x5800_0050, 0xD61F_0200]);
        assert_eq!(
            u64::from_le_bytes(c[8..].try_into().unwrap()),
            0x0000_aaaa_dead_beef
        );
    }
}
