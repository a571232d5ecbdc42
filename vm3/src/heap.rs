//! The heap of a run: arenas of strings, lists and maps (spec §1, §2).
//!
//! Objects are records in one arena per kind, named by handles that carry the arena
//! kind, a generation and the slot. The records have the `#[repr(C)]` layouts of
//! [`stencils::heap`], so compiled code reads and writes them directly through the
//! [`HeapView`] this heap keeps current; everything that allocates runs here, called
//! by the interpreter directly and by compiled code through helpers.
//!
//! Lifetime: objects live until the run ends ([`Heap::end_run`]), which frees them all.
//! A heap can serve many runs one after another: the slot records are reused, and each
//! run stamps its handles with a new generation taken from one process-wide source, so
//! that two heaps do not hand out the same generation (until the 12-bit space wraps).
//! Handles never cross the embedding boundary as bits ([`Value`] has no raw cell), so a
//! run only ever sees handles it made; the generation check is the second line, and
//! refuses a handle kept in a slot from an earlier run as `bad handle`.
//!
//! The limit counts payload bytes plus [`OBJECT_BYTES`] per object. Passing it traps
//! with `heap limit exceeded`. String constants are the program's, not the run's: they
//! are allocated when the first run of a program begins, not counted, and kept for the
//! next run of the same program (restamped with its generation, not copied again).

use crate::{Const, Value, VerifiedProgram};
use std::sync::atomic::{AtomicU32, Ordering};
use stencils::cell::{self, Kind};
use stencils::heap::{map_has_room, map_probe, HeapView, ListObj, MapEntry, MapObj, Probe, StrObj};
use stencils::{Bank, Trap};

/// How deep lists in a value crossing the embedding boundary (an argument, a result)
/// may nest: deeper ones are refused with an error, so that everything done with a
/// `Value` (printing, comparing, cloning, dropping, which recurse) stays well within
/// any thread's stack.
pub const MAX_VALUE_DEPTH: usize = 1000;

/// The nesting depth of lists in `value` (0 for a value that is not a list), found
/// without recursion.
fn nesting_depth(value: &Value) -> usize {
    let mut deepest = 0;
    let mut pending = vec![(value, 0usize)];
    while let Some((value, depth)) = pending.pop() {
        if let Value::List(items) = value {
            deepest = deepest.max(depth + 1);
            if deepest > MAX_VALUE_DEPTH {
                break;
            }
            pending.extend(items.iter().map(|item| (item, depth + 1)));
        }
    }
    deepest
}

/// The default heap limit of a run: 256 MiB.
pub const DEFAULT_HEAP_LIMIT: usize = 256 << 20;

/// Bytes charged per object on top of its payload: its slot record and what the
/// allocator keeps beside a block.
pub const OBJECT_BYTES: usize = 48;

/// Slot records kept between runs, per arena; a run that needed more gives the rest
/// back when it ends, so a long-lived heap does not keep its largest run's tables.
const RETAINED_SLOTS: usize = 1 << 12;

/// The smallest map table (entries).
const MIN_MAP_ENTRIES: u64 = 8;

/// The table size of a map that can hold `keys` keys without growing.
fn map_entries_for(keys: u64) -> u64 {
    let mut entries = MIN_MAP_ENTRIES;
    while !map_has_room(keys.saturating_sub(1), entries - 1) {
        entries *= 2;
    }
    entries
}

/// The next generation any heap in the process gives its run.
static NEXT_GENERATION: AtomicU32 = AtomicU32::new(1);

/// A generation no other heap is using now (0 is never one: a fresh heap's slots have
/// it).
fn fresh_generation() -> u32 {
    loop {
        let g = NEXT_GENERATION.fetch_add(1, Ordering::Relaxed) & cell::GENERATION_MASK;
        if g != 0 {
            return g;
        }
    }
}

/// A run's heap. See the module documentation.
pub struct Heap {
    /// What compiled code reads (boxed: `Ctx` points at it, so it must not move).
    view: Box<HeapView>,
    lists: Vec<ListObj>,
    strs: Vec<StrObj>,
    maps: Vec<MapObj>,
    str_consts: Vec<u64>,
    used: usize,
    limit: usize,
    /// The generation of this run's handles.
    generation: u32,
    /// The program whose string constants are the first `str_consts.len()` strings
    /// (kept from run to run of that program).
    consts_of: Option<u64>,
}

