//! One backend per (object format, CPU): what a relocation means and which instruction
//! it sits in. The format-independent walk over symbols, sections and relocations is in
//! `harvest.rs`. What an object format has in common across CPUs is in a module per
//! format (`macho.rs`), what a CPU has in common across formats in a module
//! per CPU (`x86_64.rs`); a backend combines the two. A new target adds a module here
//! and an arm in [`backend_for`].

use object::read::Relocation;
use stencil_table::{Hole, RelocKind};

use crate::HarvestError;

mod aarch64;
mod coff_x86_64;
mod elf_aarch64;
mod elf_x86_64;
mod macho;
mod macho_aarch64;
mod macho_x86_64;
mod x86_64;

/// How the instruction holding a continuation's hole transfers control.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Transfer {
    /// A (conditional or unconditional) jump: the stencil's frame is gone when it runs.
    Jump,
    /// A call: returns into the stencil.
    Call,
    /// Not a branch at all (the address is loaded, compared, stored, ...).
    NotABranch,
}

/// Where a relocation's field is.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Field<'a> {
    /// The bytes of the whole section holding the field, so instruction bytes before
    /// the field and an implicit addend in it can be read.
    pub section: &'a [u8],
    /// Offset of the field within `section`.
    pub offset: usize,
    /// The field's address in the object's address space (section address + offset).
    pub address: u64,
}

impl Field<'_> {
    /// The field's bytes as a little-endian signed integer of `width` bytes (4 or 8).
    pub fn implicit(&self, width: usize) -> Option<i64> {
        let bytes = self
            .section
            .get(self.offset..self.offset.checked_add(width)?)?;
        Some(match width {
            4 => i32::from_le_bytes(bytes.try_into().ok()?) as i64,
            8 => i64::from_le_bytes(bytes.try_into().ok()?),
            _ => return None,
        })
    }
}

/// A relocation's addend in the table's convention (`S + A - P` for PC-relative
/// kinds, `S + A` for absolute ones).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Addend {
    /// Relative to the target symbol (or to the start of the target section).
    Relative(i64),
    /// The field names its target by address in the object's address space, `addend`
    /// applying on top: Mach-O's relocations against a section rather than a symbol.
    AtAddress { target: u64, addend: i64 },
}

/// What the harvester needs to know about one object format on one CPU.
pub(crate) trait Backend {
    /// "ELF x86-64", for messages.
    fn describe(&self) -> &'static str;

    /// Checks that the parsed file is of this backend's format and architecture.
    fn check_file(&self, file: &object::File<'_>) -> Result<(), String>;

    /// The symbol name without the format's prefix (Mach-O's leading `_`).
    fn symbol_name<'a>(&self, raw: &'a str) -> &'a str {
        raw
    }

    /// Whether a defined symbol (raw name) starts a new function where the format keeps
    /// several functions in one section without sizes (Mach-O's `__text`). Assembler
    /// temporaries inside a function do not.
    fn splits_code(&self, _raw: &str) -> bool {
        true
    }

    /// Every relocation kind this backend can give a hole ([`Backend::classify`] and
    /// [`Backend::refine`] together). The harvester refuses a hole of any other kind, so
    /// the list stays true; `jit/tests/linker_fixtures.rs` links an object using each of
    /// them.
    fn kinds(&self) -> &'static [RelocKind];

    /// The table's relocation kind of `reloc`. `Err` carries the relocation's name for
    /// the unsupported-relocation error.
    fn classify(&self, reloc: &Relocation, field: &Field<'_>) -> Result<RelocKind, String>;

    /// The addend: explicit in ELF RELA, implicit in the instruction bytes in Mach-O and
    /// COFF.
    fn addend(&self, reloc: &Relocation, kind: RelocKind, field: &Field<'_>) -> Addend;

    /// The kind of control transfer of the instruction whose field is at `offset`.
    fn transfer(&self, kind: RelocKind, code: &[u8], offset: usize) -> Transfer;

    /// Length of the final jump to `_JIT_CONTINUE` that the JIT may drop, or 0.
    fn tail_jump(&self, code: &[u8], holes: &[Hole]) -> u32;

    /// Bytes at the end of `code` that are alignment padding before the next function,
    /// not part of the stencil. Asked only of stencils whose extent came from the next
    /// symbol (formats without symbol sizes); 0 when unsure.
    fn trailing_padding(&self, _code: &[u8], _holes: &[Hole]) -> usize {
        0
    }

    /// Checks one stencil's code and holes as a whole and rewrites them where the
    /// target needs it: refining kinds where one instruction's relocation only makes
    /// sense with another's (aarch64 page/offset pairs), or reordering the code so that
    /// the continuation jump comes last. Problems come back as (code offset,
    /// explanation).
    fn refine(&self, _code: &mut [u8], _holes: &mut [Hole]) -> Result<(), Vec<(u32, String)>> {
        Ok(())
    }
}

/// The object format a triple compiles to.
fn format_of(target: &str) -> &'static str {
    if target.contains("-apple-") {
        "Mach-O"
    } else if target.contains("-windows") || target.contains("-uefi") {
        "COFF"
    } else if target.ends_with(".json") {
        "unknown"
    } else {
        "ELF"
    }
}

/// The backend for a target triple.
pub(crate) fn backend_for(target: &str) -> Result<Box<dyn Backend>, HarvestError> {
    let arch = target.split('-').next().unwrap_or("");
    let format = format_of(target);
    match (format, arch) {
        ("ELF", "x86_64") => Ok(Box::new(elf_x86_64::ElfX86_64)),
        ("ELF", "aarch64") => Ok(Box::new(elf_aarch64::ElfAarch64)),
        ("Mach-O", "x86_64") => Ok(Box::new(macho_x86_64::MachOX86_64)),
        ("Mach-O", "aarch64") => Ok(Box::new(macho_aarch64::MachOAarch64)),
        ("COFF", "x86_64") => Ok(Box::new(coff_x86_64::CoffX86_64)),
        _ => Err(HarvestError::UnsupportedTarget {
            target: target.to_string(),
            reason: format!(
                "no backend for {arch} {format} objects (implemented: x86-64 ELF, aarch64 ELF, \
                 x86-64 and arm64 Mach-O, x86-64 COFF)"
            ),
        }),
    }
}
