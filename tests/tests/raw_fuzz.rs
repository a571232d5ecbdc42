//! Unstructured fuzzing of the verifier/tier boundary (spec §3, §4): programs built
//! from raw, randomly biased instructions (`vm3_tests::raw`) are verified, and
//!
//! - the verifier must never panic, and must reject exactly the functions and
//!   instructions an independent model of spec §4 (`raw::expected_errors`) rejects,
//!   with errors that name the function and the instruction, in order;
//! - a rejected program cannot reach either tier: both take a `VerifiedProgram`, which
//!   only `Program::verify` makes, so "rejected" means "cannot run"; printing it and
//!   assembling the text must not panic either;
//! - an accepted program with distinct identifier names prints (`vm3::asm::to_text`)
//!   and assembles back to an equal program. Exception, counted in the summary: the
//!   verifier accepts any value in a field the opcode does not use, which the text
//!   format cannot write, so such programs come back with those fields zeroed;
//! - an accepted program that is sure to terminate (`raw::runnable`: no loop in the
//!   control flow its entry can reach, no cycle of tail calls alone, recursion ends at
//!   the depth limit) runs in the interpreter and compiled, without a panic, with the
//!   same result bits or the same trap at the same function and instruction (or the
//!   same refusal of the entry's arguments).
//!
//! `VM3_RAW_CASES` sets the number of programs (default 5000), `VM3_RAW_SEED` the base
//! seed (default: from the clock; always printed). Program `i` uses seed `base + i`:
//! `VM3_RAW_SEED=<seed> VM3_RAW_CASES=1 cargo test -p vm3-tests --test raw_fuzz`
//! reproduces one. `VM3_RAW_TRACE=1` prints each seed before it runs, to name the
//! program if the process itself dies.

use jit::CompileOptions as Options;
use std::collections::{BTreeMap, BTreeSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Mutex;
use vm3::interp::Config;
use vm3::{Program, RunError};
use vm3_tests::compare::Compiled as CompiledProgram;
use vm3_tests::compare::{difference, env_u64, same_outcome, show};
use vm3_tests::raw::{self, RawCase};

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "(non-string panic)".to_string()
    }
}

/// The program for a report: its text if the printer manages, and its raw instructions.
fn listing(program: &Program) -> String {
    let text = catch_unwind(|| vm3::asm::to_text(program))
        .unwrap_or_else(|p| format!("(to_text panicked: {})\n", panic_message(&*p)));
    format!("{text}\nraw:\n{}", raw::raw_listing(program))
}

fn report(case: &RawCase, what: &str) -> String {
    format!(
        "seed {seed}: {what}\n  entry {} with arguments {:?}, depth limit {} (error rate {}‰)\n  reproduce: VM3_RAW_SEED={seed} VM3_RAW_CASES=1 cargo test --release -p vm3-tests --test raw_fuzz\n\n{}",
        case.entry,
        case.args,
        case.depth_limit,
        case.error_rate,
        listing(&case.program),
        seed = case.seed,
    )
}

