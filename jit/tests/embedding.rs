//! The embedding interface (issue 9): the README's Embedding section is this file's
//! `readme_example`, checked line for line, and run; a module shared by threads, each
//! with its own store; typed calls; limits that hold (issue 10, item 5).

#[path = "common/kernels.rs"]
#[allow(dead_code)] // `outcome` is for the other users.
mod common_kernels;

use jit::{Engine, EngineOptions, Limits, Module, Store, Tier};
use std::error::Error;
use vm3::{RunError, Trap, Value, VerifiedProgram};

// README:begin
fn readme_example() -> Result<(), Box<dyn std::error::Error>> {
    use jit::{Engine, EngineOptions, Module, Store, Tier};
    use vm3::Value;

    let source = "
        func main(i64) -> i64
            AddI64K     i0, i0, 1
            ReturnI64   i0
        end
        func greet(cell) -> cell
            ConstStrKW  c1, \"hello, \"
            ConcatStr   c0, c1, c0
            ReturnCell  c0
        end
    ";
    let program = vm3::asm::assemble(source, "prog.vm3")? // or vm3::builder::ProgramBuilder
        .verify()?; // the only way to a VerifiedProgram
    let engine = Engine::default(); // stencils and options; Send + Sync, shared
    let module = Module::new(&engine, &program)?; // compiles every function, once
    let main = module.func("main")?.typed::<(i64,), i64>()?; // looked up and checked once
    let mut store = Store::new(&engine); // per thread: heap, register stack, limits
    assert_eq!(main.call(&mut store, (41,))?, 42);

    // Strings, lists and maps cross as values, copied into and out of the run's heap.
    let greet = module.func("greet")?;
    let hello = greet.call(&mut store, &[Value::Str("you".into())])?;
    assert_eq!(hello, Value::Str("hello, you".into()));

    // Threads share the module; each calls with a store of its own.
    std::thread::scope(|s| {
        for t in 0..4 {
            let main = main.clone();
            let engine = engine.clone();
            s.spawn(move || {
                let mut store = Store::new(&engine);
                assert_eq!(main.call(&mut store, (t,)).unwrap(), t + 1);
            });
        }
    });

    // The interpreter runs the same module with the same results and traps.
    let mut options = EngineOptions::default();
    options.tier = Tier::Interpreted;
    let interpreter = Engine::new(options);
    let module = Module::new(&interpreter, &program)?;
    let mut store = Store::new(&interpreter);
    assert_eq!(
        module.func("main")?.call(&mut store, &[Value::I64(1)])?,
        Value::I64(2)
    );
    Ok(())
}
// README:end

#[test]
fn the_readme_embedding_section_is_this_example_and_it_runs() {
    let this = include_str!("embedding.rs");
    let begin = this.find("// README:begin\n").unwrap() + "// README:begin\n".len();
    let end = this.find("// README:end").unwrap();
    let function = &this[begin..end];
    // The README shows the function's body, one level of indentation less.
    let body: String = function
        .lines()
        .skip(1)
        .take_while(|line| *line != "}")
        .map(|line| format!("{}\n", line.strip_prefix("    ").unwrap_or(line)))
        .collect();
    let readme = include_str!("../../README.md");
    let section = &readme[readme.find("## Embedding").expect("an Embedding section")..];
    let block_start = section.find("```rust\n").expect("a rust block") + "```rust\n".len();
    let block = &section[block_start..];
    let block = &block[..block.find("```\n").expect("the block's end")];
    assert_eq!(
        block, body,
        "README.md's Embedding block differs from `readme_example` in jit/tests/embedding.rs"
    );
    readme_example().unwrap();
}

fn assemble(source: &str) -> VerifiedProgram {
    vm3::asm::assemble(source, "test.vm3")
        .unwrap_or_else(|e| panic!("{e}"))
        .verify()
        .unwrap_or_else(|e| panic!("{e}"))
}

fn engines() -> [Engine; 2] {
    let mut interpreted = EngineOptions::default();
    interpreted.tier = Tier::Interpreted;
    [Engine::default(), Engine::new(interpreted)]
}

fn tier_name(engine: &Engine) -> &'static str {
    match engine.options().tier {
        Tier::Interpreted => "interpreted",
        Tier::Auto => "tier-up",
        _ => "compiled",
    }
}

const FIB: &str = "
func fib(i64) -> i64
    CmpLtI64KBr i0, 2, base
    SubI64K     i1, i0, 1
    CallI64     i2, i1, fib
    SubI64K     i3, i0, 2
    CallI64     i4, i3, fib
    AddI64      i2, i2, i4
    ReturnI64   i2
