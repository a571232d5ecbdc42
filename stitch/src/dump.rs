//! `stitch dump`: each function's prologue, then each bytecode instruction followed by
//! the machine code the JIT copied and patched for it, at its real address.

use crate::{load, run, Failure};
use std::fmt::Write;
use std::ops::Range;
use std::path::Path;
use stencil_table::Isa;

pub fn dump(file: &Path, entry: Option<&str>, max_file_bytes: u64) -> Result<(), Failure> {
    let program = load::load(file, max_file_bytes)?;
    let funcs: Vec<usize> = match entry {
        Some(name) => vec![load::function_index(&program, name, file)?],
        None => (0..program.functions.len()).collect(),
    };
    let module = run::compile(&program)?;
    let compiled = jit::testing::compiled_code(&module)
        .ok_or_else(|| Failure::Internal("internal error: the JIT compiled nothing".into()))?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "; {}: {} bytes of machine code at {:#x} ({})",
        file.display(),
        compiled.code_len(),
        compiled.region_address(),
        std::env::consts::ARCH
    );
    if HOST_ISA.is_none() {
        let _ = writeln!(
            out,
            "; no disassembler for {}: machine code is shown as hex bytes",
            std::env::consts::ARCH
        );
    }
    for f in funcs {
        let func = &program.functions[f];
        let code = compiled.function_code(f);
        let params: Vec<&str> = func.params.iter().map(|b| b.name()).collect();
        let _ = writeln!(
            out,
            "\nfunc {}({}) -> {}",
            func.name,
            params.join(", "),
            func.result.name()
        );
        let cached = compiled.cached_registers(f);
        let in_machine = |bank: vm3::Bank, reg: usize| {
            cached
                .iter()
                .find(|c| c.0 == bank && c.1 == reg)
                .map(|c| c.2)
        };
        let described: Vec<String> = cached
            .iter()
            .map(|(bank, reg, name)| format!("{}{reg}={name}", bank.prefix()))
            .collect();
        let _ = writeln!(
            out,
            "  ; in machine registers: {}",
            if described.is_empty() {
                "none".to_string()
            } else {
                described.join(" ")
            }
        );
        let _ = writeln!(out, "  prologue:");
        disassemble(&mut out, compiled, code.prologue.clone());
        for (index, range) in compiled.inst_code(f).iter().enumerate() {
            for (_, label) in func.labels.iter().filter(|(at, _)| *at as usize == index) {
                let _ = writeln!(out, "{label}:");
            }
            // Where each register operand lives: a machine register, or `[frame]`.
            let mut places = Vec::new();
            jit::testing::reg_uses(&program, func.code[index], |u| {
                let place = in_machine(u.bank, u.reg).unwrap_or("[frame]");
                let text = format!("{}{}={place}", u.bank.prefix(), u.reg);
                if !places.contains(&text) {
                    places.push(text);
                }
            });
            let inst = vm3::asm::format_inst(&program, func, index);
            if places.is_empty() {
                let _ = writeln!(out, "  {index:4}: {inst}");
            } else {
                let _ = writeln!(out, "  {index:4}: {inst:<40} ; {}", places.join(" "));
            }
            disassemble(&mut out, compiled, range.clone());
        }
        let cold = code.cold();
        if !cold.is_empty() {
            let _ = writeln!(out, "  out of line (the depth-limit trap of each call):");
            disassemble(&mut out, compiled, cold);
        }
        let _ = writeln!(out, "end");
    }
    crate::emit(format_args!("{out}"));
    Ok(())
}

/// Appends the code in `range` of the region, one instruction per line.
fn disassemble(out: &mut String, compiled: &jit::testing::CompiledCode, range: Range<usize>) {
    let bytes = compiled.region_bytes().get(range.clone()).unwrap_or(&[]);
    let address = compiled.region_address() + range.start as u64;
    if bytes.is_empty() {
        let _ = writeln!(out, "        (no code: falls through)");
        return;
    }
    match HOST_ISA {
        Some(isa) => write_instructions(out, isa, bytes, address),
        None => {
            for (k, chunk) in bytes.chunks(16).enumerate() {
                let _ = writeln!(
                    out,
                    "        {:016x}  {}",
                    address + 16 * k as u64,
                    hex(chunk)
                );
            }
        }
    }
}

/// The instruction set of the code the JIT makes here, if it can be disassembled.
const HOST_ISA: Option<Isa> = if cfg!(target_arch = "x86_64") {
    Some(Isa::X86_64)
} else if cfg!(target_arch = "aarch64") {
    Some(Isa::Aarch64)
} else {
    None
};

/// One line per instruction: address, encoding, assembly.
fn write_instructions(out: &mut String, isa: Isa, bytes: &[u8], address: u64) {
    for line in stencil_table::disasm::disassemble(isa, bytes, address) {
        let encoding = &bytes[line.offset..line.offset + line.len];
        let _ = writeln!(
            out,
            "        {:016x}  {:<30} {}",
            address + line.offset as u64,
            hex(encoding),
            line.text
        );
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The code of an aarch64 host is disassembled too (tested here on any host; the
    /// CLI test runs on the host's own code).
    #[test]
    fn aarch64_code_is_disassembled() {
        let mut out = String::new();
        // ldr x8, [x1, #8]; b .+8
        write_instructions(
            &mut out,
            Isa::Aarch64,
            &[0x28, 0x04, 0x40, 0xf9, 0x02, 0x00, 0x00, 0x14],
            0x1000,
        );
        let lines: Vec<&str> = out.lines().map(str::trim).collect();
        assert_eq!(lines.len(), 2, "{out}");
        assert!(
            lines[0].starts_with("0000000000001000  28 04 40 f9"),
            "{out}"
        );
        assert!(lines[0].ends_with("ldr x8, [x1, #0x8]"), "{out}");
        assert!(
            lines[1].starts_with("0000000000001004  02 00 00 14"),
            "{out}"
        );
        assert!(lines[1].ends_with("b $+0x8"), "{out}");
    }
}
