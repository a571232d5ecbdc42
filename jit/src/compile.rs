//! Compiling a verified program: a straight line of passes, each in its own module.
//!
//! 1. `regalloc`: which vm3 registers of each function live in machine registers.
//! 2. `lower`: every instruction to pieces (stencil variants with their hole values),
//!    spills, fills and argument moves included.
//! 3. `layout`: where each piece, trampoline, stencil data part, constant, data word and
//!    GOT slot goes, and which holes need a slot or a trampoline.
//! 4. `emit`: the region mapped read-write, every piece copied and its holes patched at
//!    their final addresses as the layout chose; then the region becomes read-execute.
//!
//! A piece whose code ends in a jump to the next piece drops that jump, so consecutive
//! stencils fall through.

use crate::memory::{ExecutableRegion, WritableRegion};
use crate::patch::PatchError;
use crate::{emit, layout, lower, regalloc, runtime};
use std::ops::Range;
use stencil_table::StencilSet;
use stencils::helpers::HelperFns;
use vm3::VerifiedProgram;

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
    /// Append a line per compiled function to `/tmp/perf-PID.map`, so that `perf report`
    /// names compiled code (`perf_map.rs`).
    pub perf_map: bool,
    /// Register the compiled functions with a debugger through the GDB JIT interface, so
    /// that a backtrace through compiled code names its vm3 functions (`gdb_jit.rs`).
    pub gdb_jit: bool,
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
    #[error("cannot write the perf map {path}: {error}")]
    PerfMap {
        path: std::path::PathBuf,
        error: std::io::Error,
    },
    #[error("helper #{index} ({name}) has no address in the runtime")]
    UnknownHelper { index: u16, name: String },
}

/// Where one function's code is, as offsets into the region.
#[derive(Clone, Debug)]
pub struct FunctionCode {
    pub entry: usize,
    /// Where compiled callers enter, with the cached parameters in machine registers.
    pub register_entry: usize,
    pub prologue: Range<usize>,
    /// Its instructions' entries in [`Compiled::inst_code`] (one array for the whole
    /// program: an array per function cost a quarter of a small function's compile).
    pub insts: Range<usize>,
    /// Where its last instruction's code ends and its out-of-line code begins.
    pub cold: usize,
    /// Where its out-of-line code ends.
    pub end: usize,
}

impl FunctionCode {
    /// All of the function's code: from its entry to the end of its out-of-line code.
    pub fn range(&self) -> Range<usize> {
        self.entry..self.end
    }

    /// Its out-of-line code: the rare paths of its instructions (the depth-limit traps
    /// of calls on x86-64), after the last instruction.
    pub fn cold(&self) -> Range<usize> {
        self.cold..self.end
    }
}

pub struct Compiled {
    pub region: ExecutableRegion,
    /// The vm3 registers each function keeps in machine registers.
    pub cached: Vec<crate::regalloc::CachedSet>,
    pub functions: Vec<FunctionCode>,
    /// The machine code of each instruction of each function, function after function
    /// (argument moves of calls included).
    pub inst_code: Vec<Range<usize>>,
    pub code_len: usize,
    /// On-stack-replacement entries of a unit (empty for a whole program): function,
    /// loop header, offset in the region.
    pub osr: Vec<(u32, u32, usize)>,
}

/// `run_limits`: check the run limits (fuel, interrupt) at every function entry and
/// loop header (`EngineOptions::run_limits`); without it compiled code has no check.
pub fn compile(
    program: &VerifiedProgram,
    stencils: &StencilSet,
    options: Options,
    run_limits: bool,
) -> Result<Compiled, CompileError> {
    let compiled = compile_scope(
        program,
        stencils,
        options,
        run_limits,
        lower::Scope::Program,
        |len| Ok(Some(WritableRegion::new(len)?)),
    )?;
    Ok(compiled.expect("a whole program is always admitted"))
}

/// Compiles a unit (`roles`: which functions it holds, which it calls through bridges;
/// see `lower::Role`) for tier-up, into the memory `allocate` gives for the region's
/// size (the engine's pool, under its code cap); `None` when it gives none.
pub fn compile_unit(
    program: &VerifiedProgram,
    stencils: &StencilSet,
    options: Options,
    run_limits: bool,
    roles: &[lower::Role],
    linked: &dyn Fn(usize) -> regalloc::Assignment,
    allocate: impl FnOnce(usize) -> Result<Option<WritableRegion>, CompileError>,
) -> Result<Option<Compiled>, CompileError> {
    compile_scope(
        program,
        stencils,
        options,
        run_limits,
        lower::Scope::Unit(roles, linked),
        allocate,
    )
}

