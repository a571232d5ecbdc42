//! Compiling a verified program: lower, lay out, copy and patch.
//!
//! Pass 1 lowers every function to pieces and computes where each piece, trampoline,
//! stencil data part and constant goes. Pass 2 maps the region read-write, copies every
//! piece and fills its holes at their final addresses, then makes the region
//! read-execute. A piece whose code ends in a jump to the next piece drops that jump,
//! so consecutive stencils fall through.

use crate::lower::{self, LoweredFunction, OperandValue, Piece};
use crate::memory::{ExecutableRegion, WritableRegion};
use crate::patch::{self, PatchError, X86_64_TRAMPOLINE_LEN};
use crate::runtime;
use std::ops::Range;
use stencil_table::{HoleValue, OperandField, RelocKind, Stencil, StencilSet};
use vm3::{Const, VerifiedProgram};

/// Knobs of the compiler.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Reach every helper through a trampoline even when a direct call would reach it
    /// (tests use this to exercise the far path on purpose).
    pub force_trampolines: bool,
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
    #[error("stencil `{stencil}` calls helper #{index}, which the runtime does not provide")]
    UnknownHelper { stencil: String, index: u16 },
}

/// Where one function's code is, as offsets into the region.
#[derive(Clone, Debug)]
pub struct FunctionCode {
    pub entry: usize,
    pub prologue: Range<usize>,
    /// The machine code of each instruction (argument moves of calls included).
    pub insts: Vec<Range<usize>>,
}

/// What pass 1 decided.
struct Layout {
    /// Code offset of each piece, per function.
    piece_offsets: Vec<Vec<usize>>,
    /// Emitted length of each piece (its code minus an elided tail jump).
    piece_lens: Vec<Vec<usize>>,
    code_len: usize,
    /// Offset of the trampoline of each helper, by helper index.
    trampolines: Vec<Option<usize>>,
    /// Offset of each stencil's data part, by stencil index.
    stencil_data: Vec<Option<usize>>,
    /// Offset of each function's constants (8 bytes each) and tables.
    consts: Vec<Vec<usize>>,
    tables: Vec<Vec<usize>>,
    total: usize,
}

pub struct Compiled {
    pub region: ExecutableRegion,
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
    let lowered: Vec<LoweredFunction> = (0..program.functions.len())
        .map(|i| lower::lower(program, i, cpu))
        .collect();
    let layout = lay_out(program, stencils, &lowered);
    let mut region = WritableRegion::new(layout.total)?;
    let base = region.address();
    let helpers = runtime::helper_fns();
    let bytes = region.bytes();

