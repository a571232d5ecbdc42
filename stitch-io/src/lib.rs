//! What `stitch run` and the executables `stitch build` links share (spec §5): the
//! entry's arguments parsed by its parameter banks, the result printed, traps and
//! other failures reported with their exit statuses (0 success, 1 a trap or an
//! unprintable result, 2 bad input, 3 an internal failure). Shared so that an
//! executable prints exactly what `stitch run` prints.

use std::io::Write;
use vm3::{Bank, Function, RunError, Value};

/// The largest `--depth-limit` accepted. Compiled calls nest on the native stack, which
/// is sized from the limit, so the limit has to stay within what can be mapped.
pub const MAX_DEPTH_LIMIT: u64 = 1_000_000;

/// Why a command did not succeed. The message lines are complete (`error:` prefixes
/// included) and go to standard error.
#[derive(Debug)]
pub enum Failure {
    /// The input was wrong: status 2.
    Input(Vec<String>),
    /// The program trapped: status 1.
    Trap(vm3::TrapInfo),
    /// The program's result cannot be printed (nested too deep, containing itself,
    /// too large expanded): status 1, as for a trap.
    Result(String),
    /// A bug or an environment problem, not the user's fault: status 3.
    Internal(String),
}

impl Failure {
    pub fn input(message: impl Into<String>) -> Failure {
        Failure::Input(vec![message.into()])
    }

    /// Prints the failure's lines to standard error; the exit status to end with.
    pub fn report(self) -> u8 {
        match self {
            Failure::Input(lines) => {
                for line in lines {
                    eprintln!("{line}");
                }
                2
            }
            Failure::Trap(trap) => {
                eprintln!("{trap}");
                1
            }
            Failure::Result(message) => {
                eprintln!("{message}");
                1
            }
            Failure::Internal(message) => {
                eprintln!("{message}");
                3
            }
        }
    }
}

/// Writes to standard output and flushes. `println!` panics when the reader has gone
/// (`stitch dump f.vm3 | head`); here a closed pipe ends the process quietly, and any
/// other write error with a message and status 3.
pub fn emit(text: std::fmt::Arguments) {
    emit_bytes(text.to_string().as_bytes());
}

/// Writes bytes to standard output as they are (a string result need not be UTF-8).
pub fn emit_bytes(bytes: &[u8]) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(bytes).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to standard output: {e}");
        std::process::exit(3);
    }
}

/// A run's error as a [`Failure`].
pub fn run_failure(error: RunError) -> Failure {
    match error {
        RunError::Trap(trap) => Failure::Trap(trap),
        RunError::Arguments(message) => Failure::input(format!("error: {message}")),
        RunError::Result(message) | RunError::Resources(message) => {
            Failure::Result(format!("error: {message}"))
        }
    }
}

/// Prints a result as `stitch run` does: its text (spec §5) and a newline.
pub fn print_result(value: &Value) {
    let mut line = format_value(value);
    line.push(b'\n');
    emit_bytes(&line);
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
