//! The verifier (spec §4): one test per rule, each with a program that breaks it.

mod common;

use common::{plain_kernels, random_program, Rng};
use stencils::OperandKind;
use vm3::asm::assemble;
use vm3::verify::{verify, VerifyError};
use vm3::{Bank, Function, Inst, Opcode, Program, RegCounts};

/// Assembles without verifying.
fn asm(src: &str) -> Program {
    assemble(src, "test.vm3").unwrap_or_else(|e| panic!("{e:?}"))
}

/// Every error as (function, instruction, reason).
fn errs(p: &Program) -> Vec<(String, Option<u32>, String)> {
    match verify(p) {
        Ok(()) => panic!("expected verify errors"),
        Err(e) => e
            .into_iter()
            .map(|e| (e.function, e.index, e.reason))
            .collect(),
    }
}

/// The single error of `p`.
fn err(p: &Program) -> (String, Option<u32>, String) {
    let e = errs(p);
    assert_eq!(e.len(), 1, "expected one error, got {e:#?}");
    e.into_iter().next().unwrap()
}

fn at(f: &str, i: u32, reason: &str) -> (String, Option<u32>, String) {
    (f.to_string(), Some(i), reason.to_string())
}

fn whole(f: &str, reason: &str) -> (String, Option<u32>, String) {
    (f.to_string(), None, reason.to_string())
}

fn inst(op: Opcode, a: u16, b: u16, c: i16) -> Inst {
    Inst::new(op as u8, a, b, c)
}

fn raw_function(
    name: &str,
    params: &[Bank],
    result: Bank,
    regs: RegCounts,
    code: Vec<Inst>,
) -> Function {
    let mut f = Function::new(name, params.to_vec(), result);
    f.regs = regs;
    f.code = code;
    f
}

const I2: RegCounts = RegCounts {
    i64: 2,
    f64: 0,
    cell: 0,
};

/// spec §4: an unknown opcode.
#[test]
fn unknown_opcode() {
    let code = vec![
        Inst::new(stencils::OPCODE_COUNT as u8, 0, 0, 0),
        Inst::new(255, 0, 0, 0),
        inst(Opcode::ReturnConstK, 0, 0, 0),
    ];
    let p = Program {
        functions: vec![raw_function("main", &[], Bank::I64, I2, code)],
    };
    assert_eq!(
        errs(&p),
        vec![
            at(
                "main",
                0,
                &format!("unknown opcode {}", stencils::OPCODE_COUNT)
            ),
            at("main", 1, "unknown opcode 255"),
        ]
    );
}

/// spec §4: a register index at or past the function's count for its bank.
#[test]
fn register_out_of_range() {
    let p = asm(
        "func main(i64) -> i64\n    regs i64 2\n    AddI64 i2, i0, i1\n    ReturnI64 i1\nend\n",
    );
    assert_eq!(
        err(&p),
        at(
            "main",
            0,
            "register i2 is out of range (the function has 2 i64 registers)"
        )
    );
    let p =
        asm("func main(f64) -> f64\n    regs f64 1\n    SqrtF64 f0, f1\n    ReturnF64 f0\nend\n");
    assert_eq!(
        err(&p),
        at(
            "main",
            0,
            "register f1 is out of range (the function has 1 f64 register)"
        )
    );
    // Every register operand is checked, in operand order.
    let p = asm(
        "func main() -> f64\n    regs f64 0, i64 0\n    I64ToF64 f0, i0\n    ReturnF64 f0\nend\n",
    );
    assert_eq!(
        errs(&p),
        vec![
            at(
                "main",
                0,
                "register f0 is out of range (the function has 0 f64 registers)"
            ),
            at(
                "main",
                0,
                "register i0 is out of range (the function has 0 i64 registers)"
            ),
            at(
                "main",
                1,
                "register f0 is out of range (the function has 0 f64 registers)"
            ),
        ]
    );
}

