//! x86-64 ELF (Linux, the BSDs): RELA relocations with explicit addends.

use object::elf;
use object::read::{Object, Relocation, RelocationFlags};
use stencil_table::{Hole, HoleValue, RelocKind};

use super::{Backend, Transfer};

pub(crate) struct ElfX86_64;

/// `call rel32`.
const CALL_REL32: u8 = 0xE8;
/// `jmp rel32`.
const JMP_REL32: u8 = 0xE9;

impl ElfX86_64 {
    /// Is the field at `offset` the rel32 of `call`/`jmp`/`jcc`? Returns the opcode.
    fn branch_at(bytes: &[u8], offset: usize) -> Option<Transfer> {
        let before = |n: usize| offset.checked_sub(n).and_then(|i| bytes.get(i)).copied();
        match before(1)? {
            CALL_REL32 => return Some(Transfer::Call),
            JMP_REL32 => return Some(Transfer::Jump),
            0x80..=0x8F if before(2) == Some(0x0F) => return Some(Transfer::Jump),
            _ => {}
        }
        None
    }

    /// Is the field at `offset` the disp32 of `lea r64, [rip + disp32]`
    /// (`REX.W 8D modrm(mod=00, rm=101)`)?
    fn is_lea_rip(bytes: &[u8], offset: usize) -> bool {
        let Some(start) = offset.checked_sub(3) else {
            return false;
        };
        match bytes.get(start..offset) {
            Some(&[rex, op, modrm]) => {
                (0x48..=0x4F).contains(&rex) && op == 0x8D && modrm & 0xC7 == 0x05
            }
            _ => false,
        }
    }
}

fn r_type(reloc: &Relocation) -> Option<elf::RelocationType> {
    match reloc.flags() {
        RelocationFlags::Elf { r_type } => Some(r_type),
        _ => None,
    }
}

impl Backend for ElfX86_64 {
    fn describe(&self) -> &'static str {
        "ELF x86-64"
    }

    fn check_file(&self, file: &object::File<'_>) -> Result<(), String> {
        let format = file.format();
        let arch = file.architecture();
        if format == object::BinaryFormat::Elf
            && arch == object::Architecture::X86_64
            && file.is_64()
        {
            Ok(())
        } else {
            Err(format!("{format:?} {arch:?}"))
        }
    }

    fn classify(
        &self,
        reloc: &Relocation,
        section: &[u8],
        offset: usize,
    ) -> Result<RelocKind, String> {
        let Some(r) = r_type(reloc) else {
            return Err(format!("{:?}", reloc.flags()));
        };
        Ok(match r {
            elf::R_X86_64_64 => RelocKind::X86_64Abs64,
            elf::R_X86_64_32 => RelocKind::X86_64Abs32,
            elf::R_X86_64_32S => RelocKind::X86_64Abs32S,
            elf::R_X86_64_PC32 | elf::R_X86_64_PLT32 => {
                if Self::branch_at(section, offset).is_some() {
                    RelocKind::X86_64Branch32
                } else if r == elf::R_X86_64_PC32 && Self::is_lea_rip(section, offset) {
                    RelocKind::X86_64LeaPc32
                } else {
                    // Same arithmetic as PC32 (`S + A - P`), without a trampoline.
                    RelocKind::X86_64Pc32
                }
            }
            other => {
                return Err(match elf::NAMES_R_X86_64.name(other) {
                    Some(name) => name.to_string(),
                    None => format!("ELF x86-64 relocation type {}", other.0),
                })
            }
        })
    }

    fn addend(&self, reloc: &Relocation, kind: RelocKind, section: &[u8], offset: usize) -> i64 {
        if !reloc.has_implicit_addend() {
            return reloc.addend();
        }
        // REL (not produced for x86-64, but cheap to honour): the field holds it.
        let field = section.get(offset..offset + kind.width());
        let implicit = match field {
            Some(b) if b.len() == 8 => i64::from_le_bytes(b.try_into().unwrap_or([0; 8])),
            Some(b) if b.len() == 4 => {
                let v = u32::from_le_bytes(b.try_into().unwrap_or([0; 4]));
                if kind == RelocKind::X86_64Abs32 {
                    v as i64
                } else {
                    v as i32 as i64
                }
            }
            _ => 0,
        };
        reloc.addend() + implicit
    }

    fn transfer(&self, kind: RelocKind, code: &[u8], offset: usize) -> Transfer {
        if kind != RelocKind::X86_64Branch32 {
            return Transfer::NotABranch;
        }
        Self::branch_at(code, offset).unwrap_or(Transfer::NotABranch)
    }

    fn tail_jump(&self, code: &[u8], holes: &[Hole]) -> u32 {
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
}
