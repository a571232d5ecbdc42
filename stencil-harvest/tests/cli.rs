//! The binary's error handling (no build needed).

use std::process::Command;

#[test]
fn errors_are_one_line_and_exit_1() {
    for (args, expect) in [
        (
            &["--target", "x86_64-unknown-nonsense"][..],
            "error: unknown target `x86_64-unknown-nonsense`",
        ),
        (
            &["--from", "Cargo.toml"][..],
            "error: malformed object file",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_stencil-harvest"))
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.starts_with(expect), "{stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}
