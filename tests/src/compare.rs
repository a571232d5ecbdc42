//! What the cross-crate tests share to compare runs and programs.

use vm3::{Program, RunError, Value};

/// A numeric environment variable (seeds, case counts); a malformed one is an error.
pub fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    Some(
        v.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
    )
}

/// Same value bits, the same trap at the same function and instruction, or the same
/// refusal of the entry or its arguments, or of the result.
pub fn same_outcome(a: &Result<Value, RunError>, b: &Result<Value, RunError>) -> bool {
    match (a, b) {
        (Ok(x), Ok(y)) => x.same_bits(y),
        (Err(RunError::Trap(x)), Err(RunError::Trap(y))) => {
            x.trap == y.trap && x.func == y.func && x.pc == y.pc && x.function == y.function
        }
        (Err(RunError::Arguments(x)), Err(RunError::Arguments(y))) => x == y,
        (Err(RunError::Result(x)), Err(RunError::Result(y))) => x == y,
        _ => false,
    }
}

/// An outcome for a failure message, with the bits a float hides.
pub fn show(r: &Result<Value, RunError>) -> String {
    match r {
        Ok(v @ Value::F64(f)) => format!("{v} (f64 bits {:#018x})", f.to_bits()),
        Ok(v) => format!("{v} ({v:?})"),
        Err(RunError::Trap(t)) => format!("{t} (function #{})", t.func),
        Err(e) => format!("error: {e}"),
    }
}

/// The first way `b` differs from `a`, if any (constants compare by bits).
pub fn difference(a: &Program, b: &Program) -> Option<String> {
    if a.functions.len() != b.functions.len() {
        return Some(format!(
            "{} functions became {}",
            a.functions.len(),
            b.functions.len()
        ));
    }
    for (f, g) in a.functions.iter().zip(&b.functions) {
        if f.code != g.code {
            let pc = f
                .code
                .iter()
                .zip(&g.code)
                .position(|(x, y)| x != y)
                .unwrap_or(f.code.len().min(g.code.len()));
            return Some(format!(
                "function {}: code differs from instruction {pc}: {:?} became {:?}",
                f.name,
                f.code.get(pc),
                g.code.get(pc)
            ));
        }
        let checks = [
            ("name", f.name == g.name),
            ("params", f.params == g.params),
            ("result", f.result == g.result),
            ("register counts", f.regs == g.regs),
            ("constants", f.consts == g.consts),
            ("tables", f.tables == g.tables),
            ("table names", f.table_names == g.table_names),
            ("labels", f.labels == g.labels),
        ];
        for (what, same) in checks {
            if !same {
                return Some(format!("function {}: {what}", f.name));
            }
        }
    }
    None
}

/// The seeds whose outcomes every target must print alike (issue 10, item 9).
pub const CROSS_TARGET_SEEDS: std::ops::Range<u64> = 4_200_000..4_200_600;

/// What each generated program of `seeds` gives, one line per program, as the CLI would
/// print it: the result (floats with their bits, which `Display` may not tell apart),
/// the trap line, or the error. The interpreter's and the compiled code's outcomes are
/// both listed, so that comparing listings of two targets compares every tier.
pub fn outcome_lines(seeds: std::ops::Range<u64>) -> Vec<String> {
    let print = |r: &Result<Value, RunError>| match r {
        Ok(v) => format!("{v} ({v:?})"),
        Err(e) => format!("{e}"),
    };
    seeds
        .map(|seed| {
            let case = crate::gen::generate(seed);
            let program = case
                .program
                .clone()
                .verify()
                .expect("generated programs verify");
            let config = vm3::interp::Config {
                depth_limit: crate::gen::DEPTH_LIMIT,
                heap_limit: case.heap_limit,
            };
            let interp = vm3::interp::run(&program, &case.entry, &case.args, &config);
            let jit = run_compiled(
                &program,
                jit::CompileOptions::default(),
                &case.entry,
                &case.args,
                &config,
            );
            format!("seed {seed}: {} | {}", print(&interp), print(&jit))
        })
        .collect()
}

/// A program compiled through the embedding interface (an engine and a module of its
/// own), run under the limits of an interpreter `Config` so that both tiers get the
/// same ones.
pub struct Compiled {
    module: jit::Module,
}

impl Compiled {
    pub fn new(program: &vm3::VerifiedProgram) -> Result<Compiled, jit::CompileError> {
        Compiled::with_options(program, jit::CompileOptions::default())
    }

    pub fn with_options(
        program: &vm3::VerifiedProgram,
        options: jit::CompileOptions,
    ) -> Result<Compiled, jit::CompileError> {
        let mut engine_options = jit::EngineOptions::default();
        engine_options.compile = options;
        let engine = jit::Engine::new(engine_options);
        Ok(Compiled {
            module: jit::Module::new(&engine, program)?,
        })
    }

    /// The same through the interpreted tier of the embedding interface.
    pub fn interpreted(program: &vm3::VerifiedProgram) -> Compiled {
        let mut engine_options = jit::EngineOptions::default();
        engine_options.tier = jit::Tier::Interpreted;
        let engine = jit::Engine::new(engine_options);
        Compiled {
            module: jit::Module::new(&engine, program).expect("no compile when interpreted"),
        }
    }

    pub fn module(&self) -> &jit::Module {
        &self.module
    }

    /// A store for this module's engine with the limits of `config`.
    pub fn store(&self, config: &vm3::interp::Config) -> jit::Store {
        jit::Store::with_limits(self.module.engine(), limits(config))
    }

    /// Runs `entry` in a fresh store.
    pub fn run(
        &self,
        entry: &str,
        args: &[Value],
        config: &vm3::interp::Config,
    ) -> Result<Value, RunError> {
        self.run_in(&mut self.store(config), entry, args)
    }

    /// Runs `entry` in `store`, which a test can keep from run to run.
    pub fn run_in(
        &self,
        store: &mut jit::Store,
        entry: &str,
        args: &[Value],
    ) -> Result<Value, RunError> {
        self.module.func(entry)?.call(store, args)
    }
}

/// The store limits equal to an interpreter `Config`.
pub fn limits(config: &vm3::interp::Config) -> jit::Limits {
    let mut limits = jit::Limits::default();
    limits.depth_limit = config.depth_limit;
    limits.heap_limit = config.heap_limit;
    limits
}

/// Runs `entry` of `program` compiled with `options` under the limits of `config`.
/// Panics if the verified program does not compile: that is a JIT bug.
pub fn run_compiled(
    program: &vm3::VerifiedProgram,
    options: jit::CompileOptions,
    entry: &str,
    args: &[Value],
    config: &vm3::interp::Config,
) -> Result<Value, RunError> {
    Compiled::with_options(program, options)
        .expect("a verified program compiles")
        .run(entry, args, config)
}
