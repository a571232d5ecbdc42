//! aarch64, whatever the object format: what the ELF and Mach-O backends share.
//!
//! - Instruction shapes, so a relocation is checked against the instruction it patches.
//! - Page/offset pairs: an `adrp` relocation and the low-12 relocations completing it
//!   (`add`, a load or store, a GOT `ldr`) are matched by [`pair_holes`], and pairs only
//!   ever completed by `add` become relaxable (`movz`/`movk` in the JIT).
//! - Endings: `b.cond +8; b _JIT_CONTINUE; b X` is rewritten so the continuation jump is
//!   last and can be dropped ([`continue_last`]).
//! - Control transfer: `b` is a jump, `bl` a call.

pub(crate) use stencil_table::aarch64::*;
use stencil_table::{Hole, HoleValue, RelocKind};

use super::Transfer;

/// The 32-bit instruction at `offset`, if there is one.
pub(crate) fn insn_at(code: &[u8], offset: usize) -> Option<u32> {
    let bytes = code.get(offset..offset.checked_add(4)?)?;
    Some(u32::from_le_bytes(bytes.try_into().ok()?))
}

/// The low-12 kinds an `adrp` of `kind` is completed by.
fn completes(page: RelocKind, lo: RelocKind) -> bool {
    use RelocKind::*;
    match page {
        Aarch64AdrpPage21 => matches!(
            lo,
            Aarch64AddLo12
                | Aarch64Ldst8Lo12
                | Aarch64Ldst16Lo12
                | Aarch64Ldst32Lo12
                | Aarch64Ldst64Lo12
                | Aarch64Ldst128Lo12
        ),
        Aarch64GotPage21 => lo == Aarch64GotLo12,
        _ => false,
    }
}

fn is_page(kind: RelocKind) -> bool {
    matches!(
        kind,
        RelocKind::Aarch64AdrpPage21 | RelocKind::Aarch64GotPage21
    )
}

/// The kind of control transfer of the instruction at `offset`.
pub(crate) fn transfer(kind: RelocKind, code: &[u8], offset: usize) -> Transfer {
    let insn = insn_at(code, offset).unwrap_or(0);
    match kind {
        RelocKind::Aarch64Branch26 if is_bl(insn) => Transfer::Call,
        RelocKind::Aarch64Branch26 if is_b_or_bl(insn) => Transfer::Jump,
        RelocKind::Aarch64CondBranch19 if is_imm19_branch(insn) => Transfer::Jump,
        RelocKind::Aarch64TestBranch14 if is_imm14_branch(insn) => Transfer::Jump,
        _ => Transfer::NotABranch,
    }
}

/// A final `b _JIT_CONTINUE` (4 bytes) the JIT may drop, or 0.
pub(crate) fn tail_jump(code: &[u8], holes: &[Hole]) -> u32 {
    let Some(field) = code.len().checked_sub(4) else {
        return 0;
    };
    let is_b = insn_at(code, field).is_some_and(|i| is_b_or_bl(i) && !is_bl(i));
    let ends_in_continue = holes.iter().any(|h| {
        h.offset as usize == field
            && h.value == HoleValue::Continue
            && h.kind == RelocKind::Aarch64Branch26
            && h.addend == 0
    });
    if is_b && ends_in_continue {
        4
    } else {
        0
    }
}

/// Pairs page and low-12 holes and moves the continuation jump last (see
/// [`pair_holes`] and [`continue_last`]).
pub(crate) fn refine(code: &mut [u8], holes: &mut [Hole]) -> Result<(), Vec<(u32, String)>> {
    pair_holes(code, holes)?;
    continue_last(code, holes);
    Ok(())
}

/// The offset a branch at `at` goes to, for the branches whose target is in the code.
fn branch_target(insn: u32, at: usize) -> Option<i64> {
    let signed = |bits: u32, shift: u32| {
        let field = (insn >> shift) & ((1 << bits) - 1);
        (((field << (32 - bits)) as i32) >> (32 - bits)) as i64 * 4
    };
    let offset = if is_b_or_bl(insn) {
        signed(26, 0)
    } else if is_imm19_branch(insn) {
        signed(19, 5)
    } else if is_imm14_branch(insn) {
        signed(14, 5)
    } else {
        return None;
    };
    Some(at as i64 + offset)
}

