//! Programs of shapes the raw generator's random choices almost never reach, each aimed
//! at a finding of the hostile-input review (issue 10): lists nested deeper than a
//! result may be ([`vm3::MAX_VALUE_DEPTH`]) or sharing sublists so that the result
//! expands exponentially, lists containing themselves, a line of thousands of labels,
//! and entry arguments that are forged or stale heap handles. The tiers must agree on
//! each, and nothing may crash or hang; `raw_fuzz` runs them like any other case.

use fastrand::Rng;
use stencils::{Bank, Inst, Opcode};
use vm3::{Const, Function, RegCounts, Value, MAX_VALUE_DEPTH};

fn inst(op: Opcode, a: u16, b: u16, c: i16) -> Inst {
    Inst::new(op as u8, a, b, c)
}

/// `main() -> cell` returning lists nested `levels` deep, each level holding the one
/// below `width` times (1: a chain, 2: level k+1 is `[level k, level k]`), or, with
/// `width` 0, a chain whose innermost list holds the outermost (a list containing
/// itself when `levels` is 0). Straight-line code: `i0 = 0`, `i1 = 1`, the innermost
/// list in `c2`, and `c0`/`c1` taking turns for the levels.
pub fn nesting(levels: usize, width: usize) -> Function {
    let mut f = Function::new("main", Vec::new(), Bank::Cell);
    f.regs = RegCounts {
        i64: 2,
        f64: 0,
        cell: 3,
    };
    let code = &mut f.code;
    code.push(inst(Opcode::ConstI64K, 0, 0, 0));
    code.push(inst(Opcode::ConstI64K, 1, 0, 1));
    code.push(inst(Opcode::NewList, 2, 0, 1));
    if width == 0 {
        code.push(inst(Opcode::ListPushI64, 2, 0, 0));
    }
    let mut below = 2u16;
    for _ in 0..levels {
        let this = if below == 0 { 1 } else { 0 };
        code.push(inst(Opcode::NewList, this, 0, width.max(1) as i16));
        for k in 0..width.max(1) {
            code.push(inst(Opcode::ListPushI64, this, 0, 0));
            // The list cA at index iC = cB.
            code.push(inst(Opcode::ListSetCell, this, below, k.min(1) as i16));
        }
        below = this;
    }
    if width == 0 {
        code.push(inst(Opcode::ListSetCell, 2, below, 0));
    }
    code.push(inst(Opcode::ReturnCell, below, 0, 0));
    f
}

/// One of the nesting shapes, sized around the limits that matter.
pub fn random_nesting(rng: &mut Rng) -> Function {
    match rng.u32(0..3) {
        0 => {
            let levels = [
                MAX_VALUE_DEPTH - 2,
                MAX_VALUE_DEPTH - 1,
                MAX_VALUE_DEPTH,
                MAX_VALUE_DEPTH + 1,
                5_000,
                20_000,
            ];
            nesting(levels[rng.usize(..levels.len())], 1)
        }
        1 => nesting([8, 16, 22, 30, 40][rng.usize(..5)], 2),
        _ => nesting(rng.usize(0..4), 0),
    }
}

/// Adds `count` labels (identifiers the text format can write) at one instruction of
/// `f`, which the printer puts on lines of their own and `raw_fuzz` also joins into
/// one line (issue 10: the assembler was quadratic in labels per line).
pub fn add_labels(rng: &mut Rng, f: &mut Function, count: usize) {
    let at = rng.u32(0..=f.code.len() as u32);
    let first = f.labels.len();
    f.labels
        .extend((0..count).map(|k| (at, format!("many{}_{k}", first))));
    // In instruction order, as the printer writes them and the assembler records them.
    f.labels.sort_by_key(|&(index, _)| index);
}

/// A cell argument of any kind for [`handle_user`]: a null, a bool, a string, a list
/// (empty, of numbers, or nested) or a map. Raw handle bits cannot be passed (issue 10:
/// `Value` has no raw cells, and the runtime allocates every argument in the run's own
/// heap), so what is left to try is each kind used as every other kind: `bad handle`
/// in both tiers, never another object read or a crash.
pub fn cell_argument(rng: &mut Rng) -> Value {
    match rng.u32(0..6) {
        0 => Value::Null,
        1 => Value::Bool(rng.bool()),
        2 => Value::Str("forged?".to_string()),
        3 => Value::List((0..rng.i64(0..4)).map(Value::I64).collect()),
        4 => Value::List(vec![Value::List(vec![Value::I64(1)]), Value::Null]),
        _ => Value::Map(vec![(1, 2), (0, rng.i64(..))]),
    }
}

/// `main(cell) -> ...` that uses its argument as a string, list or map, or returns it,
/// for [`cell_argument`]s. One string constant, so that slot 0 of the string
/// arena holds something a forged handle could reach.
pub fn handle_user(rng: &mut Rng) -> Function {
    let (result, body): (Bank, Vec<Inst>) = match rng.u32(0..5) {
        0 => (
            Bank::I64,
            vec![
                inst(Opcode::LenStr, 0, 0, 0),
                inst(Opcode::ReturnI64, 0, 0, 0),
            ],
        ),
        1 => (
            Bank::I64,
            vec![
                inst(Opcode::ListLenI64, 0, 0, 0),
                inst(Opcode::ReturnI64, 0, 0, 0),
            ],
        ),
        2 => (
            Bank::I64,
            vec![
                inst(Opcode::ListGetI64, 0, 0, 0),
                inst(Opcode::ReturnI64, 0, 0, 0),
            ],
        ),
        3 => (
            Bank::I64,
            vec![
                inst(Opcode::MapGetI64I64, 0, 0, 0),
                inst(Opcode::ReturnI64, 0, 0, 0),
            ],
        ),
        _ => (Bank::Cell, vec![inst(Opcode::ReturnCell, 0, 0, 0)]),
    };
    let mut f = Function::new("main", vec![Bank::Cell], result);
    f.regs = RegCounts {
        i64: 1,
        f64: 0,
        cell: 2,
    };
    f.consts.push(Const::Str(b"private".to_vec()));
    // Allocate something of each kind first, then use the argument.
    f.code.push(inst(Opcode::ConstStrKW, 1, 0, 0));
    f.code.push(inst(Opcode::NewList, 1, 0, 1));
    f.code.push(inst(Opcode::NewMap, 1, 0, 1));
    f.code.extend(body);
    f
}