    for (helper, offset) in layout.trampolines.iter().enumerate() {
        if let Some(offset) = *offset {
            let name = stencils::helpers::HELPER_NAMES[helper];
            let address = helpers
                .address(name)
                .ok_or_else(|| CompileError::UnknownHelper {
                    stencil: String::new(),
                    index: helper as u16,
                })?;
            patch::write_x86_64_trampoline(bytes, offset, address as u64);
        }
    }
    for (index, offset) in layout.stencil_data.iter().enumerate() {
        if let Some(offset) = *offset {
            let data = stencils.stencils[index].data;
            bytes[offset..offset + data.len()].copy_from_slice(data);
        }
    }
    for (f, func) in program.functions.iter().enumerate() {
        for (k, c) in func.consts.iter().enumerate() {
            let bits = match c {
                Const::I64(v) => *v as u64,
                Const::F64(v) => v.to_bits(),
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

    let mut functions = Vec::with_capacity(lowered.len());
    for (f, low) in lowered.iter().enumerate() {
        let offsets = &layout.piece_offsets[f];
        let lens = &layout.piece_lens[f];
        for (i, piece) in low.pieces.iter().enumerate() {
            let stencil = &stencils.stencils[piece.stencil];
            let at = offsets[i];
            let len = lens[i];
            bytes[at..at + len].copy_from_slice(&stencil.code[..len]);
            let ctx = PatchSite {
                program,
                layout: &layout,
                lowered: &lowered,
                func: f,
                piece,
                base,
            };
            for hole in stencil.holes.iter().filter(|h| (h.offset as usize) < len) {
                let place = base + (at + hole.offset as usize) as u64;
                let error = |error| CompileError::Patch {
                    function: program.functions[f].name.clone(),
                    pc: piece.pc,
                    stencil: stencil.name.to_string(),
                    error,
                };
                let value = ctx.value(hole.value, stencil, i, &helpers)?;
                let far_helper = matches!(hole.value, HoleValue::Helper(_))
                    && hole.kind == RelocKind::X86_64Branch32;
                let direct = if far_helper && options.force_trampolines {
                    Err(PatchError::Overflow {
                        kind: hole.kind,
                        offset: hole.offset as usize,
                        value: 0,
                    })
                } else {
                    patch::apply(
                        hole.kind,
                        bytes,
                        at + hole.offset as usize,
                        value,
                        hole.addend,
                        place,
                    )
                };
                match (direct, hole.value) {
                    (Ok(()), _) => {}
                    (Err(PatchError::Overflow { .. }), HoleValue::Helper(h)) if far_helper => {
                        let trampoline = base
                            + layout.trampolines[h as usize].expect("trampoline laid out") as u64;
                        patch::apply(
                            hole.kind,
                            bytes,
                            at + hole.offset as usize,
                            trampoline,
                            hole.addend,
                            place,
                        )
                        .map_err(error)?;
                    }
                    (Err(e), _) => return Err(error(e)),
                }
            }
        }
        let piece_start = |i: usize| {
            offsets
                .get(i)
                .copied()
                .unwrap_or(offsets[offsets.len() - 1] + lens[lens.len() - 1])
        };
        let end = piece_start(low.pieces.len());
        let insts = (0..low.inst_start.len())
            .map(|pc| {
                let next = low
                    .inst_start
                    .get(pc + 1)
                    .map(|&i| piece_start(i))
                    .unwrap_or(end);
                piece_start(low.inst_start[pc])..next
            })
            .collect();
        let entry = piece_start(0);
        functions.push(FunctionCode {
            entry,
            prologue: entry..piece_start(low.prologue),
            insts,
        });
    }
    let region = region.make_executable()?;
    Ok(Compiled {
        region,
        functions,
        code_len: layout.code_len,
    })
}

fn lay_out(
    program: &VerifiedProgram,
    stencils: &StencilSet,
    lowered: &[LoweredFunction],
) -> Layout {
    let mut offset = 0;
    let mut piece_offsets = Vec::new();
    let mut piece_lens = Vec::new();
    let mut trampolines = vec![None; stencils::helpers::HELPER_NAMES.len()];
    let mut data_used = vec![false; stencils.stencils.len()];
    for low in lowered {
        let mut offs = Vec::with_capacity(low.pieces.len());
        let mut lens = Vec::with_capacity(low.pieces.len());
        for (i, piece) in low.pieces.iter().enumerate() {
            let stencil = &stencils.stencils[piece.stencil];
            let last = i + 1 == low.pieces.len();
            let len = if last {
                stencil.code.len()
            } else {
                stencil.code_without_tail_jump().len()
            };
            offs.push(offset);
            lens.push(len);
            offset += len;
            data_used[piece.stencil] |= !stencil.data.is_empty();
            for hole in stencil.holes {
                if let HoleValue::Helper(h) = hole.value {
                    trampolines[h as usize] = Some(0);
                }
            }
        }
        piece_offsets.push(offs);
        piece_lens.push(lens);
    }
    let code_len = offset;
    offset = align(offset, 16);
    for t in trampolines.iter_mut().filter(|t| t.is_some()) {
        *t = Some(offset);
        offset += align(X86_64_TRAMPOLINE_LEN, 8);
    }
    let mut stencil_data = vec![None; stencils.stencils.len()];
    for (i, used) in data_used.iter().enumerate() {
        if *used {
            let s = &stencils.stencils[i];
            offset = align(offset, s.data_align as usize);
            stencil_data[i] = Some(offset);
            offset += s.data.len();
        }
    }
    offset = align(offset, 16);
    let mut consts = Vec::new();
    let mut tables = Vec::new();
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
    Layout {
        piece_offsets,
        piece_lens,
        code_len,
        trampolines,
        stencil_data,
        consts,
        tables,
        total: offset,
    }
}

/// Everything needed to compute the value of a hole of one piece.
struct PatchSite<'a> {
    program: &'a VerifiedProgram,
    layout: &'a Layout,
    lowered: &'a [LoweredFunction],
    func: usize,
    piece: &'a Piece,
    base: u64,
}

impl PatchSite<'_> {
    fn value(
        &self,
        hole: HoleValue,
        stencil: &Stencil,
        index: usize,
        helpers: &stencils::helpers::HelperFns,
    ) -> Result<u64, CompileError> {
        let layout = self.layout;
        let function = || self.program.functions[self.func].name.clone();
        let start_of = |f: usize, piece: usize| self.base + layout.piece_offsets[f][piece] as u64;
        Ok(match hole {
            HoleValue::Operand(field) => {
                let v = self.piece.operands[match field {
                    OperandField::A => 0,
                    OperandField::B => 1,
                    OperandField::C => 2,
                    OperandField::D => 3,
                }];
                match v {
                    OperandValue::Known(v) => v,
                    OperandValue::Const(k) => self.base + layout.consts[self.func][k] as u64,
                    OperandValue::Table(t) => self.base + layout.tables[self.func][t] as u64,
                }
            }
            HoleValue::FrameBytes => self.program.functions[self.func].frame_slots() as u64 * 8,
            HoleValue::Pc => self.piece.pc as u64,
            HoleValue::Func => self.func as u64,
            HoleValue::Continue => {
                if index + 1 >= self.lowered[self.func].pieces.len() {
                    return Err(CompileError::ContinuesPastEnd {
                        function: function(),
                        pc: self.piece.pc,
                        stencil: stencil.name.to_string(),
                    });
                }
                start_of(self.func, index + 1)
            }
            HoleValue::Target => {
                let target = self
                    .piece
                    .target
                    .expect("a stencil with a target hole belongs to a branch");
                start_of(self.func, self.lowered[self.func].inst_start[target])
            }
            HoleValue::Callee => {
                let callee = self
                    .piece
                    .callee
                    .expect("a stencil with a callee hole belongs to a call");
                start_of(callee, 0)
            }
            HoleValue::Helper(h) => {
                let name = stencils::helpers::HELPER_NAMES.get(h as usize);
                name.and_then(|n| helpers.address(n))
                    .ok_or(CompileError::UnknownHelper {
                        stencil: stencil.name.to_string(),
                        index: h,
                    })? as u64
            }
            HoleValue::Data => {
                self.base
                    + layout.stencil_data[self.piece.stencil].expect("data part laid out") as u64
            }
        })
    }
}
