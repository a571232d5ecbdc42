//! x86-64 COFF (Windows). Each function is in a `.text` section of its own (COMDAT);
//! symbols carry no prefix; addends are implicit in the field. Stencils use
//! `extern "sysv64"`, so their continuations are sibling calls as on Linux (the Windows
//! convention's shadow space and callee-saved xmm6-15 would turn them into calls).
//!
//! `IMAGE_REL_AMD64_REL32_k` fields hold `target - (P + 4 + k)` relative to the symbol,
//! `k` being the immediate bytes after the field: table addend `field - 4 - k`.
//! `ADDR32` does not say whether the instruction zero- or sign-extends the field: where
//! the instruction shows it sign-extends (a 64-bit `lea` displacement, a 64-bit
//! operation's immediate) it is `X86_64Abs32S`, as ELF's `R_X86_64_32S` would say;
//! elsewhere its values must fit both ways (`X86_64Abs31`). `ADDR32NB` (image-relative) occurs
//! only in unwind tables (`.pdata`), which the JIT does not copy; in a stencil it is
//! refused.

use object::pe;
use object::read::{Object, Relocation, RelocationFlags};
use stencil_table::{Hole, RelocKind};

use super::{x86_64, Addend, Backend, Field, Transfer};

pub(crate) struct CoffX86_64;

fn typ(reloc: &Relocation) -> Option<pe::RelocationType> {
    match reloc.flags() {
        RelocationFlags::Coff { typ } => Some(typ),
        _ => None,
    }
}

/// Immediate bytes after the field of `REL32_k`, or `None` for other types.
fn rel32_trailing(typ: pe::RelocationType) -> Option<i64> {
    let k = typ.0.checked_sub(pe::IMAGE_REL_AMD64_REL32.0)?;
    (k <= 5).then_some(k as i64)
}

impl Backend for CoffX86_64 {
    fn describe(&self) -> &'static str {
        "COFF x86-64"
    }

    fn check_file(&self, file: &object::File<'_>) -> Result<(), String> {
        let (format, arch) = (file.format(), file.architecture());
        if format == object::BinaryFormat::Coff && arch == object::Architecture::X86_64 {
            Ok(())
        } else {
            Err(format!("{format:?} {arch:?}"))
        }
    }

    fn kinds(&self) -> &'static [RelocKind] {
        use RelocKind::*;
        &[
            X86_64Abs64,
            X86_64Abs31,
            X86_64Abs32S,
            X86_64Branch32,
            X86_64Pc32,
            X86_64LeaPc32,
        ]
    }

    fn classify(&self, reloc: &Relocation, field: &Field<'_>) -> Result<RelocKind, String> {
        let Some(t) = typ(reloc) else {
            return Err(format!("{:?}", reloc.flags()));
        };
        let (bytes, at) = (field.section, field.offset);
        Ok(match t {
            pe::IMAGE_REL_AMD64_ADDR64 => RelocKind::X86_64Abs64,
            pe::IMAGE_REL_AMD64_ADDR32 if x86_64::sign_extends_field(bytes, at) => {
                RelocKind::X86_64Abs32S
            }
            pe::IMAGE_REL_AMD64_ADDR32 => RelocKind::X86_64Abs31,
            pe::IMAGE_REL_AMD64_REL32 => x86_64::pc32_kind(bytes, at),
            // An immediate follows the field: not a `lea`, not a branch.
            t if rel32_trailing(t).is_some() => RelocKind::X86_64Pc32,
            other => {
                return Err(match pe::NAMES_IMAGE_REL_AMD64.name(other) {
                    Some(name) => name.to_string(),
                    None => format!("COFF x86-64 relocation type {}", other.0),
                })
            }
        })
    }

    fn addend(&self, reloc: &Relocation, kind: RelocKind, field: &Field<'_>) -> Addend {
        let content = field.implicit(kind.width()).unwrap_or(0);
        match typ(reloc).and_then(rel32_trailing) {
            Some(k) => Addend::Relative(content - 4 - k),
            None => Addend::Relative(content),
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