base:
    ReturnI64   i0
end
";

fn fib(n: i64) -> i64 {
    if n < 2 {
        n
    } else {
        fib(n - 1) + fib(n - 2)
    }
}

/// Issue 9: one module run from 8 threads at once, each with its own store, for
/// thousands of calls each, in both tiers.
#[test]
fn eight_threads_share_one_module_with_a_store_each() {
    let program = assemble(FIB);
    for engine in engines() {
        let module = Module::new(&engine, &program).unwrap();
        let f = module.func("fib").unwrap().typed::<(i64,), i64>().unwrap();
        std::thread::scope(|s| {
            for t in 0..8i64 {
                let (f, engine) = (f.clone(), engine.clone());
                s.spawn(move || {
                    let mut store = Store::new(&engine);
                    for k in 0..3000i64 {
                        let n = (t + k) % 16;
                        assert_eq!(f.call(&mut store, (n,)).unwrap(), fib(n), "fib({n})");
                    }
                });
            }
        });
        eprintln!("{}: 8 x 3000 calls agree", tier_name(&engine));
    }
}

/// A store runs modules of different programs one after another: each run gets its
/// program's string constants (the heap keeps one program's constants between runs).
#[test]
fn one_store_alternates_between_programs_with_different_constants() {
    let a =
        assemble("func main() -> cell\n    ConstStrKW c0, \"from a\"\n    ReturnCell c0\nend\n");
    let b = assemble(
        "func main() -> cell\n    ConstStrKW c0, \"one\"\n    ConstStrKW c1, \"from b\"\n    ReturnCell c1\nend\n",
    );
    for engine in engines() {
        let (ma, mb) = (
            Module::new(&engine, &a).unwrap(),
            Module::new(&engine, &b).unwrap(),
        );
        let (fa, fb) = (ma.func("main").unwrap(), mb.func("main").unwrap());
        let mut store = Store::new(&engine);
        for _ in 0..3 {
            for _ in 0..2 {
                assert_eq!(
                    fa.call(&mut store, &[]).unwrap(),
                    Value::Str("from a".into())
                );
            }
            assert_eq!(
                fb.call(&mut store, &[]).unwrap(),
                Value::Str("from b".into())
            );
        }
    }
}

#[test]
fn a_typed_function_with_the_wrong_signature_is_refused() {
    let module = Module::new(&Engine::default(), &assemble(FIB)).unwrap();
    let f = module.func("fib").unwrap();
    let err = f.typed::<(f64,), i64>().err().expect("a mismatch");
    assert_eq!(
        err.to_string(),
        "`fib` takes (i64) and returns i64, not (f64) -> i64"
    );
    assert!(f.typed::<(i64, i64), i64>().is_err());
    assert!(f.typed::<(i64,), Value>().is_err());
    assert!(matches!(module.func("nope"), Err(RunError::Arguments(_))));
}

#[test]
fn a_store_of_another_engine_is_refused() {
    let module = Module::new(&Engine::default(), &assemble(FIB)).unwrap();
    let mut store = Store::new(&Engine::default());
    let r = module
        .func("fib")
        .unwrap()
        .call(&mut store, &[Value::I64(3)]);
    assert!(matches!(r, Err(RunError::Arguments(_))), "{r:?}");
}

#[test]
fn assembler_and_verifier_errors_are_std_errors_printed_as_the_cli_prints_them() {
    let errors = vm3::asm::assemble("func main() -> i64\n    Bogus\n", "x.vm3").unwrap_err();
    assert_eq!(errors.len(), 2, "{errors:?}");
    let lines: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    assert!(lines.iter().all(|l| l.starts_with("x.vm3:")), "{lines:?}");
    let boxed: Box<dyn Error> = errors.into();
    assert_eq!(boxed.to_string(), lines.join("\n"));

    let errors = vm3::asm::assemble("func main() -> i64\n    ConstI64K i0, 1\nend\n", "y.vm3")
        .unwrap()
        .verify()
        .unwrap_err();
    let lines: Vec<String> = errors.iter().map(|e| format!("error: {e}")).collect();
    assert!(lines[0].starts_with("error: function main"), "{lines:?}");
    let boxed: Box<dyn Error> = errors.into();
    assert_eq!(boxed.to_string(), lines.join("\n"));
}

/// `down(n)` recurses n deep; `big`, never called, uses register i65534.
const DEEP: &str = "
func main(i64) -> i64
    CallI64     i1, i0, down
    ReturnI64   i1
end
func down(i64) -> i64
    CmpLeI64KBr i0, 0, base
    SubI64K     i1, i0, 1
    CallI64     i2, i1, down
    AddI64K     i2, i2, 1
    ReturnI64   i2
