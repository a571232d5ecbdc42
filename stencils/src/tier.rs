//! The interface a stencil body is written against, and what it returns.

use crate::heap::HeapView;
use crate::{
    ArgStart, Callee, ConstF64, ConstI64, ConstStr, Dest, Imm, RegC, RegF, RegI, Table, Trap,
};

/// What happens after an instruction. The tier maps each variant to its own control
/// transfer: the interpreter moves its pc, a stencil tail-jumps to a hole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Continue with the next instruction.
    Next,
    /// Continue at the instruction's branch target.
    Jump,
    /// Return these bits from the function.
    Return(u64),
    /// Stop the run with a trap at this instruction.
    Trap(Trap),
    /// Leave compiled code here; the interpreter resumes at the next instruction.
    /// The interpreter itself treats it as `Next`.
    Deopt,
    /// A call or tail call switched activations (interpreter only).
    Enter,
    /// Jump to the callee of a tail call whose arguments are in place (JIT only).
    TailCall,
    /// No handler knows the instruction (`dispatch`'s answer to a code the verifier
    /// would have refused, so that the interpreter can report it). Compiled code never
    /// produces it; a trap there leaves through `vm3_trap_exit` instead.
    Unwind,
}

impl Flow {
    /// `Jump` when `cond` holds, else `Next`: the shape of every compare-and-branch.
    #[inline(always)]
    pub fn branch(cond: bool) -> Flow {
        if cond {
            Flow::Jump
        } else {
            Flow::Next
        }
    }
}

/// The comparison of a compare-and-branch against an immediate ([`Tier::branch_imm`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cond {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// Everything a stencil body may touch. Each method is a primitive that compiles to a
/// few machine instructions in both tiers; anything bigger belongs in a helper
/// (see [`crate::helpers`]).
pub trait Tier {
    fn i(&self, r: RegI) -> i64;
    fn set_i(&mut self, r: RegI, v: i64);
    fn f(&self, r: RegF) -> f64;
    fn set_f(&mut self, r: RegF, v: f64);
    fn cell(&self, r: RegC) -> u64;
    fn set_cell(&mut self, r: RegC, v: u64);
    /// Sets every frame slot from register `from` up to (not including) register `to`,
    /// whatever their banks, to `bits`: a building block of compiled prologues
    /// (`#[stencil(internal, frame_only)]`), not used by opcodes.
    fn fill_slots(&mut self, from: RegI, to: RegI, bits: u64);

    fn const_i64(&self, k: ConstI64) -> i64;
    fn const_f64(&self, k: ConstF64) -> f64;
    /// Word `i` from constant `k` on (constants the JIT lays out in groups).
    fn const_i64_at(&self, k: ConstI64, i: usize) -> i64;
    /// Entry `index` of the table, or `None` outside it.
    fn lookup(&self, t: Table, index: i64) -> Option<i64>;

    /// Correctly rounded square root.
    fn sqrt(&self, x: f64) -> f64;
    /// `x * y + z` with a single rounding, by the CPU's fused multiply-add instruction
    /// where the target has one (the JIT only uses this on CPUs that do).
    fn fma(&self, x: f64, y: f64, z: f64) -> f64;
    /// The same result without relying on an instruction outside the target's baseline
    /// (x86-64 without FMA calls a helper).
    fn fma_baseline(&self, x: f64, y: f64, z: f64) -> f64;

    /// Call `callee` with arguments from register `args` on and put its result in
    /// `dest`. The JIT places the arguments with separate moves before the call
    /// stencil, so it ignores `args`.
    fn call(&mut self, callee: Callee, args: ArgStart, dest: Dest) -> Flow;
    /// Replace the current activation by `callee` with arguments from `args` on.
    fn tail_call(&mut self, callee: Callee, args: ArgStart) -> Flow;

    /// The run-limit check of a run with limits on, at a function's entry and at every
    /// target of a backward branch: `Interrupted` if another thread asked the run to
    /// stop, else `OutOfFuel` if no fuel is left, else one unit of fuel is used.
    fn check_limits(&mut self) -> Option<Trap>;

    /// Whether the tier implements [`Tier::branch_imm`]; when not, the compare-and-branch
    /// stencils compare as Rust does.
    const BRANCHES_ON_IMMEDIATES: bool = false;
    /// `if iA <cond> B goto the target`, for the opcodes whose immediate is operand B
    /// (`CmpLtI64KBr` and its kin: `a: RegI, b: Imm, c: Target`). x86-64's JIT compares
    /// with the patched immediate inside the instruction (`cmp reg, imm32; jcc`), where
    /// LLVM first materialises a patched value in a scratch register: a symbol's address
    /// is an immediate operand only with metadata Rust cannot attach.
    #[inline(always)]
    fn branch_imm(&self, cond: Cond, a: RegI, b: Imm) -> Flow {
        let (x, k) = (self.i(a), b.0);
        Flow::branch(match cond {
            Cond::Eq => x == k,
            Cond::Ne => x != k,
            Cond::Lt => x < k,
            Cond::Le => x <= k,
            Cond::Gt => x > k,
            Cond::Ge => x >= k,
        })
    }

    /// The heap's arenas, for the hot paths in [`crate::heap`].
    fn heap(&self) -> &HeapView;
    /// The handle of a string constant.
    fn str_const(&self, k: ConstStr) -> u64;

    // The runtime's heap operations: what allocates. Each returns a handle or 0 for
    // done, or a trap code (see [`crate::cell::helper_result`]); in compiled code each
    // is a call to the helper of the same name in [`crate::helpers`].

    /// A new empty list with room for `cap` items (`vm3_new_list`).
    fn new_list(&mut self, cap: i64) -> u64;
    /// A new empty map with room for `cap` keys (`vm3_new_map`).
    fn new_map(&mut self, cap: i64) -> u64;
    /// A new string, the bytes of string `a` then of string `b` (`vm3_concat`).
    fn concat(&mut self, a: u64, b: u64) -> u64;
    /// Grows a full list and appends `item` (`vm3_list_push_grow`).
    fn list_push_grow(&mut self, list: u64, item: u64) -> u64;
    /// Grows a map that has no room for a new key and sets it (`vm3_map_set_grow`).
    fn map_set_grow(&mut self, map: u64, key: i64, value: i64) -> u64;
}
