//! The register stack: the frames of all live activations, shared by both tiers.

use crate::{Function, Heap, Program, RunError, Value};

/// Default maximum of live activations (spec §2).
pub const DEFAULT_DEPTH_LIMIT: u64 = 10_000;

/// Register memory above which a run's depth limit is lowered (1 GiB): a program whose
/// largest frame is huge reaches `call stack overflow` earlier, in both tiers alike.
const MAX_STACK_SLOTS: usize = 1 << 27;

/// One contiguous, zero-initialised allocation holding every frame of a run: a callee's
/// frame starts where its caller's ends. It is sized from the program's largest frame
/// and the depth limit, so a call that passes the depth check always fits; neither tier
/// checks bounds per call. (Large allocations come from `calloc`/`mmap`, so untouched
/// pages cost nothing.)
pub struct RegisterStack {
    slots: Vec<u64>,
    depth_limit: u64,
}

impl RegisterStack {
    /// A stack for running `program` with at most `depth_limit` live activations. The
    /// limit actually enforced ([`RegisterStack::depth_limit`]) may be lower for programs
    /// with enormous frames.
    pub fn new(program: &Program, depth_limit: u64) -> RegisterStack {
        let max_frame = program
            .functions
            .iter()
            .map(|f| f.frame_slots())
            .max()
            .unwrap_or(0)
            .max(1);
        let affordable = (MAX_STACK_SLOTS / max_frame) as u64;
        let depth_limit = depth_limit.clamp(1, affordable.saturating_sub(2).max(1));
        // One more frame than the limit: a call's arguments are written just past the
        // deepest frame before the depth check, and tail calls stage arguments there.
        let len = (depth_limit as usize + 1) * max_frame + 16;
        RegisterStack {
            slots: vec![0; len],
            depth_limit,
        }
    }

    pub fn depth_limit(&self) -> u64 {
        self.depth_limit
    }

    pub fn base(&mut self) -> *mut u64 {
        self.slots.as_mut_ptr()
    }

    /// Checks `args` against the parameters of the function `entry` and writes them into
    /// the first frame (spec §2: parameter k lands in register k of its bank), whose
    /// other registers it clears. String, list and map arguments are allocated in
    /// `heap`, which must have begun the run. Returns the entry's index.
    pub fn place_arguments(
        &mut self,
        program: &Program,
        entry: &str,
        args: &[Value],
        heap: &mut Heap,
    ) -> Result<usize, RunError> {
        let frame = &mut self.slots;
        let index = program
            .function_index(entry)
            .ok_or_else(|| RunError::Arguments(format!("no function named `{entry}`")))?;
        let func = &program.functions[index];
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
        // SAFETY: the stack holds at least one frame of every function.
        unsafe { clear_frame(func, frame.as_mut_ptr()) };
        for (k, (arg, &bank)) in args.iter().zip(&func.params).enumerate() {
            frame[func.regs.slot(bank, k)] = heap.alloc_value(arg).map_err(|e| {
                RunError::Arguments(format!("argument {} of `{entry}`: {e}", k + 1))
            })?;
        }
        Ok(index)
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
