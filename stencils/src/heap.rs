//! The heap as compiled code sees it: fixed `#[repr(C)]` layouts and the hot paths
//! (a handle check, a list read or write in range, a push within capacity, a map
//! lookup or an insert without growth), written once for both tiers.
//!
//! The heap itself (allocation, growth, the limit, freeing at the end of a run) is
//! Rust code in `vm3::heap`, which owns the memory these views point into and keeps
//! [`HeapView`] current. Stencils reach it through [`Ctx::heap`](crate::Ctx); anything
//! that allocates goes through a helper (see [`crate::helpers`]).
//!
//! Soundness: every access first checks the handle (its slot, the low 32 bits, below the
//! arena's live count, and the whole handle equal to the one the slot's object was
//! allocated with: tag, kind, generation and slot in one comparison) and every index
//! against the object's length, so a forged or stale handle is refused, never
//! dereferenced.

/// One arena slot of a list: its items are cells.
#[repr(C)]
#[derive(Debug)]
pub struct ListObj {
    pub items: *mut u64,
    pub len: u64,
    pub cap: u64,
    /// The handle that names this object: a cell names it exactly when it has these
    /// bits (see [`HeapView::list`]).
    pub handle: u64,
}

/// One arena slot of a string: immutable bytes.
#[repr(C)]
#[derive(Debug)]
pub struct StrObj {
    pub bytes: *const u8,
    pub len: u64,
    pub cap: u64,
    /// The handle that names this object.
    pub handle: u64,
}

/// One arena slot of an i64→i64 map: open addressing with linear probing over a
/// power-of-two table, at most 3/4 full, so every probe sequence reaches a free entry.
#[repr(C)]
#[derive(Debug)]
pub struct MapObj {
    pub entries: *mut MapEntry,
    pub len: u64,
    /// Entries minus one (the table size is a power of two).
    pub mask: u64,
    /// The handle that names this object.
    pub handle: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MapEntry {
    pub key: i64,
    pub value: i64,
    /// 1 when the entry holds a key.
    pub used: u64,
}

/// The arenas, as compiled code reads them. `*_live` is the number of slots allocated
/// in the current run; handles to slots at or past it are stale.
///
/// The fields are private, since the safe methods dereference them: only the `unsafe`
/// [`HeapView::new`] can point a view anywhere (issue 10).
///
/// ```compile_fail
/// let forged = stencils::heap::HeapView {
///     lists: 8 as *mut stencils::heap::ListObj,
///     ..stencils::heap::HeapView::empty()
/// };
/// ```
/// ```
/// // Every handle is stale in an empty view.
/// let empty = stencils::heap::HeapView::empty();
/// assert_eq!(empty.str_len(stencils::cell::NULL), None);
/// ```
#[repr(C)]
#[derive(Debug)]
pub struct HeapView {
    // Private: the safe methods dereference these, so only `HeapView::new`, which is
    // `unsafe`, may set them (issue 10: public fields let safe code crash).
    lists: *mut ListObj,
    lists_live: u64,
    strs: *const StrObj,
    strs_live: u64,
    maps: *mut MapObj,
    maps_live: u64,
    /// The handle of each string constant of the program, by program-wide index.
    str_consts: *const u64,
    str_consts_len: u64,
}

/// An arena object, which records the handle that names it.
trait Named {
    fn handle(&self) -> u64;
}

macro_rules! named {
    ($($t:ty),*) => {$(
        impl Named for $t {
            #[inline(always)]
            fn handle(&self) -> u64 {
                self.handle
            }
        }
    )*};
}
named!(ListObj, StrObj, MapObj);

/// The object of an arena of `live` objects at `objects` that `handle` names (see
/// [`HeapView::list`]).
#[inline(always)]
fn named<T: Named>(objects: *const T, live: u64, handle: u64) -> Option<*const T> {
    let slot = handle as u32 as u64;
    if slot >= live {
        return None;
    }
    // SAFETY: slots below the arena's live count are initialised objects (`HeapView`).
    let obj = unsafe { objects.add(slot as usize) };
    (unsafe { (*obj).handle() } == handle).then_some(obj)
}

/// Whether a map of `mask + 1` entries may take one more key without growing.
#[inline(always)]
pub const fn map_has_room(len: u64, mask: u64) -> bool {
    (len + 1) * 4 <= (mask + 1) * 3
}

/// Where a key's probe sequence starts.
#[inline(always)]
pub const fn map_home(key: i64, mask: u64) -> u64 {
    let h = (key as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (h ^ (h >> 29)) & mask
}

/// The result of probing a map for a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    /// The key is at this entry.
    Found(u64),
    /// The key is absent; this free entry ends its probe sequence.
    Vacant(u64),
}

/// Probes `mask + 1` entries for `key`.
///
/// # Safety
/// `entries` must point to `mask + 1` entries, at least one of them unused.
#[inline(always)]
pub unsafe fn map_probe(entries: *const MapEntry, mask: u64, key: i64) -> Probe {
    let mut i = map_home(key, mask);
    loop {
        let e = unsafe { &*entries.add(i as usize) };
        if e.used == 0 {
            return Probe::Vacant(i);
        }
        if e.key == key {
            return Probe::Found(i);
        }
        i = (i + 1) & mask;
    }
}

impl HeapView {
    /// A view of the arenas: `lists_live` list objects from `lists`, and so on, and the
    /// handles of the program's string constants.
    ///
    /// # Safety
    /// Each pointer must be valid for reads (and `lists`, `maps` for writes) of its
    /// count of objects for as long as the view is used, with every object's own
    /// pointers (items, bytes, entries) valid for its recorded lengths; the view's
    /// methods read and write through them unchecked.
    pub const unsafe fn new(
        lists: (*mut ListObj, u64),
        strs: (*const StrObj, u64),
        maps: (*mut MapObj, u64),
        str_consts: (*const u64, u64),
    ) -> HeapView {
        HeapView {
            lists: lists.0,
            lists_live: lists.1,
            strs: strs.0,
            strs_live: strs.1,
            maps: maps.0,
            maps_live: maps.1,
            str_consts: str_consts.0,
            str_consts_len: str_consts.1,
        }
    }

