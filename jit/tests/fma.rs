//! FmaF64 is fused (spec §2: "one rounding") in both tiers, whichever stencil the JIT
//! picks: the CPU instruction or the baseline one that calls a helper.

use jit::{CompileOptions as Options, Engine, EngineOptions, Module, Store};
use vm3::interp::Config;
use vm3::Value;

const SOURCE: &str = "
func main(f64, f64, f64) -> f64
    FmaF64 f3, f0, f1, f2
    ReturnF64 f3
end
";

#[test]
fn fma_rounds_once_in_every_tier_and_stencil() {
    let program = vm3::asm::assemble(SOURCE, "fma.vm3")
        .unwrap()
        .verify()
        .unwrap();
    // (1 + 2^-30) * (1 - 2^-30) - 1 = -2^-60 exactly; an unfused multiply rounds the
    // product to 1 and gives 0.
    let e = 2f64.powi(-30);
    let args = [Value::F64(1.0 + e), Value::F64(1.0 - e), Value::F64(-1.0)];
    let expected = -(2f64.powi(-60));
    let config = Config::default();
    let interp = vm3::interp::run(&program, "main", &args, &config).unwrap();
    assert!(
        interp.same_bits(&Value::F64(expected)),
        "interpreter: {interp}"
    );
    for options in [
        Options::default(),
        Options {
            baseline_cpu: true,
            ..Options::default()
        },
    ] {
        let mut engine_options = EngineOptions::default();
        engine_options.compile = options;
        let engine = Engine::new(engine_options);
        let module = Module::new(&engine, &program).unwrap();
        let jit = module
            .func("main")
            .and_then(|f| f.call(&mut Store::new(&engine), &args))
            .unwrap();
        assert!(jit.same_bits(&Value::F64(expected)), "{options:?}: {jit}");
    }
}
