//! Building programs in code, for embedders: declare functions (so calls can refer to
//! functions defined later), then fill each one in with a [`FunctionBuilder`].
//!
//! Operands are filled in the order of the opcode's [`OpInfo::operands`]
//! (spec §2's operand column), so `op_rrr(Opcode::AddI64, 1, 2, 3)` is `AddI64 i1, i2,
//! i3`. Register counts are inferred as the assembler does (highest index used plus
//! one, call arguments included, at least the parameters) unless set with
//! [`FunctionBuilder::set_reg_count`]. Constants are pooled (identical ones shared).
//! The builder does not verify: call [`Program::verify`] on the result.
//!
//! ```
//! use vm3::builder::ProgramBuilder;
//! use vm3::{Bank, Opcode};
//!
//! // main(n) = 0 + 1 + ... + (n - 1)
//! let mut pb = ProgramBuilder::new();
//! let main = pb.declare("main", &[Bank::I64], Bank::I64);
//! let mut f = pb.define(main);
//! let (top, done) = (f.new_label(), f.new_label());
//! f.const_i64(1, 0) // i1: sum
//!     .const_i64(2, 0) // i2: i
//!     .bind(top)
//!     .branch(Opcode::CmpGeI64Br, 2, 0, done)
//!     .op_rrr(Opcode::AddI64, 1, 1, 2)
//!     .op_rrk(Opcode::AddI64K, 2, 2, 1)
//!     .jump(top)
//!     .bind(done)
//!     .op_r(Opcode::ReturnI64, 1);
//! let program = pb.finish().unwrap();
//! assert_eq!(program.functions[0].regs.i64, 3);
//! assert_eq!(program.functions[0].code[2].c, 6); // the branch to `done`
//! let verified = program.verify().unwrap();
//! assert_eq!(verified.functions().len(), 1);
//! ```
//!
//! [`OpInfo::operands`]: stencils::OpInfo::operands

use crate::asm::PoolKey;
use crate::program::{Const, Function, Program};
use crate::verify::{counts_of, needed_regs};
use std::collections::HashMap;
use stencils::{Bank, Field, Inst, Opcode};

/// A function of a [`ProgramBuilder`]: its index in the finished program.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FuncId(pub usize);

/// A branch target of one function, bound to an instruction with
/// [`FunctionBuilder::bind`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Label(u32);

/// Why [`ProgramBuilder::finish`] failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    #[error("function {function} is declared but never defined")]
    Undefined { function: String },
    #[error("function {function} is defined twice")]
    DefinedTwice { function: String },
    #[error("function {function}: label {label} is used but never bound")]
    UnboundLabel { function: String, label: u32 },
    #[error("function {function}: label {label} is bound twice")]
    LabelBoundTwice { function: String, label: u32 },
    /// An index does not fit its 16-bit field (branch target, function, constant or
    /// table index).
    #[error("function {function}: {what} does not fit the 16-bit field")]
    TooLarge { function: String, what: String },
}

struct Slot {
    func: Function,
    defined: bool,
    defined_twice: bool,
    /// Bound position of each label.
    labels: Vec<Option<u32>>,
    bound_twice: Option<u32>,
    /// (instruction, field, label) to patch at the end.
    fixups: Vec<(usize, Field, Label)>,
    regs: [Option<u32>; 3],
    pool: HashMap<PoolKey, usize>,
    too_large: Option<String>,
}

impl Slot {
    fn new(func: Function) -> Slot {
        Slot {
            func,
            defined: false,
            defined_twice: false,
            labels: Vec::new(),
            bound_twice: None,
            fixups: Vec::new(),
            regs: [None; 3],
            pool: HashMap::new(),
            too_large: None,
        }
    }
}

/// Builds a [`Program`]; see the [module documentation](self).
#[derive(Default)]
pub struct ProgramBuilder {
    slots: Vec<Slot>,
}

