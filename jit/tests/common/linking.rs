//! Linking stencil objects with the real linker of their format and comparing the
//! result with what `jit::patch` writes, shared by `linkers.rs` (the objects rustc
//! makes of the stencils crate) and `linker_fixtures.rs` (hand-written objects using
//! the relocation forms rustc does not emit).
//!
//! The values are chosen so no instruction needs rewriting: on x86-64 everything lies
//! within ±2 GiB of the code and below 2^31, so absolute 32-bit fields hold them too; on
//! aarch64 everything lies within `bl`'s ±128 MiB of the code and above 2^32, so the
//! patcher keeps each `adrp` + `add` pair a pair (it rewrites the pair to `movz` +
//! `movk` only for values below 2^32) and both sides write the plain pair.
//! Relaxation is off where the linker has a switch (`ld.lld --no-relax`, which also
//! keeps aarch64 GOT loads, compared through the linker's slot; `lld-link` does not
//! relax). `ld64.lld` has none for GOT loads: on x86-64 it keeps a `movq` from the GOT
//! for a symbol that has a GOT slot anyway (some other instruction reads the slot) and
//! turns the rest into `leaq`; the patcher is given the same choice (the linker's slot,
//! or its own relaxation to `lea`), so both GOT-load forms are compared. On arm64 it
//! turns every GOT load (`adrp` + `ldr`) of our absolute symbols into `adrp` + `add`,
//! which the patcher also writes for values above 2^32; that relaxed form is the one
//! compared, the slot form being executed by `tests/other_formats.rs`. Relaxed forms
//! of every kind are executed by `tests/other_formats.rs`.
//!
//! A hole into the stencil's read-only data is compared at the address where the
//! linker put the constant (linkers merge and move constants), after checking that the
//! linked image holds the stencil's data there.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use object::read::{Object, ObjectSection, ObjectSymbol};
use stencil_harvest::OwnedStencilSet;
use stencil_table::{HoleValue, OperandField, OwnedStencil, RelocKind};

/// How a target's objects are linked.
#[derive(Clone, Copy, Debug)]
pub enum Format {
    /// `ld.lld -m` emulation.
    Elf(&'static str),
    /// `-arch` value.
    MachO(&'static str),
    /// `/machine:` value.
    Coff(&'static str),
}

/// x86-64: values 1 MiB above this stay below 2^31 (absolute 32-bit fields).
pub const X86_64_CODE_BASE: u64 = 0x1000_0000;
/// aarch64: values 1 MiB above this lie above 2^32, so no `adrp` + `add` pair relaxes.
pub const AARCH64_CODE_BASE: u64 = 0x1_0000_0000;
/// The chosen values start this far above the code: far enough to clear it, near
/// enough for every branch.
pub const VALUES_ABOVE_CODE: u64 = 0x10_0000;

pub fn hole_symbol(value: HoleValue) -> String {
    match value {
        HoleValue::Operand(f) => format!(
            "_JIT_{}",
            match f {
                OperandField::A => "A",
                OperandField::B => "B",
                OperandField::C => "C",
                OperandField::D => "D",
            }
        ),
        HoleValue::FrameBytes => "_JIT_FRAME".into(),
        HoleValue::Pc => "_JIT_PC".into(),
        HoleValue::Func => "_JIT_FUNC".into(),
        HoleValue::Continue => "_JIT_CONTINUE".into(),
        HoleValue::Target => "_JIT_TARGET".into(),
        HoleValue::Callee => "_JIT_CALLEE".into(),
        HoleValue::Helper(i) => stencils::helpers::HELPER_NAMES[i as usize].into(),
        HoleValue::Data => unreachable!("data is not a symbol"),
    }
}

/// Every symbol a stencil may reference, with its chosen value, for code at
/// `code_base`.
pub fn chosen_values(code_base: u64) -> Vec<(String, u64)> {
    let mut names: Vec<String> = [
        "_JIT_A",
        "_JIT_B",
        "_JIT_C",
        "_JIT_D",
        "_JIT_FRAME",
        "_JIT_PC",
        "_JIT_FUNC",
        "_JIT_CONTINUE",
        "_JIT_TARGET",
        "_JIT_CALLEE",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    names.extend(
        stencils::helpers::HELPER_NAMES
            .iter()
            .map(|s| s.to_string()),
    );
    // 0x48 apart, so no value is a small offset of another.
    names
        .into_iter()
        .enumerate()
        .map(|(i, n)| (n, code_base + VALUES_ABOVE_CODE + 0x48 * i as u64))
        .collect()
}

/// A linker of Debian's `lld` package, or a failure saying how to get it.
pub fn tool(names: &[&str]) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    // ld64.lld is installed beside the other LLVM tools rather than on PATH.
    if let Ok(entries) = std::fs::read_dir("/usr/lib") {
        let mut llvm: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("llvm-"))
            })
            .map(|p| p.join("bin"))
            .collect();
        llvm.sort();
        dirs.extend(llvm.into_iter().rev());
    }
    for dir in &dirs {
        for name in names {
            let path = dir.join(name);
            if path.is_file() {
                return path;
            }
        }
    }
    panic!(
        "{} not found (looked in PATH and /usr/lib/llvm-*/bin): the linker cross-check needs \
         Debian's lld package: `apt-get install lld`",
        names[0]
    )
}

