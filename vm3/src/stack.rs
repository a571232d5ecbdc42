//! The register stack: the frames of all live activations, shared by both tiers.

use crate::{Function, Heap, Program, RunError, Value};

/// Default maximum of live activations (spec §2).
pub const DEFAULT_DEPTH_LIMIT: u64 = 10_000;

/// One contiguous, zero-initialised mapping holding every frame of a run: a callee's
/// frame starts where its caller's ends. It is sized from the program's largest frame
/// and the depth limit, so a call that passes the depth check always fits; neither tier
/// checks bounds per call.
///
/// The mapping only reserves address space (`MAP_NORESERVE` where there is one): pages
/// are committed as activations first touch them, so a large limit or one huge frame of
/// a function that is never called costs nothing. The configured limit is always the
/// one enforced (issue 10: it used to be lowered without a word when the largest frame
/// times the limit passed 1 GiB); when the address space cannot be had, making the
/// stack fails with an error that says so.
pub struct RegisterStack {
    slots: memmap2::MmapMut,
    depth_limit: u64,
    /// The frame size (slots) it was sized for.
    max_frame: usize,
}

// SAFETY: the mapping is owned; the raw pointers handed out are used by the thread that
// holds the stack mutably.
unsafe impl Send for RegisterStack {}

/// The largest frame of any function of `program`, in slots (at least 1).
fn largest_frame(program: &Program) -> usize {
    program
        .functions
        .iter()
        .map(|f| f.frame_slots())
        .max()
        .unwrap_or(0)
        .max(1)
}

impl RegisterStack {
    /// A stack for running `program` with at most `depth_limit` live activations, or
    /// [`RunError::Resources`] if the address space it needs cannot be mapped.
    pub fn new(program: &Program, depth_limit: u64) -> Result<RegisterStack, RunError> {
        let max_frame = largest_frame(program);
        let depth_limit = depth_limit.max(1);
        // One more frame than the limit: a call's arguments are written just past the
        // deepest frame before the depth check, and tail calls stage arguments there.
        let bytes = usize::try_from(depth_limit)
            .ok()
            .and_then(|d| d.checked_add(1))
            .and_then(|d| d.checked_mul(max_frame))
            .and_then(|slots| slots.checked_add(16))
            .and_then(|slots| slots.checked_mul(8));
        let cannot = |why: String| {
            RunError::Resources(format!(
                "cannot reserve the register stack for a depth limit of {depth_limit} with \
                 the largest frame of {max_frame} registers: {why}"
            ))
        };
        let bytes = bytes.ok_or_else(|| cannot("the size overflows the address space".into()))?;
        let slots = memmap2::MmapOptions::new()
            .len(bytes)
            .no_reserve_swap()
            .map_anon()
            .map_err(|e| cannot(format!("{bytes} bytes: {e}")))?;
        Ok(RegisterStack {
            slots,
            depth_limit,
            max_frame,
        })
    }

    /// Whether this stack serves runs of `program` with `depth_limit` (a store keeps its
    /// stack while it does).
    pub fn fits(&self, program: &Program, depth_limit: u64) -> bool {
        self.depth_limit == depth_limit.max(1) && self.max_frame >= largest_frame(program)
    }

    pub fn depth_limit(&self) -> u64 {
        self.depth_limit
    }

    pub fn base(&mut self) -> *mut u64 {
        self.slots.as_mut_ptr() as *mut u64
    }

    /// Checks `args` against the parameters of function `index` and writes them into
    /// the first frame (spec §2: parameter k lands in register k of its bank), whose
    /// other registers it clears. String, list and map arguments are allocated in
    /// `heap`, which must have begun the run.
    pub fn place_arguments(
        &mut self,
        program: &Program,
        index: usize,
        args: &[Value],
        heap: &mut Heap,
    ) -> Result<(), RunError> {
        let func = &program.functions[index];
        let entry = &func.name;
        if args.len() != func.params.len() {
            return Err(RunError::Arguments(format!(
                "`{entry}` takes {} argument{}, got {}",
                func.params.len(),
                if func.params.len() == 1 { "" } else { "s" },
                args.len()
            )));
        }
        for (k, (arg, &bank)) in args.iter().zip(&func.params).enumerate() {
            if arg.bank() != bank {
                return Err(RunError::Arguments(format!(
                    "argument {} of `{entry}` must be {}, got {}",
                    k + 1,
                    bank.name(),
                    arg.bank().name()
                )));
            }
        }
        let frame = self.base();
        // SAFETY: the stack holds at least one frame of every function.
        unsafe { clear_frame(func, frame) };
        for (k, (arg, &bank)) in args.iter().zip(&func.params).enumerate() {
            let bits = heap.alloc_value(arg).map_err(|e| {
                RunError::Arguments(format!("argument {} of `{entry}`: {e}", k + 1))
            })?;
            // SAFETY: a parameter slot of the first frame.
            unsafe { *frame.add(func.regs.slot(bank, k)) = bits };
        }
        Ok(())
    }
}

/// Sets every register of a frame of `func` to its entry value (spec §1): 0 and +0.0
/// in the number banks, the null cell in the cell bank.
///
/// # Safety
/// `frame` must point to `func.frame_slots()` writable slots.
#[inline(always)]
pub unsafe fn clear_frame(func: &Function, frame: *mut u64) {
    let numbers = func.regs.i64 as usize + func.regs.f64 as usize;
    unsafe {
        std::ptr::write_bytes(frame, 0, numbers);
        for slot in numbers..func.frame_slots() {
            *frame.add(slot) = stencils::cell::NULL;
        }
    }
}
