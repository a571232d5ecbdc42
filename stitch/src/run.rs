//! `stitch run`: arguments parsed by the entry's parameter banks, a run in one tier, and
//! the result printed as spec §5 says.

use crate::{load, Failure};
use std::path::Path;
use std::time::Duration;
use vm3::{Bank, Function, RunError, Value, VerifiedProgram};

/// The largest `--depth-limit` accepted. Compiled calls nest on the native stack, which
/// is sized from the limit, so the limit has to stay within what can be mapped.
pub const MAX_DEPTH_LIMIT: u64 = 1_000_000;

/// Which tier runs a program.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Tier {
    /// The reference interpreter.
    Interp,
    /// The copy-and-patch JIT.
    Jit,
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
    let value = run_in(
        &program,
        tier,
        entry,
        &args,
        run_limits,
        limits.timeout,
        jit_options,
    )?;
    let mut line = format_value(&value);
    line.push(b'\n');
    crate::emit_bytes(&line);
    Ok(())
}

/// Runs `entry` in `tier` (compiling first for the JIT) through the embedding
/// interface, as an embedder would; with run limits on when there is fuel or a
/// timeout, which a timer thread enforces through the store's interrupt handle.
pub fn run_in(
    program: &VerifiedProgram,
    tier: Tier,
    entry: &str,
    args: &[Value],
    limits: jit::Limits,
    timeout: Option<Duration>,
    jit_options: jit::CompileOptions,
) -> Result<Value, Failure> {
    let mut options = engine_options(tier);
    options.run_limits = limits.fuel.is_some() || timeout.is_some();
    options.compile = jit_options;
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
    result.map_err(|e| match e {
        RunError::Trap(trap) => Failure::Trap(trap),
        RunError::Arguments(message) => Failure::input(format!("error: {message}")),
        RunError::Result(message) | RunError::Resources(message) => {
            Failure::Result(format!("error: {message}"))
        }
    })
}

