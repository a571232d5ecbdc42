//! Running the whole pipeline from a build script (`jit/build.rs`).

use std::path::{Path, PathBuf};

use crate::{build, harvest_staticlib, summary, to_rust_source, BuildOptions, HarvestError};

/// Overrides the nested build's target directory (default `<workspace>/target/stencil-build`).
pub const TARGET_DIR_ENV: &str = "STENCIL_BUILD_TARGET_DIR";

/// What a build script knows, from the environment cargo gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildScriptEnv {
    /// `TARGET`: the triple the calling crate is built for.
    pub target: String,
    /// `OUT_DIR`: where `stencils.rs` goes.
    pub out_dir: PathBuf,
    /// `CARGO_MANIFEST_DIR` of the calling crate (a member of the workspace).
    pub manifest_dir: PathBuf,
    /// `STENCIL_BUILD_TARGET_DIR`, if set.
    pub stencil_target_dir: Option<PathBuf>,
}

impl BuildScriptEnv {
    pub fn from_env() -> Result<Self, HarvestError> {
        let var = |name: &str| {
            std::env::var_os(name).ok_or_else(|| HarvestError::Command {
                command: "build script".into(),
                message: format!(
                    "environment variable {name} is not set (run this from a cargo build script)"
                ),
            })
        };
        Ok(BuildScriptEnv {
            target: var("TARGET")?.to_string_lossy().into_owned(),
            out_dir: var("OUT_DIR")?.into(),
            manifest_dir: var("CARGO_MANIFEST_DIR")?.into(),
            stencil_target_dir: std::env::var_os(TARGET_DIR_ENV).map(PathBuf::from),
        })
    }
}

/// The result of [`run_build_script`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildScriptOutput {
    /// The generated table (`$OUT_DIR/stencils.rs`).
    pub table: PathBuf,
    /// The static library it was harvested from.
    pub staticlib: PathBuf,
    /// The harvest summary (also written to `$OUT_DIR/stencils-summary.txt`).
    pub summary: String,
}

/// The workspace that contains `manifest_dir`: the nearest ancestor whose `Cargo.toml`
/// has a `[workspace]` table (falls back to the parent directory).
pub fn workspace_root(manifest_dir: &Path) -> PathBuf {
    for dir in manifest_dir.ancestors() {
        if let Ok(text) = std::fs::read_to_string(dir.join("Cargo.toml")) {
            if text.lines().any(|l| l.trim() == "[workspace]") {
                return dir.to_path_buf();
            }
        }
    }
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

/// The `cargo::` directives that make the calling crate's build script rerun when the
/// stencils may have changed.
pub fn rerun_directives(workspace: &Path) -> Vec<String> {
    let mut lines = vec!["cargo::rerun-if-changed=build.rs".to_string()];
    for p in [
        "stencils",
        "stencil-macros",
        "stencil-table",
        "rust-toolchain.toml",
    ] {
        lines.push(format!(
            "cargo::rerun-if-changed={}",
            workspace.join(p).display()
        ));
    }
    lines.push(format!("cargo::rerun-if-env-changed={TARGET_DIR_ENV}"));
    lines
}

/// Builds the stencils for `env.target` (in `<workspace>/target/stencil-build`, apart
/// from the outer build's locked target directory), harvests them and writes
/// `$OUT_DIR/stencils.rs`. Prints nothing; see [`build_script_main`].
pub fn run_build_script(env: &BuildScriptEnv) -> Result<BuildScriptOutput, HarvestError> {
    let workspace = workspace_root(&env.manifest_dir);
    let target_dir = env
        .stencil_target_dir
        .clone()
        .unwrap_or_else(|| workspace.join("target").join("stencil-build"));
    crate::check_target(&env.target, &workspace)?;
    crate::check_supported(&env.target)?;
    let opts = BuildOptions::new(env.target.clone(), &workspace, target_dir);
    let staticlib = build(&opts)?;
    let set = harvest_staticlib(&staticlib, &env.target)?;
    let table = env.out_dir.join("stencils.rs");
    write_if_changed(&table, &to_rust_source(&set))?;
    let summary = summary(&set);
    write_if_changed(&env.out_dir.join("stencils-summary.txt"), &summary)?;
    Ok(BuildScriptOutput {
        table,
        staticlib,
        summary,
    })
}

/// Writes `text` unless the file already holds it (keeps the mtime of an unchanged table).
pub fn write_if_changed(path: &Path, text: &str) -> Result<(), HarvestError> {
    if std::fs::read_to_string(path).is_ok_and(|old| old == text) {
        return Ok(());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| HarvestError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    std::fs::write(path, text).map_err(|source| HarvestError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// The whole build-script job: `fn main() { stencil_harvest::build_script_main() }`.
/// Writes `$OUT_DIR/stencils.rs` (include it with
/// `include!(concat!(env!("OUT_DIR"), "/stencils.rs"))`) and prints the rerun
/// directives. On error prints the error and exits with status 1 (no panic).
pub fn build_script_main() {
    let env = match BuildScriptEnv::from_env() {
        Ok(env) => env,
        Err(e) => fail(&e),
    };
    for line in rerun_directives(&workspace_root(&env.manifest_dir)) {
        println!("{line}");
    }
    if let Err(e) = run_build_script(&env) {
        fail(&e);
    }
}

fn fail(e: &HarvestError) -> ! {
    eprintln!("error: {e}");
    std::process::exit(1)
}
