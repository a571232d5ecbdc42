//! aarch64 ELF (Linux): RELA relocations with explicit addends.
//!
//! What rustc emits for a stencil with `-Crelocation-model=static -Ccode-model=small`:
//! every hole's address as an `adrp` + `add` pair (`ADR_PREL_PG_HI21` +
//! `ADD_ABS_LO12_NC`), continuations as `b` (`JUMP26`), helper and callee calls as `bl`
//! (`CALL26`). Conditional continuations are a `b.cond` over a `b`, so no `CONDBR19`
//! reaches a hole today; it is still understood, as are the load/store low-12 forms,
//! `TSTBR14`, the `MOVW_UABS` group (what `-Ccode-model=large` emits) and GOT loads.

use object::elf;
use object::read::{Relocation, RelocationFlags};
use stencil_table::{Hole, RelocKind};

use super::aarch64::{
    insn_at, is_add_imm, is_adrp, is_b_or_bl, is_imm14_branch, is_imm19_branch, is_ldr_x_uimm,
    is_ldst_uimm, is_movz_or_movk,
};
use super::{aarch64, Addend, Backend, Field, Transfer};

pub(crate) struct ElfAarch64;

fn r_type(reloc: &Relocation) -> Option<elf::RelocationType> {
    match reloc.flags() {
        RelocationFlags::Elf { r_type } => Some(r_type),
        _ => None,
    }
}

fn reloc_name(r: elf::RelocationType) -> String {
    match elf::NAMES_R_AARCH64.name(r) {
        Some(name) => name.to_string(),
        None => format!("ELF aarch64 relocation type {}", r.0),
    }
}

impl Backend for ElfAarch64 {
    fn describe(&self) -> &'static str {
        "ELF aarch64"
    }

    fn check_file(&self, file: &object::File<'_>) -> Result<(), String> {
        let format = file.format();
        let arch = object::Object::architecture(file);
        if format == object::BinaryFormat::Elf
            && arch == object::Architecture::Aarch64
            && object::Object::is_64(file)
            && object::Object::is_little_endian(file)
        {
            Ok(())
        } else {
            Err(format!("{format:?} {arch:?}"))
        }
    }

    fn kinds(&self) -> &'static [RelocKind] {
        use RelocKind::*;
        &[
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
            Aarch64Branch26,
            Aarch64CondBranch19,
            Aarch64TestBranch14,
            Aarch64MovwG0,
            Aarch64MovwG0Nc,
            Aarch64MovwG1,
            Aarch64MovwG1Nc,
            Aarch64MovwG2,
            Aarch64MovwG2Nc,
            Aarch64MovwG3,
            Aarch64GotPage21,
            Aarch64GotLo12,
        ]
    }

    fn classify(&self, reloc: &Relocation, field: &Field<'_>) -> Result<RelocKind, String> {
        use RelocKind::*;
        let Some(r) = r_type(reloc) else {
            return Err(format!("{:?}", reloc.flags()));
        };
        let insn = insn_at(field.section, field.offset).unwrap_or(0);
        let (kind, shape_ok, shape) = match r {
            elf::R_AARCH64_ADR_PREL_PG_HI21 => (Aarch64AdrpPage21, is_adrp(insn), "adrp"),
            elf::R_AARCH64_ADD_ABS_LO12_NC => (Aarch64AddLo12, is_add_imm(insn), "add"),
            elf::R_AARCH64_LDST8_ABS_LO12_NC => (Aarch64Ldst8Lo12, is_ldst_uimm(insn), "ldr/str"),
            elf::R_AARCH64_LDST16_ABS_LO12_NC => (Aarch64Ldst16Lo12, is_ldst_uimm(insn), "ldr/str"),
            elf::R_AARCH64_LDST32_ABS_LO12_NC => (Aarch64Ldst32Lo12, is_ldst_uimm(insn), "ldr/str"),
            elf::R_AARCH64_LDST64_ABS_LO12_NC => (Aarch64Ldst64Lo12, is_ldst_uimm(insn), "ldr/str"),
            elf::R_AARCH64_LDST128_ABS_LO12_NC => {
                (Aarch64Ldst128Lo12, is_ldst_uimm(insn), "ldr/str")
            }
            elf::R_AARCH64_CALL26 | elf::R_AARCH64_JUMP26 => {
                (Aarch64Branch26, is_b_or_bl(insn), "b/bl")
            }
            elf::R_AARCH64_CONDBR19 => (
                Aarch64CondBranch19,
                is_imm19_branch(insn),
                "b.cond/cbz/cbnz",
            ),
            elf::R_AARCH64_TSTBR14 => (Aarch64TestBranch14, is_imm14_branch(insn), "tbz/tbnz"),
            elf::R_AARCH64_MOVW_UABS_G0 => (Aarch64MovwG0, is_movz_or_movk(insn), "movz/movk"),
            elf::R_AARCH64_MOVW_UABS_G0_NC => (Aarch64MovwG0Nc, is_movz_or_movk(insn), "movz/movk"),
            elf::R_AARCH64_MOVW_UABS_G1 => (Aarch64MovwG1, is_movz_or_movk(insn), "movz/movk"),
            elf::R_AARCH64_MOVW_UABS_G1_NC => (Aarch64MovwG1Nc, is_movz_or_movk(insn), "movz/movk"),
            elf::R_AARCH64_MOVW_UABS_G2 => (Aarch64MovwG2, is_movz_or_movk(insn), "movz/movk"),
            elf::R_AARCH64_MOVW_UABS_G2_NC => (Aarch64MovwG2Nc, is_movz_or_movk(insn), "movz/movk"),
            elf::R_AARCH64_MOVW_UABS_G3 => (Aarch64MovwG3, is_movz_or_movk(insn), "movz/movk"),
            elf::R_AARCH64_ADR_GOT_PAGE => (Aarch64GotPage21, is_adrp(insn), "adrp"),
            elf::R_AARCH64_LD64_GOT_LO12_NC => (Aarch64GotLo12, is_ldr_x_uimm(insn), "ldr x"),
            other => return Err(reloc_name(other)),
        };
        if !shape_ok {
            return Err(format!(
                "{} on an instruction that is not {shape} ({insn:#010x})",
                reloc_name(r)
            ));
        }
        Ok(kind)
    }

    fn addend(&self, reloc: &Relocation, _kind: RelocKind, _field: &Field<'_>) -> Addend {
        // aarch64 ELF objects use RELA only: the addend is explicit.
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
