//! `cargo run -p stencil-harvest -- --target <triple> [--out FILE]`: builds the stencils
//! for a target, checks and harvests them, prints a summary and writes the table.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use stencil_harvest::{
    build, harvest, harvest_staticlib, stencil_object, summary, to_rust_source, write_if_changed,
    BuildOptions, HarvestError,
};

/// The triple this harvester was built for.
const HOST_TARGET: &str = env!("STENCIL_HARVEST_HOST_TARGET");

#[derive(Parser, Debug)]
#[command(
    name = "stencil-harvest",
    version,
    about = "Build, check and harvest the vm3 JIT stencils for a target"
)]
struct Args {
    /// Target triple to build the stencils for.
    #[arg(long, default_value = HOST_TARGET)]
    target: String,
    /// Where to write the generated table [default: <workspace>/target/stencils/<target>.rs].
    #[arg(long)]
    out: Option<PathBuf>,
    /// The workspace holding the stencils crate [default: the one this tool belongs to].
    #[arg(long)]
    workspace: Option<PathBuf>,
    /// Target directory of the nested stencil build [default: <workspace>/target/stencil-build].
    #[arg(long)]
    target_dir: Option<PathBuf>,
    /// Harvest this static library or object file instead of building.
    #[arg(long, value_name = "FILE")]
    from: Option<PathBuf>,
}

fn default_workspace() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    stencil_harvest::workspace_root(manifest)
}

fn run(args: &Args) -> Result<PathBuf, HarvestError> {
    let workspace = args.workspace.clone().unwrap_or_else(default_workspace);
    let set = match &args.from {
        Some(path) if path.extension().is_some_and(|e| e == "a" || e == "lib") => {
            harvest_staticlib(path, &args.target)?
        }
        Some(path) => {
            let bytes = std::fs::read(path).map_err(|source| HarvestError::Io {
                path: path.clone(),
                source,
            })?;
            harvest(stencil_object(&bytes, "stencils")?, &args.target)?
        }
        None => {
            stencil_harvest::check_target(&args.target, &workspace)?;
            stencil_harvest::check_supported(&args.target)?;
            let target_dir = args
                .target_dir
                .clone()
                .unwrap_or_else(|| workspace.join("target").join("stencil-build"));
            let opts = BuildOptions::new(args.target.clone(), &workspace, target_dir);
            let lib = build(&opts)?;
            harvest_staticlib(&lib, &args.target)?
        }
    };
    print!("{}", summary(&set));
    let out = args.out.clone().unwrap_or_else(|| {
        workspace
            .join("target")
            .join("stencils")
            .join(format!("{}.rs", args.target))
    });
    write_if_changed(&out, &to_rust_source(&set))?;
    Ok(out)
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(out) => {
            println!("wrote {}", out.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