fn compile_scope(
    program: &VerifiedProgram,
    stencils: &StencilSet,
    options: Options,
    run_limits: bool,
    scope: lower::Scope,
    allocate: impl FnOnce(usize) -> Result<Option<WritableRegion>, CompileError>,
) -> Result<Option<Compiled>, CompileError> {
    let cpu = if options.baseline_cpu {
        lower::CpuFeatures::baseline()
    } else {
        lower::CpuFeatures::detect()
    };
    check_table(stencils)?;
    let mut buffers = BUFFERS.with(|b| b.take());
    let helpers = runtime::helper_fns();
    let (assignments, lowered, layout) = plan(
        program,
        stencils,
        scope,
        cpu,
        options,
        run_limits,
        &helpers,
        &mut buffers,
    )?;
    let Some(mut region) = allocate(layout.total)? else {
        buffers.keep(lowered.pieces, lowered.inst_start, layout.piece_offsets);
        BUFFERS.with(|b| b.replace(buffers));
        return Ok(None);
    };
    // Then the last pass: copy and patch.
    let base = region.address();
    emit::emit(
        program,
        stencils,
        &lowered,
        &layout,
        &helpers,
        options,
        base,
        region.bytes(),
        None,
    )?;
    let start = |piece: u32| layout.piece_offsets[piece as usize] as usize;
    let mut inst_code = Vec::with_capacity(lowered.inst_start.len());
    let functions = lowered
        .functions
        .iter()
        .enumerate()
        .map(|(f, low)| {
            let first = inst_code.len();
            inst_code.extend((0..low.insts.len()).map(|pc| {
                // The last instruction ends where the function's out-of-line code
                // begins, not at the next function's first instruction (which follows
                // its prologue).
                let end = if pc + 1 < low.insts.len() {
                    start(lowered.inst_start[low.insts.start as usize + pc + 1])
                } else {
                    start(low.cold)
                };
                layout.piece_offsets[lowered.inst_piece(f, pc)] as usize..end
            }));
            FunctionCode {
                entry: start(low.pieces.start),
                register_entry: start(low.register_entry),
                prologue: start(low.pieces.start)..start(low.body),
                insts: first..inst_code.len(),
                cold: start(low.cold),
                // On-stack-replacement entries (units) follow, outside the range.
                end: start(low.code_end),
            }
        })
        .collect();
    let osr = lowered
        .osr
        .iter()
        .map(|e| (e.func, e.pc, start(e.piece)))
        .collect();
    let region = region.make_executable()?;
    let code_len = layout.code_len;
    buffers.keep(lowered.pieces, lowered.inst_start, layout.piece_offsets);
    BUFFERS.with(|b| b.replace(buffers));
    Ok(Some(Compiled {
        region,
        cached: assignments.iter().map(|a| a.regs).collect(),
        functions,
        inst_code,
        code_len,
        osr,
    }))
}

/// Refuses a table harvested from other stencil sources than this build's.
pub(crate) fn check_table(stencils: &StencilSet) -> Result<(), CompileError> {
    if stencils.stencils.len() != crate::variants::table_len() {
        return Err(CompileError::TableMismatch {
            target: stencils.target.to_string(),
            found: stencils.stencils.len(),
            expected: crate::variants::table_len(),
        });
    }
    Ok(())
}

/// The passes before any code is written, in order: assign registers, lower, lay out.
/// Shared by the JIT ([`compile`]) and ahead-of-time objects (`aot::write_object`),
/// which then copy and patch into their own memory. `buffers` lends its memory to the
/// pieces, instruction starts and piece offsets (hand it back with `Buffers::keep`).
#[allow(clippy::too_many_arguments)] // The passes' inputs, each used.
pub(crate) fn plan(
    program: &VerifiedProgram,
    stencils: &StencilSet,
    scope: lower::Scope,
    cpu: lower::CpuFeatures,
    options: Options,
    run_limits: bool,
    helpers: &HelperFns,
    buffers: &mut Buffers,
) -> Result<(Vec<regalloc::Assignment>, lower::Lowered, layout::Layout), CompileError> {
    let assignments = match scope {
        lower::Scope::Program => regalloc::assign_all(program, &mut buffers.regalloc),
        // Only the unit's own functions keep registers in machine registers.
        lower::Scope::Unit(roles, linked) => program
            .functions
            .iter()
            .zip(roles)
            .enumerate()
            .map(|(f, (func, role))| match role {
                lower::Role::Compiled => regalloc::assign(program, func, &mut buffers.regalloc),
                lower::Role::Linked(_) => linked(f),
                _ => regalloc::Assignment::frame_only(),
            })
            .collect(),
    };
    let lowered = lower::lower(
        program,
        &assignments,
        scope,
        cpu,
        run_limits,
        overflow_out_of_line(stencils),
        std::mem::take(&mut buffers.pieces),
        std::mem::take(&mut buffers.inst_start),
    );
    let layout = layout::lay_out(
        program,
        stencils,
        &lowered,
        helpers,
        options,
        std::mem::take(&mut buffers.piece_offsets),
    )?;
    Ok((assignments, lowered, layout))
}

/// Whether the table's call stencils branch to an out-of-line depth trap (a
/// `_JIT_TARGET` hole; x86-64's do) rather than trapping in line.
fn overflow_out_of_line(stencils: &StencilSet) -> bool {
    let call = &stencils.stencils[stencils::Opcode::CallI64 as usize];
    call.holes
        .iter()
        .any(|hole| hole.value == stencil_table::HoleValue::Target)
}

/// The largest buffers a compile needs, kept by each thread from one compile to the next
/// when they are not too big: a fresh multi-megabyte allocation costs a page fault per
/// page, a quarter of a large compile's time.
#[derive(Default)]
pub(crate) struct Buffers {
    regalloc: regalloc::Scratch,
    pieces: Vec<lower::Piece>,
    inst_start: Vec<u32>,
    piece_offsets: Vec<u32>,
}

/// Buffers above this many bytes are freed after the compile rather than kept.
const KEPT_BUFFER_BYTES: usize = 16 << 20;

impl Buffers {
    fn keep(&mut self, pieces: Vec<lower::Piece>, inst_start: Vec<u32>, offsets: Vec<u32>) {
        let bytes = pieces.capacity() * std::mem::size_of::<lower::Piece>()
            + 4 * (inst_start.capacity() + offsets.capacity());
        if bytes <= KEPT_BUFFER_BYTES {
            (self.pieces, self.inst_start, self.piece_offsets) = (pieces, inst_start, offsets);
        }
    }
}

thread_local! {
    static BUFFERS: std::cell::RefCell<Buffers> = std::cell::RefCell::default();
}
