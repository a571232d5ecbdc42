//! Divisions by a register that holds a known constant.
//!
//! The K forms of the bytecode carry only 16-bit immediates, so a program that divides
//! by a wider constant loads it into a register (`ConstI64KW`) and uses `DivI64` /
//! `ModI64`, whose stencils divide with `idiv` (tens of cycles). When the divisor's
//! register provably holds one constant at the division, the compiler lowers it as it
//! lowers `DivI64K` (`lower::divide_by_constant`): a shift, masks or a multiplication by
//! a magic reciprocal.
//!
//! "Provably" is kept simple, to cost nothing on functions without divisions and little
//! on others: the register (not a parameter) is written exactly once in the function, by
//! a constant load in the function's straight-line prefix (the instructions from the
//! entry up to the first branch or branch target, which every path executes in order),
//! and the division comes after that load. Every path to the division then passes the
//! load, and nothing else writes the register.

use crate::regalloc::reg_uses;
use stencils::{Bank, Opcode};
use vm3::{Const, Function, Program};

/// The divisor of each `DivI64` / `ModI64` of a function whose divisor register holds a
/// known non-zero constant there, as `(instruction index, divisor)` in instruction
/// order.
pub fn known_divisors(program: &Program, func: &Function) -> Vec<(u32, i64)> {
    let divisions = || {
        func.code.iter().enumerate().filter(|(_, inst)| {
            inst.code == Opcode::DivI64 as u8 || inst.code == Opcode::ModI64 as u8
        })
    };
    if divisions().next().is_none() {
        return Vec::new();
    }
    let constants = single_constant_loads(program, func);
    divisions()
        .filter_map(|(pc, inst)| {
            let &(load_pc, value) = constants.get(inst.c as usize)?.as_ref()?;
            (load_pc < pc && value != 0).then_some((pc as u32, value))
        })
        .collect()
}

/// For each i64 register: `Some((pc, value))` when its only write in the function is a
/// constant load at `pc` within the straight-line prefix (and it is not a parameter).
fn single_constant_loads(program: &Program, func: &Function) -> Vec<Option<(usize, i64)>> {
    let regs = func.regs.get(Bank::I64) as usize;
    let mut writes = vec![0u32; regs];
    for (k, &bank) in func.params.iter().enumerate() {
        if bank == Bank::I64 {
            writes[k] += 1;
        }
    }
    for &inst in &func.code {
        reg_uses(program, inst, |u| {
            if u.write && u.bank == Bank::I64 {
                writes[u.reg] += 1;
            }
        });
    }
    let prefix = straight_line_prefix(func);
    let mut loads = vec![None; regs];
    for (pc, inst) in func.code[..prefix].iter().enumerate() {
        let value = match Opcode::from_u8(inst.code) {
            Some(Opcode::ConstI64K) => inst.c as i64,
            Some(Opcode::ConstI64KW) => match func.consts.get(inst.c as usize) {
                Some(Const::I64(v)) => *v,
                _ => continue,
            },
            _ => continue,
        };
        let reg = inst.a as usize;
        if writes[reg] == 1 {
            loads[reg] = Some((pc, value));
        }
    }
    loads
}

/// How many instructions from the entry run in order on every path: up to and including
/// the first instruction that branches, ends the function or may not continue, and
/// before the first branch target.
fn straight_line_prefix(func: &Function) -> usize {
    let mut end = func.code.len();
    for (pc, inst) in func.code.iter().enumerate() {
        let info = Opcode::from_u8(inst.code).expect("verified opcode").info();
        if let Some(field) = info.target_field() {
            end = end.min(inst.field(field) as usize);
            end = end.min(pc + 1);
        }
        if info.terminal || inst.code == Opcode::Deopt as u8 {
            end = end.min(pc + 1);
        }
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    fn divisors(source: &str) -> Vec<(u32, i64)> {
        let program = vm3::asm::assemble(source, "test.vm3").expect("assembles");
        let program = program.verify().expect("verifies");
        known_divisors(&program, &program.functions[0])
    }

    #[test]
    fn a_constant_loaded_once_before_the_loop_is_known() {
        let found = divisors(
            "func main(i64) -> i64
                ConstI64KW i1, 4294967311
                ConstI64K  i2, -7
            loop:
                DivI64     i3, i0, i1
                ModI64     i4, i0, i2
                AddI64K    i0, i0, -1
                CmpGtI64KBr i0, 0, loop
                ReturnI64  i3
            end",
        );
        assert_eq!(found, vec![(2, 4294967311), (3, -7)]);
    }

    #[test]
    fn registers_written_twice_parameters_zero_and_loads_after_a_branch_are_not() {
        let found = divisors(
            "func main(i64, i64) -> i64
                ConstI64K  i2, 3
                ConstI64K  i2, 5          ; written twice
                ConstI64K  i3, 0          ; zero keeps the trapping stencil
                DivI64     i4, i0, i1     ; a parameter
                DivI64     i4, i0, i2
                DivI64     i4, i0, i3
                CmpEqI64KBr i0, 0, skip
                ConstI64K  i6, 9          ; after a branch: not on every path
            skip:
                DivI64     i4, i0, i6
                ReturnI64  i4
            end",
        );
        assert_eq!(found, vec![]);
    }

    /// Registers start at zero (spec §1): before its load the divisor is 0 and the
    /// division traps, so the load's value must not be used.
    #[test]
    fn a_division_before_the_load_is_not() {
        let found = divisors(
            "func main(i64) -> i64
                DivI64     i1, i0, i2
                ConstI64K  i2, 13
                ReturnI64  i1
            end",
        );
        assert_eq!(found, vec![]);
    }
}
