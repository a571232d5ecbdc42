//! Register-preserving entries to the heap helpers, for stencils whose slow path calls
//! one (`stencils::helpers`, "preserving").
//!
//! A stencil keeps up to twelve vm3 registers in caller-saved machine registers (see
//! `stencils::variant`), all of which an ordinary call may clobber; preserving them in
//! the stencil itself costs about 200 bytes of saves and reloads in every copy of every
//! heap stencil. Each thunk here does it once: it saves every register the helper may
//! clobber except the thunk's own argument and result registers, moves its arguments to
//! where the helper expects them, calls the helper and restores. A stencil's slow path
//! is then one `call`, and its fast path nothing at all.
//!
//! The convention, which `stencils::jit::call_preserving!` declares to LLVM:
//! - x86-64: the run context in `rdi`, the helper's other arguments in `r10`, `r11`,
//!   `rax`; the result in `rax`. Every other register is preserved (`xmm0`-`xmm15` in
//!   full), the flags are not.
//! - aarch64: the run context in `x0`, the other arguments in `x9`, `x10`, `x11`; the
//!   result in `x9`. `x9`-`x11`, `x16`, `x17`, `x30` (the `bl`), `v16`-`v31` and the
//!   flags are not preserved; everything else is (`q0`-`q15` in full).

use crate::runtime::{vm3_concat, vm3_list_push_grow, vm3_map_set_grow, vm3_new_list, vm3_new_map};

/// The symbol prefix of the platform's C names.
#[cfg(target_vendor = "apple")]
macro_rules! c_name {
    ($name:literal) => {
        concat!("_", $name)
    };
}
#[cfg(not(target_vendor = "apple"))]
macro_rules! c_name {
    ($name:literal) => {
        $name
    };
}

/// `.globl` with the visibility that keeps the symbol inside the linked image.
#[cfg(target_vendor = "apple")]
macro_rules! hidden_global {
    ($name:literal) => {
        concat!(
            ".globl ",
            c_name!($name),
            "\n.private_extern ",
            c_name!($name),
            "\n"
        )
    };
}
#[cfg(all(not(target_vendor = "apple"), not(windows)))]
macro_rules! hidden_global {
    ($name:literal) => {
        concat!(
            ".globl ",
            c_name!($name),
            "\n.hidden ",
            c_name!($name),
            "\n"
        )
    };
}
#[cfg(windows)]
macro_rules! hidden_global {
    ($name:literal) => {
        concat!(".globl ", c_name!($name), "\n")
    };
}

/// Call frame information for a thunk, so that debuggers and profilers unwind through it
/// (a backtrace from a helper reaches the compiled code that called it). Not on Windows,
/// whose unwind tables are of another kind.
#[cfg(not(windows))]
macro_rules! cfi {
    ($directive:literal) => {
        $directive
    };
}
#[cfg(windows)]
macro_rules! cfi {
    ($directive:literal) => {
        ""
    };
}

#[cfg(target_arch = "x86_64")]
macro_rules! preserving_thunk {
    ($name:literal, $helper:path) => {
        // Entered with rsp = 8 (mod 16); 6 pushes and 264 bytes keep the helper's call
        // aligned and the xmm saves on 16-byte boundaries.
        core::arch::global_asm!(
            ".text",
            ".p2align 4",
            hidden_global!($name),
            concat!(c_name!($name), ":"),
            cfi!(".cfi_startproc"),
            "push rdi",
            cfi!(".cfi_adjust_cfa_offset 8"),
            "push rsi",
            cfi!(".cfi_adjust_cfa_offset 8"),
            "push rdx",
            cfi!(".cfi_adjust_cfa_offset 8"),
            "push rcx",
            cfi!(".cfi_adjust_cfa_offset 8"),
            "push r8",
            cfi!(".cfi_adjust_cfa_offset 8"),
            "push r9",
            cfi!(".cfi_adjust_cfa_offset 8"),
            "sub rsp, 264",
            cfi!(".cfi_adjust_cfa_offset 264"),
            "movaps xmmword ptr [rsp], xmm0",
            "movaps xmmword ptr [rsp + 16], xmm1",
            "movaps xmmword ptr [rsp + 32], xmm2",
            "movaps xmmword ptr [rsp + 48], xmm3",
            "movaps xmmword ptr [rsp + 64], xmm4",
            "movaps xmmword ptr [rsp + 80], xmm5",
            "movaps xmmword ptr [rsp + 96], xmm6",
            "movaps xmmword ptr [rsp + 112], xmm7",
            "movaps xmmword ptr [rsp + 128], xmm8",
            "movaps xmmword ptr [rsp + 144], xmm9",
            "movaps xmmword ptr [rsp + 160], xmm10",
            "movaps xmmword ptr [rsp + 176], xmm11",
            "movaps xmmword ptr [rsp + 192], xmm12",
            "movaps xmmword ptr [rsp + 208], xmm13",
            "movaps xmmword ptr [rsp + 224], xmm14",
            "movaps xmmword ptr [rsp + 240], xmm15",
            "mov rsi, r10",
            "mov rdx, r11",
            "mov rcx, rax",
            "call {helper}",
            "movaps xmm0, xmmword ptr [rsp]",
            "movaps xmm1, xmmword ptr [rsp + 16]",
            "movaps xmm2, xmmword ptr [rsp + 32]",
            "movaps xmm3, xmmword ptr [rsp + 48]",
            "movaps xmm4, xmmword ptr [rsp + 64]",
            "movaps xmm5, xmmword ptr [rsp + 80]",
            "movaps xmm6, xmmword ptr [rsp + 96]",
            "movaps xmm7, xmmword ptr [rsp + 112]",
            "movaps xmm8, xmmword ptr [rsp + 128]",
            "movaps xmm9, xmmword ptr [rsp + 144]",
            "movaps xmm10, xmmword ptr [rsp + 160]",
            "movaps xmm11, xmmword ptr [rsp + 176]",
            "movaps xmm12, xmmword ptr [rsp + 192]",
            "movaps xmm13, xmmword ptr [rsp + 208]",
            "movaps xmm14, xmmword ptr [rsp + 224]",
            "movaps xmm15, xmmword ptr [rsp + 240]",
            "add rsp, 264",
            cfi!(".cfi_adjust_cfa_offset -264"),
            "pop r9",
            cfi!(".cfi_adjust_cfa_offset -8"),
            "pop r8",
            cfi!(".cfi_adjust_cfa_offset -8"),
            "pop rcx",
            cfi!(".cfi_adjust_cfa_offset -8"),
            "pop rdx",
            cfi!(".cfi_adjust_cfa_offset -8"),
            "pop rsi",
            cfi!(".cfi_adjust_cfa_offset -8"),
            "pop rdi",
            cfi!(".cfi_adjust_cfa_offset -8"),
            "ret",
            cfi!(".cfi_endproc"),
            helper = sym $helper,
        );
    };
}