    /// A view of an empty heap.
    pub const fn empty() -> HeapView {
        HeapView {
            lists: core::ptr::null_mut(),
            lists_live: 0,
            strs: core::ptr::null(),
            strs_live: 0,
            maps: core::ptr::null_mut(),
            maps_live: 0,
            str_consts: core::ptr::null(),
            str_consts_len: 0,
        }
    }

    /// The list a handle names, or `None` for anything else (spec §2: `bad handle`).
    ///
    /// A handle's slot is its low 32 bits; the cell names the slot's object exactly
    /// when it equals the handle the object was allocated with. That one comparison
    /// checks the tag (a number, a null or a float never equals a handle: floats in
    /// cells are NaN-normalised), the arena's kind and the generation (a handle from
    /// another run or a forged one differs), so the hot path of every heap stencil is
    /// a bound check and a compare.
    #[inline(always)]
    pub fn list(&self, handle: u64) -> Option<*mut ListObj> {
        named(self.lists, self.lists_live, handle).map(|l| l as *mut ListObj)
    }

    #[inline(always)]
    pub fn string(&self, handle: u64) -> Option<*const StrObj> {
        named(self.strs, self.strs_live, handle)
    }

    #[inline(always)]
    pub fn map(&self, handle: u64) -> Option<*mut MapObj> {
        named(self.maps, self.maps_live, handle).map(|m| m as *mut MapObj)
    }

    /// The byte length of a string.
    #[inline(always)]
    pub fn str_len(&self, handle: u64) -> Option<u64> {
        self.string(handle).map(|s| unsafe { (*s).len })
    }

    /// The length of a list.
    #[inline(always)]
    pub fn list_len(&self, handle: u64) -> Option<u64> {
        self.list(handle).map(|l| unsafe { (*l).len })
    }

