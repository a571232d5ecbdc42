//! The perf map: where `perf` finds the names of JIT-compiled code.
//!
//! `perf report` names an address in anonymous executable memory by looking it up in
//! `/tmp/perf-PID.map`, a text file with one line per symbol: `START SIZE NAME`, start
//! and size in hex (the format documented in the Linux tree,
//! `tools/perf/Documentation/jit-interface.txt`). perf reads the file when it reports,
//! so it only has to be complete by then: each compile appends the lines of its
//! functions, and a region's lines stay after it is freed, as in every JIT that writes
//! the file (CPython's `-X perf`, V8's `--perf-basic-prof`).

use crate::compile::Compiled;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;
use vm3::VerifiedProgram;

/// The file of this process. perf looks in `/tmp` whatever `TMPDIR` says.
pub fn path() -> PathBuf {
    PathBuf::from(format!("/tmp/perf-{}.map", std::process::id()))
}

/// One compile's lines are written by one `write` call on a file opened for appending,
/// under this lock, so lines of compiles on other threads never interleave with them.
static APPEND: Mutex<()> = Mutex::new(());

/// Appends one line per compiled function of `program`: its code from its entry to the
/// end of its last instruction.
pub fn append(program: &VerifiedProgram, compiled: &Compiled) -> std::io::Result<()> {
    let base = compiled.region.address();
    let mut lines = String::new();
    for (function, code) in program.functions.iter().zip(&compiled.functions) {
        if code.insts.is_empty() {
            // Outside a unit compiled alone (tier-up): no code of its own here.
            continue;
        }
        let range = code.range();
        let start = base + range.start as u64;
        let size = range.len();
        // A name is one line: perf reads the rest of the line as the name.
        let name = function.name.replace(['\n', '\r'], " ");
        lines.push_str(&format!("{start:x} {size:x} {name}\n"));
    }
    let _guard = APPEND
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path())?
        .write_all(lines.as_bytes())
}
