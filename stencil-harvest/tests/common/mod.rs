//! What the tests of real stencil tables share: the checked-in listing of a target.

use std::path::Path;

use stencil_table::disasm::{disassemble, Line};
use stencil_table::{Hole, Isa, OwnedStencil, OwnedStencilSet};

/// A reviewable listing of a stencil table: per stencil its code disassembled, with the
/// bytes of each hole in brackets and what fills it at the end of the line, then its
/// data. Checked in per target, as CPython does, so a change in what rustc emits (a
/// toolchain bump, an edited stencil) shows up as a diff to read, not as a surprise.
pub fn listing(set: &OwnedStencilSet) -> String {
    use std::fmt::Write as _;
    let mut out = format!("# stencils for {}\n", set.target);
    let (bases, variants): (Vec<_>, Vec<_>) = set
        .stencils
        .iter()
        .partition(|s| base_name(&s.name) == s.name);
    for s in &bases {
        writeln!(
            out,
            "\n{} ({} bytes, tail jump {})",
            s.name,
            s.code.len(),
            s.tail_jump
        )
        .unwrap();
        let lines = disassemble(isa_of(&set.target), &s.code, 0);
        for line in &lines {
            out.push_str(&instruction_line(s, line));
        }
        // A hole no instruction holds (there should be none) still shows.
        for h in s.holes.iter().filter(|h| {
            !lines
                .iter()
                .any(|l| (l.offset..l.offset + l.len).contains(&(h.offset as usize)))
        }) {
            writeln!(
                out,
                "  hole outside the code: +{:#x} {}",
                h.offset,
                hole_text(h)
            )
            .unwrap();
        }
        for row in s.data.chunks(16) {
            let hex: Vec<String> = row.iter().map(|b| format!("{b:02x}")).collect();
            writeln!(out, "  data {} (align {})", hex.join(" "), s.data_align).unwrap();
        }
    }
    // The register variants are thousands: one line per base stencil, with a hash of
    // every byte and hole, so a change shows which opcode's variants it touched.
    out.push_str("\n# register variants of each stencil: count, code bytes, holes, hash\n");
    for base in &bases {
        let of_base: Vec<_> = variants
            .iter()
            .filter(|v| base_name(&v.name) == base.name)
            .collect();
        if of_base.is_empty() {
            continue;
        }
        let mut hash = Fnv::default();
        for v in &of_base {
            hash.write(v.name.as_bytes());
            hash.write(&v.code);
            hash.write(&v.data);
            hash.write(&v.tail_jump.to_le_bytes());
            for h in &v.holes {
                hash.write(
                    format!("{:x}{:?}{:?}{}", h.offset, h.kind, h.value, h.addend).as_bytes(),
                );
            }
        }
        writeln!(
            out,
            "{} {} variants, {} bytes, {} holes, {:016x}",
            base.name,
            of_base.len(),
            of_base.iter().map(|v| v.code.len()).sum::<usize>(),
            of_base.iter().map(|v| v.holes.len()).sum::<usize>(),
            hash.0
        )
        .unwrap();
    }
    out
}

fn isa_of(target: &str) -> Isa {
    if target.starts_with("aarch64") {
        Isa::Aarch64
    } else {
        Isa::X86_64
    }
}

/// `  +0x0003  48 8b 86 [00 00 00 00]   mov rax,[rsi]   ; Operand(A) X86_64Abs32S +0`
fn instruction_line(s: &OwnedStencil, line: &Line) -> String {
    let range = line.offset..line.offset + line.len;
    let in_hole = |at: usize| {
        s.holes
            .iter()
            .any(|h| (h.offset as usize..h.offset as usize + h.kind.width()).contains(&at))
    };
    let mut hex = String::new();
    for at in range.clone() {
        // Brackets around each run of hole bytes within the instruction.
        let open = in_hole(at) && (at == range.start || !in_hole(at - 1));
        let close = in_hole(at) && (at + 1 == range.end || !in_hole(at + 1));
        if !hex.is_empty() {
            hex.push(' ');
        }
        if open {
            hex.push('[');
        }
        hex.push_str(&format!("{:02x}", s.code[at]));
        if close {
            hex.push(']');
        }
    }
    let holes: Vec<String> = s
        .holes
        .iter()
        .filter(|h| range.contains(&(h.offset as usize)))
        .map(hole_text)
        .collect();
    let mut text = format!("  +{:#06x}  {hex:<34} {}", line.offset, line.text);
    if !holes.is_empty() {
        text = format!("{text:<80} ; {}", holes.join("; "));
    }
    format!("{}\n", text.trim_end())
}

fn hole_text(h: &Hole) -> String {
    format!("{:?} {:?} {:+}", h.value, h.kind, h.addend)
}

/// The base stencil of a variant's symbol (`__stencil_AddI64__0m2` -> `__stencil_AddI64`).
fn base_name(name: &str) -> &str {
    let body = name.trim_start_matches("__stencil_");
    match body.find("__") {
        Some(at) => &name[..name.len() - body.len() + at],
        None => name,
    }
}

/// FNV-1a, 64 bits: a stable hash for the listing (std's hashers are not stable).
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ b as u64).wrapping_mul(0x100_0000_01b3);
        }
    }
}

/// Compares the listing of `set` with `tests/expected/<target>.txt`, or rewrites that
/// file when `STENCIL_BLESS` is set.
pub fn check_listing(set: &OwnedStencilSet) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/expected")
        .join(format!("{}.txt", set.target));
    let actual = listing(set);
    if std::env::var_os("STENCIL_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    if expected != actual {
        let first = expected
            .lines()
            .zip(actual.lines())
            .position(|(e, a)| e != a);
        let line = first.unwrap_or(expected.lines().count().min(actual.lines().count()));
        panic!(
            "the stencils differ from {} from line {} on:\n  expected: {:?}\n  actual:   {:?}\n\
             Read the change (objdump the stencil object); if it is intended, rerun with \
             STENCIL_BLESS=1 and commit the new listing.",
            path.display(),
            line + 1,
            expected.lines().nth(line),
            actual.lines().nth(line)
        );
    }
}
