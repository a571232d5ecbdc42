//! Shared code of the cross-crate tests: the random program generator.

pub mod gen;
