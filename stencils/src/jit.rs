//! The JIT tier: what a stencil body's primitives compile to inside a stencil.
//!
//! Values the JIT knows only at run time are *holes*: undefined symbols whose
//! addresses the JIT patches in. With `-C relocation-model=static -C code-model=small`
//! LLVM folds a hole used as a frame offset straight into the memory operand on x86-64
//! (`add rax, [rsi + _JIT_B]`), so a register access is one instruction. On aarch64 a
//! symbol's address is an `adrp` + `add` pair, which the JIT rewrites to `movz` +
//! `movk` for the small values operands are, then `ldr x8, [x1, x8]`.
//!
//! | symbol | value the JIT patches in |
//! |---|---|
//! | `_JIT_A`, `_JIT_B`, `_JIT_C` | the field's operand: a register's byte offset in the frame, an immediate plus [`IMM_BIAS`](crate::IMM_BIAS), or a data address (constants, tables) |
//! | `_JIT_D` | `FmaF64`'s Y register offset |
//! | `_JIT_FRAME` | the frame size of the function in bytes (where a callee's frame starts) |
//! | `_JIT_PC`, `_JIT_FUNC` | instruction index and function index, for traps and deopt |
//! | `_JIT_CONTINUE` | the next instruction's code |
//! | `_JIT_TARGET` | the branch target's code |
//! | `_JIT_CALLEE` | the callee's entry |

use crate::helpers::ffi;
use crate::*;

extern "C" {
    static _JIT_A: u8;
    static _JIT_B: u8;
    static _JIT_C: u8;
    static _JIT_D: u8;
    static _JIT_FRAME: u8;
    static _JIT_PC: u8;
    static _JIT_FUNC: u8;
}

#[cfg(target_arch = "x86_64")]
extern "sysv64" {
    fn _JIT_CONTINUE(ctx: *mut Ctx, frame: *mut u64) -> u64;
    fn _JIT_TARGET(ctx: *mut Ctx, frame: *mut u64) -> u64;
    fn _JIT_CALLEE(ctx: *mut Ctx, frame: *mut u64) -> u64;
}
#[cfg(not(target_arch = "x86_64"))]
extern "C" {
    fn _JIT_CONTINUE(ctx: *mut Ctx, frame: *mut u64) -> u64;
    fn _JIT_TARGET(ctx: *mut Ctx, frame: *mut u64) -> u64;
    fn _JIT_CALLEE(ctx: *mut Ctx, frame: *mut u64) -> u64;
}

macro_rules! hole {
    ($sym:ident) => {
        core::ptr::addr_of!($sym) as usize
    };
}

#[inline(always)]
fn field_value(field: Field) -> usize {
    match field {
        Field::A => hole!(_JIT_A),
        Field::B => hole!(_JIT_B),
        Field::C => hole!(_JIT_C),
    }
}

/// The address of data the JIT placed next to the code (constants, tables).
/// On x86-64 a plain symbol address could be folded into an absolute `[disp32 +
/// index*8]` operand, which cannot reach a region above 2 GiB; a RIP-relative `lea`
/// reaches any data placed within the code region. On aarch64 every symbol address is
/// already PC-relative (`adrp` + `add`, ±4 GiB), so the plain address reaches it.
#[inline(always)]
fn data_address(field: Field) -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        let p: usize;
        unsafe {
            match field {
                Field::A => core::arch::asm!("lea {0}, [rip + {1}]", out(reg) p, sym _JIT_A,
                    options(pure, nomem, nostack, preserves_flags)),
                Field::B => core::arch::asm!("lea {0}, [rip + {1}]", out(reg) p, sym _JIT_B,
                    options(pure, nomem, nostack, preserves_flags)),
                Field::C => core::arch::asm!("lea {0}, [rip + {1}]", out(reg) p, sym _JIT_C,
                    options(pure, nomem, nostack, preserves_flags)),
            }
        }
        p
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        field_value(field)
    }
}

#[inline(always)]
fn stack_pointer() -> usize {
    let sp: usize;
    #[cfg(target_arch = "x86_64")]
    unsafe {
        core::arch::asm!("mov {}, rsp", out(reg) sp, options(nomem, nostack, preserves_flags))
    };
    #[cfg(target_arch = "aarch64")]
    unsafe {
        core::arch::asm!("mov {}, sp", out(reg) sp, options(nomem, nostack, preserves_flags))
    };
    sp
}

/// An operand's JIT form, read from its hole.
pub trait FromHole {
    fn from_hole(field: Field) -> Self;
}

