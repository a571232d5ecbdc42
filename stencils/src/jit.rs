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

// Trapping stencils store the exit status as two 32-bit halves (`JitTier::finish`).
#[cfg(target_endian = "big")]
compile_error!("the stencils store exit statuses little-endian");

use crate::helpers::ffi;
use crate::variant::{CACHED_FLOAT, CACHED_INT, FRAME};
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

/// Declares the continuation holes with the stencil signature of this target.
macro_rules! continuations {
    ($abi:literal) => {
        extern $abi {
            fn _JIT_CONTINUE(ctx: *mut Ctx, frame: *mut u64,
                r0: u64, r1: u64, r2: u64, r3: u64,
                f0: f64, f1: f64, f2: f64, f3: f64, f4: f64, f5: f64, f6: f64, f7: f64) -> u64;
            fn _JIT_TARGET(ctx: *mut Ctx, frame: *mut u64,
                r0: u64, r1: u64, r2: u64, r3: u64,
                f0: f64, f1: f64, f2: f64, f3: f64, f4: f64, f5: f64, f6: f64, f7: f64) -> u64;
            fn _JIT_CALLEE(ctx: *mut Ctx, frame: *mut u64,
                r0: u64, r1: u64, r2: u64, r3: u64,
                f0: f64, f1: f64, f2: f64, f3: f64, f4: f64, f5: f64, f6: f64, f7: f64) -> u64;
        }
    };
}
#[cfg(target_arch = "x86_64")]
continuations!("sysv64");
#[cfg(not(target_arch = "x86_64"))]
continuations!("C");

/// Calls or tail-calls a continuation hole with the tier's state.
macro_rules! pass_on {
    ($hole:ident, $ctx:expr, $frame:expr, $r:expr, $f:expr) => {{
        let (r, f) = ($r, $f);
        $hole(
            $ctx, $frame, r[0], r[1], r[2], r[3], f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7],
        )
    }};
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

/// The JIT form of a register operand is the number of the hole it came from (A, B, C,
/// or 3 for `_JIT_D`): where the register lives is the variant's business
/// (`JitTier`'s const parameters), and its frame offset is that hole's value.
#[inline(always)]
const fn field_tag(field: Field) -> usize {
    field as usize
}

const TAG_D: usize = 3;

