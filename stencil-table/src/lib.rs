//! What a harvested stencil is: machine code, the data it reads, and its holes.
//!
//! The harvester (`stencil-harvest`) produces these from an object file and writes them
//! out as Rust source of `'static` tables; the JIT (`jit`) copies the code and fills
//! the holes. Nothing here depends on the host: a table for any target can be held and
//! patched on any machine.

/// How to write a value into a hole: the relocation's arithmetic and field.
/// `S` is the hole's value, `A` the addend, `P` the address of the field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RelocKind {
    /// x86-64 `R_X86_64_64`: 8 bytes, `S + A`.
    X86_64Abs64,
    /// x86-64 `R_X86_64_32`: 4 bytes, `S + A`, must fit zero-extended.
    X86_64Abs32,
    /// x86-64 `R_X86_64_32S`: 4 bytes, `S + A`, must fit sign-extended.
    X86_64Abs32S,
    /// x86-64 `R_X86_64_PC32`: 4 bytes, `S + A - P`, must fit signed.
    X86_64Pc32,
    /// x86-64 `R_X86_64_PC32` in `lea r64, [rip + disp32]`. When `S + A - P` does not
    /// fit (a small operand value far from the code), the JIT rewrites the instruction
    /// in place to `mov r64, imm32` with `S + A + 4`, which loads the same value.
    X86_64LeaPc32,
    /// x86-64 `R_X86_64_PLT32`/`PC32` of a `call`/`jmp`/`jcc` rel32: `S + A - P`. A
    /// helper out of range is reached through a trampoline the JIT places after the code.
    X86_64Branch32,
    /// x86-64 absolute 32-bit field whose instruction may zero- or sign-extend it (COFF's
    /// `IMAGE_REL_AMD64_ADDR32` does not say which): 4 bytes, `S + A`, which must lie in
    /// `0..2^31` so that both readings agree.
    X86_64Abs31,
    /// x86-64 `mov r64, [rip + disp32]` loading a GOT slot that holds `S` (Mach-O
    /// `X86_64_RELOC_GOT_LOAD`): 4 bytes, `GOT(S) + A - P`. The JIT relaxes it to
    /// `lea r64, [rip + S + A - P]` when `S` is within reach of the code, to
    /// `mov r64, imm32` when `S` fits sign-extended, and otherwise gives `S` a slot in
    /// the compiled code's GOT.
    X86_64GotLoadPc32,
    /// x86-64 instruction other than a plain load reading a GOT slot that holds `S`
    /// through `[rip + disp32]` (Mach-O `X86_64_RELOC_GOT`): 4 bytes, `GOT(S) + A - P`,
    /// always through a GOT slot (the instruction is not rewritten).
    X86_64GotPc32,
}

impl RelocKind {
    /// Bytes of the field the relocation writes.
    pub const fn width(self) -> usize {
        match self {
            RelocKind::X86_64Abs64 => 8,
            _ => 4,
        }
    }

    /// The field addresses a GOT slot holding the value rather than the value itself, so
    /// the JIT may need to give the value a slot (unless it relaxes the instruction).
    pub const fn uses_got(self) -> bool {
        matches!(
            self,
            RelocKind::X86_64GotLoadPc32 | RelocKind::X86_64GotPc32
        )
    }
}

/// An instruction field of the bytecode instruction (mirrors `stencils::Field`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OperandField {
    A,
    B,
    C,
    /// The second register of `FmaF64`'s packed `c` (symbol `_JIT_D`).
    D,
}

/// What value the JIT supplies for a hole (the relocation's symbol).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HoleValue {
    /// `_JIT_A`.. `_JIT_D`: the instruction's operand in its JIT form.
    Operand(OperandField),
    /// `_JIT_FRAME`: the function's frame size in bytes.
    FrameBytes,
    /// `_JIT_PC`: the instruction's index.
    Pc,
    /// `_JIT_FUNC`: the function's index.
    Func,
    /// `_JIT_CONTINUE`: the code of the next instruction.
    Continue,
    /// `_JIT_TARGET`: the code of the branch target.
    Target,
    /// `_JIT_CALLEE`: the callee's entry.
    Callee,
    /// A declared helper, by its index in `stencils::helpers::HELPER_NAMES`.
    Helper(u16),
    /// This stencil's data part (the addend holds the offset within it).
    Data,
}

