//! A real linker agrees with the patcher on every relocation kind the harvester
//! accepts, not only on those rustc happens to emit for our stencils (`linkers.rs`).
//!
//! `tests/fixtures/relocs/<target>.s` are hand-written stencils that use every
//! relocation form a backend accepts (`_JIT_*` holes and declared helpers only, each
//! ending in a jump to `_JIT_CONTINUE`); the `.o` beside each is what `llvm-mc` made of
//! it (README.md there says how to remake them). For each target the object is
//! harvested like the stencils crate's, linked by the real linker of its format with the
//! chosen hole values, and every stencil is compared byte for byte with what
//! `jit::patch` writes (`common/linking.rs`, shared with `linkers.rs`; relaxation off
//! on both sides). Then:
//! - the object holds every relocation type listed for the target (the types the
//!   backend's `classify` accepts), so none is left untried;
//! - the kinds compared are exactly `stencil_harvest::reloc_kinds(target)`, every kind
//!   the backend can give a hole (the harvester refuses any other).
//!
//! COFF's `IMAGE_REL_AMD64_REL32_1`..`_5` are not emitted by LLVM (it folds the
//! immediate's length into a plain `REL32`'s addend), so their object is written here
//! with the `object` crate, as MSVC would write them.

#[path = "common/linking.rs"]
mod linking;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use linking::{chosen_values, compare, link, Format, AARCH64_CODE_BASE, X86_64_CODE_BASE};
use object::read::{Object, ObjectSection, ObjectSymbol, RelocationFlags};
use stencil_harvest::{harvest_with, reloc_kinds, OwnedStencilSet, StencilSpec};

/// A target's fixture: how it is linked, where its code goes, and the relocation types
/// its object must contain (every type the backend's `classify` accepts that the
/// assembler can write).
struct Fixture {
    target: &'static str,
    format: Format,
    code_base: u64,
    types: &'static [&'static str],
}

const FIXTURES: &[Fixture] = &[
    Fixture {
        target: "x86_64-unknown-linux-gnu",
        format: Format::Elf("elf_x86_64"),
        code_base: X86_64_CODE_BASE,
        // backend/elf_x86_64.rs
        types: &[
            "R_X86_64_64",
            "R_X86_64_32",
            "R_X86_64_32S",
            "R_X86_64_PC32",
            "R_X86_64_PLT32",
        ],
    },
    Fixture {
        target: "aarch64-unknown-linux-gnu",
        format: Format::Elf("aarch64linux"),
        code_base: AARCH64_CODE_BASE,
        // backend/elf_aarch64.rs
        types: &[
            "R_AARCH64_ADR_PREL_PG_HI21",
            "R_AARCH64_ADD_ABS_LO12_NC",
            "R_AARCH64_LDST8_ABS_LO12_NC",
            "R_AARCH64_LDST16_ABS_LO12_NC",
            "R_AARCH64_LDST32_ABS_LO12_NC",
            "R_AARCH64_LDST64_ABS_LO12_NC",
            "R_AARCH64_LDST128_ABS_LO12_NC",
            "R_AARCH64_CALL26",
            "R_AARCH64_JUMP26",
            "R_AARCH64_CONDBR19",
            "R_AARCH64_TSTBR14",
            "R_AARCH64_MOVW_UABS_G0",
            "R_AARCH64_MOVW_UABS_G0_NC",
            "R_AARCH64_MOVW_UABS_G1",
            "R_AARCH64_MOVW_UABS_G1_NC",
            "R_AARCH64_MOVW_UABS_G2",
            "R_AARCH64_MOVW_UABS_G2_NC",
            "R_AARCH64_MOVW_UABS_G3",
            "R_AARCH64_ADR_GOT_PAGE",
            "R_AARCH64_LD64_GOT_LO12_NC",
        ],
    },
    Fixture {
        target: "x86_64-apple-darwin",
        format: Format::MachO("x86_64"),
        code_base: X86_64_CODE_BASE,
        // backend/macho_x86_64.rs
        types: &[
            "X86_64_RELOC_UNSIGNED",
            "X86_64_RELOC_BRANCH",
            "X86_64_RELOC_SIGNED",
            "X86_64_RELOC_SIGNED_1",
            "X86_64_RELOC_SIGNED_2",
            "X86_64_RELOC_SIGNED_4",
            "X86_64_RELOC_GOT_LOAD",
            "X86_64_RELOC_GOT",
        ],
    },
    Fixture {
        target: "aarch64-apple-darwin",
        format: Format::MachO("arm64"),
        code_base: AARCH64_CODE_BASE,
        // backend/macho_aarch64.rs (`ARM64_RELOC_ADDEND` is folded into the relocation
        // after it by the `object` crate; the fixture's nonzero addends use it)
        types: &[
            "ARM64_RELOC_BRANCH26",
            "ARM64_RELOC_PAGE21",
            "ARM64_RELOC_PAGEOFF12",
            "ARM64_RELOC_GOT_LOAD_PAGE21",
            "ARM64_RELOC_GOT_LOAD_PAGEOFF12",
        ],
    },
    Fixture {
        target: "x86_64-pc-windows-msvc",
        format: Format::Coff("x64"),
        code_base: X86_64_CODE_BASE,
        // backend/coff_x86_64.rs; REL32_1.._5 are in `coff_rel32_k_object`
        types: &[
            "IMAGE_REL_AMD64_ADDR64",
            "IMAGE_REL_AMD64_ADDR32",
            "IMAGE_REL_AMD64_REL32",
        ],
    },
];

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/relocs")
}

