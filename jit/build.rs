//! Harvests the stencils for the target being built, so linking `jit` needs no manual
//! step and the tables can never be stale against the stencil sources.
fn main() {
    stencil_harvest::build_script_main();
}
