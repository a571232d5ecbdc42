//! Reading a `.vm3` file into a verified program, with every error reported.

use crate::Failure;
use std::path::Path;
use vm3::VerifiedProgram;

/// Reads, assembles and verifies `path`. Assembly errors print as the assembler formats
/// them (`file:line:col: error: ...`); verifier errors one per line, prefixed with the
/// file name.
pub fn load(path: &Path) -> Result<VerifiedProgram, Failure> {
    let name = path.display().to_string();
    let source = std::fs::read(path)
        .map_err(|e| Failure::input(format!("error: cannot read {name}: {e}")))?;
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
