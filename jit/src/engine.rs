//! The embedding interface, in the shape of wasmtime's: an [`Engine`] (the stencils and
//! the options, shared by threads), a [`Module`] (one verified program, prepared and
//! compiled once, shared by threads), a [`Store`] per thread (the heap, the register
//! stack and the limits, reused from call to call), and a [`Func`] looked up once and
//! called many times, or its typed form [`TypedFunc`].
//!
//! Everything done once per program (decoding constants, compiling) happens in
//! [`Module::new`]; everything done once per thread (the register stack, the heap's
//! slot tables, the program's string constants) is kept by the [`Store`]; a call only
//! places its arguments, runs, and reads the result.

use crate::code_cache::{CodeCache, CodeReport, Lease};
use crate::compile::{CompileError, Options as CompileOptions};
use crate::runtime::{host_stencils, CompiledCode};
use crate::tier_up::{self, AutoRun, TierState};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use stencil_table::StencilSet;
use vm3::interp::Config;
use vm3::tier_support::{interpret, run_prepared, Prepared, RegisterStack};
use vm3::{Bank, Heap, RunError, Trap, Value, VerifiedProgram, DEFAULT_HEAP_LIMIT};

/// How a module's functions run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Tier {
    /// Every function is compiled when the module is made (the default).
    #[default]
    Compiled,
    /// Nothing is compiled: the reference interpreter runs every function.
    Interpreted,
    /// Tier-up on demand: every function starts interpreted and is compiled alone once
    /// it is hot ([`EngineOptions::tier_up`]); calls cross tiers both ways, and an
    /// interpreted activation in a hot loop goes on in compiled code at the loop header
    /// (on-stack replacement). Compiles stop at [`EngineOptions::code_limit`].
    Auto,
}

/// When [`Tier::Auto`] compiles a function: once it was called `calls` times, or once
/// its loops jumped back `back_edges` times (counted per function over all its
/// activations and threads). 0 compiles at the first call or backward jump;
/// [`TierUp::NEVER`] never for that reason.
///
/// The defaults, 100 calls and 1,000 back-edges: compiling one function with
/// copy-and-patch costs about as much as interpreting a few thousand instructions (it
/// copies a stencil per instruction and patches its holes), so a function called a
/// hundred times, or a loop run a thousand times, repays its compile within a few
/// times that; lower thresholds compile code that runs once (`main`'s set-up, error
/// paths), higher ones leave short hot loops interpreted. A back-edge is cheaper than
/// a call, hence the larger count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TierUp {
    pub calls: u32,
    pub back_edges: u32,
}

impl TierUp {
    /// A threshold that is never reached.
    pub const NEVER: u32 = u32::MAX;
}

impl Default for TierUp {
    fn default() -> TierUp {
        TierUp {
            calls: 100,
            back_edges: 1000,
        }
    }
}

/// The options of an engine. New options are added as fields with defaults, so build
/// one from [`EngineOptions::default`] and set what you need.
#[derive(Clone, Copy, Debug, Default)]
#[non_exhaustive]
pub struct EngineOptions {
    pub tier: Tier,
    /// Run limits: fuel ([`Limits::fuel`]) and interrupts ([`Store::interrupt_handle`]).
    /// Off by default; when off, neither tier checks anything for them (compiled code
    /// has no check at all). When on, both tiers check at every function entry and
    /// loop header ([`vm3::Function::limit_checks`]), and stop at the same instruction.
    pub run_limits: bool,
    /// Knobs of the compiler (tests use them to take rare code paths on purpose).
    pub compile: CompileOptions,
    /// When [`Tier::Auto`] compiles a function.
    pub tier_up: TierUp,
    /// Bytes of executable memory the engine's modules may hold together (whole pages;
    /// `None`, the default: no cap). A compile that would pass it is refused and its
    /// functions stay interpreted, never an error: under [`Tier::Auto`] that function,
    /// under [`Tier::Compiled`] the whole module. [`Engine::code_report`] says how much
    /// is compiled and how much was refused.
    pub code_limit: Option<usize>,
}

/// The stencils and the options. Cheap to clone (shared); `Send + Sync`.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<EngineInner>,
}

struct EngineInner {
    stencils: &'static StencilSet<'static>,
    options: EngineOptions,
    cache: Arc<CodeCache>,
}

impl Engine {
    /// An engine with this machine's stencils.
    pub fn new(options: EngineOptions) -> Engine {
        Engine {
            inner: Arc::new(EngineInner {
                stencils: host_stencils(),
                options,
                cache: Arc::new(CodeCache::new(options.code_limit)),
            }),
        }
    }

