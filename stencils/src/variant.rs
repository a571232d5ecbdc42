//! Register variants: one stencil per placement of an opcode's register operands.
//!
//! Compiled code passes a few vm3 registers from stencil to stencil in machine
//! registers: every stencil takes them as extra arguments and hands them on to its
//! continuation, so a value nobody touches never moves (see
//! `../shared/notes/register-caching.md`). `#[stencil]` generates, from the one
//! definition, a variant for every placement of its register operands: each one in its
//! frame slot or in one of the cached machine registers of its bank (i64 and cell
//! registers share the integer ones). The JIT's register assignment picks the variant.
//!
//! Variants are numbered in mixed radix over the register operands in text order (the
//! first operand is the most significant digit): digit 0 is the frame slot, digit
//! `1 + k` the cached register `k`. Variant 0, everything in the frame, is the stencil
//! `__stencil_<Name>`; variant `v > 0` is `__stencil_<Name>__<suffix>`, the suffix one
//! character per register operand, `m` for the frame (memory) or the cached register's
//! number. `stencil-macros` generates the same names; the harvester finds every one.

use crate::{Bank, Field, OpInfo, OperandKind};

/// Integer machine registers that carry i64 and cell registers between stencils
/// (x86-64: rdx, rcx, r8, r9; aarch64: x2-x5). `stencil-macros` has the same number.
pub const CACHED_INT: usize = 4;
/// Float machine registers that carry f64 registers (x86-64 xmm0-7, aarch64 d0-d7).
pub const CACHED_FLOAT: usize = 8;
/// The location code of an operand in its frame slot (the JIT tier's const parameters).
pub const FRAME: u8 = 0xFF;

/// Where a register operand of a variant lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Loc {
    Frame,
    /// Cached machine register `k` of the operand's bank.
    Cached(u8),
}

/// The variant number with each register operand at `loc(field)`, from a stencil's
/// digits ([`OpInfo::digits`]: field and radix, most significant first); `None` when a
/// field's location has no digit (a cached register the field cannot hold).
pub fn variant_number(
    digits: impl IntoIterator<Item = (Field, usize)>,
    loc: impl Fn(Field) -> Loc,
) -> Option<usize> {
    let mut index = 0;
    for (field, radix) in digits {
        let digit = match loc(field) {
            Loc::Frame => 0,
            Loc::Cached(k) => 1 + k as usize,
        };
        if digit >= radix {
            return None;
        }
        index = index * radix + digit;
    }
    Some(index)
}

/// How many machine registers cache registers of `bank`.
pub const fn cache_size(bank: Bank) -> usize {
    match bank {
        Bank::I64 | Bank::Cell => CACHED_INT,
        Bank::F64 => CACHED_FLOAT,
    }
}

/// The bank of an operand that can be cached, if it can.
pub const fn cacheable(kind: OperandKind) -> Option<Bank> {
    match kind {
        OperandKind::Reg(bank) => Some(bank),
        _ => None,
    }
}

impl OpInfo {
    /// How many variants the stencil has (1 when nothing can be cached).
    pub fn variant_count(&self) -> usize {
        self.digits().map(|(_, radix)| radix).product()
    }

    /// The variant with each register operand at `loc(field)`. A cached register of a
    /// field the stencil cannot cache is a caller's error and gives `None`.
    pub fn variant_index(&self, loc: impl Fn(Field) -> Loc) -> Option<usize> {
        variant_number(self.digits(), loc)
    }

    /// Where each register operand of variant `index` lives, by field.
    pub fn variant_locs(&self, index: usize) -> [Loc; 3] {
        let mut locs = [Loc::Frame; 3];
        let mut rest = index;
        let digits: [(Field, usize); 3] = {
            let mut d = [(Field::A, 1); 3];
            for (i, digit) in self.digits().enumerate() {
                d[i] = digit;
            }
            d
        };
        let n = self.digits().count();
        for &(field, radix) in digits[..n].iter().rev() {
            let digit = rest % radix;
            rest /= radix;
            locs[field as usize] = match digit {
                0 => Loc::Frame,
                d => Loc::Cached(d as u8 - 1),
            };
        }
        locs
    }

