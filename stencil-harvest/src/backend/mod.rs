//! One backend per (object format, CPU): what a relocation means and which instruction
//! it sits in. The format-independent walk over symbols, sections and relocations is in
//! `harvest.rs`; a new target (aarch64 ELF, Mach-O, COFF) adds a module here and an arm
//! in [`backend_for`].

use object::read::Relocation;
use stencil_table::{Hole, RelocKind};

use crate::HarvestError;

mod elf_aarch64;
mod elf_x86_64;

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

    /// The table's relocation kind of `reloc`, whose field is at `offset` in `section`
    /// (the whole code section, so instruction bytes before the field can be read).
    /// `Err` carries the relocation's name for the unsupported-relocation error.
    fn classify(
        &self,
        reloc: &Relocation,
        section: &[u8],
        offset: usize,
    ) -> Result<RelocKind, String>;

    /// The addend: explicit in ELF RELA, implicit in the instruction bytes in
    /// Mach-O and COFF.
    fn addend(&self, reloc: &Relocation, kind: RelocKind, section: &[u8], offset: usize) -> i64;

    /// The kind of control transfer of the instruction whose field is at `offset`.
    fn transfer(&self, kind: RelocKind, code: &[u8], offset: usize) -> Transfer;

    /// Length of the final jump to `_JIT_CONTINUE` that the JIT may drop, or 0.
    fn tail_jump(&self, code: &[u8], holes: &[Hole]) -> u32;

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
        _ => Err(HarvestError::UnsupportedTarget {
            target: target.to_string(),
            reason: format!(
                "no backend for {arch} {format} objects (implemented: x86-64 ELF, aarch64 ELF)"
            ),
        }),
    }
}
