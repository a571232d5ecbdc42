//! `cargo check -p jit --target T` for the macOS and Windows triples, from inside
//! `cargo test` so the one test command covers them (CI installs the targets). The
//! build script harvests the stencils for T, so this also proves every stencil of T
//! passes the harvester's rules.

use std::path::Path;
use std::process::Command;

/// Every target here must check; each has a harvesting backend.
const TARGETS: &[&str] = &[
    "x86_64-apple-darwin",
    "x86_64-pc-windows-msvc",
    "aarch64-apple-darwin",
];

#[test]
fn jit_checks_for_the_apple_and_windows_targets() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cross-check");
    for target in TARGETS {
        let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .current_dir(workspace)
            .args(["check", "--quiet", "-p", "jit", "--target", target])
            .arg("--target-dir")
            .arg(&target_dir)
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("CARGO_BUILD_TARGET")
            .output()
            .expect("run cargo");
        assert!(
            out.status.success(),
            "cargo check -p jit --target {target} failed (is the target installed? \
             `rustup target add {target}`):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
