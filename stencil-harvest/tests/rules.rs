//! One failing case per harvester rule. Rules 1, 2 and 4 use the fixture crate
//! `tests/fixtures/rules` built once through `stencil_harvest::build`; rules 3 and 5
//! use tiny ELF objects written with `object::write`.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use object::write::{Object as WriteObject, Relocation, Symbol, SymbolSection};
use object::{
    elf, Architecture, BinaryFormat, Endianness, RelocationFlags, SymbolFlags, SymbolKind,
    SymbolScope,
};
use stencil_harvest::{build, harvest_with, BuildOptions, HarvestError, StencilSpec};
use stencil_table::{HoleValue, RelocKind};

const TARGET: &str = "x86_64-unknown-linux-gnu";
const HELPERS: &[&str] = &["fixture_helper"];

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rules")
}

/// The fixture's object file, built once per test run.
fn fixture_object() -> &'static [u8] {
    static OBJECT: OnceLock<Vec<u8>> = OnceLock::new();
    OBJECT.get_or_init(|| {
        let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fixture-rules");
        let opts =
            BuildOptions::new(TARGET, fixture_dir(), target_dir).package("harvest-fixture-rules");
        let lib = build(&opts).unwrap_or_else(|e| panic!("building the fixture failed: {e}"));
        let bytes = std::fs::read(&lib).unwrap();
        stencil_harvest::stencil_object(&bytes, "harvest-fixture-rules")
            .unwrap()
            .to_vec()
    })
}

fn harvest_fixture(names: &[&str]) -> Result<stencil_table::OwnedStencilSet, HarvestError> {
    let specs: Vec<_> = names.iter().map(|n| StencilSpec::new(*n)).collect();
    harvest_with(fixture_object(), TARGET, &specs, HELPERS)
}

fn expect_err(r: Result<stencil_table::OwnedStencilSet, HarvestError>) -> HarvestError {
    match r {
        Ok(set) => panic!("harvest succeeded, expected an error: {set:?}"),
        Err(e) => e,
    }
}

#[test]
fn good_fixture_stencil_harvests() {
    let set = harvest_fixture(&["__stencil_Good"]).unwrap();
    let s = &set.stencils[0];
    assert_eq!(s.name, "__stencil_Good");
    assert_eq!(s.tail_jump, 5);
    let values: Vec<_> = s.holes.iter().map(|h| h.value).collect();
    assert_eq!(
        values,
        [
            HoleValue::Operand(stencil_table::OperandField::A),
            HoleValue::Helper(0),
            HoleValue::Continue
        ]
    );
    assert_eq!(s.holes[1].kind, RelocKind::X86_64Branch32);
}

#[test]
fn rule1_continuation_reached_by_call() {
    let e = expect_err(harvest_fixture(&[
        "__stencil_Good",
        "__stencil_CallsContinue",
    ]));
    assert!(
        matches!(&e, HarvestError::ContinuationNotJump { stencil, how, .. }
        if stencil == "__stencil_CallsContinue" && how.contains("call")),
        "{e}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains("__stencil_CallsContinue")
            && msg.contains("_JIT_CONTINUE")
            && msg.contains("offset 0x"),
        "{msg}"
    );
}

#[test]
fn rule1_tail_call_callee_must_be_jump() {
    // `_JIT_CALLEE` reached by `call` is fine in a plain call stencil, not in a tail call.
    let mut obj = elf_object();
    let text = obj.add_section(
        Vec::new(),
        b".text.__stencil_TailCall".to_vec(),
        object::SectionKind::Text,
    );
    // call _JIT_CALLEE; ret
    let code = [0xE8, 0, 0, 0, 0, 0xC3];
    obj.append_section_data(text, &code, 16);
    define(&mut obj, "__stencil_TailCall", text, 0, code.len() as u64);
    let callee = undefined(&mut obj, "_JIT_CALLEE");
    reloc(&mut obj, text, 1, callee, -4, elf::R_X86_64_PLT32);
    let bytes = obj.write().unwrap();
    let plain = [StencilSpec::new("__stencil_TailCall")];
    assert!(harvest_with(&bytes, TARGET, &plain, &[]).is_ok());
    let tail = [StencilSpec::new("__stencil_TailCall").tail_call(true)];
    let e = expect_err(harvest_with(&bytes, TARGET, &tail, &[]));
    assert!(
        matches!(&e, HarvestError::ContinuationNotJump { symbol, offset: 1, .. } if symbol == "_JIT_CALLEE"),
        "{e}"
    );
}

