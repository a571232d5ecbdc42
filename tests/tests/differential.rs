//! Differential testing: random verifier-valid programs (see `vm3_tests::gen`) must
//! give the same outcome in the interpreter and in compiled code (spec §3: "The
//! interpreter and compiled code report the same trap at the same place"), with the
//! same result bits (spec §1: "both tiers must agree bit for bit").
//!
//! `VM3_DIFF_CASES` sets the number of cases (default 3000), `VM3_DIFF_SEED` the base
//! seed (default: from the clock; always printed). Case `i` uses seed `base + i`, so a
//! failure names a seed that reproduces it alone:
//! `VM3_DIFF_SEED=<seed> VM3_DIFF_CASES=1 cargo test -p vm3-tests --test differential`.

use jit::CompileOptions as Options;
use jit::{CodeReport, Engine, EngineOptions, Limits, Module, Store, Tier, TierUp};
use std::collections::BTreeMap;
use std::sync::Mutex;
use vm3::interp::Config;
use vm3::{RunError, Value};
use vm3_tests::compare::Compiled as CompiledProgram;
use vm3_tests::compare::{difference, env_u64, same_outcome, show};
use vm3_tests::gen::{self, Case};

fn failure(
    case: &Case,
    what: &str,
    expected: &Result<Value, RunError>,
    got: &Result<Value, RunError>,
) -> String {
    format!(
        "tiers disagree on seed {seed} ({what})\n  interpreter: {}\n  compiled:    {}\n  entry {} with arguments {:?}\n  reproduce: VM3_DIFF_SEED={seed} VM3_DIFF_CASES=1 cargo test -p vm3-tests --test differential\n\n{}",
        show(expected),
        show(got),
        case.entry,
        case.args,
        vm3::asm::to_text(&case.program),
        seed = case.seed,
    )
}

/// Outcome counts, for the summary line.
#[derive(Default)]
struct Stats {
    outcomes: BTreeMap<String, u64>,
    /// Cases also run with other compile options.
    other_options: u64,
    /// What the tier-up runs did, summed over the cases' engines.
    tier_up: CodeReport,
}

/// A tier-up threshold drawn from `seed`: 0, 1, small, or never (issue 9: "random
/// thresholds (0, 1, small, never)").
fn threshold(seed: u64) -> u32 {
    match seed % 4 {
        0 => 0,
        1 => 1,
        2 => 2 + (seed / 4 % 6) as u32,
        _ => TierUp::NEVER,
    }
}

/// Runs the case twice under `Tier::Auto` with thresholds drawn from its seed (the
/// second run finds what the first compiled) and checks both against the interpreter's
/// outcome. Returns the engine's report.
fn check_tier_up(
    case: &Case,
    program: &vm3::VerifiedProgram,
    expected: &Result<Value, RunError>,
) -> CodeReport {
    let mut options = EngineOptions::default();
    options.tier = Tier::Auto;
    options.tier_up = TierUp {
        calls: threshold(case.seed / 3),
        back_edges: threshold(case.seed / 17),
    };
    let engine = Engine::new(options);
    let module = Module::new(&engine, program).expect("a verified program compiles");
    let mut limits = Limits::default();
    limits.depth_limit = gen::DEPTH_LIMIT;
    limits.heap_limit = case.heap_limit;
    let mut store = Store::with_limits(&engine, limits);
    let func = module.func(&case.entry).expect("the entry exists");
    for run in ["first", "second"] {
        let got = func.call(&mut store, &case.args);
        let what = format!("Tier::Auto with {:?}, {run} run", options.tier_up);
        assert!(
            same_outcome(expected, &got),
            "{}",
            failure(case, &what, expected, &got)
        );
    }
    engine.code_report()
}

fn add(total: &mut CodeReport, report: &CodeReport) {
    total.compiled_functions += report.compiled_functions;
    total.calls_into_compiled += report.calls_into_compiled;
    total.calls_into_interpreter += report.calls_into_interpreter;
    total.osr_entries += report.osr_entries;
    total.deopts += report.deopts;
    if report.last_compile_error.is_some() {
        total.last_compile_error = report.last_compile_error.clone();
    }
}

/// Generates, verifies and runs one case in the interpreter and compiled with default
/// options, and also with `options` if given, and under tier-up. Returns the outcome's
/// kind and the tier-up engine's report.
fn check(seed: u64, options: Option<Options>) -> (String, CodeReport) {
    let case = gen::generate(seed);
    let program = match case.program.clone().verify() {
        Ok(p) => p,
        Err(errors) => {
            let errors: Vec<String> = errors.iter().map(|e| format!("  {e}")).collect();
            panic!(
                "generator bug: the program of seed {seed} does not verify:\n{}\n\n{}",
                errors.join("\n"),
                gen::listing(&case.program)
            )
        }
    };
    let config = Config {
        depth_limit: gen::DEPTH_LIMIT,
        heap_limit: case.heap_limit,
    };
    let expected = vm3::interp::run(&program, &case.entry, &case.args, &config);
    if let Err(RunError::Arguments(e)) = &expected {
        panic!("generator bug: seed {seed}: {e}");
    }
    let compiled = CompiledProgram::new(&program).unwrap_or_else(|e| {
        panic!(
            "seed {seed}: compiling a verified program failed: {e}\n\n{}",
            gen::listing(&case.program)
        )
    });
    let got = compiled.run(&case.entry, &case.args, &config);
    assert!(
        same_outcome(&expected, &got),
        "{}",
        failure(&case, "CompiledProgram::new", &expected, &got)
    );
    if let Some(options) = options {
        let compiled = CompiledProgram::with_options(&program, options)
            .unwrap_or_else(|e| panic!("seed {seed}: compiling with {options:?} failed: {e}"));
        let got = compiled.run(&case.entry, &case.args, &config);
        assert!(
            same_outcome(&expected, &got),
            "{}",
            failure(&case, &format!("{options:?}"), &expected, &got)
        );
    }
    let report = check_tier_up(&case, &program, &expected);
    let kind = match expected {
        Ok(_) => "value".to_string(),
        Err(RunError::Trap(t)) => t.trap.message().to_string(),
        Err(RunError::Result(_)) => "result refused".to_string(),
        Err(RunError::Resources(_)) => "resources refused".to_string(),
        Err(RunError::Arguments(_)) => unreachable!("refused above"),
    };
    (kind, report)
}