macro_rules! offset_from_hole {
    ($($t:ident),*) => {$(
        impl FromHole for $t {
            #[inline(always)]
            fn from_hole(field: Field) -> Self { $t(field_value(field)) }
        }
    )*};
}
offset_from_hole!(RegI, RegF, RegC, Callee, ArgsI, ArgsF, ArgsAny, ConstStr);

macro_rules! data_from_hole {
    ($($t:ident),*) => {$(
        impl FromHole for $t {
            #[inline(always)]
            fn from_hole(field: Field) -> Self { $t(data_address(field)) }
        }
    )*};
}
data_from_hole!(ConstI64, ConstF64, Table);

impl FromHole for Imm {
    #[inline(always)]
    fn from_hole(field: Field) -> Self {
        Imm(field_value(field) as i64 - IMM_BIAS)
    }
}

impl FromHole for Target {
    #[inline(always)]
    fn from_hole(_: Field) -> Self {
        Target
    }
}

impl FromHole for Dest {
    /// The JIT resolves the bank when it computes the offset.
    #[inline(always)]
    fn from_hole(field: Field) -> Self {
        Dest {
            bank: Bank::I64,
            reg: field_value(field),
        }
    }
}

impl FromHole for FmaPair {
    #[inline(always)]
    fn from_hole(_: Field) -> Self {
        FmaPair {
            x: RegF(hole!(_JIT_C)),
            y: RegF(hole!(_JIT_D)),
        }
    }
}

/// The state of one stencil: the run context and the activation's frame.
pub struct JitTier {
    ctx: *mut Ctx,
    frame: *mut u64,
}

impl JitTier {
    #[inline(always)]
    pub unsafe fn new(ctx: *mut Ctx, frame: *mut u64) -> JitTier {
        JitTier { ctx, frame }
    }

    #[inline(always)]
    fn slot(&self, offset: usize) -> *mut u64 {
        unsafe { (self.frame as *mut u8).add(offset) as *mut u64 }
    }

    /// Ends the stencil: every `Flow` becomes a tail jump or a returned status.
    #[inline(always)]
    pub unsafe fn finish(self, flow: Flow) -> u64 {
        unsafe {
            match flow {
                Flow::Next => _JIT_CONTINUE(self.ctx, self.frame),
                Flow::Jump => _JIT_TARGET(self.ctx, self.frame),
                Flow::TailCall => _JIT_CALLEE(self.ctx, self.frame),
                Flow::Return(bits) => {
                    (*self.ctx).ret = bits;
                    Exit::RETURNED
                }
                Flow::Trap(t) => {
                    Exit::trap_status(t, hole!(_JIT_FUNC) as u64, hole!(_JIT_PC) as u64)
                }
                Flow::Deopt => {
                    Exit::deopt_status(hole!(_JIT_FUNC) as u64, hole!(_JIT_PC) as u64 + 1)
                }
                Flow::Exit(status) => status,
                // Only the interpreter's tier produces `Enter`; `#[stencil]` bodies may not.
                Flow::Enter => u64::MAX,
            }
        }
    }
}

impl Tier for JitTier {
    #[inline(always)]
    fn i(&self, r: RegI) -> i64 {
        unsafe { *(self.slot(r.0) as *const i64) }
    }
    #[inline(always)]
    fn set_i(&mut self, r: RegI, v: i64) {
        unsafe { *(self.slot(r.0) as *mut i64) = v }
    }
    #[inline(always)]
    fn f(&self, r: RegF) -> f64 {
        unsafe { *(self.slot(r.0) as *const f64) }
    }
    #[inline(always)]
    fn set_f(&mut self, r: RegF, v: f64) {
        unsafe { *(self.slot(r.0) as *mut f64) = v }
    }
    #[inline(always)]
    fn cell(&self, r: RegC) -> u64 {
        unsafe { *self.slot(r.0) }
    }
    #[inline(always)]
    fn set_cell(&mut self, r: RegC, v: u64) {
        unsafe { *self.slot(r.0) = v }
    }

    #[inline(always)]
    fn const_i64(&self, k: ConstI64) -> i64 {
        unsafe { *(k.0 as *const i64) }
    }
    #[inline(always)]
    fn const_f64(&self, k: ConstF64) -> f64 {
        unsafe { *(k.0 as *const f64) }
    }
    /// The JIT lays a table out as its length followed by its entries.
    #[inline(always)]
    fn lookup(&self, t: Table, index: i64) -> Option<i64> {
        let table = t.0 as *const i64;
        unsafe {
            if (index as u64) < (*table as u64) {
                Some(*table.add(1 + index as usize))
            } else {
                None
            }
        }
    }