pub fn run(mut cmd: Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An object defining each chosen symbol as an absolute value (and 0 for any other
/// undefined symbol of `stencils`, such as MSVC's `_fltused`, which no stencil uses).
fn symbols_object(
    format: object::BinaryFormat,
    architecture: object::Architecture,
    stencils_object: &[u8],
    values: &[(String, u64)],
) -> Vec<u8> {
    use object::write::{Object as WriteObject, Symbol, SymbolSection};
    let input = object::File::parse(stencils_object).unwrap();
    let mut all: Vec<(String, u64)> = values.to_vec();
    let prefix = if format == object::BinaryFormat::MachO {
        "_"
    } else {
        ""
    };
    for sym in input.symbols().filter(|s| s.is_undefined()) {
        let name = sym.name().unwrap();
        let name = name.strip_prefix(prefix).unwrap_or(name);
        if !all.iter().any(|(n, _)| n == name) {
            all.push((name.to_string(), 0));
        }
    }
    let mut obj = WriteObject::new(format, architecture, object::Endianness::Little);
    for (name, value) in all {
        obj.add_symbol(Symbol {
            // The writer adds the format's prefix (Mach-O's `_`).
            name: name.into_bytes(),
            value,
            size: 0,
            kind: object::SymbolKind::Data,
            scope: object::SymbolScope::Linkage,
            weak: false,
            section: SymbolSection::Absolute,
            flags: object::SymbolFlags::None,
        });
    }
    obj.write().unwrap()
}

/// Links `object` for `format` with its code at `code_base` in `dir`, entered at the
/// function `entry` (unprefixed) where the format needs an entry; returns the linked
/// image.
pub fn link(
    format: Format,
    code_base: u64,
    dir: &Path,
    object: &Path,
    values: &[(String, u64)],
    entry: &str,
) -> Vec<u8> {
    let bytes = std::fs::read(object).unwrap();
    let architecture = object::File::parse(&*bytes).unwrap().architecture();
    let out = dir.join("linked");
    match format {
        Format::Elf(emulation) => {
            let mut cmd = Command::new(tool(&["ld.lld"]));
            cmd.args(["-m", emulation])
                .arg("--no-relax")
                .arg("-e")
                .arg("0")
                .arg(format!("--section-start=.text={code_base:#x}"))
                .arg("-o")
                .arg(&out)
                .arg(object);
            for (name, value) in values {
                cmd.arg(format!("--defsym={name}={value:#x}"));
            }
            run(cmd);
        }
        Format::MachO(arch) => {
            let symbols = dir.join("symbols.o");
            std::fs::write(
                &symbols,
                symbols_object(object::BinaryFormat::MachO, architecture, &bytes, values),
            )
            .unwrap();
            let mut cmd = Command::new(tool(&["ld64.lld", "ld64.lld-14"]));
            cmd.args(["-arch", arch, "-platform_version", "macos", "11.0", "11.0"]);
            if arch == "arm64" {
                // `b`/`bl` reach ±128 MiB and the values lie above 2^32 (no `movz`).
                cmd.args(["-execute", "-e"]).arg(format!("_{entry}"));
            } else {
                cmd.arg("-dylib");
            }
            cmd.arg("-o").arg(&out).arg(object).arg(&symbols);
            run(cmd);
        }
        Format::Coff(machine) => {
            let symbols = dir.join("symbols.obj");
            std::fs::write(
                &symbols,
                symbols_object(object::BinaryFormat::Coff, architecture, &bytes, values),
            )
            .unwrap();
            let mut cmd = Command::new(tool(&["lld-link"]));
            cmd.arg(format!("/machine:{machine}"))
                .arg(format!("/base:{code_base:#x}"))
                .args([
                    "/fixed",
                    "/nodefaultlib",
                    "/subsystem:console",
                    "/debug:symtab",
                ])
                .arg(format!("/entry:{entry}"))
                .arg(format!("/out:{}", out.display()))
                .arg(object)
                .arg(&symbols);
            run(cmd);
        }
    }
    std::fs::read(&out).unwrap()
}

/// `len` bytes of the linked image at `address`.
pub fn bytes_at<'a>(image: &'a object::File<'a>, address: u64, len: usize) -> &'a [u8] {
    for section in image.sections() {
        let (start, size) = (section.address(), section.size());
        if address >= start && address + len as u64 <= start + size {
            let data = section.data().unwrap();
            let at = (address - start) as usize;
            return &data[at..at + len];
        }
    }
    panic!("no section holds {address:#x}..+{len}")
}

/// The GOT slots of a linked image (Mach-O `__got`, ELF `.got`) by the value they hold.
fn got_slots(image: &object::File<'_>) -> HashMap<u64, u64> {
    let mut slots = HashMap::new();
    let is_got = |s: &object::Section<'_, '_>| matches!(s.name(), Ok("__got" | ".got"));
    for section in image.sections().filter(is_got) {
        for (i, slot) in section.data().unwrap().chunks(8).enumerate() {
            let value = u64::from_le_bytes(slot.try_into().unwrap());
            slots.insert(value, section.address() + 8 * i as u64);
        }
    }
    slots
}

/// Compares every stencil of `set` with its linked copy; returns the kinds compared.
pub fn compare(
    format: Format,
    set: &OwnedStencilSet,
    object_bytes: &[u8],
    image_bytes: &[u8],
    values: &[(String, u64)],
) -> BTreeSet<String> {
    let object = object::File::parse(object_bytes).unwrap();
    let image = object::File::parse(image_bytes).unwrap();
    let prefix = if matches!(format, Format::MachO(_)) {
        "_"
    } else {
        ""
    };
    let symbols: HashMap<String, u64> = image
        .symbols()
        .filter_map(|s| Some((s.name().ok()?.to_string(), s.address())))
        .collect();
    let value_of: HashMap<&str, u64> = values.iter().map(|(n, v)| (n.as_str(), *v)).collect();
    let got = got_slots(&image);
    // ld64.lld gives a symbol a GOT slot when an instruction other than a load reads it
    // through the GOT, and then keeps that symbol's GOT loads.
    let has_slot: HashSet<HoleValue> = set
        .stencils
        .iter()
        .flat_map(|s| &s.holes)
        .filter(|h| h.kind == RelocKind::X86_64GotPc32)
        .map(|h| h.value)
        .collect();

    let mut compared = BTreeSet::new();
    for stencil in &set.stencils {
        let name = format!("{prefix}{}", stencil.name);
        let &address = symbols
            .get(&name)
            .unwrap_or_else(|| panic!("{}: `{name}` not in the linked image", set.target));
        let unlinked = code_in_object(&object, &name, stencil.code.len());
        let linked = as_harvested(
            stencil,
            unlinked,
            bytes_at(&image, address, stencil.code.len()),
            address,
        );
        let linked = linked.as_slice();
        let mut ours = stencil.code.clone();
        for hole in &stencil.holes {
            let at = hole.offset as usize;
            let place = address + hole.offset as u64;
            let how = patch_hole(
                format, stencil, hole, &mut ours, place, linked, &image, &value_of, &got, &has_slot,
            );
            compared.insert(format!("{:?}{how}", hole.kind));
            assert_eq!(
                &ours[at..at + hole.kind.width()],
                &linked[at..at + hole.kind.width()],
                "{}: {} hole {hole:?} at {place:#x}{how}",
                set.target,
                stencil.name
            );
        }
        assert_eq!(
            ours, linked,
            "{}: {} differs from the linked bytes outside its holes",
            set.target, stencil.name
        );
    }
    compared
}

/// The first `len` bytes of the function `name` in the unlinked object.
fn code_in_object<'a>(object: &'a object::File<'a>, name: &str, len: usize) -> &'a [u8] {
    let symbol = object
        .symbols()
        .find(|s| s.name() == Ok(name))
        .unwrap_or_else(|| panic!("`{name}` not in the stencils object"));
    let section = object
        .section_by_index(symbol.section_index().unwrap())
        .unwrap();
    let at = (symbol.address() - section.address()) as usize;
    &section.data().unwrap()[at..at + len]
}

/// The linked bytes of `stencil`, linked at `address`, with the rewrite the harvester
/// made of the stencil's code applied to them too. The only one is aarch64's
/// continuation-last rewrite (`backend/aarch64.rs`): a final `b.cond +8; b _JIT_CONTINUE;
/// b X` becomes `b.!cond +8; b X; b _JIT_CONTINUE`, which the object, and so the
/// linker, does not have. Here the condition is inverted as in the stencil and the two
/// linked `b`s swap places, each keeping the absolute address it jumps to.
fn as_harvested(stencil: &OwnedStencil, unlinked: &[u8], linked: &[u8], address: u64) -> Vec<u8> {
    let mut view = linked.to_vec();
    if unlinked == stencil.code.as_slice() {
        return view;
    }
    let n = unlinked.len();
    let differs: Vec<usize> = (0..n).filter(|&i| unlinked[i] != stencil.code[i]).collect();
    assert!(
        n >= 12 && differs.iter().all(|&i| (n - 12..n - 8).contains(&i)),
        "{}: the harvested code differs from the object's at bytes {differs:?}, which is \
         not the continuation-last rewrite",
        stencil.name
    );
    let word = |v: &[u8], at: usize| u32::from_le_bytes(v[at..at + 4].try_into().unwrap());
    // The `b.cond` has no relocation: the linker kept the object's, the stencil inverts it.
    assert_eq!(word(linked, n - 12), word(unlinked, n - 12));
    view[n - 12..n - 8].copy_from_slice(&stencil.code[n - 12..n - 8]);
    let is_b = |insn: u32| insn & 0xFC00_0000 == 0x1400_0000;
    let target = |at: usize| {
        let insn = word(linked, at);
        assert!(is_b(insn), "{}: no `b` at +{at:#x}", stencil.name);
        let imm26 = ((insn << 6) as i32 >> 6) as i64;
        (address + at as u64).wrapping_add_signed(4 * imm26)
    };
    let (first, second) = (target(n - 8), target(n - 4));
    for (at, to) in [(n - 8, second), (n - 4, first)] {
        let delta = to.wrapping_sub(address + at as u64) as i64 / 4;
        let insn = 0x1400_0000 | (delta as u32 & 0x03FF_FFFF);
        view[at..at + 4].copy_from_slice(&insn.to_le_bytes());
    }
    view
}

/// Patches one hole of `stencil` into `ours` the way the linker resolved it; returns a
/// note naming the form compared when a kind has several.
#[allow(clippy::too_many_arguments)]
fn patch_hole(
    format: Format,
    stencil: &OwnedStencil,
    hole: &stencil_table::Hole,
    ours: &mut [u8],
    place: u64,
    linked: &[u8],
    image: &object::File<'_>,
    value_of: &HashMap<&str, u64>,
    got: &HashMap<u64, u64>,
    has_slot: &HashSet<HoleValue>,
) -> &'static str {
    let at = hole.offset as usize;
    if hole.value == HoleValue::Data {
        // Where the linker put the constant, from the PC-relative field it wrote (the
        // only form of data hole the harvested tables have).
        assert_eq!(
            hole.kind,
            RelocKind::X86_64Pc32,
            "{}: {hole:?}: this test reads a data hole's address only from an x86-64 \
             PC32 field",
            stencil.name
        );
        let field = i32::from_le_bytes(linked[at..at + 4].try_into().unwrap()) as i64;
        let data_address = (place as i64 + field - hole.addend) as u64;
        let within = (hole.addend + 4) as usize;
        let len = 8.min(stencil.data.len() - within);
        assert_eq!(
            bytes_at(image, data_address + within as u64, len),
            &stencil.data[within..within + len],
            "{}: the linked constant differs from the stencil's data",
            stencil.name
        );
        jit::testing::apply(hole.kind, ours, at, data_address, hole.addend, place).unwrap();
        return "";
    }
    let symbol = hole_symbol(hole.value);
    let value = value_of[symbol.as_str()];
    let through_got = |ours: &mut [u8]| {
        let slot = *got
            .get(&value)
            .unwrap_or_else(|| panic!("no GOT slot of the linker holds {symbol}"));
        jit::testing::apply_through_got(hole.kind, ours, at, slot, hole.addend, place).unwrap();
    };
    match hole.kind {
        RelocKind::X86_64GotPc32 => {
            through_got(ours);
            ""
        }
        RelocKind::X86_64GotLoadPc32 if has_slot.contains(&hole.value) => {
            through_got(ours);
            " (GOT slot)"
        }
        RelocKind::X86_64GotLoadPc32 => {
            jit::testing::apply(hole.kind, ours, at, value, hole.addend, place).unwrap();
            assert_eq!(ours[at - 2], 0x8D, "{}: not relaxed to lea", stencil.name);
            " (relaxed to lea by both)"
        }
        // `ld.lld --no-relax` keeps the GOT load.
        RelocKind::Aarch64GotPage21 | RelocKind::Aarch64GotLo12
            if matches!(format, Format::Elf(_)) =>
        {
            through_got(ours);
            " (GOT slot)"
        }
        // ld64.lld turns every arm64 GOT load of an absolute symbol into `adrp` + `add`
        // of the symbol itself (no switch keeps the load), which is what the patcher
        // does with a value above 2^32 in reach of the code.
        RelocKind::Aarch64GotPage21 | RelocKind::Aarch64GotLo12 => {
            jit::testing::apply(hole.kind, ours, at, value, hole.addend, place).unwrap();
            let insn = u32::from_le_bytes(ours[at..at + 4].try_into().unwrap());
            let (mask, want) = match hole.kind {
                RelocKind::Aarch64GotPage21 => (0x9F00_0000, 0x9000_0000),
                _ => (0xFFC0_0000, 0x9100_0000),
            };
            assert_eq!(
                insn & mask,
                want,
                "{}: not relaxed to adrp + add",
                stencil.name
            );
            " (relaxed to adrp + add by both)"
        }
        RelocKind::Aarch64AdrpAddPage21 => {
            jit::testing::apply(hole.kind, ours, at, value, hole.addend, place).unwrap();
            let insn = u32::from_le_bytes(ours[at..at + 4].try_into().unwrap());
            assert_eq!(
                insn & 0x9F00_0000,
                0x9000_0000,
                "{}: the pair was relaxed",
                stencil.name
            );
            ""
        }
        _ => {
            jit::testing::apply(hole.kind, ours, at, value, hole.addend, place).unwrap();
            ""
        }
    }
}
