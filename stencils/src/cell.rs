//! The cell encoding of spec §1: 8 bytes, NaN-boxed. The top 16 bits are a tag, the low
//! 48 bits the payload.
//!
//! | top 16 bits | meaning |
//! |---|---|
//! | below `0xFFF8` | a float64 (NaN normalised to [`CANONICAL_NAN`]) |
//! | `0xFFF8` | deopt marker |
//! | `0xFFF9` | short string stored inline (never produced here: strings always live in the arena, which spec §1 allows) |
//! | `0xFFFA` | 48-bit signed integer |
//! | `0xFFFB` | bool |
//! | `0xFFFC` | null |
//! | `0xFFFF` | heap handle: kind in bits 44..47, generation in 32..43, slot in 0..31 |

/// Tag of a 48-bit integer.
pub const TAG_INT: u64 = 0xFFFA;
/// Tag of a bool.
pub const TAG_BOOL: u64 = 0xFFFB;
/// Tag of null.
pub const TAG_NULL: u64 = 0xFFFC;
/// Tag of a heap handle.
pub const TAG_HANDLE: u64 = 0xFFFF;
/// Tag of an inline short string.
pub const TAG_SHORT_STR: u64 = 0xFFF9;
/// Tag of a deopt marker.
pub const TAG_DEOPT: u64 = 0xFFF8;
/// The smallest tag that is not a float.
pub const FIRST_TAG: u64 = 0xFFF8;

/// The null cell: what every cell register holds at function entry (spec §1).
pub const NULL: u64 = TAG_NULL << 48;

/// The one NaN a float cell holds.
pub const CANONICAL_NAN: u64 = 0x7FF8_0000_0000_0000;

/// Integers a cell can hold: `-2^47 ..= 2^47 - 1`.
pub const INT_MIN: i64 = -(1 << 47);
pub const INT_MAX: i64 = (1 << 47) - 1;

const PAYLOAD: u64 = (1 << 48) - 1;

/// The arena an object lives in (spec §1's arena kinds).
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Str = 0,
    List = 1,
    Map = 2,
}

/// Generations are 12 bits wide.
pub const GENERATION_MASK: u32 = 0xFFF;

#[inline(always)]
pub const fn tag(cell: u64) -> u64 {
    cell >> 48
}

/// The cell of an integer, or `None` outside `INT_MIN..=INT_MAX`.
#[inline(always)]
pub const fn from_int(v: i64) -> Option<u64> {
    if v < INT_MIN || v > INT_MAX {
        None
    } else {
        Some(TAG_INT << 48 | (v as u64 & PAYLOAD))
    }
}

/// The integer a cell holds, if it holds one.
#[inline(always)]
pub const fn to_int(cell: u64) -> Option<i64> {
    if tag(cell) == TAG_INT {
        // Sign-extend from bit 47.
        Some(((cell << 16) as i64) >> 16)
    } else {
        None
    }
}

/// The cell of a float: its bits, with every NaN made the canonical one so that no NaN
/// can be read as a tag.
#[inline(always)]
pub fn from_f64(v: f64) -> u64 {
    if v.is_nan() {
        CANONICAL_NAN
    } else {
        v.to_bits()
    }
}

/// The float a cell holds, if it holds one.
#[inline(always)]
pub const fn to_f64(cell: u64) -> Option<f64> {
    if tag(cell) < FIRST_TAG {
        Some(f64::from_bits(cell))
    } else {
        None
    }
}

/// The cell of a bool.
#[inline(always)]
pub const fn from_bool(b: bool) -> u64 {
    TAG_BOOL << 48 | b as u64
}

/// The handle of slot `slot` of arena `kind` at generation `generation`.
#[inline(always)]
pub const fn handle(kind: Kind, generation: u32, slot: u32) -> u64 {
    TAG_HANDLE << 48
        | (kind as u64) << 44
        | ((generation & GENERATION_MASK) as u64) << 32
        | slot as u64
}

/// A handle's parts: (kind bits, generation, slot).
#[inline(always)]
pub const fn handle_parts(cell: u64) -> Option<(u8, u32, u32)> {
    if tag(cell) == TAG_HANDLE {
        Some((
            ((cell >> 44) & 0xF) as u8,
            ((cell >> 32) as u32) & GENERATION_MASK,
            cell as u32,
        ))
    } else {
        None
    }
}

/// Values a helper returns: a handle or 0 for success, or a [`Trap`](crate::Trap)
/// code (1..=255).
#[inline(always)]
pub const fn helper_result(r: u64) -> Result<u64, crate::Trap> {
    if r != 0 && r < 256 {
        match crate::Trap::from_u8(r as u8) {
            Some(t) => Err(t),
            None => Err(crate::Trap::BadHandle),
        }
    } else {
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_round_trip_at_the_edges() {
        for v in [0, 1, -1, INT_MIN, INT_MAX, 12345, -98765] {
            let c = from_int(v).unwrap();
            assert_eq!(tag(c), TAG_INT);
            assert_eq!(to_int(c), Some(v));
        }
        assert_eq!(from_int(INT_MAX + 1), None);
        assert_eq!(from_int(INT_MIN - 1), None);
        assert_eq!(from_int(i64::MIN), None);
    }

    #[test]
    fn nans_are_normalised_and_floats_are_not_tags() {
        let negative_nan = f64::from_bits(0xFFFF_0000_0000_0001);
        assert_eq!(from_f64(negative_nan), CANONICAL_NAN);
        assert_eq!(
            to_f64(from_f64(-0.0)).unwrap().to_bits(),
            (-0.0f64).to_bits()
        );
        assert_eq!(to_f64(f64::NEG_INFINITY.to_bits()), Some(f64::NEG_INFINITY));
        assert_eq!(to_f64(NULL), None);
        assert_eq!(to_int(from_f64(2.5)), None);
    }

    #[test]
    fn handles_carry_kind_generation_and_slot() {
        let h = handle(Kind::Map, 0xABC, 0xDEAD_BEEF);
        assert_eq!(h >> 48, 0xFFFF);
        assert_eq!(handle_parts(h), Some((2, 0xABC, 0xDEAD_BEEF)));
        // The slot is the low half: what `HeapView` bound-checks before comparing.
        assert_eq!(h as u32, 0xDEAD_BEEF);
        assert_eq!(handle_parts(NULL), None);
    }
}
