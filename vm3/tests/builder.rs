//! The program builder: what it encodes (spec §2) and what `finish` rejects.

use vm3::builder::{BuildError, ProgramBuilder};
use vm3::{Bank, Const, Inst, Opcode, RegCounts};

fn inst(op: Opcode, a: u16, b: u16, c: i16) -> Inst {
    Inst::new(op as u8, a, b, c)
}

/// spec §2: operands land in the fields the opcode table gives, labels become
/// instruction indexes, forward calls work, counts are inferred (spec §5 rules).
#[test]
fn encodes_instructions() {
    let mut pb = ProgramBuilder::new();
    let main = pb.declare("main", &[Bank::I64], Bank::I64);
    let helper = pb.declare("helper", &[Bank::I64, Bank::F64], Bank::F64);
    let mut f = pb.define(main);
    let back = f.new_label();
    let out = f.new_label();
    let t = f.table(vec![10, 20]);
    assert_eq!(t, 0);
    f.bind(back)
        .branch_k(Opcode::CmpGtI64KBr, 0, -3, out) // 0
        .op_rrr(Opcode::LookupI64KW, 1, 0, t) // 1
        .const_i64(2, 7) // 2
        .const_i64(3, i64::MIN) // 3
        .const_i64(4, i64::MIN) // 4: the same pool entry
        .const_f64(1, -0.0) // 5
        .call_mixed(Bank::F64, 0, 3, helper) // 6: i3, f4
        .fma(0, 1, 2, 3) // 7
        .jump(back) // 8
        .bind(out)
        .op_k(Opcode::ReturnConstK, -1); // 9
    let mut g = pb.define(helper);
    g.op_r(Opcode::ReturnF64, 1).set_reg_count(Bank::Cell, 9);
    let p = pb.finish().unwrap();
    let f = &p.functions[0];
    assert_eq!(
        f.code,
        vec![
            inst(Opcode::CmpGtI64KBr, 0, (-3i16) as u16, 9),
            inst(Opcode::LookupI64KW, 1, 0, 0),
            inst(Opcode::ConstI64K, 2, 0, 7),
            inst(Opcode::ConstI64KW, 3, 0, 0),
            inst(Opcode::ConstI64KW, 4, 0, 0),
            inst(Opcode::ConstF64K, 1, 0, 1),
            Inst {
                code: Opcode::CallMixed as u8,
                flags: Bank::F64 as u8,
                a: 0,
                b: 3,
                c: 1
            },
            inst(Opcode::FmaF64, 0, 1, 0x0302),
            inst(Opcode::Jump, 0, 0, 0),
            inst(Opcode::ReturnConstK, 0, 0, -1),
        ]
    );
    assert_eq!(f.consts.len(), 2);
    assert_eq!(f.consts[0], Const::I64(i64::MIN));
    assert!(matches!(f.consts[1], Const::F64(v) if v.to_bits() == (-0.0f64).to_bits()));
    assert_eq!(f.tables, vec![vec![10, 20]]);
    assert_eq!(
        f.regs,
        RegCounts {
            i64: 5,
            f64: 5,
            cell: 0
        }
    );
    assert_eq!(
        p.functions[1].regs,
        RegCounts {
            i64: 1,
            f64: 2,
            cell: 9
        }
    );
    p.verify().unwrap();
}

/// spec §2 (16-bit fields) and §4 (no unbound targets): what `finish` refuses: labels used but never bound (or bound twice), functions
/// declared but not defined (or defined twice).
#[test]
fn finish_errors() {
    let mut pb = ProgramBuilder::new();
    let main = pb.declare("main", &[], Bank::I64);
    let mut f = pb.define(main);
    let l = f.new_label();
    f.jump(l);
    assert_eq!(
        pb.finish().unwrap_err(),
        BuildError::UnboundLabel {
            function: "main".into(),
            label: 0
        }
    );

    let mut pb = ProgramBuilder::new();
    let main = pb.declare("main", &[], Bank::I64);
    let mut f = pb.define(main);
    let l = f.new_label();
    f.bind(l).bind(l).op_k(Opcode::ReturnConstK, 0);
    assert_eq!(
        pb.finish().unwrap_err(),
        BuildError::LabelBoundTwice {
            function: "main".into(),
            label: 0
        }
    );

    let mut pb = ProgramBuilder::new();
    pb.declare("ghost", &[], Bank::I64);
    let err = pb.finish().unwrap_err();
    assert_eq!(
        err,
        BuildError::Undefined {
            function: "ghost".into()
        }
    );
    assert_eq!(
        err.to_string(),
        "function ghost is declared but never defined"
    );

    let mut pb = ProgramBuilder::new();
    let main = pb.declare("main", &[], Bank::I64);
    pb.define(main).op_k(Opcode::ReturnConstK, 0);
    pb.define(main).op_k(Opcode::ReturnConstK, 0);
    assert_eq!(
        pb.finish().unwrap_err(),
        BuildError::DefinedTwice {
            function: "main".into()
        }
    );

    // A branch target past 32767 does not fit the 16-bit field.
    let mut pb = ProgramBuilder::new();
    let main = pb.declare("main", &[], Bank::I64);
    let mut f = pb.define(main);
    let l = f.new_label();
    f.jump(l);
    for _ in 0..32767 {
        f.op(Opcode::Nop);
    }
    f.bind(l).op_k(Opcode::ReturnConstK, 0);
    assert_eq!(
        pb.finish().unwrap_err(),
        BuildError::TooLarge {
            function: "main".into(),
            what: "branch target 32768".into()
        }
    );
}

/// spec §2: the `op_*` helpers fill operands in table order and refuse the wrong number.
#[test]
#[should_panic(expected = "AddI64 takes 3 operands, 2 given")]
fn wrong_arity_panics() {
    let mut pb = ProgramBuilder::new();
    let main = pb.declare("main", &[], Bank::I64);
    pb.define(main).op_rr(Opcode::AddI64, 0, 0);
}
