//! Harvests the real vm3 stencils for x86_64-unknown-linux-gnu (one nested build), and
//! checks the listings of the other targets with a backend.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use stencil_harvest::{build, harvest_staticlib, summary, to_rust_source, BuildOptions};
use stencil_table::{HoleValue, OwnedStencilSet, RelocKind};
use stencils::{helpers::HELPER_NAMES, Opcode, INTERNAL_STENCILS};

const TARGET: &str = "x86_64-unknown-linux-gnu";

fn workspace() -> PathBuf {
    stencil_harvest::workspace_root(Path::new(env!("CARGO_MANIFEST_DIR")))
}

fn staticlib() -> &'static Path {
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(|| {
        let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("stencil-build");
        build(&BuildOptions::new(TARGET, workspace(), target_dir)).unwrap_or_else(|e| panic!("{e}"))
    })
}

fn set() -> &'static OwnedStencilSet {
    static SET: OnceLock<OwnedStencilSet> = OnceLock::new();
    SET.get_or_init(|| harvest_staticlib(staticlib(), TARGET).unwrap_or_else(|e| panic!("{e}")))
}

#[test]
fn every_opcode_has_a_stencil_in_order() {
    let set = set();
    assert_eq!(set.target, TARGET);
    assert_eq!(
        set.stencils.len(),
        stencil_harvest::vm3_stencil_specs().len()
    );
    for op in Opcode::ALL {
        let s = &set.stencils[op as usize];
        assert_eq!(s.name, op.stencil_symbol());
        assert!(!s.code.is_empty(), "{}", s.name);
    }
    for (i, name) in INTERNAL_STENCILS.iter().enumerate() {
        assert_eq!(set.stencils[Opcode::ALL.len() + i].name, *name);
    }
}

#[test]
fn every_continuation_is_a_jump() {
    for s in &set().stencils {
        let tail_call = Opcode::ALL
            .iter()
            .find(|op| op.stencil_symbol() == s.name)
            .is_some_and(|op| op.info().is_tail_call());
        for h in &s.holes {
            let continuation =
                h.value.is_continuation() || (tail_call && h.value == HoleValue::Callee);
            if !continuation {
                continue;
            }
            let o = h.offset as usize;
            let jmp = s.code[o - 1] == 0xE9;
            let jcc = o >= 2 && s.code[o - 2] == 0x0F && (0x80..=0x8F).contains(&s.code[o - 1]);
            assert_eq!(h.kind, RelocKind::X86_64Branch32, "{} {:?}", s.name, h);
            assert!(
                jmp || jcc,
                "{}: continuation at {o:#x} is not a jump",
                s.name
            );
        }
    }
}

#[test]
fn tail_jumps() {
    let set = set();
    let add = set.by_name(Opcode::AddI64.stencil_symbol()).unwrap();
    assert_eq!(add.tail_jump, 5);
    assert_eq!(&add.code[add.code.len() - 5..], &[0xE9, 0, 0, 0, 0]);
    let last = add.holes.last().unwrap();
    assert_eq!(
        (last.offset as usize, last.value, last.addend),
        (add.code.len() - 4, HoleValue::Continue, -4)
    );
    assert_eq!(
        add.as_stencil().code_without_tail_jump().len(),
        add.code.len() - 5
    );
    // A stencil ending in `ret` has nothing to elide.
    let ret = set.by_name(Opcode::ReturnI64.stencil_symbol()).unwrap();
    assert_eq!(ret.tail_jump, 0);
    assert_eq!(*ret.code.last().unwrap(), 0xC3);
}

#[test]
fn no_unexpected_symbols() {
    for s in &set().stencils {
        for h in &s.holes {
            match h.value {
                HoleValue::Helper(i) => assert!((i as usize) < HELPER_NAMES.len()),
                HoleValue::Data => {
                    assert!(!s.data.is_empty(), "{}", s.name);
                    // PC-relative fields are relative to the field's end (addend -4).
                    let at = h.addend + 4;
                    assert!(at >= 0 && (at as usize) < s.data.len(), "{}: {h:?}", s.name);
                }
                _ => {}
            }
            assert!(
                h.offset as usize + h.kind.width() <= s.code.len(),
                "{}: {h:?}",
                s.name
            );
        }
        assert!(s.data_align.is_power_of_two());
    }
}

#[test]
fn aliased_stencils_are_sliced_by_symbol() {
    let set = set();
    let call_i = set.by_name(Opcode::CallI64.stencil_symbol()).unwrap();
    let call_f = set.by_name(Opcode::CallF64.stencil_symbol()).unwrap();
    assert_eq!(call_i.code, call_f.code);
    assert_eq!(call_i.holes, call_f.holes);
    // A call stencil calls its callee (not a continuation there) and no helper: a deopt
    // below it finishes in the interpreter from the deopting stencil, which calls the
    // deopt helper.
    assert!(call_i.holes.iter().any(|h| h.value == HoleValue::Callee));
    assert!(!call_i
        .holes
        .iter()
        .any(|h| matches!(h.value, HoleValue::Helper(_))));
    let deopt = HELPER_NAMES
        .iter()
        .position(|n| *n == "vm3_deopt_resume")
        .unwrap() as u16;
    let deopt_stencil = set.by_name(Opcode::Deopt.stencil_symbol()).unwrap();
    assert!(deopt_stencil
        .holes
        .iter()
        .any(|h| h.value == HoleValue::Helper(deopt)));
}