    pub fn options(&self) -> &EngineOptions {
        &self.inner.options
    }

    /// How much code the engine's live modules hold, how much the cap refused, and how
    /// often runs crossed tiers.
    pub fn code_report(&self) -> CodeReport {
        self.inner.cache.report()
    }

    fn same(&self, other: &Engine) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl Default for Engine {
    fn default() -> Engine {
        Engine::new(EngineOptions::default())
    }
}

/// A verified program ready to run: prepared, and compiled when the engine's tier
/// compiles. Cheap to clone (shared); `Send + Sync`.
#[derive(Clone)]
pub struct Module {
    inner: Arc<ModuleInner>,
}

struct ModuleInner {
    engine: Engine,
    prepared: Prepared,
    /// Declared before the lease: the code goes before its bytes are given back.
    code: Option<CompiledCode>,
    _lease: Option<Lease>,
    /// `Tier::Auto`'s per-function state and units.
    tier: Option<TierState>,
}

impl Module {
    /// Prepares `program` for `engine`, compiling every function when its tier says so.
    /// A compile error on a verified program means a bug or a stencil table that does
    /// not fit this machine.
    pub fn new(engine: &Engine, program: &VerifiedProgram) -> Result<Module, CompileError> {
        // SAFETY: the engine's table is this machine's own (`Engine::new`).
        unsafe { Module::with_stencils(engine, program, engine.inner.stencils) }
    }

    /// [`Module::new`] compiling with another stencil table (see
    /// [`crate::testing::module_with_stencils`]).
    ///
    /// # Safety
    /// As [`crate::testing::module_with_stencils`].
    pub(crate) unsafe fn with_stencils(
        engine: &Engine,
        program: &VerifiedProgram,
        stencils: &StencilSet<'_>,
    ) -> Result<Module, CompileError> {
        let options = &engine.inner.options;
        let (mut code, mut lease, mut tier) = (None, None, None);
        match options.tier {
            Tier::Interpreted => {}
            Tier::Compiled => {
                // SAFETY: the caller's contract.
                let compiled = unsafe {
                    CompiledCode::new(program, stencils, options.compile, options.run_limits)?
                };
                // Over the cap, the module is interpreted (and the refusal reported).
                let bytes = compiled.region_bytes().len();
                lease = engine.inner.cache.reserve(bytes, program.functions.len());
                code = lease.is_some().then_some(compiled);
            }
            Tier::Auto => tier = Some(TierState::new(program.functions.len())),
        }
        Ok(Module {
            inner: Arc::new(ModuleInner {
                engine: engine.clone(),
                prepared: Prepared::new(program.clone()),
                code,
                _lease: lease,
                tier,
            }),
        })
    }

    pub fn program(&self) -> &VerifiedProgram {
        self.inner.prepared.program()
    }

    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// Bytes of machine code compiled for this module up front (0 when interpreted or
    /// tiering up: see [`Engine::code_report`]).
    pub fn code_bytes(&self) -> usize {
        self.inner.code.as_ref().map_or(0, CompiledCode::code_len)
    }

    /// How many functions tier-up has compiled so far (0 in the other tiers).
    pub fn tiered_up_functions(&self) -> usize {
        self.inner
            .tier
            .as_ref()
            .map_or(0, TierState::compiled_functions)
    }

    /// The function called `name`.
    pub fn func(&self, name: &str) -> Result<Func, RunError> {
        let index = self
            .program()
            .function_index(name)
            .ok_or_else(|| RunError::Arguments(format!("no function named `{name}`")))?;
        Ok(Func {
            module: self.clone(),
            index,
        })
    }

    /// The compiled code, if any (for `stitch dump` and tests: see [`crate::testing`]).
    pub(crate) fn code(&self) -> Option<&CompiledCode> {
        self.inner.code.as_ref()
    }
}

/// The limits of the runs of a store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Maximum number of live activations (spec §2, default 10,000; at least 1).
    pub depth_limit: u64,
    /// Bytes a run may allocate on its heap before it traps with `heap limit exceeded`
    /// (default 256 MiB).
    pub heap_limit: usize,
    /// Fuel of each call: one unit per function entry and loop iteration (each check of
    /// [`vm3::Function::limit_checks`]); a call that needs more traps with `out of
    /// fuel`. `None` (the default): no fuel limit. Needs [`EngineOptions::run_limits`].
    pub fuel: Option<u64>,
}

