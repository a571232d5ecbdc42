//! `stitch build` end to end (issue 11): every kernel and every bench program built as an
//! executable prints, for each run, exactly what `stitch run` prints (standard output,
//! standard error, exit status: results, traps and errors alike), on x86-64 Linux and
//! on aarch64 Linux under `qemu-aarch64`; the Mach-O and COFF objects read back and
//! link with their target's runtime library; user errors get messages.
//!
//! Each test builds the runtime library it needs once (`cargo build --release -p
//! aot-runtime [--target T]`, a no-op when the workspace build made it), where
//! `stitch build` looks for it by default: next to the `stitch` binary under test.

mod common;
#[allow(dead_code)]
#[path = "../../jit/tests/common/linking.rs"]
mod linking;

use common::{kernels, kernels_dir, programs_in};
use object::read::{Object, ObjectSection, ObjectSymbol};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const STITCH: &str = env!("CARGO_BIN_EXE_stitch");
const AARCH64: &str = "aarch64-unknown-linux-gnu";

/// The target directory and profile `stitch` was built in (`target`, `release`).
fn target_dir_and_profile() -> (PathBuf, String) {
    let dir = Path::new(STITCH)
        .parent()
        .expect("stitch is in a directory");
    let profile = dir
        .file_name()
        .expect("profile directory")
        .to_string_lossy();
    (
        dir.parent().expect("target directory").to_path_buf(),
        profile.into_owned(),
    )
}

/// Where other targets' stencils are built: the directory `jit`'s tests
/// (linkers.rs, other_formats.rs) harvest every target in, so the workspace's test run
/// builds each target's stencils once. Given to the runtime library's builds for other
/// targets (`jit`'s build script) and to `stitch build` (its harvest).
fn shared_stencil_build() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("stencil-build")
}

/// Builds the runtime library for `target` (the host when `None`) where `stitch build`
/// finds it by default; returns its path.
fn build_runtime(target: Option<&str>) -> PathBuf {
    let (target_dir, profile) = target_dir_and_profile();
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(&workspace)
        .args(["build", "-p", "aot-runtime"])
        .env("CARGO_TARGET_DIR", &target_dir)
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("RUSTFLAGS");
    if profile == "release" {
        cmd.arg("--release");
    }
    let mut dir = target_dir.clone();
    if let Some(target) = target {
        cmd.args(["--target", target])
            .env("STENCIL_BUILD_TARGET_DIR", shared_stencil_build());
        dir = dir.join(target);
    }
    let out = cmd.output().expect("cargo runs");
    assert!(
        out.status.success(),
        "building the runtime library for {target:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let name = if target.is_some_and(|t| t.contains("windows")) {
        "aot_runtime.lib"
    } else {
        "libaot_runtime.a"
    };
    let lib = dir.join(profile).join(name);
    assert!(lib.is_file(), "{} was not built", lib.display());
    lib
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{cmd:?} panicked:\n{stderr}");
    out
}

