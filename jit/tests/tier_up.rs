//! `Tier::Auto` (issue 9, "Tier-up on demand"): functions compiled alone once hot,
//! calls across tiers, on-stack replacement, the code cap, threads. Every result and
//! trap is compared with the reference interpreter's (spec §3 for the traps).

#[path = "common/kernels.rs"]
mod common_kernels;

use common_kernels::{kernels, outcome};
use jit::{Engine, EngineOptions, Limits, Module, Store, Tier, TierUp};
use vm3::interp::Config;
use vm3::{Value, VerifiedProgram};

fn auto(tier_up: TierUp) -> Engine {
    let mut options = EngineOptions::default();
    options.tier = Tier::Auto;
    options.tier_up = tier_up;
    Engine::new(options)
}

fn assemble(source: &str) -> VerifiedProgram {
    vm3::asm::assemble(source, "test")
        .unwrap_or_else(|e| panic!("{e:?}"))
        .verify()
        .unwrap_or_else(|e| panic!("{e:?}"))
}

/// The issue's acceptance: "With `--tier auto` every kernel of `../shared/kernels`
/// gives its expected result", at thresholds 0 (everything compiled at its first call
/// or backward jump) and at the defaults.
#[test]
fn kernels_match_their_expected_results_under_tier_up() {
    for tier_up in [
        TierUp {
            calls: 0,
            back_edges: 0,
        },
        TierUp::default(),
    ] {
        let mut checked = 0;
        let engine = auto(tier_up);
        for kernel in kernels() {
            let (name, program) = (&kernel.name, &kernel.program);
            let module = Module::new(&engine, program).unwrap();
            let main = module.func("main").unwrap();
            let mut store = Store::new(&engine);
            for (args, expected) in &kernel.runs {
                let got = outcome(main.call(&mut store, args));
                assert_eq!(&got, expected, "{name} {args:?} {tier_up:?}");
                checked += 1;
            }
            if tier_up.calls == 0 {
                assert!(
                    module.tiered_up_functions() >= 1,
                    "{name}: nothing compiled"
                );
            }
        }
        assert!(checked >= 25, "only {checked} kernel runs checked");
        let report = engine.code_report();
        assert!(report.calls_into_compiled > 0, "{report:?}");
        assert_eq!(report.last_compile_error, None);
    }
}

fn limits(depth_limit: u64) -> Limits {
    let mut limits = Limits::default();
    limits.depth_limit = depth_limit;
    limits
}

fn interpreted(program: &VerifiedProgram, args: &[Value], depth_limit: u64) -> String {
    let config = Config {
        depth_limit,
        ..Config::default()
    };
    outcome(vm3::interp::run(program, "main", args, &config))
}

/// A loop of `main` calling `step`, which has no loop of its own, and `count`, whose
/// loop counts down.
const LOOPS: &str = "
func main(i64) -> i64
    ConstI64K   i1, 0
    ConstI64K   i2, 0
top:
    CmpGeI64Br  i2, i0, done
    CallI64     i3, i2, step
    AddI64      i1, i1, i3
    AddI64K     i2, i2, 1
    Jump        top
done:
    CallI64     i3, i0, count
    AddI64      i1, i1, i3
    ReturnI64   i1
end

func step(i64) -> i64
    MulI64      i1, i0, i0
    ReturnI64   i1
end

func count(i64) -> i64
    ConstI64K   i1, 0
again:
    CmpLeI64KBr i0, 0, out
    AddI64K     i1, i1, 3
    SubI64K     i0, i0, 1
    Jump        again
out:
    ReturnI64   i1
end
";

/// Issue 9: "An interpreted activation spinning in a hot loop continues in compiled
/// code at the loop header (on-stack replacement)", and "Calls cross tiers in both
/// directions": `main`, entered once, gets compiled code through OSR only; with
/// calls never hot, the compiled `main` calls the interpreted `step` through its
/// bridge; with calls hot at once, the interpreter calls compiled `step`.
#[test]
fn loops_go_on_in_compiled_code_and_calls_cross_tiers_both_ways() {
    let program = assemble(LOOPS);
    let args = [Value::I64(5000)];
    let expected = interpreted(&program, &args, 10_000);
    for (calls, back_edges) in [
        (TierUp::NEVER, 0),
        (TierUp::NEVER, 50),
        (0, TierUp::NEVER),
        (3, 7),
        (1, 50),
    ] {
        let engine = auto(TierUp { calls, back_edges });
        let module = Module::new(&engine, &program).unwrap();
        let main = module.func("main").unwrap();
        let mut store = Store::new(&engine);
        assert_eq!(
            outcome(main.call(&mut store, &args)),
            expected,
            "{calls} {back_edges}"
        );
        let report = engine.code_report();
        if back_edges != TierUp::NEVER {
            assert!(report.osr_entries >= 1, "{calls} {back_edges}: {report:?}");
        }
        if calls == TierUp::NEVER {
            // `main` (OSR) and `count` (OSR) compiled, `step` never: 5000 bridged calls.
            assert_eq!(module.tiered_up_functions(), 2, "{report:?}");
            assert!(report.calls_into_interpreter >= 4000, "{report:?}");
            assert_eq!(report.calls_into_compiled, 0, "{report:?}");
        }
        if (calls, back_edges) == (1, 50) {
            // `step` compiled at its second call; `main`, compiled at its 50th backward
            // jump, calls it directly (a unit linked to the other), so no further call
            // enters compiled code from the interpreter; only the call of `count`, not
            // compiled yet, bridges out of it.
            assert!(report.calls_into_compiled <= 51, "{report:?}");
            assert_eq!(report.calls_into_interpreter, 1, "{report:?}");
        }
        if back_edges == TierUp::NEVER {
            // `main` interpreted (entered once, its loop never hot), `step` compiled.
            assert!(report.calls_into_compiled >= 4999, "{report:?}");
            assert_eq!(report.osr_entries, 0);
        }
        assert_eq!(report.last_compile_error, None);
    }
}

