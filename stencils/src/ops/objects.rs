//! Strings, lists and maps (spec §2 "Strings, lists, maps").
//!
//! The hot paths run in the stencil: checking a handle, reading or writing a list item
//! in range, pushing within capacity, looking a key up, updating or inserting a key
//! without growth. Whatever allocates (a new object, growth, a concatenation) goes to
//! the runtime through the tier, which in compiled code is a call to a declared helper.
//!
//! Choices the spec leaves open: an item of the wrong type for the read (`ListGetI64`
//! of an item stored by `ListSetF64`, say) traps with `bad handle`, the same reason as
//! an operand of the wrong kind; a negative capacity hint means none.

use crate::*;

/// Unwraps a heap result or ends the instruction with its trap.
macro_rules! checked {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(trap) => return Flow::Trap(trap),
        }
    };
}

/// Unwraps the result of a runtime call (a handle, or 0 for done) or ends the
/// instruction with the trap it reports.
macro_rules! runtime {
    ($e:expr) => {
        checked!(cell::helper_result($e))
    };
}

/// cA = string constant #C
#[stencil]
pub fn ConstStrKW<T: Tier>(t: &mut T, a: RegC, c: ConstStr) -> Flow {
    let s = t.str_const(c);
    t.set_cell(a, s);
    Flow::Next
}

/// iA = byte length of the string cB
#[stencil]
pub fn LenStr<T: Tier>(t: &mut T, a: RegI, b: RegC) -> Flow {
    match t.heap().str_len(t.cell(b)) {
        Some(len) => {
            t.set_i(a, len as i64);
            Flow::Next
        }
        None => Flow::Trap(Trap::BadHandle),
    }
}

/// cA = a new string, cB ++ cC
#[stencil]
pub fn ConcatStr<T: Tier>(t: &mut T, a: RegC, b: RegC, c: RegC) -> Flow {
    let s = runtime!(t.concat(t.cell(b), t.cell(c)));
    t.set_cell(a, s);
    Flow::Next
}

/// cA = a new empty list with room for kC items
#[stencil]
pub fn NewList<T: Tier>(t: &mut T, a: RegC, c: Imm) -> Flow {
    let list = runtime!(t.new_list(c.0));
    t.set_cell(a, list);
    Flow::Next
}

/// iA = length of the list cB
#[stencil]
pub fn ListLenI64<T: Tier>(t: &mut T, a: RegI, b: RegC) -> Flow {
    match t.heap().list_len(t.cell(b)) {
        Some(len) => {
            t.set_i(a, len as i64);
            Flow::Next
        }
        None => Flow::Trap(Trap::BadHandle),
    }
}

/// Append iB to the list cA, as a 48-bit integer cell.
#[stencil]
pub fn ListPushI64<T: Tier>(t: &mut T, a: RegC, b: RegI) -> Flow {
    let list = t.cell(a);
    let Some(item) = cell::from_int(t.i(b)) else {
        // The handle is checked first, so a bad list reports `bad handle`.
        return match t.heap().list(list) {
            Some(_) => Flow::Trap(Trap::IntegerDoesNotFitInCell),
            None => Flow::Trap(Trap::BadHandle),
        };
    };
    if !checked!(t.heap().list_push_in_place(list, item)) {
        runtime!(t.list_push_grow(list, item));
    }
    Flow::Next
}

/// iA = the integer at index iC of the list cB
#[stencil]
pub fn ListGetI64<T: Tier>(t: &mut T, a: RegI, b: RegC, c: RegI) -> Flow {
    let item = checked!(t.heap().list_get(t.cell(b), t.i(c)));
    match cell::to_int(item) {
        Some(v) => {
            t.set_i(a, v);
            Flow::Next
        }
        None => Flow::Trap(Trap::BadHandle),
    }
}

/// The list cA at index iC = iB
#[stencil]
pub fn ListSetI64<T: Tier>(t: &mut T, a: RegC, b: RegI, c: RegI) -> Flow {
    // Handle and index are checked before the value, as in the other setters.
    let item = cell::from_int(t.i(b)).ok_or(Trap::IntegerDoesNotFitInCell);
    checked!(t.heap().list_set_checked(t.cell(a), t.i(c), item));
    Flow::Next
}

/// fA = the float at index iC of the list cB
#[stencil]
pub fn ListGetF64<T: Tier>(t: &mut T, a: RegF, b: RegC, c: RegI) -> Flow {
    let item = checked!(t.heap().list_get(t.cell(b), t.i(c)));
    match cell::to_f64(item) {
        Some(v) => {
            t.set_f(a, v);
            Flow::Next
        }
        None => Flow::Trap(Trap::BadHandle),
    }
}

/// The list cA at index iC = fB (a NaN is stored as the canonical NaN)
#[stencil]
pub fn ListSetF64<T: Tier>(t: &mut T, a: RegC, b: RegF, c: RegI) -> Flow {
    let item = cell::from_f64(t.f(b));
    checked!(t.heap().list_set(t.cell(a), t.i(c), item));
    Flow::Next
}

/// cA = the cell at index iC of the list cB
#[stencil]
pub fn ListGetCell<T: Tier>(t: &mut T, a: RegC, b: RegC, c: RegI) -> Flow {
    let item = checked!(t.heap().list_get(t.cell(b), t.i(c)));
    t.set_cell(a, item);
    Flow::Next
}

/// The list cA at index iC = cB
#[stencil]
pub fn ListSetCell<T: Tier>(t: &mut T, a: RegC, b: RegC, c: RegI) -> Flow {
    let item = t.cell(b);
    checked!(t.heap().list_set(t.cell(a), t.i(c), item));
    Flow::Next
}

/// cA = a new i64→i64 map with room for kC keys
#[stencil]
pub fn NewMap<T: Tier>(t: &mut T, a: RegC, c: Imm) -> Flow {
    let map = runtime!(t.new_map(c.0));
    t.set_cell(a, map);
    Flow::Next
}

/// The map cA at key iB = iC
#[stencil]
pub fn MapSetI64I64<T: Tier>(t: &mut T, a: RegC, b: RegI, c: RegI) -> Flow {
    let (map, key, value) = (t.cell(a), t.i(b), t.i(c));
    if !checked!(t.heap().map_set_in_place(map, key, value)) {
        runtime!(t.map_set_grow(map, key, value));
    }
    Flow::Next
}

/// iA = the map cB at key iC, or 0 when the key is missing
#[stencil]
pub fn MapGetI64I64<T: Tier>(t: &mut T, a: RegI, b: RegC, c: RegI) -> Flow {
    let v = checked!(t.heap().map_get(t.cell(b), t.i(c)));
    t.set_i(a, v);
    Flow::Next
}
