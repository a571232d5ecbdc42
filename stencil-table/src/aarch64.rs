//! aarch64 instruction shapes, shared by the harvester (which checks that a relocation
//! sits on the instruction it expects) and the patcher (which rewrites instructions).
//! Each predicate tests the fixed opcode bits of one encoding class.

/// `adrp xd, page`.
pub fn is_adrp(insn: u32) -> bool {
    insn & 0x9F00_0000 == 0x9000_0000
}

/// `add (immediate)`, 32 or 64 bit, not setting flags, unshifted immediate.
pub fn is_add_imm(insn: u32) -> bool {
    insn & 0x7FC0_0000 == 0x1100_0000
}

/// A load or store (integer or SIMD&FP) with an unsigned scaled 12-bit offset.
pub fn is_ldst_uimm(insn: u32) -> bool {
    insn & 0x3B00_0000 == 0x3900_0000
}

/// `ldr xt, [xn, #imm]` (64-bit, unsigned offset).
pub fn is_ldr_x_uimm(insn: u32) -> bool {
    insn & 0xFFC0_0000 == 0xF940_0000
}

/// `b` or `bl`.
pub fn is_b_or_bl(insn: u32) -> bool {
    insn & 0x7C00_0000 == 0x1400_0000
}

/// `bl`.
pub fn is_bl(insn: u32) -> bool {
    insn & 0xFC00_0000 == 0x9400_0000
}

/// `b.cond`, `cbz`, `cbnz`.
pub fn is_imm19_branch(insn: u32) -> bool {
    insn & 0xFF00_0010 == 0x5400_0000 || insn & 0x7E00_0000 == 0x3400_0000
}

/// `tbz`, `tbnz`.
pub fn is_imm14_branch(insn: u32) -> bool {
    insn & 0x7E00_0000 == 0x3600_0000
}

/// `movz` or `movk` (32 or 64 bit).
pub fn is_movz_or_movk(insn: u32) -> bool {
    insn & 0x5F80_0000 == 0x5280_0000
}

/// The destination register field.
pub fn rd(insn: u32) -> u32 {
    insn & 0x1F
}

/// The first source register field.
pub fn rn(insn: u32) -> u32 {
    (insn >> 5) & 0x1F
}
