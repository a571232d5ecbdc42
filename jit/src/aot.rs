//! Ahead-of-time compiling: the program compiled as for the JIT (the same passes:
//! `regalloc`, `lower`, `layout`, `emit`), written to an object file for a linker instead
//! of into executable memory, and the entry that runs such code once it is linked.
//!
//! The object has two sections:
//! - the code region exactly as the layout places it (code, stencil data parts,
//!   constants, tables, data words, in one read-execute `.text` section aligned to 4 KiB).
//!   Every reference inside the region is PC-relative, so it is patched here as if the
//!   region lay at [`PATCH_BASE`] and is right wherever the linker puts it; helper calls
//!   are relocations against the helpers' names ([`stencils::helpers::HELPER_NAMES`]),
//!   which the runtime library defines;
//! - an image in `.rodata` (symbol [`IMAGE_SYMBOL`]) with what the runtime needs: the
//!   program as `.vm3` text (the interpreter resumes deoptimised activations, and
//!   results are read through it), the entry function, each function's entry offset.
//!
//! Nothing is patched at load time: the executable's code is never writable, and
//! nothing executable is mapped at run time.

use crate::compile::{check_table, plan, Buffers, CompileError, Options};
use crate::emit::{emit, HelperHole};
use crate::layout::{PatchSite, Resolved};
use crate::lower::CpuFeatures;
use object::write::{Object, Relocation, StandardSection, Symbol, SymbolId, SymbolSection};
use object::{
    Architecture, BinaryFormat, Endianness, RelocationEncoding, RelocationFlags, RelocationKind,
    SectionKind, SymbolFlags, SymbolKind, SymbolScope,
};
use stencil_table::{HoleValue, RelocKind, StencilSet};
use stencils::helpers::HELPER_NAMES;
use vm3::interp::Config;
use vm3::tier_support::{Prepared, RegisterStack};
use vm3::{Heap, RunError, Value, VerifiedProgram};

/// The symbol at the start of the code region.
pub const CODE_SYMBOL: &str = "stitch_aot_code";
/// The symbol of the image the runtime reads (see the module documentation).
pub const IMAGE_SYMBOL: &str = "stitch_aot_image";
/// The first eight bytes of an image (the last is the layout's version).
const IMAGE_MAGIC: &[u8; 8] = b"STCHAOT1";
/// Where the region is taken to lie while patching. Any address works for references
/// inside the region, which are PC-relative; this one is 4 KiB-aligned (an `adrp`'s page
/// arithmetic needs the same offset in the page as the linked section, which is
/// 4 KiB-aligned) and above 2^32, so no in-region address is taken for a small operand
/// and rewritten to an absolute immediate (aarch64 `movz`, x86-64 `mov imm32`).
const PATCH_BASE: u64 = 0x7f00_0000_0000;

/// The targets an object can be written for: a stencil table exists for each.
pub const TARGETS: &[&str] = &[
    "x86_64-unknown-linux-gnu",
    "aarch64-unknown-linux-gnu",
    "x86_64-apple-darwin",
    "aarch64-apple-darwin",
    "x86_64-pc-windows-msvc",
];

/// Which optional instructions the code may use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Cpu {
    /// Only the target's baseline instruction set: runs on every CPU of the target
    /// (x86-64 `FmaF64` calls a helper).
    #[default]
    Baseline,
    /// What this machine's CPU offers, as the JIT uses (x86-64 FMA when present): the
    /// same code as the JIT's here, which a CPU without those instructions cannot run.
    /// Only for a target with this machine's instruction set.
    Host,
}

/// Why no object was written.
#[derive(Debug, thiserror::Error)]
pub enum AotError {
    #[error("unknown target `{0}`: objects can be written for {targets}", targets = TARGETS.join(", "))]
    UnknownTarget(String),
    #[error("the program has no function named `{0}` to use as the entry")]
    NoEntry(String),
    #[error(transparent)]
    Compile(#[from] CompileError),
    #[error("stencil `{stencil}` calls helper `{helper}` with a {kind:?} relocation, which objects do not support yet")]
    HelperRelocation {
        stencil: String,
        helper: String,
        kind: RelocKind,
    },
    #[error("function `{function}`, instruction {pc}: stencil `{stencil}` takes an address in the code with an absolute {kind:?} field, which would need a load-time relocation in the code")]
    AbsoluteAddress {
        function: String,
        pc: u32,
        stencil: String,
        kind: RelocKind,
    },
    #[error(
        "the code for `{0}` cannot use this machine's CPU features: it is another instruction set"
    )]
    HostCpuForOtherTarget(String),
    #[error("cannot write the object: {0}")]
    Object(#[from] object::write::Error),
    #[error("internal error: the program's text does not read back as the same program")]
    TextRoundTrip,
}