#[test]
fn tiers_agree_on_generated_programs() {
    let cases = env_u64("VM3_DIFF_CASES").unwrap_or(3000);
    let base = env_u64("VM3_DIFF_SEED").unwrap_or_else(|| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        t.as_nanos() as u64 % 1_000_000_000_000
    });
    eprintln!("differential: {cases} cases from base seed {base} (VM3_DIFF_SEED={base} reproduces this run)");
    let start = std::time::Instant::now();
    let stats = Mutex::new(Stats::default());
    // Two workers: the machine's cores. Case i goes to worker i % 2.
    let workers = 2;
    std::thread::scope(|s| {
        for w in 0..workers {
            let stats = &stats;
            s.spawn(move || {
                for i in (w..cases).step_by(workers as usize) {
                    let seed = base.wrapping_add(i);
                    // One case in 8 also compiles with every helper behind a
                    // trampoline and the baseline CPU (FmaF64 through its helper),
                    // another with the baseline CPU alone.
                    #[allow(clippy::needless_update)] // Options may grow fields.
                    let options = match seed % 8 {
                        0 => Some(Options {
                            force_trampolines: true,
                            baseline_cpu: true,
                            ..Options::default()
                        }),
                        4 => Some(Options {
                            baseline_cpu: true,
                            ..Options::default()
                        }),
                        _ => None,
                    };
                    let (kind, report) = check(seed, options);
                    let mut st = stats.lock().unwrap_or_else(|e| e.into_inner());
                    *st.outcomes.entry(kind).or_default() += 1;
                    add(&mut st.tier_up, &report);
                    st.other_options += options.is_some() as u64;
                }
            });
        }
    });
    let stats = stats.into_inner().unwrap();
    eprintln!(
        "differential: {cases} cases agree in {:.2?} ({} also with other compile options); outcomes {:?}",
        start.elapsed(),
        stats.other_options,
        stats.outcomes
    );
    // The tier-up runs really mixed tiers over the set (not on every program): issue 9,
    // "so that runs really mix tiers, enter loops through on-stack replacement and
    // deopt back".
    let t = &stats.tier_up;
    eprintln!("differential: tier-up {t:?}");
    assert_eq!(t.last_compile_error, None);
    if cases >= 200 {
        assert!(t.compiled_functions > 0, "{t:?}");
        assert!(t.calls_into_compiled > 0, "{t:?}");
        assert!(t.calls_into_interpreter > 0, "{t:?}");
        assert!(t.osr_entries > 0, "{t:?}");
        assert!(t.deopts > 0, "{t:?}");
    }
}

/// Generated programs survive printing and assembling again (`to_text` promises an
/// equal program for every verified program with identifier names).
#[test]
fn generated_programs_round_trip_through_text() {
    let cases = env_u64("VM3_DIFF_CASES").unwrap_or(3000).min(1000);
    let base = env_u64("VM3_DIFF_SEED").unwrap_or(0);
    for i in 0..cases {
        let seed = base.wrapping_add(i);
        let case = gen::generate(seed);
        let text = vm3::asm::to_text(&case.program);
        let back = vm3::asm::assemble(&text, "generated.vm3").unwrap_or_else(|errors| {
            let errors: Vec<String> = errors.iter().map(|e| format!("  {e}")).collect();
            panic!(
                "seed {seed}: the printed program does not assemble:\n{}\n\n{text}",
                errors.join("\n")
            )
        });
        if let Some(diff) = difference(&case.program, &back) {
            panic!("seed {seed}: printing and assembling changed the program: {diff}\n\n{text}");
        }
    }
}

/// One listing of outcomes for `compare::CROSS_TARGET_SEEDS`, written to the file
/// `VM3_OUTCOMES_OUT` names: tests/tests/aarch64_qemu.rs has this run under QEMU write
/// it and compares it line by line with the host's (issue 10, item 9). Without the
/// variable it checks only that the listing is complete.
#[test]
fn outcomes_for_the_cross_target_comparison() {
    let lines = vm3_tests::compare::outcome_lines(vm3_tests::compare::CROSS_TARGET_SEEDS);
    assert_eq!(lines.len(), vm3_tests::compare::CROSS_TARGET_SEEDS.count());
    if let Some(path) = std::env::var_os("VM3_OUTCOMES_OUT") {
        std::fs::write(&path, lines.join("\n") + "\n").expect("write the outcome listing");
    }
}
