//! The stencil tables of other targets with the same CPU and stencil convention run
//! here, patched by the same patcher as the host's own table:
//! - on x86-64, macOS's (Mach-O) and Windows' (COFF) x86-64 tables (`sysv64` on every
//!   x86-64 OS);
//! - on aarch64 Linux (usually under `qemu-aarch64`, from tests/tests/aarch64_qemu.rs),
//!   macOS's arm64 table: same ISA, and `extern "C"` is the same AAPCS64 for our
//!   signature (pointers and a `u64`; Apple's deviations concern variadics and small
//!   stack arguments).
//!
//! Their relocation forms differ from Linux's (Mach-O reaches every operand through the
//! GOT), so this executes what the cross-linker test (jit/tests/linkers.rs) can only
//! compare as bytes: the relaxed GOT loads (`lea`/`mov imm32` on x86-64, `movz`/`movk`
//! on arm64) and, with `force_got`, the GOT slots.
#![cfg(any(
    target_arch = "x86_64",
    all(target_arch = "aarch64", target_os = "linux")
))]

#[path = "common/kernels.rs"]
mod common_kernels;

use std::collections::HashSet;
use std::path::Path;

use common_kernels::{kernels, outcome};
use jit::{CompileOptions as Options, Engine, EngineOptions, Store};
use stencil_harvest::{build, harvest_staticlib, BuildOptions, OwnedStencilSet};
use stencil_table::RelocKind;

fn harvest_for(target: &str) -> OwnedStencilSet {
    let workspace = stencil_harvest::workspace_root(Path::new(env!("CARGO_MANIFEST_DIR")));
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("stencil-build");
    let lib =
        build(&BuildOptions::new(target, &workspace, target_dir)).unwrap_or_else(|e| panic!("{e}"));
    harvest_staticlib(&lib, target).unwrap_or_else(|e| panic!("{e}"))
}

/// The relocation kinds of a table's holes.
fn hole_kinds(set: &OwnedStencilSet) -> HashSet<RelocKind> {
    set.stencils
        .iter()
        .flat_map(|s| &s.holes)
        .map(|h| h.kind)
        .collect()
}

/// Runs every kernel's `; run:` lines with `set` under each of `options`; returns how
/// many runs were checked.
fn run_kernels(set: &OwnedStencilSet, options: &[Options]) -> usize {
    let mut checked = 0;
    for kernel in kernels() {
        let name = &kernel.name;
        for (args, expected) in &kernel.runs {
            for &opts in options {
                let mut engine_options = EngineOptions::default();
                engine_options.compile = opts;
                let engine = Engine::new(engine_options);
                let module = set
                    // SAFETY: harvested from this workspace's stencils for a target
                    // with this CPU and stencil convention (the module's doc).
                    .with_set(|s| unsafe {
                        jit::testing::module_with_stencils(&engine, &kernel.program, s)
                    })
                    .unwrap_or_else(|e| panic!("{}: {name}: {e}", set.target));
                let got = outcome(
                    module
                        .func("main")
                        .and_then(|f| f.call(&mut Store::new(&engine), args)),
                );
                assert_eq!(&got, expected, "{} {name} {args:?} {opts:?}", set.target);
                checked += 1;
            }
        }
    }
    checked
}

#[cfg(target_arch = "x86_64")]
const OPTIONS: [Options; 2] = [
    Options {
        force_trampolines: false,
        force_got: false,
        baseline_cpu: false,
        perf_map: false,
        gdb_jit: false,
    },
    Options {
        force_trampolines: true,
        force_got: true,
        baseline_cpu: true,
        perf_map: false,
        gdb_jit: false,
    },
];

#[cfg(target_arch = "x86_64")]
#[test]
fn macho_x86_64_table_runs_the_kernels_with_relaxed_and_slotted_got_loads() {
    let set = harvest_for("x86_64-apple-darwin");
    let kinds = hole_kinds(&set);
    assert!(kinds.contains(&RelocKind::X86_64GotLoadPc32));
    assert!(kinds.contains(&RelocKind::X86_64GotPc32));
    let checked = run_kernels(&set, &OPTIONS);
    assert!(checked >= 40, "only {checked} runs");
}

#[cfg(target_arch = "x86_64")]
#[test]
fn coff_x86_64_table_runs_the_kernels() {
    let set = harvest_for("x86_64-pc-windows-msvc");
    let kinds = hole_kinds(&set);
    assert!(kinds.contains(&RelocKind::X86_64Abs31));
    // `ADDR32` fields of sign-extending instructions (`lea r64, [r + disp32]` in
    // AddI64K), which take the negative immediates of jit/tests/programs/immediates.vm3.
    assert!(kinds.contains(&RelocKind::X86_64Abs32S));
    let checked = run_kernels(&set, &OPTIONS);
    assert!(checked >= 40, "only {checked} runs");
}

/// The arm64 Mach-O table: every operand arrives through a GOT load
/// (`GOT_LOAD_PAGE21`/`GOT_LOAD_PAGEOFF12`), relaxed to `movz`/`movk` by default and
/// read from real GOT slots with `force_got`; helpers are `bl`, through trampolines
/// with `force_trampolines`. The table is harvested by a nested cargo build for
/// aarch64-apple-darwin (under QEMU, cargo is the host's own binary: QEMU hands the
/// `execve` of a foreign binary to the host kernel).
#[cfg(target_arch = "aarch64")]
#[test]
fn macho_arm64_table_runs_the_kernels_with_relaxed_and_slotted_got_loads() {
    let set = harvest_for("aarch64-apple-darwin");
    let kinds = hole_kinds(&set);
    for kind in [
        RelocKind::Aarch64GotPage21,
        RelocKind::Aarch64GotLo12,
        RelocKind::Aarch64Branch26,
    ] {
        assert!(kinds.contains(&kind), "no {kind:?} in the table");
    }
    let options = [
        Options::default(),
        Options {
            force_got: true,
            ..Options::default()
        },
        Options {
            force_trampolines: true,
            force_got: true,
            baseline_cpu: true,
            ..Options::default()
        },
    ];
    let checked = run_kernels(&set, &options);
    // 33 `; run:` lines under each of the three option sets today.
    assert!(checked >= 90, "only {checked} runs");
}
