//! `stitch run`: arguments parsed by the entry's parameter banks, a run in one tier, and
//! the result printed as spec §5 says.

use crate::{load, Failure};
use std::path::Path;
pub use stitch_io::{parse_args, MAX_DEPTH_LIMIT};
use vm3::interp::Config;
use vm3::{Value, VerifiedProgram};

/// Which tier runs a program.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Tier {
    /// The reference interpreter.
    Interp,
    /// The copy-and-patch JIT.
    Jit,
}

/// Limits given on the command line (the defaults of [`Config`] otherwise).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub depth: Option<u64>,
    pub heap: Option<usize>,
    /// The largest file read.
    pub file_bytes: u64,
}

pub fn run(
    file: &Path,
    raw_args: &[std::ffi::OsString],
    entry: &str,
    tier: Tier,
    limits: Limits,
) -> Result<(), Failure> {
    let program = load::load(file, limits.file_bytes)?;
    let func = load::function_index(&program, entry, file)?;
    let args = parse_args(&program.functions[func], raw_args)?;
    let mut config = Config::default();
    if let Some(limit) = limits.depth {
        config.depth_limit = limit;
    }
    if let Some(limit) = limits.heap {
        config.heap_limit = limit;
    }
    let value = run_in(&program, tier, entry, &args, &config)?;
    stitch_io::print_result(&value);
    Ok(())
}

/// Runs `entry` in `tier` (compiling first for the JIT).
pub fn run_in(
    program: &VerifiedProgram,
    tier: Tier,
    entry: &str,
    args: &[Value],
    config: &Config,
) -> Result<Value, Failure> {
    let result = match tier {
        Tier::Interp => vm3::interp::run(program, entry, args, config),
        Tier::Jit => compile(program)?.run(entry, args, config),
    };
    result.map_err(stitch_io::run_failure)
}

/// Compiles with the JIT; a failure is an internal error, since the program is verified.
pub fn compile(program: &VerifiedProgram) -> Result<jit::CompiledProgram, Failure> {
    jit::CompiledProgram::new(program).map_err(|e| {
        Failure::Internal(format!(
            "internal error: the JIT cannot compile this program: {e}"
        ))
    })
}
