//! Constants from literal sections, one entry at a time.
//!
//! A stencil that reads a constant used to get a copy of the whole section holding it.
//! Where that section pools the constants of every stencil (ELF's `.rodata.cst8`,
//! Mach-O's `__literal8`: one per object, not per function), a stencil's data, and the
//! addends pointing into it, then changed whenever another stencil gained or lost a
//! constant, and blessing the listings rewrote stencils nobody touched. In a literal
//! section every entry stands alone (the linker merges and reorders entries, so code
//! never reads across one), so copying just the entry a relocation points into is what
//! linking would keep, and depends on nothing else in the section.

use object::read::{ObjectSection, Section};
use object::SectionFlags;
use stencil_table::{Isa, RelocKind};

/// The entry size of a section of fixed-size literals, or `None` for any other section
/// (its bytes are then copied whole).
pub(crate) fn entry_size(section: &Section<'_, '_>) -> Option<u64> {
    match section.flags() {
        SectionFlags::Elf { sh_flags, .. } => {
            // SHF_MERGE without SHF_STRINGS: entries of `sh_entsize` bytes, which LLVM
            // names `.rodata.cst<size>`.
            let (merge, strings) = (0x10, 0x20);
            if sh_flags.0 & merge == 0 || sh_flags.0 & strings != 0 {
                return None;
            }
            let name = section.name().ok()?;
            let size: u64 = name.strip_prefix(".rodata.cst")?.parse().ok()?;
            size.is_power_of_two().then_some(size)
        }
        SectionFlags::MachO { flags, .. } => match flags.0 & 0xff {
            0x3 => Some(4),  // S_4BYTE_LITERALS
            0x4 => Some(8),  // S_8BYTE_LITERALS
            0xe => Some(16), // S_16BYTE_LITERALS
            _ => None,
        },
        _ => None,
    }
}

/// What to add to `S + A` to get the address the instruction reads: the distance from
/// the field to the end of its instruction for x86-64's PC-relative fields (`A` has it
/// subtracted: 4, plus an immediate after the displacement), 0 for the other kinds.
/// `None` when the instruction holding the field cannot be found.
pub(crate) fn pc_correction(kind: RelocKind, code: &[u8], field: usize) -> Option<i64> {
    use RelocKind::*;
    if kind.isa() != Isa::X86_64 || !matches!(kind, X86_64Pc32 | X86_64LeaPc32 | X86_64Branch32) {
        return Some(0);
    }
    let mut decoder = iced_x86::Decoder::new(64, code, iced_x86::DecoderOptions::NONE);
    let mut inst = iced_x86::Instruction::default();
    while decoder.can_decode() {
        decoder.decode_out(&mut inst);
        let end = inst.next_ip() as usize;
        if end > field {
            return (!inst.is_invalid() && inst.ip() as usize <= field && field + 4 <= end)
                .then(|| (end - field) as i64);
        }
    }
    None
}

/// The entry of a section of `entry` -byte literals that offset `referenced` lies in,
/// as a byte range of the section, if it is inside the section.
pub(crate) fn entry_at(referenced: i64, entry: u64, section_size: u64) -> Option<(u64, u64)> {
    let start = u64::try_from(referenced).ok()? / entry * entry;
    (start + entry <= section_size).then_some((start, start + entry))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pc_relative_fields_count_the_immediate_after_them() {
        // ucomisd xmm8, [rip+0]: the field ends the instruction.
        let code = [0x66, 0x44, 0x0f, 0x2e, 0x05, 0, 0, 0, 0];
        assert_eq!(pc_correction(RelocKind::X86_64Pc32, &code, 5), Some(4));
        // cmp qword [rip+0], 7: an imm8 follows the field.
        let code = [0x48, 0x83, 0x3d, 0, 0, 0, 0, 0x07];
        assert_eq!(pc_correction(RelocKind::X86_64Pc32, &code, 3), Some(5));
        assert_eq!(pc_correction(RelocKind::X86_64Abs32S, &code, 3), Some(0));
        assert_eq!(pc_correction(RelocKind::Aarch64AddLo12, &code, 0), Some(0));
        // A field that is not where an instruction's displacement could be.
        assert_eq!(pc_correction(RelocKind::X86_64Pc32, &code, 6), None);
    }

    #[test]
    fn entries_are_whole_and_inside_the_section() {
        assert_eq!(entry_at(0x18, 8, 0x40), Some((0x18, 0x20)));
        assert_eq!(entry_at(0x1c, 8, 0x40), Some((0x18, 0x20)));
        assert_eq!(entry_at(0x3c, 16, 0x40), Some((0x30, 0x40)));
        assert_eq!(entry_at(0x40, 16, 0x40), None);
        assert_eq!(entry_at(-4, 8, 0x40), None);
    }
}
