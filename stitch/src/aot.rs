//! `stitch build`: a program compiled ahead of time (`jit::aot`) into an object file
//! and, with `--emit exe`, linked with the runtime library (`aot-runtime`) by the
//! target's system linker into an executable that runs as `stitch run FILE` does.

use crate::{load, Failure};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Which optional instructions the code may use (`jit::aot::Cpu`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Cpu {
    /// The target's baseline instruction set.
    Baseline,
    /// This machine's CPU features (only for its own instruction set).
    Host,
}

/// What `stitch build` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Emit {
    /// An executable (x86-64 and aarch64 Linux).
    Exe,
    /// An object file, for a linker (every target).
    Obj,
}

#[derive(clap::Args, Debug)]
pub struct Options {
    /// The .vm3 file.
    file: PathBuf,
    /// Where to write (default: the file's name without `.vm3`, plus `.o` or `.obj`
    /// for an object).
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// The target triple: x86_64-unknown-linux-gnu, aarch64-unknown-linux-gnu,
    /// x86_64-apple-darwin, aarch64-apple-darwin, x86_64-pc-windows-msvc (default: this
    /// machine's). Another target's stencils are harvested from the stitch source tree
    /// (a nested cargo build of a minute or two the first time, in target/stencil-build,
    /// shared with `cargo build --target T`).
    #[arg(long)]
    target: Option<String>,
    /// The function the executable runs.
    #[arg(long, default_value = "main")]
    entry: String,
    /// An executable, or only the object file.
    #[arg(long, value_enum, default_value_t = Emit::Exe)]
    emit: Emit,
    /// Which optional CPU instructions the code may use: the target's baseline (runs on
    /// every CPU of the target), or this machine's, as the JIT does (x86-64 FMA; the
    /// executable then needs a CPU that has them).
    #[arg(long, value_enum, default_value_t = Cpu::Baseline)]
    cpu: Cpu,
    /// The runtime library to link with (default: `libaot_runtime.a` built by
    /// `cargo build --release -p aot-runtime [--target T]` next to stitch).
    #[arg(long)]
    runtime: Option<PathBuf>,
    /// The largest .vm3 file read, in bytes.
    #[arg(long, default_value_t = load::DEFAULT_MAX_FILE_BYTES)]
    max_file_bytes: u64,
}

pub fn build(options: &Options) -> Result<(), Failure> {
    let host = jit::aot::host_stencils().target;
    let target = options.target.as_deref().unwrap_or(host);
    if let Err(e) = jit::aot::object_format(target) {
        return Err(Failure::input(format!("error: {e}")));
    }
    // Everything the user can get wrong is checked before the (long) harvest and link.
    let linker = match options.emit {
        Emit::Exe => Some(linker_for(target)?),
        Emit::Obj => None,
    };
    let runtime = match options.emit {
        Emit::Exe => Some(runtime_library(target, host, options.runtime.as_deref())?),
        Emit::Obj => None,
    };
    let program = load::load(&options.file, options.max_file_bytes)?;
    load::function_index(&program, &options.entry, &options.file)?;
    let write = |set: &stencil_table::StencilSet| {
        let cpu = match options.cpu {
            Cpu::Baseline => jit::aot::Cpu::Baseline,
            Cpu::Host => jit::aot::Cpu::Host,
        };
        jit::aot::write_object(&program, set, &options.entry, cpu).map_err(|e| match e {
            jit::aot::AotError::HostCpuForOtherTarget(_) => Failure::input(format!("error: {e}")),
            e => Failure::Internal(format!("internal error: cannot compile ahead of time: {e}")),
        })
    };
    let object = if target == host {
        write(jit::aot::host_stencils())?
    } else {
        harvest(target)?.with_set(write)?
    };
    let output = options.output.clone().unwrap_or_else(|| {
        let stem = options.file.with_extension("");
        match (options.emit, target.contains("windows")) {
            (Emit::Exe, false) => stem,
            (Emit::Exe, true) => stem.with_extension("exe"),
            (Emit::Obj, false) => stem.with_extension("o"),
            (Emit::Obj, true) => stem.with_extension("obj"),
        }
    });
    if output == options.file {
        return Err(Failure::input(format!(
            "error: the output would overwrite {} (it has no `.vm3` extension); give `-o OUT`",
            options.file.display()
        )));
    }
    let (Some(linker), Some(runtime)) = (linker, runtime) else {
        return write_file(&output, &object);
    };
    // The object goes next to the output (so an unwritable place is reported as the
    // output's) and is removed after the link.
    let mut object_path = output.clone().into_os_string();
    object_path.push(".stitch-build.o");
    let object_path = PathBuf::from(object_path);
    write_file(&object_path, &object)?;
    let linked = link(&linker, &object_path, &runtime, &output);
    let _ = std::fs::remove_file(&object_path);
    linked
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    std::fs::write(path, bytes)
        .map_err(|e| Failure::input(format!("error: cannot write {}: {e}", path.display())))
}

