//! Division by a constant without a divide instruction.
//!
//! `DivI64K` and `ModI64K` divide by a 16-bit immediate the compiler knows, so it
//! replaces the `idiv` of their stencils (tens of cycles) by a multiplication by a
//! "magic" reciprocal and shifts (Granlund and Montgomery; Warren, *Hacker's Delight*,
//! chapter 10): the internal stencils `DivI64KMagic` and `ModI64KMagic` read the words
//! computed here. A divisor of 1 or -1 needs no stencil of its own (a move, a negation,
//! or a zero), and 0 keeps the opcode's own stencil, which traps.

/// What `DivI64KMagic` / `ModI64KMagic` read, in this order: the multiplier, the masks
/// that add or subtract the dividend after the high multiply, the final shift and the
/// divisor (for the remainder).
pub fn magic_words(divisor: i64) -> [u64; 5] {
    let (m, shift) = signed_magic(divisor);
    let add = divisor > 0 && m < 0;
    let sub = divisor < 0 && m > 0;
    let mask = |on: bool| if on { u64::MAX } else { 0 };
    [m as u64, mask(add), mask(sub), shift as u64, divisor as u64]
}

/// The magic multiplier and shift of a signed 64-bit division by `d` (|d| >= 2),
/// Hacker's Delight figure 10-1 widened to 64 bits.
fn signed_magic(d: i64) -> (i64, u32) {
    debug_assert!(!(-1..=1).contains(&d));
    let two63: u64 = 1 << 63;
    let ad = d.unsigned_abs();
    let t = two63 + ((d as u64) >> 63);
    let anc = t - 1 - t % ad;
    let mut p: u32 = 63;
    let mut q1 = two63 / anc;
    let mut r1 = two63 - q1 * anc;
    let mut q2 = two63 / ad;
    let mut r2 = two63 - q2 * ad;
    loop {
        p += 1;
        q1 = q1.wrapping_mul(2);
        r1 = r1.wrapping_mul(2);
        if r1 >= anc {
            q1 = q1.wrapping_add(1);
            r1 = r1.wrapping_sub(anc);
        }
        q2 = q2.wrapping_mul(2);
        r2 = r2.wrapping_mul(2);
        if r2 >= ad {
            q2 = q2.wrapping_add(1);
            r2 = r2.wrapping_sub(ad);
        }
        let delta = ad - r2;
        if !(q1 < delta || (q1 == delta && r1 == 0)) {
            break;
        }
    }
    let m = q2.wrapping_add(1) as i64;
    (if d < 0 { m.wrapping_neg() } else { m }, p - 64)
}

#[cfg(test)]
mod tests {
    use super::magic_words;
    use stencils::ops::internal::{magic_quotient, magic_remainder, pow2_remainder};

    fn quotient(x: i64, w: &[u64; 5]) -> i64 {
        magic_quotient(x, w[0] as i64, w[1] as i64, w[2] as i64, w[3] as i64)
    }

    /// The magic words of `d` give `wrapping_div` and `wrapping_rem` for every dividend.
    fn check_divisor(d: i64, dividends: impl IntoIterator<Item = i64>) {
        let w = magic_words(d);
        for n in dividends {
            assert_eq!(quotient(n, &w), n.wrapping_div(d), "{n} / {d}");
            let r = magic_remainder(n, w[0] as i64, w[1] as i64, w[2] as i64, w[3] as i64, d);
            assert_eq!(r, n.wrapping_rem(d), "{n} % {d}");
        }
    }

    /// Every 16-bit divisor but -1, 0, 1, against `wrapping_div` / `wrapping_rem` (the
    /// spec's truncating division) on the edges and a spread of dividends.
    #[test]
    fn matches_truncating_division_for_every_16_bit_divisor() {
        let mut dividends: Vec<i64> = vec![
            0,
            1,
            -1,
            2,
            -2,
            3,
            -3,
            i64::MAX,
            i64::MIN,
            i64::MAX - 1,
            i64::MIN + 1,
            1 << 62,
            -(1 << 62),
            32767,
            -32768,
            65535,
            -65536,
        ];
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..200 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            dividends.push(x as i64);
            dividends.push((x >> 40) as i64 - (1 << 23));
        }
        for d in i16::MIN as i64..=i16::MAX as i64 {
            if (-1..=1).contains(&d) {
                continue;
            }
            let extra = [d, -d, d * 3 + 1, d * 1000 - 1, i64::MIN + d.abs() - 1];
            check_divisor(d, dividends.iter().chain(&extra).copied());
        }
    }

    /// Divisors of any width (`DivI64` by a register holding a known constant,
    /// `constants.rs`): every power of two and its neighbours, both signs, `i64::MIN`
    /// and `i64::MAX`, and pseudo-random ones, against every edge dividend.
    #[test]
    fn matches_truncating_division_for_wide_divisors() {
        let mut divisors = vec![i64::MIN, i64::MAX, i64::MIN + 1, 4294967311, -4294967311];
        for k in 1..63 {
            let p = 1i64 << k;
            divisors.extend([p, p - 1, p + 1, -p, -p + 1, -p - 1]);
        }
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..2000 {
            let r = next();
            divisors.push(r as i64);
            divisors.push((r >> (r % 60)) as i64);
        }
        let mut dividends = vec![
            0,
            1,
            -1,
            2,
            -2,
            i64::MAX,
            i64::MIN,
            i64::MAX - 1,
            i64::MIN + 1,
        ];
        for _ in 0..200 {
            let r = next();
            dividends.push(r as i64);
            dividends.push((r >> (r % 64)) as i64);
        }
        for &d in &divisors {
            if (-1..=1).contains(&d) {
                continue;
            }
            let extra = [
                d,
                d.wrapping_neg(),
                d.wrapping_add(1),
                d.wrapping_sub(1),
                d.wrapping_mul(2),
            ];
            check_divisor(d, dividends.iter().chain(&extra).copied());
        }
    }

    /// `ModI64KPow2`'s masks against `wrapping_rem` for every power of two it serves.
    #[test]
    fn power_of_two_remainders_keep_the_sign_of_the_dividend() {
        for k in 1..=16 {
            let d = 1i64 << k;
            for x in [
                0,
                1,
                -1,
                d,
                -d,
                d - 1,
                1 - d,
                d + 1,
                -d - 1,
                i64::MIN,
                i64::MAX,
                i64::MIN + 1,
                -12345,
                12345,
            ] {
                assert_eq!(pow2_remainder(x, d - 1), x.wrapping_rem(d), "{x} % {d}");
            }
        }
    }
}
