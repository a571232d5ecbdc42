//! The `.vm3` assembler and printer (spec §5).

mod common;

use common::{bits, plain_kernels, random_program, Rng};
use vm3::asm::{assemble, format_inst, to_text, AsmError};
use vm3::builder::ProgramBuilder;
use vm3::{Bank, Const, Function, Inst, Opcode, Program, RegCounts};

/// All errors of assembling `src` as `prog.vm3`, formatted.
fn errors(src: &str) -> Vec<String> {
    match assemble(src, "prog.vm3") {
        Ok(_) => panic!("expected errors, assembled:\n{src}"),
        Err(e) => e.iter().map(|e| e.to_string()).collect(),
    }
}

/// The single error of assembling `src`.
fn error(src: &str) -> String {
    let e = errors(src);
    assert_eq!(e.len(), 1, "expected one error, got {e:#?}");
    e.into_iter().next().unwrap()
}

/// `body` (lines 2..) inside `func main(i64) -> i64` ... `end`, with a return.
fn in_main(body: &str) -> String {
    format!("func main(i64) -> i64\n{body}\n    ReturnI64 i0\nend\n")
}

fn ok(src: &str) -> Program {
    match assemble(src, "prog.vm3") {
        Ok(p) => p,
        Err(e) => panic!(
            "{}",
            e.iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        ),
    }
}

fn inst(op: Opcode, a: u16, b: u16, c: i16) -> Inst {
    Inst::new(op as u8, a, b, c)
}

// ---------------------------------------------------------------------------------
// Well-formed input.

/// spec §5: the example assembles to exactly these instructions.
#[test]
fn spec_example() {
    let src = "; sum of 0..n-1
func main(i64) -> i64
    ConstI64K   i1, 0            ; sum
    ConstI64K   i2, 0            ; i
loop:
    CmpGeI64Br  i2, i0, done
    AddI64      i1, i1, i2
    AddI64K     i2, i2, 1
    Jump        loop
done:
    ReturnI64   i1
end
";
    let p = ok(src);
    assert_eq!(p.functions.len(), 1);
    let f = &p.functions[0];
    assert_eq!(f.name, "main");
    assert_eq!(f.params, vec![Bank::I64]);
    assert_eq!(f.result, Bank::I64);
    assert_eq!(
        f.regs,
        RegCounts {
            i64: 3,
            f64: 0,
            cell: 0
        }
    );
    assert_eq!(
        f.code,
        vec![
            inst(Opcode::ConstI64K, 1, 0, 0),
            inst(Opcode::ConstI64K, 2, 0, 0),
            inst(Opcode::CmpGeI64Br, 2, 0, 6),
            inst(Opcode::AddI64, 1, 1, 2),
            inst(Opcode::AddI64K, 2, 2, 1),
            inst(Opcode::Jump, 0, 0, 2),
            inst(Opcode::ReturnI64, 1, 0, 0),
        ]
    );
    assert_eq!(
        f.labels,
        vec![(2, "loop".to_string()), (6, "done".to_string())]
    );
    assert!(f.consts.is_empty() && f.tables.is_empty());
    p.verify().unwrap();
}

/// spec §5: operands in OpInfo order; immediates in b for the K-form compares.
#[test]
fn operand_fields_follow_the_table() {
    let p = ok(&in_main(
        "    CmpLtI64KBr i0, -7, end_\n    ModI64K i3, i0, 0x10\nend_:\n    ReturnConstK -32768",
    ));
    let f = &p.functions[0];
    assert_eq!(f.code[0], inst(Opcode::CmpLtI64KBr, 0, (-7i16) as u16, 2));
    assert_eq!(f.code[1], inst(Opcode::ModI64K, 3, 0, 16));
    assert_eq!(f.code[2], inst(Opcode::ReturnConstK, 0, 0, -32768));
}

/// spec §5: immediates are range-checked to 16 signed bits, decimal or hex.
#[test]
fn immediate_limits() {
    let p = ok(&in_main("    ConstI64K i1, 32767\n    ConstI64K i1, -32768\n    ConstI64K i1, 0x7fff\n    ConstI64K i1, -0x8000"));
    let cs: Vec<i16> = p.functions[0].code[..4].iter().map(|i| i.c).collect();
    assert_eq!(cs, vec![32767, -32768, 32767, -32768]);
    assert_eq!(
        error(&in_main("    ConstI64K i1, 32768")),
        "prog.vm3:2:5: error: immediate 32768 does not fit 16 signed bits (-32768..32767)"
    );
    assert_eq!(
        error(&in_main("    AddI64K i1, i1, -32769")),
        "prog.vm3:2:5: error: immediate -32769 does not fit 16 signed bits (-32768..32767)"
    );
    assert_eq!(
        error(&in_main("    CmpEqI64KBr i1, 0xFFFF, x\nx:")),
        "prog.vm3:2:5: error: immediate 0xFFFF does not fit 16 signed bits (-32768..32767)"
    );
    assert_eq!(
        error(&in_main("    ConstI64K i1, 99999999999999999999999999999999999999999999")),
        "prog.vm3:2:5: error: immediate 99999999999999999999999999999999999999999999 does not fit 16 signed bits (-32768..32767)"
    );
    assert_eq!(
        error(&in_main("    ConstI64K i1, ten")),
        "prog.vm3:2:5: error: ConstI64K expects an integer immediate, found ten"
    );
    assert_eq!(
        error(&in_main("    ConstI64K i1, 1.5")),
        "prog.vm3:2:5: error: ConstI64K expects an integer immediate, found 1.5"
    );
}