base:
    ReturnI64   i0
end
func big() -> i64
    ConstI64K   i65534, 7
    ReturnI64   i65534
end
";

/// Issue 10, item 5: a function that is never called but uses `i65534` lowered the
/// depth limit to 681 (the register stack was capped at 1 GiB of the largest frame
/// times the limit), and a limit of 1,000,000 changed nothing. Now the configured limit
/// holds in both tiers: the stack reserves address space and commits what frames touch.
#[test]
fn the_depth_limit_holds_whatever_the_largest_frame() {
    let program = assemble(DEEP);
    for engine in engines() {
        let tier = tier_name(&engine);
        let main = Module::new(&engine, &program)
            .unwrap()
            .func("main")
            .unwrap()
            .typed::<(i64,), i64>()
            .unwrap();
        let mut store = Store::new(&engine);
        // main and 9,999 activations of down: the default limit of 10,000 exactly.
        assert_eq!(main.call(&mut store, (9_998,)).unwrap(), 9_998, "{tier}");
        match main.call(&mut store, (9_999,)) {
            Err(RunError::Trap(t)) => assert_eq!(t.trap, Trap::CallStackOverflow, "{tier}"),
            other => panic!("{tier}: {other:?}"),
        }
        let mut limits = Limits::default();
        limits.depth_limit = 1_000_000;
        store.set_limits(limits);
        assert_eq!(
            main.call(&mut store, (900_000,)).unwrap(),
            900_000,
            "{tier}"
        );
        match main.call(&mut store, (999_999,)) {
            Err(RunError::Trap(t)) => assert_eq!(t.trap, Trap::CallStackOverflow, "{tier}"),
            other => panic!("{tier}: {other:?}"),
        }
    }
}

/// A limit whose register stack cannot be had is an error that says so, never a
/// lowered limit or a crash.
#[test]
fn a_depth_limit_beyond_the_address_space_is_a_clear_error() {
    let program = assemble(DEEP);
    for engine in engines() {
        let main = Module::new(&engine, &program)
            .unwrap()
            .func("main")
            .unwrap();
        let mut limits = Limits::default();
        limits.depth_limit = u64::MAX / 2;
        let mut store = Store::with_limits(&engine, limits);
        match main.call(&mut store, &[Value::I64(3)]) {
            Err(RunError::Resources(message)) => assert!(
                message.contains("cannot reserve the register stack"),
                "{message}"
            ),
            other => panic!("{other:?}"),
        }
    }
}

/// Run limits on, compiled, interpreted and tiering up (with thresholds small enough
/// that runs cross tiers, enter loops through OSR and call both ways).
fn limited_engines() -> [Engine; 3] {
    [Tier::Compiled, Tier::Interpreted, Tier::Auto].map(|tier| {
        let mut options = EngineOptions::default();
        options.tier = tier;
        options.run_limits = true;
        options.tier_up = jit::TierUp {
            calls: 3,
            back_edges: 5,
        };
        Engine::new(options)
    })
}

const SPIN: &str = "
func main() -> i64
loop:
    Jump        loop
end
";

fn expect_trap(result: Result<Value, RunError>, trap: Trap, function: &str, pc: u32) {
    match result {
        Err(RunError::Trap(t)) => assert_eq!(
            (t.trap, t.function.as_str(), t.pc),
            (trap, function, pc),
            "{t}"
        ),
        other => panic!("expected {trap:?} in {function} at {pc}, got {other:?}"),
    }
}

/// Issue 9: an interrupt from another thread stops a run that would never end, in both
/// tiers, with the trap `interrupted`; the store runs again afterwards.
#[test]
fn an_interrupt_from_another_thread_stops_a_run() {
    let program = assemble(SPIN);
    for engine in limited_engines() {
        let module = Module::new(&engine, &program).unwrap();
        let main = module.func("main").unwrap();
        let mut store = Store::new(&engine);
        let handle = store.interrupt_handle().expect("run limits are on");
        let stopper = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(50));
            handle.interrupt();
        });
        expect_trap(main.call(&mut store, &[]), Trap::Interrupted, "main", 0);
        stopper.join().unwrap();
        // The interrupt is spent: with fuel, the next run ends by running out of it.
        let mut limits = Limits::default();
        limits.fuel = Some(1000);
        store.set_limits(limits);
        expect_trap(main.call(&mut store, &[]), Trap::OutOfFuel, "main", 0);
        eprintln!("{}: interrupted, then out of fuel", tier_name(&engine));
    }
}

