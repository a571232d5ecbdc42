//! The `stitch` binary end to end: the shared kernels in both tiers, malformed input,
//! `dump` and a quick `bench`.

mod common;

use common::{kernels, kernels_dir};
use std::process::{Command, Output};

const STITCH: &str = env!("CARGO_BIN_EXE_stitch");

fn stitch<A: AsRef<std::ffi::OsStr> + std::fmt::Debug>(args: &[A]) -> Output {
    let output = Command::new(STITCH)
        .args(args)
        .output()
        .expect("cannot start stitch");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("panicked"),
        "stitch {args:?} panicked:\n{stderr}"
    );
    output
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn kernels_print_expected_results_in_every_tier() {
    let kernels = kernels();
    assert!(
        kernels.len() >= 10,
        "expected the scalar kernels, found {}",
        kernels.len()
    );
    let mut checked = 0;
    for kernel in &kernels {
        let file = kernel.path.to_str().expect("UTF-8 path");
        assert!(!kernel.runs.is_empty(), "{file} has no `; run:` lines");
        for (args, expected) in &kernel.runs {
            // Issue 9: "With `--tier auto` every kernel of `../shared/kernels` gives its
            // expected result", at the default thresholds and at 0.
            let every_tier: [&[&str]; 4] = [
                &["--tier", "interp"],
                &["--tier", "jit"],
                &["--tier", "auto"],
                &[
                    "--tier",
                    "auto",
                    "--tier-up-calls",
                    "0",
                    "--tier-up-back-edges",
                    "0",
                ],
            ];
            for tier in every_tier {
                let mut argv = vec!["run", file];
                argv.extend(tier);
                argv.extend(args.iter().map(String::as_str));
                let out = stitch(&argv);
                let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
                let what = format!("stitch {}", argv.join(" "));
                if expected.starts_with("trap:") {
                    assert_eq!(out.status.code(), Some(1), "{what}: stderr {stderr}");
                    assert_eq!(stderr.trim_end(), expected, "{what}");
                    assert_eq!(stdout, "", "{what}");
                } else {
                    assert_eq!(out.status.code(), Some(0), "{what}: stderr {stderr}");
                    assert_eq!(stdout, format!("{expected}\n"), "{what}");
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 80);
}

fn kernel(name: &str) -> String {
    kernels_dir()
        .join(name)
        .to_str()
        .expect("UTF-8 path")
        .to_string()
}

/// Runs stitch expecting status 2 and a message containing `needle`.
fn rejects(args: &[&str], needle: &str) {
    let out = stitch(args);
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "stitch {args:?}: stdout {} stderr {stderr}",
        text(&out.stdout)
    );
    assert!(
        stderr.contains(needle),
        "stitch {args:?}: expected `{needle}` in:\n{stderr}"
    );
    assert_eq!(text(&out.stdout), "", "stitch {args:?}");
}

fn temp_file(name: &str, contents: &[u8]) -> String {
    let dir = std::env::temp_dir().join(format!("stitch-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("temp file");
    path.to_str().expect("UTF-8 path").to_string()
}

#[test]
fn malformed_input_is_reported_with_status_2() {
    let sum = kernel("sum_loop.vm3");
    let gcd = kernel("gcd_tail.vm3");
    let sqrt = kernel("sqrt_sum.vm3");
    rejects(&["run", "/nonexistent/nothing.vm3"], "cannot read");
    rejects(&["dump", "/nonexistent/nothing.vm3"], "cannot read");

    let garbage = temp_file("garbage.vm3", b"this is not\na program\n");
    rejects(&["run", &garbage], "error");
    let binary = temp_file("binary.vm3", &[0xff, 0xfe, 0x00, 0x80, 0x01]);
    rejects(&["run", &binary], "error");
    let bad_reg = temp_file(
        "bad_register.vm3",
        b"func main(i64) -> i64\n    AddI64 i1, f0, i0\n    ReturnI64 i1\nend\n",
    );
    rejects(&["run", &bad_reg, "1"], "bad_register.vm3:2:");

    // Assembles, but falls off its end: only the verifier can say so.
    let falls_off = temp_file(
        "falls_off.vm3",
        b"func main(i64) -> i64\n    AddI64K i0, i0, 1\nend\n",
    );
    let out = stitch(&["run", &falls_off, "1"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).starts_with(&falls_off),
        "verifier errors start with the file name: {}",
        text(&out.stderr)
    );

    rejects(&["run", &sum, "abc"], "not an integer");
    rejects(&["run", &sum, "1.5"], "not an integer");
    rejects(&["run", &sum, "99999999999999999999"], "not an integer");
    rejects(&["run", &sqrt, "x"], "not an integer");
    rejects(&["run", &sum], "takes 1 argument");
    rejects(&["run", &sum, "1", "2"], "takes 1 argument");
    rejects(&["run", &gcd, "1"], "takes 2 arguments");
    rejects(
        &["run", &sum, "1", "--entry", "nope"],
        "no function named `nope`",
    );
    rejects(
        &["dump", &sum, "--entry", "nope"],
        "no function named `nope`",
    );
    rejects(&["run", &sum, "1", "--tier", "fast"], "fast");
    rejects(&["run", &sum, "1", "--depth-limit", "0"], "depth-limit");
    rejects(
        &["bench", "--filter", "no_such_benchmark"],
        "no benchmark matches",
    );
}

#[test]
fn arguments_may_be_negative_hex_or_float() {
    let lookup = kernel("lookup.vm3");
    for tier in ["interp", "jit"] {
        for (arg, expected) in [
            ("-1", "100\n"),
            ("0x4", "16\n"),
            ("-9223372036854775808", "100\n"),
        ] {
            let out = stitch(&["run", &lookup, arg, "--tier", tier]);
            assert_eq!(
                text(&out.stdout),
                expected,
                "lookup {arg} ({tier}): {}",
                text(&out.stderr)
            );
        }
        // Negative hex stands where any argument may (issue 10 item 8), before or
        // after the options, and `--` still works.
        for line in [
            vec!["run", &lookup, "-0x1", "--tier", tier],
            vec!["run", "--tier", tier, &lookup, "-0x1"],
            vec!["run", "--tier", tier, &lookup, "--", "-0x1"],
        ] {
            let out = stitch(&line);
            assert_eq!(
                text(&out.stdout),
                "100\n",
                "{line:?}: {}",
                text(&out.stderr)
            );
        }
    }
    // Options may come before or after the arguments.
    let out = stitch(&["run", "--tier", "interp", &lookup, "-1"]);
    assert_eq!(text(&out.stdout), "100\n");

    let half = temp_file("half.vm3", b"func half(f64) -> f64\n    ConstF64K f1, 0.5\n    MulF64 f0, f0, f1\n    ReturnF64 f0\nend\n");
    for (arg, expected) in [
        ("5", "2.5"),
        ("-1e3", "-500"),
        ("inf", "inf"),
        ("nan", "NaN"),
        ("-0.0", "-0"),
        ("-inf", "-inf"),
    ] {
        let out = stitch(&["run", &half, arg, "--entry", "half"]);
        assert_eq!(
            text(&out.stdout),
            format!("{expected}\n"),
            "half {arg}: {}",
            text(&out.stderr)
        );
    }
    // `--` still takes what follows as it is; an unknown option is still refused, and
    // a string argument starting with `-` that is no number is one.
    let out = stitch(&["run", &half, "--entry", "half", "--", "-inf"]);
    assert_eq!(text(&out.stdout), "-inf\n", "{}", text(&out.stderr));
    rejects(&["run", &half, "-1", "--bogus"], "--bogus");
    rejects(&["run", &half, "-x"], "-x");
}

#[test]
fn depth_limit_option() {
    let rec = kernel("fact_rec.vm3");
    for tier in ["interp", "jit", "auto"] {
        let out = stitch(&["run", &rec, "12", "--tier", tier, "--depth-limit", "5"]);
        assert_eq!(out.status.code(), Some(1), "{tier}");
        assert_eq!(
            text(&out.stderr),
            "trap: call stack overflow in main at 2\n",
            "{tier}"
        );
        let out = stitch(&["run", &rec, "12", "--tier", tier, "--depth-limit", "12"]);
        assert_eq!(
            text(&out.stdout),
            "479001600\n",
            "{tier}: {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn dump_shows_bytecode_and_machine_code() {
    let file = kernel("mixed_call.vm3");
    let out = stitch(&["dump", &file]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    for mnemonic in [
        "ConstF64K",
        "ConstI64K",
        "CmpGtI64Br",
        "MovI64",
        "MovF64",
        "CallMixed",
        "AddI64K",
        "Jump",
        "CallF64",
        "ReturnF64",
        "I64ToF64",
        "AddF64",
    ] {
        assert!(stdout.contains(mnemonic), "no {mnemonic} in:\n{stdout}");
    }
    for func in ["func main", "func addk", "func ident", "prologue"] {
        assert!(stdout.contains(func), "no `{func}` in:\n{stdout}");
    }
    if cfg!(target_arch = "x86_64") {
        assert!(
            stdout.contains("ret") || stdout.contains("jmp"),
            "no disassembly in:\n{stdout}"
        );
    }
    // One function only.
    let out = stitch(&["dump", &file, "--entry", "addk"]);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("func addk") && !stdout.contains("func main"),
        "{stdout}"
    );
}

#[test]
fn quick_bench_prints_a_row() {
    let out = stitch(&["bench", "--quick", "--filter", "sum_loop"]);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("sum_loop") && l.contains('x')),
        "{stdout}"
    );
    assert!(stdout.lines().any(|l| l.starts_with("geomean")), "{stdout}");
}

/// Unbounded input (issue 10, item 7): `stitch run /dev/zero` read until memory ran
/// out. Files larger than `--max-file-bytes` (default 64 MiB) are refused, by `run` and
/// `dump`, with a message naming the flag; the flag raises the limit.
#[cfg(unix)]
#[test]
fn files_past_the_size_limit_are_refused() {
    rejects(&["run", "/dev/zero"], "larger than 67108864 bytes");
    rejects(
        &["dump", "/dev/zero"],
        "`--max-file-bytes` raises the limit",
    );
    let small = temp_file(
        "small.vm3",
        b"func main() -> i64\n    ReturnConstK 7\nend\n",
    );
    rejects(
        &["run", "--max-file-bytes", "10", &small],
        "larger than 10 bytes",
    );
    let out = stitch(&["run", "--max-file-bytes", "100", &small]);
    assert_eq!(text(&out.stdout), "7\n");
}

/// A byte-order mark (issue 10, item 8): a file some editors start with U+FEFF was
/// refused; it is skipped.
#[test]
fn a_byte_order_mark_is_skipped() {
    let path = temp_file(
        "bom.vm3",
        b"\xef\xbb\xbffunc main() -> i64\n    ReturnConstK 7\nend\n",
    );
    for tier in ["interp", "jit"] {
        let out = stitch(&["run", "--tier", tier, &path]);
        assert_eq!(text(&out.stdout), "7\n", "{}", text(&out.stderr));
    }
}

/// A result that cannot be printed (issue 10, items 1 and 2) ends with an error and
/// status 1 in both tiers, never a signal.
#[test]
fn unprintable_results_end_with_an_error() {
    let path = temp_file(
        "itself.vm3",
        b"func main() -> cell\n    NewList c0, 1\n    ListPushI64 c0, i0\n    ListSetCell c0, c0, i0\n    ReturnCell c0\nend\n",
    );
    for tier in ["interp", "jit"] {
        let out = stitch(&["run", "--tier", tier, &path]);
        assert_eq!(out.status.code(), Some(1), "{tier}");
        assert_eq!(
            text(&out.stderr),
            "error: the result contains a list that contains itself\n"
        );
    }
}

/// A `cell` parameter takes its argument's bytes as they are (issue 10, item 8: an
/// argument that is not UTF-8 could not reach one); a number parameter names the
/// argument it cannot read.
#[cfg(unix)]
#[test]
fn arguments_that_are_not_utf8_reach_cell_parameters() {
    use std::os::unix::ffi::OsStrExt;
    let path = temp_file(
        "echo.vm3",
        b"func main(cell) -> i64\n    LenStr i0, c0\n    ReturnI64 i0\nend\n",
    );
    let arg = std::ffi::OsStr::from_bytes(b"\xff\xfeab");
    for tier in ["interp", "jit"] {
        let out = stitch(&[
            "run".as_ref(),
            "--tier".as_ref(),
            tier.as_ref(),
            path.as_ref(),
            arg,
        ]);
        assert_eq!(text(&out.stdout), "4\n", "{tier}: {}", text(&out.stderr));
    }
    let ints = temp_file("int.vm3", b"func main(i64) -> i64\n    ReturnI64 i0\nend\n");
    let out = stitch(&["run".as_ref(), ints.as_ref(), arg]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("is not an integer"),
        "{}",
        text(&out.stderr)
    );
}

/// Issue 9: `--timeout 0.5` stops a loop that never ends, in each tier, with the trap
/// line and status 1; `--fuel` stops it at the same instruction in each tier.
#[test]
fn timeout_and_fuel_stop_an_endless_loop() {
    let spin = temp_file(
        "spin.vm3",
        b"func main() -> i64\nloop:\n    Jump loop\nend\n",
    );
    for tier in ["jit", "interp", "auto"] {
        let start = std::time::Instant::now();
        let out = stitch(&["run", &spin, "--timeout", "0.5", "--tier", tier]);
        let took = start.elapsed();
        assert_eq!(out.status.code(), Some(1), "{tier}");
        assert_eq!(
            text(&out.stderr),
            "trap: interrupted in main at 0\n",
            "{tier}"
        );
        // Reported, not asserted (a shared machine): the run stops once the timer fires.
        eprintln!("{tier}: --timeout 0.5 stopped the loop after {took:?}");
        let out = stitch(&["run", &spin, "--fuel", "100000", "--tier", tier]);
        assert_eq!(out.status.code(), Some(1), "{tier}");
        assert_eq!(
            text(&out.stderr),
            "trap: out of fuel in main at 0\n",
            "{tier}"
        );
    }
    for bad in ["0", "-1", "nan", "soon"] {
        let out = stitch(&["run", &spin, "--timeout", bad]);
        assert_eq!(out.status.code(), Some(2), "--timeout {bad}");
    }
}

/// Issue 10, item 5: a never-called function using `i65534` no longer lowers the
/// depth limit (recursion trapped at depth 2,046 whatever `--depth-limit` said).
#[test]
fn the_depth_limit_holds_with_a_huge_unused_frame() {
    let deep = temp_file(
        "deep.vm3",
        b"func main(i64) -> i64\n    CallI64 i1, i0, down\n    ReturnI64 i1\nend\n\
func down(i64) -> i64\n    CmpLeI64KBr i0, 0, base\n    SubI64K i1, i0, 1\n    CallI64 i2, i1, down\n    AddI64K i2, i2, 1\n    ReturnI64 i2\nbase:\n    ReturnI64 i0\nend\n\
func big() -> i64\n    ConstI64K i65534, 7\n    ReturnI64 i65534\nend\n",
    );
    for tier in ["jit", "interp", "auto"] {
        let out = stitch(&["run", &deep, "9000", "--tier", tier]);
        assert_eq!(text(&out.stdout), "9000\n", "{tier}: {}", text(&out.stderr));
        let out = stitch(&[
            "run",
            &deep,
            "500000",
            "--tier",
            tier,
            "--depth-limit",
            "1000000",
        ]);
        assert_eq!(
            text(&out.stdout),
            "500000\n",
            "{tier}: {}",
            text(&out.stderr)
        );
    }
}

/// Issue 9: `--code-limit BYTES` caps the executable memory; past it functions stay
/// interpreted and the result is the same (`--tier auto` per function, `--tier jit`
/// the whole program); a limit that is not a number is refused with status 2.
#[test]
fn a_code_limit_keeps_results_and_bad_limits_are_refused() {
    let fib = kernel("fib_rec.vm3");
    for tier in ["auto", "jit"] {
        for limit in ["0", "4096", "100000000"] {
            let out = stitch(&["run", &fib, "20", "--tier", tier, "--code-limit", limit]);
            assert_eq!(
                text(&out.stdout),
                "6765\n",
                "{tier} {limit}: {}",
                text(&out.stderr)
            );
        }
    }
    let out = stitch(&["run", &fib, "20", "--code-limit", "lots"]);
    assert_eq!(out.status.code(), Some(2));
}