/// This machine's stencil table (what [`write_object`] takes for an object for the
/// machine that builds it).
pub use crate::runtime::host_stencils;

/// The object format and CPU of a supported target triple.
pub fn object_format(target: &str) -> Result<(BinaryFormat, Architecture), AotError> {
    use {Architecture as A, BinaryFormat as F};
    Ok(match target {
        "x86_64-unknown-linux-gnu" => (F::Elf, A::X86_64),
        "aarch64-unknown-linux-gnu" => (F::Elf, A::Aarch64),
        "x86_64-apple-darwin" => (F::MachO, A::X86_64),
        "aarch64-apple-darwin" => (F::MachO, A::Aarch64),
        "x86_64-pc-windows-msvc" => (F::Coff, A::X86_64),
        other => return Err(AotError::UnknownTarget(other.to_string())),
    })
}

/// Writes the object file of `program` compiled with `stencils` (a table harvested for
/// the target the object is for, which names the target), running function `entry`
/// when linked with the runtime library (`aot-runtime`), with the instructions `cpu`
/// allows.
pub fn write_object(
    program: &VerifiedProgram,
    stencils: &StencilSet,
    entry: &str,
    cpu: Cpu,
) -> Result<Vec<u8>, AotError> {
    let (format, arch) = object_format(stencils.target)?;
    let entry_index = program
        .function_index(entry)
        .ok_or_else(|| AotError::NoEntry(entry.to_string()))?;
    check_table(stencils)?;
    let host_arch = match std::env::consts::ARCH {
        "x86_64" => Some(Architecture::X86_64),
        "aarch64" => Some(Architecture::Aarch64),
        _ => None,
    };
    let cpu = match cpu {
        // FMA is baseline on aarch64, optional on x86-64.
        Cpu::Baseline => CpuFeatures {
            fma: arch == Architecture::Aarch64,
        },
        Cpu::Host if host_arch == Some(arch) => CpuFeatures::detect(),
        Cpu::Host => return Err(AotError::HostCpuForOtherTarget(stencils.target.into())),
    };
    let options = Options::default();
    // Helper addresses of this process fill nothing that is written out (helper holes
    // become relocations); the layout needs them only to plan GOT slots.
    let helpers = crate::runtime::helper_fns();
    // No run limits: an executable has no embedder to set them.
    let (_, lowered, layout) = plan(
        program,
        stencils,
        crate::lower::Scope::Program,
        cpu,
        options,
        false,
        &helpers,
        &mut Buffers::default(),
    )?;
    check_position_independent(program, stencils, &lowered, &layout, &helpers)?;
    let mut code = vec![0u8; layout.total];
    let mut helper_holes = Vec::new();
    emit(
        program,
        stencils,
        &lowered,
        &layout,
        &helpers,
        options,
        PATCH_BASE,
        &mut code,
        Some(&mut helper_holes),
    )?;
    let entries: Vec<u64> = lowered
        .functions
        .iter()
        .map(|low| layout.piece_offsets[low.pieces.start as usize] as u64)
        .collect();
    let image = image(program, entry_index, &entries)?;

    let mut obj = Object::new(format, arch, Endianness::Little);
    let text = obj.section_id(StandardSection::Text);
    let code_at = obj.append_section_data(text, &code, 4096);
    define(
        &mut obj,
        CODE_SYMBOL,
        text,
        code_at,
        code.len(),
        SymbolKind::Text,
    );
    let rodata = obj.section_id(StandardSection::ReadOnlyData);
    let image_at = obj.append_section_data(rodata, &image, 8);
    define(
        &mut obj,
        IMAGE_SYMBOL,
        rodata,
        image_at,
        image.len(),
        SymbolKind::Data,
    );
    if format == BinaryFormat::Elf {
        // Without this note a GNU linker makes the executable's stack executable.
        obj.add_section(Vec::new(), b".note.GNU-stack".to_vec(), SectionKind::Other);
    }
    let mut helper_symbols: Vec<Option<SymbolId>> = vec![None; HELPER_NAMES.len()];
    for hole in helper_holes {
        let name = HELPER_NAMES[hole.helper as usize];
        let (kind, encoding, size) = match hole.kind {
            RelocKind::X86_64Branch32 => {
                (RelocationKind::Relative, RelocationEncoding::X86Branch, 32)
            }
            RelocKind::Aarch64Branch26 => (
                RelocationKind::Relative,
                RelocationEncoding::AArch64Call,
                26,
            ),
            kind => return Err(helper_relocation_error(stencils, &hole, kind)),
        };
        let symbol = *helper_symbols[hole.helper as usize].get_or_insert_with(|| {
            obj.add_symbol(Symbol {
                name: name.as_bytes().to_vec(),
                value: 0,
                size: 0,
                kind: SymbolKind::Text,
                scope: SymbolScope::Dynamic,
                weak: false,
                section: SymbolSection::Undefined,
                flags: SymbolFlags::None,
            })
        });
        obj.add_relocation(
            text,
            Relocation {
                offset: code_at + hole.offset as u64,
                symbol,
                addend: hole.addend,
                flags: RelocationFlags::Generic {
                    kind,
                    encoding,
                    size,
                },
            },
        )?;
    }
    Ok(obj.write()?)
}

