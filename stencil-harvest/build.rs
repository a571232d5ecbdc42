//! Records the triple the harvester is built for: the binary's default `--target`.
fn main() {
    let target = std::env::var("TARGET").unwrap_or_default();
    println!("cargo::rustc-env=STENCIL_HARVEST_HOST_TARGET={target}");
    println!("cargo::rerun-if-changed=build.rs");
}
