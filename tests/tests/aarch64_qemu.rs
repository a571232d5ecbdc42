//! The JIT on aarch64 Linux, from an x86-64 host: `cargo test --release --target
//! aarch64-unknown-linux-gnu` of `jit` and of `vm3-tests`' integration tests, run under
//! user-mode QEMU through the runner in `.cargo/config.toml`. That covers the aarch64 stencils, their patching
//! (the `adrp`/`add` relaxation, trampolines), the instruction cache flush and every
//! kernel in both tiers, plus the differential tests of the two tiers. `jit`'s
//! tests/other_formats.rs also runs every kernel with the aarch64-apple-darwin (Mach-O)
//! table there, harvesting it with a nested cargo build that QEMU hands to the host.
//!
//! It needs the cross linker and QEMU (`./test.sh` installs them). Without them the test
//! fails and says what to install: a JIT target that silently goes untested is how a
//! target breaks. On an aarch64 host the workspace's own tests are the aarch64 run, so
//! the test exists only on other hosts.
#![cfg(not(target_arch = "aarch64"))]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const TARGET: &str = "aarch64-unknown-linux-gnu";
const LINKER: &str = "aarch64-linux-gnu-gcc";
const QEMU: &str = "qemu-aarch64";
/// The target's C library, where `.cargo/config.toml` tells QEMU to find the loader.
const SYSROOT: &str = "/usr/aarch64-linux-gnu";
const INSTALL: &str = "apt-get install qemu-user gcc-aarch64-linux-gnu libc6-dev-arm64-cross \
                       && rustup target add aarch64-unknown-linux-gnu";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests package is in the workspace")
        .to_path_buf()
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Whether `program --version` runs.
fn runs(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// What is missing to build and run for aarch64, if anything.
fn missing_tools() -> Vec<String> {
    let mut missing = Vec::new();
    for tool in [LINKER, QEMU] {
        if !runs(tool) {
            missing.push(format!("`{tool}` is not on PATH"));
        }
    }
    if !Path::new(SYSROOT).join("lib").is_dir() {
        missing.push(format!("{SYSROOT}/lib does not exist"));
    }
    let sysroot = Command::new(std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into()))
        .args(["--print", "sysroot"])
        .current_dir(workspace())
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    let installed = sysroot.is_some_and(|s| {
        Path::new(&s)
            .join("lib/rustlib")
            .join(TARGET)
            .join("lib")
            .is_dir()
    });
    if !installed {
        missing.push(format!(
            "the Rust target {TARGET} is not installed for this toolchain"
        ));
    }
    missing
}

#[test]
fn jit_tests_pass_on_aarch64_under_qemu() {
    let missing = missing_tools();
    assert!(
        missing.is_empty(),
        "cannot run the aarch64 tests: {}.\nInstall them with: {INSTALL}",
        missing.join("; ")
    );
    let target_dir = workspace().join("target").join("aarch64-qemu");
    let started = Instant::now();
    let mut ran = String::new();
    let outcomes = target_dir.join("aarch64-outcomes.txt");
    let _ = std::fs::remove_file(&outcomes);
    // `jit`'s tests that run code (its unit tests, the kernels, the other formats'
    // tables, FMA, tier-up), not those that only check bytes: the linker comparisons and
    // `cargo check` of other targets are the same on every host, run in the host's
    // workspace run, and under emulation they take many minutes for thousands of
    // register variants. Of `vm3-tests` the integration tests (differential, tiers,
    // fuzz): its library's own test checks the program generator, likewise the same
    // on every host.
    let jit_tests = [
        "-p",
        "jit",
        "--lib",
        "--test",
        "kernels",
        "--test",
        "other_formats",
        "--test",
        "fma",
        "--test",
        "tier_up",
    ];
    for args in [&jit_tests[..], &["-p", "vm3-tests", "--test", "*"][..]] {
        let command = format!("cargo test --release --target {TARGET} {}", args.join(" "));
        let out = cargo()
            .current_dir(workspace())
            .args(["test", "--release", "--target", TARGET])
            .args(args)
            .env("CARGO_TARGET_DIR", &target_dir)
            // The stencils for aarch64 are built apart from the host's, in this run's
            // own directory.
            .env("STENCIL_BUILD_TARGET_DIR", target_dir.join("stencil-build"))
            .env_remove("CARGO_BUILD_TARGET")
            .env_remove("RUSTFLAGS")
            // The aarch64 outcomes of the cross-target seeds (differential.rs).
            .env("VM3_OUTCOMES_OUT", &outcomes)
            .output()
            .expect("cargo runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "`{command}` failed ({}):\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
            out.status
        );
        ran.push_str(&stderr);
        ran.push_str(&stdout);
    }
    // Not vacuous: the kernels (both tiers), the differential test, the tier tests and
    // tier-up ran under QEMU (cargo names each test binary it runs on stderr).
    for binary in [
        "tests/kernels.rs",
        "tests/other_formats.rs",
        "tests/differential.rs",
        "tests/tiers.rs",
        "tests/tier_up.rs",
    ] {
        assert!(
            ran.contains(&format!("Running {binary}")),
            "{binary} did not run:\n{ran}"
        );
    }
    // The macOS arm64 table ran the kernels here (libtest names each test on stdout).
    let apple = "test macho_arm64_table_runs_the_kernels_with_relaxed_and_slotted_got_loads ... ok";
    assert!(
        ran.contains(apple),
        "the arm64 Mach-O table did not run:\n{ran}"
    );
    // The same generated programs give the same printed outcomes on both targets
    // (issue 10, item 9): an opcode whose Rust body differs by target shows here.
    let aarch64 = std::fs::read_to_string(&outcomes).expect("the aarch64 outcome listing");
    let host = vm3_tests::compare::outcome_lines(vm3_tests::compare::CROSS_TARGET_SEEDS);
    let aarch64: Vec<&str> = aarch64.lines().collect();
    assert_eq!(
        aarch64.len(),
        host.len(),
        "outcome listings differ in length"
    );
    for (a, h) in aarch64.iter().zip(&host) {
        assert_eq!(a, h, "aarch64 (first) and this host (second) disagree");
    }
    eprintln!(
        "aarch64 build and test under {QEMU}: {:.0?}; {} generated programs print alike on both targets",
        started.elapsed(),
        host.len()
    );
}
