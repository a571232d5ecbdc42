//! Mach-O, whatever the CPU: what the x86-64 and arm64 Mach-O backends share.
//!
//! - Every function of the object is in one `__text` section, with no symbol sizes;
//!   `harvest.rs` splits the section at the symbols (a stencil runs from its symbol to
//!   the next one), and [`splits_code`] says which symbols count.
//! - C symbols carry a leading `_` (`__JIT_A` is the hole `_JIT_A`).
//! - Addends are implicit, in the field's bytes. A relocation names either a symbol
//!   (`r_extern`) or a section; for a section, the field holds the target's address in
//!   the object's address space. arm64 carries larger addends in a preceding
//!   `ARM64_RELOC_ADDEND`, which the `object` crate folds into the relocation that
//!   follows it (then the addend is explicit).
//! - `*_RELOC_SUBTRACTOR` pairs (the difference of two symbols) are likewise folded
//!   by `object`; they appear in data (relative jump tables), never in the code of a
//!   stencil, and are refused.

use object::macho::RelocationType;
use object::read::{Object, Relocation, RelocationFlags, RelocationTarget};

/// The raw fields of a Mach-O relocation.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MachOReloc {
    pub r_type: RelocationType,
    pub pcrel: bool,
    /// log2 of the field's width in bytes.
    pub length: u8,
    /// Against a symbol (`r_extern`), not a section.
    pub external: bool,
    /// Part of a `SUBTRACTOR` pair.
    pub subtractor: bool,
}

impl MachOReloc {
    pub fn of(reloc: &Relocation) -> Option<MachOReloc> {
        match reloc.flags() {
            RelocationFlags::MachO {
                r_type,
                r_pcrel,
                r_length,
            } => Some(MachOReloc {
                r_type,
                pcrel: r_pcrel,
                length: r_length,
                external: matches!(reloc.target(), RelocationTarget::Symbol(_)),
                subtractor: reloc.subtractor().is_some(),
            }),
            _ => None,
        }
    }

    /// Bytes of the field.
    pub fn width(&self) -> usize {
        1 << self.length
    }
}

/// The symbol name without Mach-O's leading `_`.
pub(crate) fn symbol_name(raw: &str) -> &str {
    raw.strip_prefix('_').unwrap_or(raw)
}

/// Symbols starting with `l` or `L` are assembler-local labels (`ltmp0`, `l_.str`):
/// the linker does not split sections at them, and neither do we.
pub(crate) fn splits_code(raw: &str) -> bool {
    !raw.starts_with('l') && !raw.starts_with('L')
}

/// Checks a parsed file is a 64-bit Mach-O object for `arch`.
pub(crate) fn check_file(
    file: &object::File<'_>,
    arch: object::Architecture,
) -> Result<(), String> {
    let (format, found) = (file.format(), file.architecture());
    if format == object::BinaryFormat::MachO && found == arch && file.is_64() {
        Ok(())
    } else {
        Err(format!("{format:?} {found:?}"))
    }
}

/// The error text of a relocation this backend does not handle.
/// `name` is the type's name for the CPU (`object::macho::NAMES_*_RELOC`).
pub(crate) fn describe(name: Option<&str>, reloc: &MachOReloc) -> String {
    let name = name.map_or_else(
        || format!("Mach-O relocation type {}", reloc.r_type.0),
        str::to_string,
    );
    let mut text = format!("{name} ({} bytes", reloc.width());
    if reloc.pcrel {
        text.push_str(", PC-relative");
    }
    text.push(')');
    if reloc.subtractor {
        text.push_str(
            " paired with a SUBTRACTOR (the difference of two symbols, as in a relative jump table)",
        );
    }
    text
}