/// A recursion that gets hot while it recurses, to a depth limit of 200,000 (the
/// native stack check at each entry into compiled code: `runtime::native_stack_allows`):
/// the result when the limit allows, else `call stack overflow` at the same place as
/// the interpreter; never a crash. Self-recursion stays in its unit (direct calls);
/// mutual recursion crosses units through bridges at every call, nesting natively
/// until the check keeps the rest in the interpreter.
#[test]
fn deep_recursion_that_gets_hot_gives_the_interpreters_result_or_trap() {
    let program = assemble(
        "
func main(i64) -> i64
    CallI64     i1, i0, down
    CallI64     i2, i0, ping
    AddI64      i1, i1, i2
    ReturnI64   i1
end

func down(i64) -> i64
    CmpLeI64KBr i0, 0, base
    SubI64K     i1, i0, 1
    CallI64     i2, i1, down
    AddI64K     i2, i2, 1
    ReturnI64   i2
base:
    ConstI64K   i2, 0
    ReturnI64   i2
end

func ping(i64) -> i64
    CmpLeI64KBr i0, 0, base
    SubI64K     i1, i0, 1
    CallI64     i2, i1, pong
    AddI64K     i2, i2, 2
    ReturnI64   i2
base:
    ConstI64K   i2, 0
    ReturnI64   i2
end

func pong(i64) -> i64
    CmpLeI64KBr i0, 0, base
    SubI64K     i1, i0, 1
    CallI64     i2, i1, ping
    AddI64K     i2, i2, 3
    ReturnI64   i2
base:
    ConstI64K   i2, 0
    ReturnI64   i2
end
",
    );
    let depth_limit = 200_000;
    for n in [150_000, 199_998, 199_999, 250_000] {
        let args = [Value::I64(n)];
        let expected = interpreted(&program, &args, depth_limit);
        for tier_up in [
            TierUp::default(),
            TierUp {
                calls: 0,
                back_edges: 0,
            },
        ] {
            let engine = auto(tier_up);
            let module = Module::new(&engine, &program).unwrap();
            let mut store = Store::with_limits(&engine, limits(depth_limit));
            let got = outcome(module.func("main").unwrap().call(&mut store, &args));
            assert_eq!(got, expected, "n = {n}, {tier_up:?}");
            assert!(module.tiered_up_functions() >= 1, "n = {n}");
        }
    }
}

/// Issue 9: "A program bigger than the code-cache cap runs correctly with part of it
/// interpreted; a test shows the engine's report."
#[test]
fn a_program_bigger_than_the_code_cap_runs_partly_interpreted() {
    // 40 functions, each a loop, chained: f0 calls f1 ... f39.
    let mut source =
        String::from("func main(i64) -> i64\n    CallI64 i1, i0, f0\n    ReturnI64 i1\nend\n");
    for k in 0..40 {
        let call = if k + 1 < 40 {
            format!(
                "    CallI64     i3, i0, f{}\n    AddI64      i1, i1, i3\n",
                k + 1
            )
        } else {
            String::new()
        };
        source += &format!(
            "func f{k}(i64) -> i64
    ConstI64K   i1, 0
    ConstI64K   i2, 0
top:
    CmpGeI64Br  i2, i0, done
    AddI64K     i1, i1, {k}
    MulI64K     i4, i2, 3
    SubI64      i1, i1, i4
    AddI64K     i2, i2, 1
    Jump        top
done:
{call}    ReturnI64   i1
end
"
        );
    }
    let program = assemble(&source);
    let args = [Value::I64(300)];
    let expected = interpreted(&program, &args, 10_000);
    let page = 4096;
    let mut options = EngineOptions::default();
    options.tier = Tier::Auto;
    options.tier_up = TierUp {
        calls: 0,
        back_edges: 0,
    };
    options.code_limit = Some(10 * page);
    let engine = Engine::new(options);
    let module = Module::new(&engine, &program).unwrap();
    let mut store = Store::new(&engine);
    let main = module.func("main").unwrap();
    for _ in 0..3 {
        assert_eq!(outcome(main.call(&mut store, &args)), expected);
    }
    let report = engine.code_report();
    eprintln!("{report:#?}");
    assert!(report.compiled_bytes <= 10 * page, "{report:?}");
    assert!(report.compiled_functions >= 5, "{report:?}");
    assert!(report.refused_functions >= 10, "{report:?}");
    assert!(
        report.refused_bytes >= report.refused_functions * page,
        "{report:?}"
    );
    assert_eq!(module.tiered_up_functions(), report.compiled_functions);
    assert!(
        report.compiled_functions + report.refused_functions == 41,
        "{report:?}"
    );
    // The module's code goes with it, and its bytes back to the engine.
    drop((main, module));
    assert_eq!(engine.code_report().compiled_bytes, 0);

    // Under `Tier::Compiled` the cap keeps the whole module interpreted.
    options.tier = Tier::Compiled;
    options.code_limit = Some(page);
    let engine = Engine::new(options);
    let module = Module::new(&engine, &program).unwrap();
    assert_eq!(module.code_bytes(), 0);
    let mut store = Store::new(&engine);
    assert_eq!(
        outcome(module.func("main").unwrap().call(&mut store, &args)),
        expected
    );
    let report = engine.code_report();
    assert_eq!(
        (report.compiled_bytes, report.refused_functions),
        (0, 41),
        "{report:?}"
    );
}

