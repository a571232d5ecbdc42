//! The kernels of `../shared/kernels`, assembled and verified, with their `; run: ARGS
//! => EXPECTED` lines parsed by the entry's parameter banks (kernels README). Shared by
//! the tests that run them with the host's table and with other targets' tables.

use std::path::PathBuf;
use vm3::{Bank, RunError, Value, VerifiedProgram};

pub struct Kernel {
    /// The file name, for messages.
    pub name: String,
    pub program: VerifiedProgram,
    /// Each `; run:` line: the arguments of `main` and what the CLI prints.
    pub runs: Vec<(Vec<Value>, String)>,
}

/// Every kernel, in file-name order: the shared acceptance set, then this crate's own
/// (`jit/tests/programs`, programs aimed at the patcher, in the same format). A kernel
/// that does not assemble or verify, or a malformed run line, fails the test.
pub fn kernels() -> Vec<Kernel> {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    [
        manifest.join("../../shared/kernels"),
        manifest.join("tests/programs"),
    ]
    .iter()
    .flat_map(|dir| {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "vm3"))
            .collect();
        paths.sort();
        paths
    })
    .map(|p| load(&p))
    .collect()
}

fn load(path: &PathBuf) -> Kernel {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let source = std::fs::read_to_string(path).unwrap();
    let program = vm3::asm::assemble(&source, &name)
        .unwrap_or_else(|e| panic!("{name}: {e:?}"))
        .verify()
        .unwrap_or_else(|e| panic!("{name}: {e:?}"));
    let params = program.functions[program.function_index("main").unwrap()]
        .params
        .clone();
    let runs = source
        .lines()
        .filter_map(|l| l.trim().strip_prefix("; run:"))
        .map(|l| {
            let (args, expected) = l.split_once("=>").expect("run line has =>");
            let args = args
                .split(',')
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .zip(&params)
                .map(|(a, bank)| match bank {
                    Bank::I64 => Value::I64(a.parse().unwrap()),
                    Bank::F64 => Value::F64(a.parse().unwrap()),
                    // A cell parameter takes its argument as a string, as on the CLI.
                    Bank::Cell => Value::Str(a.to_string()),
                })
                .collect();
            (args, expected.trim().to_string())
        })
        .collect();
    Kernel {
        name,
        program,
        runs,
    }
}

/// A run's outcome as the CLI prints it: the value, or the trap line.
pub fn outcome(result: Result<Value, RunError>) -> String {
    match result {
        Ok(v) => v.to_string(),
        Err(e) => e.to_string(),
    }
}