    /// The symbol suffix of variant `index` (empty for variant 0), written into `out`;
    /// returns its length.
    pub fn variant_suffix(&self, index: usize, out: &mut [u8; 8]) -> usize {
        if index == 0 {
            return 0;
        }
        let locs = self.variant_locs(index);
        out[0] = b'_';
        out[1] = b'_';
        let mut len = 2;
        for (field, _) in self.digits() {
            out[len] = match locs[field as usize] {
                Loc::Frame => b'm',
                Loc::Cached(k) => b'0' + k,
            };
            len += 1;
        }
        len
    }

    /// The register operands that can be cached, with their radix, in text order.
    /// The variant number's digits: each cacheable register operand's field and radix,
    /// most significant first.
    pub fn digits(&self) -> impl Iterator<Item = (Field, usize)> + '_ {
        let cached = self.cached;
        self.operands.iter().filter_map(move |&(field, kind)| {
            let bank = cacheable(kind).filter(|_| cached)?;
            Some((field, 1 + cache_size(bank)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Loc;
    use crate::{Field, OpInfo, Opcode, OperandKind, INTERNAL_INFOS, OPCODES};

    fn all() -> impl Iterator<Item = &'static OpInfo> {
        OPCODES.iter().chain(INTERNAL_INFOS.iter())
    }

    #[test]
    fn variant_numbers_and_placements_round_trip() {
        for info in all() {
            for v in 0..info.variant_count() {
                let locs = info.variant_locs(v);
                assert_eq!(
                    info.variant_index(|f| locs[f as usize]),
                    Some(v),
                    "{}",
                    info.name
                );
            }
            // Outside a bank's cached registers there is no variant.
            let too_far = info.variant_index(|_| Loc::Cached(8));
            let cacheable = info.cached
                && info
                    .operands
                    .iter()
                    .any(|(_, k)| matches!(k, OperandKind::Reg(_)));
            assert_eq!(too_far.is_none(), cacheable, "{}", info.name);
        }
    }

    /// The liveness of cached registers relies on these: an operand neither read nor
    /// written would mean `#[stencil]` failed to see how the body uses it.
    #[test]
    fn every_register_operand_is_read_or_written() {
        for info in all() {
            for &(field, kind) in info.operands {
                if matches!(
                    kind,
                    OperandKind::Reg(_) | OperandKind::Dest | OperandKind::FmaPair
                ) {
                    assert!(
                        info.reads(field) || info.writes(field),
                        "{} {field:?}",
                        info.name
                    );
                }
            }
        }
    }

    #[test]
    fn reads_and_writes_of_representative_opcodes() {
        use Field::{A, B, C};
        let check = |op: Opcode, reads: &[Field], writes: &[Field]| {
            let info = op.info();
            // Only register operands matter (a call also "reads" its callee field).
            let registers = [A, B, C].into_iter().filter(|&f| {
                matches!(
                    info.operand(f),
                    Some(OperandKind::Reg(_) | OperandKind::Dest | OperandKind::FmaPair)
                )
            });
            for f in registers {
                assert_eq!(
                    info.reads(f),
                    reads.contains(&f),
                    "{} reads {f:?}",
                    info.name
                );
                assert_eq!(
                    info.writes(f),
                    writes.contains(&f),
                    "{} writes {f:?}",
                    info.name
                );
            }
        };
        check(Opcode::AddI64, &[B, C], &[A]);
        // Operands inside a macro's tokens (`checked!(..)`) count as reads.
        check(Opcode::ListGetI64, &[B, C], &[A]);
        check(Opcode::ListSetI64, &[A, B, C], &[]);
        check(Opcode::ListPushI64, &[A, B], &[]);
        check(Opcode::CallI64, &[], &[A]);
        check(Opcode::CallMixed, &[], &[A]);
        check(Opcode::CmpLtI64Br, &[A, B], &[]);
        check(Opcode::ReturnF64, &[A], &[]);
        check(Opcode::FmaF64, &[B, C], &[A]);
    }
}
