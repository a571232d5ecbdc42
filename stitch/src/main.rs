//! `stitch`: the command-line front end of the vm3 copy-and-patch JIT.
//!
//! - `stitch run FILE [ARGS...]` assembles, verifies and runs a `.vm3` program in either
//!   tier and prints the result as spec §5 says;
//! - `stitch bench` (also what `stitch` alone does) times the built-in suite in the
//!   interpreter, the JIT and as native Rust;
//! - `stitch dump FILE` shows the machine code the JIT made for each instruction.
//!
//! Exit statuses: 0 success, 1 a trap, 2 bad input (a file that cannot be read,
//! assembled or verified, a missing entry, bad arguments, bad command line), 3 an
//! internal failure (the JIT refused a verified program, the tiers disagreed).

/// `println!` that does not panic when standard output is closed (see [`emit`]).
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::emit(format_args!("{}\n", format_args!($($arg)*)))
    };
}

mod aot;
mod argv;
mod bench;
mod dump;
mod load;
mod report;
mod run;
mod suite;

use clap::{CommandFactory, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "stitch",
    version,
    about = "Run, benchmark and inspect vm3 programs with a copy-and-patch JIT"
)]
struct Cli {
    /// What to do; without a command, runs the benchmark suite.
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Assemble, verify and run a .vm3 program, printing its result.
    Run {
        /// The .vm3 file.
        file: PathBuf,
        /// Arguments of the entry function, parsed by its parameter banks (i64: decimal
        /// or 0x hex; f64: any Rust float literal). Negative numbers may be written as
        /// they are (-1, -0x10, -2.5e3, -inf); a string starting with `-` goes after `--`.
        args: Vec<std::ffi::OsString>,
        /// The function to call.
        #[arg(long, default_value = "main")]
        entry: String,
        /// Which tier runs the program.
        #[arg(long, value_enum, default_value_t = run::Tier::Jit)]
        tier: run::Tier,
        /// Maximum number of live activations before `call stack overflow`.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=run::MAX_DEPTH_LIMIT))]
        depth_limit: Option<u64>,
        /// Bytes the program may allocate on its heap before `heap limit exceeded`
        /// (default 256 MiB).
        #[arg(long)]
        heap_limit: Option<usize>,
        /// Fuel of the run: one unit per function entry and loop iteration; a run that
        /// needs more traps with `out of fuel` (at the same instruction in every tier).
        #[arg(long)]
        fuel: Option<u64>,
        /// Seconds after which the run traps with `interrupted` (fractions allowed).
        #[arg(long, value_parser = run::parse_timeout)]
        timeout: Option<std::time::Duration>,
        /// Bytes of executable memory compiled code may take (whole pages); past it,
        /// functions stay interpreted (`--tier auto`: each function that does not fit;
        /// `--tier jit`: the whole program).
        #[arg(long, value_name = "BYTES")]
        code_limit: Option<usize>,
        /// `--tier auto`: calls of a function before it is compiled (0: at its first
        /// call; default 100).
        #[arg(long, value_name = "N")]
        tier_up_calls: Option<u32>,
        /// `--tier auto`: backward jumps in a function before it is compiled and its
        /// looping activations go on in compiled code (0: at the first; default 1000).
        #[arg(long, value_name = "N")]
        tier_up_back_edges: Option<u32>,
        /// The largest .vm3 file read, in bytes.
        #[arg(long, default_value_t = load::DEFAULT_MAX_FILE_BYTES)]
        max_file_bytes: u64,
        /// Append a line per compiled function to /tmp/perf-PID.map, so that `perf report`
        /// names compiled code.
        #[arg(long)]
        perf_map: bool,
        /// Register compiled code with a debugger (the GDB JIT interface), so that a
        /// backtrace names the vm3 functions in it.
        #[arg(long)]
        gdb_jit: bool,
    },
    /// Compile a .vm3 program ahead of time into a native executable (or object file)
    /// that runs its entry as `stitch run FILE` does.
    ///
    /// The executable takes the entry's arguments, `--depth-limit` and `--heap-limit`,
    /// and prints the result, traps and exit statuses exactly as `stitch run`. Its code
    /// is the stencils patched as the JIT patches them, with helper calls left to the
    /// linker: nothing is compiled or mapped executable at run time.
    ///
    /// Targets: x86_64-unknown-linux-gnu (links with `cc`), aarch64-unknown-linux-gnu
    /// (links with `aarch64-linux-gnu-gcc` on other hosts); both need the runtime
    /// library, `cargo build --release -p aot-runtime [--target T]`. For
    /// x86_64-apple-darwin, aarch64-apple-darwin and x86_64-pc-windows-msvc, `--emit obj`
    /// writes the object (Mach-O, COFF) to link with that target's runtime library
    /// using the platform's linker.
    #[command(verbatim_doc_comment)]
    Build(aot::Options),
    /// Time the built-in benchmark suite: interpreter, JIT and native Rust.
    Bench(bench::Options),
    /// Compile a .vm3 program and print each instruction with its machine code.
    Dump {
        /// The .vm3 file.
        file: PathBuf,
        /// Only this function (default: all of them).
        #[arg(long)]
        entry: Option<String>,
        /// The largest .vm3 file read, in bytes.
        #[arg(long, default_value_t = load::DEFAULT_MAX_FILE_BYTES)]
        max_file_bytes: u64,
    },
}

pub use stitch_io::{emit, emit_bytes, Failure};

fn main() -> ExitCode {
    // `run`'s negative-number arguments are put after a `--` first (see `argv`).
    let argv = argv::numbers_as_values(&Cli::command(), "run", std::env::args_os().collect());
    let cli = Cli::parse_from(argv);
    let result = match cli.command {
        None => bench::bench(&bench::Options::default()),
        Some(Command::Bench(options)) => bench::bench(&options),
        Some(Command::Build(options)) => aot::build(&options),
        Some(Command::Run {
            file,
            args,
            entry,
            tier,
            depth_limit,
            heap_limit,
            fuel,
            timeout,
            code_limit,
            tier_up_calls,
            tier_up_back_edges,
            max_file_bytes,
            perf_map,
            gdb_jit,
        }) => run::run(
            &file,
            &args,
            &entry,
            tier,
            run::Limits {
                depth: depth_limit,
                heap: heap_limit,
                fuel,
                timeout,
                code: code_limit,
                tier_up: jit::TierUp {
                    calls: tier_up_calls.unwrap_or(jit::TierUp::default().calls),
                    back_edges: tier_up_back_edges.unwrap_or(jit::TierUp::default().back_edges),
                },
                file_bytes: max_file_bytes,
            },
            jit::CompileOptions {
                perf_map,
                gdb_jit,
                ..jit::CompileOptions::default()
            },
        ),
        Some(Command::Dump {
            file,
            entry,
            max_file_bytes,
        }) => dump::dump(&file, entry.as_deref(), max_file_bytes),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => ExitCode::from(failure.report()),
    }
}
