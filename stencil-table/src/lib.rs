//! What a harvested stencil is: machine code, the data it reads, and its holes.
//!
//! The harvester (`stencil-harvest`) produces these from an object file and writes them
//! out as Rust source of `'static` tables; the JIT (`jit`) copies the code and fills
//! the holes. Nothing here depends on the host: a table for any target can be held and
//! patched on any machine.

pub mod aarch64;
#[cfg(feature = "disasm")]
pub mod disasm;

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

    // aarch64. Every field is one 32-bit little-endian instruction whose immediate the
    // relocation fills; the names follow the arithmetic, not one object format, so ELF
    // (`R_AARCH64_*`) and Mach-O (`ARM64_RELOC_*`) relocations map onto the same kinds.
    // `Page(x)` is `x & !0xFFF`.
    /// `adrp` (ELF `ADR_PREL_PG_HI21`, Mach-O `PAGE21`): `Page(S + A) - Page(P)` in
    /// immhi:immlo, must fit 33 bits signed (±4 GiB). Paired with `Aarch64AddLo12` or an
    /// `Aarch64Ldst*Lo12` on the same register; used for addresses within the code region.
    Aarch64AdrpPage21,
    /// `add xd, xn, #imm12` (ELF `ADD_ABS_LO12_NC`, Mach-O `PAGEOFF12`): `(S + A) & 0xFFF`.
    Aarch64AddLo12,
    /// A load/store with a scaled unsigned 12-bit offset (ELF `LDST8_ABS_LO12_NC`,
    /// Mach-O `PAGEOFF12`): `(S + A) & 0xFFF`, scaled by the access size (1 byte), which
    /// `S + A` must be aligned to.
    Aarch64Ldst8Lo12,
    /// As [`RelocKind::Aarch64Ldst8Lo12`] for 2-byte accesses (`LDST16_ABS_LO12_NC`).
    Aarch64Ldst16Lo12,
    /// As [`RelocKind::Aarch64Ldst8Lo12`] for 4-byte accesses (`LDST32_ABS_LO12_NC`).
    Aarch64Ldst32Lo12,
    /// As [`RelocKind::Aarch64Ldst8Lo12`] for 8-byte accesses (`LDST64_ABS_LO12_NC`).
    Aarch64Ldst64Lo12,
    /// As [`RelocKind::Aarch64Ldst8Lo12`] for 16-byte accesses (`LDST128_ABS_LO12_NC`).
    Aarch64Ldst128Lo12,
    /// The `adrp` of an `adrp` + `add` pair that only computes `S + A` into a register
    /// (the harvester checked that every instruction using the page is such an `add`).
    /// An operand is a small number far from any code, out of `adrp`'s reach, so when
    /// `S + A < 2^32` the JIT rewrites the pair to `movz xd, #lo16` + `movk xd, #hi16,
    /// lsl #16`, which loads the same value; otherwise it is patched as
    /// [`RelocKind::Aarch64AdrpPage21`].
    Aarch64AdrpAddPage21,
    /// The `add` of such a pair: `movk` (or, when the `add` writes another register,
    /// `add xd, xn, #hi, lsl #12`, for `S + A < 2^24`) when the pair is relaxed, else
    /// as [`RelocKind::Aarch64AddLo12`].
    Aarch64AdrpAddLo12,
    /// `b`/`bl` (ELF `JUMP26`/`CALL26`, Mach-O `BRANCH26`): `(S + A - P) >> 2` in imm26,
    /// ±128 MiB. A helper out of range is reached through a trampoline after the code.
    Aarch64Branch26,
    /// `b.cond`, `cbz`, `cbnz` (ELF `CONDBR19`): `(S + A - P) >> 2` in imm19, ±1 MiB.
    Aarch64CondBranch19,
    /// `tbz`, `tbnz` (ELF `TSTBR14`): `(S + A - P) >> 2` in imm14, ±32 KiB.
    Aarch64TestBranch14,
    /// `movz`/`movk` with bits 0..16 of `S + A` (ELF `MOVW_UABS_G0`), which must fit 16
    /// bits unsigned.
    Aarch64MovwG0,
    /// Bits 0..16 of `S + A`, unchecked (ELF `MOVW_UABS_G0_NC`).
    Aarch64MovwG0Nc,
    /// Bits 16..32 of `S + A`, which must fit 32 bits unsigned (ELF `MOVW_UABS_G1`).
    Aarch64MovwG1,
    /// Bits 16..32 of `S + A`, unchecked (ELF `MOVW_UABS_G1_NC`).
    Aarch64MovwG1Nc,
    /// Bits 32..48 of `S + A`, which must fit 48 bits unsigned (ELF `MOVW_UABS_G2`).
    Aarch64MovwG2,
    /// Bits 32..48 of `S + A`, unchecked (ELF `MOVW_UABS_G2_NC`).
    Aarch64MovwG2Nc,
    /// Bits 48..64 of `S + A` (ELF `MOVW_UABS_G3`).
    Aarch64MovwG3,
    /// The `adrp` of a load through the global offset table (ELF `ADR_GOT_PAGE`, Mach-O
    /// `GOT_LOAD_PAGE21`): `Page(G) - Page(P)` for the slot `G` holding `S + A`. The JIT
    /// relaxes the pair instead where it can: `movz`/`movk` when `S + A < 2^32`, else
    /// `adrp` + `add` of `S + A` itself.
    Aarch64GotPage21,
    /// The `ldr xt, [xn, #imm]` of such a load (ELF `LD64_GOT_LO12_NC`, Mach-O
    /// `GOT_LOAD_PAGEOFF12`): `G & 0xFFF` scaled by 8; relaxed with its `adrp`
    /// (`movk`, or `add xt, xn, ...`).
    Aarch64GotLo12,
}

/// The instruction set a relocation kind belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Isa {
    X86_64,
    Aarch64,
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
            RelocKind::X86_64GotLoadPc32
                | RelocKind::X86_64GotPc32
                | RelocKind::Aarch64GotPage21
                | RelocKind::Aarch64GotLo12
        )
    }

    /// The instruction set whose instructions the relocation patches.
    pub const fn isa(self) -> Isa {
        use RelocKind::*;
        match self {
            X86_64Abs64 | X86_64Abs32 | X86_64Abs32S | X86_64Pc32 | X86_64LeaPc32
            | X86_64Branch32 | X86_64Abs31 | X86_64GotLoadPc32 | X86_64GotPc32 => Isa::X86_64,
            Aarch64AdrpPage21 | Aarch64AddLo12 | Aarch64Ldst8Lo12 | Aarch64Ldst16Lo12
            | Aarch64Ldst32Lo12 | Aarch64Ldst64Lo12 | Aarch64Ldst128Lo12 | Aarch64AdrpAddPage21
            | Aarch64AdrpAddLo12 | Aarch64Branch26 | Aarch64CondBranch19 | Aarch64TestBranch14
            | Aarch64MovwG0 | Aarch64MovwG0Nc | Aarch64MovwG1 | Aarch64MovwG1Nc | Aarch64MovwG2
            | Aarch64MovwG2Nc | Aarch64MovwG3 | Aarch64GotPage21 | Aarch64GotLo12 => Isa::Aarch64,
        }
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
