//! Reading a `.vm3` file into a verified program, with every error reported.

use crate::Failure;
use std::path::Path;
use vm3::VerifiedProgram;

/// The largest file `stitch` reads unless told otherwise (`--max-file-bytes`).
pub const DEFAULT_MAX_FILE_BYTES: u64 = 64 << 20;

/// Reads, assembles and verifies `path`, refusing a file of more than `max_bytes`
/// (reading stops there: `/dev/zero` is refused, not read until memory runs out).
/// Assembly errors print as the assembler formats them (`file:line:col: error: ...`);
/// verifier errors one per line, prefixed with the file name.
pub fn load(path: &Path, max_bytes: u64) -> Result<VerifiedProgram, Failure> {
    use std::io::Read;
    let name = path.display().to_string();
    let cannot_read = |e: std::io::Error| Failure::input(format!("error: cannot read {name}: {e}"));
    let mut source = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| {
            file.take(max_bytes.saturating_add(1))
                .read_to_end(&mut source)
        })
        .map_err(cannot_read)?;
    if source.len() as u64 > max_bytes {
        return Err(Failure::input(format!(
            "error: {name} is larger than {max_bytes} bytes; `--max-file-bytes` raises the limit"
        )));
    }
    let source = String::from_utf8(source).map_err(|e| {
        Failure::input(format!(
            "error: {name} is not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ))
    })?;
    assemble(&source, &name)
}

/// Assembles and verifies source text; `name` is the file name errors carry.
pub fn assemble(source: &str, name: &str) -> Result<VerifiedProgram, Failure> {
    let program = vm3::asm::assemble(source, name)
        .map_err(|errors| Failure::Input(errors.iter().map(|e| e.to_string()).collect()))?;
    program.verify().map_err(|errors| {
        Failure::Input(
            errors
                .iter()
                .map(|e| format!("{name}: error: {e}"))
                .collect(),
        )
    })
}

/// The index of function `entry`, or a message naming the functions there are.
pub fn function_index(
    program: &VerifiedProgram,
    entry: &str,
    file: &Path,
) -> Result<usize, Failure> {
    program.function_index(entry).ok_or_else(|| {
        let names: Vec<&str> = program.functions.iter().map(|f| f.name.as_str()).collect();
        Failure::input(format!(
            "error: {} has no function named `{entry}` (functions: {})",
            file.display(),
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        ))
    })
}
