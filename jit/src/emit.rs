//! Copying and patching: the stencils' bytes into the region, each hole filled with the
//! value the layout resolved, in the form the layout chose.

use crate::compile::{CompileError, Options};
use crate::layout::{helper_address, Layout, PatchSite};
use crate::lower::Lowered;
use crate::patch::{self, PatchError};
use stencil_table::{HoleValue, RelocKind, StencilSet};
use stencils::helpers::HelperFns;
use vm3::{Const, VerifiedProgram};

/// A helper call left for a linker to resolve (ahead-of-time compiles, `aot.rs`): the
/// field at `offset` of the region, of `kind`, wants `helper`'s address plus `addend`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct HelperHole {
    pub(crate) offset: usize,
    pub(crate) kind: RelocKind,
    pub(crate) helper: u16,
    pub(crate) addend: i64,
}

/// Fills the region mapped at `base`: data first, then every piece of code.
/// With `link_time`, helper holes are not patched but recorded there (and trampolines
/// are left unwritten): the code is for an object file, whose linker places the helpers.
#[allow(clippy::too_many_arguments)]
pub(crate) fn emit(
    program: &VerifiedProgram,
    stencils: &StencilSet,
    lowered: &Lowered,
    layout: &Layout,
    helpers: &HelperFns,
    options: Options,
    base: u64,
    bytes: &mut [u8],
    mut link_time: Option<&mut Vec<HelperHole>>,
) -> Result<(), CompileError> {
    write_data(
        program,
        stencils,
        layout,
        helpers,
        base,
        bytes,
        link_time.is_some(),
    )?;
    for (i, word) in lowered.data.iter().enumerate() {
        let at = layout.data + 8 * i;
        bytes[at..at + 8].copy_from_slice(&word.to_le_bytes());
    }
    for site in PatchSite::every_piece(program, layout, lowered, helpers, base) {
        site.copy_and_patch(stencils, options, bytes, link_time.as_deref_mut())?;
    }
    Ok(())
}

/// Writes everything but the code: trampolines, stencil data parts, constants, tables.
fn write_data(
    program: &VerifiedProgram,
    stencils: &StencilSet,
    layout: &Layout,
    helpers: &HelperFns,
    base: u64,
    bytes: &mut [u8],
    helpers_at_link_time: bool,
) -> Result<(), CompileError> {
    for (i, value) in layout.got.slots.iter().enumerate() {
        let at = layout.got.offset + 8 * i;
        bytes[at..at + 8].copy_from_slice(&value.address(base).to_le_bytes());
    }
    for (index, placed) in layout.trampolines.iter().enumerate() {
        if let (Some(placed), false) = (placed, helpers_at_link_time) {
            let address = helper_address(helpers, index as u16)?;
            (placed.trampoline.write)(bytes, placed.offset, address);
        }
    }
    for (&index, &offset) in &layout.stencil_data {
        let data = stencils.stencils[index as usize].data;
        bytes[offset..offset + data.len()].copy_from_slice(data);
    }
    for (f, func) in program.functions.iter().enumerate() {
        // Functions outside a unit have no data laid out (`layout.consts[f]` empty).
        for (c, &at) in func.consts.iter().zip(&layout.consts[f]) {
            let bits = match c {
                Const::I64(v) => *v as u64,
                Const::F64(v) => v.to_bits(),
                // `ConstStrKW` names its string by number (`lower`); the handle is
                // the run's, so nothing of it is placed here.
                Const::Str(_) => 0,
            };
            bytes[at..at + 8].copy_from_slice(&bits.to_le_bytes());
        }
        for (table, &at) in func.tables.iter().zip(&layout.tables[f]) {
            bytes[at..at + 8].copy_from_slice(&(table.len() as u64).to_le_bytes());
            for (j, v) in table.iter().enumerate() {
                bytes[at + 8 + 8 * j..at + 16 + 8 * j].copy_from_slice(&v.to_le_bytes());
            }
        }
    }
    Ok(())
}

impl PatchSite<'_> {
    pub(crate) fn copy_and_patch(
        &self,
        stencils: &StencilSet,
        options: Options,
        bytes: &mut [u8],
        mut link_time: Option<&mut Vec<HelperHole>>,
    ) -> Result<(), CompileError> {
        let stencil = &stencils.stencils[self.piece.stencil as usize];
        let at = self.layout.piece_offsets[self.index] as usize;
        let len = self.layout.piece_len(self.index);
        bytes[at..at + len].copy_from_slice(&stencil.code[..len]);
        // Holes in a dropped tail jump are dropped with it.
        for hole in stencil.holes.iter().filter(|h| (h.offset as usize) < len) {
            let field = at + hole.offset as usize;
            if let (HoleValue::Helper(helper), Some(holes)) = (hole.value, link_time.as_deref_mut())
            {
                holes.push(HelperHole {
                    offset: field,
                    kind: hole.kind,
                    helper,
                    addend: hole.addend,
                });
                continue;
            }
            let place = self.base + field as u64;
            let resolved = self.resolve(hole.value, stencil)?;
            let value = resolved.address(self.base);
            let reads_got = hole.kind.uses_got();
            let got_slot = reads_got.then(|| self.layout.got.slot(resolved)).flatten();
            if reads_got && (options.force_got || got_slot.is_some()) {
                // Prefer the relaxed forms unless told not to, or unless the instruction
                // is half of a pair whose halves must agree (aarch64); a slot was laid
                // out for every value that may need one.
                let direct = if options.force_got || !patch::relaxes_per_instruction(hole.kind) {
                    Err(PatchError::NeedsGot {
                        kind: hole.kind,
                        offset: hole.offset as usize,
                    })
                } else {
                    patch::apply(hole.kind, bytes, field, value, hole.addend, place)
                };
                let result = match (direct, got_slot) {
                    (Err(PatchError::NeedsGot { .. }), Some(slot)) => patch::apply_through_got(
                        hole.kind,
                        bytes,
                        field,
                        self.base + slot as u64,
                        hole.addend,
                        place,
                    ),
                    (result, _) => result,
                };
                result.map_err(|error| self.patch_error(stencil, error))?;
                continue;
            }
            let helper_call = matches!(hole.value, HoleValue::Helper(_))
                && patch::trampoline(hole.kind).is_some();
            let direct = if helper_call && options.force_trampolines {
                Err(PatchError::Overflow {
                    kind: hole.kind,
                    offset: hole.offset as usize,
                    value: 0,
                })
            } else {
                patch::apply(hole.kind, bytes, field, value, hole.addend, place)
            };
            let result = match (direct, hole.value) {
                // A helper out of the branch's range: call its trampoline, placed after
                // the code.
                (Err(PatchError::Overflow { .. }), HoleValue::Helper(h)) if helper_call => {
                    let trampoline = self.layout.trampolines[h as usize]
                        .expect("laid out")
                        .offset as u64;
                    patch::apply(
                        hole.kind,
                        bytes,
                        field,
                        self.base + trampoline,
                        hole.addend,
                        place,
                    )
                }
                (result, _) => result,
            };
            result.map_err(|error| self.patch_error(stencil, error))?;
        }
        Ok(())
    }
}
