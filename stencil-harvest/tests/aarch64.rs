//! aarch64 ELF: the real vm3 stencils (one nested build, checked against the listing in
//! `tests/expected`), and tiny objects for what the backend must refuse.

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use object::write::{Object as WriteObject, Relocation, Symbol, SymbolSection};
use object::{
    elf, Architecture, BinaryFormat, Endianness, RelocationFlags, SymbolFlags, SymbolKind,
    SymbolScope,
};
use stencil_harvest::{build, harvest_staticlib, harvest_with, BuildOptions, HarvestError};
use stencil_harvest::{summary, StencilSpec};
use stencil_table::{HoleValue, OwnedStencilSet, RelocKind};
use stencils::Opcode;

const TARGET: &str = "aarch64-unknown-linux-gnu";

fn workspace() -> PathBuf {
    stencil_harvest::workspace_root(Path::new(env!("CARGO_MANIFEST_DIR")))
}

fn set() -> &'static OwnedStencilSet {
    static SET: OnceLock<OwnedStencilSet> = OnceLock::new();
    SET.get_or_init(|| {
        let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("stencil-build");
        let lib = build(&BuildOptions::new(TARGET, workspace(), target_dir))
            .unwrap_or_else(|e| panic!("{e}"));
        harvest_staticlib(&lib, TARGET).unwrap_or_else(|e| panic!("{e}"))
    })
}

fn insn(code: &[u8], offset: u32) -> u32 {
    let o = offset as usize;
    u32::from_le_bytes(code[o..o + 4].try_into().unwrap())
}

#[test]
fn every_stencil_is_harvested_in_order() {
    let set = set();
    assert_eq!(
        set.stencils.len(),
        stencil_harvest::vm3_stencil_specs().len()
    );
    for op in Opcode::ALL {
        assert_eq!(set.stencils[op as usize].name, op.stencil_symbol());
    }
    let s = summary(set);
    assert!(s.contains("for aarch64-unknown-linux-gnu"), "{s}");
}

#[test]
fn continuations_are_b_and_tail_jumps_are_dropped() {
    let set = set();
    for s in &set.stencils {
        for h in s.holes.iter().filter(|h| h.value.is_continuation()) {
            assert_eq!(h.kind, RelocKind::Aarch64Branch26, "{}: {h:?}", s.name);
            // `b`, not `bl`.
            assert_eq!(insn(&s.code, h.offset) >> 26, 0b000101, "{}: {h:?}", s.name);
        }
    }
    let add = set.by_name(Opcode::AddI64.stencil_symbol()).unwrap();
    assert_eq!(add.tail_jump, 4);
    assert_eq!(insn(&add.code, add.code.len() as u32 - 4), 0x1400_0000);
}

#[test]
fn operands_come_in_relaxable_adrp_add_pairs() {
    // With `-Ccode-model=small` every hole address is `adrp` + `add`; the harvester
    // pairs them, so the JIT may load small operands with `movz`/`movk`.
    for s in &set().stencils {
        let pages = s
            .holes
            .iter()
            .filter(|h| h.kind == RelocKind::Aarch64AdrpAddPage21)
            .count();
        let adds = s
            .holes
            .iter()
            .filter(|h| h.kind == RelocKind::Aarch64AdrpAddLo12)
            .count();
        assert_eq!(pages, adds, "{}", s.name);
        for h in &s.holes {
            if let HoleValue::Operand(_) | HoleValue::FrameBytes | HoleValue::Pc | HoleValue::Func =
                h.value
            {
                assert!(
                    matches!(
                        h.kind,
                        RelocKind::Aarch64AdrpAddPage21 | RelocKind::Aarch64AdrpAddLo12
                    ),
                    "{}: {h:?} cannot be relaxed",
                    s.name
                );
            }
        }
    }
}

#[test]
fn table_matches_the_checked_in_listing() {
    common::check_listing(set());
}

// --- tiny aarch64 ELF objects ------------------------------------------------------

const ADRP_X8: u32 = 0x9000_0008;
const ADD_X8_X8: u32 = 0x9100_0108;
const LDR_X0_X1_X8: u32 = 0xF868_6820;
const B: u32 = 0x1400_0000;
const BL: u32 = 0x9400_0000;
const RET: u32 = 0xD65F_03C0;

