//! Finding a stencil's register variant in the table.
//!
//! The harvester lays a table out as every base stencil (opcodes in code order, then
//! the internal stencils), then the other variants of each base in the same order
//! (`stencil_harvest::vm3_stencil_specs`). So the index of a variant is arithmetic on
//! the opcode metadata, computed once.

use std::sync::OnceLock;
use stencils::variant::Loc;
use stencils::{OpInfo, INTERNAL_INFOS, OPCODES};

struct Variants {
    /// Table index of variant 1 of each base stencil.
    first: Vec<usize>,
    /// The number of stencils in a table.
    total: usize,
}

fn variants() -> &'static Variants {
    static VARIANTS: OnceLock<Variants> = OnceLock::new();
    VARIANTS.get_or_init(|| {
        let infos: Vec<&OpInfo> = base_infos().collect();
        let mut next = infos.len();
        let first = infos
            .iter()
            .map(|info| {
                let at = next;
                next += info.variant_count() - 1;
                at
            })
            .collect();
        Variants { first, total: next }
    })
}

/// The metadata of every base stencil, in table order.
pub fn base_infos() -> impl Iterator<Item = &'static OpInfo> {
    OPCODES.iter().chain(INTERNAL_INFOS.iter())
}

/// The metadata of base stencil `base`.
pub fn base_info(base: usize) -> &'static OpInfo {
    OPCODES
        .get(base)
        .unwrap_or_else(|| &INTERNAL_INFOS[base - OPCODES.len()])
}

/// How many stencils a table of this build holds, variants included.
pub fn table_len() -> usize {
    variants().total
}

/// The table index of the variant of base stencil `base` with each register field at
/// `locs[field]`. Lowering asks only for placements its assignment can produce, which
/// every stencil has; anything else is a bug.
pub fn stencil_index(base: usize, locs: [Loc; 3]) -> usize {
    let info = base_info(base);
    let variant = info
        .variant_index(|field| locs[field as usize])
        .unwrap_or_else(|| panic!("{} has no variant {locs:?}", info.name));
    match variant {
        0 => base,
        v => variants().first[base] + v - 1,
    }
}
