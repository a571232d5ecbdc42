//! The nested `cargo rustc` that compiles the stencils crate into a static library.

use std::ffi::OsString;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use cargo_metadata::Message;

use crate::HarvestError;

/// What to build and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildOptions {
    /// The target triple (or a path to a custom target `.json`).
    pub target: String,
    /// The directory cargo runs in: the workspace (or package) that contains `package`.
    pub workspace_dir: PathBuf,
    /// The nested build's own target directory. It must not be the target directory of
    /// a cargo that is waiting on this build (a build script's), or cargo deadlocks on
    /// its lock.
    pub target_dir: PathBuf,
    /// The package to build as a staticlib. Default `stencils`.
    pub package: String,
    /// Extra `--cfg` values passed to rustc besides `stencil_jit`.
    pub extra_cfgs: Vec<String>,
}

impl BuildOptions {
    pub fn new(
        target: impl Into<String>,
        workspace_dir: impl Into<PathBuf>,
        target_dir: impl Into<PathBuf>,
    ) -> Self {
        BuildOptions {
            target: target.into(),
            workspace_dir: workspace_dir.into(),
            target_dir: target_dir.into(),
            package: "stencils".to_string(),
            extra_cfgs: Vec::new(),
        }
    }

    pub fn package(mut self, package: impl Into<String>) -> Self {
        self.package = package.into();
        self
    }
}

