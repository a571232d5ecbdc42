//! Collects every `#[stencil]` function of `src/ops/*.rs` into the opcode registry:
//! the `Opcode` enum, the `OPCODES` metadata table and the interpreter's `dispatch`.
//! Adding an opcode is writing the function and appending its name to `opcodes.txt`,
//! which gives every opcode its number for good (stored bytecode holds the numbers).

use std::fmt::Write as _;
use std::path::Path;

// Shared with tests/opcode_numbers.rs, which checks its errors.
#[path = "build/numbering.rs"]
mod numbering;
use numbering::{number_opcodes, Found, NUMBERS};

fn main() {
    println!("cargo::rustc-check-cfg=cfg(stencil_jit)");
    println!("cargo::rerun-if-changed=src/ops");
    println!("cargo::rerun-if-changed=src/ops.rs");
    println!("cargo::rerun-if-changed={NUMBERS}");
    println!("cargo::rerun-if-changed=build");
    let ops_dir = Path::new("src/ops");
    let mut files: Vec<_> = std::fs::read_dir(ops_dir)
        .expect("read src/ops")
        .map(|e| e.expect("read src/ops entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .collect();
    files.sort();

    let mut found = Vec::new();
    for path in &files {
        println!("cargo::rerun-if-changed={}", path.display());
        let module = path.file_stem().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(path).expect("read stencil source");
        let file = match syn::parse_file(&text) {
            Ok(f) => f,
            // rustc reports the syntax error itself, with a better message.
            Err(_) => continue,
        };
        collect(&file.items, &module, &mut found);
    }

    // Problems an author can cause are reported as `cargo::error`s that say what to do,
    // rather than as the compile errors they would cause inside the generated file.
    let mut errors = undeclared_modules(&files);
    let numbers = std::fs::read_to_string(NUMBERS).expect("read opcodes.txt");
    let opcodes = match number_opcodes(&found, &numbers) {
        Ok(opcodes) => opcodes,
        Err(e) => {
            errors.extend(e);
            Vec::new()
        }
    };
    if !errors.is_empty() {
        for e in errors {
            println!("cargo::error={e}");
        }
        return;
    }
    let internal: Vec<&Found> = found.iter().filter(|f| f.internal).collect();
    assert!(
        opcodes.len() <= 256,
        "more than 256 opcodes do not fit the 8-bit code field"
    );

    let mut out = String::new();
    writeln!(
        out,
        "/// Number of opcodes.\npub const OPCODE_COUNT: usize = {};",
        opcodes.len()
    )
    .unwrap();
    out.push_str("/// Every opcode, numbered by its line in `stencils/opcodes.txt`.\n");
    out.push_str("#[repr(u8)]\n#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]\npub enum Opcode {\n");
    for (i, op) in opcodes.iter().enumerate() {
        writeln!(out, "    {} = {},", op.name, i).unwrap();
    }
    out.push_str("}\n\nimpl Opcode {\n    /// All opcodes in code order.\n    pub const ALL: [Opcode; OPCODE_COUNT] = [");
    for op in &opcodes {
        write!(out, "Opcode::{}, ", op.name).unwrap();
    }
    out.push_str("];\n\n    /// The opcode with this code byte.\n    pub const fn from_u8(code: u8) -> Option<Opcode> {\n        if (code as usize) < OPCODE_COUNT { Some(Opcode::ALL[code as usize]) } else { None }\n    }\n\n");
    out.push_str("    /// The opcode's metadata.\n    pub const fn info(self) -> &'static OpInfo {\n        &OPCODES[self as usize]\n    }\n\n");
    out.push_str("    /// The mnemonic.\n    pub const fn name(self) -> &'static str {\n        self.info().name\n    }\n\n");
    out.push_str("    /// The symbol of the opcode's stencil in the stencil object.\n    pub const fn stencil_symbol(self) -> &'static str {\n        match self {\n");
    for op in &opcodes {
        writeln!(
            out,
            "            Opcode::{0} => \"__stencil_{0}\",",
            op.name
        )
        .unwrap();
    }
    out.push_str("        }\n    }\n}\n\n");
    out.push_str("/// Metadata of every opcode, indexed by code.\npub static OPCODES: [OpInfo; OPCODE_COUNT] = [\n");
    for op in &opcodes {
        writeln!(out, "    crate::ops::{}::__OPINFO_{},", op.module, op.name).unwrap();
    }
    out.push_str("];\n\n/// Symbols of the stencils the JIT uses that are not opcodes.\npub const INTERNAL_STENCILS: &[&str] = &[");
    for op in &internal {
        write!(out, "\"__stencil_{}\", ", op.name).unwrap();
    }
    out.push_str("];\n\n/// The internal stencils, numbered in the order of `INTERNAL_STENCILS` (their table\n/// index is `OPCODE_COUNT` plus this).\n#[derive(Clone, Copy, Debug, PartialEq, Eq)]\npub enum Internal {\n");
    for (i, op) in internal.iter().enumerate() {
        writeln!(out, "    {} = {},", op.name, i).unwrap();
    }
    out.push_str("}\n\n/// Metadata of the internal stencils, in the order of `INTERNAL_STENCILS`.\npub static INTERNAL_INFOS: [OpInfo; ");
    write!(out, "{}] = [", internal.len()).unwrap();
    for op in &internal {
        write!(out, "crate::ops::{}::__OPINFO_{}, ", op.module, op.name).unwrap();
    }
    out.push_str("];\n\n");
    out.push_str("/// Runs one instruction in tier `T`: the interpreter's whole decoder. An unknown\n/// code cannot get here past the verifier; it is answered with `Flow::Unwind`, which\n/// no handler returns, so the interpreter can report it.\n");
    out.push_str("#[inline(always)]\npub fn dispatch<T: Tier>(t: &mut T, inst: Inst) -> Flow {\n    match inst.code {\n");
    for (i, op) in opcodes.iter().enumerate() {
        writeln!(
            out,
            "        {} => crate::ops::{}::__interp_{}(t, inst),",
            i, op.module, op.name
        )
        .unwrap();
    }
    out.push_str("        _ => Flow::Unwind,\n    }\n}\n");

    let dest = Path::new(&std::env::var("OUT_DIR").unwrap()).join("registry.rs");
    std::fs::write(dest, out).expect("write registry.rs");
}

/// Every file of `src/ops/` must be a module of `src/ops.rs`, or the generated registry
/// refers to a module that does not exist (an error inside a generated file).
fn undeclared_modules(files: &[std::path::PathBuf]) -> Vec<String> {
    let ops = std::fs::read_to_string("src/ops.rs").expect("read src/ops.rs");
    let declared: Vec<String> = match syn::parse_file(&ops) {
        Ok(file) => file
            .items
            .iter()
            .filter_map(|item| match item {
                syn::Item::Mod(m) => Some(m.ident.to_string()),
                _ => None,
            })
            .collect(),
        // rustc reports the syntax error itself.
        Err(_) => return Vec::new(),
    };
    files
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .filter(|m| !declared.contains(m))
        .map(|m| format!("stencils/src/ops/{m}.rs is not a module: add `pub mod {m};` to stencils/src/ops.rs"))
        .collect()
}

fn collect(items: &[syn::Item], module: &str, found: &mut Vec<Found>) {
    for item in items {
        if let syn::Item::Fn(f) = item {
            for attr in &f.attrs {
                if attr.path().is_ident("stencil") {
                    let internal = match &attr.meta {
                        syn::Meta::List(list) => list.tokens.to_string().contains("internal"),
                        _ => false,
                    };
                    found.push(Found {
                        module: module.to_string(),
                        name: f.sig.ident.to_string(),
                        internal,
                    });
                }
            }
        } else if let syn::Item::Macro(m) = item {
            if m.mac.path.is_ident("macro_rules") {
                continue;
            }
            // Stencils generated by a local `macro_rules!` invocation: each entry is
            // `... Name => ...;` or `... Name, ...;` after optional doc comments.
            collect_macro(&m.mac, module, found);
        }
    }
}

/// Finds the opcode names an invocation of a local helper macro (`binary! { ... }`)
/// defines: the first identifier of each `;`-separated entry after doc comments.
fn collect_macro(mac: &syn::Macro, module: &str, found: &mut Vec<Found>) {
    use proc_macro2_like::*;
    let text = mac.tokens.to_string();
    for entry in split_entries(&text) {
        if let Some(name) = first_ident(&entry) {
            found.push(Found {
                module: module.to_string(),
                name,
                internal: false,
            });
        }
    }
}

mod proc_macro2_like {
    /// Splits a macro body on `;` at nesting depth zero.
    pub fn split_entries(text: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut depth = 0i32;
        let mut cur = String::new();
        for ch in text.chars() {
            match ch {
                '(' | '[' | '{' => depth += 1,
                ')' | ']' | '}' => depth -= 1,
                _ => {}
            }
            if ch == ';' && depth == 0 {
                out.push(std::mem::take(&mut cur));
            } else {
                cur.push(ch);
            }
        }
        if !cur.trim().is_empty() {
            out.push(cur);
        }
        out
    }

    /// The first identifier outside `#[...]` attributes (doc comments arrive as
    /// `# [doc = "..."]`).
    pub fn first_ident(entry: &str) -> Option<String> {
        let mut rest = entry.trim();
        while let Some(after) = rest.strip_prefix('#') {
            let after = after.trim_start();
            let close = matching_bracket(after)?;
            rest = after[close + 1..].trim_start();
        }
        let ident: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if ident.is_empty() {
            None
        } else {
            Some(ident)
        }
    }

    fn matching_bracket(s: &str) -> Option<usize> {
        let mut depth = 0;
        let mut in_str = false;
        let mut prev = ' ';
        for (i, ch) in s.char_indices() {
            if in_str {
                if ch == '"' && prev != '\\' {
                    in_str = false;
                }
            } else if ch == '"' {
                in_str = true;
            } else if ch == '[' {
                depth += 1;
            } else if ch == ']' {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            prev = ch;
        }
        None
    }
}
