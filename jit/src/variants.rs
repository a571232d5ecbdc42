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
    /// The digits of each base stencil's variant numbers (`OpInfo::digits`), as
    /// (field, radix), most significant first: looked up once per
    /// piece a compile lowers, so kept flat; unused entries have radix 0.
    digits: Vec<[(u8, u8); 3]>,
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
                let mut d = [(0u8, 0u8); 3];
                for (slot, (field, radix)) in d.iter_mut().zip(info.digits()) {
                    *slot = (field as u8, radix as u8);
                }
                d
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
    let mut variant = 0;
    for &(field, radix) in &variants.digits[base] {
        if radix == 0 {
            break;
        }
        let digit = match locs[field as usize] {
            Loc::Frame => 0,
            Loc::Cached(k) => 1 + k as usize,
        };
        if digit >= radix as usize {
            panic!("{} has no variant {locs:?}", base_info(base).name);
        }
        variant = variant * radix as usize + digit;
    }
    match variant {
        0 => base,
        v => variants.first[base] + v - 1,
    }
}