// SAFETY: the heap owns every allocation its records and view point to; nothing else
// holds them, so moving the heap to another thread moves them all.
unsafe impl Send for Heap {}

impl Heap {
    /// An empty heap whose runs may use `limit` bytes.
    pub fn new(limit: usize) -> Heap {
        Heap {
            view: Box::new(HeapView::empty()),
            lists: Vec::new(),
            strs: Vec::new(),
            maps: Vec::new(),
            str_consts: Vec::new(),
            used: 0,
            limit,
            generation: 0,
            consts_of: None,
        }
    }

    /// Bytes this run has allocated, as the limit counts them.
    pub fn used(&self) -> usize {
        self.used
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    pub fn set_limit(&mut self, limit: usize) {
        self.limit = limit;
    }

    /// The arenas as compiled code reads them; stays at one address for the heap's life.
    pub fn view(&self) -> *const HeapView {
        &*self.view
    }

    /// Starts a run of `program`: frees whatever an earlier run left, moves to a new
    /// generation and provides the program's string constants (numbered as
    /// [`crate::Program::string_constant_ids`] numbers them): allocated when the heap last
    /// ran another program, else kept and restamped with the new generation.
    pub fn begin_run(&mut self, program: &VerifiedProgram) {
        self.end_run();
        self.generation = fresh_generation();
        if self.consts_of == Some(program.id()) {
            for (slot, (s, handle)) in self.strs.iter_mut().zip(&mut self.str_consts).enumerate() {
                *handle = cell::handle(Kind::Str, self.generation, slot as u32);
                s.handle = *handle;
            }
        } else {
            self.free_constants();
            for func in &program.functions {
                for c in &func.consts {
                    if let Const::Str(bytes) = c {
                        let handle = self.push_str(bytes.clone());
                        self.str_consts.push(handle);
                    }
                }
            }
            self.consts_of = Some(program.id());
        }
        // The constants table changed after the last slot push: point the view at it.
        self.sync_view();
    }

    /// Ends a run: frees every object but the program's string constants. Handles of
    /// this run become stale (the next run restamps the constants).
    pub fn end_run(&mut self) {
        for list in self.lists.drain(..) {
            // SAFETY: built by `Vec::into_raw_parts`-equivalent code below; u64 has no drop.
            drop(unsafe { Vec::from_raw_parts(list.items, 0, list.cap as usize) });
        }
        free_strs(self.strs.drain(self.str_consts.len()..));
        for map in self.maps.drain(..) {
            drop(unsafe { Vec::from_raw_parts(map.entries, 0, (map.mask + 1) as usize) });
        }
        self.lists.shrink_to(RETAINED_SLOTS);
        self.strs
            .shrink_to(RETAINED_SLOTS.max(self.str_consts.len()));
        self.maps.shrink_to(RETAINED_SLOTS);
        self.used = 0;
        self.sync_view();
    }

    /// Frees the string constants (after [`Heap::end_run`], they are all the strings).
    fn free_constants(&mut self) {
        debug_assert_eq!(self.strs.len(), self.str_consts.len());
        free_strs(self.strs.drain(..));
        self.str_consts.clear();
        self.str_consts.shrink_to(RETAINED_SLOTS);
        self.consts_of = None;
    }

    /// Points the view at the arenas again (after a slot table grew or shrank).
    fn sync_view(&mut self) {
        // SAFETY: the arenas own every object the view reaches and outlive it (the view
        // is re-pointed after every change of their slot tables).
        *self.view = unsafe {
            HeapView::new(
                (self.lists.as_mut_ptr(), self.lists.len() as u64),
                (self.strs.as_ptr(), self.strs.len() as u64),
                (self.maps.as_mut_ptr(), self.maps.len() as u64),
                (self.str_consts.as_ptr(), self.str_consts.len() as u64),
            )
        };
    }

    /// Takes `bytes` from the limit, or reports that the run passed it.
    fn charge(&mut self, bytes: usize) -> Result<(), Trap> {
        match self.used.checked_add(bytes) {
            Some(total) if total <= self.limit => {
                self.used = total;
                Ok(())
            }
            _ => Err(Trap::HeapLimitExceeded),
        }
    }

    fn push_str(&mut self, bytes: Vec<u8>) -> u64 {
        let mut bytes = std::mem::ManuallyDrop::new(bytes);
        let handle = cell::handle(Kind::Str, self.generation, self.strs.len() as u32);
        self.strs.push(StrObj {
            bytes: bytes.as_mut_ptr(),
            len: bytes.len() as u64,
            cap: bytes.capacity() as u64,
            handle,
        });
        self.sync_view();
        handle
    }

    fn push_list(&mut self, cap: usize) -> u64 {
        let mut items = std::mem::ManuallyDrop::new(Vec::<u64>::with_capacity(cap));
        let handle = cell::handle(Kind::List, self.generation, self.lists.len() as u32);
        self.lists.push(ListObj {
            items: items.as_mut_ptr(),
            len: 0,
            cap: items.capacity() as u64,
            handle,
        });
        self.sync_view();
        handle
    }

    fn push_map(&mut self, entries: usize) -> u64 {
        let mut table = std::mem::ManuallyDrop::new(vec![MapEntry::default(); entries]);
        let handle = cell::handle(Kind::Map, self.generation, self.maps.len() as u32);
        self.maps.push(MapObj {
            entries: table.as_mut_ptr(),
            len: 0,
            mask: entries as u64 - 1,
            handle,
        });
        self.sync_view();
        handle
    }

    /// The bytes of the string `handle` names.
    pub fn str_bytes(&self, handle: u64) -> Option<&[u8]> {
        let s = self.view.string(handle)?;
        // SAFETY: a checked handle names a live string of `len` bytes.
        Some(unsafe { std::slice::from_raw_parts((*s).bytes, (*s).len as usize) })
    }

    fn list_items(&self, handle: u64) -> Option<&[u64]> {
        let l = self.view.list(handle)?;
        Some(unsafe { std::slice::from_raw_parts((*l).items, (*l).len as usize) })
    }

    fn map_entries(&self, handle: u64) -> Option<&[MapEntry]> {
        let m = self.view.map(handle)?;
        Some(unsafe { std::slice::from_raw_parts((*m).entries, ((*m).mask + 1) as usize) })
    }

    // ---------------------------------------------------------------------------------
    // The operations stencils reach through their tier (`stencils::Tier`). Each returns
    // a handle or 0 for done, or a trap code (`stencils::cell::helper_result`).

    /// A new empty list with room for `cap` items (a negative hint means none).
    pub fn new_list(&mut self, cap: i64) -> u64 {
        let cap = cap.max(0) as usize;
        if let Err(t) = self.charge(OBJECT_BYTES + cap * 8) {
            return t as u64;
        }
        self.push_list(cap)
    }

    /// A new empty map with room for `cap` keys without growing.
    pub fn new_map(&mut self, cap: i64) -> u64 {
        let entries = map_entries_for(cap.max(0) as u64);
        let bytes = OBJECT_BYTES + entries as usize * std::mem::size_of::<MapEntry>();
        if let Err(t) = self.charge(bytes) {
            return t as u64;
        }
        self.push_map(entries as usize)
    }

    /// A new string, the bytes of `a` then of `b`.
    pub fn concat(&mut self, a: u64, b: u64) -> u64 {
        let (Some(x), Some(y)) = (self.str_bytes(a), self.str_bytes(b)) else {
            return Trap::BadHandle as u64;
        };
        let mut bytes = Vec::with_capacity(x.len() + y.len());
        bytes.extend_from_slice(x);
        bytes.extend_from_slice(y);
        if let Err(t) = self.charge(OBJECT_BYTES + bytes.len()) {
            return t as u64;
        }
        self.push_str(bytes)
    }

    /// Appends `item` to a list, growing it (doubling) when it is full.
    pub fn list_push_grow(&mut self, list: u64, item: u64) -> u64 {
        let Some(obj) = self.view.list(list) else {
            return Trap::BadHandle as u64;
        };
        // SAFETY: a checked handle; the record is in `self.lists`, which nothing else
        // borrows while this runs.
        let obj = unsafe { &mut *obj };
        if obj.len == obj.cap {
            let new_cap = (obj.cap * 2).max(4);
            if let Err(t) = self.charge((new_cap - obj.cap) as usize * 8) {
                return t as u64;
            }
            let mut items =
                unsafe { Vec::from_raw_parts(obj.items, obj.len as usize, obj.cap as usize) };
            items.reserve_exact((new_cap - obj.len) as usize);
            let mut items = std::mem::ManuallyDrop::new(items);
            obj.items = items.as_mut_ptr();
            obj.cap = items.capacity() as u64;
        }
        unsafe { *obj.items.add(obj.len as usize) = item };
        obj.len += 1;
        0
    }

    /// Sets a key of a map, doubling its table first when a new key would fill it.
    pub fn map_set_grow(&mut self, map: u64, key: i64, value: i64) -> u64 {
        let Some(obj) = self.view.map(map) else {
            return Trap::BadHandle as u64;
        };
        let obj = unsafe { &mut *obj };
        let absent = matches!(
            unsafe { map_probe(obj.entries, obj.mask, key) },
            Probe::Vacant(_)
        );
        if absent && !map_has_room(obj.len, obj.mask) {
            let old_entries = (obj.mask + 1) as usize;
            let new_entries = old_entries * 2;
            let grow = (new_entries - old_entries) * std::mem::size_of::<MapEntry>();
            if let Err(t) = self.charge(grow) {
                return t as u64;
            }
            let mut table = std::mem::ManuallyDrop::new(vec![MapEntry::default(); new_entries]);
            let new_mask = new_entries as u64 - 1;
            let old = unsafe { Vec::from_raw_parts(obj.entries, old_entries, old_entries) };
            for e in old.iter().filter(|e| e.used != 0) {
                // SAFETY: the new table is at most half full.
                if let Probe::Vacant(i) = unsafe { map_probe(table.as_ptr(), new_mask, e.key) } {
                    table[i as usize] = *e;
                }
            }
            drop(old);
            obj.entries = table.as_mut_ptr();
            obj.mask = new_mask;
        }
        match self.view.map_set_in_place(map, key, value) {
            Ok(true) => 0,
            // The table has room now, and the handle was checked above.
            Ok(false) | Err(_) => Trap::HeapLimitExceeded as u64,
        }
    }

    // ---------------------------------------------------------------------------------
    // Values crossing the embedding boundary.

    /// The register bits of an argument: a string, list or map argument is allocated in
    /// this run's heap (like a constant, outside the limit).
    /// An argument nested deeper than [`MAX_VALUE_DEPTH`] is refused (checked without
    /// recursion, before the recursive copy).
    pub fn alloc_value(&mut self, value: &Value) -> Result<u64, String> {
        if nesting_depth(value) > MAX_VALUE_DEPTH {
            return Err(format!(
                "the value nests lists deeper than {MAX_VALUE_DEPTH} levels"
            ));
        }
        self.alloc_value_within_depth(value)
    }

    fn alloc_value_within_depth(&mut self, value: &Value) -> Result<u64, String> {
        Ok(match value {
            Value::I64(v) => *v as u64,
            Value::F64(v) => v.to_bits(),
            Value::Null => cell::NULL,
            Value::Bool(b) => cell::from_bool(*b),
            Value::Str(s) => self.push_str(s.as_bytes().to_vec()),
            Value::Bytes(b) => self.push_str(b.clone()),
            Value::List(items) => {
                let cells = items
                    .iter()
                    .map(|item| self.alloc_item(item))
                    .collect::<Result<Vec<u64>, String>>()?;
                let list = self.push_list(cells.len());
                for item in cells {
                    // Sized for its items: never grows, so never charged.
                    let _ = self.view.list_push_in_place(list, item);
                }
                list
            }
            Value::Map(pairs) => {
                let map = self.push_map(map_entries_for(pairs.len() as u64) as usize);
                for &(k, v) in pairs {
                    let _ = self.view.map_set_in_place(map, k, v);
                }
                map
            }
        })
    }

    /// The cell of a list item: integers and floats are stored inline.
    fn alloc_item(&mut self, value: &Value) -> Result<u64, String> {
        match value {
            Value::I64(v) => cell::from_int(*v)
                .ok_or_else(|| format!("list item {v} does not fit in a cell (48 bits)")),
            Value::F64(v) => Ok(cell::from_f64(*v)),
            other => self.alloc_value_within_depth(other),
        }
    }

    /// The value a result register holds, read out of the heap (before the run ends).
    ///
    /// Bounded, and without recursion: a result nested deeper than [`MAX_VALUE_DEPTH`],
    /// a list that contains itself, or one that expands to more values than
    /// `result_budget` allows (sublists shared `k` times count `k` times, so a result of
    /// `N` levels `[level, level]` would expand to `2^N`) is an error that says so,
    /// never a crash or a hang.
    pub fn value_of(&self, bank: Bank, bits: u64) -> Result<Value, String> {
        match bank {
            Bank::I64 => Ok(Value::I64(bits as i64)),
            Bank::F64 => Ok(Value::F64(f64::from_bits(bits))),
            Bank::Cell => self.cell_value(bits),
        }
    }

    /// How many values a result may expand to: one per 16 bytes of the heap limit (16M
    /// for the default limit; a `Value` takes 32 bytes, so that much is half a GiB), and
    /// never fewer than 65,536.
    fn result_budget(&self) -> usize {
        (self.limit / 16).max(1 << 16)
    }

    fn cell_value(&self, root: u64) -> Result<Value, String> {
        let mut budget = self.result_budget();
        // The lists being read, innermost last: handle, items, the values read so far.
        let mut open: Vec<(u64, &[u64], Vec<Value>)> = Vec::new();
        let mut next = root;
        loop {
            if budget == 0 {
                return Err(format!(
                    "the result expands to more than {} values (shared sublists count \
                     each time they occur)",
                    self.result_budget()
                ));
            }
            budget -= 1;
            let mut value = match self.list_items(next) {
                None => Some(self.scalar_value(next)?),
                Some(items) => {
                    if open.iter().any(|&(handle, ..)| handle == next) {
                        return Err("the result contains a list that contains itself".into());
                    }
                    if open.len() == MAX_VALUE_DEPTH {
                        return Err(format!(
                            "the result nests lists deeper than {MAX_VALUE_DEPTH} levels"
                        ));
                    }
                    open.push((next, items, Vec::with_capacity(items.len().min(budget))));
                    None
                }
            };
            // Hand the value to the innermost open list; close the lists it completes.
            loop {
                let Some((_, items, read)) = open.last_mut() else {
                    return Ok(value.expect("a value once every list is closed"));
                };
                read.extend(value.take());
                if read.len() < items.len() {
                    next = items[read.len()];
                    break;
                }
                let (_, _, read) = open.pop().expect("an open list");
                value = Some(Value::List(read));
            }
        }
    }

    /// A cell that is not a list, as a value; a cell that names no live object is an
    /// error, never raw bits handed out.
    fn scalar_value(&self, bits: u64) -> Result<Value, String> {
        if let Some(v) = cell::to_int(bits) {
            return Ok(Value::I64(v));
        }
        if let Some(v) = cell::to_f64(bits) {
            return Ok(Value::F64(v));
        }
        match cell::tag(bits) {
            cell::TAG_NULL => return Ok(Value::Null),
            cell::TAG_BOOL => return Ok(Value::Bool(bits & 1 != 0)),
            _ => {}
        }
        if let Some(bytes) = self.str_bytes(bits) {
            return Ok(match String::from_utf8(bytes.to_vec()) {
                Ok(s) => Value::Str(s),
                Err(e) => Value::Bytes(e.into_bytes()),
            });
        }
        if let Some(entries) = self.map_entries(bits) {
            let mut pairs: Vec<(i64, i64)> = entries
                .iter()
                .filter(|e| e.used != 0)
                .map(|e| (e.key, e.value))
                .collect();
            pairs.sort_unstable();
            return Ok(Value::Map(pairs));
        }
        Err("the result holds a cell that names no live object".into())
    }
}

impl Drop for Heap {
    fn drop(&mut self) {
        self.end_run();
        self.free_constants();
    }
}

/// Frees the bytes of string records.
fn free_strs(strs: impl Iterator<Item = StrObj>) {
    for s in strs {
        // SAFETY: each record's bytes were a `Vec<u8>` of capacity `cap` (`push_str`).
        drop(unsafe { Vec::from_raw_parts(s.bytes as *mut u8, 0, s.cap as usize) });
    }
}

impl Default for Heap {
    fn default() -> Heap {
        Heap::new(DEFAULT_HEAP_LIMIT)
    }
}