/// The system linker that links executables for `target` on this machine.
fn linker_for(target: &str) -> Result<String, Failure> {
    let native = |arch: &str| std::env::consts::ARCH == arch && cfg!(target_os = "linux");
    let linker = match target {
        "x86_64-unknown-linux-gnu" if native("x86_64") => "cc",
        "x86_64-unknown-linux-gnu" => "x86_64-linux-gnu-gcc",
        "aarch64-unknown-linux-gnu" if native("aarch64") => "cc",
        "aarch64-unknown-linux-gnu" => "aarch64-linux-gnu-gcc",
        other => {
            return Err(Failure::input(format!(
                "error: `stitch build` links executables only for Linux targets; for {other}, \
                 write the object with `--emit obj` and link it with the runtime library \
                 (`cargo build --release -p aot-runtime --target {other}`) using that \
                 platform's linker (see README, Ahead-of-time compiling)"
            )))
        }
    };
    match Command::new(linker).arg("--version").output() {
        Ok(_) => Ok(linker.to_string()),
        Err(e) => Err(Failure::input(format!(
            "error: linking for {target} needs the C compiler driver `{linker}`, which cannot \
             be run ({e}); install it (Debian: {}) or use `--emit obj`",
            if linker == "cc" {
                "gcc".to_string()
            } else {
                format!("gcc-{}", linker.trim_end_matches("-gcc").replace('_', "-"))
            }
        ))),
    }
}

/// The runtime library for `target`: given, or where cargo puts it next to stitch
/// (`target/release/` for the host, `target/<triple>/release/` for another target).
fn runtime_library(target: &str, host: &str, given: Option<&Path>) -> Result<PathBuf, Failure> {
    let path = match given {
        Some(path) => path.to_path_buf(),
        None => {
            let exe = std::env::current_exe().map_err(|e| {
                Failure::Internal(format!("error: cannot find stitch's own directory: {e}"))
            })?;
            let dir = exe.parent().unwrap_or(Path::new("."));
            // Test binaries run from `target/release/deps`.
            let dir = if dir.ends_with("deps") {
                dir.parent().unwrap_or(dir)
            } else {
                dir
            };
            let profile = dir.file_name().unwrap_or_default();
            let dir = if target == host {
                dir.to_path_buf()
            } else {
                dir.parent().unwrap_or(dir).join(target).join(profile)
            };
            dir.join("libaot_runtime.a")
        }
    };
    if path.is_file() {
        Ok(path)
    } else {
        let build = if target == host {
            "cargo build --release -p aot-runtime".to_string()
        } else {
            format!("cargo build --release -p aot-runtime --target {target}")
        };
        Err(Failure::input(format!(
            "error: the runtime library for {target} is not at {}; build it with `{build}` \
             in the stitch source tree, or give its path with `--runtime`",
            path.display()
        )))
    }
}

fn link(linker: &str, object: &Path, runtime: &Path, output: &Path) -> Result<(), Failure> {
    let result = Command::new(linker)
        .arg(object)
        .arg(runtime)
        .arg("-o")
        .arg(output)
        // Drops what the runtime library has but the executable does not call (the JIT's
        // compiler and tables).
        .arg("-Wl,--gc-sections")
        // What the Rust standard library needs (`--print native-static-libs`).
        .args([
            "-lgcc_s",
            "-lutil",
            "-lrt",
            "-lpthread",
            "-lm",
            "-ldl",
            "-lc",
        ])
        .output();
    match result {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(Failure::input(format!(
            "error: `{linker}` could not link {}: {}",
            output.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))),
        Err(e) => Err(Failure::input(format!("error: cannot run `{linker}`: {e}"))),
    }
}

/// Another target's stencil table, harvested from the source tree stitch was built
/// from (a nested cargo build in the directory `jit`'s build script uses; later calls
/// find it built).
fn harvest(target: &str) -> Result<stencil_table::OwnedStencilSet, Failure> {
    let workspace = stencil_harvest::workspace_root(Path::new(env!("CARGO_MANIFEST_DIR")));
    if !workspace.join("stencils").is_dir() {
        return Err(Failure::input(format!(
            "error: building for {target} needs its stencils, harvested from the stitch \
             source tree, which is not at {}; build on a {target} machine or from a checkout",
            workspace.display()
        )));
    }
    // Where `jit`'s build script builds every target's stencils, so a runtime library
    // built for the target (`cargo build -p aot-runtime --target T`) built them already.
    let cache = std::env::var_os(stencil_harvest::TARGET_DIR_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target").join("stencil-build"));
    let options = stencil_harvest::BuildOptions::new(target, &workspace, cache);
    let fail = |e: stencil_harvest::HarvestError| {
        Failure::Internal(format!(
            "error: cannot harvest the stencils for {target}: {e}"
        ))
    };
    let lib = stencil_harvest::build(&options).map_err(fail)?;
    stencil_harvest::harvest_staticlib(&lib, target).map_err(fail)
}
