//! Laying out: where every piece, trampoline, stencil data part, constant, data word
//! and GOT slot of a compile goes, and what each hole's value will be. The relaxation
//! choices are made here, once (which holes need a GOT slot, which helpers a
//! trampoline); copying and patching (`emit.rs`) follows them.

use crate::compile::{CompileError, Options};
use crate::lower::{Lowered, OperandValue, Piece};
use crate::patch::{self, PatchError, Trampoline};
use stencil_table::{HoleValue, OperandField, Stencil, StencilSet};
use stencils::helpers::{HelperFns, HELPER_NAMES};
use vm3::VerifiedProgram;

/// What pass 1 decided: offsets into the region.
pub(crate) struct Layout {
    /// Offset of each piece (parallel to `Lowered::pieces`), then the end of the code.
    pub(crate) piece_offsets: Vec<u32>,
    pub(crate) code_len: usize,
    /// The trampoline of each helper the code calls, by helper index.
    pub(crate) trampolines: Vec<Option<PlacedTrampoline>>,
    /// Offset of each stencil's data part, by stencil index.
    /// (A map, not a table-sized vector: a table has thousands of variants and a compile
    /// touches few of them.)
    pub(crate) stencil_data: std::collections::HashMap<u32, usize>,
    /// Offset of each function's constants (8 bytes each) and tables (length, entries).
    pub(crate) consts: Vec<Vec<usize>>,
    pub(crate) tables: Vec<Vec<usize>>,
    /// Offset of the compiler's own data words (`Lowered::data`).
    pub(crate) data: usize,
    pub(crate) got: Got,
    pub(crate) total: usize,
}

/// A hole's value as pass 1 knows it: fixed, or an offset into the region, whose
/// address is known once the region is mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Resolved {
    Fixed(u64),
    InRegion(usize),
}

impl Resolved {
    pub(crate) fn address(self, base: u64) -> u64 {
        match self {
            Resolved::Fixed(v) => v,
            Resolved::InRegion(offset) => base + offset as u64,
        }
    }
}

/// The compiled code's global offset table: one 8-byte slot per distinct value that
/// reaches code only through a GOT-reading instruction (a value neither within a
/// PC-relative reach of the code nor small enough for an immediate). CPU-independent:
/// any relocation kind for which [`stencil_table::RelocKind::uses_got`] holds uses it.
#[derive(Default)]
pub(crate) struct Got {
    /// Offset of the first slot in the region.
    pub(crate) offset: usize,
    /// The value of each slot.
    pub(crate) slots: Vec<Resolved>,
    pub(crate) index: std::collections::HashMap<Resolved, usize>,
}

impl Got {
    fn add(&mut self, value: Resolved) {
        if let std::collections::hash_map::Entry::Vacant(e) = self.index.entry(value) {
            e.insert(self.slots.len());
            self.slots.push(value);
        }
    }

    /// The offset in the region of the slot holding `value`, if it has one.
    pub(crate) fn slot(&self, value: Resolved) -> Option<usize> {
        self.index.get(&value).map(|i| self.offset + 8 * i)
    }
}

/// A helper's trampoline: where it is and, since its instructions are those of the
/// branches that call the helper, how it is written.
#[derive(Clone, Copy)]
pub(crate) struct PlacedTrampoline {
    pub(crate) offset: usize,
    pub(crate) trampoline: Trampoline,
}

impl Layout {
    pub(crate) fn piece_len(&self, piece: usize) -> usize {
        (self.piece_offsets[piece + 1] - self.piece_offsets[piece]) as usize
    }
}

/// `stencil_flags` bits: the compile uses the stencil; one of its holes reads a GOT slot.
const SEEN: u8 = 1;
const READS_GOT: u8 = 2;

fn align(offset: usize, to: usize) -> usize {
    offset.div_ceil(to.max(1)) * to.max(1)
}

pub(crate) fn helper_address(helpers: &HelperFns, index: u16) -> Result<u64, CompileError> {
    let name = HELPER_NAMES.get(index as usize).copied().unwrap_or("?");
    helpers
        .address(name)
        .map(|a| a as u64)
        .ok_or(CompileError::UnknownHelper {
            index,
            name: name.to_string(),
        })
}