fn define(
    obj: &mut Object,
    name: &str,
    section: object::write::SectionId,
    at: u64,
    size: usize,
    kind: SymbolKind,
) {
    obj.add_symbol(Symbol {
        name: name.as_bytes().to_vec(),
        value: at,
        size: size as u64,
        kind,
        scope: SymbolScope::Linkage,
        weak: false,
        section: SymbolSection::Section(section),
        flags: SymbolFlags::None,
    });
}

fn helper_relocation_error(stencils: &StencilSet, hole: &HelperHole, kind: RelocKind) -> AotError {
    // Name a stencil that has the hole, for the message.
    let stencil = stencils
        .stencils
        .iter()
        .find(|s| {
            s.holes
                .iter()
                .any(|h| h.value == HoleValue::Helper(hole.helper) && h.kind == kind)
        })
        .map_or("?", |s| s.name);
    AotError::HelperRelocation {
        stencil: stencil.to_string(),
        helper: HELPER_NAMES[hole.helper as usize].to_string(),
        kind,
    }
}

/// Refuses code whose bytes would depend on where the region is loaded: an address in
/// the region in an absolute field, or in a GOT slot. (The stencils of every supported
/// target reach the region PC-relatively; this keeps a future stencil that does not from
/// becoming a wrong address instead of an error.)
fn check_position_independent(
    program: &VerifiedProgram,
    stencils: &StencilSet,
    lowered: &crate::lower::Lowered,
    layout: &crate::layout::Layout,
    helpers: &stencils::helpers::HelperFns,
) -> Result<(), AotError> {
    use RelocKind::*;
    for site in PatchSite::every_piece(program, layout, lowered, helpers, 0) {
        let stencil = &stencils.stencils[site.piece.stencil as usize];
        let len = layout.piece_len(site.index);
        for hole in stencil.holes.iter().filter(|h| (h.offset as usize) < len) {
            if matches!(hole.value, HoleValue::Helper(_)) {
                continue;
            }
            let absolute = matches!(
                hole.kind,
                X86_64Abs64
                    | X86_64Abs32
                    | X86_64Abs32S
                    | X86_64Abs31
                    | Aarch64MovwG0
                    | Aarch64MovwG0Nc
                    | Aarch64MovwG1
                    | Aarch64MovwG1Nc
                    | Aarch64MovwG2
                    | Aarch64MovwG2Nc
                    | Aarch64MovwG3
            );
            if absolute && matches!(site.resolve(hole.value, stencil)?, Resolved::InRegion(_)) {
                return Err(AotError::AbsoluteAddress {
                    function: program.functions[site.func].name.clone(),
                    pc: site.piece.pc,
                    stencil: stencil.name.to_string(),
                    kind: hole.kind,
                });
            }
        }
    }
    if layout
        .got
        .slots
        .iter()
        .any(|s| matches!(s, Resolved::InRegion(_)))
    {
        return Err(AotError::AbsoluteAddress {
            function: "?".into(),
            pc: 0,
            stencil: "a GOT slot".into(),
            kind: X86_64Abs64,
        });
    }
    Ok(())
}

