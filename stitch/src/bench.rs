//! `stitch bench`: each suite program timed in the interpreter, in the JIT (compile time
//! excluded) and as native Rust, best of several repetitions; compile throughput is
//! measured separately by compiling the program repeatedly.

use crate::suite::{Bench, SUITE};
use crate::{load, run, Failure};
use std::hint::black_box;
use std::time::{Duration, Instant};
use vm3::{Value, VerifiedProgram};

#[derive(clap::Args, Debug, Default)]
pub struct Options {
    /// Only the programs whose name contains this.
    #[arg(long)]
    pub filter: Option<String>,
    /// Fewer repetitions, for a quick look.
    #[arg(long)]
    pub quick: bool,
    #[command(flatten)]
    pub outputs: crate::report::Outputs,
}

/// What one program measured.
struct Row {
    interp: Duration,
    jit: Duration,
    native: Duration,
    /// Bytecode instructions and machine-code bytes compiled per second.
    insts_per_sec: f64,
    bytes_per_sec: f64,
    /// Machine code per bytecode instruction (prologues and argument moves included).
    code_bytes_per_inst: f64,
}

impl Row {
    /// The row as `--json` and `--svg` take it.
    fn measurement(&self, program: &str) -> crate::report::Measurement {
        crate::report::Measurement {
            program: program.to_string(),
            interp_seconds: self.interp.as_secs_f64(),
            jit_seconds: self.jit.as_secs_f64(),
            native_seconds: self.native.as_secs_f64(),
            compile_insts_per_second: self.insts_per_sec,
            compile_bytes_per_second: self.bytes_per_sec,
            code_bytes_per_inst: self.code_bytes_per_inst,
        }
    }
}

pub fn bench(options: &Options) -> Result<(), Failure> {
    let filter = options.filter.as_deref().unwrap_or("");
    let selected: Vec<&Bench> = SUITE.iter().filter(|b| b.name.contains(filter)).collect();
    if selected.is_empty() {
        let names: Vec<&str> = SUITE.iter().map(|b| b.name).collect();
        return Err(Failure::input(format!(
            "error: no benchmark matches `{filter}` (programs: {})",
            names.join(", ")
        )));
    }
    let sinks = options.outputs.open()?;
    let mut measurements = Vec::new();
    let reps = if options.quick { 2 } else { 7 };
    let compile_budget = Duration::from_millis(if options.quick { 30 } else { 200 });
    outln!(
        "best of {reps} runs; jit excludes compile time; speedup = interp/jit; compile rate from repeated compiles of the whole program"
    );
    outln!(
        "{:<14} {:>10} {:>10} {:>10} {:>8} {:>10} {:>14} {:>12} {:>7}",
        "program",
        "interp",
        "jit",
        "native",
        "speedup",
        "jit/native",
        "compile inst/s",
        "compile B/s",
        "B/inst"
    );
    let mut speedups = Vec::new();
    let mut vs_native = Vec::new();
    for bench in selected {
        let row = measure(bench, reps, compile_budget)?;
        let speedup = ratio(row.interp, row.jit);
        let over_native = ratio(row.jit, row.native);
        outln!(
            "{:<14} {:>10} {:>10} {:>10} {:>7.2}x {:>9.2}x {:>14} {:>12} {:>7.1}",
            bench.name,
            fmt_time(row.interp),
            fmt_time(row.jit),
            fmt_time(row.native),
            speedup,
            over_native,
            fmt_rate(row.insts_per_sec),
            fmt_rate(row.bytes_per_sec),
            row.code_bytes_per_inst,
        );
        speedups.push(speedup);
        vs_native.push(over_native);
        measurements.push(row.measurement(bench.name));
    }
    outln!(
        "{:<14} {:>10} {:>10} {:>10} {:>7.2}x {:>9.2}x",
        "geomean",
        "",
        "",
        "",
        geomean(&speedups),
        geomean(&vs_native)
    );
    let calls = if options.quick { 20_000 } else { 200_000 };
    for run_limits in [false, true] {
        let interp = call_cost(run::Tier::Interp, calls, run_limits)?;
        let jit = call_cost(run::Tier::Jit, calls, run_limits)?;
        outln!(
            "one call of a tiny function through the embedding API (TypedFunc, store reused; best of 5 x {calls} calls{}): interp {}, jit {}",
            if run_limits { "; run limits on, fuel to spare" } else { "" },
            fmt_time(interp),
            fmt_time(jit)
        );
    }
    sinks.write(&measurements, reps)
}

/// A function of two instructions, the embedding interface's fixed cost per call.
const TINY: &str = "func main(i64) -> i64\n    AddI64K i0, i0, 1\n    ReturnI64 i0\nend\n";

/// The cost of one call of [`TINY`] in `tier` through a `TypedFunc` with a kept store
/// (with run limits on and fuel to spare, or off): the best of five batches of `calls`
/// calls, divided by `calls`.
fn call_cost(tier: run::Tier, calls: u32, run_limits: bool) -> Result<Duration, Failure> {
    let internal = |what: String| Failure::Internal(format!("error: call cost: {what}"));
    let program = load::assemble(TINY, "tiny.vm3")?;
    let mut options = run::engine_options(tier);
    options.run_limits = run_limits;
    let module = run::module_with(&program, options)?;
    let tiny = module
        .func("main")
        .and_then(|f| f.typed::<(i64,), i64>())
        .map_err(|e| internal(e.to_string()))?;
    let mut limits = jit::Limits::default();
    limits.fuel = run_limits.then_some(u64::MAX);
    let mut store = jit::Store::with_limits(module.engine(), limits);
    let (best, last) = best_of(5, || {
        let mut x = 0;
        for _ in 0..calls {
            x = tiny.call(&mut store, (black_box(x),))?;
        }
        Ok(x)
    });
    let last = last.map_err(|e| internal(e.to_string()))?;
    if last != i64::from(calls) {
        return Err(internal(format!("{calls} calls counted to {last}")));
    }
    Ok(best / calls)
}

