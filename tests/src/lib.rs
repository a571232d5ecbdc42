//! Shared code of the cross-crate tests: the random program generators (`gen` builds
//! well-formed programs, `raw` builds programs from raw instructions).

pub mod compare;
pub mod gen;
pub mod raw;
pub mod raw_shapes;