/// An interrupt while no run is in progress stops the next run at its entry.
#[test]
fn an_interrupt_between_runs_stops_the_next_run() {
    let program = assemble(FIB);
    for engine in limited_engines() {
        let f = Module::new(&engine, &program).unwrap().func("fib").unwrap();
        let mut store = Store::new(&engine);
        store.interrupt_handle().unwrap().interrupt();
        expect_trap(
            f.call(&mut store, &[Value::I64(10)]),
            Trap::Interrupted,
            "fib",
            0,
        );
        assert_eq!(
            f.call(&mut store, &[Value::I64(10)]).unwrap(),
            Value::I64(55)
        );
    }
}

/// Fuel counts function entries and loop headers: `fib(n)` makes `fib_calls(n)`
/// calls, so it needs that much fuel (plus none for loops: it has none), in both tiers.
#[test]
fn fuel_counts_entries_and_runs_out_exactly() {
    fn fib_calls(n: i64) -> u64 {
        if n < 2 {
            1
        } else {
            1 + fib_calls(n - 1) + fib_calls(n - 2)
        }
    }
    let program = assemble(FIB);
    for engine in limited_engines() {
        let f = Module::new(&engine, &program).unwrap().func("fib").unwrap();
        let needed = fib_calls(15);
        let mut limits = Limits::default();
        let mut store = Store::new(&engine);
        limits.fuel = Some(needed);
        store.set_limits(limits);
        assert_eq!(
            f.call(&mut store, &[Value::I64(15)]).unwrap(),
            Value::I64(610)
        );
        limits.fuel = Some(needed - 1);
        store.set_limits(limits);
        expect_trap(
            f.call(&mut store, &[Value::I64(15)]),
            Trap::OutOfFuel,
            "fib",
            0,
        );
    }
}

/// Without run limits there is no check in compiled code (it is smaller), no interrupt
/// handle, and a fuel limit is refused rather than ignored.
#[test]
fn without_run_limits_nothing_is_checked_and_fuel_is_refused() {
    let program = assemble(FIB);
    let plain = Module::new(&Engine::default(), &program).unwrap();
    let [limited, _, _] = limited_engines();
    let checked = Module::new(&limited, &program).unwrap();
    assert!(
        plain.code_bytes() < checked.code_bytes(),
        "{} bytes without checks, {} with",
        plain.code_bytes(),
        checked.code_bytes()
    );
    let mut store = Store::new(plain.engine());
    assert!(store.interrupt_handle().is_none());
    let mut limits = Limits::default();
    limits.fuel = Some(10);
    store.set_limits(limits);
    let r = plain
        .func("fib")
        .unwrap()
        .call(&mut store, &[Value::I64(3)]);
    assert!(matches!(r, Err(RunError::Arguments(_))), "{r:?}");
}

/// Every kernel, with a range of fuel amounts: every tier ends the same way (the
/// kernels include deopts, where the interpreter goes on counting compiled code's fuel;
/// under tier-up the count crosses tiers at calls, OSR entries and bridges).
#[test]
fn kernels_run_out_of_fuel_at_the_same_place_in_both_tiers() {
    let [compiled, interpreted, auto] = limited_engines();
    let mut out_of_fuel = 0;
    for kernel in common_kernels::kernels() {
        let c = Module::new(&compiled, &kernel.program).unwrap();
        let i = Module::new(&interpreted, &kernel.program).unwrap();
        let t = Module::new(&auto, &kernel.program).unwrap();
        let (fc, fi) = (c.func("main").unwrap(), i.func("main").unwrap());
        let ft = t.func("main").unwrap();
        let (mut sc, mut si) = (Store::new(&compiled), Store::new(&interpreted));
        let mut st = Store::new(&auto);
        for (args, _) in &kernel.runs {
            for fuel in [0, 1, 2, 5, 17, 100, 1000, 10_000] {
                let mut limits = Limits::default();
                limits.fuel = Some(fuel);
                sc.set_limits(limits);
                si.set_limits(limits);
                st.set_limits(limits);
                let (a, b) = (fi.call(&mut si, args), fc.call(&mut sc, args));
                assert_eq!(a, b, "{} {args:?} with fuel {fuel}", kernel.name);
                let c = ft.call(&mut st, args);
                assert_eq!(a, c, "{} {args:?} with fuel {fuel}, tier-up", kernel.name);
                if matches!(&a, Err(RunError::Trap(t)) if t.trap == Trap::OutOfFuel) {
                    out_of_fuel += 1;
                }
            }
        }
    }
    assert!(out_of_fuel > 50, "only {out_of_fuel} runs ran out of fuel");
}