/// What happened to one program.
enum Verdict {
    Rejected(Vec<&'static str>),
    /// Accepted, not run, and why; whether the text round trip needed unused fields
    /// zeroed.
    Skipped(&'static str, bool),
    /// Accepted and run: the outcome's kind, whether other compile options ran too,
    /// whether the round trip needed unused fields zeroed, and what it contains.
    Ran(String, bool, bool, Vec<&'static str>),
}

/// A short name for a verifier error's reason, for the summary.
fn category(reason: &str) -> &'static str {
    const KEYS: &[(&str, &str)] = &[
        ("unknown opcode", "unknown opcode"),
        ("flags", "flags"),
        ("branch target", "branch target"),
        ("constant #", "constant index"),
        ("expects", "constant kind"),
        ("table #", "table index"),
        ("function index", "callee index"),
        ("passes only", "callee parameters"),
        ("argument", "argument register"),
        ("'s X", "FmaF64 register"),
        ("'s Y", "FmaF64 register"),
        ("register", "register"),
        ("tail call to", "tail call result"),
        ("destination", "call result"),
        ("returns", "return bank"),
        ("fall off", "falls off the end"),
        ("empty", "empty function"),
        ("too many", "register count"),
    ];
    KEYS.iter()
        .find(|(k, _)| reason.contains(k))
        .map(|(_, c)| *c)
        .unwrap_or("other")
}

/// Checks one program; `Err` describes a failure.
fn check(seed: u64, trace: bool) -> Result<Verdict, String> {
    if trace {
        eprintln!("raw_fuzz: seed {seed}");
    }
    let case = raw::generate(seed);
    let program = &case.program;
    let expected = raw::expected_errors(program);
    let verdict = catch_unwind(|| program.clone().verify()).map_err(|p| {
        report(
            &case,
            &format!("the verifier panicked: {}", panic_message(&*p)),
        )
    })?;
    let verified = match verdict {
        Err(errors) => return check_rejected(&case, &expected, &errors),
        Ok(v) => v,
    };
    if !expected.is_empty() {
        return Err(report(
            &case,
            &format!(
                "verifier gap: accepted, but spec §4 rejects {expected:?} (function, instruction)"
            ),
        ));
    }
    let unused = check_round_trip(&case)?;
    if let Err(why) = raw::runnable(program, &case.entry, case.depth_limit) {
        return Ok(Verdict::Skipped(why, unused));
    }

    if trace {
        eprintln!("raw_fuzz: running seed {seed} in both tiers");
    }
    let config = Config {
        depth_limit: case.depth_limit,
        ..Config::default()
    };
    let expected = catch_unwind(|| vm3::interp::run(&verified, &case.entry, &case.args, &config))
        .map_err(|p| {
        report(
            &case,
            &format!("the interpreter panicked: {}", panic_message(&*p)),
        )
    })?;
    let run_compiled = |options: Options| -> Result<(), String> {
        let compiled = catch_unwind(|| CompiledProgram::with_options(&verified, options))
            .map_err(|p| {
                report(
                    &case,
                    &format!(
                        "the JIT panicked compiling with {options:?}: {}",
                        panic_message(&*p)
                    ),
                )
            })?
            .map_err(|e| {
                report(
                    &case,
                    &format!("compiling a verified program with {options:?} failed: {e}"),
                )
            })?;
        let got = catch_unwind(AssertUnwindSafe(|| {
            compiled.run(&case.entry, &case.args, &config)
        }))
        .map_err(|p| {
            report(
                &case,
                &format!(
                    "running compiled code ({options:?}) panicked: {}",
                    panic_message(&*p)
                ),
            )
        })?;
        if !same_outcome(&expected, &got) {
            return Err(report(
                &case,
                &format!(
                    "tiers disagree ({options:?})\n  interpreter: {}\n  compiled:    {}",
                    show(&expected),
                    show(&got)
                ),
            ));
        }
        Ok(())
    };
    run_compiled(Options::default())?;
    // One program in 8 also with every helper behind a trampoline and the baseline CPU.
    let others = seed % 8 == 3;
    #[allow(clippy::needless_update)] // Options may grow fields.
    if others {
        run_compiled(Options {
            force_trampolines: true,
            baseline_cpu: true,
            ..Options::default()
        })?;
    }
    let kind = match &expected {
        Ok(v) => format!("value {}", v.bank().name()),
        Err(RunError::Trap(t)) => t.trap.message().to_string(),
        Err(RunError::Arguments(_)) => "arguments refused".to_string(),
        Err(RunError::Result(_)) => "result refused".to_string(),
        Err(RunError::Resources(_)) => "resources refused".to_string(),
    };
    let mut features = raw::features(program);
    if case.args.iter().any(|a| {
        matches!(
            a,
            vm3::Value::Str(_) | vm3::Value::List(_) | vm3::Value::Map(_)
        )
    }) {
        features.push("object argument");
    }
    features.push(match case.depth_limit {
        raw::DEPTH_LIMIT => "depth limit 32",
        0..=3 => "depth limit 0 to 3",
        10_000 => "depth limit 10000",
        _ => "other depth limit",
    });
    Ok(Verdict::Ran(kind, others, unused, features))
}

/// A rejected program: errors name a function and (for instruction faults) an
/// instruction that exist, come in order, and are exactly where the model says; the
/// printer and the assembler survive it.
fn check_rejected(
    case: &RawCase,
    expected: &BTreeSet<(usize, Option<u32>)>,
    errors: &[vm3::VerifyError],
) -> Result<Verdict, String> {
    let program = &case.program;
    let fail = |what: String| {
        let errors: Vec<String> = errors.iter().map(|e| format!("  {e}")).collect();
        Err(report(
            case,
            &format!("{what}\n  verifier errors:\n{}", errors.join("\n")),
        ))
    };
    if errors.is_empty() {
        return fail("verify failed with no error".to_string());
    }
    let mut last = (0usize, -1i64);
    let mut found = BTreeSet::new();
    let mut categories = Vec::new();
    for e in errors {
        let Some(func) = program.functions.get(e.func) else {
            return fail(format!(
                "an error names function #{}, which does not exist",
                e.func
            ));
        };
        if e.function != func.name {
            return fail(format!(
                "an error of function #{} names it `{}`, not `{}`",
                e.func, e.function, func.name
            ));
        }
        if let Some(i) = e.index {
            if i as usize >= func.code.len() {
                return fail(format!(
                    "an error names instruction {i} of `{}`, which has {}",
                    func.name,
                    func.code.len()
                ));
            }
        }
        let text = e.to_string();
        let prefix = match e.index {
            Some(i) => format!("function {}, instruction {i}: ", func.name),
            None => format!("function {}: ", func.name),
        };
        if !text.starts_with(&prefix) || e.reason.trim().is_empty() {
            return fail(format!("an error does not read `{prefix}REASON`: {text:?}"));
        }
        let at = (e.func, e.index.map_or(-1, |i| i as i64));
        if at < last {
            return fail("errors are not in function then instruction order".to_string());
        }
        last = at;
        found.insert((e.func, e.index));
        categories.push(category(&e.reason));
    }
    if &found != expected {
        let missed: Vec<_> = expected.difference(&found).collect();
        let extra: Vec<_> = found.difference(expected).collect();
        return fail(format!(
            "the verifier's errors are not where spec §4 puts them: missed {missed:?}, unexpected {extra:?} (function, instruction)"
        ));
    }
    // The printer prints anything; the assembler reads anything back without panicking.
    let text = catch_unwind(|| vm3::asm::to_text(program));
    let text = match text {
        Ok(t) => t,
        Err(p) => {
            return fail(format!(
                "to_text panicked on a rejected program: {}",
                panic_message(&*p)
            ))
        }
    };
    if let Err(p) = catch_unwind(|| vm3::asm::assemble(&text, "rejected.vm3")) {
        return fail(format!(
            "assemble panicked on a printed rejected program: {}\n\n{text}",
            panic_message(&*p)
        ));
    }
    categories.sort();
    categories.dedup();
    Ok(Verdict::Rejected(categories))
}

/// An accepted program whose names are distinct identifiers prints and assembles back
/// to an equal program, which prints the same text again. Returns whether that holds only with unused fields zeroed.
fn check_round_trip(case: &RawCase) -> Result<bool, String> {
    let program = &case.program;
    if !case.plain_names {
        // No promise: printing and reading back must merely not panic.
        let text = catch_unwind(|| vm3::asm::to_text(program))
            .map_err(|p| report(case, &format!("to_text panicked: {}", panic_message(&*p))))?;
        let _assembled = catch_unwind(|| vm3::asm::assemble(&text, "raw.vm3")).map_err(|p| {
            report(
                case,
                &format!("assemble panicked: {}\n\n{text}", panic_message(&*p)),
            )
        })?;
        return Ok(false);
    }
    let text = catch_unwind(|| vm3::asm::to_text(program))
        .map_err(|p| report(case, &format!("to_text panicked: {}", panic_message(&*p))))?;
    let back = match vm3::asm::assemble(&text, "raw.vm3") {
        Ok(p) => p,
        Err(errors) => {
            let errors: Vec<String> = errors.iter().map(|e| format!("  {e}")).collect();
            return Err(report(
                case,
                &format!(
                    "the printed program does not assemble:\n{}\n\n{text}",
                    errors.join("\n")
                ),
            ));
        }
    };
    let mut unused = false;
    if let Some(diff) = difference(program, &back) {
        // Fields an opcode does not use verify whatever they hold, but the text
        // format cannot write them: that difference alone is counted, not failed.
        if let Some(zeroed) = raw::without_unused_fields(program) {
            if difference(&zeroed, &back).is_none() {
                unused = true;
            }
        }
        if !unused {
            return Err(report(
                case,
                &format!("printing and assembling changed the program: {diff}\n\n{text}"),
            ));
        }
    }
    // The same with every run of label lines joined into one line (issue 10: a line of
    // many labels was quadratic to assemble).
    if program.functions.iter().any(|f| f.labels.len() > 1) {
        let joined = labels_on_one_line(&text);
        match vm3::asm::assemble(&joined, "raw-joined.vm3") {
            Ok(p) => {
                if let Some(diff) = difference(&back, &p) {
                    return Err(report(
                        case,
                        &format!("joining label lines changed the program: {diff}"),
                    ));
                }
            }
            Err(errors) => {
                let errors: Vec<String> = errors.iter().take(5).map(|e| format!("  {e}")).collect();
                return Err(report(
                    case,
                    &format!(
                        "with its labels on one line the program does not assemble:\n{}",
                        errors.join("\n")
                    ),
                ));
            }
        }
    }
    let again = vm3::asm::to_text(&back);
    if again != text {
        return Err(report(
            case,
            &format!("the reassembled program prints differently:\n{again}\n\nfirst:\n{text}"),
        ));
    }
    Ok(unused)
}

/// `text` with each run of lines that hold only a label (`name:`) joined into one line.
fn labels_on_one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    for line in text.lines() {
        let label = line.ends_with(':') && !line.starts_with(' ') && !line.contains(' ');
        if label {
            if !run.is_empty() {
                run.push(' ');
            }
            run.push_str(line);
            continue;
        }
        if !run.is_empty() {
            out.push_str(&run);
            out.push('\n');
            run.clear();
        }
        out.push_str(line);
        out.push('\n');
    }
    out.push_str(&run);
    out
}

#[derive(Default)]
struct Stats {
    rejected: u64,
    accepted: u64,
    ran: u64,
    other_options: u64,
    /// Accepted programs with nonzero fields their opcodes do not use: they verify, but
    /// `to_text` cannot print those fields, so they round-trip only zeroed.
    unused_fields: u64,
    skipped: BTreeMap<&'static str, u64>,
    outcomes: BTreeMap<String, u64>,
    /// Programs run in both tiers per feature they contain (`raw::features`).
    features: BTreeMap<&'static str, u64>,
    /// Rejected programs per kind of verifier error they contain.
    errors: BTreeMap<&'static str, u64>,
}

#[test]
fn raw_programs_verify_or_run_alike() {
    let cases = env_u64("VM3_RAW_CASES").unwrap_or(5000);
    let base = env_u64("VM3_RAW_SEED").unwrap_or_else(|| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        t.as_nanos() as u64 % 1_000_000_000_000
    });
    let trace = std::env::var_os("VM3_RAW_TRACE").is_some();
    eprintln!("raw_fuzz: {cases} programs from base seed {base} (VM3_RAW_SEED={base} reproduces this run)");
    let start = std::time::Instant::now();
    let stats = Mutex::new(Stats::default());
    let failures = Mutex::new(Vec::<String>::new());
    let workers = 2u64;
    std::thread::scope(|s| {
        for w in 0..workers {
            let (stats, failures) = (&stats, &failures);
            s.spawn(move || {
                for i in (w..cases).step_by(workers as usize) {
                    let seed = base.wrapping_add(i);
                    let verdict = check(seed, trace);
                    let mut st = stats.lock().unwrap_or_else(|e| e.into_inner());
                    match verdict {
                        Ok(Verdict::Rejected(categories)) => {
                            st.rejected += 1;
                            for c in categories {
                                *st.errors.entry(c).or_default() += 1;
                            }
                        }
                        Ok(Verdict::Skipped(why, unused)) => {
                            st.accepted += 1;
                            st.unused_fields += unused as u64;
                            *st.skipped.entry(why).or_default() += 1;
                        }
                        Ok(Verdict::Ran(kind, others, unused, features)) => {
                            for f in features {
                                *st.features.entry(f).or_default() += 1;
                            }
                            st.accepted += 1;
                            st.unused_fields += unused as u64;
                            st.ran += 1;
                            st.other_options += others as u64;
                            *st.outcomes.entry(kind).or_default() += 1;
                        }
                        Err(message) => {
                            drop(st);
                            let mut f = failures.lock().unwrap_or_else(|e| e.into_inner());
                            eprintln!("raw_fuzz: FAILURE\n{message}");
                            f.push(message);
                            if f.len() >= 5 {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    let stats = stats.into_inner().unwrap();
    let failures = failures.into_inner().unwrap();
    let checked = stats.accepted + stats.rejected;
    let pct = |n: u64| 100.0 * n as f64 / checked.max(1) as f64;
    eprintln!(
        "raw_fuzz: {checked} programs in {:.2?}: {} accepted ({:.1}%), {} rejected; {} run in both tiers ({:.1}%; {} also with other compile options), skipped {:?}\n  {} accepted programs have nonzero unused fields (the text drops them)\n  outcomes {:?}\n  programs run that contain {:?}\n  rejected programs by error kind {:?}",
        start.elapsed(),
        stats.accepted,
        pct(stats.accepted),
        stats.rejected,
        stats.ran,
        pct(stats.ran),
        stats.other_options,
        stats.skipped,
        stats.unused_fields,
        stats.outcomes,
        stats.features,
        stats.errors,
    );
    assert!(
        failures.is_empty(),
        "{} failure(s) (base seed {base}); the first:\n{}",
        failures.len(),
        failures[0]
    );
    if cases >= 2000 {
        // The generator is only useful if it gets programs past the verifier.
        assert!(
            pct(stats.accepted) > 20.0 && pct(stats.ran) > 10.0,
            "too few programs verify ({:.1}%) or run ({:.1}%)",
            pct(stats.accepted),
            pct(stats.ran)
        );
    }
}
