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
