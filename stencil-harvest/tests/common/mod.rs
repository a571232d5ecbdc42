//! What the tests of real stencil tables share: the checked-in listing of a target.

use std::path::Path;

use stencil_table::OwnedStencilSet;

/// A reviewable listing of a stencil table: per stencil its code in hex, its data and
/// its holes. Checked in per target, as CPython does, so a change in what rustc emits
/// (a toolchain bump, an edited stencil) shows up as a diff to read, not as a surprise.
pub fn listing(set: &OwnedStencilSet) -> String {
    use std::fmt::Write as _;
    let mut out = format!("# stencils for {}\n", set.target);
    for s in &set.stencils {
        writeln!(
            out,
            "\n{} ({} bytes, tail jump {})",
            s.name,
            s.code.len(),
            s.tail_jump
        )
        .unwrap();
        for row in s.code.chunks(16) {
            let hex: Vec<String> = row.iter().map(|b| format!("{b:02x}")).collect();
            writeln!(out, "  code {}", hex.join(" ")).unwrap();
        }
        for row in s.data.chunks(16) {
            let hex: Vec<String> = row.iter().map(|b| format!("{b:02x}")).collect();
            writeln!(out, "  data {} (align {})", hex.join(" "), s.data_align).unwrap();
        }
        for h in &s.holes {
            writeln!(
                out,
                "  hole +{:#x} {:?} {:?} {:+}",
                h.offset, h.kind, h.value, h.addend
            )
            .unwrap();
        }
    }
    out
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