/// `piece_offsets` is a buffer to fill (emptied first; see `lower::lower`).
pub(crate) fn lay_out(
    program: &VerifiedProgram,
    stencils: &StencilSet,
    lowered: &Lowered,
    helpers: &HelperFns,
    options: Options,
    mut piece_offsets: Vec<u32>,
) -> Result<Layout, CompileError> {
    let mut offset = 0usize;
    piece_offsets.clear();
    piece_offsets.reserve(lowered.pieces.len() + 1);
    let mut trampolines: Vec<Option<PlacedTrampoline>> = vec![None; HELPER_NAMES.len()];
    // What each stencil used needs beyond its code, found on its first use (a table has
    // thousands of variants, a compile uses few, most of them many times).
    let mut stencil_flags = vec![0u8; stencils.stencils.len()];
    // Stencils with a data part, in first-use order (so the layout is deterministic).
    let mut data_used: Vec<u32> = Vec::new();
    for low in &lowered.functions {
        for index in low.pieces.start as usize..low.pieces.end as usize {
            let piece = &lowered.pieces[index];
            let stencil = &stencils.stencils[piece.stencil as usize];
            // The last piece of a function has no next piece to fall into (nor has its
            // last instruction's, when on-stack-replacement entries follow it).
            let last = index + 1 == low.pieces.end as usize || index + 1 == low.code_end as usize;
            let len = if last {
                stencil.code.len()
            } else {
                stencil.code_without_tail_jump().len()
            };
            piece_offsets.push(offset as u32);
            offset += len;
            let flags = &mut stencil_flags[piece.stencil as usize];
            if *flags & SEEN != 0 {
                continue;
            }
            *flags |= SEEN;
            if !stencil.data.is_empty() {
                data_used.push(piece.stencil);
            }
            for hole in stencil.holes {
                if hole.kind.uses_got() {
                    *flags |= READS_GOT;
                }
                if let (HoleValue::Helper(h), Some(trampoline)) =
                    (hole.value, patch::trampoline(hole.kind))
                {
                    trampolines[h as usize] = Some(PlacedTrampoline {
                        offset: 0,
                        trampoline,
                    });
                }
            }
        }
    }
    piece_offsets.push(offset as u32);
    let code_len = offset;
    offset = align(offset, 16);
    // Trampolines hold an 8-byte address; keeping each at a multiple of 8 keeps it aligned.
    for placed in trampolines.iter_mut().flatten() {
        placed.offset = offset;
        offset += align(placed.trampoline.len, 8);
    }
    let mut stencil_data = std::collections::HashMap::with_capacity(data_used.len());
    for index in data_used {
        let stencil = &stencils.stencils[index as usize];
        offset = align(offset, stencil.data_align as usize);
        stencil_data.insert(index, offset);
        offset += stencil.data.len();
    }
    offset = align(offset, 16);
    let mut consts = Vec::with_capacity(program.functions.len());
    let mut tables = Vec::with_capacity(program.functions.len());
    for (func, low) in program.functions.iter().zip(&lowered.functions) {
        // A function without code here (outside a unit) needs none of its data.
        if low.insts.is_empty() {
            consts.push(Vec::new());
            tables.push(Vec::new());
            continue;
        }
        let mut place = |len: usize| {
            let at = offset;
            offset += len;
            at
        };
        consts.push(func.consts.iter().map(|_| place(8)).collect());
        tables.push(
            func.tables
                .iter()
                .map(|t| place(8 * (t.len() + 1)))
                .collect(),
        );
    }
    let data = offset;
    offset += 8 * lowered.data.len();
    let mut layout = Layout {
        data,
        piece_offsets,
        code_len,
        trampolines,
        stencil_data,
        consts,
        tables,
        got: Got::default(),
        total: offset,
    };
    // The GOT goes last: its slots may hold addresses of everything before it.
    let got = plan_got(
        program,
        stencils,
        lowered,
        &layout,
        &stencil_flags,
        helpers,
        options,
    )?;
    layout.total = align(layout.total, 8);
    layout.got = Got {
        offset: layout.total,
        ..got
    };
    layout.total += 8 * layout.got.slots.len();
    Ok(layout)
}

/// The GOT slots the code needs: one for each distinct value of a GOT-reading hole that
/// cannot be relaxed to an immediate. Values in the region are reached by a relaxed
/// PC-relative form instead (x86-64 `lea`, aarch64 `adrp` + `add`: the region is far
/// smaller than their ±2 GiB / ±4 GiB reach), and helpers get a slot in case they lie
/// out of that reach.
fn plan_got(
    program: &VerifiedProgram,
    stencils: &StencilSet,
    lowered: &Lowered,
    layout: &Layout,
    stencil_flags: &[u8],
    helpers: &HelperFns,
    options: Options,
) -> Result<Got, CompileError> {
    let mut got = Got::default();
    if !stencil_flags.iter().any(|f| f & READS_GOT != 0) {
        return Ok(got);
    }
    for site in PatchSite::every_piece(program, layout, lowered, helpers, 0) {
        if stencil_flags[site.piece.stencil as usize] & READS_GOT == 0 {
            continue;
        }
        let stencil = &stencils.stencils[site.piece.stencil as usize];
        let len = layout.piece_len(site.index);
        for hole in stencil.holes.iter().filter(|h| h.kind.uses_got()) {
            if hole.offset as usize >= len {
                continue;
            }
            let value = site.resolve(hole.value, stencil)?;
            let needs_slot = options.force_got
                || match value {
                    Resolved::InRegion(_) => false,
                    Resolved::Fixed(v) => !patch::relaxes_to_immediate(
                        hole.kind,
                        stencil.code,
                        hole.offset as usize,
                        v,
                        hole.addend,
                    ),
                };
            if needs_slot {
                got.add(value);
            }
        }
    }
    Ok(got)
}