    #[inline(always)]
    fn sqrt(&self, x: f64) -> f64 {
        #[cfg(target_arch = "x86_64")]
        unsafe {
            use core::arch::x86_64::*;
            _mm_cvtsd_f64(_mm_sqrt_sd(_mm_set_sd(x), _mm_set_sd(x)))
        }
        #[cfg(target_arch = "aarch64")]
        unsafe {
            use core::arch::aarch64::*;
            vget_lane_f64::<0>(vsqrt_f64(vdup_n_f64(x)))
        }
    }

    /// On x86-64, FMA is not in the baseline: the stencil carries the instruction and
    /// the JIT picks it only when the CPU reports FMA (else `FmaF64Baseline`). aarch64
    /// always has it: both stencils compile to `fmadd`.
    #[inline(always)]
    fn fma(&self, x: f64, y: f64, z: f64) -> f64 {
        #[cfg(target_arch = "x86_64")]
        unsafe {
            let mut acc = z;
            core::arch::asm!("vfmadd231sd {acc}, {x}, {y}", acc = inout(xmm_reg) acc, x = in(xmm_reg) x,
                y = in(xmm_reg) y, options(pure, nomem, nostack, preserves_flags));
            acc
        }
        #[cfg(target_arch = "aarch64")]
        unsafe {
            use core::arch::aarch64::*;
            vget_lane_f64::<0>(vfma_f64(vdup_n_f64(z), vdup_n_f64(x), vdup_n_f64(y)))
        }
    }

    #[inline(always)]
    fn fma_baseline(&self, x: f64, y: f64, z: f64) -> f64 {
        #[cfg(target_arch = "x86_64")]
        unsafe {
            ffi::vm3_fma(x, y, z)
        }
        #[cfg(not(target_arch = "x86_64"))]
        self.fma(x, y, z)
    }

    /// The arguments are already in the callee's frame (the JIT emitted moves in front
    /// of this stencil). Depth and native stack are checked before the call, so deep
    /// recursion traps instead of overflowing either stack.
    #[inline(always)]
    fn call(&mut self, _callee: Callee, _args: usize, dest: Dest) -> Flow {
        let ctx = self.ctx;
        unsafe {
            if (*ctx).depth >= (*ctx).depth_limit || stack_pointer() < (*ctx).native_stack_limit {
                return Flow::Trap(Trap::CallStackOverflow);
            }
            (*ctx).depth += 1;
            let callee_frame = self.slot(hole!(_JIT_FRAME));
            let mut status = _JIT_CALLEE(ctx, callee_frame);
            if status != Exit::RETURNED
                && matches!(
                    Exit::decode(status),
                    Some(Exit {
                        kind: ExitKind::Deopt,
                        ..
                    })
                )
            {
                status = ffi::vm3_deopt_resume(ctx, callee_frame, status);
            }
            (*ctx).depth -= 1;
            if status != Exit::RETURNED {
                return Flow::Exit(status);
            }
            *self.slot(dest.reg) = (*ctx).ret;
        }
        Flow::Next
    }

    #[inline(always)]
    fn tail_call(&mut self, _callee: Callee, _args: usize) -> Flow {
        Flow::TailCall
    }

    #[inline(always)]
    fn heap(&self) -> &crate::heap::HeapView {
        unsafe { &*(*self.ctx).heap }
    }
    /// The operand is the string's program-wide index.
    #[inline(always)]
    fn str_const(&self, k: ConstStr) -> u64 {
        self.heap().str_const(k.0)
    }
    #[inline(always)]
    fn new_list(&mut self, cap: i64) -> u64 {
        unsafe { ffi::vm3_new_list(self.ctx, cap) }
    }
    #[inline(always)]
    fn new_map(&mut self, cap: i64) -> u64 {
        unsafe { ffi::vm3_new_map(self.ctx, cap) }
    }
    #[inline(always)]
    fn concat(&mut self, a: u64, b: u64) -> u64 {
        unsafe { ffi::vm3_concat(self.ctx, a, b) }
    }
    #[inline(always)]
    fn list_push_grow(&mut self, list: u64, item: u64) -> u64 {
        unsafe { ffi::vm3_list_push_grow(self.ctx, list, item) }
    }
    #[inline(always)]
    fn map_set_grow(&mut self, map: u64, key: i64, value: i64) -> u64 {
        unsafe { ffi::vm3_map_set_grow(self.ctx, map, key, value) }
    }
}
