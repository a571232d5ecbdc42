//! Compile throughput on large programs: `cargo run --release -p jit --example compile_speed`.
//! Builds programs of 1 to 1000 copies of several kernels (functions renamed, callee
//! indexes shifted), compiles each repeatedly and reports instructions and machine-code
//! bytes per second, so the per-region fixed cost and the per-instruction cost separate.
//!
//! `COMPILE_SPEED_RUNS=N` compiles each size exactly N times instead of for half a
//! second: for counting instructions under `valgrind --tool=callgrind`, which gives the
//! same count on a busy machine where timings do not repeat.
use std::time::Instant;
use vm3::{OperandKind, Program};

fn main() {
    let kernels = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/kernels");
    let parts: Vec<Program> = [
        "collatz",
        "mandel_row",
        "fib_rec",
        "gcd_tail",
        "mixed_call",
        "lookup",
    ]
    .iter()
    .map(|name| {
        let text = std::fs::read_to_string(kernels.join(format!("{name}.vm3"))).expect("kernel");
        vm3::asm::assemble(&text, name).expect("assemble")
    })
    .collect();
    let fixed_runs: Option<u32> = std::env::var("COMPILE_SPEED_RUNS")
        .ok()
        .map(|n| n.parse().expect("COMPILE_SPEED_RUNS is a number"));
    for copies in [1usize, 10, 100, 1000] {
        let mut big = Program::default();
        for k in 0..copies {
            for part in &parts {
                let offset = big.functions.len() as i16;
                for func in &part.functions {
                    let mut func = func.clone();
                    func.name = format!("{}_{k}_{offset}", func.name);
                    for inst in &mut func.code {
                        let info = vm3::Opcode::from_u8(inst.code).expect("opcode").info();
                        if info
                            .operands
                            .iter()
                            .any(|(_, kind)| *kind == OperandKind::Callee)
                        {
                            inst.c += offset;
                        }
                    }
                    big.functions.push(func);
                }
            }
        }
        let program = big.verify().expect("verify");
        let insts: usize = program.functions.iter().map(|f| f.code.len()).sum();
        let engine = jit::Engine::default();
        let start = Instant::now();
        let (mut runs, mut bytes) = (0, 0);
        while match fixed_runs {
            Some(n) => runs < n,
            None => start.elapsed().as_millis() < 500 || runs < 3,
        } {
            bytes = jit::Module::new(&engine, &program)
                .expect("compile")
                .code_bytes();
            runs += 1;
        }
        let secs = start.elapsed().as_secs_f64() / runs as f64;
        println!(
            "{copies:5} copies: {insts:7} instructions, {bytes:8} code bytes, {:9.1} us/compile ({runs} runs), {:6.1} M inst/s, {:6.1} MB/s",
            secs * 1e6,
            insts as f64 / secs / 1e6,
            bytes as f64 / secs / 1e6
        );
    }
}
