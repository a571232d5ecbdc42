//! A stencil author who breaks a `#[stencil]` rule gets a compile error on the
//! offending tokens, with a `stencil `Name`: ...` message.
//!
//! Each case is a separate crate that does `use stencils::*;`, through which the paths
//! the macro emits (`crate::OpInfo`, `crate::__stencil_entry!`, ...) resolve. A rejected
//! stencil expands to nothing but `compile_error!`, so each `.stderr` snapshot holds the
//! rule errors and nothing else; `pass/` shows that valid stencils compile in the same
//! setting.
//!
//! Regenerate the snapshots with
//! `TRYBUILD=overwrite cargo test -p stencils --test compile_fail`, then review them.

#[test]
fn stencil_rules() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/compile_fail/*.rs");
    t.pass("tests/pass/*.rs");
}