/// The image: magic, total length, function count, entry index, program text length
/// (u64 little-endian each), each function's entry offset in the code region, the
/// program as `.vm3` text.
fn image(program: &VerifiedProgram, entry: usize, entries: &[u64]) -> Result<Vec<u8>, AotError> {
    let text = vm3::text::to_text(program);
    // The runtime assembles this text; the code was compiled from `program`.
    match vm3::asm::assemble(&text, "image") {
        Ok(back) if back == **program => {}
        _ => return Err(AotError::TextRoundTrip),
    }
    let mut image = IMAGE_MAGIC.to_vec();
    let total = 8 * (5 + entries.len()) + text.len();
    for word in [total, entries.len(), entry, text.len()] {
        image.extend_from_slice(&(word as u64).to_le_bytes());
    }
    for &offset in entries {
        image.extend_from_slice(&offset.to_le_bytes());
    }
    image.extend_from_slice(text.as_bytes());
    debug_assert_eq!(image.len(), total);
    Ok(image)
}

/// A program linked ahead of time, as its runtime finds it: the image read back.
pub struct LinkedProgram {
    prepared: Prepared,
    entry: usize,
    entries: Vec<u64>,
    code: usize,
}

impl LinkedProgram {
    /// Reads the image at `image`, written by [`write_object`] and linked with the code
    /// region at `code`. The program text is assembled and verified again; a failure
    /// (which means a corrupt image) is returned as a message.
    ///
    /// # Safety
    /// `image` and `code` must be the [`IMAGE_SYMBOL`] and [`CODE_SYMBOL`] of one object
    /// written by [`write_object`] for this target, linked into this process.
    pub unsafe fn from_linked(image: *const u8, code: *const u8) -> Result<Self, String> {
        let word = |at: usize| {
            let mut bytes = [0u8; 8];
            // SAFETY: within the image, whose length the header gives (the caller's).
            unsafe { std::ptr::copy_nonoverlapping(image.add(at), bytes.as_mut_ptr(), 8) };
            u64::from_le_bytes(bytes) as usize
        };
        if word(0).to_le_bytes() != *IMAGE_MAGIC {
            return Err("the linked program image has an unknown format".into());
        }
        // SAFETY: the header's length is the image's (the caller's).
        let bytes = unsafe { std::slice::from_raw_parts(image, word(8)) };
        let (count, entry, text_len) = (word(16), word(24), word(32));
        let entries = (0..count).map(|i| word(40 + 8 * i) as u64).collect();
        let text_at = 40 + 8 * count;
        let text = bytes
            .get(text_at..text_at + text_len)
            .and_then(|t| std::str::from_utf8(t).ok())
            .ok_or("the linked program image is truncated")?;
        let program = vm3::asm::assemble(text, "image")
            .map_err(|e| format!("the linked program does not assemble: {}", e[0]))?
            .verify()
            .map_err(|e| format!("the linked program does not verify: {}", e[0]))?;
        if entry >= program.functions.len() || program.functions.len() != count {
            return Err("the linked program image is inconsistent".into());
        }
        Ok(LinkedProgram {
            prepared: Prepared::new(program),
            entry,
            entries,
            code: code as usize,
        })
    }

    pub fn program(&self) -> &VerifiedProgram {
        self.prepared.program()
    }

    /// The entry function's name (given when the object was written).
    pub fn entry_name(&self) -> &str {
        &self.program().functions[self.entry].name
    }

    /// Runs the entry with `args` on a heap and a register stack of its own, as a
    /// compiled module's function does.
    pub fn run(&self, args: &[Value], config: &Config) -> Result<Value, RunError> {
        let mut heap = Heap::new(config.heap_limit);
        let mut stack = RegisterStack::new(self.program(), config.depth_limit)?;
        vm3::tier_support::run_prepared(
            &self.prepared,
            self.entry,
            args,
            config,
            None,
            &mut heap,
            &mut stack,
            |prepared, run| {
                let entry = self.code + self.entries[run.func] as usize;
                // SAFETY: the frame entry of `run.func` in the linked code of this
                // program (`from_linked`'s contract).
                unsafe { crate::runtime::execute_at(prepared, entry, run) }
            },
        )
    }
}