#[test]
fn rule2_undeclared_function() {
    let e = expect_err(harvest_fixture(&["__stencil_CallsUndeclared"]));
    assert!(
        matches!(&e, HarvestError::ForbiddenSymbol { stencil, symbol, .. }
        if stencil == "__stencil_CallsUndeclared" && symbol == "undeclared_fn"),
        "{e}"
    );
    assert!(e.to_string().contains("HELPER_NAMES"), "{e}");
}

#[test]
fn rule2_panic_path() {
    let e = expect_err(harvest_fixture(&["__stencil_Indexes"]));
    let panic = e
        .errors()
        .into_iter()
        .find(|e| matches!(e, HarvestError::ForbiddenSymbol { symbol, .. } if symbol.contains("panic")))
        .unwrap_or_else(|| panic!("no panic symbol reported: {e}"));
    let msg = panic.to_string();
    assert!(
        msg.contains("__stencil_Indexes") && msg.contains("panic path survived"),
        "{msg}"
    );
}

#[test]
fn rule2_memcpy_advice() {
    let mut obj = elf_object();
    let text = obj.add_section(
        Vec::new(),
        b".text.__stencil_Copy".to_vec(),
        object::SectionKind::Text,
    );
    let code = [0xE8, 0, 0, 0, 0, 0xC3];
    obj.append_section_data(text, &code, 16);
    define(&mut obj, "__stencil_Copy", text, 0, code.len() as u64);
    let memcpy = undefined(&mut obj, "memcpy");
    reloc(&mut obj, text, 1, memcpy, -4, elf::R_X86_64_PLT32);
    let bytes = obj.write().unwrap();
    let e = expect_err(harvest_with(
        &bytes,
        TARGET,
        &[StencilSpec::new("__stencil_Copy")],
        &[],
    ));
    assert!(
        e.to_string().contains("`memcpy`") && e.to_string().contains("__stencil_Copy"),
        "{e}"
    );
}

/// `a % b` on f64 in a body: rustc calls libm's `fmod` through the GOT. The symbol and
/// the stencil are named (not the GOT relocation, which is only how it is reached).
#[test]
fn rule2_libm_call_is_named_before_its_relocation() {
    let mut obj = elf_object();
    let text = obj.add_section(
        Vec::new(),
        b".text.__stencil_RemF64".to_vec(),
        object::SectionKind::Text,
    );
    // call [rip + fmod@GOTPCREL]; ret
    let code = [0xFF, 0x15, 0, 0, 0, 0, 0xC3];
    obj.append_section_data(text, &code, 16);
    define(&mut obj, "__stencil_RemF64", text, 0, code.len() as u64);
    let fmod = undefined(&mut obj, "fmod");
    reloc(&mut obj, text, 2, fmod, -4, elf::R_X86_64_GOTPCREL);
    let bytes = obj.write().unwrap();
    let e = expect_err(harvest_with(
        &bytes,
        TARGET,
        &[StencilSpec::new("__stencil_RemF64")],
        &[],
    ));
    assert!(
        matches!(&e, HarvestError::ForbiddenSymbol { stencil, offset: 2, symbol, advice }
            if stencil == "__stencil_RemF64" && symbol == "fmod" && advice.contains("`%` on f64")),
        "{e}"
    );
    assert!(!e.to_string().contains("GOTPCREL"), "{e}");
}

#[test]
fn rule3_unsupported_relocations() {
    for (r_type, name) in [
        (elf::R_X86_64_GOTPCREL, "R_X86_64_GOTPCREL"),
        (elf::R_X86_64_16, "R_X86_64_16"),
    ] {
        let mut obj = elf_object();
        let text = obj.add_section(
            Vec::new(),
            b".text.__stencil_Nop".to_vec(),
            object::SectionKind::Text,
        );
        // mov rax, [rip + x]; jmp _JIT_CONTINUE
        let code = [0x48, 0x8B, 0x05, 0, 0, 0, 0, 0xE9, 0, 0, 0, 0];
        obj.append_section_data(text, &code, 16);
        define(&mut obj, "__stencil_Nop", text, 0, code.len() as u64);
        let a = undefined(&mut obj, "_JIT_A");
        let cont = undefined(&mut obj, "_JIT_CONTINUE");
        reloc(&mut obj, text, 3, a, -4, r_type);
        reloc(&mut obj, text, 8, cont, -4, elf::R_X86_64_PLT32);
        let bytes = obj.write().unwrap();
        let e = expect_err(harvest_with(
            &bytes,
            TARGET,
            &[StencilSpec::new("__stencil_Nop")],
            &[],
        ));
        assert!(
            matches!(&e, HarvestError::UnsupportedRelocation { stencil, offset: 3, relocation, symbol }
            if stencil == "__stencil_Nop" && relocation == name && symbol == "_JIT_A"),
            "{e}"
        );
        assert!(e.to_string().contains(name), "{e}");
    }
}

