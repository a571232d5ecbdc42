//! Opcode numbers never change (issue 12): stored bytecode holds them. Each opcode's
//! number is its line in `stencils/opcodes.txt`, which only grows at the end; this
//! test pins every number given so far, so a change to one shows in review as a
//! change to this file, and `build.rs`'s refusals are checked here too.

use stencils::{Opcode, OPCODE_COUNT};

#[path = "../build/numbering.rs"]
#[allow(dead_code)]
mod numbering;
use numbering::{number_opcodes, Found};

/// Every opcode numbered so far and its number, for good. A new opcode is appended to
/// `opcodes.txt` and may be appended here; no line here may change.
const PINNED: &[(&str, u8)] = &[
    ("CmpEqI64Br", 0),
    ("CmpNeI64Br", 1),
    ("CmpLtI64Br", 2),
    ("CmpLeI64Br", 3),
    ("CmpGtI64Br", 4),
    ("CmpGeI64Br", 5),
    ("CmpEqF64Br", 6),
    ("CmpNeF64Br", 7),
    ("CmpLtF64Br", 8),
    ("CmpLeF64Br", 9),
    ("CmpGtF64Br", 10),
    ("CmpGeF64Br", 11),
    ("CmpEqI64KBr", 12),
    ("CmpNeI64KBr", 13),
    ("CmpLtI64KBr", 14),
    ("CmpLeI64KBr", 15),
    ("CmpGtI64KBr", 16),
    ("CmpGeI64KBr", 17),
    ("Jump", 18),
    ("LookupI64KW", 19),
    ("CallI64", 20),
    ("CallF64", 21),
    ("CallCell", 22),
    ("CallMixed", 23),
    ("TailCallI64", 24),
    ("TailCallMixed", 25),
    ("ReturnI64", 26),
    ("ReturnF64", 27),
    ("ReturnCell", 28),
    ("ReturnConstK", 29),
    ("Deopt", 30),
    ("AddF64", 31),
    ("SubF64", 32),
    ("MulF64", 33),
    ("DivF64", 34),
    ("NegF64", 35),
    ("FmaF64", 36),
    ("SqrtF64", 37),
    ("I64ToF64", 38),
    ("F64ToI64", 39),
    ("AddI64", 40),
    ("SubI64", 41),
    ("MulI64", 42),
    ("DivI64", 43),
    ("ModI64", 44),
    ("NegI64", 45),
    ("AddI64K", 46),
    ("SubI64K", 47),
    ("MulI64K", 48),
    ("DivI64K", 49),
    ("ModI64K", 50),
    ("Nop", 51),
    ("MovI64", 52),
    ("MovF64", 53),
    ("ConstI64K", 54),
    ("ConstI64KW", 55),
    ("ConstF64K", 56),
    ("ConstStrKW", 57),
    ("LenStr", 58),
    ("ConcatStr", 59),
    ("NewList", 60),
    ("ListLenI64", 61),
    ("ListPushI64", 62),
    ("ListGetI64", 63),
    ("ListSetI64", 64),
    ("ListGetF64", 65),
    ("ListSetF64", 66),
    ("ListGetCell", 67),
    ("ListSetCell", 68),
    ("NewMap", 69),
    ("MapSetI64I64", 70),
    ("MapGetI64I64", 71),
];

#[test]
fn every_pinned_opcode_keeps_its_number() {
    for &(name, code) in PINNED {
        let op = Opcode::from_u8(code)
            .unwrap_or_else(|| panic!("opcode {code} (`{name}`) no longer exists"));
        assert_eq!(
            op.name(),
            name,
            "opcode {code} was `{name}`, now `{}`",
            op.name()
        );
        assert_eq!(op as u8, code);
    }
}

#[test]
fn new_opcodes_come_after_the_pinned_ones() {
    assert!(OPCODE_COUNT >= PINNED.len());
    for (code, op) in Opcode::ALL.iter().enumerate() {
        assert_eq!(*op as usize, code, "`{}`", op.name());
        if code >= PINNED.len() {
            assert!(
                PINNED.iter().all(|(name, _)| *name != op.name()),
                "`{}` is pinned at another number",
                op.name()
            );
        }
    }
}

fn found(module: &str, name: &str, internal: bool) -> Found {
    Found {
        module: module.to_string(),
        name: name.to_string(),
        internal,
    }
}

fn names(numbers: &str, found: &[Found]) -> Result<Vec<String>, Vec<String>> {
    number_opcodes(found, numbers).map(|ops| ops.iter().map(|f| f.name.clone()).collect())
}

#[test]
fn numbers_follow_the_registry_not_the_files() {
    let ops = [
        found("bits", "Popcount", false),
        found("int", "AddI64", false),
        found("internal", "Prologue", true),
    ];
    // `bits.rs` sorts first, but `AddI64` was numbered first.
    let numbered = names("# comment\n\nAddI64\nPopcount\n", &ops).unwrap();
    assert_eq!(numbered, ["AddI64", "Popcount"]);
}

#[test]
fn an_opcode_without_a_number_is_named_with_its_file() {
    let ops = [
        found("int", "AddI64", false),
        found("bits", "Popcount", false),
    ];
    let errors = names("AddI64\n", &ops).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("opcode `Popcount` (stencils/src/ops/bits.rs) has no number")
            && errors[0].contains("append a line `Popcount`"),
        "{errors:?}"
    );
}

#[test]
fn a_number_without_an_opcode_is_named_with_its_line() {
    let ops = [found("int", "AddI64", false)];
    let errors = names("AddI64\nSubI64\n", &ops).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0]
            .starts_with("stencils/opcodes.txt line 2: `SubI64` is not a `#[stencil]` function"),
        "{errors:?}"
    );
}

#[test]
fn duplicates_and_internal_stencils_are_refused() {
    let ops = [
        found("int", "AddI64", false),
        found("internal", "Prologue", true),
    ];
    let errors = names("AddI64\nPrologue\nAddI64\n", &ops).unwrap_err();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors[0].contains("line 2: `Prologue` is `#[stencil(internal)]`"),
        "{errors:?}"
    );
    assert!(
        errors[1].contains("line 3: `AddI64` is listed twice"),
        "{errors:?}"
    );
}