impl Default for Limits {
    fn default() -> Limits {
        let config = Config::default();
        Limits {
            depth_limit: config.depth_limit,
            heap_limit: DEFAULT_HEAP_LIMIT,
            fuel: None,
        }
    }
}

/// What one thread runs in: a heap, a register stack and the limits, kept from call to
/// call. `Send` (a store can move to another thread), not `Sync`: each thread that
/// calls at the same time needs a store of its own.
pub struct Store {
    engine: Engine,
    heap: Heap,
    /// Made at the first call, and again when a call needs a larger one.
    stack: Option<RegisterStack>,
    limits: Limits,
    /// Set by an [`InterruptHandle`]; cleared by the run it stops.
    interrupt: Arc<AtomicU64>,
}

/// Stops the run of a store from another thread ([`Store::interrupt_handle`]).
/// `Send + Sync`, cheap to clone.
#[derive(Clone, Debug)]
pub struct InterruptHandle {
    flag: Arc<AtomicU64>,
}

impl InterruptHandle {
    /// Makes the store's run in progress trap with `interrupted` at its next function
    /// entry or loop header; if none is in progress, the next run does, at its entry.
    pub fn interrupt(&self) {
        self.flag.store(1, Ordering::Relaxed);
    }
}

impl Store {
    /// A store with the default limits.
    pub fn new(engine: &Engine) -> Store {
        Store::with_limits(engine, Limits::default())
    }

    pub fn with_limits(engine: &Engine, limits: Limits) -> Store {
        Store {
            engine: engine.clone(),
            heap: Heap::new(limits.heap_limit),
            stack: None,
            limits,
            interrupt: Arc::new(AtomicU64::new(0)),
        }
    }

    /// A handle other threads can stop this store's runs with, if the engine has run
    /// limits on ([`EngineOptions::run_limits`]; without them nothing would check it).
    pub fn interrupt_handle(&self) -> Option<InterruptHandle> {
        self.engine
            .inner
            .options
            .run_limits
            .then(|| InterruptHandle {
                flag: self.interrupt.clone(),
            })
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }
}

/// A function of a module, looked up once ([`Module::func`]) and called many times.
#[derive(Clone)]
pub struct Func {
    module: Module,
    index: usize,
}

impl Func {
    pub fn name(&self) -> &str {
        &self.module.program().functions[self.index].name
    }

    /// The banks of its parameters.
    pub fn params(&self) -> &[Bank] {
        &self.module.program().functions[self.index].params
    }

    /// The bank of its result.
    pub fn result(&self) -> Bank {
        self.module.program().functions[self.index].result
    }

    /// Calls the function with `args` in `store`. Traps come back as
    /// [`RunError::Trap`], identical in both tiers; strings, lists and maps cross as
    /// [`Value`]s, copied into and out of the run's heap.
    pub fn call(&self, store: &mut Store, args: &[Value]) -> Result<Value, RunError> {
        let module = &*self.module.inner;
        if !store.engine.same(&module.engine) {
            return Err(RunError::Arguments(
                "the store was made for another engine than the module".into(),
            ));
        }
        let config = Config {
            depth_limit: store.limits.depth_limit,
            heap_limit: store.limits.heap_limit,
        };
        let run_limits = module.engine.inner.options.run_limits;
        if store.limits.fuel.is_some() && !run_limits {
            return Err(RunError::Arguments(
                "a fuel limit needs an engine with run limits on (EngineOptions::run_limits)"
                    .into(),
            ));
        }
        let limits = run_limits.then(|| (store.limits.fuel.unwrap_or(u64::MAX), &*store.interrupt));
        let program = module.prepared.program();
        let stack = match &mut store.stack {
            Some(stack) if stack.fits(program, config.depth_limit) => stack,
            slot => slot.insert(RegisterStack::new(program, config.depth_limit.max(1))?),
        };
        let result = run_prepared(
            &module.prepared,
            self.index,
            args,
            &config,
            limits,
            &mut store.heap,
            stack,
            |prepared, run| match (&module.code, &module.tier) {
                (Some(code), _) => code.execute(prepared, run),
                (None, Some(state)) => {
                    let engine = &*module.engine.inner;
                    let auto = AutoRun {
                        state,
                        prepared,
                        stencils: engine.stencils,
                        options: &engine.options,
                        cache: &engine.cache,
                    };
                    tier_up::execute(&auto, run)
                }
                (None, None) => interpret(prepared, run),
            },
        );
        if let Err(RunError::Trap(t)) = &result {
            if t.trap == Trap::Interrupted {
                // The interrupt did its work; the store's next run starts afresh.
                store.interrupt.store(0, Ordering::Relaxed);
            }
        }
        result
    }

