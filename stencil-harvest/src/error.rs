//! Everything that can go wrong between `cargo rustc` and the stencil table.

use std::path::PathBuf;

/// An error of the build or of the harvest. The rule violations (continuation not a
/// jump, forbidden symbol, unsupported relocation, missing stencil, unattributed
/// relocation) name the stencil, the code offset and what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum HarvestError {
    #[error(
        "unknown target `{target}`: rustc does not know this triple \
         (`rustc --print target-list` lists the ones it does)"
    )]
    UnknownTarget { target: String },

    #[error(
        "target `{target}` is not installed for this toolchain (no {}): \
         run `rustup target add {target}`",
        libdir.display()
    )]
    TargetNotInstalled { target: String, libdir: PathBuf },

    #[error("target `{target}` is not supported by the harvester yet: {reason}")]
    UnsupportedTarget { target: String, reason: String },

    #[error("could not run `{command}`: {source}")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },

    #[error("`{command}` failed: {message}")]
    Command { command: String, message: String },

    #[error("building the stencils (package `{package}`, target `{target}`) failed ({status}):\n{diagnostics}")]
    BuildFailed {
        package: String,
        target: String,
        status: String,
        diagnostics: String,
    },

    #[error("cargo built package `{package}` but reported no static library for it")]
    NoArtifact { package: String },

    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("malformed object file: {0}")]
    Object(String),

    #[error(
        "the static library has {found} objects of crate `{crate_name}` (members `{crate_name}-*.rcgu.o`), \
         expected exactly one (is `{crate_name}` the built crate, and is codegen-units=1?)"
    )]
    StencilObject { crate_name: String, found: usize },

    #[error("the object file is {found}, but target `{target}` needs {expected}")]
    ObjectMismatch {
        target: String,
        expected: String,
        found: String,
    },

    /// Rule 1: a continuation must be a tail jump.
    #[error(
        "stencil `{stencil}`, offset {offset:#x}: the continuation `{symbol}` is reached by {how}, \
         not by a tail jump; a call would grow the native stack at every instruction. \
         Make the continuation the last thing the stencil does (no use of its result, nothing \
         left to drop, no address of a local escaping) so LLVM emits a sibling call"
    )]
    ContinuationNotJump {
        stencil: String,
        offset: u32,
        symbol: String,
        how: String,
    },

    /// Rule 2: only holes and declared helpers may be referenced.
    #[error("stencil `{stencil}`, offset {offset:#x}: reference to `{symbol}`, which is neither a hole nor a declared helper: {advice}")]
    ForbiddenSymbol {
        stencil: String,
        offset: u32,
        symbol: String,
        advice: String,
    },

    /// Rule 3: a relocation the harvester has no `RelocKind` for.
    #[error(
        "stencil `{stencil}`, offset {offset:#x}: unsupported relocation {relocation} against `{symbol}`; \
         the harvester and the JIT know no arithmetic for it (check the stencil build flags: \
         -Crelocation-model=static -Ccode-model=small)"
    )]
    UnsupportedRelocation {
        stencil: String,
        offset: u32,
        relocation: String,
        symbol: String,
    },

    /// Rule 4: every expected stencil must be in the object.
    #[error(
        "stencil `{stencil}` is missing from the object: no defined symbol of that name \
         (is its `#[stencil]` function compiled with `--cfg stencil_jit`, and not removed by a `#[cfg]`?)"
    )]
    MissingStencil { stencil: String },

    /// Rule 5: every relocation in a stencil's code section must belong to a stencil.
    #[error("stencil `{stencil}`, offset {offset:#x}: {reason}")]
    UnattributedRelocation {
        stencil: String,
        offset: i64,
        reason: String,
    },

    /// Relocations that only make sense together (aarch64 `adrp` and its low-12
    /// partner) do not come in a pair the JIT can patch.
    #[error("stencil `{stencil}`, offset {offset:#x}: {reason}")]
    RelocationPair {
        stencil: String,
        offset: u32,
        reason: String,
    },

    /// Several of the above; the harvest reports every problem it finds.
    #[error("{} problems with the stencils:\n{}", .0.len(), list(.0))]
    Multiple(Vec<HarvestError>),
}

fn list(errors: &[HarvestError]) -> String {
    errors
        .iter()
        .map(|e| format!("  - {e}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl HarvestError {
    /// The individual errors (one, or the members of `Multiple`).
    pub fn errors(&self) -> Vec<&HarvestError> {
        match self {
            HarvestError::Multiple(v) => v.iter().collect(),
            e => vec![e],
        }
    }

    pub(crate) fn from_list(mut errors: Vec<HarvestError>) -> Option<HarvestError> {
        match errors.len() {
            0 => None,
            1 => errors.pop(),
            _ => Some(HarvestError::Multiple(errors)),
        }
    }
}

impl From<object::read::Error> for HarvestError {
    fn from(e: object::read::Error) -> Self {
        HarvestError::Object(e.to_string())
    }
}