/// Issue 9: "One compiled program is run from 8 threads at once, each with its own
/// store, for thousands of calls, with correct results", here while it tiers up: the
/// threads race to compile the same functions; one compile per function (the others
/// keep interpreting meanwhile, `tier_up.rs`).
#[test]
fn eight_threads_tier_up_one_module_at_once() {
    let program = assemble(LOOPS);
    let expected: Vec<String> = (0..50)
        .map(|n| interpreted(&program, &[Value::I64(n)], 10_000))
        .collect();
    for tier_up in [
        TierUp {
            calls: 0,
            back_edges: 0,
        },
        TierUp {
            calls: 20,
            back_edges: 30,
        },
    ] {
        let engine = auto(tier_up);
        let module = Module::new(&engine, &program).unwrap();
        std::thread::scope(|s| {
            for t in 0..8 {
                let (engine, module, expected) = (&engine, &module, &expected);
                s.spawn(move || {
                    let main = module.func("main").unwrap().typed::<(i64,), i64>().unwrap();
                    let mut store = Store::new(engine);
                    for i in 0..2000 {
                        let n = (i * 7 + t) % 50;
                        let got = main.call(&mut store, (n as i64,)).unwrap().to_string();
                        assert_eq!(got, expected[n], "thread {t}, call {i}");
                    }
                });
            }
        });
        let report = engine.code_report();
        assert_eq!(module.tiered_up_functions(), 3, "{report:?}");
        // One compile per function: the engine holds three units.
        assert_eq!(report.compiled_functions, 3, "{report:?}");
    }
}

/// Issue 9's run limits under tier-up: an endless loop (its header at pc 0, and past a
/// first instruction) goes on in compiled code through OSR, where an interrupt from
/// another thread stops it (`interrupted`), and fuel runs out at the same function and
/// instruction as in the interpreter.
#[test]
fn an_interrupt_and_fuel_stop_a_loop_that_went_on_in_compiled_code() {
    let spins = [
        "func main() -> i64\nloop:\n    Jump        loop\nend\n",
        "func main() -> i64\n    ConstI64K   i0, 0\nloop:\n    AddI64K     i0, i0, 1\n    Jump        loop\nend\n",
    ];
    for (header, source) in spins.iter().enumerate() {
        let program = assemble(source);
        let mut options = EngineOptions::default();
        options.tier = Tier::Auto;
        options.run_limits = true;
        options.tier_up = TierUp {
            calls: TierUp::NEVER,
            back_edges: 100,
        };
        let engine = Engine::new(options);
        let module = Module::new(&engine, &program).unwrap();
        let main = module.func("main").unwrap();
        let mut store = Store::new(&engine);
        let handle = store.interrupt_handle().unwrap();
        let stopper = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(50));
            handle.interrupt();
        });
        let got = outcome(main.call(&mut store, &[]));
        stopper.join().unwrap();
        assert_eq!(got, format!("trap: interrupted in main at {header}"));
        assert!(
            engine.code_report().osr_entries >= 1,
            "{:?}",
            engine.code_report()
        );
        for fuel in [0, 1, 50, 99, 100, 101, 102, 5000] {
            let mut limits = Limits::default();
            limits.fuel = Some(fuel);
            store.set_limits(limits);
            let expected = {
                let interpreted = {
                    let mut o = options;
                    o.tier = Tier::Interpreted;
                    Engine::new(o)
                };
                let m = Module::new(&interpreted, &program).unwrap();
                let mut s = Store::with_limits(&interpreted, limits);
                outcome(m.func("main").unwrap().call(&mut s, &[]))
            };
            assert_eq!(outcome(main.call(&mut store, &[])), expected, "fuel {fuel}");
        }
    }
}