/// The same branch with the opposite condition, if it has one: `b.cond` (not `al`/`nv`),
/// `cbz`/`cbnz`, `tbz`/`tbnz`.
fn inverted(insn: u32) -> Option<u32> {
    if insn & 0xFF00_0010 == 0x5400_0000 {
        (insn & 0xF < 0xE).then_some(insn ^ 1)
    } else if is_imm19_branch(insn) || is_imm14_branch(insn) {
        Some(insn ^ (1 << 24))
    } else {
        None
    }
}

/// LLVM sometimes ends a compare-and-branch with `b.cond +8; b _JIT_CONTINUE; b X`, so
/// the jump to the next instruction is not last and cannot be dropped (and the common
/// fall-through path takes a jump). Inverting the condition and swapping the two jumps'
/// holes gives `b.!cond +8; b X; b _JIT_CONTINUE`, which does the same; done only when
/// nothing else in the stencil branches to either jump.
fn continue_last(code: &mut [u8], holes: &mut [Hole]) {
    let n = code.len();
    let Some(cond_at) = n.checked_sub(12) else {
        return;
    };
    let insn = |at: usize| insn_at(code, at).unwrap_or(0);
    let hole_at = |at: usize| holes.iter().position(|h| h.offset as usize == at);
    let (Some(cont), Some(last)) = (hole_at(n - 8), hole_at(n - 4)) else {
        return;
    };
    let plain_b = |at: usize| is_b_or_bl(insn(at)) && !is_bl(insn(at));
    let shape = holes[cont].value == HoleValue::Continue
        && holes[last].value != HoleValue::Continue
        && holes[cont].kind == RelocKind::Aarch64Branch26
        && holes[last].kind == RelocKind::Aarch64Branch26
        && plain_b(n - 8)
        && plain_b(n - 4)
        && branch_target(insn(cond_at), cond_at) == Some(n as i64 - 4);
    let Some(flipped) = inverted(insn(cond_at)).filter(|_| shape) else {
        return;
    };
    let other_entries = (0..cond_at).step_by(4).any(|at| {
        hole_at(at).is_none()
            && matches!(branch_target(insn(at), at), Some(t) if t == n as i64 - 8 || t == n as i64 - 4)
    });
    if other_entries {
        return;
    }
    code[cond_at..cond_at + 4].copy_from_slice(&flipped.to_le_bytes());
    let (value, addend) = (holes[last].value, holes[last].addend);
    holes[last].value = holes[cont].value;
    holes[last].addend = holes[cont].addend;
    holes[cont].value = value;
    holes[cont].addend = addend;
}

