//! x86-64 ELF (Linux, the BSDs): RELA relocations with explicit addends.

use object::elf;
use object::read::{Object, Relocation, RelocationFlags};
use stencil_table::{Hole, RelocKind};

use super::{x86_64, Addend, Backend, Field, Transfer};

pub(crate) struct ElfX86_64;

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

    fn kinds(&self) -> &'static [RelocKind] {
        use RelocKind::*;
        &[
            X86_64Abs64,
            X86_64Abs32,
            X86_64Abs32S,
            X86_64Branch32,
            X86_64Pc32,
            X86_64LeaPc32,
        ]
    }

    fn classify(&self, reloc: &Relocation, field: &Field<'_>) -> Result<RelocKind, String> {
        let Some(r) = r_type(reloc) else {
            return Err(format!("{:?}", reloc.flags()));
        };
        Ok(match r {
            elf::R_X86_64_64 => RelocKind::X86_64Abs64,
            elf::R_X86_64_32 => RelocKind::X86_64Abs32,
            elf::R_X86_64_32S => RelocKind::X86_64Abs32S,
            elf::R_X86_64_PLT32 if x86_64::branch_at(field.section, field.offset).is_some() => {
                RelocKind::X86_64Branch32
            }
            elf::R_X86_64_PLT32 => RelocKind::X86_64Pc32,
            elf::R_X86_64_PC32 => x86_64::pc32_kind(field.section, field.offset),
            other => {
                return Err(match elf::NAMES_R_X86_64.name(other) {
                    Some(name) => name.to_string(),
                    None => format!("ELF x86-64 relocation type {}", other.0),
                })
            }
        })
    }

    fn addend(&self, reloc: &Relocation, kind: RelocKind, field: &Field<'_>) -> Addend {
        if !reloc.has_implicit_addend() {
            return Addend::Relative(reloc.addend());
        }
        // REL (not produced for x86-64, but cheap to honour): the field holds it.
        let implicit = match kind.width() {
            4 if kind == RelocKind::X86_64Abs32 => field.implicit(4).map(|v| v as u32 as i64),
            width => field.implicit(width),
        };
        Addend::Relative(reloc.addend() + implicit.unwrap_or(0))
    }

    fn transfer(&self, kind: RelocKind, code: &[u8], offset: usize) -> Transfer {
        x86_64::transfer(kind, code, offset)
    }

    fn tail_jump(&self, code: &[u8], holes: &[Hole]) -> u32 {
        x86_64::tail_jump(code, holes)
    }
}