#[inline(always)]
fn tag_offset(tag: usize) -> usize {
    match tag {
        0 => hole!(_JIT_A),
        1 => hole!(_JIT_B),
        2 => hole!(_JIT_C),
        _ => hole!(_JIT_D),
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

/// Calls a heap helper through its register-preserving thunk (jit/src/preserving.rs):
/// the run context where it already is, up to three arguments and the result in the
/// thunk's registers, every other register kept, the cached ones included. From LLVM's
/// view the call is an instruction with a few register operands, so the stencil keeps
/// its cached registers where they are and needs no frame for the slow path.
macro_rules! call_preserving {
    ($thunk:ident, $ctx:expr, $a:expr) => {
        call_preserving!(@call $thunk, $ctx, $a as u64, 0u64, 0u64)
    };
    ($thunk:ident, $ctx:expr, $a:expr, $b:expr) => {
        call_preserving!(@call $thunk, $ctx, $a as u64, $b as u64, 0u64)
    };
    ($thunk:ident, $ctx:expr, $a:expr, $b:expr, $c:expr) => {
        call_preserving!(@call $thunk, $ctx, $a as u64, $b as u64, $c as u64)
    };
    (@call $thunk:ident, $ctx:expr, $a:expr, $b:expr, $c:expr) => {{
        let ctx: *mut Ctx = $ctx;
        let (a, b, c): (u64, u64, u64) = ($a, $b, $c);
        let result: u64;
        #[cfg(target_arch = "x86_64")]
        core::arch::asm!(
            "call {thunk}",
            thunk = sym ffi::$thunk,
            in("rdi") ctx,
            inout("r10") a => _,
            inout("r11") b => _,
            inout("rax") c => result,
        );
        #[cfg(target_arch = "aarch64")]
        core::arch::asm!(
            "bl {thunk}",
            thunk = sym ffi::$thunk,
            in("x0") ctx,
            inout("x9") a => result,
            inout("x10") b => _,
            inout("x11") c => _,
            out("x16") _, out("x17") _, out("x30") _,
            out("v16") _, out("v17") _, out("v18") _, out("v19") _,
            out("v20") _, out("v21") _, out("v22") _, out("v23") _,
            out("v24") _, out("v25") _, out("v26") _, out("v27") _,
            out("v28") _, out("v29") _, out("v30") _, out("v31") _,
        );
        result
    }};
}

/// How many more activations may begin ([`Ctx::calls_left`], which lives in r15 or x28
/// while compiled code runs; `call_compiled` takes one and gives it back around the
/// call).
#[inline(always)]
fn calls_left() -> u64 {
    let left: u64;
    #[cfg(target_arch = "x86_64")]
    unsafe {
        core::arch::asm!("mov {}, r15", out(reg) left, options(pure, nomem, nostack, preserves_flags))
    };
    #[cfg(target_arch = "aarch64")]
    unsafe {
        core::arch::asm!("mov {}, x28", out(reg) left, options(pure, nomem, nostack, preserves_flags))
    };
    left
}

/// Says that compiled code returns with the run context in its register, as x86-64's
/// `call_compiled` expects: free where nothing moved it, one `mov` after a helper call.
#[inline(always)]
fn keep_context(ctx: *mut Ctx) {
    #[cfg(target_arch = "x86_64")]
    unsafe {
        core::arch::asm!("", in("rdi") ctx, options(nomem, nostack, preserves_flags));
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = ctx;
}

/// Calls the callee's code with the tier's state and returns its result's bits: the
/// callee's frame in the frame register, the arguments it keeps in machine registers in
/// them already. Written as `asm!` so that the caller's frame is kept on the native stack
/// across the call instead of in a callee-saved register that LLVM would push and pop
/// around the whole stencil and shuffle into and out of the argument registers. Every
/// cached register comes back holding whatever the callee left there, and `r` and `f`
/// say so (the JIT saved what it needs in the frame), which keeps LLVM from preserving
/// their old values across the call.
///
/// x86-64: compiled code returns with the run context still in `rdi` (`JitTier::finish`
/// makes every return say so), so only the frame is pushed, and the `asm!` is `nostack`:
/// LLVM then adds no alignment push for it. One push and the return address keep the
/// callee's stack aligned as at any call, since a call stencil moves the stack pointer
/// nowhere else (and stencils keep nothing below it: `-Cno-redzone`); the harvester's
/// tests check both over the table. Pushing the context too cost an alignment push and
/// two more stack operations per call, 16% of `fib_rec`.
#[inline(always)]
unsafe fn call_compiled(
    ctx: *mut Ctx,
    frame: *mut u64,
    callee_frame: *mut u64,
    r: &mut [u64; CACHED_INT],
    f: &mut [f64; CACHED_FLOAT],
) -> (*mut Ctx, *mut u64, u64) {
    let (ctx_after, frame_after, bits): (*mut Ctx, *mut u64, u64);
    #[cfg(target_arch = "x86_64")]
    unsafe {
        core::arch::asm!(
            "push {frame}",
            "dec r15",
            "call {callee}",
            "inc r15",
            "pop rsi",
            frame = in(reg) frame,
            callee = sym _JIT_CALLEE,
            inout("rdi") ctx => ctx_after,
            inout("rsi") callee_frame => frame_after,
            inout("rdx") r[0],
            inout("rcx") r[1],
            inout("r8") r[2],
            inout("r9") r[3],
            inout("xmm0") f[0],
            inout("xmm1") f[1],
            inout("xmm2") f[2],
            inout("xmm3") f[3],
            inout("xmm4") f[4],
            inout("xmm5") f[5],
            inout("xmm6") f[6],
            inout("xmm7") f[7],
            lateout("rax") bits,
            clobber_abi("sysv64"),
            options(nostack),
        );
    }
    #[cfg(target_arch = "aarch64")]
    unsafe {
        core::arch::asm!(
            "sub x28, x28, #1",
            "stp x0, {frame}, [sp, #-16]!",
            "bl {callee}",
            "mov x8, x0",
            "ldp x0, x1, [sp], #16",
            "add x28, x28, #1",
            frame = in(reg) frame,
            callee = sym _JIT_CALLEE,
            inout("x0") ctx => ctx_after,
            inout("x1") callee_frame => frame_after,
            inout("x2") r[0],
            inout("x3") r[1],
            inout("x4") r[2],
            inout("x5") r[3],
            inout("v0") f[0],
            inout("v1") f[1],
            inout("v2") f[2],
            inout("v3") f[3],
            inout("v4") f[4],
            inout("v5") f[5],
            inout("v6") f[6],
            inout("v7") f[7],
            lateout("x8") bits,
            clobber_abi("C"),
        );
    }
    (ctx_after, frame_after, bits)
}

/// An operand's JIT form, read from its hole.
pub trait FromHole {
    fn from_hole(field: Field) -> Self;
}

macro_rules! offset_from_hole {
    ($($t:ident),*) => {$(
        impl FromHole for $t {
            #[inline(always)]
            fn from_hole(field: Field) -> Self { $t::__tier_new(field_value(field)) }
        }
    )*};
}
offset_from_hole!(Callee, ArgsI, ArgsF, ArgsAny, ConstStr);

macro_rules! register_from_hole {
    ($($t:ident),*) => {$(
        impl FromHole for $t {
            #[inline(always)]
            fn from_hole(field: Field) -> Self { $t::__tier_new(field_tag(field)) }
        }
    )*};
}
register_from_hole!(RegI, RegF, RegC);

macro_rules! data_from_hole {
    ($($t:ident),*) => {$(
        impl FromHole for $t {
            #[inline(always)]
            fn from_hole(field: Field) -> Self { $t::__tier_new(data_address(field)) }
        }
    )*};
}
data_from_hole!(ConstI64, Table);

impl FromHole for ConstF64 {
    /// On x86-64 the field itself (`const_f64` loads straight from it), elsewhere the
    /// constant's address.
    #[inline(always)]
    fn from_hole(field: Field) -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            ConstF64::__tier_new(field as usize)
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            ConstF64::__tier_new(data_address(field))
        }
    }
}

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
        Dest::__tier_new(Bank::I64, field_tag(field))
    }
}

