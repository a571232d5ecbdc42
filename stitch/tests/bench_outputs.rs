//! `stitch bench --json FILE --svg FILE` writes both files from the run it prints (one
//! quick program; no time is asserted, only that the files describe that run).

use std::process::Command;

#[test]
fn bench_writes_json_and_svg() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let (json, svg) = (dir.join("bench.json"), dir.join("bench.svg"));
    let output = Command::new(env!("CARGO_BIN_EXE_stitch"))
        .args(["bench", "--quick", "--filter", "fib_iter", "--json"])
        .arg(&json)
        .arg("--svg")
        .arg(&svg)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let programs = report["programs"].as_array().unwrap();
    assert_eq!(programs.len(), 1);
    assert_eq!(programs[0]["program"], "fib_iter");
    for tier in ["interp_seconds", "jit_seconds", "native_seconds"] {
        assert!(
            programs[0][tier].as_f64().unwrap() > 0.0,
            "{tier}: {report}"
        );
    }
    // The geomeans of one program are its own numbers.
    let (geomean, jit) = (
        &report["geomean"]["jit_seconds"],
        &programs[0]["jit_seconds"],
    );
    let relative = (geomean.as_f64().unwrap() / jit.as_f64().unwrap() - 1.0).abs();
    assert!(relative < 1e-9, "{report}");
    let picture = std::fs::read_to_string(&svg).unwrap();
    assert!(picture.starts_with("<svg") && picture.trim_end().ends_with("</svg>"));
    assert!(picture.contains("\nfib_iter\n</text>"));
}

#[test]
fn bench_refuses_an_unwritable_output_before_measuring() {
    let output = Command::new(env!("CARGO_BIN_EXE_stitch"))
        .args(["bench", "--svg", "/no/such/directory/bench.svg"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot write /no/such/directory/bench.svg"),
        "{stderr}"
    );
    // Refused before the suite ran: not even the table's heading was printed.
    assert!(
        output.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
}