/// The codegen flags every stencil build uses (`CARGO_ENCODED_RUSTFLAGS` entries).
pub fn stencil_rustflags(extra_cfgs: &[String]) -> Vec<String> {
    let mut flags: Vec<String> = [
        "-Crelocation-model=static",
        "-Ccode-model=small",
        "-Cjump-tables=false",
        // x86-64: a scalar conversion such as `cvtsi2sd xmm0, [mem]` writes only the low
        // half of its register and so waits for the register's last writer, in a stencil
        // often a loop-carried `addsd` LLVM cannot see. LLVM breaks the dependency with
        // `xorps` only when the last write is nearer than this many instructions, and in
        // a stencil there is none: make every distance near. (The option belongs to the
        // x86 backend, which every rustc carries; other targets ignore it.)
        "-Cllvm-args=-partial-reg-update-clearance=1073741824",
        // Nothing below the stack pointer: x86-64's call stencil pushes the caller's
        // frame and calls from an `asm!` marked `nostack` (`stencils::jit`), which would
        // overwrite a red-zone object.
        "-Cno-redzone=yes",
        "--cfg",
        "stencil_jit",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for cfg in extra_cfgs {
        flags.push("--cfg".into());
        flags.push(cfg.clone());
    }
    flags
}

/// Release-profile settings of the stencil build (environment overrides).
const PROFILE_ENV: &[(&str, &str)] = &[
    ("CARGO_PROFILE_RELEASE_PANIC", "abort"),
    ("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "1"),
    ("CARGO_PROFILE_RELEASE_DEBUG", "false"),
    ("CARGO_PROFILE_RELEASE_LTO", "false"),
    ("CARGO_PROFILE_RELEASE_OPT_LEVEL", "3"),
    ("CARGO_PROFILE_RELEASE_DEBUG_ASSERTIONS", "false"),
    ("CARGO_PROFILE_RELEASE_OVERFLOW_CHECKS", "false"),
    ("CARGO_PROFILE_RELEASE_INCREMENTAL", "false"),
    ("CARGO_PROFILE_RELEASE_STRIP", "false"),
];

/// Inherited variables that would change or break the nested build: flags meant for
/// the outer build, wrappers, target selection, and what cargo sets for the build
/// script that runs us (which would leak into crates of the nested build).
const REMOVED_ENV: &[&str] = &[
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET_DIR",
    "CARGO_BUILD_TARGET",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "CARGO_BUILD_RUSTC_WRAPPER",
    "CARGO_BUILD_RUSTC_WORKSPACE_WRAPPER",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_INCREMENTAL",
    "CARGO_MANIFEST_DIR",
    "CARGO_MANIFEST_PATH",
    "CARGO_MANIFEST_LINKS",
    "CARGO_CRATE_NAME",
    "CARGO_TARGET_TMPDIR",
    "OUT_DIR",
    "TARGET",
    "HOST",
    "NUM_JOBS",
    "OPT_LEVEL",
    "DEBUG",
    "PROFILE",
    "RUSTC_LINKER",
];
const REMOVED_ENV_PREFIXES: &[&str] = &["CARGO_CFG_", "CARGO_FEATURE_", "CARGO_PKG_", "DEP_"];

fn cargo_program() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

fn rustc_program() -> OsString {
    std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into())
}

fn run_capture(mut cmd: Command, display: &str) -> Result<String, HarvestError> {
    let out = cmd.output().map_err(|source| HarvestError::Spawn {
        command: display.to_string(),
        source,
    })?;
    if !out.status.success() {
        return Err(HarvestError::Command {
            command: display.to_string(),
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Checks that rustc knows `target` and that its standard library is installed, with
/// the `rustup target add` command when it is not. `dir` is where rustc runs (so that
/// `rust-toolchain.toml` picks the toolchain). Custom target `.json` files pass.
pub fn check_target(target: &str, dir: &Path) -> Result<(), HarvestError> {
    if target.ends_with(".json") {
        return Ok(());
    }
    let rustc = rustc_program();
    let mut cmd = Command::new(&rustc);
    cmd.args(["--print", "target-list"]).current_dir(dir);
    let list = run_capture(cmd, "rustc --print target-list")?;
    if !list.lines().any(|l| l.trim() == target) {
        return Err(HarvestError::UnknownTarget {
            target: target.to_string(),
        });
    }
    let mut cmd = Command::new(&rustc);
    cmd.args(["--print", "sysroot"]).current_dir(dir);
    let sysroot = run_capture(cmd, "rustc --print sysroot")?;
    let libdir = Path::new(sysroot.trim())
        .join("lib")
        .join("rustlib")
        .join(target)
        .join("lib");
    if !libdir.is_dir() {
        return Err(HarvestError::TargetNotInstalled {
            target: target.to_string(),
            libdir,
        });
    }
    Ok(())
}

/// The nested cargo command (not yet run), for inspection and for [`build`].
pub fn build_command(opts: &BuildOptions) -> Command {
    let mut cmd = Command::new(cargo_program());
    cmd.current_dir(&opts.workspace_dir)
        .args([
            "rustc",
            "-p",
            &opts.package,
            "--lib",
            "--release",
            "--crate-type",
            "staticlib",
        ])
        .arg("--target")
        .arg(&opts.target)
        .arg("--target-dir")
        .arg(&opts.target_dir)
        .arg("--message-format=json-render-diagnostics");
    for (key, _) in std::env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        if REMOVED_ENV.contains(&key) || REMOVED_ENV_PREFIXES.iter().any(|p| key.starts_with(p)) {
            cmd.env_remove(key);
        }
        // Per-target flags of the outer build (`CARGO_TARGET_<TRIPLE>_RUSTFLAGS`).
        if key.starts_with("CARGO_TARGET_") && key.ends_with("_RUSTFLAGS") {
            cmd.env_remove(key);
        }
    }
    for (key, value) in PROFILE_ENV {
        cmd.env(key, value);
    }
    cmd.env("CARGO_INCREMENTAL", "0");
    cmd.env(
        "CARGO_ENCODED_RUSTFLAGS",
        stencil_rustflags(&opts.extra_cfgs).join("\x1f"),
    );
    cmd
}

/// Builds `opts.package` as a static library for `opts.target` with the stencil flags
/// and returns the library's path. On failure the error carries cargo's rendered
/// diagnostics (a `#[stencil]` rule violation, a type error, ...).
pub fn build(opts: &BuildOptions) -> Result<PathBuf, HarvestError> {
    check_target(&opts.target, &opts.workspace_dir)?;
    std::fs::create_dir_all(&opts.target_dir).map_err(|source| HarvestError::Io {
        path: opts.target_dir.clone(),
        source,
    })?;

    let mut cmd = build_command(opts);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let display = format!(
        "cargo rustc -p {} --crate-type staticlib --target {}",
        opts.package, opts.target
    );
    let mut child = cmd.spawn().map_err(|source| HarvestError::Spawn {
        command: display.clone(),
        source,
    })?;

    // Drain stderr on its own thread so neither pipe can fill up and block cargo.
    let stderr = child.stderr.take();
    let stderr_thread = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut s) = stderr {
            use std::io::Read;
            let mut bytes = Vec::new();
            let _ = s.read_to_end(&mut bytes);
            text = String::from_utf8_lossy(&bytes).into_owned();
        }
        text
    });

    let crate_name = opts.package.replace('-', "_");
    let mut artifact = None;
    let mut rendered = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        for message in Message::parse_stream(BufReader::new(stdout)) {
            let Ok(message) = message else { continue };
            match message {
                Message::CompilerArtifact(a) => {
                    let is_staticlib = a
                        .target
                        .crate_types
                        .iter()
                        .any(|t| t.to_string() == "staticlib");
                    if a.target.name == crate_name && is_staticlib {
                        if let Some(f) = a
                            .filenames
                            .iter()
                            .find(|f| matches!(f.extension(), Some("a") | Some("lib")))
                        {
                            artifact = Some(PathBuf::from(f.as_std_path()));
                        }
                    }
                }
                Message::CompilerMessage(m) => {
                    if let Some(r) = m.message.rendered {
                        rendered.push(r);
                    }
                }
                _ => {}
            }
        }
    }
    let status = child.wait().map_err(|source| HarvestError::Spawn {
        command: display.clone(),
        source,
    })?;
    let stderr = stderr_thread.join().unwrap_or_default();

    if !status.success() {
        let mut diagnostics: String = rendered.concat();
        diagnostics.push_str(&filter_progress(&stderr));
        return Err(HarvestError::BuildFailed {
            package: opts.package.clone(),
            target: opts.target.clone(),
            status: status.to_string(),
            diagnostics: diagnostics.trim_end().to_string(),
        });
    }
    artifact.ok_or(HarvestError::NoArtifact {
        package: opts.package.clone(),
    })
}

/// Drops cargo's progress lines (`Compiling ...`), keeping diagnostics.
fn filter_progress(stderr: &str) -> String {
    let mut out = String::new();
    for line in stderr.lines() {
        let t = line.trim_start();
        let progress = [
            "Compiling ",
            "Finished ",
            "Updating ",
            "Locking ",
            "Blocking ",
            "Downloading ",
            "Downloaded ",
        ]
        .iter()
        .any(|p| t.starts_with(p));
        if !progress {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}
