//! A real linker agrees with the patcher. For every target with a backend, the object
//! the stencils were harvested from is linked by the real linker of its format (Debian's
//! `lld`: `ld.lld`, `ld64.lld`, `lld-link`) with every hole symbol and helper defined
//! at a chosen value; then for every stencil the linked bytes must equal what
//! `jit::patch` writes into a copy of the stencil placed at the same address with the
//! same values. Every relocation kind the harvester produced for the target must be
//! among those compared.
//!
//! The linking and comparing, and the values chosen, are in `common/linking.rs`; the
//! relocation forms rustc does not emit are linked by `linker_fixtures.rs`.

#[path = "common/linking.rs"]
mod linking;

use std::collections::BTreeSet;
use std::path::Path;

use linking::{chosen_values, compare, link, Format, AARCH64_CODE_BASE, X86_64_CODE_BASE};
use stencil_harvest::{build, harvest_staticlib, stencil_object, BuildOptions};

/// The targets compared, with where the code is placed (ELF `.text`, the COFF image;
/// `ld64.lld` 14 ignores `-image_base`, so an x86-64 Mach-O dylib, based at 0, is linked
/// instead and its code lies just above 0; arm64 Mach-O is linked as an executable, whose
/// 4 GiB `__PAGEZERO` puts the code just above 2^32 = `AARCH64_CODE_BASE`).
const TARGETS: &[(&str, Format, u64)] = &[
    (
        "x86_64-unknown-linux-gnu",
        Format::Elf("elf_x86_64"),
        X86_64_CODE_BASE,
    ),
    (
        "aarch64-unknown-linux-gnu",
        Format::Elf("aarch64linux"),
        AARCH64_CODE_BASE,
    ),
    (
        "x86_64-apple-darwin",
        Format::MachO("x86_64"),
        X86_64_CODE_BASE,
    ),
    (
        "x86_64-pc-windows-msvc",
        Format::Coff("x64"),
        X86_64_CODE_BASE,
    ),
    (
        "aarch64-apple-darwin",
        Format::MachO("arm64"),
        AARCH64_CODE_BASE,
    ),
];

#[test]
fn real_linkers_agree_with_the_patcher_on_every_stencil() {
    let workspace = stencil_harvest::workspace_root(Path::new(env!("CARGO_MANIFEST_DIR")));
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    for &(target, format, code_base) in TARGETS {
        let values = chosen_values(code_base);
        let lib = build(&BuildOptions::new(
            target,
            &workspace,
            tmp.join("stencil-build"),
        ))
        .unwrap_or_else(|e| panic!("{e}"));
        let set = harvest_staticlib(&lib, target).unwrap_or_else(|e| panic!("{e}"));
        let archive = std::fs::read(&lib).unwrap();
        let object_bytes = stencil_object(&archive, "stencils").unwrap();
        let dir = tmp.join("linkers").join(target);
        std::fs::create_dir_all(&dir).unwrap();
        let object = dir.join("stencils.o");
        std::fs::write(&object, object_bytes).unwrap();

        let image = link(format, code_base, &dir, &object, &values, "__stencil_Nop");
        let compared = compare(format, &set, object_bytes, &image, &values);

        // Every kind the harvester produced for this target was compared.
        let produced: BTreeSet<String> = set
            .stencils
            .iter()
            .flat_map(|s| &s.holes)
            .map(|h| format!("{:?}", h.kind))
            .collect();
        let compared_kinds: BTreeSet<String> = compared
            .iter()
            .map(|k| k.split(' ').next().unwrap().to_string())
            .collect();
        assert_eq!(produced, compared_kinds, "{target}");
        if produced.contains("X86_64GotLoadPc32") {
            for form in [" (GOT slot)", " (relaxed to lea by both)"] {
                assert!(
                    compared.contains(&format!("X86_64GotLoadPc32{form}")),
                    "{target}: no GOT load compared in the form{form}"
                );
            }
        }
        eprintln!(
            "{target}: {} stencils agree; compared {compared:?}",
            set.stencils.len()
        );
    }
}