impl HoleValue {
    /// The hole of a symbol name (without any object-format prefix such as Mach-O's
    /// leading `_`), if it is one of the `_JIT_*` holes.
    pub fn from_symbol(name: &str) -> Option<HoleValue> {
        Some(match name {
            "_JIT_A" => HoleValue::Operand(OperandField::A),
            "_JIT_B" => HoleValue::Operand(OperandField::B),
            "_JIT_C" => HoleValue::Operand(OperandField::C),
            "_JIT_D" => HoleValue::Operand(OperandField::D),
            "_JIT_FRAME" => HoleValue::FrameBytes,
            "_JIT_PC" => HoleValue::Pc,
            "_JIT_FUNC" => HoleValue::Func,
            "_JIT_CONTINUE" => HoleValue::Continue,
            "_JIT_TARGET" => HoleValue::Target,
            "_JIT_CALLEE" => HoleValue::Callee,
            _ => return None,
        })
    }

    /// Holes that transfer control to the next stencil and so must be tail jumps.
    pub fn is_continuation(self) -> bool {
        matches!(self, HoleValue::Continue | HoleValue::Target)
    }
}

/// One place in a stencil's code to patch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Hole {
    /// Byte offset of the field in the stencil's code.
    pub offset: u32,
    pub kind: RelocKind,
    pub value: HoleValue,
    pub addend: i64,
}

/// One stencil of a target.
#[derive(Clone, Copy, Debug)]
pub struct Stencil<'a> {
    /// The stencil's symbol without prefix (`__stencil_AddI64`).
    pub name: &'a str,
    pub code: &'a [u8],
    /// Read-only data the code refers to (constants LLVM put in `.rodata`), placed once
    /// per code region; holes of kind `Data` point into it.
    pub data: &'a [u8],
    /// Alignment the data part needs.
    pub data_align: u32,
    pub holes: &'a [Hole],
    /// Length of a jump to `_JIT_CONTINUE` that ends the code, which the JIT drops when
    /// the next instruction's code follows directly (0 when the code ends otherwise).
    pub tail_jump: u32,
}

impl Stencil<'_> {
    /// The code without the trailing continuation jump.
    pub fn code_without_tail_jump(&self) -> &[u8] {
        &self.code[..self.code.len() - self.tail_jump as usize]
    }
}

/// The stencils of one target.
#[derive(Clone, Copy, Debug)]
pub struct StencilSet<'a> {
    /// The target triple they were built for.
    pub target: &'a str,
    /// One stencil per opcode, in opcode order, then the internal stencils in the order of
    /// `stencils::INTERNAL_STENCILS`.
    pub stencils: &'a [Stencil<'a>],
}

impl<'a> StencilSet<'a> {
    pub fn by_name(&self, name: &str) -> Option<&Stencil<'a>> {
        self.stencils.iter().find(|s| s.name == name)
    }
}

/// A [`Stencil`] that owns its parts: what the harvester produces before it writes the
/// table out as `'static` Rust source, and what tests patch directly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnedStencil {
    pub name: String,
    pub code: Vec<u8>,
    pub data: Vec<u8>,
    pub data_align: u32,
    pub holes: Vec<Hole>,
    pub tail_jump: u32,
}

impl OwnedStencil {
    /// The borrowed form.
    pub fn as_stencil(&self) -> Stencil<'_> {
        Stencil {
            name: &self.name,
            code: &self.code,
            data: &self.data,
            data_align: self.data_align,
            holes: &self.holes,
            tail_jump: self.tail_jump,
        }
    }
}

/// A [`StencilSet`] that owns its stencils.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnedStencilSet {
    pub target: String,
    /// Same order as [`StencilSet::stencils`].
    pub stencils: Vec<OwnedStencil>,
}

impl OwnedStencilSet {
    pub fn by_name(&self, name: &str) -> Option<&OwnedStencil> {
        self.stencils.iter().find(|s| s.name == name)
    }

    /// The borrowed stencils, from which a [`StencilSet`] can be built.
    pub fn stencil_refs(&self) -> Vec<Stencil<'_>> {
        self.stencils.iter().map(OwnedStencil::as_stencil).collect()
    }

    /// Calls `f` with the borrowed form of the whole set.
    pub fn with_set<R>(&self, f: impl FnOnce(&StencilSet<'_>) -> R) -> R {
        let stencils = self.stencil_refs();
        f(&StencilSet {
            target: &self.target,
            stencils: &stencils,
        })
    }
}