    /// The cell at `index` of a list.
    #[inline(always)]
    pub fn list_get(&self, handle: u64, index: i64) -> Result<u64, crate::Trap> {
        let Some(list) = self.list(handle) else {
            return Err(crate::Trap::BadHandle);
        };
        unsafe {
            if index as u64 >= (*list).len {
                return Err(crate::Trap::IndexOutOfRange);
            }
            Ok(*(*list).items.add(index as usize))
        }
    }

    /// Stores a cell at `index` of a list.
    #[inline(always)]
    pub fn list_set(&self, handle: u64, index: i64, item: u64) -> Result<(), crate::Trap> {
        self.list_set_checked(handle, index, Ok(item))
    }

    /// Stores `item` at `index` of a list once the handle and the index are checked;
    /// an `item` that is an error (a value no cell can hold) is reported after them.
    #[inline(always)]
    pub fn list_set_checked(
        &self,
        handle: u64,
        index: i64,
        item: Result<u64, crate::Trap>,
    ) -> Result<(), crate::Trap> {
        let Some(list) = self.list(handle) else {
            return Err(crate::Trap::BadHandle);
        };
        unsafe {
            if index as u64 >= (*list).len {
                return Err(crate::Trap::IndexOutOfRange);
            }
            *(*list).items.add(index as usize) = item?;
        }
        Ok(())
    }

    /// Appends a cell when the list has capacity for it; `Ok(false)` when it must grow
    /// first (the caller calls the runtime).
    #[inline(always)]
    pub fn list_push_in_place(&self, handle: u64, item: u64) -> Result<bool, crate::Trap> {
        let Some(list) = self.list(handle) else {
            return Err(crate::Trap::BadHandle);
        };
        unsafe {
            let len = (*list).len;
            if len >= (*list).cap {
                return Ok(false);
            }
            *(*list).items.add(len as usize) = item;
            (*list).len = len + 1;
        }
        Ok(true)
    }

    /// The value of `key` in a map, 0 when absent.
    #[inline(always)]
    pub fn map_get(&self, handle: u64, key: i64) -> Result<i64, crate::Trap> {
        let Some(map) = self.map(handle) else {
            return Err(crate::Trap::BadHandle);
        };
        unsafe {
            let entries = (*map).entries;
            match map_probe(entries, (*map).mask, key) {
                Probe::Found(i) => Ok((*entries.add(i as usize)).value),
                Probe::Vacant(_) => Ok(0),
            }
        }
    }

    /// Sets `key` in a map when that needs no growth; `Ok(false)` when the map must grow
    /// first (the caller calls the runtime).
    #[inline(always)]
    pub fn map_set_in_place(&self, handle: u64, key: i64, value: i64) -> Result<bool, crate::Trap> {
        let Some(map) = self.map(handle) else {
            return Err(crate::Trap::BadHandle);
        };
        unsafe {
            let entries = (*map).entries;
            match map_probe(entries, (*map).mask, key) {
                Probe::Found(i) => (*entries.add(i as usize)).value = value,
                Probe::Vacant(i) => {
                    let len = (*map).len;
                    if !map_has_room(len, (*map).mask) {
                        return Ok(false);
                    }
                    *entries.add(i as usize) = MapEntry {
                        key,
                        value,
                        used: 1,
                    };
                    (*map).len = len + 1;
                }
            }
        }
        Ok(true)
    }

    /// The handle of string constant `index` (program-wide numbering).
    ///
    /// # Safety
    /// `index` must be below the number of string constants the view was made with
    /// (unchecked: compiled code reads constants on its hot path; the runtime allocates
    /// every constant of the verified program, whose indexes it checked, before a run).
    #[inline(always)]
    pub unsafe fn str_const(&self, index: usize) -> u64 {
        debug_assert!((index as u64) < self.str_consts_len);
        unsafe { *self.str_consts.add(index) }
    }
}
