//! Every kernel of `../shared/kernels` (and of `jit/tests/programs`) gives its expected
//! result in both tiers
//! (kernels README: "Every kernel must give the same result interpreted and compiled").

#[path = "common/kernels.rs"]
mod common_kernels;

use common_kernels::{kernels, outcome};
use jit::{Engine, Module, Store};
use vm3::interp::Config;

#[test]
fn kernels_match_their_expected_results_in_both_tiers() {
    let mut checked = 0;
    for kernel in kernels() {
        let (name, program) = (&kernel.name, &kernel.program);
        let engine = Engine::default();
        let module = Module::new(&engine, program).unwrap_or_else(|e| panic!("{name}: {e}"));
        let main = module.func("main").unwrap();
        // One store for all the runs of a kernel, as an embedder keeps one.
        let mut store = Store::new(&engine);
        for (args, expected) in &kernel.runs {
            let config = Config::default();
            let interp = outcome(vm3::interp::run(program, "main", args, &config));
            let jit = outcome(main.call(&mut store, args));
            assert_eq!(&interp, expected, "{name} {args:?} interpreted");
            assert_eq!(&jit, expected, "{name} {args:?} compiled");
            checked += 1;
        }
    }
    assert!(checked >= 25, "only {checked} kernel runs checked");
}
