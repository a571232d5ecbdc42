//! The GDB JIT interface: telling a debugger where compiled vm3 functions are.
//!
//! GDB (and LLDB) put a breakpoint on `__jit_debug_register_code` and, when it is hit,
//! read `__jit_debug_descriptor`: a linked list of in-memory object files, each loaded as
//! if from disk (GDB manual, "JIT Compilation Interface"). Each compile with
//! `Options::gdb_jit` registers one ELF object whose `.text` section lies at the code's
//! address and has a symbol per vm3 function, so that a backtrace taken in a helper called
//! from compiled code names the vm3 function that called it. The object carries no unwind
//! information for compiled code: GDB unwinds a compiled frame by its own prologue
//! analysis (see docs/ARCHITECTURE.md, "Profilers and debuggers", for how far that goes).
//!
//! The two symbols must have exactly these C names and exist once in the process, so they
//! are defined here and nowhere else.

use crate::compile::Compiled;
use object::write::{Object, StandardSection, Symbol, SymbolSection};
use object::{SymbolFlags, SymbolKind, SymbolScope};
use std::sync::Mutex;
use vm3::VerifiedProgram;

/// `jit_code_entry`: one registered object.
#[repr(C)]
struct CodeEntry {
    next: *mut CodeEntry,
    prev: *mut CodeEntry,
    symfile_addr: *const u8,
    symfile_size: u64,
}

/// `jit_descriptor`: the list head, and which entry the last call was about.
#[repr(C)]
pub struct Descriptor {
    version: u32,
    action: u32,
    relevant: *mut CodeEntry,
    first: *mut CodeEntry,
}

const JIT_REGISTER_FN: u32 = 1;
const JIT_UNREGISTER_FN: u32 = 2;

/// The list the debugger reads. Changed only under [`LIST`], then announced by a call
/// of [`__jit_debug_register_code`].
#[no_mangle]
#[used]
pub static mut __jit_debug_descriptor: Descriptor = Descriptor {
    version: 1,
    action: 0,
    relevant: std::ptr::null_mut(),
    first: std::ptr::null_mut(),
};

/// The debugger's breakpoint. The empty `asm!` is a side effect as far as the compiler
/// knows, so the calls are neither removed nor the function merged with another.
#[no_mangle]
#[inline(never)]
pub extern "C" fn __jit_debug_register_code() {
    // SAFETY: no instructions.
    unsafe { std::arch::asm!("", options(nostack, preserves_flags)) };
}

static LIST: Mutex<()> = Mutex::new(());

/// A registered object, unregistered when dropped (before the code it describes is
/// unmapped: `CompiledProgram` drops it first).
pub struct Registration {
    entry: Box<CodeEntry>,
    /// The object the entry points into; the debugger reads it in place.
    _object: Vec<u8>,
}

// SAFETY: the raw pointers are list links, only touched under `LIST`.
unsafe impl Send for Registration {}
unsafe impl Sync for Registration {}

/// Registers the compiled functions of `program`.
pub fn register(program: &VerifiedProgram, compiled: &Compiled) -> Registration {
    let object = symbol_file(program, compiled);
    let mut entry = Box::new(CodeEntry {
        next: std::ptr::null_mut(),
        prev: std::ptr::null_mut(),
        symfile_addr: object.as_ptr(),
        symfile_size: object.len() as u64,
    });
    let _guard = LIST.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    // SAFETY: the descriptor is only changed under `LIST`; the entry is boxed, so it
    // stays where the list points until it is unlinked in `drop`.
    unsafe {
        let descriptor = &raw mut __jit_debug_descriptor;
        let entry_ptr: *mut CodeEntry = &mut *entry;
        (*entry_ptr).next = (*descriptor).first;
        if !(*descriptor).first.is_null() {
            (*(*descriptor).first).prev = entry_ptr;
        }
        (*descriptor).first = entry_ptr;
        (*descriptor).relevant = entry_ptr;
        (*descriptor).action = JIT_REGISTER_FN;
        __jit_debug_register_code();
    }
    Registration {
        entry,
        _object: object,
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let _guard = LIST.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // SAFETY: as in `register`; the entry is in the list until now.
        unsafe {
            let descriptor = &raw mut __jit_debug_descriptor;
            let entry_ptr: *mut CodeEntry = &mut *self.entry;
            let CodeEntry { next, prev, .. } = *entry_ptr;
            if prev.is_null() {
                (*descriptor).first = next;
            } else {
                (*prev).next = next;
            }
            if !next.is_null() {
                (*next).prev = prev;
            }
            (*descriptor).relevant = entry_ptr;
            (*descriptor).action = JIT_UNREGISTER_FN;
            __jit_debug_register_code();
        }
    }
}

/// An ELF relocatable object for this host whose `.text` is the compiled code, at the
/// code's own address, with one function symbol per vm3 function.
fn symbol_file(program: &VerifiedProgram, compiled: &Compiled) -> Vec<u8> {
    let mut object = Object::new(
        object::BinaryFormat::Elf,
        HOST_ARCHITECTURE,
        object::Endianness::Little,
    );
    let text = object.section_id(StandardSection::Text);
    let code = &compiled.region.bytes()[..compiled.code_len];
    object.append_section_data(text, code, 16);
    for (function, code) in program.functions.iter().zip(&compiled.functions) {
        if code.insts.is_empty() {
            // Outside a unit compiled alone (tier-up): no code of its own here.
            continue;
        }
        let range = code.range();
        object.add_symbol(Symbol {
            name: function.name.as_bytes().to_vec(),
            value: range.start as u64,
            size: range.len() as u64,
            kind: SymbolKind::Text,
            scope: SymbolScope::Compilation,
            weak: false,
            section: SymbolSection::Section(text),
            flags: SymbolFlags::None,
        });
    }
    let mut bytes = object
        .write()
        .expect("an object of one section and its symbols is always writable");
    place_section(&mut bytes, b".text", compiled.region.address());
    bytes
}

#[cfg(target_arch = "x86_64")]
const HOST_ARCHITECTURE: object::Architecture = object::Architecture::X86_64;
#[cfg(target_arch = "aarch64")]
const HOST_ARCHITECTURE: object::Architecture = object::Architecture::Aarch64;

/// Sets the address (`sh_addr`) of section `name` in an ELF64 little-endian object:
/// the writer leaves a relocatable object's sections at 0, and the debugger places a
/// registered object's sections at their `sh_addr`, adding the symbols' section offsets.
fn place_section(elf: &mut [u8], name: &[u8], address: u64) {
    use object::read::elf::{ElfFile64, FileHeader};
    use object::{elf::SectionHeader64, Endianness, Object as _, ObjectSection as _};
    let file = ElfFile64::<Endianness>::parse(&*elf).expect("the object just written");
    let index = file
        .section_by_name_bytes(name)
        .expect("the section just written")
        .index()
        .0;
    let endian = file.endian();
    let header = file.elf_header();
    let at = header.e_shoff(endian) as usize
        + index * header.e_shentsize(endian) as usize
        + std::mem::offset_of!(SectionHeader64<Endianness>, sh_addr);
    elf[at..at + 8].copy_from_slice(&address.to_le_bytes());
}
