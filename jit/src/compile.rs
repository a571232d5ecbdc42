//! Compiling a verified program: lower, lay out, copy and patch.
//!
//! Pass 1 lowers every function to pieces (stencil instances) and decides where each
//! piece, trampoline, stencil data part and constant goes. Pass 2 maps the region
//! read-write, copies every piece and fills its holes at their final addresses, then
//! makes the region read-execute. A piece whose code ends in a jump to the next piece
//! drops that jump, so consecutive stencils fall through.

use crate::lower::{self, Lowered, OperandValue, Piece};
use crate::memory::{ExecutableRegion, WritableRegion};
use crate::patch::{self, PatchError, Trampoline};
use crate::runtime;
use std::ops::Range;
use stencil_table::{HoleValue, OperandField, Stencil, StencilSet};
use stencils::helpers::{HelperFns, HELPER_NAMES};
use vm3::{Const, VerifiedProgram};

/// Knobs of the compiler.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Reach every helper through a trampoline even when a direct call would reach it
    /// (tests use this to exercise the far path on purpose).
    pub force_trampolines: bool,
    /// Give every hole that reads its value from a GOT slot a slot, relaxing none of them
    /// to `lea`/`mov imm`/`movz` (tests use this to exercise the GOT on purpose; only stencils
    /// of position-independent targets, such as Mach-O, have such holes).
    pub force_got: bool,
    /// Use only the target's baseline instruction set, as on a CPU without optional
    /// extensions such as x86-64's FMA (tests use this to exercise the fallbacks).
    pub baseline_cpu: bool,
}

/// A compile that failed. For a verified program this means a bug or a stencil table
/// that does not fit this machine; it is reported, never ignored.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    #[error("cannot map memory for compiled code: {0}")]
    Memory(#[from] std::io::Error),
    #[error("the stencil table for `{target}` has {found} stencils where this build's opcodes and their register variants need {expected}: it was harvested from other stencil sources")]
    TableMismatch {
        target: String,
        found: usize,
        expected: usize,
    },
    #[error("function `{function}`, instruction {pc}: stencil `{stencil}`: {error}")]
    Patch {
        function: String,
        pc: u32,
        stencil: String,
        error: PatchError,
    },
    #[error("function `{function}`, instruction {pc}: stencil `{stencil}` continues past the end of the function")]
    ContinuesPastEnd {
        function: String,
        pc: u32,
        stencil: String,
    },
    #[error("helper #{index} ({name}) has no address in the runtime")]
    UnknownHelper { index: u16, name: String },
}

/// Where one function's code is, as offsets into the region.
#[derive(Clone, Debug)]
pub struct FunctionCode {
    pub entry: usize,
    pub prologue: Range<usize>,
    /// The machine code of each instruction (argument moves of calls included).
    pub insts: Vec<Range<usize>>,
}

/// What pass 1 decided: offsets into the region.
struct Layout {
    /// Offset of each piece (parallel to `Lowered::pieces`), then the end of the code.
    piece_offsets: Vec<u32>,
    code_len: usize,
    /// The trampoline of each helper the code calls, by helper index.
    trampolines: Vec<Option<PlacedTrampoline>>,
    /// Offset of each stencil's data part, by stencil index.
    /// (A map, not a table-sized vector: a table has thousands of variants and a compile
    /// touches few of them.)
    stencil_data: std::collections::HashMap<usize, usize>,
    /// Offset of each function's constants (8 bytes each) and tables (length, entries).
    consts: Vec<Vec<usize>>,
    tables: Vec<Vec<usize>>,
    /// Offset of the compiler's own data words (`Lowered::data`).
    data: usize,
    got: Got,
    total: usize,
}

/// A hole's value as pass 1 knows it: fixed, or an offset into the region, whose
/// address is known once the region is mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Resolved {
    Fixed(u64),
    InRegion(usize),
}