impl ProgramBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a function with this signature; define its body with [`define`](Self::define).
    pub fn declare(&mut self, name: impl Into<String>, params: &[Bank], result: Bank) -> FuncId {
        self.slots
            .push(Slot::new(Function::new(name, params.to_vec(), result)));
        FuncId(self.slots.len() - 1)
    }

    /// The builder of `id`'s body.
    ///
    /// # Panics
    ///
    /// If `id` was not declared by this builder.
    pub fn define(&mut self, id: FuncId) -> FunctionBuilder<'_> {
        let slot = &mut self.slots[id.0];
        if slot.defined {
            slot.defined_twice = true;
        }
        slot.defined = true;
        FunctionBuilder { slot }
    }

    /// The program: labels patched, register counts inferred (or as set).
    pub fn finish(self) -> Result<Program, BuildError> {
        let params: Vec<Vec<Bank>> = self.slots.iter().map(|s| s.func.params.clone()).collect();
        let mut functions = Vec::with_capacity(self.slots.len());
        for mut slot in self.slots {
            let function = slot.func.name.clone();
            if !slot.defined {
                return Err(BuildError::Undefined { function });
            }
            if slot.defined_twice {
                return Err(BuildError::DefinedTwice { function });
            }
            if let Some(label) = slot.bound_twice {
                return Err(BuildError::LabelBoundTwice { function, label });
            }
            if let Some(what) = slot.too_large {
                return Err(BuildError::TooLarge { function, what });
            }
            for &(pc, field, label) in &slot.fixups {
                let Some(target) = slot.labels[label.0 as usize] else {
                    return Err(BuildError::UnboundLabel {
                        function,
                        label: label.0,
                    });
                };
                let Ok(target) = i16::try_from(target) else {
                    return Err(BuildError::TooLarge {
                        function,
                        what: format!("branch target {target}"),
                    });
                };
                set_field(&mut slot.func.code[pc], field, target as u16);
            }
            let mut need = needed_regs(&slot.func, |i| params.get(i).map(|p| p.as_slice()));
            for (bank, n) in slot.regs.iter().enumerate() {
                if let Some(n) = n {
                    need[bank] = *n;
                }
            }
            slot.func.regs = counts_of(need);
            functions.push(slot.func);
        }
        Ok(Program { functions })
    }
}

fn set_field(inst: &mut Inst, field: Field, v: u16) {
    match field {
        Field::A => inst.a = v,
        Field::B => inst.b = v,
        Field::C => inst.c = v as i16,
    }
}

/// Appends instructions to one function; see the [module documentation](self).
///
/// The `op_*` methods fill the opcode's operands in text order and panic when the
/// opcode has a different number of operands.
pub struct FunctionBuilder<'a> {
    slot: &'a mut Slot,
}