#[cfg(target_arch = "aarch64")]
macro_rules! preserving_thunk {
    ($name:literal, $helper:path) => {
        core::arch::global_asm!(
            ".text",
            ".p2align 2",
            hidden_global!($name),
            concat!(c_name!($name), ":"),
            cfi!(".cfi_startproc"),
            "stp x29, x30, [sp, #-384]!",
            cfi!(".cfi_def_cfa_offset 384"),
            cfi!(".cfi_offset x30, -376"),
            cfi!(".cfi_offset x29, -384"),
            "mov x29, sp",
            "stp x0, x1, [sp, #16]",
            "stp x2, x3, [sp, #32]",
            "stp x4, x5, [sp, #48]",
            "stp x6, x7, [sp, #64]",
            "stp x8, x12, [sp, #80]",
            "stp x13, x14, [sp, #96]",
            "stp x15, xzr, [sp, #112]",
            "stp q0, q1, [sp, #128]",
            "stp q2, q3, [sp, #160]",
            "stp q4, q5, [sp, #192]",
            "stp q6, q7, [sp, #224]",
            "stp q8, q9, [sp, #256]",
            "stp q10, q11, [sp, #288]",
            "stp q12, q13, [sp, #320]",
            "stp q14, q15, [sp, #352]",
            "mov x1, x9",
            "mov x2, x10",
            "mov x3, x11",
            "bl {helper}",
            "mov x9, x0",
            "ldp q14, q15, [sp, #352]",
            "ldp q12, q13, [sp, #320]",
            "ldp q10, q11, [sp, #288]",
            "ldp q8, q9, [sp, #256]",
            "ldp q6, q7, [sp, #224]",
            "ldp q4, q5, [sp, #192]",
            "ldp q2, q3, [sp, #160]",
            "ldp q0, q1, [sp, #128]",
            "ldr x15, [sp, #112]",
            "ldp x13, x14, [sp, #96]",
            "ldp x8, x12, [sp, #80]",
            "ldp x6, x7, [sp, #64]",
            "ldp x4, x5, [sp, #48]",
            "ldp x2, x3, [sp, #32]",
            "ldp x0, x1, [sp, #16]",
            "ldp x29, x30, [sp], #384",
            cfi!(".cfi_def_cfa_offset 0"),
            cfi!(".cfi_restore x30"),
            cfi!(".cfi_restore x29"),
            "ret",
            cfi!(".cfi_endproc"),
            helper = sym $helper,
        );
    };
}

preserving_thunk!("vm3_new_list_preserving", vm3_new_list);
preserving_thunk!("vm3_new_map_preserving", vm3_new_map);
preserving_thunk!("vm3_concat_preserving", vm3_concat);
preserving_thunk!("vm3_list_push_grow_preserving", vm3_list_push_grow);
preserving_thunk!("vm3_map_set_grow_preserving", vm3_map_set_grow);

// The thunks, typed as `stencils::helpers::HelperFns` holds them: their convention is
// this module's, not one a Rust signature can say.
macro_rules! thunk_decls {
    ($abi:literal) => {
        extern $abi {
            pub(crate) fn vm3_new_list_preserving();
            pub(crate) fn vm3_new_map_preserving();
            pub(crate) fn vm3_concat_preserving();
            pub(crate) fn vm3_list_push_grow_preserving();
            pub(crate) fn vm3_map_set_grow_preserving();
        }
    };
}
#[cfg(target_arch = "x86_64")]
thunk_decls!("sysv64");
#[cfg(not(target_arch = "x86_64"))]
thunk_decls!("C");