/// `stitch build ARGS`, which must succeed.
fn stitch_build(args: &[&std::ffi::OsStr]) {
    let out = run(Command::new(STITCH)
        .arg("build")
        .args(args)
        .env("STENCIL_BUILD_TARGET_DIR", shared_stencil_build()));
    assert!(
        out.status.success(),
        "stitch build {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The programs: every kernel with its `; run:` argument lists, every bench program
/// with its suite argument (read from `src/suite.rs`) and a small one, and this test's
/// own programs (`tests/programs/`: deopts, whose interpreter is the runtime library's).
/// Each run: its arguments and, from a `; run:` line, what it prints.
type Runs = Vec<(Vec<String>, Option<String>)>;

fn programs() -> Vec<(PathBuf, Runs)> {
    let own = programs_in(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/programs"));
    assert!(own.len() >= 2);
    let mut programs: Vec<(PathBuf, Runs)> = kernels()
        .into_iter()
        .chain(own)
        .map(|k| {
            let runs = k.runs.into_iter().map(|(a, e)| (a, Some(e))).collect();
            (k.path, runs)
        })
        .collect();
    let suite = include_str!("../src/suite.rs");
    let bench_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench");
    let mut benches = 0;
    for line in suite.lines() {
        let Some(rest) = line.trim().strip_prefix("bench!(\"") else {
            continue;
        };
        let (name, rest) = rest.split_once('"').expect("bench!(\"name\", arg, ...)");
        let arg = rest
            .trim_start_matches(',')
            .split(',')
            .next()
            .expect("the argument")
            .trim()
            .replace('_', "");
        let path = bench_dir.join(format!("{name}.vm3"));
        assert!(path.is_file(), "{} is in the suite", path.display());
        programs.push((path, vec![(vec![arg], None), (vec!["7".to_string()], None)]));
        benches += 1;
    }
    assert!(benches >= 15, "found {benches} bench programs in suite.rs");
    programs
}

/// Builds every program for `target` and checks that running each executable with
/// `exec` prints what `stitch run` prints; returns the runs compared.
fn executables_match_stitch_run(target: Option<&str>, exec: impl Fn(&Path) -> Command) -> usize {
    build_runtime(target);
    let dir = tempdir(target.unwrap_or("host"));
    let mut compared = 0;
    for (file, runs) in programs() {
        let name = file.file_stem().unwrap().to_string_lossy().into_owned();
        let exe = dir.join(&name);
        let mut args = vec![file.as_os_str(), os("-o"), exe.as_os_str()];
        if let Some(target) = target {
            args.extend([os("--target"), os(target)]);
        }
        stitch_build(&args);
        for (run_args, line) in runs {
            let expected = run(Command::new(STITCH).arg("run").arg(&file).args(&run_args));
            if let Some(line) = line {
                // The `; run:` line holds (what `stitch run` prints is checked
                // against it for kernels by tests/cli.rs; here for this test's own).
                let printed = if line.starts_with("trap:") {
                    &expected.stderr
                } else {
                    &expected.stdout
                };
                assert_eq!(
                    String::from_utf8_lossy(printed).trim_end(),
                    line,
                    "{file:?}"
                );
            }
            let got = run(exec(&exe).args(&run_args));
            let what = format!("{name} {run_args:?} built for {target:?}");
            assert_eq!(
                String::from_utf8_lossy(&got.stdout),
                String::from_utf8_lossy(&expected.stdout),
                "{what}: stdout"
            );
            assert_eq!(
                String::from_utf8_lossy(&got.stderr),
                String::from_utf8_lossy(&expected.stderr),
                "{what}: stderr"
            );
            assert_eq!(got.status.code(), expected.status.code(), "{what}: status");
            compared += 1;
        }
    }
    compared
}

fn os(s: &str) -> &std::ffi::OsStr {
    std::ffi::OsStr::new(s)
}

fn tempdir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("aot-{name}"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
#[test]
fn x86_64_linux_executables_print_what_stitch_run_prints() {
    let compared = executables_match_stitch_run(None, |exe| Command::new(exe));
    assert!(compared >= 60, "{compared} runs compared");
}

/// The same for aarch64 Linux executables, run under user-mode QEMU (the tools
/// tests/tests/aarch64_qemu.rs needs).
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
#[test]
fn aarch64_linux_executables_print_what_stitch_run_prints_under_qemu() {
    let compared = executables_match_stitch_run(Some(AARCH64), |exe| {
        let mut cmd = Command::new("qemu-aarch64");
        cmd.args(["-L", "/usr/aarch64-linux-gnu"]).arg(exe);
        cmd
    });
    assert!(compared >= 60, "{compared} runs compared");
}

/// The executable's code is never writable and nothing maps executable memory: no
/// segment is writable and executable (the stack included), the code region lies in a
/// read-execute one, and the JIT's memory code is not linked in.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
#[test]
fn executable_code_is_never_writable() {
    build_runtime(None);
    let exe = tempdir("wx").join("fib_rec");
    let file = kernels_dir().join("fib_rec.vm3");
    stitch_build(&[file.as_os_str(), os("-o"), exe.as_os_str()]);
    let bytes = std::fs::read(&exe).unwrap();
    let image = object::File::parse(&*bytes).unwrap();
    let code = image
        .symbols()
        .find(|s| s.name() == Ok("stitch_aot_code"))
        .expect("the code symbol")
        .address();
    let elf = object::read::elf::ElfFile64::<object::Endianness>::parse(&*bytes).unwrap();
    use object::read::elf::ProgramHeader;
    let endian = elf.endian();
    let mut in_code_segment = false;
    for header in elf.elf_program_headers() {
        let flags = header.p_flags(endian);
        let (w, x) = (
            flags.0 & object::elf::PF_W.0 != 0,
            flags.0 & object::elf::PF_X.0 != 0,
        );
        assert!(
            !(w && x),
            "a segment is writable and executable: {:#x}",
            flags.0
        );
        if header.p_type(endian) == object::elf::PT_GNU_STACK {
            assert!(!x, "the stack is executable");
        }
        let start = header.p_vaddr(endian);
        if header.p_type(endian) == object::elf::PT_LOAD
            && (start..start + header.p_memsz(endian)).contains(&code)
        {
            assert!(x && !w, "the code's segment is {:#x}", flags.0);
            in_code_segment = true;
        }
    }
    assert!(in_code_segment, "the code lies in a loaded segment");
    for s in image.symbols() {
        let name = s.name().unwrap_or("");
        assert!(
            !name.contains("WritableRegion") && !name.contains("make_executable"),
            "the JIT's memory code is linked in: {name}"
        );
    }
}

/// The executable's own options, and limits as `stitch run` applies them; `--entry` and
/// `--cpu host` of `stitch build`.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
#[test]
fn executables_take_the_options_of_stitch_run() {
    build_runtime(None);
    let dir = tempdir("limits");
    let cases: [(&str, &[&str]); 4] = [
        ("fact_rec.vm3", &["--depth-limit", "5", "10"]),
        ("fact_rec.vm3", &["--depth-limit", "0", "10"]),
        ("lists_sieve.vm3", &["--heap-limit", "1000", "10000"]),
        ("lists_sieve.vm3", &["not-a-number"]),
    ];
    // `--entry`: the executable runs another function, as `stitch run --entry` does.
    let file = kernels_dir().join("mixed_call.vm3");
    let exe = dir.join("addk");
    stitch_build(&[
        file.as_os_str(),
        os("--entry"),
        os("addk"),
        os("-o"),
        exe.as_os_str(),
    ]);
    let expected = run(Command::new(STITCH)
        .args(["run", "--entry", "addk"])
        .arg(&file)
        .args(["3", "1.5"]));
    let got = run(Command::new(&exe).args(["3", "1.5"]));
    assert_eq!(expected.status.code(), Some(0));
    assert_eq!(got.stdout, expected.stdout);
    assert_eq!(got.status.code(), Some(0));
    // `--cpu host`: the JIT's own code on this machine (FMA where the CPU has it).
    let file = kernels_dir().join("mandel_row.vm3");
    let exe = dir.join("mandel_host");
    stitch_build(&[
        file.as_os_str(),
        os("--cpu"),
        os("host"),
        os("-o"),
        exe.as_os_str(),
    ]);
    for args in [["640"], ["13"]] {
        let expected = run(Command::new(STITCH).arg("run").arg(&file).args(args));
        let got = run(Command::new(&exe).args(args));
        assert_eq!(expected.status.code(), Some(0));
        assert_eq!(
            got.stdout, expected.stdout,
            "mandel_row {args:?} --cpu host"
        );
        assert_eq!(got.status.code(), Some(0));
    }
    for (kernel, args) in cases {
        let file = kernels_dir().join(kernel);
        let exe = dir.join(kernel.trim_end_matches(".vm3"));
        stitch_build(&[file.as_os_str(), os("-o"), exe.as_os_str()]);
        let expected = run(Command::new(STITCH).arg("run").arg(&file).args(args));
        let got = run(Command::new(&exe).args(args));
        assert_ne!(expected.status.code(), Some(0), "{kernel} {args:?} fails");
        assert_eq!(
            got.status.code(),
            expected.status.code(),
            "{kernel} {args:?}"
        );
        if expected.status.code() != Some(2) {
            // Usage errors name the program; everything else is the same text.
            assert_eq!(got.stderr, expected.stderr, "{kernel} {args:?}");
        }
    }
}

/// Objects for the Apple and Windows targets: `object` reads them back (the code, the
/// image, relocations against the helpers), and the target's linker resolves every
/// symbol of ours against the target's runtime library. `ld64.lld` links arm64 and
/// x86-64 Mach-O executables completely (`-undefined dynamic_lookup` stands in for the
/// macOS SDK's libSystem, which is not here), in which every helper call is checked to
/// reach its helper (they cannot run here); `lld-link` without the Windows SDK's
/// libraries only lists what is left undefined, which must be C runtime and system
/// symbols only: none of the object's or the runtime library's.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
#[test]
fn apple_and_windows_objects_read_back_and_link_with_their_runtime() {
    let kernel = kernels_dir().join("lists_sieve.vm3");
    for (target, format) in [
        ("aarch64-apple-darwin", object::BinaryFormat::MachO),
        ("x86_64-apple-darwin", object::BinaryFormat::MachO),
        ("x86_64-pc-windows-msvc", object::BinaryFormat::Coff),
    ] {
        let runtime = build_runtime(Some(target));
        let dir = tempdir(target);
        let obj = dir.join("lists_sieve.o");
        stitch_build(&[
            kernel.as_os_str(),
            os("--emit"),
            os("obj"),
            os("--target"),
            os(target),
            os("-o"),
            obj.as_os_str(),
        ]);
        let bytes = std::fs::read(&obj).unwrap();
        let file = object::File::parse(&*bytes).expect("the object reads back");
        assert_eq!(file.format(), format, "{target}");
        let prefix = if format == object::BinaryFormat::MachO {
            "_"
        } else {
            ""
        };
        let symbol = |name: &str| {
            file.symbols()
                .find(|s| s.name() == Ok(&format!("{prefix}{name}")))
                .unwrap_or_else(|| panic!("{target}: no symbol {name}"))
        };
        assert!(symbol("stitch_aot_code").is_definition());
        assert!(symbol("stitch_aot_image").is_definition());
        let text = file.section_by_name(if format == object::BinaryFormat::MachO {
            "__text"
        } else {
            ".text"
        });
        // (offset in the code, symbol) of every relocation.
        let relocated: Vec<(u64, String)> = text
            .expect("a text section")
            .relocations()
            .filter_map(|(offset, r)| match r.target() {
                object::RelocationTarget::Symbol(i) => file
                    .symbol_by_index(i)
                    .ok()?
                    .name()
                    .ok()
                    .map(|n| (offset, n.to_string())),
                _ => None,
            })
            .collect();
        assert!(
            relocated
                .iter()
                .any(|(_, n)| n.ends_with("vm3_list_push_grow_preserving")),
            "{target}: helper calls are relocations: {relocated:?}"
        );
        let ours = |undefined: &str| {
            let name = undefined.trim_start_matches('_');
            name.starts_with("stitch_aot") || name.starts_with("vm3_") || name == "main"
        };
        if format == object::BinaryFormat::MachO {
            let exe = dir.join("lists_sieve");
            let mut cmd = Command::new(linking::tool(&["ld64.lld", "ld64.lld-14"]));
            let arm64 = target.starts_with("aarch64");
            cmd.args([
                "-arch",
                if arm64 { "arm64" } else { "x86_64" },
                "-platform_version",
                "macos",
                "11.0",
                "11.0",
            ])
            .args(["-undefined", "dynamic_lookup", "-dead_strip", "-o"])
            .arg(&exe)
            .arg(&obj)
            .arg(&runtime);
            linking::run(cmd);
            let image = std::fs::read(&exe).unwrap();
            let image = object::File::parse(&*image).expect("the executable reads back");
            assert_eq!(image.kind(), object::ObjectKind::Executable);
            let undefined: Vec<String> = image
                .symbols()
                .filter(|s| s.is_undefined())
                .filter_map(|s| s.name().ok().map(str::to_string))
                .collect();
            assert!(undefined.iter().any(|n| n == "_memcpy"), "{undefined:?}");
            assert!(!undefined.iter().any(|n| ours(n)), "{undefined:?}");
            assert!(image
                .symbols()
                .any(|s| s.name() == Ok("_main") && s.is_definition()));
            // Every helper call reaches its helper: the relocations' addends came
            // through the Mach-O writer's implicit-addend encoding intact.
            let address = |name: &str| {
                image
                    .symbols()
                    .find(|s| s.name() == Ok(name) && s.is_definition())
                    .unwrap_or_else(|| panic!("{target}: {name} is not in the executable"))
                    .address()
            };
            let code = address("_stitch_aot_code");
            for (offset, name) in &relocated {
                let place = code + offset;
                let field =
                    u32::from_le_bytes(linking::bytes_at(&image, place, 4).try_into().unwrap());
                let reached = if arm64 {
                    // `bl`: imm26 words from the instruction.
                    place.wrapping_add_signed(((field << 6) as i32 >> 4) as i64)
                } else {
                    // `call rel32`: from the end of the 4-byte field.
                    (place + 4).wrapping_add_signed(field as i32 as i64)
                };
                assert_eq!(reached, address(name), "{target}: call at +{offset:#x}");
            }
        } else {
            let undefined = |inputs: &[&Path]| {
                let out = run(Command::new(linking::tool(&["lld-link"]))
                    .args(["/machine:x64", "/subsystem:console", "/nodefaultlib"])
                    .arg(format!("/out:{}", dir.join("lists_sieve.exe").display()))
                    .args(inputs));
                let text = String::from_utf8_lossy(&out.stdout).into_owned()
                    + &String::from_utf8_lossy(&out.stderr);
                let names: Vec<String> = text
                    .lines()
                    .filter_map(|l| l.split("undefined symbol: ").nth(1))
                    .map(|n| n.trim().to_string())
                    .collect();
                assert!(
                    !names.is_empty(),
                    "lld-link reports what is undefined:\n{text}"
                );
                names
            };
            // Alone, the object needs the helpers; with the runtime it needs only the
            // C runtime and the system.
            let alone = undefined(&[&obj]);
            assert!(alone.iter().any(|n| n.starts_with("vm3_")), "{alone:?}");
            let linked = undefined(&[&obj, &runtime]);
            assert!(linked.iter().any(|n| n == "memcpy"), "{linked:?}");
            assert!(!linked.iter().any(|n| ours(n)), "{linked:?}");
        }
    }
}

/// A Linux target of another instruction set than this machine's.
fn other_isa() -> &'static str {
    if cfg!(target_arch = "aarch64") {
        "x86_64-unknown-linux-gnu"
    } else {
        AARCH64
    }
}

/// What a user can get wrong is reported with status 2 and says what to do.
#[test]
fn user_errors_are_reported() {
    let kernel = kernels_dir().join("fib_iter.vm3");
    let fails = |args: &[&std::ffi::OsStr], path: Option<&str>, needle: &str| {
        let mut cmd = Command::new(STITCH);
        cmd.arg("build")
            .args(args)
            .env("STENCIL_BUILD_TARGET_DIR", shared_stencil_build());
        if let Some(path) = path {
            cmd.env("PATH", path);
        }
        let out = run(&mut cmd);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    };
    let k = kernel.as_os_str();
    fails(
        &[k, os("--target"), os("riscv64gc-unknown-linux-gnu")],
        None,
        "unknown target `riscv64gc-unknown-linux-gnu`: objects can be written for x86_64-unknown-linux-gnu",
    );
    fails(
        &[
            k,
            os("--emit"),
            os("obj"),
            os("-o"),
            os("/nonexistent/dir/x.o"),
        ],
        None,
        "cannot write /nonexistent/dir/x.o",
    );
    fails(
        &[k, os("--target"), os("aarch64-apple-darwin")],
        None,
        "`--emit obj`",
    );
    fails(
        &[
            k,
            os("--cpu"),
            os("host"),
            os("--emit"),
            os("obj"),
            os("--target"),
            os(other_isa()),
        ],
        None,
        "it is another instruction set",
    );
    let bare = tempdir("errors").join("fib_iter");
    std::fs::copy(&kernel, &bare).unwrap();
    fails(&[bare.as_os_str()], None, "would overwrite");
    assert_eq!(
        std::fs::read(&bare).unwrap(),
        std::fs::read(&kernel).unwrap()
    );
    fails(
        &[k, os("--entry"), os("nope")],
        None,
        "no function named `nope`",
    );
    #[cfg(target_os = "linux")]
    fails(
        &[k, os("-o"), os("x")],
        Some("/nonexistent"),
        "needs the C compiler driver",
    );
    fails(
        &[k, os("--runtime"), os("/nonexistent/libaot_runtime.a")],
        None,
        "cargo build --release -p aot-runtime",
    );
}