impl FunctionBuilder<'_> {
    /// The index the next instruction gets.
    pub fn pc(&self) -> u32 {
        self.slot.func.code.len() as u32
    }

    /// A new, unbound label.
    pub fn new_label(&mut self) -> Label {
        self.slot.labels.push(None);
        Label(self.slot.labels.len() as u32 - 1)
    }

    /// Binds `label` to the next instruction.
    pub fn bind(&mut self, label: Label) -> &mut Self {
        let pc = self.pc();
        let slot = &mut self.slot.labels[label.0 as usize];
        if slot.is_some() {
            self.slot.bound_twice = Some(label.0);
        }
        *slot = Some(pc);
        self
    }

    /// Sets the register count of `bank` exactly, instead of inferring it.
    pub fn set_reg_count(&mut self, bank: Bank, n: u32) -> &mut Self {
        self.slot.regs[bank as usize] = Some(n);
        self
    }

    /// Appends `inst` as is.
    pub fn emit_inst(&mut self, inst: Inst) -> &mut Self {
        self.slot.func.code.push(inst);
        self
    }

    /// Appends `op` with raw fields (flags 0).
    pub fn emit(&mut self, op: Opcode, a: u16, b: u16, c: i16) -> &mut Self {
        self.emit_inst(Inst::new(op as u8, a, b, c))
    }

    /// Appends `op` with `values` in the fields of its operands, in text order.
    fn fill(&mut self, op: Opcode, values: &[u16]) -> &mut Self {
        let operands = op.info().operands;
        assert_eq!(
            operands.len(),
            values.len(),
            "{} takes {} operands, {} given",
            op.name(),
            operands.len(),
            values.len()
        );
        let mut inst = Inst::new(op as u8, 0, 0, 0);
        for (&(field, _), &v) in operands.iter().zip(values) {
            set_field(&mut inst, field, v);
        }
        self.emit_inst(inst)
    }

    /// An opcode without operands (`Nop`, `Deopt`).
    pub fn op(&mut self, op: Opcode) -> &mut Self {
        self.fill(op, &[])
    }

    /// One register operand (`ReturnI64 i1`).
    pub fn op_r(&mut self, op: Opcode, a: u16) -> &mut Self {
        self.fill(op, &[a])
    }

    /// One immediate operand (`ReturnConstK 1`).
    pub fn op_k(&mut self, op: Opcode, k: i16) -> &mut Self {
        self.fill(op, &[k as u16])
    }

    /// Two register operands (`MovI64 i1, i2`).
    pub fn op_rr(&mut self, op: Opcode, a: u16, b: u16) -> &mut Self {
        self.fill(op, &[a, b])
    }

    /// A register and an immediate (`ConstI64K i1, 5`).
    pub fn op_rk(&mut self, op: Opcode, a: u16, k: i16) -> &mut Self {
        self.fill(op, &[a, k as u16])
    }

    /// Three register operands (`AddI64 i1, i2, i3`).
    pub fn op_rrr(&mut self, op: Opcode, a: u16, b: u16, c: u16) -> &mut Self {
        self.fill(op, &[a, b, c])
    }

    /// Two registers and an immediate (`AddI64K i1, i2, 5`).
    pub fn op_rrk(&mut self, op: Opcode, a: u16, b: u16, k: i16) -> &mut Self {
        self.fill(op, &[a, b, k as u16])
    }

    /// A compare-and-branch with two registers (`CmpLtI64Br i1, i2, label`).
    pub fn branch(&mut self, op: Opcode, a: u16, b: u16, target: Label) -> &mut Self {
        self.fixup(op, target);
        self.fill(op, &[a, b, 0])
    }

    /// A compare-and-branch with an immediate (`CmpLtI64KBr i1, 10, label`).
    pub fn branch_k(&mut self, op: Opcode, a: u16, k: i16, target: Label) -> &mut Self {
        self.branch(op, a, k as u16, target)
    }

    /// `Jump target`.
    pub fn jump(&mut self, target: Label) -> &mut Self {
        self.fixup(Opcode::Jump, target);
        self.fill(Opcode::Jump, &[0])
    }

    fn fixup(&mut self, op: Opcode, target: Label) {
        let field = op
            .info()
            .target_field()
            .unwrap_or_else(|| panic!("{} is not a branch", op.name()));
        let pc = self.slot.func.code.len();
        self.slot.fixups.push((pc, field, target));
    }

    /// The pool index of `c` (shared with identical constants; f64 by bits).
    pub fn constant(&mut self, c: Const) -> i16 {
        let next = self.slot.func.consts.len();
        let i = *self.slot.pool.entry(PoolKey::of(&c)).or_insert(next);
        if i == next {
            self.slot.func.consts.push(c);
        }
        self.index16(i, "constant index")
    }

    fn index16(&mut self, i: usize, what: &str) -> i16 {
        i16::try_from(i).unwrap_or_else(|_| {
            self.slot
                .too_large
                .get_or_insert_with(|| format!("{what} {i}"));
            0
        })
    }

    /// An opcode taking a register and a pooled constant (`ConstF64K f0, 2.5`).
    pub fn op_const(&mut self, op: Opcode, a: u16, c: Const) -> &mut Self {
        let k = self.constant(c);
        self.fill(op, &[a, k as u16])
    }

    /// `iA = value`: `ConstI64K` when it fits 16 bits, else `ConstI64KW`.
    pub fn const_i64(&mut self, a: u16, value: i64) -> &mut Self {
        match i16::try_from(value) {
            Ok(k) => self.op_rk(Opcode::ConstI64K, a, k),
            Err(_) => self.op_const(Opcode::ConstI64KW, a, Const::I64(value)),
        }
    }

    /// `fA = value` (`ConstF64K`).
    pub fn const_f64(&mut self, a: u16, value: f64) -> &mut Self {
        self.op_const(Opcode::ConstF64K, a, Const::F64(value))
    }

    /// Adds an i64 table to the function; its index, for `LookupI64KW`.
    pub fn table(&mut self, values: impl Into<Vec<i64>>) -> u16 {
        self.slot.func.tables.push(values.into());
        let i = self.slot.func.tables.len() - 1;
        self.index16(i, "table index") as u16
    }

    /// A call with a destination register (`CallI64 i2, i1, f`).
    pub fn call(&mut self, op: Opcode, dest: u16, args_base: u16, callee: FuncId) -> &mut Self {
        let c = self.index16(callee.0, "function index");
        self.fill(op, &[dest, args_base, c as u16])
    }

    /// A tail call (`TailCallI64 i0, f`).
    pub fn tail_call(&mut self, op: Opcode, args_base: u16, callee: FuncId) -> &mut Self {
        let c = self.index16(callee.0, "function index");
        self.fill(op, &[args_base, c as u16])
    }

    /// `CallMixed`: the destination's bank goes in `flags`.
    pub fn call_mixed(
        &mut self,
        dest_bank: Bank,
        dest: u16,
        args_base: u16,
        callee: FuncId,
    ) -> &mut Self {
        self.call(Opcode::CallMixed, dest, args_base, callee);
        self.slot.func.code.last_mut().unwrap().flags = dest_bank as u8;
        self
    }

    /// `FmaF64 fA, fB, fX, fY`: fA = fB * fX + fY.
    pub fn fma(&mut self, a: u16, b: u16, x: u8, y: u8) -> &mut Self {
        self.fill(Opcode::FmaF64, &[a, b, x as u16 | (y as u16) << 8])
    }
}
