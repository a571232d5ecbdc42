//! x86-64 Mach-O (macOS on Intel). Apple targets are position-independent whatever the
//! relocation model: a hole's value (the address of `_JIT_A`) is loaded from the GOT
//! (`movq __JIT_A@GOTPCREL(%rip), %rax`, `X86_64_RELOC_GOT_LOAD`) or read from it by
//! another instruction (`addq __JIT_B@GOTPCREL(%rip), %rcx`, `X86_64_RELOC_GOT`);
//! branches are `X86_64_RELOC_BRANCH`, RIP-relative data `X86_64_RELOC_SIGNED*`.
//!
//! PC-relative fields hold `target - (P + 4 + k)` where `k` is the number of immediate
//! bytes after the field (the `_1`/`_2`/`_4` of `SIGNED_k`). Against a symbol the field
//! holds the addend: the value is `S + field - (P + 4)`, table addend `field - 4`.
//! Against a section the field holds the displacement to the target in the object's
//! address space: the target is `P + 4 + k + field`, table addend `-(4 + k)`.

use object::macho;
use object::read::Relocation;
use stencil_table::{Hole, RelocKind};

use super::macho::MachOReloc;
use super::{x86_64, Addend, Backend, Field, Transfer};

pub(crate) struct MachOX86_64;

/// Immediate bytes after a PC-relative field (`k` of `SIGNED_k`).
fn trailing_immediate(r_type: macho::RelocationType) -> i64 {
    match r_type {
        macho::X86_64_RELOC_SIGNED_1 => 1,
        macho::X86_64_RELOC_SIGNED_2 => 2,
        macho::X86_64_RELOC_SIGNED_4 => 4,
        _ => 0,
    }
}

impl Backend for MachOX86_64 {
    fn describe(&self) -> &'static str {
        "Mach-O x86-64"
    }

    fn check_file(&self, file: &object::File<'_>) -> Result<(), String> {
        super::macho::check_file(file, object::Architecture::X86_64)
    }

    fn symbol_name<'a>(&self, raw: &'a str) -> &'a str {
        super::macho::symbol_name(raw)
    }

    fn splits_code(&self, raw: &str) -> bool {
        super::macho::splits_code(raw)
    }

    fn kinds(&self) -> &'static [RelocKind] {
        use RelocKind::*;
        &[
            X86_64Abs64,
            X86_64Branch32,
            X86_64Pc32,
            X86_64LeaPc32,
            X86_64GotLoadPc32,
            X86_64GotPc32,
        ]
    }

    fn classify(&self, reloc: &Relocation, field: &Field<'_>) -> Result<RelocKind, String> {
        let Some(r) = MachOReloc::of(reloc) else {
            return Err(format!("{:?}", reloc.flags()));
        };
        let unsupported = || {
            Err(super::macho::describe(
                macho::NAMES_X86_64_RELOC.name(r.r_type),
                &r,
            ))
        };
        if r.subtractor {
            return unsupported();
        }
        let (bytes, at) = (field.section, field.offset);
        Ok(match (r.r_type, r.pcrel, r.width()) {
            (macho::X86_64_RELOC_UNSIGNED, false, 8) => RelocKind::X86_64Abs64,
            (macho::X86_64_RELOC_BRANCH, true, 4) => match x86_64::branch_at(bytes, at) {
                Some(_) => RelocKind::X86_64Branch32,
                None => RelocKind::X86_64Pc32,
            },
            (macho::X86_64_RELOC_SIGNED, true, 4) => x86_64::pc32_kind(bytes, at),
            // An immediate follows the field: not a `lea`, not a branch.
            (
                macho::X86_64_RELOC_SIGNED_1
                | macho::X86_64_RELOC_SIGNED_2
                | macho::X86_64_RELOC_SIGNED_4,
                true,
                4,
            ) => RelocKind::X86_64Pc32,
            // The assembler emits GOT_LOAD only for `movq`; the shape check keeps the
            // in-place relaxation honest should that ever change.
            (macho::X86_64_RELOC_GOT_LOAD, true, 4) if x86_64::is_mov_load_rip(bytes, at) => {
                RelocKind::X86_64GotLoadPc32
            }
            (macho::X86_64_RELOC_GOT_LOAD | macho::X86_64_RELOC_GOT, true, 4) => {
                RelocKind::X86_64GotPc32
            }
            _ => return unsupported(),
        })
    }

    fn addend(&self, reloc: &Relocation, kind: RelocKind, field: &Field<'_>) -> Addend {
        let Some(r) = MachOReloc::of(reloc) else {
            return Addend::Relative(reloc.addend());
        };
        let content = field.implicit(kind.width()).unwrap_or(0);
        match (r.pcrel, r.external) {
            (true, true) => Addend::Relative(content - 4),
            (true, false) => {
                let k = trailing_immediate(r.r_type);
                Addend::AtAddress {
                    target: (field.address as i64 + 4 + k + content) as u64,
                    addend: -(4 + k),
                }
            }
            (false, true) => Addend::Relative(content),
            (false, false) => Addend::AtAddress {
                target: content as u64,
                addend: 0,
            },
        }
    }

    fn transfer(&self, kind: RelocKind, code: &[u8], offset: usize) -> Transfer {
        x86_64::transfer(kind, code, offset)
    }

    fn tail_jump(&self, code: &[u8], holes: &[Hole]) -> u32 {
        x86_64::tail_jump(code, holes)
    }

    fn trailing_padding(&self, code: &[u8], holes: &[Hole]) -> usize {
        x86_64::trailing_padding(code, holes)
    }
}
