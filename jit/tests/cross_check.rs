//! `cargo check -p jit --target T` for the macOS and Windows triples, from inside
//! `cargo test` so the one test command covers them (CI installs the targets). The
//! build script harvests the stencils for T, so this also proves every stencil of T
//! passes the harvester's rules.

use std::path::Path;
use std::process::Command;

/// What `cargo check` must do for a target.
enum Expect {
    Passes,
    /// The harvester has no backend yet for this target: the build fails with a message
    /// saying so (not a backtrace). Move the target to `Passes` when the backend lands.
    HarvesterUnsupported,
}

const TARGETS: &[(&str, Expect)] = &[
    ("x86_64-apple-darwin", Expect::Passes),
    ("x86_64-pc-windows-msvc", Expect::Passes),
    ("aarch64-apple-darwin", Expect::HarvesterUnsupported),
];

#[test]
fn jit_checks_for_the_apple_and_windows_targets() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cross-check");
    for (target, expect) in TARGETS {
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
        let stderr = String::from_utf8_lossy(&out.stderr);
        match expect {
            Expect::Passes => assert!(
                out.status.success(),
                "cargo check -p jit --target {target} failed (is the target installed? \
                 `rustup target add {target}`):\n{stderr}"
            ),
            Expect::HarvesterUnsupported => {
                assert!(
                    !out.status.success(),
                    "{target} now checks: move it to Passes"
                );
                assert!(
                    stderr.contains(&format!(
                        "target `{target}` is not supported by the harvester yet"
                    )),
                    "{target}: {stderr}"
                );
                assert!(!stderr.contains("panicked"), "{stderr}");
            }
        }
    }
}