/// spec §5: register counts are inferred: highest index plus one, at least the
/// parameters (param k of bank X in register k of X), call arguments included.
#[test]
fn register_counts_are_inferred() {
    let p = ok("func main(i64, f64, cell, f64) -> f64
    CallMixed   f0, i5, callee   ; callee(i64, f64, cell) reads i5, f6, c7
    ReturnF64   f0
end
func callee(i64, f64, cell) -> f64
    ReturnF64   f1
end
func none() -> i64
    CallI64     i0, i40, none    ; no parameters: the base register is not used
    ReturnConstK 0
end
");
    assert_eq!(
        p.functions[0].regs,
        RegCounts {
            i64: 6,
            f64: 7,
            cell: 8
        }
    );
    assert_eq!(
        p.functions[1].regs,
        RegCounts {
            i64: 1,
            f64: 2,
            cell: 3
        }
    );
    assert_eq!(
        p.functions[2].regs,
        RegCounts {
            i64: 1,
            f64: 0,
            cell: 0
        }
    );
    // CallMixed's destination bank goes in flags.
    assert_eq!(
        p.functions[0].code[0],
        Inst {
            code: Opcode::CallMixed as u8,
            flags: Bank::F64 as u8,
            a: 0,
            b: 5,
            c: 1
        }
    );
    p.verify().unwrap();
}

/// spec §5: constants are written as literals; the assembler pools them, sharing
/// identical ones (f64 by bits, so -0.0 and 0.0 differ and NaN equals NaN).
#[test]
fn constants_are_pooled() {
    let p = ok("func main() -> f64
    ConstI64KW  i0, 9007199254740993
    ConstI64KW  i1, -9223372036854775808
    ConstI64KW  i2, 9007199254740993
    ConstI64KW  i3, 0x7FFFFFFFFFFFFFFF
    ConstF64K   f0, 2.5
    ConstF64K   f1, -0.0
    ConstF64K   f2, 0.0
    ConstF64K   f3, 1e300
    ConstF64K   f4, inf
    ConstF64K   f5, -inf
    ConstF64K   f6, nan
    ConstF64K   f7, NaN
    ConstF64K   f8, 2.5
    ConstF64K   f9, 3
    ReturnF64   f0
end
");
    let f = &p.functions[0];
    let c: Vec<u16> = f.code[..14].iter().map(|i| i.c as u16).collect();
    assert_eq!(c, vec![0, 1, 0, 2, 3, 4, 5, 6, 7, 8, 9, 9, 3, 10]);
    assert_eq!(f.consts.len(), 11);
    assert_eq!(f.consts[0], Const::I64(9007199254740993));
    assert_eq!(f.consts[1], Const::I64(i64::MIN));
    assert_eq!(f.consts[2], Const::I64(i64::MAX));
    let f64_bits: Vec<u64> = f.consts[3..]
        .iter()
        .map(|c| match c {
            Const::F64(v) => v.to_bits(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        f64_bits,
        vec![
            2.5f64.to_bits(),
            (-0.0f64).to_bits(),
            0.0f64.to_bits(),
            1e300f64.to_bits(),
            f64::INFINITY.to_bits(),
            f64::NEG_INFINITY.to_bits(),
            0x7FF8_0000_0000_0000,
            3.0f64.to_bits(),
        ]
    );
    p.verify().unwrap();
}

/// spec §5: `table NAME = [...]` inside a function, `LookupI64KW i1, i0, NAME`; tables
/// may be used before their line.
#[test]
fn tables() {
    let p = ok("func main(i64) -> i64
    LookupI64KW i1, i0, b
    table a = [0, -1, 0x10]
    table b = []
    LookupI64KW i1, i0, a
    ReturnI64   i1
end
");
    let f = &p.functions[0];
    assert_eq!(f.tables, vec![vec![0, -1, 16], vec![]]);
    assert_eq!(f.table_names, vec!["a".to_string(), "b".to_string()]);
    assert_eq!(f.code[0].c, 1);
    assert_eq!(f.code[1].c, 0);
}

/// spec §5: labels on their own line or before an instruction, several per place;
/// forward references to functions.
#[test]
fn labels_and_forward_calls() {
    let p = ok("func main(i64) -> i64
a: b:   CallI64 i1, i0, later
c:
    CmpEqI64Br i0, i1, a
    Jump c
end
func later(i64) -> i64
    ReturnI64 i0
end
");
    let f = &p.functions[0];
    assert_eq!(f.code[0], inst(Opcode::CallI64, 1, 0, 1));
    assert_eq!(f.code[1], inst(Opcode::CmpEqI64Br, 0, 1, 0));
    assert_eq!(f.code[2], inst(Opcode::Jump, 0, 0, 1));
    assert_eq!(
        f.labels,
        vec![(0, "a".into()), (0, "b".into()), (1, "c".into())]
    );
}

/// spec §5: `;` starts a comment, except inside a string literal.
#[test]
fn comments_and_strings() {
    let p = ok("; leading comment
func main() -> i64 ; header comment
    const str \"a;b\\n\\t\\\\\\\"\\x41\\xC3\\xA9\" ; comment
    const str \"\\xFF\\xC3\" ; strings are bytes, not necessarily UTF-8
    ReturnConstK 0;comment
end ; trailing
");
    assert_eq!(
        p.functions[0].consts,
        vec![
            Const::Str("a;b\n\t\\\"A\u{e9}".into()),
            Const::Str(vec![0xFF, 0xC3])
        ]
    );
}

/// spec §5 plus the assembler's extensions used by the printer: `regs`, `const`, `#N`, `$N`, `@N`,
/// `bits(0x...)`.
#[test]
fn extensions() {
    let p = ok("func main(i64) -> i64
    regs i64 10, cell 2
    const i64 5
    const i64 5
    const f64 bits(0x7FF8000000000001)
    ConstI64KW i1, #1
    ConstI64KW i1, 5
    ConstF64K  f0, bits(0x7FF8000000000001)
    ConstF64K  f0, -nan
    LookupI64KW i1, i0, #-1
    CallI64    i1, i0, $7
    Jump       @-3
end
");
    let f = &p.functions[0];
    assert_eq!(
        f.regs,
        RegCounts {
            i64: 10,
            f64: 1,
            cell: 2
        }
    );
    assert_eq!(f.consts.len(), 4);
    assert_eq!(f.code[0].c, 1);
    assert_eq!(f.code[1].c, 0);
    assert_eq!(f.code[2].c, 2);
    assert_eq!(f.code[3].c, 3);
    assert!(matches!(f.consts[3], Const::F64(v) if v.to_bits() == 0xFFF8_0000_0000_0000));
    assert_eq!(f.code[4].c, -1);
    assert_eq!(f.code[5].c, 7);
    assert_eq!(f.code[6].c, -3);
}

// ---------------------------------------------------------------------------------
// Malformed input: every error with its exact position.

/// spec §5: the register prefix must match the bank the opcode wants.
#[test]
fn wrong_register_bank() {
    assert_eq!(
        error(&in_main("    CmpLtI64Br  i0, f3, x\nx:")),
        "prog.vm3:2:5: error: CmpLtI64Br expects an i64 register, found f3"
    );
    assert_eq!(
        error(&in_main("    MovF64 f1, c2")),
        "prog.vm3:2:5: error: MovF64 expects an f64 register, found c2"
    );
    assert_eq!(
        error(&in_main("    MovI64 i1, 7")),
        "prog.vm3:2:5: error: MovI64 expects an i64 register, found 7"
    );
    assert_eq!(
        error(&in_main("    MovI64 i1, i")),
        "prog.vm3:2:5: error: MovI64 expects an i64 register, found i"
    );
    assert_eq!(
        error(&in_main("    MovI64 i65535, i0")),
        "prog.vm3:2:5: error: register i65535 is out of range (a bank holds at most 65535 registers)"
    );
    // i65534 is the last register.
    assert_eq!(
        ok(&in_main("    MovI64 i65534, i0")).functions[0].regs.i64,
        65535
    );
}

/// spec §5: call argument bases are registers: `i` for CallI64 and TailCallI64, `f`
/// for CallF64, any prefix for CallMixed and TailCallMixed.
#[test]
fn call_argument_base() {
    let callee = "func g(i64) -> i64\n    ReturnI64 i0\nend\n";
    assert_eq!(
        error(&format!("{}{callee}", in_main("    CallI64 i1, f0, g"))),
        "prog.vm3:2:5: error: CallI64 expects an i64 register, found f0"
    );
    assert_eq!(
        error(&format!("{}{callee}", in_main("    CallF64 f1, i0, g"))),
        "prog.vm3:2:5: error: CallF64 expects an f64 register, found i0"
    );
    assert_eq!(
        error(&format!("{}{callee}", in_main("    TailCallMixed 3, g"))),
        "prog.vm3:2:5: error: TailCallMixed expects the first argument register, found 3"
    );
    let p = ok(&format!(
        "{}{callee}",
        in_main("    CallMixed i1, c0, g\n    TailCallMixed f9, g")
    ));
    assert_eq!(p.functions[0].code[0].b, 0);
    assert_eq!(p.functions[0].code[1].b, 9);
    // Only the index counts: the i64 parameter comes from i9.
    assert_eq!(
        p.functions[0].regs,
        RegCounts {
            i64: 10,
            f64: 0,
            cell: 0
        }
    );
    assert_eq!(
        error(&format!("{}{callee}", in_main("    CallMixed x1, i0, g"))),
        "prog.vm3:2:5: error: CallMixed expects a destination register (iN, fN or cN), found x1"
    );
    let two = "func two(i64, i64) -> i64\n    ReturnI64 i0\nend\n";
    assert_eq!(
        error(&format!("{}{two}", in_main("    CallI64 i1, i65534, two"))),
        "prog.vm3:2:5: error: argument 1 of this call would be register i65535, past the largest register index 65534"
    );
}

/// spec §2, §5: FmaF64 is written with four registers, X and Y packed into c.
#[test]
fn fma_operands() {
    let p = ok("func main() -> f64\n    FmaF64 f3, f8, f255, f0\n    ReturnF64 f3\nend\n");
    assert_eq!(p.functions[0].code[0], inst(Opcode::FmaF64, 3, 8, 0x00FF));
    assert_eq!(p.functions[0].regs.f64, 256);
    assert_eq!(
        error("func main() -> f64\n    FmaF64 f3, f8, f3, f256\n    ReturnF64 f3\nend\n"),
        "prog.vm3:2:5: error: FmaF64 packs X and Y into one byte each, so f256 must be below f256"
    );
    assert_eq!(
        error("func main() -> f64\n    FmaF64 f3, f8, i3, f2\n    ReturnF64 f3\nend\n"),
        "prog.vm3:2:5: error: FmaF64 expects an f64 register, found i3"
    );
    assert_eq!(
        error("func main() -> f64\n    FmaF64 f3, f8, f3\n    ReturnF64 f3\nend\n"),
        "prog.vm3:2:5: error: FmaF64 expects 4 operands (fA, fB, fX, fY), found 3"
    );
}

/// spec §5: one instruction per line, the mnemonic exactly as in the tables.
#[test]
fn unknown_mnemonics() {
    assert_eq!(
        error(&in_main("    Frobnicate i1")),
        "prog.vm3:2:5: error: unknown mnemonic `Frobnicate`"
    );
    assert_eq!(
        error(&in_main("    addi64 i1, i1, i1")),
        "prog.vm3:2:5: error: unknown mnemonic `addi64` (did you mean `AddI64`?)"
    );
    assert_eq!(
        error(&in_main("    123")),
        "prog.vm3:2:5: error: expected an instruction, found `123`"
    );
    assert_eq!(
        error(&in_main("    table")),
        "prog.vm3:2:10: error: expected a table name, found ``"
    );
}

/// spec §5: operands in the order given, separated by commas.
#[test]
fn operand_counts_and_separators() {
    assert_eq!(
        error(&in_main("    AddI64 i1, i2")),
        "prog.vm3:2:5: error: AddI64 expects 3 operands (iA, iB, iC), found 2"
    );
    assert_eq!(
        error(&in_main("    AddI64 i1, i2, i3, i4")),
        "prog.vm3:2:5: error: AddI64 expects 3 operands (iA, iB, iC), found 4"
    );
    assert_eq!(
        error(&in_main("    Nop i1")),
        "prog.vm3:2:5: error: Nop expects 0 operands (), found 1"
    );
    assert_eq!(
        error(&in_main("    ReturnConstK")),
        "prog.vm3:2:5: error: ReturnConstK expects 1 operand (kC), found 0"
    );
    assert_eq!(
        error(&in_main("    AddI64 i1,, i3")),
        "prog.vm3:2:5: error: expected an operand"
    );
    assert_eq!(
        error(&in_main("    AddI64 i1, i2, i3,")),
        "prog.vm3:2:5: error: expected an operand"
    );
    assert_eq!(
        error(&in_main("    AddI64 i1, i2, i3 i4")),
        "prog.vm3:2:5: error: unexpected `i4`; expected `,` or the end of the line"
    );
    assert_eq!(
        error(&in_main("    AddI64 i1 i2, i3")),
        "prog.vm3:2:5: error: unexpected `i2`; expected `,` or the end of the line"
    );
}

/// spec §5: labels name branch targets; undefined and duplicate labels are errors, and
/// a target must fit the 16-bit field.
#[test]
fn label_errors() {
    assert_eq!(
        error(&in_main("    Jump nowhere")),
        "prog.vm3:2:5: error: undefined label `nowhere`"
    );
    assert_eq!(
        error(&in_main("x:\n    Nop\nx:   Nop\n    Jump x")),
        "prog.vm3:4:1: error: duplicate label `x` (first defined at line 2)"
    );
    assert_eq!(
        error(&in_main("    Jump 12")),
        "prog.vm3:2:5: error: Jump expects a label, found 12"
    );
    assert_eq!(
        error(&in_main("    Jump @40000")),
        "prog.vm3:2:5: error: branch target 40000 does not fit the 16-bit field"
    );
    let mut src = String::from("func main() -> i64\n    Jump far\n");
    src.push_str(&"    Nop\n".repeat(32767));
    src.push_str("far:\n    ReturnConstK 0\nend\n");
    assert_eq!(
        error(&src),
        "prog.vm3:2:5: error: label `far` is instruction 32768, which does not fit the 16-bit branch field"
    );
    // One fewer Nop fits.
    let src = src.replacen("    Nop\n", "", 1);
    assert_eq!(ok(&src).functions[0].code[0].c, 32767);
}

/// spec §5: callees by name; undefined and duplicate functions are errors, and a
/// function index must fit the 16-bit field.
#[test]
fn function_errors() {
    assert_eq!(
        error(&in_main("    CallI64 i1, i0, ghost")),
        "prog.vm3:2:5: error: undefined function `ghost`"
    );
    let dup = format!("{}\n{}", in_main("    Nop"), in_main("    Nop"));
    assert_eq!(
        error(&dup),
        "prog.vm3:6:6: error: duplicate function `main` (first defined at line 1)"
    );
    let mut src = in_main("    CallI64 i1, i0, last");
    for i in 0..32767 {
        src.push_str(&format!("func f{i}() -> i64\n    ReturnConstK 0\nend\n"));
    }
    src.push_str("func last(i64) -> i64\n    ReturnI64 i0\nend\n");
    assert_eq!(
        error(&src),
        "prog.vm3:2:5: error: function `last` has index 32768, which does not fit the 16-bit field"
    );
}

/// spec §5: tables are named in their function.
#[test]
fn table_errors() {
    assert_eq!(
        error(&in_main("    LookupI64KW i1, i0, t")),
        "prog.vm3:2:5: error: undefined table `t`"
    );
    assert_eq!(
        error(&in_main("    table t = [1]\n    table t = [2]")),
        "prog.vm3:3:11: error: duplicate table `t` (first defined at line 2)"
    );
    assert_eq!(
        error(&in_main("    table t = [1, x]")),
        "prog.vm3:2:19: error: expected an integer table entry, found `x`"
    );
    assert_eq!(
        error(&in_main("    table t = [1 2]")),
        "prog.vm3:2:18: error: expected `,` or `]`, found `2`"
    );
    assert_eq!(
        error(&in_main("    table t = [1, ]")),
        "prog.vm3:2:19: error: expected an integer table entry, found `]`"
    );
    assert_eq!(
        error(&in_main("    table t = [1")),
        "prog.vm3:2:17: error: expected `,` or `]`, found the end of the line"
    );
    assert_eq!(
        error(&in_main("    table t [1]")),
        "prog.vm3:2:13: error: expected `=` after the table name, found `[1]`"
    );
    assert_eq!(
        error(&in_main("    table t = [1] x")),
        "prog.vm3:2:19: error: unexpected `x` after the table"
    );
    assert_eq!(
        error(&in_main("    table t = [9223372036854775808]")),
        "prog.vm3:2:16: error: table entry 9223372036854775808 does not fit 64 bits"
    );
    // Tables are per function.
    let src = format!(
        "{}func g(i64) -> i64\n    LookupI64KW i0, i0, t\n    ReturnI64 i0\nend\n",
        in_main("    table t = [1]")
    );
    assert_eq!(error(&src), "prog.vm3:6:5: error: undefined table `t`");
}

/// spec §5: constant literals of the operand's kind, string escapes.
#[test]
fn constant_errors() {
    assert_eq!(
        error(&in_main("    ConstI64KW i1, 9223372036854775808")),
        "prog.vm3:2:5: error: integer constant 9223372036854775808 does not fit 64 bits"
    );
    assert_eq!(
        error(&in_main("    ConstI64KW i1, 2.5")),
        "prog.vm3:2:5: error: ConstI64KW expects an integer constant, found 2.5"
    );
    assert_eq!(
        error(&in_main("    ConstF64K f1, 0x10")),
        "prog.vm3:2:5: error: ConstF64K expects a float constant, found 0x10"
    );
    assert_eq!(
        error(&in_main("    ConstF64K f1, \"x\"")),
        "prog.vm3:2:5: error: ConstF64K expects a float constant, found \"x\""
    );
    assert_eq!(
        error(&in_main("    const str \"abc")),
        "prog.vm3:2:15: error: unterminated string literal"
    );
    assert_eq!(
        error(&in_main("    const str \"a\\qb\"")),
        "prog.vm3:2:17: error: unknown escape `\\q` (expected \\n, \\t, \\\\, \\\" or \\xNN)"
    );
    assert_eq!(
        error(&in_main("    const str \"\\x4\"")),
        "prog.vm3:2:16: error: `\\x` must be followed by two hex digits"
    );
    assert_eq!(
        error(&in_main("    const str abc")),
        "prog.vm3:2:15: error: const expects a string literal, found abc"
    );
    assert_eq!(
        error(&in_main("    const i32 1")),
        "prog.vm3:2:11: error: expected a constant kind (i64, f64 or str), found `i32`"
    );
    assert_eq!(
        error(&in_main("    const i64 1, 2")),
        "prog.vm3:2:18: error: `const` takes one literal"
    );
    assert_eq!(
        error(&in_main("    ConstI64KW i1, #40000")),
        "prog.vm3:2:5: error: constant index 40000 does not fit the 16-bit field"
    );
}

/// spec §5: `func NAME(BANK, ...) -> BANK` headers.
#[test]
fn header_errors() {
    let body = "\n    ReturnConstK 0\nend\n";
    assert_eq!(
        error(&format!("func main(i32) -> i64{body}")),
        "prog.vm3:1:11: error: expected a parameter bank (i64, f64 or cell), found `i32)`"
    );
    assert_eq!(
        error(&format!("func main(i64) i64{body}")),
        "prog.vm3:1:16: error: expected `->` and the result bank, found `i64`"
    );
    assert_eq!(
        error(&format!("func main(i64){body}")),
        "prog.vm3:1:15: error: expected `->` and the result bank, found the end of the line"
    );
    assert_eq!(
        error(&format!("func (i64) -> i64{body}")),
        "prog.vm3:1:6: error: expected a function name after `func`"
    );
    assert_eq!(
        error(&format!("func main i64 -> i64{body}")),
        "prog.vm3:1:11: error: expected `(` after the function name, found `i64`"
    );
    assert_eq!(
        error(&format!("func main(i64 f64) -> i64{body}")),
        "prog.vm3:1:15: error: expected `,` or `)`, found `f64)`"
    );
    assert_eq!(
        error(&format!("func main() -> int{body}")),
        "prog.vm3:1:16: error: expected a result bank (i64, f64 or cell), found `int`"
    );
    assert_eq!(
        error(&format!("func main() -> i64 extra{body}")),
        "prog.vm3:1:20: error: unexpected `extra` after the function header"
    );
}

/// spec §5: a file is a sequence of `func` ... `end` blocks.
#[test]
fn structure_errors() {
    assert_eq!(
        error("    Nop\n"),
        "prog.vm3:1:5: error: instruction outside a function"
    );
    assert_eq!(
        error("x:\n"),
        "prog.vm3:1:1: error: label outside a function"
    );
    assert_eq!(
        error("end\n"),
        "prog.vm3:1:1: error: `end` outside a function"
    );
    assert_eq!(
        error("  table t = [1]\n"),
        "prog.vm3:1:3: error: `table` outside a function"
    );
    assert_eq!(
        error("func main() -> i64\n    ReturnConstK 0\n"),
        "prog.vm3:1:1: error: function `main` has no `end`"
    );
    assert_eq!(
        errors("func main() -> i64\n    ReturnConstK 0\nfunc g() -> i64\n    ReturnConstK 0\n"),
        vec![
            "prog.vm3:1:1: error: function `main` has no `end`",
            "prog.vm3:3:1: error: function `g` has no `end`",
        ]
    );
    assert_eq!(
        error("func main() -> i64\n    ReturnConstK 0\nend extra\n"),
        "prog.vm3:3:5: error: unexpected `extra` after `end`"
    );
    assert_eq!(
        error(&in_main("    regs i64 70000")),
        "prog.vm3:2:14: error: register count 70000 is out of range (0..65535)"
    );
}

/// spec §5 ("prints every error found"): errors are collected (assembly goes on after
/// one) and reported in source order.
#[test]
fn all_errors_are_reported_in_order() {
    let src = "func main(i64) -> i64
    CallI64 i1, i0, nothere
    AddI64 i1, f2, 99999
    Jump nolabel
    Bogus
end
    Nop
func main() -> i64
    ReturnConstK 70000
end
";
    assert_eq!(
        errors(src),
        vec![
            "prog.vm3:2:5: error: undefined function `nothere`",
            "prog.vm3:3:5: error: AddI64 expects an i64 register, found f2",
            "prog.vm3:3:5: error: AddI64 expects an i64 register, found 99999",
            "prog.vm3:4:5: error: undefined label `nolabel`",
            "prog.vm3:5:5: error: unknown mnemonic `Bogus`",
            "prog.vm3:7:5: error: instruction outside a function",
            "prog.vm3:8:6: error: duplicate function `main` (first defined at line 1)",
            "prog.vm3:9:5: error: immediate 70000 does not fit 16 signed bits (-32768..32767)",
        ]
    );
}

/// spec §5: AsmError's Display is `file:line:col: error: message`.
#[test]
fn error_display() {
    let e = AsmError {
        file: "a.vm3".into(),
        line: 3,
        col: 7,
        message: "boom".into(),
    };
    assert_eq!(e.to_string(), "a.vm3:3:7: error: boom");
    let errs = assemble("x", "dir/b.vm3").unwrap_err();
    assert_eq!(
        errs[0],
        AsmError {
            file: "dir/b.vm3".into(),
            line: 1,
            col: 1,
            message: "instruction outside a function".into()
        }
    );
    let _: &dyn std::error::Error = &errs[0];
}

// ---------------------------------------------------------------------------------
// Printing.

/// spec §5 text form, printed by `format_inst`: labels by name or `L<index>`, callees by name, constants as literals,
/// tables by name.
#[test]
fn format_instructions() {
    let p = ok("func main(i64) -> i64
    table squares = [0, 1, 4]
top:
    LookupI64KW i1, i0, squares
    ConstF64K   f0, -0.0
    ConstI64KW  i2, 123456789012
    CallMixed   f1, i0, helper
    FmaF64      f3, f8, f3, f0
    CmpLtI64KBr i0, -5, top
    ReturnI64   i1
end
func helper(i64) -> f64
    CmpEqI64Br  i0, i0, L1
L1: Nop
    Deopt
    ReturnConstK 7
end
");
    let main = &p.functions[0];
    let lines: Vec<String> = (0..main.code.len())
        .map(|i| format_inst(&p, main, i))
        .collect();
    assert_eq!(
        lines,
        vec![
            "LookupI64KW i1, i0, squares",
            "ConstF64K   f0, -0.0",
            "ConstI64KW  i2, 123456789012",
            "CallMixed   f1, i0, helper",
            "FmaF64      f3, f8, f3, f0",
            "CmpLtI64KBr i0, -5, top",
            "ReturnI64   i1",
        ]
    );
    let helper = &p.functions[1];
    assert_eq!(format_inst(&p, helper, 0), "CmpEqI64Br  i0, i0, L1");
    assert_eq!(format_inst(&p, helper, 1), "Nop");
    assert_eq!(format_inst(&p, helper, 3), "ReturnConstK 7");
    // `L1` at instruction 1 is the default name, so it is not recorded.
    assert!(helper.labels.is_empty());

    // Raw programs: out-of-range values print raw; unknown opcodes are marked.
    let mut f = Function::new("raw", vec![], Bank::I64);
    f.code = vec![
        inst(Opcode::Jump, 0, 0, 9),
        inst(Opcode::ConstF64K, 0, 0, 3),
        Inst::new(250, 1, 2, 3),
    ];
    let p = Program { functions: vec![f] };
    assert_eq!(format_inst(&p, &p.functions[0], 0), "Jump        @9");
    assert_eq!(format_inst(&p, &p.functions[0], 1), "ConstF64K   f0, #3");
    assert_eq!(
        format_inst(&p, &p.functions[0], 2),
        "<unknown opcode 250 (flags 0, a 1, b 2, c 3)>"
    );
}

fn round_trip(p: &Program) {
    let text = to_text(p);
    let back = match assemble(&text, "round-trip.vm3") {
        Ok(b) => b,
        Err(e) => panic!(
            "{}\n{text}",
            e.iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        ),
    };
    assert_eq!(
        bits(&back),
        bits(p),
        "round trip changed the program; text:\n{text}"
    );
    // Printing is stable.
    assert_eq!(to_text(&back), text);
}

/// spec §5: every kernel the opcode table can assemble prints back to itself.
#[test]
fn kernels_round_trip() {
    for (name, src) in plain_kernels() {
        let p = assemble(&src, &name).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        round_trip(&p);
    }
}

/// spec §5 round trip of what the assembler infers differently: larger register counts,
/// pools with unused, repeated or reordered entries, NaN payloads, strings with every
/// kind of byte, empty functions, labels at the end.
#[test]
fn unusual_programs_round_trip() {
    let mut f = Function::new("odd", vec![Bank::F64, Bank::Cell], Bank::F64);
    f.regs = RegCounts {
        i64: 5,
        f64: 300,
        cell: 2,
    };
    f.consts = vec![
        Const::F64(f64::from_bits(0x7FF0_0000_0000_0001)),
        Const::F64(f64::from_bits(0xFFF8_0000_0000_0000)),
        Const::I64(7),
        Const::I64(7),
        Const::Str("q\"\\\n\t\u{0}\u{7f}é;".into()),
        Const::F64(-0.0),
        Const::Str(vec![0x80, 0xFF, b'"']),
    ];
    f.code = vec![
        inst(Opcode::ConstF64K, 0, 0, 0),
        inst(Opcode::ConstI64KW, 1, 0, 3),
        inst(Opcode::ConstF64K, 2, 0, 1),
        inst(Opcode::ConstF64K, 2, 0, 5),
        inst(Opcode::CmpLtF64Br, 0, 1, 5),
        inst(Opcode::ReturnF64, 0, 0, 0),
    ];
    f.labels = vec![(5, "out".into()), (6, "past_end".into())];
    let empty = Function::new("empty", vec![], Bank::I64);
    round_trip(&Program {
        functions: vec![f, empty],
    });
}

/// spec §5: programs from the builder (no labels or table names recorded) round-trip.
#[test]
fn builder_programs_round_trip() {
    let mut pb = ProgramBuilder::new();
    let main = pb.declare("main", &[Bank::I64], Bank::I64);
    let g = pb.declare("g", &[Bank::I64, Bank::F64], Bank::F64);
    let mut f = pb.define(main);
    let t = f.table(vec![3, 1, 4]);
    let l = f.new_label();
    f.bind(l)
        .op_rrr(Opcode::LookupI64KW, 1, 0, t)
        .const_i64(2, 1 << 40)
        .const_f64(1, 0.5)
        .call_mixed(Bank::F64, 0, 1, g)
        .branch_k(Opcode::CmpLtI64KBr, 1, 3, l)
        .op_r(Opcode::ReturnI64, 1);
    let mut f = pb.define(g);
    f.fma(1, 1, 1, 1).op_r(Opcode::ReturnF64, 1);
    let p = pb.finish().unwrap();
    p.clone().verify().unwrap();
    round_trip(&p);
}

/// spec §2, §5: random valid programs, generated from the opcode table, print and assemble back to
/// the same program.
#[test]
fn random_programs_round_trip() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..400 {
        let p = random_program(&mut rng);
        if let Err(e) = vm3::verify::verify(&p) {
            panic!("generated program does not verify: {e:?}\n{}", to_text(&p));
        }
        round_trip(&p);
    }
}

/// spec §4 ("bytecode is untrusted input, from a file"): the assembler never panics on
/// damaged source, and whatever still assembles and verifies prints back to itself.
#[test]
fn mutated_kernels_never_panic() {
    let kernels = plain_kernels();
    let alphabet: Vec<char> = " \t,;:\"\\#$@()[]=-0123456789xifc_LabzZ\u{e9}\n"
        .chars()
        .collect();
    let mut rng = Rng(42);
    let mut assembled = 0;
    for round in 0..3000 {
        let (_, src) = &kernels[round % kernels.len()];
        let mut chars: Vec<char> = src.chars().collect();
        for _ in 0..1 + rng.below(3) {
            let at = rng.below(chars.len() as u64 + 1) as usize;
            match rng.below(3) {
                0 if at < chars.len() => {
                    chars.remove(at);
                }
                1 if at < chars.len() => chars[at] = rng.pick(&alphabet),
                _ => chars.insert(at, rng.pick(&alphabet)),
            }
        }
        let src: String = chars.into_iter().collect();
        match assemble(&src, "m.vm3") {
            Ok(p) => {
                assembled += 1;
                let _ = to_text(&p);
                if vm3::verify::verify(&p).is_ok() {
                    round_trip(&p);
                }
            }
            Err(errors) => {
                assert!(!errors.is_empty());
                for e in errors {
                    assert!(
                        e.line >= 1 && e.col >= 1 && e.line <= src.split('\n').count(),
                        "{e}"
                    );
                }
            }
        }
    }
    assert!(assembled > 100, "only {assembled} mutants assembled");
}

/// Many labels on one line (issue 10, item 3): the column of each label was counted from
/// the start of the line, so a line of 1.2 million labels (10 MB) took minutes. Now the
/// line assembles; the guard only catches a return of the quadratic cost (minutes), it
/// measures no speed. A duplicate at the end still reports its exact column.
#[test]
fn a_line_of_a_million_labels_assembles() {
    let labels: usize = 1_200_000;
    let mut line = String::new();
    for i in 0..labels {
        line.push_str(&format!("l{i}: "));
    }
    let duplicate_col = line.chars().count() + 1;
    let src = format!("func main() -> i64\n{line}l7: ReturnConstK 1\nend\n");
    assert!(src.len() > 10_000_000);
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(
            assemble(&src, "labels.vm3")
                .map_err(|e| e.iter().map(|e| e.to_string()).collect::<Vec<_>>()),
        );
    });
    let errors = result
        .recv_timeout(std::time::Duration::from_secs(120))
        .expect("a 10 MB line of labels did not assemble within two minutes");
    assert_eq!(
        errors.unwrap_err(),
        vec![format!(
            "labels.vm3:2:{duplicate_col}: error: duplicate label `l7` (first defined at line 2)"
        )]
    );
}