/// The chosen values, with `_JIT_TARGET` moved near the code: `tbz`/`tbnz` reach only
/// ±32 KiB (and `b.cond`/`cbz` ±1 MiB), less than the distance of the other values.
fn fixture_values(code_base: u64) -> Vec<(String, u64)> {
    let mut values = chosen_values(code_base);
    for (name, value) in &mut values {
        if name == "_JIT_TARGET" {
            *value = code_base + 0x4000;
        }
    }
    values
}

/// The stencils an object defines: its symbols named `__stencil_*` (after the format's
/// prefix), in address order.
fn stencil_specs(object: &object::File<'_>) -> Vec<StencilSpec> {
    let prefix = if object.format() == object::BinaryFormat::MachO {
        "_"
    } else {
        ""
    };
    let mut found: Vec<(u64, u64, String)> = object
        .symbols()
        .filter(|s| s.is_definition())
        .filter_map(|s| {
            let name = s.name().ok()?.strip_prefix(prefix)?;
            let section = s.section_index()?.0 as u64;
            name.starts_with("__stencil_")
                .then(|| (section, s.address(), name.to_string()))
        })
        .collect();
    found.sort();
    found
        .into_iter()
        .map(|(_, _, name)| StencilSpec::new(name))
        .collect()
}

/// The names of the relocation types in an object's sections.
fn relocation_types(object: &object::File<'_>) -> BTreeSet<String> {
    let arch = object.architecture();
    let mut names = BTreeSet::new();
    for section in object.sections() {
        for (_, reloc) in section.relocations() {
            let name = match (reloc.flags(), arch) {
                (RelocationFlags::Elf { r_type }, object::Architecture::X86_64) => {
                    object::elf::NAMES_R_X86_64.name(r_type)
                }
                (RelocationFlags::Elf { r_type }, object::Architecture::Aarch64) => {
                    object::elf::NAMES_R_AARCH64.name(r_type)
                }
                (RelocationFlags::MachO { r_type, .. }, object::Architecture::X86_64) => {
                    object::macho::NAMES_X86_64_RELOC.name(r_type)
                }
                (RelocationFlags::MachO { r_type, .. }, object::Architecture::Aarch64) => {
                    object::macho::NAMES_ARM64_RELOC.name(r_type)
                }
                (RelocationFlags::Coff { typ }, _) => object::pe::NAMES_IMAGE_REL_AMD64.name(typ),
                _ => None,
            };
            names.insert(name.map_or_else(|| format!("{:?}", reloc.flags()), str::to_string));
        }
    }
    names
}

/// A COFF object with one stencil using `IMAGE_REL_AMD64_REL32_1`..`_5`, the types
/// MSVC writes for a RIP-relative field followed by 1..5 immediate bytes (the linker
/// computes `S + field - (P + 4 + k)`). `cmp` with an 8-, 16- and 32-bit immediate has
/// 1, 2 and 4 such bytes; no instruction has 3 or 5, so for those a `mov` whose field is
/// followed by `k` bytes of `nop` stands in: the arithmetic is what is compared. It ends
/// in `jmp _JIT_CONTINUE` (`REL32`).
fn coff_rel32_k_object() -> Vec<u8> {
    use object::pe;
    use object::write::{Object as WriteObject, Relocation, Symbol, SymbolSection};
    let mut obj = WriteObject::new(
        object::BinaryFormat::Coff,
        object::Architecture::X86_64,
        object::Endianness::Little,
    );
    let text = obj.add_section(Vec::new(), b".text".to_vec(), object::SectionKind::Text);
    let mut code = Vec::new();
    // (the field's offset, the type, the symbol, the addend relative to the field)
    let mut relocs = Vec::new();
    let cases: [(&[u8], &[u8], pe::RelocationType, &str); 5] = [
        (
            &[0x80, 0x3D],
            &[0x12],
            pe::IMAGE_REL_AMD64_REL32_1,
            "_JIT_A",
        ),
        (
            &[0x66, 0x81, 0x3D],
            &[0x34, 0x12],
            pe::IMAGE_REL_AMD64_REL32_2,
            "_JIT_B",
        ),
        (
            &[0x48, 0x8B, 0x05],
            &[0x90; 3],
            pe::IMAGE_REL_AMD64_REL32_3,
            "_JIT_C",
        ),
        (
            &[0x81, 0x3D],
            &[0x78, 0x56, 0x34, 0x12],
            pe::IMAGE_REL_AMD64_REL32_4,
            "_JIT_PC",
        ),
        (
            &[0x48, 0x8B, 0x05],
            &[0x90; 5],
            pe::IMAGE_REL_AMD64_REL32_5,
            "_JIT_FUNC",
        ),
    ];
    for (i, (before, after, typ, symbol)) in cases.into_iter().enumerate() {
        code.extend_from_slice(before);
        let k = after.len() as i64;
        // A nonzero addend, so the implicit addend's arithmetic is tried too.
        relocs.push((code.len() as u64, typ, symbol, 8 * i as i64 - 4 - k));
        code.extend_from_slice(&[0; 4]);
        code.extend_from_slice(after);
    }
    code.push(0xE9);
    relocs.push((
        code.len() as u64,
        pe::IMAGE_REL_AMD64_REL32,
        "_JIT_CONTINUE",
        -4,
    ));
    code.extend_from_slice(&[0; 4]);
    obj.append_section_data(text, &code, 16);
    obj.add_symbol(Symbol {
        name: b"__stencil_rel32_k".to_vec(),
        value: 0,
        size: 0,
        kind: object::SymbolKind::Text,
        scope: object::SymbolScope::Linkage,
        weak: false,
        section: SymbolSection::Section(text),
        flags: object::SymbolFlags::None,
    });
    for (offset, typ, symbol, addend) in relocs {
        let symbol = obj.symbol_id(symbol.as_bytes()).unwrap_or_else(|| {
            obj.add_symbol(Symbol {
                name: symbol.as_bytes().to_vec(),
                value: 0,
                size: 0,
                kind: object::SymbolKind::Unknown,
                scope: object::SymbolScope::Linkage,
                weak: false,
                section: SymbolSection::Undefined,
                flags: object::SymbolFlags::None,
            })
        });
        obj.add_relocation(
            text,
            Relocation {
                offset,
                symbol,
                addend,
                flags: object::RelocationFlags::Coff { typ },
            },
        )
        .unwrap();
    }
    obj.write().unwrap()
}

