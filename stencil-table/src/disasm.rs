//! Machine code as text, one instruction a line (feature `disasm`): the stencil
//! listings and `stitch dump` show what a stencil or a compiled function is, not hex.
//! x86-64 with iced-x86, aarch64 with yaxpeax-arm.

use crate::Isa;

/// One decoded instruction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    /// Where it starts, from the start of the code given.
    pub offset: usize,
    /// Its length in bytes.
    pub len: usize,
    /// Its assembly text (Intel syntax on x86-64); `(bad)` or `.word` for bytes that do
    /// not decode.
    pub text: String,
}

/// Decodes `code` as if it were loaded at `address` (which only changes how relative
/// branch targets are shown on x86-64; aarch64 shows them relative, `$+0x10`).
pub fn disassemble(isa: Isa, code: &[u8], address: u64) -> Vec<Line> {
    match isa {
        Isa::X86_64 => x86_64(code, address),
        Isa::Aarch64 => aarch64(code),
    }
}

fn x86_64(code: &[u8], address: u64) -> Vec<Line> {
    use iced_x86::{Decoder, DecoderOptions, Formatter, Instruction, IntelFormatter};
    let mut decoder = Decoder::with_ip(64, code, address, DecoderOptions::NONE);
    let mut formatter = IntelFormatter::new();
    let options = formatter.options_mut();
    options.set_first_operand_char_index(8);
    options.set_space_after_operand_separator(true);
    options.set_hex_prefix("0x");
    options.set_hex_suffix("");
    options.set_branch_leading_zeros(false);
    options.set_small_hex_numbers_in_decimal(false);
    let mut inst = Instruction::default();
    let mut lines = Vec::new();
    while decoder.can_decode() {
        decoder.decode_out(&mut inst);
        let mut text = String::new();
        if inst.is_invalid() {
            text.push_str("(bad)");
        } else {
            formatter.format(&inst, &mut text);
        }
        lines.push(Line {
            offset: (inst.ip() - address) as usize,
            len: inst.len(),
            text,
        });
    }
    lines
}

fn aarch64(code: &[u8]) -> Vec<Line> {
    use yaxpeax_arch::{Decoder, U8Reader};
    let decoder = yaxpeax_arm::armv8::a64::InstDecoder::default();
    code.chunks(4)
        .enumerate()
        .map(|(k, word)| {
            let text = match decoder.decode(&mut U8Reader::new(word)) {
                Ok(inst) => inst.to_string(),
                Err(_) if word.len() == 4 => {
                    format!(
                        ".word {:#010x}",
                        u32::from_le_bytes(word.try_into().unwrap())
                    )
                }
                Err(_) => "(bad)".to_string(),
            };
            Line {
                offset: 4 * k,
                len: word.len(),
                text,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_instruction_sets_decode() {
        // mov rax, [rsi+0x10]; jmp rel32 0
        let x86 = disassemble(Isa::X86_64, &[0x48, 0x8b, 0x46, 0x10, 0xe9, 0, 0, 0, 0], 0);
        let text: Vec<_> = x86
            .iter()
            .map(|l| (l.offset, l.len, l.text.as_str()))
            .collect();
        assert_eq!(
            text,
            [(0, 4, "mov     rax, [rsi+0x10]"), (4, 5, "jmp     0x9")]
        );
        // orr w20, w20, #4; b .; an unallocated word
        let arm = disassemble(
            Isa::Aarch64,
            &[
                0x94, 0x02, 0x1e, 0x32, 0, 0, 0, 0x14, 0xff, 0xff, 0xff, 0xff,
            ],
            0,
        );
        let text: Vec<_> = arm.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(text, ["orr w20, w20, #0x4", "b $+0x0", ".word 0xffffffff"]);
    }
}