#[test]
fn output_is_deterministic_and_compiles() {
    let set = set();
    let text = to_rust_source(set);
    assert_eq!(
        text,
        to_rust_source(&harvest_staticlib(staticlib(), TARGET).unwrap())
    );
    assert!(text.contains("pub static STENCILS: ::stencil_table::StencilSet<'static>"));
    let s = summary(set);
    assert!(s.contains("elidable tail jumps"), "{s}");

    // The table compiles against stencil-table, and indexes by opcode.
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("table-check");
    std::fs::create_dir_all(dir.join("src")).unwrap();
    let table_crate = workspace().join("stencil-table");
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"table-check\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\n\
             [dependencies]\nstencil-table = {{ path = {:?} }}\n\n[workspace]\n",
            table_crate.display().to_string()
        ),
    )
    .unwrap();
    let check = format!(
        "{text}\nconst _: () = assert!(STENCILS.stencils.len() == {});\n",
        stencil_harvest::vm3_stencil_specs().len()
    );
    std::fs::write(dir.join("src/lib.rs"), check).unwrap();
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(&dir)
        .args(["check", "--quiet", "--offline", "--target-dir"])
        .arg(dir.join("target"))
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTFLAGS")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "generated table does not compile:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn build_script_pipeline_writes_the_table() {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let env = stencil_harvest::BuildScriptEnv {
        target: TARGET.to_string(),
        out_dir: tmp.join("build-script-out"),
        manifest_dir: workspace().join("jit"),
        stencil_target_dir: Some(tmp.join("stencil-build")),
    };
    let out = stencil_harvest::run_build_script(&env).unwrap_or_else(|e| panic!("{e}"));
    let text = std::fs::read_to_string(&out.table).unwrap();
    assert_eq!(out.table, env.out_dir.join("stencils.rs"));
    assert_eq!(text, to_rust_source(set()));
    assert_eq!(out.summary, summary(set()));

    let lines = stencil_harvest::rerun_directives(&workspace());
    for dir in ["stencils", "stencil-macros", "stencil-table"] {
        let path = workspace().join(dir);
        assert!(lines.contains(&format!("cargo::rerun-if-changed={}", path.display())));
    }
}

#[test]
fn table_matches_the_checked_in_listing() {
    common::check_listing(set());
}

/// The other targets with a backend: their tables are checked in too (one nested build
/// each, in the same target directory, so the host build of the proc macro is shared).
#[test]
fn other_targets_match_their_checked_in_listings() {
    for target in [
        "x86_64-apple-darwin",
        "x86_64-pc-windows-msvc",
        "aarch64-apple-darwin",
    ] {
        let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("stencil-build");
        let lib = build(&BuildOptions::new(target, workspace(), target_dir))
            .unwrap_or_else(|e| panic!("{e}"));
        let set = harvest_staticlib(&lib, target).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            set.stencils.len(),
            stencil_harvest::vm3_stencil_specs().len()
        );
        common::check_listing(&set);
    }
}

/// The x86-64 call convention of `stencils::jit::call_compiled`: a call stencil moves the
/// stack pointer by exactly one push before it calls its callee (so the callee's stack is
/// aligned as at any call: the `asm!` is `nostack` and LLVM adds no alignment push for
/// it), and compiled code returns with the run context still in `rdi`, which the caller
/// does not save: at every `ret`, no helper call or other write of `rdi` since the last
/// `mov rdi, reg` (which puts back the copy a stencil kept in a callee-saved register).
/// Checked over every stencil and variant in layout order, the order LLVM emits them.
#[test]
fn calls_keep_the_stack_aligned_and_returns_keep_the_context() {
    use iced_x86::{Decoder, DecoderOptions, Mnemonic, OpKind, Register};
    let writes_rdi = |ins: &iced_x86::Instruction| {
        ins.op_count() > 0
            && ins.op0_kind() == OpKind::Register
            && matches!(
                ins.op0_register(),
                Register::RDI | Register::EDI | Register::DI | Register::DIL
            )
            && !matches!(
                ins.mnemonic(),
                Mnemonic::Cmp | Mnemonic::Test | Mnemonic::Push
            )
    };
    let mut calls = 0;
    for s in &set().stencils {
        let callee_call = s
            .holes
            .iter()
            .find(|h| h.value == HoleValue::Callee && !s.name.contains("TailCall"))
            .map(|h| h.offset as u64 - 1);
        let mut decoder = Decoder::with_ip(64, &s.code, 0, DecoderOptions::NONE);
        let (mut stack_moves, mut rdi_clobbered) = (0, false);
        for ins in decoder.iter() {
            if Some(ins.ip()) == callee_call {
                assert_eq!(
                    stack_moves, 1,
                    "{}: the stack pointer moves {stack_moves} times before the call (one push expected)",
                    s.name
                );
                calls += 1;
                continue;
            }
            let moves_stack = matches!(ins.mnemonic(), Mnemonic::Push | Mnemonic::Pop)
                || (ins.op_count() > 0
                    && ins.op0_kind() == OpKind::Register
                    && ins.op0_register() == Register::RSP);
            if callee_call.is_some_and(|at| ins.ip() < at) && moves_stack {
                stack_moves += 1;
            }
            if ins.mnemonic() == Mnemonic::Call {
                rdi_clobbered = true;
            } else if writes_rdi(&ins) {
                rdi_clobbered =
                    !(ins.mnemonic() == Mnemonic::Mov && ins.op1_kind() == OpKind::Register);
            }
            if ins.mnemonic() == Mnemonic::Ret {
                assert!(
                    !rdi_clobbered,
                    "{}: returns at {:#x} without the run context in rdi",
                    s.name,
                    ins.ip()
                );
            }
        }
    }
    assert!(calls >= 3, "only {calls} call stencils found");
}