impl FromHole for FmaPair {
    #[inline(always)]
    fn from_hole(_: Field) -> Self {
        FmaPair {
            x: RegF::__tier_new(field_tag(Field::C)),
            y: RegF::__tier_new(TAG_D),
        }
    }
}

/// The state of one stencil variant: the run context, the activation's frame and the
/// cached machine registers, which arrive as arguments and are passed on to the
/// continuation. `A`..`D` say where the registers of fields A, B, C and D live:
/// [`FRAME`] or the number of a cached register of the operand's bank. They are
/// constants, so every register access compiles to a frame access or to nothing.
pub struct JitTier<const A: u8, const B: u8, const C: u8, const D: u8> {
    ctx: *mut Ctx,
    frame: *mut u64,
    r: [u64; CACHED_INT],
    f: [f64; CACHED_FLOAT],
}

impl<const A: u8, const B: u8, const C: u8, const D: u8> JitTier<A, B, C, D> {
    #[inline(always)]
    pub unsafe fn new(
        ctx: *mut Ctx,
        frame: *mut u64,
        r: [u64; CACHED_INT],
        f: [f64; CACHED_FLOAT],
    ) -> Self {
        JitTier { ctx, frame, r, f }
    }

    /// Where the register of hole `tag` lives.
    #[inline(always)]
    const fn loc(tag: usize) -> u8 {
        match tag {
            0 => A,
            1 => B,
            2 => C,
            _ => D,
        }
    }

    #[inline(always)]
    fn slot(&self, offset: usize) -> *mut u64 {
        unsafe { (self.frame as *mut u8).add(offset) as *mut u64 }
    }

    #[inline(always)]
    fn read_int(&self, tag: usize) -> u64 {
        match Self::loc(tag) {
            FRAME => unsafe { *self.slot(tag_offset(tag)) },
            k => self.r[k as usize % CACHED_INT],
        }
    }

    #[inline(always)]
    fn write_int(&mut self, tag: usize, v: u64) {
        match Self::loc(tag) {
            FRAME => unsafe { *self.slot(tag_offset(tag)) = v },
            k => self.r[k as usize % CACHED_INT] = v,
        }
    }