/// Harvests `bytes` (an object of `target`) and links it; checks every stencil against
/// the linked image; returns the relocation types in the object and the kinds compared
/// (with the form compared, where a kind has several).
fn harvest_link_compare(
    fixture: &Fixture,
    name: &str,
    bytes: &[u8],
) -> (BTreeSet<String>, BTreeSet<String>) {
    let target = fixture.target;
    let object = object::File::parse(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    let specs = stencil_specs(&object);
    assert!(!specs.is_empty(), "{name}: no __stencil_* symbols");
    let set: OwnedStencilSet = harvest_with(bytes, target, &specs, stencils::helpers::HELPER_NAMES)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(set.stencils.len(), specs.len(), "{name}");

    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("linker-fixtures")
        .join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("fixture.o");
    std::fs::write(&path, bytes).unwrap();
    let values = fixture_values(fixture.code_base);
    let image = link(
        fixture.format,
        fixture.code_base,
        &dir,
        &path,
        &values,
        &specs[0].symbol,
    );
    let compared = compare(fixture.format, &set, bytes, &image, &values);
    eprintln!(
        "{name}: {} stencils agree; compared {compared:?}",
        set.stencils.len()
    );
    (relocation_types(&object), compared)
}

#[test]
fn real_linkers_agree_with_the_patcher_on_every_relocation_kind() {
    for fixture in FIXTURES {
        let target = fixture.target;
        let path = fixtures_dir().join(format!("{target}.o"));
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let (mut types, mut compared) = harvest_link_compare(fixture, target, &bytes);
        let mut expected_types: BTreeSet<String> =
            fixture.types.iter().map(|t| t.to_string()).collect();
        if matches!(fixture.format, Format::Coff(_)) {
            let name = format!("{target}-rel32-k");
            let (more_types, more) = harvest_link_compare(fixture, &name, &coff_rel32_k_object());
            types.extend(more_types);
            compared.extend(more);
            expected_types.extend((1..=5).map(|k| format!("IMAGE_REL_AMD64_REL32_{k}")));
        }

        // Every relocation type the backend accepts was in an object that was linked.
        let missing: Vec<_> = expected_types.difference(&types).collect();
        assert!(missing.is_empty(), "{target}: no fixture uses {missing:?}");

        // The kinds compared are every kind the backend can produce.
        let accepted: BTreeSet<String> = reloc_kinds(target)
            .unwrap()
            .iter()
            .map(|k| format!("{k:?}"))
            .collect();
        let compared_kinds: BTreeSet<String> = compared
            .iter()
            .map(|k| k.split(' ').next().unwrap().to_string())
            .collect();
        assert_eq!(
            compared_kinds, accepted,
            "{target}: the kinds compared (left) are not those the backend accepts (right)"
        );
        // Both outcomes of a GOT load that ld64.lld chooses between.
        if target == "x86_64-apple-darwin" {
            for form in [" (GOT slot)", " (relaxed to lea by both)"] {
                assert!(
                    compared.contains(&format!("X86_64GotLoadPc32{form}")),
                    "{target}: no GOT load compared in the form{form}"
                );
            }
        }
    }
}
