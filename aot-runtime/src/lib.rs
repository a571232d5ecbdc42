//! The runtime of an executable `stitch build` links: the C `main`, which parses the
//! entry's arguments and `--depth-limit` / `--heap-limit`, runs the linked code and
//! prints the result, a trap or an error with the exit status `stitch run` gives
//! (both print through `stitch-io`). The heap, the helpers the code calls by name, the
//! register-preserving thunks and the interpreter that finishes deoptimised activations
//! come from `jit` and `vm3`, linked in from here.
//!
//! The object defines `stitch_aot_code` (the code region) and `stitch_aot_image` (the
//! program and its entries; see `jit::aot`). Nothing is compiled or mapped executable at
//! run time: the code is the executable's own read-only text.

use clap::{CommandFactory, FromArgMatches, Parser};
use std::ffi::{c_char, c_int, OsString};
use stitch_io::{Failure, MAX_DEPTH_LIMIT};
use vm3::interp::Config;

/// The command line of a built executable: what `stitch run FILE` takes after the file.
#[derive(Parser, Debug)]
#[command(
    about = "A vm3 program compiled ahead of time by `stitch build`: runs its entry function with ARGS and prints the result",
    allow_negative_numbers = true
)]
struct Cli {
    /// Arguments of the entry function, parsed by its parameter banks (i64: decimal or
    /// 0x hex; f64: any Rust float literal). Put values starting with `-` other than
    /// negative decimals after `--`.
    args: Vec<OsString>,
    /// Maximum number of live activations before `call stack overflow`.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=MAX_DEPTH_LIMIT))]
    depth_limit: Option<u64>,
    /// Bytes the program may allocate on its heap before `heap limit exceeded`
    /// (default 256 MiB).
    #[arg(long)]
    heap_limit: Option<usize>,
}

extern "C" {
    static stitch_aot_image: u8;
    static stitch_aot_code: u8;
}

/// The executable's entry point, called by the C runtime.
#[no_mangle]
pub extern "C" fn main(_argc: c_int, _argv: *const *const c_char) -> c_int {
    let name = std::env::args_os()
        .next()
        .map(std::path::PathBuf::from)
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "program".into());
    let matches = Cli::command().bin_name(name).get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    match run(&cli) {
        Ok(()) => 0,
        Err(failure) => failure.report().into(),
    }
}

fn run(cli: &Cli) -> Result<(), Failure> {
    // SAFETY: both symbols are defined by the object `stitch build` wrote for this
    // target, which this library is linked with.
    let linked = unsafe {
        jit::aot::LinkedProgram::from_linked(
            std::ptr::addr_of!(stitch_aot_image),
            std::ptr::addr_of!(stitch_aot_code),
        )
    }
    .map_err(|m| Failure::Internal(format!("internal error: {m}")))?;
    let entry = linked.program().function_index(linked.entry_name());
    let func = &linked.program().functions[entry.expect("the entry is the program's")];
    let args = stitch_io::parse_args(func, &cli.args)?;
    let mut config = Config::default();
    if let Some(limit) = cli.depth_limit {
        config.depth_limit = limit;
    }
    if let Some(limit) = cli.heap_limit {
        config.heap_limit = limit;
    }
    let value = linked.run(&args, &config).map_err(stitch_io::run_failure)?;
    stitch_io::print_result(&value);
    Ok(())
}
