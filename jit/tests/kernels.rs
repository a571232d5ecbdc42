//! Every kernel of `../shared/kernels` gives its expected result in both tiers
//! (kernels README: "Every kernel must give the same result interpreted and compiled").

use jit::{CompiledProgram, Config};
use std::path::PathBuf;
use vm3::{RunError, Value};

fn kernels_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/kernels")
}

/// `; run: ARGS => EXPECTED` lines of a kernel.
fn run_lines(source: &str) -> Vec<(Vec<String>, String)> {
    source
        .lines()
        .filter_map(|l| l.trim().strip_prefix("; run:"))
        .map(|l| {
            let (args, expected) = l.split_once("=>").expect("run line has =>");
            let args = args
                .split(',')
                .map(|a| a.trim().to_string())
                .filter(|a| !a.is_empty())
                .collect();
            (args, expected.trim().to_string())
        })
        .collect()
}

fn outcome(result: Result<Value, RunError>) -> String {
    match result {
        Ok(v) => v.to_string(),
        Err(e) => e.to_string(),
    }
}

#[test]
fn kernels_match_their_expected_results_in_both_tiers() {
    let mut checked = 0;
    let mut entries: Vec<_> = std::fs::read_dir(kernels_dir())
        .expect("kernels dir")
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "vm3"))
    {
        let source = std::fs::read_to_string(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let program =
            vm3::asm::assemble(&source, &name).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        let program = program.verify().unwrap_or_else(|e| panic!("{name}: {e:?}"));
        let compiled = CompiledProgram::new(&program).unwrap_or_else(|e| panic!("{name}: {e}"));
        let entry = &program.functions[program.function_index("main").unwrap()];
        for (args, expected) in run_lines(&source) {
            let args: Vec<Value> = args
                .iter()
                .zip(&entry.params)
                .map(|(a, bank)| match bank {
                    vm3::Bank::I64 => Value::I64(a.parse().unwrap()),
                    vm3::Bank::F64 => Value::F64(a.parse().unwrap()),
                    vm3::Bank::Cell => Value::Str(a.clone()),
                })
                .collect();
            let config = Config::default();
            let interp = outcome(vm3::interp::run(&program, "main", &args, &config));
            let jit = outcome(compiled.run("main", &args, &config));
            assert_eq!(interp, expected, "{name} {args:?} interpreted");
            assert_eq!(jit, expected, "{name} {args:?} compiled");
            checked += 1;
        }
    }
    assert!(checked >= 25, "only {checked} kernel runs checked");
}