/// One piece being copied and patched, with what its hole values depend on.
pub(crate) struct PatchSite<'a> {
    pub(crate) program: &'a VerifiedProgram,
    pub(crate) layout: &'a Layout,
    pub(crate) lowered: &'a Lowered,
    pub(crate) func: usize,
    /// The piece's index in `Lowered::pieces`.
    pub(crate) index: usize,
    pub(crate) piece: &'a Piece,
    pub(crate) base: u64,
    pub(crate) helpers: &'a HelperFns,
}

impl<'a> PatchSite<'a> {
    /// Every piece of the program in order, as a site of the region mapped at `base`
    /// (0 while only offsets matter: the layout's GOT planning).
    pub(crate) fn every_piece(
        program: &'a VerifiedProgram,
        layout: &'a Layout,
        lowered: &'a Lowered,
        helpers: &'a HelperFns,
        base: u64,
    ) -> impl Iterator<Item = PatchSite<'a>> + 'a {
        lowered
            .functions
            .iter()
            .enumerate()
            .flat_map(move |(func, low)| {
                (low.pieces.start as usize..low.pieces.end as usize).map(move |index| PatchSite {
                    program,
                    layout,
                    lowered,
                    func,
                    index,
                    piece: &lowered.pieces[index],
                    base,
                    helpers,
                })
            })
    }

    pub(crate) fn patch_error(&self, stencil: &Stencil, error: PatchError) -> CompileError {
        CompileError::Patch {
            function: self.program.functions[self.func].name.clone(),
            pc: self.piece.pc,
            stencil: stencil.name.to_string(),
            error,
        }
    }

    /// The hole's value: fixed, or where in the region it is.
    pub(crate) fn resolve(
        &self,
        hole: HoleValue,
        stencil: &Stencil,
    ) -> Result<Resolved, CompileError> {
        use Resolved::{Fixed, InRegion};
        let layout = self.layout;
        let address_of_piece = |piece: usize| InRegion(layout.piece_offsets[piece] as usize);
        Ok(match hole {
            HoleValue::Operand(field) => {
                let operand = self.piece.operands[match field {
                    OperandField::A => 0,
                    OperandField::B => 1,
                    OperandField::C => 2,
                    OperandField::D => 3,
                }];
                match operand {
                    OperandValue::Known(v) => Fixed(v as u64),
                    OperandValue::Const(k) => InRegion(layout.consts[self.func][k as usize]),
                    OperandValue::Table(t) => InRegion(layout.tables[self.func][t as usize]),
                    OperandValue::Data(i) => InRegion(layout.data + 8 * i as usize),
                }
            }
            HoleValue::FrameBytes => {
                Fixed(self.program.functions[self.func].frame_slots() as u64 * 8)
            }
            HoleValue::Pc => Fixed(self.piece.pc as u64),
            HoleValue::Func => Fixed(self.func as u64),
            HoleValue::Continue => {
                // Instructions and their out-of-line code continue within the
                // instructions; only an on-stack-replacement entry (after `code_end`)
                // continues past them, into its own next piece.
                let low = &self.lowered.functions[self.func];
                let next = self.index + 1;
                let in_osr_entry = self.index >= low.code_end as usize;
                if next >= low.pieces.end as usize || (!in_osr_entry && next >= low.cold as usize) {
                    return Err(CompileError::ContinuesPastEnd {
                        function: self.program.functions[self.func].name.clone(),
                        pc: self.piece.pc,
                        stencil: stencil.name.to_string(),
                    });
                }
                address_of_piece(self.index + 1)
            }
            HoleValue::Target => {
                let target = self
                    .piece
                    .target
                    .expect("a target hole belongs to a branch or a call")
                    as usize;
                if self.piece.callee.is_some() {
                    // A call's depth trap, after the function's code.
                    address_of_piece(self.lowered.functions[self.func].cold as usize + target)
                } else {
                    address_of_piece(self.lowered.inst_piece(self.func, target))
                }
            }
            HoleValue::Callee => {
                let callee = self.piece.callee.expect("a callee hole belongs to a call");
                // Compiled callers pass the cached parameters in machine registers.
                let low = &self.lowered.functions[callee as usize];
                match low.linked {
                    Some(address) => Fixed(address),
                    None => address_of_piece(low.register_entry as usize),
                }
            }
            HoleValue::Helper(h) => Fixed(helper_address(self.helpers, h)?),
            HoleValue::Data => InRegion(layout.stencil_data[&self.piece.stencil]),
        })
    }
}