fn measure(bench: &Bench, reps: usize, compile_budget: Duration) -> Result<Row, Failure> {
    let internal =
        |what: String| Failure::Internal(format!("error: benchmark {}: {what}", bench.name));
    let program = load::assemble(bench.source, bench.name).map_err(|f| match f {
        Failure::Input(lines) => internal(format!(
            "the embedded program does not assemble:\n{}",
            lines.join("\n")
        )),
        other => other,
    })?;
    let args = [Value::I64(bench.arg)];
    let run_error = |tier: &str, e: vm3::RunError| internal(format!("the {tier} failed: {e}"));

    // Both tiers through the embedding interface, a store kept from run to run.
    let interpreted = run::module(&program, run::Tier::Interp)?;
    let main = interpreted
        .func("main")
        .map_err(|e| run_error("interpreter", e))?;
    let mut store = jit::Store::new(interpreted.engine());
    let (interp, interp_value) = best_of(reps, || main.call(&mut store, &args));
    let interp_value = interp_value.map_err(|e| run_error("interpreter", e))?;

    let compiled = run::compile(&program)?;
    let main = compiled.func("main").map_err(|e| run_error("JIT", e))?;
    let mut store = jit::Store::new(compiled.engine());
    let (jit, jit_value) = best_of(reps, || main.call(&mut store, &args));
    let jit_value = jit_value.map_err(|e| run_error("JIT", e))?;

    let (native, native_value) = best_of(reps, || Ok((bench.native)(black_box(bench.arg))));
    let native_value = native_value.map_err(|e| run_error("native version", e))?;

    if !interp_value.same_bits(&jit_value) {
        return Err(internal(format!(
            "the interpreter returned {interp_value:?} but the JIT returned {jit_value:?}"
        )));
    }
    if !interp_value.same_bits(&native_value) {
        return Err(internal(format!("the interpreter returned {interp_value:?} but the native version returned {native_value:?}")));
    }

    let (insts_per_sec, bytes_per_sec) =
        compile_rate(&program, compiled.code_bytes(), compile_budget)?;
    let insts: usize = program.functions().iter().map(|f| f.code.len()).sum();
    Ok(Row {
        interp,
        jit,
        native,
        insts_per_sec,
        bytes_per_sec,
        code_bytes_per_inst: compiled.code_bytes() as f64 / insts.max(1) as f64,
    })
}

/// The fastest of `reps` runs, and the result of the last one (the first error, if any).
fn best_of<T>(
    reps: usize,
    mut f: impl FnMut() -> Result<T, vm3::RunError>,
) -> (Duration, Result<T, vm3::RunError>) {
    let mut best = Duration::MAX;
    let mut last = None;
    for _ in 0..reps.max(1) {
        let start = Instant::now();
        let result = black_box(f());
        best = best.min(start.elapsed());
        let failed = result.is_err();
        last = Some(result);
        if failed {
            break;
        }
    }
    (best, last.expect("at least one repetition"))
}

/// Compiles `program` repeatedly for about `budget` (at least 3 times) and returns
/// bytecode instructions and machine-code bytes per second.
fn compile_rate(
    program: &VerifiedProgram,
    code_len: usize,
    budget: Duration,
) -> Result<(f64, f64), Failure> {
    let insts: usize = program.functions.iter().map(|f| f.code.len()).sum();
    // One compile off the clock: the first allocation after a run that freed a large
    // heap pays for the allocator tidying up (glibc's malloc_consolidate), which is not
    // the JIT's cost.
    black_box(run::compile(program)?);
    let mut compiles = 0u32;
    let start = Instant::now();
    while compiles < 3 || start.elapsed() < budget {
        black_box(run::compile(program)?);
        compiles += 1;
    }
    let per_compile = start.elapsed().as_secs_f64() / compiles as f64;
    Ok((insts as f64 / per_compile, code_len as f64 / per_compile))
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-9)
}

pub fn geomean(values: &[f64]) -> f64 {
    let logs: f64 = values.iter().map(|v| v.ln()).sum();
    (logs / values.len().max(1) as f64).exp()
}

fn fmt_time(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 1.0 {
        format!("{s:.3} s")
    } else if s >= 1e-3 {
        format!("{:.2} ms", s * 1e3)
    } else if s >= 1e-6 {
        format!("{:.2} µs", s * 1e6)
    } else {
        format!("{:.0} ns", s * 1e9)
    }
}

/// `12.3 M` style, for per-second rates.
fn fmt_rate(x: f64) -> String {
    let (scaled, unit) = if x >= 1e9 {
        (x / 1e9, "G")
    } else if x >= 1e6 {
        (x / 1e6, "M")
    } else if x >= 1e3 {
        (x / 1e3, "k")
    } else {
        (x, "")
    };
    format!("{scaled:.1} {unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting() {
        assert_eq!(fmt_time(Duration::from_millis(1234)), "1.234 s");
        assert_eq!(fmt_time(Duration::from_micros(12_340)), "12.34 ms");
        assert_eq!(fmt_time(Duration::from_nanos(5_500)), "5.50 µs");
        assert_eq!(fmt_time(Duration::from_nanos(42)), "42 ns");
        assert_eq!(fmt_rate(12_345_678.0), "12.3 M");
        assert!((geomean(&[2.0, 8.0]) - 4.0).abs() < 1e-12);
    }
}