    #[inline(always)]
    fn read_float(&self, tag: usize) -> f64 {
        match Self::loc(tag) {
            FRAME => unsafe { *(self.slot(tag_offset(tag)) as *const f64) },
            k => self.f[k as usize % CACHED_FLOAT],
        }
    }

    #[inline(always)]
    fn write_float(&mut self, tag: usize, v: f64) {
        match Self::loc(tag) {
            FRAME => unsafe { *(self.slot(tag_offset(tag)) as *mut f64) = v },
            k => self.f[k as usize % CACHED_FLOAT] = v,
        }
    }

    /// Ends the stencil: every `Flow` becomes a tail jump, or a return of the result's
    /// bits, or an exit status stored in the context.
    #[inline(always)]
    pub unsafe fn finish(self, flow: Flow) -> u64 {
        unsafe {
            let exit = match flow {
                Flow::Next => return pass_on!(_JIT_CONTINUE, self.ctx, self.frame, self.r, self.f),
                Flow::Jump => return pass_on!(_JIT_TARGET, self.ctx, self.frame, self.r, self.f),
                Flow::TailCall => {
                    return pass_on!(_JIT_CALLEE, self.ctx, self.frame, self.r, self.f)
                }
                Flow::Return(bits) => {
                    keep_context(self.ctx);
                    return bits;
                }
                Flow::Trap(t) => {
                    // Stored as its two halves, each one 32-bit store of patched and
                    // constant bits (the status is little-endian in memory on every
                    // target): computing the 64-bit status from the function and pc
                    // holes takes LLVM eight instructions in every trapping stencil.
                    let status = Exit::trap_status(t, 0, 0);
                    let halves = core::ptr::addr_of_mut!((*self.ctx).exit) as *mut u32;
                    halves.write(hole!(_JIT_PC) as u32);
                    halves
                        .add(1)
                        .write((status >> 32) as u32 | hole!(_JIT_FUNC) as u32);
                    // Every compiled activation ends with this one: straight back to the
                    // runtime's entry, so callers check nothing after a call.
                    return ffi::vm3_trap_exit(self.ctx);
                }
                // The interpreter finishes this activation from the frame (the JIT stored
                // every cached register there first) and its result is this code's: the
                // caller never sees the deopt, so calls need no path for it.
                Flow::Deopt => {
                    let status =
                        Exit::deopt_status(hole!(_JIT_FUNC) as u64, hole!(_JIT_PC) as u64 + 1);
                    // The interpreter counts the activations from here on.
                    (*self.ctx).calls_left = calls_left();
                    let bits = ffi::vm3_deopt_resume(self.ctx, self.frame, status);
                    if (*self.ctx).exit != Exit::NONE {
                        // The interpreter trapped: leave as a trap here would.
                        core::hint::cold_path();
                        return ffi::vm3_trap_exit(self.ctx);
                    }
                    keep_context(self.ctx);
                    return bits;
                }
                // The status is in `Ctx::exit` already.
                Flow::Unwind => return ffi::vm3_trap_exit(self.ctx),
                // Only the interpreter's tier produces `Enter`; `#[stencil]` bodies may not.
                Flow::Enter => u64::MAX,
            };
            (*self.ctx).exit = exit;
            0
        }
    }
}

impl<const A: u8, const B: u8, const C: u8, const D: u8> Tier for JitTier<A, B, C, D> {
    #[inline(always)]
    fn i(&self, r: RegI) -> i64 {
        self.read_int(r.__tier_raw()) as i64
    }
    #[inline(always)]
    fn set_i(&mut self, r: RegI, v: i64) {
        self.write_int(r.__tier_raw(), v as u64)
    }
    #[inline(always)]
    fn f(&self, r: RegF) -> f64 {
        self.read_float(r.__tier_raw())
    }
    #[inline(always)]
    fn set_f(&mut self, r: RegF, v: f64) {
        self.write_float(r.__tier_raw(), v)
    }
    #[inline(always)]
    fn cell(&self, r: RegC) -> u64 {
        self.read_int(r.__tier_raw())
    }
    #[inline(always)]
    fn set_cell(&mut self, r: RegC, v: u64) {
        self.write_int(r.__tier_raw(), v)
    }
    /// The operands of a `frame_only` stencil: the slots between the two holes.
    #[inline(always)]
    fn fill_slots(&mut self, from: RegI, to: RegI, bits: u64) {
        let mut offset = tag_offset(from.__tier_raw());
        let end = tag_offset(to.__tier_raw());
        while offset < end {
            unsafe { *self.slot(offset) = bits };
            offset += 8;
        }
    }