#[test]
fn rule4_missing_stencil() {
    let e = expect_err(harvest_fixture(&["__stencil_Good", "__stencil_NotThere"]));
    assert!(
        matches!(&e, HarvestError::MissingStencil { stencil } if stencil == "__stencil_NotThere"),
        "{e}"
    );
    assert!(e.to_string().contains("__stencil_NotThere"));
}

#[test]
fn rule5_relocation_outside_every_stencil() {
    let mut obj = elf_object();
    let text = obj.add_section(
        Vec::new(),
        b".text.__stencil_Nop".to_vec(),
        object::SectionKind::Text,
    );
    // jmp _JIT_CONTINUE; then code past the symbol's end with its own relocation.
    let code = [0xE9, 0, 0, 0, 0, 0xE8, 0, 0, 0, 0, 0xC3];
    obj.append_section_data(text, &code, 16);
    define(&mut obj, "__stencil_Nop", text, 0, 5);
    let cont = undefined(&mut obj, "_JIT_CONTINUE");
    reloc(&mut obj, text, 1, cont, -4, elf::R_X86_64_PLT32);
    reloc(&mut obj, text, 6, cont, -4, elf::R_X86_64_PLT32);
    let bytes = obj.write().unwrap();
    let e = expect_err(harvest_with(
        &bytes,
        TARGET,
        &[StencilSpec::new("__stencil_Nop")],
        &[],
    ));
    assert!(
        matches!(&e, HarvestError::UnattributedRelocation { stencil, offset: 6, .. } if stencil == "__stencil_Nop"),
        "{e}"
    );
    assert!(e.to_string().contains("__stencil_Nop"), "{e}");
}

#[test]
fn several_problems_are_all_reported() {
    let e = expect_err(harvest_fixture(&[
        "__stencil_Good",
        "__stencil_CallsContinue",
        "__stencil_CallsUndeclared",
        "__stencil_Gone",
    ]));
    let msg = e.to_string();
    for name in [
        "__stencil_CallsContinue",
        "__stencil_CallsUndeclared",
        "__stencil_Gone",
    ] {
        assert!(msg.contains(name), "{msg}");
    }
    assert!(!msg.contains("__stencil_Good"), "{msg}");
}

#[test]
fn data_from_rodata_is_copied() {
    let mut obj = elf_object();
    let rodata = obj.add_section(
        Vec::new(),
        b".rodata.cst8".to_vec(),
        object::SectionKind::ReadOnlyData,
    );
    obj.append_section_data(rodata, &[0xAA; 4], 4);
    let konst = obj.add_symbol(Symbol {
        name: b".LCPI0_0".to_vec(),
        value: 0,
        size: 0,
        kind: SymbolKind::Label,
        scope: SymbolScope::Compilation,
        weak: false,
        section: SymbolSection::Section(rodata),
        flags: SymbolFlags::None,
    });
    let rodata2 = obj.add_section(
        Vec::new(),
        b".rodata.cst16".to_vec(),
        object::SectionKind::ReadOnlyData,
    );
    obj.append_section_data(rodata2, &[0xBB; 16], 16);
    let section2 = obj.section_symbol(rodata2);
    let text = obj.add_section(
        Vec::new(),
        b".text.__stencil_K".to_vec(),
        object::SectionKind::Text,
    );
    // lea rax, [rip + .LCPI0_0]; movsd xmm0, [rip + .rodata.cst16 + 8]; jmp _JIT_CONTINUE
    let code = [
        0x48, 0x8D, 0x05, 0, 0, 0, 0, 0xF2, 0x0F, 0x10, 0x05, 0, 0, 0, 0, 0xE9, 0, 0, 0, 0,
    ];
    obj.append_section_data(text, &code, 16);
    define(&mut obj, "__stencil_K", text, 0, code.len() as u64);
    let cont = undefined(&mut obj, "_JIT_CONTINUE");
    reloc(&mut obj, text, 3, konst, -4, elf::R_X86_64_PC32);
    reloc(&mut obj, text, 11, section2, 8 - 4, elf::R_X86_64_PC32);
    reloc(&mut obj, text, 16, cont, -4, elf::R_X86_64_PLT32);
    let bytes = obj.write().unwrap();
    let set = harvest_with(&bytes, TARGET, &[StencilSpec::new("__stencil_K")], &[]).unwrap();
    let s = &set.stencils[0];
    assert_eq!(s.data_align, 16);
    assert_eq!(&s.data[..4], &[0xAA; 4]);
    assert_eq!(&s.data[16..], &[0xBB; 16]);
    assert_eq!(
        (s.holes[0].kind, s.holes[0].value, s.holes[0].addend),
        (RelocKind::X86_64LeaPc32, HoleValue::Data, -4)
    );
    assert_eq!(
        (s.holes[1].kind, s.holes[1].value, s.holes[1].addend),
        (RelocKind::X86_64Pc32, HoleValue::Data, 16 + 8 - 4)
    );
    assert_eq!(s.tail_jump, 5);
}

