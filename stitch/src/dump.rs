//! `stitch dump`: each function's prologue, then each bytecode instruction followed by
//! the machine code the JIT copied and patched for it, at its real address.

use crate::{load, run, Failure};
use std::fmt::Write;
use std::ops::Range;
use std::path::Path;

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
    if !cfg!(target_arch = "x86_64") {
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
    if cfg!(target_arch = "x86_64") {
        disassemble_x86_64(out, bytes, address);
    } else {
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

fn disassemble_x86_64(out: &mut String, bytes: &[u8], address: u64) {
    use iced_x86::{Decoder, DecoderOptions, Formatter, Instruction, IntelFormatter};
    let mut decoder = Decoder::with_ip(64, bytes, address, DecoderOptions::NONE);
    let mut formatter = IntelFormatter::new();
    formatter.options_mut().set_first_operand_char_index(8);
    let mut inst = Instruction::default();
    let mut text = String::new();
    while decoder.can_decode() {
        decoder.decode_out(&mut inst);
        text.clear();
        formatter.format(&inst, &mut text);
        let start = (inst.ip() - address) as usize;
        let encoding = &bytes[start..start + inst.len()];
        let _ = writeln!(
            out,
            "        {:016x}  {:<30} {text}",
            inst.ip(),
            hex(encoding)
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
