//! Opcode numbers: `stencils/opcodes.txt` lists every opcode once, in code order, and
//! only ever grows at the end, so the number stored bytecode holds keeps its meaning.
//! Used by `build.rs` and by `tests/opcode_numbers.rs`.

/// A `#[stencil]` function `build.rs` found in `src/ops/<module>.rs`.
pub struct Found {
    pub module: String,
    pub name: String,
    pub internal: bool,
}

/// The registry of numbers, relative to the `stencils` package.
pub const NUMBERS: &str = "opcodes.txt";

/// The opcodes in code order: the order of their names in `opcodes.txt` (blank lines
/// and `#` comments aside). Every opcode must be there, once, and nothing else.
pub fn number_opcodes<'a>(
    found: &'a [Found],
    numbers: &str,
) -> Result<Vec<&'a Found>, Vec<String>> {
    let mut errors = Vec::new();
    let mut opcodes: Vec<&Found> = Vec::new();
    for (i, line) in numbers.lines().enumerate() {
        let name = line.trim();
        if name.is_empty() || name.starts_with('#') {
            continue;
        }
        let at = format!("stencils/{NUMBERS} line {}", i + 1);
        match found.iter().find(|f| f.name == name) {
            _ if opcodes.iter().any(|f| f.name == name) => {
                errors.push(format!("{at}: `{name}` is listed twice; an opcode has one number"))
            }
            Some(f) if f.internal => errors.push(format!(
                "{at}: `{name}` is `#[stencil(internal)]`, a JIT building block with no opcode number; remove the line"
            )),
            Some(f) => opcodes.push(f),
            None => errors.push(format!(
                "{at}: `{name}` is not a `#[stencil]` function of stencils/src/ops/; an opcode's number \
                 stays with it for good (bytecode stores it), so restore the opcode or, if it was \
                 renamed, rename this line"
            )),
        }
    }
    for f in found.iter().filter(|f| !f.internal) {
        if !opcodes.iter().any(|o| o.name == f.name) {
            errors.push(format!(
                "opcode `{}` (stencils/src/ops/{}.rs) has no number: append a line `{}` to the end \
                 of stencils/{NUMBERS} (never insert one: the numbers of stored bytecode must not change)",
                f.name, f.module, f.name
            ));
        }
    }
    if errors.is_empty() {
        Ok(opcodes)
    } else {
        Err(errors)
    }
}
