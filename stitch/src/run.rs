//! `stitch run`: arguments parsed by the entry's parameter banks, a run in one tier, and
//! the result printed as spec §5 says.

use crate::{load, Failure};
use std::path::Path;
use std::time::Duration;
pub use stitch_io::{parse_args, MAX_DEPTH_LIMIT};
use vm3::{Value, VerifiedProgram};

/// Which tier runs a program.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Tier {
    /// The reference interpreter.
    Interp,
    /// The copy-and-patch JIT, every function compiled before the run.
    Jit,
    /// Tier-up on demand: functions start interpreted and are compiled alone once hot;
    /// hot loops go on in compiled code (on-stack replacement).
    Auto,
}

/// Limits given on the command line (the defaults of [`jit::Limits`] otherwise).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub depth: Option<u64>,
    pub heap: Option<usize>,
    /// Fuel of the run (`--fuel`).
    pub fuel: Option<u64>,
    /// Time after which the run is interrupted (`--timeout`).
    pub timeout: Option<Duration>,
    /// Bytes of executable memory the run's engine may hold (`--code-limit`).
    pub code: Option<usize>,
    /// When `--tier auto` compiles a function (`--tier-up-calls`, `--tier-up-back-edges`).
    pub tier_up: jit::TierUp,
    /// The largest file read.
    pub file_bytes: u64,
}

pub fn run(
    file: &Path,
    raw_args: &[std::ffi::OsString],
    entry: &str,
    tier: Tier,
    limits: Limits,
    jit_options: jit::CompileOptions,
) -> Result<(), Failure> {
    let program = load::load(file, limits.file_bytes)?;
    let func = load::function_index(&program, entry, file)?;
    let args = parse_args(&program.functions[func], raw_args)?;
    let mut run_limits = jit::Limits::default();
    if let Some(limit) = limits.depth {
        run_limits.depth_limit = limit;
    }
    if let Some(limit) = limits.heap {
        run_limits.heap_limit = limit;
    }
    run_limits.fuel = limits.fuel;
    let mut options = engine_options(tier);
    options.compile = jit_options;
    options.code_limit = limits.code;
    options.tier_up = limits.tier_up;
    let value = run_in(&program, options, entry, &args, run_limits, limits.timeout)?;
    stitch_io::print_result(&value);
    Ok(())
}

/// Runs `entry` on an engine with `options` (its tier, compile options and code cap)
/// through the embedding interface, as an embedder would; with run limits on when
/// there is fuel or a timeout, which a timer thread enforces through the store's
/// interrupt handle.
pub fn run_in(
    program: &VerifiedProgram,
    mut options: jit::EngineOptions,
    entry: &str,
    args: &[Value],
    limits: jit::Limits,
    timeout: Option<Duration>,
) -> Result<Value, Failure> {
    options.run_limits = limits.fuel.is_some() || timeout.is_some();
    let module = module_with(program, options)?;
    let mut store = jit::Store::with_limits(module.engine(), limits);
    if let (Some(timeout), Some(handle)) = (timeout, store.interrupt_handle()) {
        // Detached: it may outlive the run, and the process ends after the run.
        std::thread::spawn(move || {
            std::thread::sleep(timeout);
            handle.interrupt();
        });
    }
    let result = module
        .func(entry)
        .and_then(|func| func.call(&mut store, args));
    result.map_err(stitch_io::run_failure)
}

/// The engine options of `tier`.
pub fn engine_options(tier: Tier) -> jit::EngineOptions {
    let mut options = jit::EngineOptions::default();
    options.tier = match tier {
        Tier::Interp => jit::Tier::Interpreted,
        Tier::Jit => jit::Tier::Compiled,
        Tier::Auto => jit::Tier::Auto,
    };
    options
}

/// A module of `program` for `tier` on an engine of its own; a compile failure is an
/// internal error, since the program is verified.
pub fn module(program: &VerifiedProgram, tier: Tier) -> Result<jit::Module, Failure> {
    module_with(program, engine_options(tier))
}

/// A module of `program` on an engine of its own with `options`.
pub fn module_with(
    program: &VerifiedProgram,
    options: jit::EngineOptions,
) -> Result<jit::Module, Failure> {
    let engine = jit::Engine::new(options);
    jit::Module::new(&engine, program).map_err(|e| {
        Failure::Internal(format!(
            "internal error: the JIT cannot compile this program: {e}"
        ))
    })
}

/// Compiles with the JIT.
pub fn compile(program: &VerifiedProgram) -> Result<jit::Module, Failure> {
    module(program, Tier::Jit)
}

/// A `--timeout`: seconds, a positive finite number (fractions allowed).
pub fn parse_timeout(text: &str) -> Result<Duration, String> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s > 0.0)
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| format!("`{text}` is not a positive number of seconds"))
}
