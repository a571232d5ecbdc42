//! Run limits (issue 9): fuel runs out at the same function and instruction in every
//! tier (tier-up included, with thresholds that make runs cross tiers), on the differential generator's programs, with fuel amounts from none to
//! plenty; without run limits, compiled code has no checks.
//!
//! `VM3_FUEL_CASES` sets the number of generated cases (default 400), `VM3_FUEL_SEED`
//! the base seed (default 1). Case `i` uses seed `base + i`.

use jit::{Engine, EngineOptions, Limits, Module, Store, Tier};
use vm3::{RunError, Trap, Value, VerifiedProgram};
use vm3_tests::compare::{env_u64, same_outcome, show};
use vm3_tests::gen;

/// An engine of `tier` with run limits on.
fn limited(tier: Tier) -> Engine {
    let mut options = EngineOptions::default();
    options.tier = tier;
    options.run_limits = true;
    // Small thresholds: tier-up runs cross tiers (calls, OSR, bridges) within the fuel.
    options.tier_up = jit::TierUp {
        calls: 1,
        back_edges: 2,
    };
    Engine::new(options)
}

fn run(
    engine: &Engine,
    program: &VerifiedProgram,
    entry: &str,
    args: &[Value],
    limits: Limits,
) -> Result<Value, RunError> {
    let module = Module::new(engine, program).expect("a verified program compiles");
    let mut store = Store::with_limits(engine, limits);
    module.func(entry)?.call(&mut store, args)
}

#[test]
fn fuel_runs_out_at_the_same_place_in_both_tiers_on_generated_programs() {
    let cases = env_u64("VM3_FUEL_CASES").unwrap_or(400);
    let base = env_u64("VM3_FUEL_SEED").unwrap_or(1);
    let (compiled, interpreted) = (limited(Tier::Compiled), limited(Tier::Interpreted));
    let auto = limited(Tier::Auto);
    let mut out_of_fuel = 0;
    let mut finished = 0;
    for seed in base..base + cases {
        let case = gen::generate(seed);
        let program = case
            .program
            .clone()
            .verify()
            .expect("generated programs verify");
        // Little fuel, some, and more than most cases need.
        let fuel = [0, 1, 2, 3, 7, 20, 100, 1000, 100_000][(seed % 9) as usize];
        let mut limits = Limits::default();
        limits.depth_limit = gen::DEPTH_LIMIT;
        limits.heap_limit = case.heap_limit;
        limits.fuel = Some(fuel);
        let a = run(&interpreted, &program, &case.entry, &case.args, limits);
        let b = run(&compiled, &program, &case.entry, &case.args, limits);
        assert!(
            same_outcome(&a, &b),
            "seed {seed}, fuel {fuel}: interpreter {}, compiled {}\n{}",
            show(&a),
            show(&b),
            vm3::asm::to_text(&case.program)
        );
        let c = run(&auto, &program, &case.entry, &case.args, limits);
        assert!(
            same_outcome(&a, &c),
            "seed {seed}, fuel {fuel}: interpreter {}, tier-up {}\n{}",
            show(&a),
            show(&c),
            vm3::asm::to_text(&case.program)
        );
        match a {
            Err(RunError::Trap(t)) if t.trap == Trap::OutOfFuel => out_of_fuel += 1,
            _ => finished += 1,
        }
    }
    eprintln!("{cases} cases: {out_of_fuel} out of fuel, {finished} other outcomes");
    assert!(out_of_fuel > cases / 10, "too few cases ran out of fuel");
    assert!(finished > cases / 10, "too few cases had enough fuel");
}

/// With fuel to spare the result is the one without limits; the run-limit checks only
/// count.
#[test]
fn enough_fuel_changes_nothing() {
    let (compiled, interpreted) = (limited(Tier::Compiled), limited(Tier::Interpreted));
    let auto = limited(Tier::Auto);
    for seed in 0..100 {
        let case = gen::generate(seed);
        let program = case.program.clone().verify().unwrap();
        let mut limits = Limits::default();
        limits.depth_limit = gen::DEPTH_LIMIT;
        limits.heap_limit = case.heap_limit;
        let unlimited = run(
            &Engine::default(),
            &program,
            &case.entry,
            &case.args,
            limits,
        );
        limits.fuel = Some(u64::MAX);
        for engine in [&compiled, &interpreted, &auto] {
            let got = run(engine, &program, &case.entry, &case.args, limits);
            assert!(
                same_outcome(&unlimited, &got),
                "seed {seed}: {} vs {}",
                show(&unlimited),
                show(&got)
            );
        }
    }
}
