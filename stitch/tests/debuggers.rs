//! Profilers and debuggers see compiled code: `stitch run --gdb-jit` under `gdb -batch`
//! names the vm3 function that called a helper, and `stitch run --perf-map` under
//! `perf record` lets `perf report` name compiled functions.

use std::path::{Path, PathBuf};
use std::process::Command;

const STITCH: &str = env!("CARGO_BIN_EXE_stitch");

/// `main` calls `make`, whose `NewList` calls the runtime's `vm3_new_list` (through its
/// register-preserving thunk).
const CALLS_A_HELPER: &str = "\
func main(i64) -> i64
    MovI64      i1, i0
    CallI64     i2, i1, make
    ReturnI64   i2
end

func make(i64) -> i64
    NewList     c0, 0
    ListPushI64 c0, i0
    ListLenI64  i1, c0
    ReturnI64   i1
end
";

fn program_file(name: &str, source: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&path, source).unwrap();
    path
}

/// Whether `tool --version` runs; if not, says so on standard error.
fn have(tool: &str) -> bool {
    let found = Command::new(tool).arg("--version").output().is_ok();
    if !found {
        eprintln!("SKIPPED: `{tool}` is not installed (./test.sh installs it)");
    }
    found
}

/// `stitch run PROGRAM 5` under `gdb -batch`, stopped in the helper `vm3_new_list` for a
/// backtrace, with or without `--gdb-jit`.
fn gdb_backtrace_in_new_list(program: &Path, gdb_jit: bool) -> std::process::Output {
    let mut run = vec!["run"];
    if gdb_jit {
        run.push("--gdb-jit");
    }
    Command::new("gdb")
        .args([
            "-batch",
            "-nx",
            "-ex",
            "break vm3_new_list",
            "-ex",
            "run",
            "-ex",
            "bt",
        ])
        .arg("--args")
        .arg(STITCH)
        .args(run)
        .arg(program)
        .arg("5")
        .output()
        .expect("cannot start gdb")
}

/// The frames of a `bt`, one per line, from `#0`.
fn frames(output: &str) -> Vec<&str> {
    output.lines().filter(|l| l.starts_with('#')).collect()
}

#[test]
fn gdb_backtrace_in_a_helper_names_the_vm3_function_that_called_it() {
    if !have("gdb") {
        return;
    }
    let program = program_file("calls_a_helper.vm3", CALLS_A_HELPER);
    let output = gdb_backtrace_in_new_list(&program, true);
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let stack = frames(&text);
    assert!(
        stack.first().is_some_and(|f| f.contains("vm3_new_list")),
        "gdb did not stop in the helper:\n{text}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Below the helper and its thunk, the first frame is compiled code: `make`'s.
    let caller = stack
        .iter()
        .find(|f| !f.contains("vm3_new_list"))
        .expect("a frame below the helper");
    assert!(
        caller.contains(" in make ("),
        "caller frame: {caller}\n{text}"
    );
}

#[test]
fn gdb_sees_no_symbols_for_compiled_code_without_the_option() {
    if !have("gdb") {
        return;
    }
    let program = program_file("calls_a_helper_plain.vm3", CALLS_A_HELPER);
    let output = gdb_backtrace_in_new_list(&program, false);
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let stack = frames(&text);
    assert!(stack.len() > 2, "no backtrace:\n{text}");
    assert!(!text.contains(" in make ("), "{text}");
}

#[test]
fn perf_report_names_compiled_functions() {
    if !have("perf") {
        return;
    }
    let kernel = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/kernels/fib_rec.vm3");
    let data = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fib_rec.perf.data");
    let record = Command::new("perf")
        .args(["record", "-q", "-o"])
        .arg(&data)
        .args(["--", STITCH, "run", "--perf-map"])
        .arg(&kernel)
        .arg("30")
        .output()
        .expect("cannot start perf");
    if !record.status.success() {
        // perf_event_open is often refused in containers (perf_event_paranoid, seccomp).
        eprintln!(
            "SKIPPED: this machine does not allow `perf record`:\n{}",
            String::from_utf8_lossy(&record.stderr)
        );
        return;
    }
    assert_eq!(String::from_utf8_lossy(&record.stdout).trim(), "832040");
    let report = Command::new("perf")
        .args(["report", "--stdio", "--sort", "sym", "-i"])
        .arg(&data)
        .output()
        .expect("cannot start perf report");
    let text = String::from_utf8_lossy(&report.stdout).into_owned();
    // fib(30) spends nearly all its time in compiled `fib`.
    assert!(
        text.lines().any(|l| l.contains("[.] fib")),
        "perf report does not name `fib`:\n{text}"
    );
}