impl Resolved {
    fn address(self, base: u64) -> u64 {
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
struct Got {
    /// Offset of the first slot in the region.
    offset: usize,
    /// The value of each slot.
    slots: Vec<Resolved>,
    index: std::collections::HashMap<Resolved, usize>,
}

impl Got {
    fn add(&mut self, value: Resolved) {
        if let std::collections::hash_map::Entry::Vacant(e) = self.index.entry(value) {
            e.insert(self.slots.len());
            self.slots.push(value);
        }
    }

    /// The offset in the region of the slot holding `value`, if it has one.
    fn slot(&self, value: Resolved) -> Option<usize> {
        self.index.get(&value).map(|i| self.offset + 8 * i)
    }
}

/// A helper's trampoline: where it is and, since its instructions are those of the
/// branches that call the helper, how it is written.
#[derive(Clone, Copy)]
struct PlacedTrampoline {
    offset: usize,
    trampoline: Trampoline,
}

impl Layout {
    fn piece_len(&self, piece: usize) -> usize {
        (self.piece_offsets[piece + 1] - self.piece_offsets[piece]) as usize
    }
}

pub struct Compiled {
    pub region: ExecutableRegion,
    /// The vm3 registers each function keeps in machine registers.
    pub cached: Vec<Vec<(vm3::Bank, usize, crate::regalloc::MachineReg)>>,
    pub functions: Vec<FunctionCode>,
    pub code_len: usize,
}

fn align(offset: usize, to: usize) -> usize {
    offset.div_ceil(to.max(1)) * to.max(1)
}

pub fn compile(
    program: &VerifiedProgram,
    stencils: &StencilSet,
    options: Options,
) -> Result<Compiled, CompileError> {
    let cpu = if options.baseline_cpu {
        lower::CpuFeatures::baseline()
    } else {
        lower::CpuFeatures::detect()
    };
    if stencils.stencils.len() != crate::variants::table_len() {
        return Err(CompileError::TableMismatch {
            target: stencils.target.to_string(),
            found: stencils.stencils.len(),
            expected: crate::variants::table_len(),
        });
    }
    let lowered = lower::lower(program, cpu);
    let helpers = runtime::helper_fns();
    let layout = lay_out(program, stencils, &lowered, &helpers, options)?;
    let mut region = WritableRegion::new(layout.total)?;
    let base = region.address();
    let bytes = region.bytes();
    write_data(program, stencils, &layout, &helpers, base, bytes)?;
    for (i, word) in lowered.data.iter().enumerate() {
        let at = layout.data + 8 * i;
        bytes[at..at + 8].copy_from_slice(&word.to_le_bytes());
    }

    for (f, low) in lowered.functions.iter().enumerate() {
        for index in low.pieces.start as usize..low.pieces.end as usize {
            let site = PatchSite {
                program,
                layout: &layout,
                lowered: &lowered,
                func: f,
                index,
                piece: &lowered.pieces[index],
                base,
                helpers: &helpers,
            };
            site.copy_and_patch(stencils, options, bytes)?;
        }
    }
    let functions = lowered
        .functions
        .iter()
        .enumerate()
        .map(|(f, low)| {
            let start = |piece: u32| layout.piece_offsets[piece as usize] as usize;
            let insts = (0..low.insts.len())
                .map(|pc| {
                    let first = lowered.inst_piece(f, pc);
                    let next = lowered.inst_start.get(low.insts.start as usize + pc + 1);
                    let end = next.map_or(start(low.pieces.end), |&p| start(p));
                    layout.piece_offsets[first] as usize..end
                })
                .collect();
            FunctionCode {
                entry: start(low.pieces.start),
                prologue: start(low.pieces.start)..start(low.body),
                insts,
            }
        })
        .collect();
    let region = region.make_executable()?;
    Ok(Compiled {
        region,
        cached: lowered
            .assignments
            .iter()
            .map(|a| a.cached().collect())
            .collect(),
        functions,
        code_len: layout.code_len,
    })
}

/// Writes everything but the code: trampolines, stencil data parts, constants, tables.
fn write_data(
    program: &VerifiedProgram,
    stencils: &StencilSet,
    layout: &Layout,
    helpers: &HelperFns,
    base: u64,
    bytes: &mut [u8],
) -> Result<(), CompileError> {
    for (i, value) in layout.got.slots.iter().enumerate() {
        let at = layout.got.offset + 8 * i;
        bytes[at..at + 8].copy_from_slice(&value.address(base).to_le_bytes());
    }
    for (index, placed) in layout.trampolines.iter().enumerate() {
        if let Some(placed) = placed {
            let address = helper_address(helpers, index as u16)?;
            (placed.trampoline.write)(bytes, placed.offset, address);
        }
    }
    for (&index, &offset) in &layout.stencil_data {
        let data = stencils.stencils[index].data;
        bytes[offset..offset + data.len()].copy_from_slice(data);
    }
    for (f, func) in program.functions.iter().enumerate() {
        for (k, c) in func.consts.iter().enumerate() {
            let bits = match c {
                Const::I64(v) => *v as u64,
                Const::F64(v) => v.to_bits(),
                // `ConstStrKW` names its string by number (`lower`); the handle is
                // the run's, so nothing of it is placed here.
                Const::Str(_) => 0,
            };
            let at = layout.consts[f][k];
            bytes[at..at + 8].copy_from_slice(&bits.to_le_bytes());
        }
        for (t, table) in func.tables.iter().enumerate() {
            let at = layout.tables[f][t];
            bytes[at..at + 8].copy_from_slice(&(table.len() as u64).to_le_bytes());
            for (j, v) in table.iter().enumerate() {
                bytes[at + 8 + 8 * j..at + 16 + 8 * j].copy_from_slice(&v.to_le_bytes());
            }
        }
    }
    Ok(())
}

fn helper_address(helpers: &HelperFns, index: u16) -> Result<u64, CompileError> {
    let name = HELPER_NAMES.get(index as usize).copied().unwrap_or("?");
    helpers
        .address(name)
        .map(|a| a as u64)
        .ok_or(CompileError::UnknownHelper {
            index,
            name: name.to_string(),
        })
}

fn lay_out(
    program: &VerifiedProgram,
    stencils: &StencilSet,
    lowered: &Lowered,
    helpers: &HelperFns,
    options: Options,
) -> Result<Layout, CompileError> {
    let mut offset = 0usize;
    let mut piece_offsets = Vec::with_capacity(lowered.pieces.len() + 1);
    let mut trampolines: Vec<Option<PlacedTrampoline>> = vec![None; HELPER_NAMES.len()];
    // Stencils with a data part, in first-use order (so the layout is deterministic).
    let mut data_used: Vec<usize> = Vec::new();
    let mut data_seen = std::collections::HashSet::new();
    for low in &lowered.functions {
        for index in low.pieces.start as usize..low.pieces.end as usize {
            let piece = &lowered.pieces[index];
            let stencil = &stencils.stencils[piece.stencil];
            // The last piece of a function has no next piece to fall into.
            let last = index + 1 == low.pieces.end as usize;
            let len = if last {
                stencil.code.len()
            } else {
                stencil.code_without_tail_jump().len()
            };
            piece_offsets.push(offset as u32);
            offset += len;
            if !stencil.data.is_empty() && data_seen.insert(piece.stencil) {
                data_used.push(piece.stencil);
            }
            for hole in stencil.holes {
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
        let stencil = &stencils.stencils[index];
        offset = align(offset, stencil.data_align as usize);
        stencil_data.insert(index, offset);
        offset += stencil.data.len();
    }
    offset = align(offset, 16);
    let mut consts = Vec::with_capacity(program.functions.len());
    let mut tables = Vec::with_capacity(program.functions.len());
    for func in program.functions.iter() {
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
    let got = plan_got(program, stencils, lowered, &layout, helpers, options)?;
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
    helpers: &HelperFns,
    options: Options,
) -> Result<Got, CompileError> {
    let mut got = Got::default();
    for (f, low) in lowered.functions.iter().enumerate() {
        for index in low.pieces.start as usize..low.pieces.end as usize {
            let piece = &lowered.pieces[index];
            let stencil = &stencils.stencils[piece.stencil];
            let len = layout.piece_len(index);
            for hole in stencil.holes.iter().filter(|h| h.kind.uses_got()) {
                if hole.offset as usize >= len {
                    continue;
                }
                let site = PatchSite {
                    program,
                    layout,
                    lowered,
                    func: f,
                    index,
                    piece,
                    base: 0,
                    helpers,
                };
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
    }
    Ok(got)
}

/// One piece being copied and patched, with what its hole values depend on.
struct PatchSite<'a> {
    program: &'a VerifiedProgram,
    layout: &'a Layout,
    lowered: &'a Lowered,
    func: usize,
    /// The piece's index in `Lowered::pieces`.
    index: usize,
    piece: &'a Piece,
    base: u64,
    helpers: &'a HelperFns,
}

impl PatchSite<'_> {
    fn copy_and_patch(
        &self,
        stencils: &StencilSet,
        options: Options,
        bytes: &mut [u8],
    ) -> Result<(), CompileError> {
        let stencil = &stencils.stencils[self.piece.stencil];
        let at = self.layout.piece_offsets[self.index] as usize;
        let len = self.layout.piece_len(self.index);
        bytes[at..at + len].copy_from_slice(&stencil.code[..len]);
        // Holes in a dropped tail jump are dropped with it.
        for hole in stencil.holes.iter().filter(|h| (h.offset as usize) < len) {
            let field = at + hole.offset as usize;
            let place = self.base + field as u64;
            let resolved = self.resolve(hole.value, stencil)?;
            let value = resolved.address(self.base);
            let got_slot = self.layout.got.slot(resolved);
            if hole.kind.uses_got() && (options.force_got || got_slot.is_some()) {
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

    fn patch_error(&self, stencil: &Stencil, error: PatchError) -> CompileError {
        CompileError::Patch {
            function: self.program.functions[self.func].name.clone(),
            pc: self.piece.pc,
            stencil: stencil.name.to_string(),
            error,
        }
    }

    /// The hole's value: fixed, or where in the region it is.
    fn resolve(&self, hole: HoleValue, stencil: &Stencil) -> Result<Resolved, CompileError> {
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
                    OperandValue::Known(v) => Fixed(v),
                    OperandValue::Const(k) => InRegion(layout.consts[self.func][k]),
                    OperandValue::Table(t) => InRegion(layout.tables[self.func][t]),
                    OperandValue::Data(i) => InRegion(layout.data + 8 * i),
                }
            }
            HoleValue::FrameBytes => {
                Fixed(self.program.functions[self.func].frame_slots() as u64 * 8)
            }
            HoleValue::Pc => Fixed(self.piece.pc as u64),
            HoleValue::Func => Fixed(self.func as u64),
            HoleValue::Continue => {
                if self.index + 1 >= self.lowered.functions[self.func].pieces.end as usize {
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
                    .expect("a target hole belongs to a branch");
                address_of_piece(self.lowered.inst_piece(self.func, target))
            }
            HoleValue::Callee => {
                let callee = self.piece.callee.expect("a callee hole belongs to a call");
                // Compiled callers pass the cached parameters in machine registers.
                address_of_piece(self.lowered.functions[callee].register_entry as usize)
            }
            HoleValue::Helper(h) => Fixed(helper_address(self.helpers, h)?),
            HoleValue::Data => InRegion(layout.stencil_data[&self.piece.stencil]),
        })
    }
}
