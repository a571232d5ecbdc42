//! What compiled code and helpers share: the run context and how an activation ends.

/// State shared by every stencil of a run, passed in the first argument register.
/// The layout is fixed because compiled code addresses its fields directly.
#[repr(C)]
#[derive(Debug)]
pub struct Ctx {
    /// How the run is ending, when it is: 0 while compiled code runs normally, else an
    /// exit status (a trap or a deopt, see [`Exit`]) set by the stencil that stopped.
    /// A stencil returns its function's result bits; a trap stores its status here and
    /// leaves through `vm3_trap_exit`, which returns from the runtime's entry at once,
    /// so no caller checks anything after a call.
    pub exit: u64,
    /// How many more activations may begin before the depth limit: the limit minus the
    /// activations live (the entry function counts as one), as the runtime enters
    /// compiled code and as a deopting stencil leaves it for the interpreter. While
    /// compiled code runs the count lives in a callee-saved machine register that is in
    /// no stencil's signature (r15 on x86-64, x28 on aarch64): a call takes one and gives it back with a register
    /// decrement and increment inside its `asm!` block, which leaves the register as it
    /// found it, so every stencil and helper preserves it without knowing. In memory
    /// the count made every call a chain of two read-modify-writes of one location,
    /// each waiting for the last through store forwarding: half of `fib_rec`'s time.
    pub calls_left: u64,
    /// The embedder's runtime, for helpers. Opaque to stencils.
    pub runtime: *mut core::ffi::c_void,
    /// The run's heap, kept current by the runtime across every helper call.
    pub heap: *const crate::heap::HeapView,
    /// Run limits (only code compiled with them reads these, see
    /// [`crate::Tier::check_limits`]): fuel left, counted down at loop headers and
    /// function entries.
    pub fuel: u64,
    /// Run limits: a flag another thread sets to stop the run (non-zero: stop).
    pub interrupt: *const core::sync::atomic::AtomicU64,
    /// Where the runtime entered compiled code, for a trap to leave every compiled
    /// activation at once (`vm3_trap_exit`, `jit/src/runtime.rs`): the stack pointer
    /// there (on x86-64 the slot of the entry call's return address)...
    pub entry_sp: u64,
    /// ...and, on aarch64, the address that entry call returns to.
    pub entry_return: u64,
}

/// The reasons a run can trap (spec §3).
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Trap {
    DivisionByZero = 1,
    IndexOutOfRange = 2,
    BadHandle = 3,
    CallStackOverflow = 4,
    IntegerDoesNotFitInCell = 5,
    HeapLimitExceeded = 6,
    /// The run used up its fuel (a run limit of the embedder, not of spec §3).
    OutOfFuel = 7,
    /// Another thread interrupted the run (a run limit of the embedder).
    Interrupted = 8,
}

impl Trap {
    pub const fn from_u8(v: u8) -> Option<Trap> {
        match v {
            1 => Some(Trap::DivisionByZero),
            2 => Some(Trap::IndexOutOfRange),
            3 => Some(Trap::BadHandle),
            4 => Some(Trap::CallStackOverflow),
            5 => Some(Trap::IntegerDoesNotFitInCell),
            6 => Some(Trap::HeapLimitExceeded),
            7 => Some(Trap::OutOfFuel),
            8 => Some(Trap::Interrupted),
            _ => None,
        }
    }

    /// The reason exactly as spec §3 and §5 spell it.
    pub const fn message(self) -> &'static str {
        match self {
            Trap::DivisionByZero => "division by zero",
            Trap::IndexOutOfRange => "index out of range",
            Trap::BadHandle => "bad handle",
            Trap::CallStackOverflow => "call stack overflow",
            Trap::IntegerDoesNotFitInCell => "integer does not fit in a cell",
            Trap::HeapLimitExceeded => "heap limit exceeded",
            Trap::OutOfFuel => "out of fuel",
            Trap::Interrupted => "interrupted",
        }
    }
}

/// How an activation of compiled code ended, other than by returning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitKind {
    /// Trap at (`func`, `pc`).
    Trap(Trap),
    /// Leave native code; the interpreter continues `func` at `pc` on the same frame.
    Deopt,
}

/// A decoded exit status: `kind << 56 | reason << 48 | func << 32 | pc`, stored in
/// [`Ctx::exit`] by the stencil that traps or deopts (compiled code returns the
/// result's bits; a single integer return keeps every continuation a tail jump, where a
/// two-word struct return makes LLVM turn early-return stencils' continuations into
/// calls).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exit {
    pub kind: ExitKind,
    pub func: u32,
    pub pc: u32,
}

const KIND_TRAP: u64 = 1;
const KIND_DEOPT: u64 = 2;

impl Exit {
    /// [`Ctx::exit`] while no exit is under way.
    pub const NONE: u64 = 0;

    #[inline(always)]
    pub const fn trap_status(trap: Trap, func: u64, pc: u64) -> u64 {
        KIND_TRAP << 56 | (trap as u64) << 48 | (func & 0xFFFF) << 32 | (pc & 0xFFFF_FFFF)
    }

    #[inline(always)]
    pub const fn deopt_status(func: u64, pc: u64) -> u64 {
        KIND_DEOPT << 56 | (func & 0xFFFF) << 32 | (pc & 0xFFFF_FFFF)
    }

    /// Decodes a non-zero status; `None` for 0 (returned) or a malformed status.
    pub const fn decode(status: u64) -> Option<Exit> {
        let func = ((status >> 32) & 0xFFFF) as u32;
        let pc = (status & 0xFFFF_FFFF) as u32;
        let kind = match status >> 56 {
            KIND_TRAP => match Trap::from_u8((status >> 48) as u8) {
                Some(t) => ExitKind::Trap(t),
                None => return None,
            },
            KIND_DEOPT => ExitKind::Deopt,
            _ => return None,
        };
        Some(Exit { kind, func, pc })
    }

    pub const fn encode(self) -> u64 {
        match self.kind {
            ExitKind::Trap(t) => Exit::trap_status(t, self.func as u64, self.pc as u64),
            ExitKind::Deopt => Exit::deopt_status(self.func as u64, self.pc as u64),
        }
    }
}