/// The engine options of `tier`.
pub fn engine_options(tier: Tier) -> jit::EngineOptions {
    let mut options = jit::EngineOptions::default();
    options.tier = match tier {
        Tier::Interp => jit::Tier::Interpreted,
        Tier::Jit => jit::Tier::Compiled,
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

/// Parses command-line arguments by the parameter banks of `func`.
pub fn parse_args(func: &Function, raw: &[std::ffi::OsString]) -> Result<Vec<Value>, Failure> {
    if raw.len() != func.params.len() {
        let banks: Vec<&str> = func.params.iter().map(|b| b.name()).collect();
        return Err(Failure::input(format!(
            "error: `{}` takes {} argument{} ({}), but {} {} given",
            func.name,
            func.params.len(),
            if func.params.len() == 1 { "" } else { "s" },
            banks.join(", "),
            raw.len(),
            if raw.len() == 1 { "was" } else { "were" },
        )));
    }
    func.params
        .iter()
        .zip(raw)
        .enumerate()
        .map(|(k, (&bank, raw))| {
            let shown = raw.to_string_lossy();
            let bad = |what: &str| {
                Failure::input(format!(
                    "error: argument {} of `{}` ({}): `{shown}` is not {what}",
                    k + 1,
                    func.name,
                    bank.name()
                ))
            };
            let text = raw.to_str();
            match bank {
                Bank::I64 => text
                    .and_then(parse_i64)
                    .map(Value::I64)
                    .ok_or_else(|| bad("an integer (decimal or 0x hex, in the i64 range)")),
                Bank::F64 => text
                    .and_then(|t| t.trim().parse::<f64>().ok())
                    .map(Value::F64)
                    .ok_or_else(|| bad("a floating-point number")),
                // A cell parameter takes the argument as a string: its bytes as they
                // are, UTF-8 or not (issue 10: non-UTF-8 arguments could not reach one).
                Bank::Cell => Ok(match text {
                    Some(t) => Value::Str(t.to_string()),
                    None => Value::Bytes(os_bytes(raw)),
                }),
            }
        })
        .collect()
}

/// An i64 written in decimal or `0x` hex, with an optional sign. Hex digits may spell
/// any 64-bit pattern (`0xffffffffffffffff` is -1); a signed value must fit an i64.
pub fn parse_i64(text: &str) -> Option<i64> {
    let text = text.trim();
    let (negative, digits) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let hex = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"));
    let (magnitude, radix) = match hex {
        Some(h) => (h, 16),
        None => (digits, 10),
    };
    // `from_str_radix` would accept a second sign; only digits may follow.
    if magnitude.is_empty() || !magnitude.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let m = u64::from_str_radix(magnitude, radix).ok()?;
    match (negative, radix) {
        (false, 16) => Some(m as i64),
        (false, _) => i64::try_from(m).ok(),
        (true, _) if m == 1 << 63 => Some(i64::MIN),
        (true, _) => i64::try_from(m).ok().map(|v| -v),
    }
}

/// A result as spec §5 prints it: integers in decimal, floats as Rust's `Display`, a
/// string as its bytes, a list as `[1, 2, 3]` (see [`Value`]'s `Display`).
pub fn format_value(value: &Value) -> Vec<u8> {
    match value {
        Value::Bytes(bytes) => bytes.clone(),
        other => other.to_string().into_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers() {
        assert_eq!(parse_i64("42"), Some(42));
        assert_eq!(parse_i64("-1"), Some(-1));
        assert_eq!(parse_i64("+7"), Some(7));
        assert_eq!(parse_i64("0x10"), Some(16));
        assert_eq!(parse_i64("-0x10"), Some(-16));
        assert_eq!(parse_i64("0xffffffffffffffff"), Some(-1));
        assert_eq!(parse_i64("9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64("-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64("-0x8000000000000000"), Some(i64::MIN));
        for bad in [
            "",
            "-",
            "0x",
            "1.5",
            "abc",
            "--1",
            "+-1",
            "-+1",
            "0x-1",
            "9223372036854775808",
            "1e3",
            "0x1_0",
            "0x10000000000000000",
        ] {
            assert_eq!(parse_i64(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn values() {
        let text = |v: Value| String::from_utf8(format_value(&v)).unwrap();
        assert_eq!(text(Value::I64(-5)), "-5");
        assert_eq!(text(Value::F64(2.5)), "2.5");
        assert_eq!(text(Value::F64(0.0)), "0");
        assert_eq!(text(Value::F64(f64::NAN)), "NaN");
        assert_eq!(text(Value::F64(f64::INFINITY)), "inf");
        assert_eq!(text(Value::F64(21065.833110879048)), "21065.833110879048");
        assert_eq!(text(Value::Str("ab-ab-!".into())), "ab-ab-!");
        assert_eq!(
            text(Value::List(vec![
                Value::I64(1),
                Value::F64(2.5),
                Value::Str("x".into()),
                Value::List(vec![]),
                Value::Null,
            ])),
            "[1, 2.5, \"x\", [], null]"
        );
        assert_eq!(text(Value::Map(vec![(1, 2), (3, -4)])), "{1: 2, 3: -4}");
        assert_eq!(text(Value::Bool(true)), "true");
        assert_eq!(
            format_value(&Value::Bytes(vec![0xFF, b'a'])),
            vec![0xFF, b'a']
        );
    }
}

/// The bytes of an argument that is not UTF-8.
#[cfg(unix)]
fn os_bytes(raw: &std::ffi::OsStr) -> Vec<u8> {
    std::os::unix::ffi::OsStrExt::as_bytes(raw).to_vec()
}

/// Elsewhere (Windows' arguments are UTF-16), the WTF-8 bytes Rust keeps.
#[cfg(not(unix))]
fn os_bytes(raw: &std::ffi::OsStr) -> Vec<u8> {
    raw.as_encoded_bytes().to_vec()
}
