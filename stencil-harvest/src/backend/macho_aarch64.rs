//! arm64 Mach-O (macOS on Apple silicon). Apple targets are position-independent
//! whatever the relocation model, so rustc loads every hole's value through the GOT:
//! `adrp x8, __JIT_A@GOTPAGE; ldr x8, [x8, __JIT_A@GOTPAGEOFF]`
//! (`ARM64_RELOC_GOT_LOAD_PAGE21` + `ARM64_RELOC_GOT_LOAD_PAGEOFF12`). Continuations
//! are `b` and helper and callee calls `bl`, both `ARM64_RELOC_BRANCH26`; read-only
//! constants would be `adrp` + `add`/`ldr`/`str` (`PAGE21` + `PAGEOFF12`, whose access
//! width comes from the instruction, not the relocation).
//!
//! Addends are never in the instruction on arm64: a nonzero one comes in an
//! `ARM64_RELOC_ADDEND` just before its relocation, which the `object` crate folds into
//! that relocation. Relocations in code always name a symbol (`r_extern`); the
//! assembler's `ltmp`/`l_` labels stand in for sections. What the JIT does with each
//! kind is shared with ELF (`aarch64.rs`): the pairing of an `adrp` with its low-12
//! instruction, and the GOT loads that the JIT relaxes to `movz`/`movk`.

use object::macho;
use object::read::Relocation;
use stencil_table::{Hole, RelocKind};

use super::aarch64::{self, insn_at, is_add_imm, is_adrp, is_b_or_bl, is_ldr_x_uimm, is_ldst_uimm};
use super::macho::MachOReloc;
use super::{Addend, Backend, Field, Transfer};

pub(crate) struct MachOAarch64;

/// The low-12 kind of a `PAGEOFF12` on a load or store: its immediate is scaled by the
/// access size, which Mach-O (unlike ELF) leaves to the instruction to say.
fn ldst_kind(insn: u32) -> RelocKind {
    let size = insn >> 30;
    let simd = insn & (1 << 26) != 0;
    let opc_high = insn & (1 << 23) != 0;
    match (size, simd && opc_high) {
        // `ldr q`/`str q`: size 0 with the SIMD&FP 128-bit opc.
        (0, true) => RelocKind::Aarch64Ldst128Lo12,
        (0, false) => RelocKind::Aarch64Ldst8Lo12,
        (1, _) => RelocKind::Aarch64Ldst16Lo12,
        (2, _) => RelocKind::Aarch64Ldst32Lo12,
        _ => RelocKind::Aarch64Ldst64Lo12,
    }
}

impl Backend for MachOAarch64 {
    fn describe(&self) -> &'static str {
        "Mach-O arm64"
    }

    fn check_file(&self, file: &object::File<'_>) -> Result<(), String> {
        super::macho::check_file(file, object::Architecture::Aarch64)
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
            Aarch64Branch26,
            Aarch64AdrpPage21,
            Aarch64AddLo12,
            Aarch64Ldst8Lo12,
            Aarch64Ldst16Lo12,
            Aarch64Ldst32Lo12,
            Aarch64Ldst64Lo12,
            Aarch64Ldst128Lo12,
            // `refine` turns pairs only completed by `add` into these.
            Aarch64AdrpAddPage21,
            Aarch64AdrpAddLo12,
            Aarch64GotPage21,
            Aarch64GotLo12,
        ]
    }

    fn classify(&self, reloc: &Relocation, field: &Field<'_>) -> Result<RelocKind, String> {
        use RelocKind::*;
        let Some(r) = MachOReloc::of(reloc) else {
            return Err(format!("{:?}", reloc.flags()));
        };
        let name = || super::macho::describe(macho::NAMES_ARM64_RELOC.name(r.r_type), &r);
        if r.subtractor {
            return Err(name());
        }
        if !r.external {
            // LLVM names a symbol in every relocation of arm64 code; a section-relative
            // one would carry its target in instruction bits ld64 does not read either.
            return Err(format!("{} against a section rather than a symbol", name()));
        }
        let insn = insn_at(field.section, field.offset).unwrap_or(0);
        let (kind, shape_ok, shape) = match (r.r_type, r.pcrel, r.width()) {
            (macho::ARM64_RELOC_BRANCH26, true, 4) => (Aarch64Branch26, is_b_or_bl(insn), "b/bl"),
            (macho::ARM64_RELOC_PAGE21, true, 4) => (Aarch64AdrpPage21, is_adrp(insn), "adrp"),
            (macho::ARM64_RELOC_PAGEOFF12, false, 4) if is_add_imm(insn) => {
                (Aarch64AddLo12, true, "add")
            }
            (macho::ARM64_RELOC_PAGEOFF12, false, 4) => {
                (ldst_kind(insn), is_ldst_uimm(insn), "add or ldr/str")
            }
            (macho::ARM64_RELOC_GOT_LOAD_PAGE21, true, 4) => {
                (Aarch64GotPage21, is_adrp(insn), "adrp")
            }
            (macho::ARM64_RELOC_GOT_LOAD_PAGEOFF12, false, 4) => {
                (Aarch64GotLo12, is_ldr_x_uimm(insn), "ldr x")
            }
            // A 64-bit pointer in code (a literal pool) or `POINTER_TO_GOT`, TLV and
            // the rest: nothing rustc emits in a stencil, and nothing the table holds.
            _ => return Err(name()),
        };
        if !shape_ok {
            return Err(format!(
                "{} on an instruction that is not {shape} ({insn:#010x})",
                name()
            ));
        }
        Ok(kind)
    }

    fn addend(&self, reloc: &Relocation, _kind: RelocKind, _field: &Field<'_>) -> Addend {
        // Only an `ARM64_RELOC_ADDEND` gives code relocations an addend (ld64 rejects
        // one embedded in a branch); `object` has folded it in, or it is 0.
        Addend::Relative(reloc.addend())
    }

    fn transfer(&self, kind: RelocKind, code: &[u8], offset: usize) -> Transfer {
        aarch64::transfer(kind, code, offset)
    }

    fn tail_jump(&self, code: &[u8], holes: &[Hole]) -> u32 {
        aarch64::tail_jump(code, holes)
    }

    fn refine(&self, code: &mut [u8], holes: &mut [Hole]) -> Result<(), Vec<(u32, String)>> {
        aarch64::refine(code, holes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_store_widths_come_from_the_instruction() {
        for (insn, kind) in [
            (0x3940_0108u32, RelocKind::Aarch64Ldst8Lo12), // ldrb w8, [x8]
            (0x7940_0108, RelocKind::Aarch64Ldst16Lo12),   // ldrh w8, [x8]
            (0xB940_0108, RelocKind::Aarch64Ldst32Lo12),   // ldr w8, [x8]
            (0xBD40_0100, RelocKind::Aarch64Ldst32Lo12),   // ldr s0, [x8]
            (0xF940_0108, RelocKind::Aarch64Ldst64Lo12),   // ldr x8, [x8]
            (0xFD40_0100, RelocKind::Aarch64Ldst64Lo12),   // ldr d0, [x8]
            (0x3DC0_0100, RelocKind::Aarch64Ldst128Lo12),  // ldr q0, [x8]
            (0x3D80_0100, RelocKind::Aarch64Ldst128Lo12),  // str q0, [x8]
            (0xF900_0108, RelocKind::Aarch64Ldst64Lo12),   // str x8, [x8]
        ] {
            assert!(is_ldst_uimm(insn), "{insn:#x}");
            assert_eq!(ldst_kind(insn), kind, "{insn:#x}");
        }
    }
}