    /// The function with its signature checked once, for calls without `Value`s:
    /// `P` is a tuple of parameter types ([`Param`]), `R` the result type ([`Return`]).
    pub fn typed<P: Params, R: Return>(&self) -> Result<TypedFunc<P, R>, RunError> {
        let expected = P::banks();
        if self.params() != expected.as_slice() || self.result() != R::BANK {
            let names = |banks: &[Bank]| {
                banks
                    .iter()
                    .map(|b| b.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            return Err(RunError::Arguments(format!(
                "`{}` takes ({}) and returns {}, not ({}) -> {}",
                self.name(),
                names(self.params()),
                self.result().name(),
                names(&expected),
                R::BANK.name()
            )));
        }
        Ok(TypedFunc {
            func: self.clone(),
            signature: PhantomData,
        })
    }
}

/// A function whose signature was checked against `P` and `R` ([`Func::typed`]).
pub struct TypedFunc<P, R> {
    func: Func,
    signature: PhantomData<fn(P) -> R>,
}

impl<P: Params, R: Return> TypedFunc<P, R> {
    pub fn call(&self, store: &mut Store, params: P) -> Result<R, RunError> {
        let value = params.with_values(|args| self.func.call(store, args))?;
        Ok(R::from_value(value))
    }

    pub fn func(&self) -> &Func {
        &self.func
    }
}

impl<P, R> Clone for TypedFunc<P, R> {
    fn clone(&self) -> Self {
        TypedFunc {
            func: self.func.clone(),
            signature: PhantomData,
        }
    }
}

/// A Rust type a parameter of one bank takes.
pub trait Param {
    const BANK: Bank;
    fn into_value(self) -> Value;
}

impl Param for i64 {
    const BANK: Bank = Bank::I64;
    fn into_value(self) -> Value {
        Value::I64(self)
    }
}

impl Param for f64 {
    const BANK: Bank = Bank::F64;
    fn into_value(self) -> Value {
        Value::F64(self)
    }
}

/// A cell parameter: a string, list, map, bool or null as a [`Value`].
impl Param for Value {
    const BANK: Bank = Bank::Cell;
    fn into_value(self) -> Value {
        self
    }
}

/// The Rust type of a result of one bank.
pub trait Return: Sized {
    const BANK: Bank;
    /// The value of a run that returned a result of bank [`Return::BANK`].
    fn from_value(value: Value) -> Self;
}

impl Return for i64 {
    const BANK: Bank = Bank::I64;
    fn from_value(value: Value) -> i64 {
        match value {
            Value::I64(v) => v,
            other => unreachable!("an i64 result read as {other:?}"),
        }
    }
}

impl Return for f64 {
    const BANK: Bank = Bank::F64;
    fn from_value(value: Value) -> f64 {
        match value {
            Value::F64(v) => v,
            other => unreachable!("an f64 result read as {other:?}"),
        }
    }
}

/// A cell result, as the [`Value`] read out of the heap.
impl Return for Value {
    const BANK: Bank = Bank::Cell;
    fn from_value(value: Value) -> Value {
        value
    }
}

/// A tuple of [`Param`]s: the parameters of a [`TypedFunc`].
pub trait Params {
    fn banks() -> Vec<Bank>;
    /// Calls `f` with the parameters as values (on the native stack, not the heap).
    fn with_values<T>(self, f: impl FnOnce(&[Value]) -> T) -> T;
}

macro_rules! params {
    ($($p:ident),*) => {
        impl<$($p: Param),*> Params for ($($p,)*) {
            fn banks() -> Vec<Bank> {
                vec![$($p::BANK),*]
            }
            #[allow(non_snake_case)]
            fn with_values<T>(self, f: impl FnOnce(&[Value]) -> T) -> T {
                let ($($p,)*) = self;
                f(&[$($p.into_value()),*])
            }
        }
    };
}

params!();
params!(A);
params!(A, B);
params!(A, B, C);
params!(A, B, C, D);
params!(A, B, C, D, E);
params!(A, B, C, D, E, F);

/// What the interface promises about threads, checked when the crate builds.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    const fn send<T: Send>() {}
    send_sync::<Engine>();
    send_sync::<Module>();
    send_sync::<Func>();
    send_sync::<TypedFunc<(i64,), i64>>();
    send_sync::<InterruptHandle>();
    send::<Store>();
};