#[test]
fn build_failure_carries_rustc_diagnostics() {
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fixture-rules-broken");
    let mut opts =
        BuildOptions::new(TARGET, fixture_dir(), target_dir).package("harvest-fixture-rules");
    opts.extra_cfgs.push("harvest_fixture_broken".into());
    let e = build(&opts).unwrap_err();
    assert!(matches!(e, HarvestError::BuildFailed { .. }), "{e}");
    assert!(
        e.to_string().contains("harvest fixture broken on purpose"),
        "{e}"
    );
}

#[test]
fn unknown_and_uninstalled_targets() {
    let dir = fixture_dir();
    let e = stencil_harvest::check_target("x86_64-unknown-nonsense", &dir).unwrap_err();
    assert!(matches!(e, HarvestError::UnknownTarget { .. }), "{e}");
    assert!(e.to_string().contains("x86_64-unknown-nonsense"));

    // A target rustc knows but that is unlikely to be installed.
    for candidate in [
        "riscv64gc-unknown-linux-gnu",
        "powerpc64le-unknown-linux-gnu",
        "s390x-unknown-linux-gnu",
    ] {
        if let Err(e) = stencil_harvest::check_target(candidate, &dir) {
            assert!(matches!(e, HarvestError::TargetNotInstalled { .. }), "{e}");
            assert!(
                e.to_string()
                    .contains(&format!("rustup target add {candidate}")),
                "{e}"
            );
            return;
        }
    }
}

#[test]
fn unsupported_target_and_malformed_input() {
    let e = harvest_with(b"", "aarch64-pc-windows-msvc", &[], &[]).unwrap_err();
    assert!(matches!(e, HarvestError::UnsupportedTarget { .. }), "{e}");
    assert!(e.to_string().contains("not supported"), "{e}");

    assert!(harvest_with(b"not an object", TARGET, &[], &[]).is_err());
    // Truncated and corrupted objects are errors, never panics.
    let object = fixture_object();
    let specs = [StencilSpec::new("__stencil_Good")];
    for len in (0..object.len()).step_by(97) {
        let _ = harvest_with(&object[..len], TARGET, &specs, HELPERS);
    }
    let mut corrupt = object.to_vec();
    for i in (64..corrupt.len()).step_by(13) {
        corrupt[i] ^= 0x5A;
        let _ = harvest_with(&corrupt, TARGET, &specs, HELPERS);
    }
}

// --- tiny ELF objects --------------------------------------------------------------

fn elf_object() -> WriteObject<'static> {
    WriteObject::new(BinaryFormat::Elf, Architecture::X86_64, Endianness::Little)
}

fn define(
    obj: &mut WriteObject<'_>,
    name: &str,
    section: object::write::SectionId,
    value: u64,
    size: u64,
) {
    obj.add_symbol(Symbol {
        name: name.as_bytes().to_vec(),
        value,
        size,
        kind: SymbolKind::Text,
        scope: SymbolScope::Linkage,
        weak: false,
        section: SymbolSection::Section(section),
        flags: SymbolFlags::None,
    });
}

fn undefined(obj: &mut WriteObject<'_>, name: &str) -> object::write::SymbolId {
    obj.add_symbol(Symbol {
        name: name.as_bytes().to_vec(),
        value: 0,
        size: 0,
        kind: SymbolKind::Unknown,
        scope: SymbolScope::Linkage,
        weak: false,
        section: SymbolSection::Undefined,
        flags: SymbolFlags::None,
    })
}

fn reloc(
    obj: &mut WriteObject<'_>,
    section: object::write::SectionId,
    offset: u64,
    symbol: object::write::SymbolId,
    addend: i64,
    r_type: elf::RelocationType,
) {
    obj.add_relocation(
        section,
        Relocation {
            offset,
            symbol,
            addend,
            flags: RelocationFlags::Elf { r_type },
        },
    )
    .unwrap();
}
