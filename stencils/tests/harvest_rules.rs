//! The harvester's rules hold for every stencil of this crate, checked where an opcode
//! author works: `cargo test -p stencils`.
//!
//! `#[stencil]` refuses what it can see in a body (panics, formatting, statics, ...);
//! what only the compiled code shows (a call to libm's `fmod` for an f64 `%`, a panic
//! path LLVM kept, a relocation the JIT cannot patch) is found by the harvester, which
//! otherwise runs only in `jit`'s build script. Building this crate for the JIT is a
//! nested `cargo rustc` of its own, too slow for a build script of `stencils` itself
//! (every dependant would pay for it), so the check is this test: `cargo test
//! --workspace` runs it, and so does `cargo test -p stencils` without `jit`.

use std::path::Path;

use stencil_harvest::{build, harvest_staticlib, vm3_stencil_specs, BuildOptions};

/// The host's triple, from rustc (the stencils are built for the machine running the
/// test, as `jit` would build them).
fn host_triple() -> String {
    let out = std::process::Command::new(std::env::var("RUSTC").unwrap_or("rustc".into()))
        .arg("-vV")
        .output()
        .expect("running rustc -vV");
    let text = String::from_utf8(out.stdout).expect("rustc -vV prints UTF-8");
    text.lines()
        .find_map(|l| l.strip_prefix("host: "))
        .expect("rustc -vV names the host")
        .to_string()
}

#[test]
fn every_stencil_passes_the_harvester_rules() {
    let target = host_triple();
    let workspace = stencil_harvest::workspace_root(Path::new(env!("CARGO_MANIFEST_DIR")));
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("harvest-rules");
    let lib = build(&BuildOptions::new(&target, workspace, target_dir))
        .unwrap_or_else(|e| panic!("building the stencils for {target} failed:\n{e}"));
    let set = harvest_staticlib(&lib, &target)
        .unwrap_or_else(|e| panic!("the stencils break the harvester's rules:\n{e}"));
    assert_eq!(set.stencils.len(), vm3_stencil_specs().len());
}