/// Matches every low-12 hole with the `adrp` that computed its page (the nearest one
/// before it of the same symbol and addend into the register it uses as base), and
/// marks the pairs whose page is only ever completed by `add`: those only compute
/// `S + A`, so the JIT may load the value with `movz`/`movk` instead.
fn pair_holes(code: &[u8], holes: &mut [Hole]) -> Result<(), Vec<(u32, String)>> {
    let mut problems = Vec::new();
    let mut partners: Vec<Vec<usize>> = vec![Vec::new(); holes.len()];
    for (j, lo) in holes.iter().enumerate() {
        let is_lo = matches!(
            lo.kind,
            RelocKind::Aarch64AddLo12
                | RelocKind::Aarch64Ldst8Lo12
                | RelocKind::Aarch64Ldst16Lo12
                | RelocKind::Aarch64Ldst32Lo12
                | RelocKind::Aarch64Ldst64Lo12
                | RelocKind::Aarch64Ldst128Lo12
                | RelocKind::Aarch64GotLo12
        );
        if !is_lo {
            continue;
        }
        let base = rn(insn_at(code, lo.offset as usize).unwrap_or(0));
        let page = holes
            .iter()
            .enumerate()
            .filter(|(_, p)| {
                is_page(p.kind)
                    && completes(p.kind, lo.kind)
                    && p.offset < lo.offset
                    && p.value == lo.value
                    && p.addend == lo.addend
                    && rd(insn_at(code, p.offset as usize).unwrap_or(0)) == base
            })
            .max_by_key(|(_, p)| p.offset);
        match page {
            Some((i, _)) => partners[i].push(j),
            None => problems.push((
                lo.offset,
                format!(
                    "{:?} against {:?}{:+} has no `adrp` of the same symbol into x{base} \
                     before it; the JIT cannot patch half of a page/offset pair",
                    lo.kind, lo.value, lo.addend
                ),
            )),
        }
    }
    for (i, done_by) in partners.iter().enumerate() {
        let page = holes[i];
        if !is_page(page.kind) {
            continue;
        }
        if done_by.is_empty() {
            problems.push((
                page.offset,
                format!(
                    "{:?} against {:?}{:+} is not completed by any low-12 relocation on \
                     the same register; the JIT cannot tell what the page is used for",
                    page.kind, page.value, page.addend
                ),
            ));
            continue;
        }
        let only_adds = page.kind == RelocKind::Aarch64AdrpPage21
            && done_by
                .iter()
                .all(|&j| holes[j].kind == RelocKind::Aarch64AddLo12);
        if only_adds {
            holes[i].kind = RelocKind::Aarch64AdrpAddPage21;
            for &j in done_by {
                holes[j].kind = RelocKind::Aarch64AdrpAddLo12;
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stencil_table::OperandField;

    fn hole(offset: u32, kind: RelocKind, value: HoleValue) -> Hole {
        Hole {
            offset,
            kind,
            value,
            addend: 0,
        }
    }

    fn code(insns: &[u32]) -> Vec<u8> {
        insns.iter().flat_map(|i| i.to_le_bytes()).collect()
    }

    const A: HoleValue = HoleValue::Operand(OperandField::A);
    const B: HoleValue = HoleValue::Operand(OperandField::B);

    #[test]
    fn adrp_add_pairs_become_relaxable() {
        // adrp x8, A; add x8, x8, A; adrp x9, B; add x9, x9, B
        let code = code(&[0x9000_0008, 0x9100_0108, 0x9000_0009, 0x9100_0129]);
        let mut holes = [
            hole(0, RelocKind::Aarch64AdrpPage21, A),
            hole(4, RelocKind::Aarch64AddLo12, A),
            hole(8, RelocKind::Aarch64AdrpPage21, B),
            hole(12, RelocKind::Aarch64AddLo12, B),
        ];
        pair_holes(&code, &mut holes).unwrap();
        let kinds: Vec<_> = holes.iter().map(|h| h.kind).collect();
        assert_eq!(
            kinds,
            [
                RelocKind::Aarch64AdrpAddPage21,
                RelocKind::Aarch64AdrpAddLo12,
                RelocKind::Aarch64AdrpAddPage21,
                RelocKind::Aarch64AdrpAddLo12
            ]
        );
    }

    #[test]
    fn a_page_also_used_by_a_load_stays_an_adrp() {
        // adrp x8, Data; add x9, x8, Data; ldr x10, [x8, Data]
        let code = code(&[0x9000_0008, 0x9100_0109, 0xF940_010A]);
        let mut holes = [
            hole(0, RelocKind::Aarch64AdrpPage21, HoleValue::Data),
            hole(4, RelocKind::Aarch64AddLo12, HoleValue::Data),
            hole(8, RelocKind::Aarch64Ldst64Lo12, HoleValue::Data),
        ];
        pair_holes(&code, &mut holes).unwrap();
        assert_eq!(holes[0].kind, RelocKind::Aarch64AdrpPage21);
        assert_eq!(holes[1].kind, RelocKind::Aarch64AddLo12);
    }

    #[test]
    fn half_pairs_are_refused() {
        // add x8, x8, A with no adrp; adrp x9, B completed by nothing
        let code = code(&[0x9100_0108, 0x9000_0009]);
        let mut holes = [
            hole(0, RelocKind::Aarch64AddLo12, A),
            hole(4, RelocKind::Aarch64AdrpPage21, B),
        ];
        let problems = pair_holes(&code, &mut holes).unwrap_err();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert_eq!(problems[0].0, 0);
        assert_eq!(problems[1].0, 4);
        // A pair on different registers is no pair.
        let code = self::code(&[0x9000_0008, 0x9100_0129]);
        let mut holes = [
            hole(0, RelocKind::Aarch64AdrpPage21, A),
            hole(4, RelocKind::Aarch64AddLo12, A),
        ];
        assert!(pair_holes(&code, &mut holes).is_err());
    }

    const CMP: u32 = 0xEB09_011F; // cmp x8, x9
    const B_NE_8: u32 = 0x5400_0041; // b.ne +8
    const B_HOLE: u32 = 0x1400_0000;

    fn branch_holes(n: u32) -> [Hole; 2] {
        [
            hole(n - 8, RelocKind::Aarch64Branch26, HoleValue::Continue),
            hole(n - 4, RelocKind::Aarch64Branch26, HoleValue::Target),
        ]
    }

    #[test]
    fn a_continuation_before_the_last_jump_is_moved_last() {
        let mut body = code(&[CMP, B_NE_8, B_HOLE, B_HOLE]);
        let mut holes = branch_holes(16);
        refine(&mut body, &mut holes).unwrap();
        // b.eq +8; b _JIT_TARGET; b _JIT_CONTINUE: equal falls through to the target.
        assert_eq!(body, code(&[CMP, 0x5400_0040, B_HOLE, B_HOLE]));
        assert_eq!(holes[0].value, HoleValue::Target);
        assert_eq!(holes[1].value, HoleValue::Continue);
        assert_eq!(tail_jump(&body, &holes), 4);
        // cbz and tbnz invert to cbnz and tbz.
        for (branch, opposite) in [(0xB400_0048u32, 0xB500_0048u32), (0x3728_0043, 0x3628_0043)] {
            let mut body = code(&[branch, B_HOLE, B_HOLE]);
            let mut holes = branch_holes(12);
            refine(&mut body, &mut holes).unwrap();
            assert_eq!(body, code(&[opposite, B_HOLE, B_HOLE]), "{branch:#x}");
        }
    }

    #[test]
    fn jumps_other_code_reaches_are_left_alone() {
        // `b.hs` at 0 also goes to the `b _JIT_CONTINUE` at 12.
        let original = code(&[0x5400_0062, CMP, B_NE_8, B_HOLE, B_HOLE]);
        let mut body = original.clone();
        let mut holes = branch_holes(20);
        refine(&mut body, &mut holes).unwrap();
        assert_eq!(body, original);
        assert_eq!(holes, branch_holes(20));
        // `b.al` has no opposite.
        let original = code(&[CMP, 0x5400_004E, B_HOLE, B_HOLE]);
        let mut body = original.clone();
        let mut holes = branch_holes(16);
        refine(&mut body, &mut holes).unwrap();
        assert_eq!(body, original);
    }

    #[test]
    fn tail_jump_is_a_final_b_to_continue() {
        let body = code(&[0xD503_201F, 0x1400_0000]);
        let holes = [hole(4, RelocKind::Aarch64Branch26, HoleValue::Continue)];
        assert_eq!(tail_jump(&body, &holes), 4);
        // bl is a call, not a jump to drop.
        let call = code(&[0xD503_201F, 0x9400_0000]);
        assert_eq!(tail_jump(&call, &holes), 0);
        assert_eq!(
            transfer(RelocKind::Aarch64Branch26, &call, 4),
            Transfer::Call
        );
        assert_eq!(
            transfer(RelocKind::Aarch64Branch26, &body, 4),
            Transfer::Jump
        );
    }
}