/// spec §4: CallMixed's destination register, in the bank its flags name.
#[test]
fn destination_register_out_of_range() {
    let p = asm("func main() -> i64
    regs f64 5
    CallMixed f5, i0, g
    ReturnConstK 0
end
func g() -> f64
    ConstF64K f0, 1.5
    ReturnF64 f0
end
");
    assert_eq!(
        err(&p),
        at(
            "main",
            0,
            "register f5 is out of range (the function has 5 f64 registers)"
        )
    );
}

/// spec §4: both registers packed in FmaF64's c are registers of the function.
#[test]
fn fma_pair_out_of_range() {
    let p = asm("func main() -> f64\n    regs f64 4\n    FmaF64 f0, f1, f200, f3\n    FmaF64 f0, f1, f2, f4\n    ReturnF64 f0\nend\n");
    assert_eq!(
        errs(&p),
        vec![
            at(
                "main",
                0,
                "register f200 (FmaF64's X) is out of range (the function has 4 f64 registers)"
            ),
            at(
                "main",
                1,
                "register f4 (FmaF64's Y) is out of range (the function has 4 f64 registers)"
            ),
        ]
    );
}

/// spec §4: "FmaF64 register indexes of 256 or more". X and Y are bytes of c, so the
/// encoding cannot name f256 (the assembler rejects it, see tests/asm.rs); every value
/// of c is accepted with 256 f64 registers, and the largest (Y = f255) is caught with
/// 255.
#[test]
fn fma_pair_is_bytes() {
    let mut f = raw_function(
        "main",
        &[],
        Bank::F64,
        RegCounts {
            i64: 0,
            f64: 256,
            cell: 0,
        },
        vec![],
    );
    f.code = (0..=u16::MAX)
        .map(|c| inst(Opcode::FmaF64, 0, 0, c as i16))
        .collect();
    f.code.push(inst(Opcode::ReturnF64, 0, 0, 0));
    let mut p = Program { functions: vec![f] };
    // 65,537 instructions do not fit a branch field, but nothing branches here.
    verify(&p).unwrap();
    p.functions[0].regs.f64 = 255;
    p.functions[0].code = vec![
        inst(Opcode::FmaF64, 0, 0, -1),
        inst(Opcode::ReturnF64, 0, 0, 0),
    ];
    assert_eq!(
        errs(&p),
        vec![
            at(
                "main",
                0,
                "register f255 (FmaF64's X) is out of range (the function has 255 f64 registers)"
            ),
            at(
                "main",
                0,
                "register f255 (FmaF64's Y) is out of range (the function has 255 f64 registers)"
            ),
        ]
    );
}

/// spec §2, §4: the callee's parameter k comes from register B + k of its bank, which
/// must exist; B + k may not wrap around 16 bits.
#[test]
fn call_argument_registers_out_of_range() {
    let p = asm("func main() -> i64
    regs i64 4, f64 3
    CallMixed i1, i3, g    ; g(i64, f64): i3 and f4
    ReturnI64 i1
end
func g(i64, f64) -> i64
    ReturnI64 i0
end
");
    assert_eq!(
        err(&p),
        at("main", 0, "argument 1 of the call to `g` is register f4, which is out of range (the function has 3 f64 registers)")
    );
    let mut p = asm("func main() -> i64
    regs i64 65535
    CallI64 i1, i0, g
    ReturnI64 i1
end
func g(i64, i64) -> i64
    ReturnI64 i0
end
");
    p.functions[0].code[0].b = u16::MAX;
    assert_eq!(
        errs(&p),
        vec![
            at("main", 0, "argument 0 of the call to `g` is register i65535, which is out of range (the function has 65535 i64 registers)"),
            at("main", 0, "argument 1 of the call to `g` would be register i65536, past the largest register index 65534"),
        ]
    );
}

/// A function's parameters arrive in its registers (spec §2), so the counts must hold
/// them.
#[test]
fn parameters_need_registers() {
    let p = asm("func main(i64, f64, i64) -> i64\n    regs i64 2, f64 0\n    ReturnI64 i0\nend\n");
    assert_eq!(
        errs(&p),
        vec![
            whole(
                "main",
                "parameter 1 (f64) arrives in register f1, but the function has 0 f64 registers"
            ),
            whole(
                "main",
                "parameter 2 (i64) arrives in register i2, but the function has 2 i64 registers"
            ),
        ]
    );
}

/// spec §4: a branch target outside the function (negative, or at or past its end).
#[test]
fn branch_target_outside() {
    let p = asm(
        "func main(i64) -> i64\n    CmpEqI64Br i0, i0, @3\n    Jump @-1\n    ReturnI64 i0\nend\n",
    );
    assert_eq!(
        errs(&p),
        vec![
            at(
                "main",
                0,
                "branch target 3 is outside the function (3 instructions)"
            ),
            at(
                "main",
                1,
                "branch target -1 is outside the function (3 instructions)"
            ),
        ]
    );
    // The last instruction is a valid target.
    let p = asm(
        "func main(i64) -> i64\n    CmpEqI64Br i0, i0, @2\n    Jump @0\n    ReturnI64 i0\nend\n",
    );
    verify(&p).unwrap();
}

/// spec §4: a constant index out of range (negative included).
#[test]
fn constant_index_out_of_range() {
    let p = asm("func main() -> i64\n    ConstI64KW i0, 5\n    ConstI64KW i0, #1\n    ConstF64K f0, #-1\n    ReturnI64 i0\nend\n");
    assert_eq!(
        errs(&p),
        vec![
            at(
                "main",
                1,
                "constant #1 is out of range (the function has 1 constant)"
            ),
            at(
                "main",
                2,
                "constant #-1 is out of range (the function has 1 constant)"
            ),
        ]
    );
}

/// spec §4: a table index out of range (negative included).
#[test]
fn table_index_out_of_range() {
    let p = asm("func main(i64) -> i64
    table t = [1, 2]
    LookupI64KW i1, i0, t
    LookupI64KW i1, i0, #1
    LookupI64KW i1, i0, #-2
    ReturnI64 i1
end
");
    assert_eq!(
        errs(&p),
        vec![
            at(
                "main",
                1,
                "table #1 is out of range (the function has 1 table)"
            ),
            at(
                "main",
                2,
                "table #-2 is out of range (the function has 1 table)"
            ),
        ]
    );
}

/// spec §4: a function index out of range (negative included).
#[test]
fn function_index_out_of_range() {
    let p = asm("func main(i64) -> i64\n    CallI64 i1, i0, $1\n    TailCallI64 i0, $-1\nend\n");
    assert_eq!(
        errs(&p),
        vec![
            at(
                "main",
                0,
                "function index 1 is out of range (the program has 1 function)"
            ),
            at(
                "main",
                1,
                "function index -1 is out of range (the program has 1 function)"
            ),
        ]
    );
}

/// spec §4: a constant of the wrong kind.
#[test]
fn constant_of_wrong_kind() {
    let p = asm(r#"func main() -> i64
    const f64 2.5
    const i64 7
    const str "s"
    ConstI64KW i0, #0
    ConstF64K f0, #1
    ConstF64K f0, #2
    ConstI64KW i0, #1
    ReturnI64 i0
end
"#);
    assert_eq!(
        errs(&p),
        vec![
            at(
                "main",
                0,
                "ConstI64KW expects an i64 constant, but constant #0 is an f64"
            ),
            at(
                "main",
                1,
                "ConstF64K expects an f64 constant, but constant #1 is an i64"
            ),
            at(
                "main",
                2,
                "ConstF64K expects an f64 constant, but constant #2 is a string"
            ),
        ]
    );
}

/// Callees of every shape for the call tests: NAME = params_result.
const CALLEES: &str = "
func if_i(i64, f64) -> i64
    ReturnI64 i0
end
func i_f(i64) -> f64
    I64ToF64 f0, i0
    ReturnF64 f0
end
func f_i(f64) -> i64
    ReturnConstK 0
end
";

/// spec §2, §4: a call whose callee's parameters do not fit the opcode (CallI64 and
/// TailCallI64 pass i64 only, CallF64 f64 only; the Mixed calls anything).
#[test]
fn call_parameters_do_not_fit() {
    let p = asm(&format!(
        "func main(i64) -> i64
    CallI64 i1, i0, if_i
    CallF64 f1, f0, i_f
    TailCallI64 i0, f_i
end
{CALLEES}"
    ));
    assert_eq!(
        errs(&p),
        vec![
            at(
                "main",
                0,
                "CallI64 passes only i64 arguments, but `if_i` is (i64, f64) -> i64"
            ),
            at(
                "main",
                1,
                "CallF64 passes only f64 arguments, but `i_f` is (i64) -> f64"
            ),
            at(
                "main",
                2,
                "TailCallI64 passes only i64 arguments, but `f_i` is (f64) -> i64"
            ),
        ]
    );
    let p = asm(&format!(
        "func main(i64) -> i64
    CallMixed i1, i0, if_i
    CallMixed f1, i0, i_f
    TailCallMixed f0, f_i
end
{CALLEES}"
    ));
    verify(&p).unwrap();
}

/// spec §2, §4: a call whose callee's result is not the destination's bank.
#[test]
fn call_result_does_not_fit() {
    let p = asm(&format!(
        "func main(i64) -> i64
    CallI64 i1, i0, f_i
    CallMixed i1, i0, i_f
    CallMixed f2, f0, f_i
    CallF64 f1, f0, f_i
    ReturnI64 i0
end
{CALLEES}
func i_i(i64) -> i64
    ReturnI64 i0
end
"
    ));
    let mut e = errs(&p);
    // CallI64 to f_i: the parameter does not fit either.
    assert_eq!(
        e.remove(0),
        at(
            "main",
            0,
            "CallI64 passes only i64 arguments, but `f_i` is (f64) -> i64"
        )
    );
    assert_eq!(
        e,
        vec![
            at(
                "main",
                1,
                "`i_f` returns f64, but CallMixed's destination i1 is an i64 register"
            ),
            at(
                "main",
                2,
                "`f_i` returns i64, but CallMixed's destination f2 is an f64 register"
            ),
            at(
                "main",
                3,
                "`f_i` returns i64, but CallF64's destination f1 is an f64 register"
            ),
        ]
    );
    // CallI64 to a function returning f64.
    let p = asm("func main(i64) -> i64\n    CallI64 i1, i0, i_f_alias\n    ReturnI64 i1\nend\nfunc i_f_alias(i64) -> f64\n    I64ToF64 f0, i0\n    ReturnF64 f0\nend\n");
    assert_eq!(
        err(&p),
        at(
            "main",
            0,
            "`i_f_alias` returns f64, but CallI64's destination i1 is an i64 register"
        )
    );
}

/// spec §2, §4: a tail call's callee must return the calling function's result bank.
#[test]
fn tail_call_result_does_not_fit() {
    let p = asm(&format!(
        "func main(i64) -> i64
    CmpEqI64KBr i0, 0, other
    TailCallMixed i0, i_f
other:
    TailCallMixed f0, f_i
end
func g(f64) -> f64
    TailCallMixed f0, f_i
end
{CALLEES}"
    ));
    assert_eq!(
        errs(&p),
        vec![
            at(
                "main",
                1,
                "tail call to `i_f`, which returns f64, from a function that returns i64"
            ),
            at(
                "g",
                0,
                "tail call to `f_i`, which returns i64, from a function that returns f64"
            ),
        ]
    );
}

/// spec §4: a return whose bank is not the function's result bank.
#[test]
fn return_bank_mismatch() {
    let p = asm("func main(i64) -> i64
    CmpEqI64KBr i0, 0, other
    ReturnF64 f0
other:
    ReturnI64 i0
end
func g() -> f64
    ReturnConstK 1
end
");
    assert_eq!(
        errs(&p),
        vec![
            at(
                "main",
                1,
                "ReturnF64 returns f64, but the function returns i64"
            ),
            at(
                "g",
                0,
                "ReturnConstK returns i64, but the function returns f64"
            ),
        ]
    );
}

/// spec §4: a function whose last instruction can fall off its end (empty, or the last
/// instruction is not terminal: arithmetic, a conditional branch, a call that returns).
#[test]
fn falls_off_the_end() {
    let p = asm("func empty() -> i64
end
func arith(i64) -> i64
    AddI64 i0, i0, i0
end
func cond(i64) -> i64
    CmpEqI64Br i0, i0, cond_
cond_:
    CmpEqI64Br i0, i0, cond_
end
func call(i64) -> i64
    CallI64 i0, i0, call
end
func deopt() -> i64
    Deopt
end
");
    assert_eq!(
        errs(&p),
        vec![
            whole(
                "empty",
                "the function is empty: execution falls off its end"
            ),
            at(
                "arith",
                0,
                "the last instruction (AddI64) can fall off the end of the function"
            ),
            at(
                "cond",
                1,
                "the last instruction (CmpEqI64Br) can fall off the end of the function"
            ),
            at(
                "call",
                0,
                "the last instruction (CallI64) can fall off the end of the function"
            ),
            at(
                "deopt",
                0,
                "the last instruction (Deopt) can fall off the end of the function"
            ),
        ]
    );
    // Terminal endings: every return, jumps, tail calls.
    let p = asm("func a(i64) -> i64\n    Jump a_\na_:\n    TailCallI64 i0, b\nend\nfunc b(i64) -> i64\n    ReturnConstK 0\nend\n");
    verify(&p).unwrap();
}

/// spec §2: flags is 0 except where an opcode has a destination bank in it, and there
/// it must be a bank.
#[test]
fn flags() {
    let mut p = asm("func main(i64) -> i64
    AddI64 i0, i0, i0
    CallMixed i1, i0, main
    ReturnI64 i0
end
");
    verify(&p).unwrap();
    p.functions[0].code[0].flags = 1;
    p.functions[0].code[1].flags = 3;
    p.functions[0].code[2].flags = 255;
    assert_eq!(
        errs(&p),
        vec![
            at("main", 0, "flags must be 0 for AddI64, found 1"),
            at(
                "main",
                1,
                "flags 3 is not a register bank (0 i64, 1 f64, 2 cell) for CallMixed's destination"
            ),
            at("main", 2, "flags must be 0 for ReturnI64, found 255"),
        ]
    );
    // CallMixed with flags naming the cell bank checks the cell register.
    p.functions[0].code = vec![
        Inst {
            code: Opcode::CallMixed as u8,
            flags: Bank::Cell as u8,
            a: 0,
            b: 0,
            c: 0,
        },
        inst(Opcode::ReturnI64, 0, 0, 0),
    ];
    assert_eq!(
        errs(&p),
        vec![
            at(
                "main",
                0,
                "register c0 is out of range (the function has 0 cell registers)"
            ),
            at(
                "main",
                0,
                "`main` returns i64, but CallMixed's destination c0 is a cell register"
            ),
        ]
    );
}

/// spec §1 and implementation limits: at most 65,535 registers per bank and 65,536 functions.
/// (Code longer than u32::MAX instructions is checked too, but 32 GiB of code is not
/// something a test can allocate.)
#[test]
fn limits() {
    let mut p = asm("func main(i64) -> i64\n    ReturnI64 i0\nend\n");
    p.functions[0].regs = RegCounts {
        i64: 65_535,
        f64: 65_536,
        cell: u32::MAX,
    };
    assert_eq!(
        errs(&p),
        vec![
            whole("main", "too many f64 registers: 65536 (at most 65535)"),
            whole(
                "main",
                "too many cell registers: 4294967295 (at most 65535)"
            ),
        ]
    );

    let tiny = |i: usize| {
        raw_function(
            &format!("f{i}"),
            &[],
            Bank::I64,
            RegCounts::default(),
            vec![inst(Opcode::ReturnConstK, 0, 0, 0)],
        )
    };
    let mut p = Program {
        functions: (0..65_536).map(tiny).collect(),
    };
    verify(&p).unwrap();
    p.functions.push(tiny(65_536));
    let e = verify(&p).unwrap_err();
    assert_eq!(
        e,
        vec![VerifyError {
            func: 65_536,
            function: "f65536".into(),
            index: None,
            reason: "too many functions: the program has 65537, at most 65536 are allowed".into(),
        }]
    );
}

/// spec §4: every error is reported, naming function, instruction and reason, in
/// function then instruction order; Display is `function NAME, instruction I: REASON`.
#[test]
fn all_errors_in_order() {
    let mut p = asm("func main(i64) -> i64
    regs i64 1
    AddI64 i1, i0, i0
    ConstI64KW i0, #4
    CallI64 i0, i0, helper
    AddI64 i0, i0, i0
end
func helper(i64) -> f64
    ReturnI64 i0
end
");
    p.functions[0].code.push(Inst::new(200, 0, 0, 0));
    let e = verify(&p).unwrap_err();
    let shown: Vec<String> = e.iter().map(|e| e.to_string()).collect();
    assert_eq!(
        shown,
        vec![
            "function main, instruction 0: register i1 is out of range (the function has 1 i64 register)",
            "function main, instruction 1: constant #4 is out of range (the function has 0 constants)",
            "function main, instruction 2: `helper` returns f64, but CallI64's destination i0 is an i64 register",
            "function main, instruction 4: unknown opcode 200",
            "function helper, instruction 0: ReturnI64 returns i64, but the function returns f64",
        ]
    );
    assert_eq!(e[4].func, 1);
    assert_eq!(e[4].index, Some(0));
    let whole = VerifyError {
        func: 0,
        function: "f".into(),
        index: None,
        reason: "r".into(),
    };
    assert_eq!(whole.to_string(), "function f: r");
    let _: &dyn std::error::Error = &whole;
    // Program::verify is the way to a VerifiedProgram, and reports the same.
    assert_eq!(p.verify().unwrap_err().0, e);
}

/// spec §4: what the assembler makes of every kernel (that the opcode table can
/// assemble) verifies cleanly.
#[test]
fn kernels_verify() {
    for (name, src) in plain_kernels() {
        let p = assemble(&src, &name).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        if let Err(e) = verify(&p) {
            panic!("{name}: {e:?}");
        }
    }
}

/// spec §4, checked against the opcode table: random valid programs verify, and
/// moving any one register operand to the function's count (or a branch target to its
/// length, a constant, table or function index to the end of its range) is reported at
/// exactly that instruction.
#[test]
fn random_programs_and_single_faults() {
    let mut rng = Rng(0x0123_4567_89AB_CDEF);
    let mut faults = 0;
    for _ in 0..300 {
        let p = random_program(&mut rng);
        verify(&p).unwrap_or_else(|e| panic!("{e:?}\n{}", vm3::asm::to_text(&p)));
        let fi = rng.below(p.functions.len() as u64) as usize;
        let f = &p.functions[fi];
        let pc = rng.below(f.code.len() as u64) as usize;
        let inst = f.code[pc];
        let info = Opcode::from_u8(inst.code).unwrap().info();
        for &(field, kind) in info.operands {
            let bad: i64 = match kind {
                OperandKind::Reg(bank) => f.regs.get(bank) as i64,
                OperandKind::Target => f.code.len() as i64,
                OperandKind::Const(_) => f.consts.len() as i64,
                OperandKind::Table => f.tables.len() as i64,
                OperandKind::Callee => p.functions.len() as i64,
                _ => continue,
            };
            if bad > i16::MAX as i64 && field == stencils::Field::C || bad > u16::MAX as i64 {
                continue;
            }
            let mut q = p.clone();
            let i = &mut q.functions[fi].code[pc];
            match field {
                stencils::Field::A => i.a = bad as u16,
                stencils::Field::B => i.b = bad as u16,
                stencils::Field::C => i.c = bad as i16,
            }
            let e = verify(&q).unwrap_err();
            assert!(
                e.iter().all(|e| e.func == fi && e.index == Some(pc as u32)),
                "{kind:?} fault at {fi}:{pc} reported elsewhere: {e:?}"
            );
            let expect = match kind {
                OperandKind::Reg(_) => "is out of range (the function has",
                OperandKind::Target => "is outside the function",
                OperandKind::Const(_) => "constant #",
                OperandKind::Table => "table #",
                _ => "function index",
            };
            assert!(e[0].reason.contains(expect), "{kind:?}: {e:?}");
            faults += 1;
        }
    }
    assert!(faults > 100, "only {faults} faults injected");
}

/// spec §4 ("bytecode is untrusted input"): random bytes as instructions, flags, counts
/// and pools never make the verifier (or the printer) panic, and the errors come in
/// function then instruction order.
#[test]
fn garbage_never_panics() {
    let mut rng = Rng(7);
    for _ in 0..2000 {
        let mut p = Program::default();
        for fi in 0..1 + rng.below(3) {
            let params: Vec<Bank> = (0..rng.below(4)).map(|_| rng.pick(&Bank::ALL)).collect();
            let mut f = Function::new(format!("g{fi}"), params, rng.pick(&Bank::ALL));
            for bank in Bank::ALL {
                f.regs
                    .set(bank, rng.pick(&[0, 1, 3, 255, 256, 65_535, 65_536]));
            }
            for _ in 0..rng.below(6) {
                let r = rng.next();
                let mut inst = Inst::new(
                    (r % 70) as u8,
                    (r >> 8) as u16,
                    (r >> 24) as u16,
                    (r >> 40) as i16,
                );
                if rng.chance(4) {
                    inst.a %= 4;
                    inst.b %= 4;
                    inst.c %= 4;
                }
                if rng.chance(5) {
                    inst.flags = (r >> 56) as u8 % 4;
                }
                f.code.push(inst);
            }
            if rng.chance(2) {
                f.consts.push(vm3::Const::I64(1));
                f.consts.push(vm3::Const::F64(f64::NAN));
            }
            if rng.chance(2) {
                f.tables.push(vec![1, 2]);
            }
            p.functions.push(f);
        }
        if let Err(e) = verify(&p) {
            let order: Vec<(usize, i64)> = e
                .iter()
                .map(|e| (e.func, e.index.map_or(-1, |i| i as i64)))
                .collect();
            let mut sorted = order.clone();
            sorted.sort();
            assert_eq!(order, sorted, "{e:#?}");
        }
        let _ = vm3::asm::to_text(&p);
        for f in &p.functions {
            for i in 0..f.code.len() {
                let _ = vm3::asm::format_inst(&p, f, i);
            }
        }
    }
}