/// One stencil `__stencil_T` made of `insns`, with relocations (offset, symbol, type).
fn object_with(insns: &[u32], relocs: &[(u64, &str, elf::RelocationType)]) -> Vec<u8> {
    let mut obj = WriteObject::new(BinaryFormat::Elf, Architecture::Aarch64, Endianness::Little);
    let text = obj.add_section(
        Vec::new(),
        b".text.__stencil_T".to_vec(),
        object::SectionKind::Text,
    );
    let code: Vec<u8> = insns.iter().flat_map(|i| i.to_le_bytes()).collect();
    obj.append_section_data(text, &code, 4);
    obj.add_symbol(Symbol {
        name: b"__stencil_T".to_vec(),
        value: 0,
        size: code.len() as u64,
        kind: SymbolKind::Text,
        scope: SymbolScope::Linkage,
        weak: false,
        section: SymbolSection::Section(text),
        flags: SymbolFlags::None,
    });
    for &(offset, name, r_type) in relocs {
        let symbol = match obj.symbol_id(name.as_bytes()) {
            Some(id) => id,
            None => obj.add_symbol(Symbol {
                name: name.as_bytes().to_vec(),
                value: 0,
                size: 0,
                kind: SymbolKind::Unknown,
                scope: SymbolScope::Linkage,
                weak: false,
                section: SymbolSection::Undefined,
                flags: SymbolFlags::None,
            }),
        };
        obj.add_relocation(
            text,
            Relocation {
                offset,
                symbol,
                addend: 0,
                flags: RelocationFlags::Elf { r_type },
            },
        )
        .unwrap();
    }
    obj.write().unwrap()
}

fn harvest(bytes: &[u8]) -> Result<OwnedStencilSet, HarvestError> {
    harvest_with(
        bytes,
        TARGET,
        &[StencilSpec::new("__stencil_T")],
        &["helper"],
    )
}

#[test]
fn a_well_formed_stencil_harvests() {
    let bytes = object_with(
        &[ADRP_X8, ADD_X8_X8, LDR_X0_X1_X8, BL, B],
        &[
            (0, "_JIT_A", elf::R_AARCH64_ADR_PREL_PG_HI21),
            (4, "_JIT_A", elf::R_AARCH64_ADD_ABS_LO12_NC),
            (12, "helper", elf::R_AARCH64_CALL26),
            (16, "_JIT_CONTINUE", elf::R_AARCH64_JUMP26),
        ],
    );
    let set = harvest(&bytes).unwrap();
    let s = &set.stencils[0];
    let kinds: Vec<_> = s.holes.iter().map(|h| (h.kind, h.value)).collect();
    assert_eq!(
        kinds,
        [
            (
                RelocKind::Aarch64AdrpAddPage21,
                HoleValue::Operand(stencil_table::OperandField::A)
            ),
            (
                RelocKind::Aarch64AdrpAddLo12,
                HoleValue::Operand(stencil_table::OperandField::A)
            ),
            (RelocKind::Aarch64Branch26, HoleValue::Helper(0)),
            (RelocKind::Aarch64Branch26, HoleValue::Continue),
        ]
    );
    assert_eq!(s.tail_jump, 4);
}

#[test]
fn a_continuation_reached_by_bl_is_refused() {
    let bytes = object_with(&[BL, RET], &[(0, "_JIT_CONTINUE", elf::R_AARCH64_CALL26)]);
    let e = harvest(&bytes).unwrap_err();
    assert!(
        matches!(&e, HarvestError::ContinuationNotJump { stencil, offset: 0, .. } if stencil == "__stencil_T"),
        "{e}"
    );
}

#[test]
fn unknown_relocations_and_wrong_instructions_are_refused() {
    // `ldr x8, =_JIT_A` as a literal load (LD_PREL_LO19) has no kind.
    let bytes = object_with(
        &[0x5800_0008, B],
        &[
            (0, "_JIT_A", elf::R_AARCH64_LD_PREL_LO19),
            (4, "_JIT_CONTINUE", elf::R_AARCH64_JUMP26),
        ],
    );
    let e = harvest(&bytes).unwrap_err();
    assert!(
        matches!(&e, HarvestError::UnsupportedRelocation { stencil, offset: 0, relocation, .. }
            if stencil == "__stencil_T" && relocation == "R_AARCH64_LD_PREL_LO19"),
        "{e}"
    );
    // A branch relocation on an `add`.
    let bytes = object_with(
        &[ADD_X8_X8, RET],
        &[(0, "_JIT_TARGET", elf::R_AARCH64_JUMP26)],
    );
    let e = harvest(&bytes).unwrap_err();
    assert!(e.to_string().contains("not b/bl"), "{e}");
    assert!(e.to_string().contains("__stencil_T"), "{e}");
}

#[test]
fn half_a_page_pair_is_refused() {
    // An `adrp` whose page nothing completes, and an `add` with no `adrp`.
    let bytes = object_with(
        &[ADRP_X8, 0x9100_0129, B],
        &[
            (0, "_JIT_A", elf::R_AARCH64_ADR_PREL_PG_HI21),
            (4, "_JIT_B", elf::R_AARCH64_ADD_ABS_LO12_NC),
            (8, "_JIT_CONTINUE", elf::R_AARCH64_JUMP26),
        ],
    );
    let e = harvest(&bytes).unwrap_err();
    let errors = e.errors();
    assert_eq!(errors.len(), 2, "{e}");
    assert!(errors.iter().all(|e| matches!(e,
        HarvestError::RelocationPair { stencil, .. } if stencil == "__stencil_T")));
}
