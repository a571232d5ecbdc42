//! The Rust functions stencils may call, declared here and nowhere else.
//!
//! A call to a helper compiles to a relocation against the helper's symbol; the
//! harvester accepts exactly the names in [`HELPER_NAMES`] and refuses any other
//! symbol, naming the stencil. The runtime supplies the addresses through
//! [`HelperFns`], whose field types make the compiler check every signature.

use crate::Ctx;

/// A helper's function-pointer type, in the stencil calling convention.
#[cfg(target_arch = "x86_64")]
#[macro_export]
#[doc(hidden)]
macro_rules! helper_fn_type {
    (($($ty:ty),*) -> $ret:ty) => { unsafe extern "sysv64" fn($($ty),*) -> $ret };
}
#[cfg(not(target_arch = "x86_64"))]
#[macro_export]
#[doc(hidden)]
macro_rules! helper_fn_type {
    (($($ty:ty),*) -> $ret:ty) => { unsafe extern "C" fn($($ty),*) -> $ret };
}

macro_rules! declare_helpers {
    ($( $(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty; )*) => {
        /// The symbol names of all helpers, in declaration order.
        pub const HELPER_NAMES: &[&str] = &[$(stringify!($name)),*];

        /// The helpers' addresses, supplied by the runtime that links compiled code.
        #[derive(Clone, Copy)]
        pub struct HelperFns {
            $( $(#[$doc])* pub $name: helper_fn_type!(($($ty),*) -> $ret), )*
        }

        impl HelperFns {
            /// The address of the helper called `name`.
            pub fn address(&self, name: &str) -> Option<usize> {
                $( if name == stringify!($name) { return Some(self.$name as usize); } )*
                None
            }
        }

        #[cfg(all(stencil_jit, target_arch = "x86_64"))]
        #[allow(dead_code)]
        pub(crate) mod ffi {
            use super::*;
            extern "sysv64" { $( pub fn $name($($arg: $ty),*) -> $ret; )* }
        }
        #[cfg(all(stencil_jit, not(target_arch = "x86_64")))]
        #[allow(dead_code)]
        pub(crate) mod ffi {
            use super::*;
            extern "C" { $( pub fn $name($($arg: $ty),*) -> $ret; )* }
        }
    };
}

declare_helpers! {
    /// Finish an activation in the interpreter after its compiled code deoptimised.
    /// `exit` is the deopt status (function and resume pc); `frame` the activation's
    /// registers. Returns the activation's result bits, or 0 with a trap in `Ctx::exit`.
    fn vm3_deopt_resume(ctx: *mut Ctx, frame: *mut u64, exit: u64) -> u64;
    /// Leaves compiled code after a trap stored its status in `Ctx::exit`: returns 0
    /// from the runtime's entry into compiled code (`Ctx::entry_sp`), skipping every
    /// compiled activation in between, which hold nothing to release. It never returns
    /// to its caller, so stencils reach it by a tail jump.
    fn vm3_trap_exit(ctx: *mut Ctx) -> u64;
    /// `x * y + z` with one rounding, for targets without a fused multiply-add in
    /// their baseline instruction set (x86-64).
    fn vm3_fma(x: f64, y: f64, z: f64) -> f64;
    /// A new empty list with room for `cap` items: its handle, or a trap code
    /// (`heap limit exceeded`). Results of the heap helpers follow
    /// [`crate::cell::helper_result`].
    fn vm3_new_list(ctx: *mut Ctx, cap: i64) -> u64;
    /// A new empty i64→i64 map with room for `cap` keys: its handle, or a trap code.
    fn vm3_new_map(ctx: *mut Ctx, cap: i64) -> u64;
    /// A new string holding string `a` then string `b`: its handle, or a trap code.
    fn vm3_concat(ctx: *mut Ctx, a: u64, b: u64) -> u64;
    /// Appends `item` to `list`, growing it: 0, or a trap code.
    fn vm3_list_push_grow(ctx: *mut Ctx, list: u64, item: u64) -> u64;
    /// Sets `key` of `map` to `value`, growing the map: 0, or a trap code.
    fn vm3_map_set_grow(ctx: *mut Ctx, map: u64, key: i64, value: i64) -> u64;
    // The heap helpers' register-preserving entries, which the stencils call (through
    // `jit::call_preserving!`): they save every register the helper may clobber, so a
    // stencil's cached registers survive the call with no code in the stencil. Their
    // arguments and result are in registers of their own (jit/src/preserving.rs), which
    // no Rust signature says; hence no parameters here.
    /// [`vm3_new_list`](HelperFns::vm3_new_list), preserving registers.
    fn vm3_new_list_preserving() -> ();
    /// [`vm3_new_map`](HelperFns::vm3_new_map), preserving registers.
    fn vm3_new_map_preserving() -> ();
    /// [`vm3_concat`](HelperFns::vm3_concat), preserving registers.
    fn vm3_concat_preserving() -> ();
    /// [`vm3_list_push_grow`](HelperFns::vm3_list_push_grow), preserving registers.
    fn vm3_list_push_grow_preserving() -> ();
    /// [`vm3_map_set_grow`](HelperFns::vm3_map_set_grow), preserving registers.
    fn vm3_map_set_grow_preserving() -> ();
}