    #[inline(always)]
    fn const_i64(&self, k: ConstI64) -> i64 {
        unsafe { *(k.__tier_raw() as *const i64) }
    }
    #[inline(always)]
    fn const_i64_at(&self, k: ConstI64, i: usize) -> i64 {
        unsafe { *(k.__tier_raw() as *const i64).add(i) }
    }
    #[inline(always)]
    fn const_f64(&self, k: ConstF64) -> f64 {
        // x86-64: one RIP-relative `movsd` from the constant, where its address from
        // `data_address` takes a `lea` and then the load.
        #[cfg(target_arch = "x86_64")]
        unsafe {
            let v: f64;
            match k.__tier_raw() {
                0 => core::arch::asm!("movsd {0}, qword ptr [rip + {1}]", out(xmm_reg) v,
                    sym _JIT_A, options(pure, readonly, nostack, preserves_flags)),
                1 => core::arch::asm!("movsd {0}, qword ptr [rip + {1}]", out(xmm_reg) v,
                    sym _JIT_B, options(pure, readonly, nostack, preserves_flags)),
                _ => core::arch::asm!("movsd {0}, qword ptr [rip + {1}]", out(xmm_reg) v,
                    sym _JIT_C, options(pure, readonly, nostack, preserves_flags)),
            }
            v
        }
        #[cfg(not(target_arch = "x86_64"))]
        unsafe {
            *(k.__tier_raw() as *const f64)
        }
    }
    /// The JIT lays a table out as its length followed by its entries.
    #[inline(always)]
    fn lookup(&self, t: Table, index: i64) -> Option<i64> {
        let table = t.__tier_raw() as *const i64;
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
    /// of this stencil). The depth is checked before the call, so deep recursion traps
    /// instead of overflowing either stack: the register stack is sized for the depth
    /// limit, and so is the native stack the runtime enters compiled code on (each
    /// level of nesting pushes the same few words here, and nothing else nests natively:
    /// see `jit/src/runtime.rs`, `NATIVE_BYTES_PER_CALL`), so there is no stack pointer
    /// to compare on every call.
    #[inline(always)]
    fn call(&mut self, _callee: Callee, _args: ArgStart, dest: Dest) -> Flow {
        unsafe {
            let ctx = self.ctx;
            // On x86-64 the trap is out of line: a branch to `_JIT_TARGET`, where the
            // JIT places a `CallStackOverflow` stencil after the function's code. From
            // LLVM's view the `asm!` falls through, so the stencil has no cold block
            // and ends with the jump to its continuation, which the JIT drops. (The
            // trap stencil runs on the stack as this one left it; it only stores the
            // status and leaves through `vm3_trap_exit`, which resets the stack.)
            #[cfg(target_arch = "x86_64")]
            core::arch::asm!(
                "test r15, r15",
                "jz {overflow}",
                overflow = sym _JIT_TARGET,
                options(nomem, nostack),
            );
            #[cfg(not(target_arch = "x86_64"))]
            if calls_left() == 0 {
                core::hint::cold_path();
                return Flow::Trap(Trap::CallStackOverflow);
            }
            let callee_frame = self.slot(hole!(_JIT_FRAME));
            // A trap below never comes back here (`vm3_trap_exit`): whatever returns is
            // the callee's result.
            let (ctx, frame, bits) =
                call_compiled(ctx, self.frame, callee_frame, &mut self.r, &mut self.f);
            (self.ctx, self.frame) = (ctx, frame);
            match (Self::loc(dest.__tier_raw()), dest.__tier_bank()) {
                // Bits are bits in a slot: one stencil serves every bank.
                (FRAME, _) => *self.slot(tag_offset(dest.__tier_raw())) = bits,
                (_, Bank::F64) => self.write_float(dest.__tier_raw(), f64::from_bits(bits)),
                _ => self.write_int(dest.__tier_raw(), bits),
            }
        }
        Flow::Next
    }

    #[inline(always)]
    fn tail_call(&mut self, _callee: Callee, _args: ArgStart) -> Flow {
        Flow::TailCall
    }

    #[cfg(all(target_arch = "x86_64", not(target_vendor = "apple")))]
    const BRANCHES_ON_IMMEDIATES: bool = true;

    /// `cmp reg, imm32; jcc _JIT_TARGET`, the immediate being `_JIT_B` less the bias
    /// (an `R_X86_64_32S`-style hole). From LLVM's view the `asm!` falls through, so the
    /// stencil then continues as any other: `jcc _JIT_TARGET; jmp _JIT_CONTINUE`, the
    /// shape every compare-and-branch has, one instruction shorter. Not on Mach-O,
    /// which has no 32-bit absolute relocation in 64-bit code.
    #[cfg(all(target_arch = "x86_64", not(target_vendor = "apple")))]
    #[inline(always)]
    fn branch_imm(&self, cond: Cond, a: RegI, _b: Imm) -> Flow {
        let x = self.i(a);
        macro_rules! compare_and_jump {
            ($jcc:literal) => {
                unsafe {
                    core::arch::asm!(
                        "cmp {x}, offset {k} - {bias}",
                        concat!($jcc, " {target}"),
                        x = in(reg) x,
                        k = sym _JIT_B,
                        bias = const IMM_BIAS,
                        target = sym _JIT_TARGET,
                        options(nomem, nostack),
                    )
                }
            };
        }
        match cond {
            Cond::Eq => compare_and_jump!("je"),
            Cond::Ne => compare_and_jump!("jne"),
            Cond::Lt => compare_and_jump!("jl"),
            Cond::Le => compare_and_jump!("jle"),
            Cond::Gt => compare_and_jump!("jg"),
            Cond::Ge => compare_and_jump!("jge"),
        }
        Flow::Next
    }

    #[inline(always)]
    fn check_limits(&mut self) -> Option<Trap> {
        // SAFETY: code compiled with run limits runs with `interrupt` pointing to the
        // run's flag.
        unsafe {
            let ctx = self.ctx;
            if (*(*ctx).interrupt).load(core::sync::atomic::Ordering::Relaxed) != 0 {
                core::hint::cold_path();
                return Some(Trap::Interrupted);
            }
            if (*ctx).fuel == 0 {
                core::hint::cold_path();
                return Some(Trap::OutOfFuel);
            }
            (*ctx).fuel -= 1;
        }
        None
    }

    #[inline(always)]
    fn heap(&self) -> &crate::heap::HeapView {
        unsafe { &*(*self.ctx).heap }
    }
    /// The operand is the string's program-wide index.
    #[inline(always)]
    fn str_const(&self, k: ConstStr) -> u64 {
        // SAFETY: the operand is the number of one of the verified program's string
        // constants, all of which the runtime allocated before the run.
        unsafe { self.heap().str_const(k.__tier_raw()) }
    }
    #[inline(always)]
    fn new_list(&mut self, cap: i64) -> u64 {
        unsafe { call_preserving!(vm3_new_list_preserving, self.ctx, cap) }
    }
    #[inline(always)]
    fn new_map(&mut self, cap: i64) -> u64 {
        unsafe { call_preserving!(vm3_new_map_preserving, self.ctx, cap) }
    }
    #[inline(always)]
    fn concat(&mut self, a: u64, b: u64) -> u64 {
        unsafe { call_preserving!(vm3_concat_preserving, self.ctx, a, b) }
    }
    #[inline(always)]
    fn list_push_grow(&mut self, list: u64, item: u64) -> u64 {
        unsafe { call_preserving!(vm3_list_push_grow_preserving, self.ctx, list, item) }
    }
    #[inline(always)]
    fn map_set_grow(&mut self, map: u64, key: i64, value: i64) -> u64 {
        unsafe { call_preserving!(vm3_map_set_grow_preserving, self.ctx, map, key, value) }
    }
}
