//! Finding a stencil's register variant in the table.
//!
//! The harvester lays a table out as every base stencil (opcodes in code order, then
//! the internal stencils), then the other variants of each base in the same order
//! (`stencil_harvest::vm3_stencil_specs`). So the index of a variant is arithmetic on
//! the opcode metadata, computed once.

use std::sync::OnceLock;
use stencils::variant::{variant_number, Loc};
use stencils::Field;
use stencils::{OpInfo, INTERNAL_INFOS, OPCODES};

struct Variants {
    /// Table index of variant 1 of each base stencil.
    first: Vec<usize>,
    /// The digits of each base stencil's variant numbers (`OpInfo::digits`), computed
    /// once since lowering asks for one per piece: the first `len` of the array.
    digits: Vec<([(Field, usize); 3], usize)>,
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
        let digits = infos
            .iter()
            .map(|info| {
                let mut d = [(Field::A, 1); 3];
                let mut len = 0;
                for (slot, digit) in d.iter_mut().zip(info.digits()) {
                    *slot = digit;
                    len += 1;
                }
                (d, len)
            })
            .collect();
        Variants {
            first,
            digits,
            total: next,
        }
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
    let variants = variants();
    let (digits, len) = &variants.digits[base];
    let variant = variant_number(digits[..*len].iter().copied(), |f| locs[f as usize])
        .unwrap_or_else(|| panic!("{} has no variant {locs:?}", base_info(base).name));
    match variant {
        0 => base,
        v => variants.first[base] + v - 1,
    }
}
