//! Register assignment: which vm3 registers of a function live in machine registers.
//!
//! One assignment per function, fixed for its whole body: the `CACHED_INT` integer
//! machine registers go to the i64 and cell registers with the highest use counts, the
//! `CACHED_FLOAT` float ones to the f64 registers, each use weighted by 8 per loop it
//! sits in (a loop being the range of a backward branch). A fixed assignment needs no
//! moves at branches and joins, keeps this pass a single linear scan (compile speed is
//! the point of copy-and-patch), and puts every loop's hottest registers in machine
//! registers whenever they fit; see `docs/ARCHITECTURE.md`.
//!
//! The pass also computes which cached registers are live after each instruction, so a
//! call saves only what is read after it.

use stencils::variant::{Loc, CACHED_FLOAT, CACHED_INT};
use stencils::{Bank, Field, Inst, Opcode, OperandKind};
use vm3::{Function, Program};

/// Which vm3 register each machine register holds (a plain value: a compiled program
/// keeps one per function for `stitch dump`).
#[derive(Clone, Copy, Debug)]
pub struct CachedSet {
    /// The vm3 register each integer machine register holds.
    pub int: [Option<(Bank, u16)>; CACHED_INT],
    /// The vm3 register each float machine register holds.
    pub float: [Option<u16>; CACHED_FLOAT],
}

impl CachedSet {
    /// Every cached vm3 register with its machine register.
    pub fn iter(&self) -> impl Iterator<Item = (Bank, usize, MachineReg)> + '_ {
        let ints = self.int.iter().enumerate().filter_map(|(k, r)| {
            r.map(|(bank, reg)| (bank, reg as usize, MachineReg::Int(k as u8)))
        });
        let floats = self.float.iter().enumerate().filter_map(|(k, r)| {
            r.map(|reg| (Bank::F64, reg as usize, MachineReg::Float(k as u8)))
        });
        ints.chain(floats)
    }
}

/// Where the registers of one function live.
pub struct Assignment {
    pub regs: CachedSet,
    /// `int` and `float` as keys a search compares in one instruction each
    /// ([`register_key`], `NO_KEY` for an empty machine register): `machine_reg` is
    /// asked for every operand of every instruction.
    int_keys: [u32; CACHED_INT],
    float_keys: [u32; CACHED_FLOAT],
    /// The registers live after each instruction, as masks whose bits `liveness`
    /// defines; kept only for functions that call (nothing else asks), else empty.
    live_out: Vec<u64>,
    /// The registers live at entry: the only ones the prologue must clear (a register
    /// written before any read cannot show its entry value).
    live_at_entry: u64,
    liveness: Liveness,
    /// `DivI64` / `ModI64` instructions whose divisor register holds a known constant,
    /// as `(pc, divisor)` in instruction order (`constants::known_divisors`): they are
    /// lowered without reading that register.
    known_divisors: Vec<(u32, i64)>,
}

/// What the bits of a function's live sets stand for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Liveness {
    /// Bit `s` is the register in frame slot `s` (functions of at most 64 slots).
    Slots,
    /// Bits are [`CacheMask`] bits: only the cached registers are tracked; every frame
    /// register counts as live at entry.
    CachedOnly,
}

/// A set of cached machine registers: bit `k` integer register `k`, bit
/// `CACHED_INT + k` float register `k`.
pub type CacheMask = u16;

/// Where a machine register of a mask is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MachineReg {
    Int(u8),
    Float(u8),
}

impl MachineReg {
    /// The register's name on the machine this crate runs on (`stitch dump`).
    pub fn name(self) -> &'static str {
        #[cfg(target_arch = "x86_64")]
        const NAMES: ([&str; CACHED_INT], [&str; CACHED_FLOAT]) = (
            ["rdx", "rcx", "r8", "r9"],
            [
                "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7",
            ],
        );
        #[cfg(not(target_arch = "x86_64"))]
        const NAMES: ([&str; CACHED_INT], [&str; CACHED_FLOAT]) = (
            ["x2", "x3", "x4", "x5"],
            ["d0", "d1", "d2", "d3", "d4", "d5", "d6", "d7"],
        );
        match self {
            MachineReg::Int(k) => NAMES.0[k as usize],
            MachineReg::Float(k) => NAMES.1[k as usize],
        }
    }

    pub fn bit(self) -> CacheMask {
        match self {
            MachineReg::Int(k) => 1 << k,
            MachineReg::Float(k) => 1 << (CACHED_INT + k as usize),
        }
    }
}

/// A vm3 register as one number (see `Assignment::int_keys`).
fn register_key(bank: Bank, reg: u16) -> u32 {
    (bank_index(bank) as u32) << 16 | reg as u32
}

const NO_KEY: u32 = u32::MAX;

fn bank_index(bank: Bank) -> usize {
    match bank {
        Bank::I64 => 0,
        Bank::F64 => 1,
        Bank::Cell => 2,
    }
}

impl Assignment {
    /// Nothing in machine registers: how a unit compiled alone (tier-up) sees a callee
    /// outside it, reached through a bridge that reads every argument from the frame.
    pub fn frame_only() -> Assignment {
        Assignment::of_callee(CachedSet {
            int: [None; CACHED_INT],
            float: [None; CACHED_FLOAT],
        })
    }

    /// How a caller in another unit sees a compiled function whose cached registers
    /// are `regs`: where to pass its parameters (only `machine_reg` and `loc` answer).
    pub fn of_callee(regs: CachedSet) -> Assignment {
        let CachedSet { int, float } = regs;
        Assignment {
            regs,
            int_keys: int.map(|r| r.map_or(NO_KEY, |(bank, reg)| register_key(bank, reg))),
            float_keys: float.map(|r| r.map_or(NO_KEY, |reg| register_key(Bank::F64, reg))),
            live_out: Vec::new(),
            live_at_entry: 0,
            liveness: Liveness::CachedOnly,
            known_divisors: Vec::new(),
        }
    }

    /// Where register `reg` of `bank` lives.
    pub fn loc(&self, bank: Bank, reg: usize) -> Loc {
        match self.machine_reg(bank, reg) {
            Some(MachineReg::Int(k) | MachineReg::Float(k)) => Loc::Cached(k),
            None => Loc::Frame,
        }
    }

    /// The machine register holding register `reg` of `bank`, if it is cached.
    pub fn machine_reg(&self, bank: Bank, reg: usize) -> Option<MachineReg> {
        let key = register_key(bank, reg as u16);
        if bank == Bank::F64 {
            let k = self.float_keys.iter().position(|&r| r == key)?;
            Some(MachineReg::Float(k as u8))
        } else {
            let k = self.int_keys.iter().position(|&r| r == key)?;
            Some(MachineReg::Int(k as u8))
        }
    }

    /// Every cached vm3 register with its machine register.
    pub fn cached(&self) -> impl Iterator<Item = (Bank, usize, MachineReg)> + '_ {
        self.regs.iter()
    }

    /// The mask of every cached register.
    pub fn all(&self) -> CacheMask {
        self.cached().fold(0, |m, (_, _, r)| m | r.bit())
    }

    /// The cached registers live after instruction `pc` of a function that calls.
    pub fn cached_live_after(&self, func: &Function, pc: usize) -> CacheMask {
        if self.all() == 0 {
            return 0;
        }
        let live = self.live_out[pc];
        match self.liveness {
            Liveness::CachedOnly => live as CacheMask,
            Liveness::Slots => self
                .cached()
                .filter(|&(bank, reg, _)| live >> func.regs.slot(bank, reg) & 1 != 0)
                .fold(0, |m, (_, _, r)| m | r.bit()),
        }
    }

    /// The divisor of the division at `pc` when the compiler knows it.
    pub fn known_divisor(&self, pc: usize) -> Option<i64> {
        let at = self
            .known_divisors
            .binary_search_by_key(&(pc as u32), |&(p, _)| p)
            .ok()?;
        Some(self.known_divisors[at].1)
    }

    /// Whether register `reg` of `bank` may be read before it is written: only then
    /// must the prologue clear it.
    pub fn live_at_entry(&self, func: &Function, bank: Bank, reg: usize) -> bool {
        match (self.liveness, self.machine_reg(bank, reg)) {
            (Liveness::Slots, _) => self.live_at_entry >> func.regs.slot(bank, reg) & 1 != 0,
            (Liveness::CachedOnly, Some(m)) => self.live_at_entry & m.bit() as u64 != 0,
            (Liveness::CachedOnly, None) => true,
        }
    }
}

/// Buffers one compile reuses from function to function (compile speed: no allocation
/// per function but the assignment's liveness).
#[derive(Default)]
pub struct Scratch {
    depth_delta: Vec<i32>,
    /// Each instruction's register uses, instruction after instruction, as
    /// `id << 2 | written << 1 | read` with `id` the register's dense number
    /// ([`DenseIds`]); `use_start[pc]..use_start[pc + 1]` are those of `pc`.
    uses: Vec<u32>,
    use_start: Vec<u32>,
    /// The successors of each instruction (`NO_SUCCESSOR` where there is none).
    successors: Vec<[u32; 2]>,
    weights: Vec<u64>,
    /// The live-set bit of each dense register number (0: not tracked).
    live_bit: Vec<u64>,
    use_mask: Vec<u64>,
    def_mask: Vec<u64>,
    live_in: Vec<u64>,
    live_out: Vec<u64>,
}

const NO_SUCCESSOR: u32 = u32::MAX;
const READ: u32 = 1;
const WRITTEN: u32 = 2;

/// Numbers the registers of a function densely across banks: the i64 registers, then
/// the f64 ones, then the cells.
#[derive(Clone, Copy)]
struct DenseIds {
    first: [u32; 3],
}

impl DenseIds {
    fn new(func: &Function) -> DenseIds {
        let (i, f) = (func.regs.get(Bank::I64), func.regs.get(Bank::F64));
        DenseIds {
            first: [0, i, i + f],
        }
    }

    fn id(self, bank: Bank, reg: usize) -> u32 {
        self.first[bank_index(bank)] + reg as u32
    }

    fn len(self, func: &Function) -> usize {
        self.first[2] as usize + func.regs.get(Bank::Cell) as usize
    }
}

/// The `N` heaviest of the candidates offered, heaviest first; ties go to the first
/// offered, so the assignment is deterministic.
struct Heaviest<T, const N: usize> {
    top: [Option<(u64, T)>; N],
}

impl<T: Copy, const N: usize> Heaviest<T, N> {
    fn new() -> Self {
        Heaviest { top: [None; N] }
    }

    fn offer(&mut self, weight: u64, item: T) {
        if weight == 0 {
            return;
        }
        let Some(at) = self
            .top
            .iter()
            .position(|slot| slot.is_none_or(|(w, _)| weight > w))
        else {
            return;
        };
        // By hand: `rotate_right` on a slice this short costs more than the offer.
        let mut carried = Some((weight, item));
        for slot in &mut self.top[at..] {
            carried = std::mem::replace(slot, carried);
            if carried.is_none() {
                break;
            }
        }
    }

    fn items(&self) -> [Option<T>; N] {
        self.top.map(|slot| slot.map(|(_, item)| item))
    }
}

/// A register operand of an instruction: its bank, index, and whether the instruction
/// reads and writes it.
#[derive(Clone, Copy, Debug)]
pub struct RegUse {
    pub bank: Bank,
    pub reg: usize,
    pub read: bool,
    pub write: bool,
}

/// Every register an instruction touches, call arguments included.
pub fn reg_uses(program: &Program, inst: Inst, mut each: impl FnMut(RegUse)) {
    let op = Opcode::from_u8(inst.code).expect("verified opcode");
    let info = op.info();
    for &(field, kind) in info.operands {
        let raw = inst.field(field) as usize;
        let (read, write) = (info.reads(field), info.writes(field));
        match kind {
            OperandKind::Reg(bank) => each(RegUse {
                bank,
                reg: raw,
                read,
                write,
            }),
            OperandKind::Dest => each(RegUse {
                bank: Bank::from_u8(inst.flags).expect("verified bank"),
                reg: raw,
                read: false,
                write: true,
            }),
            OperandKind::FmaPair => {
                for reg in [raw & 0xFF, raw >> 8] {
                    each(RegUse {
                        bank: Bank::F64,
                        reg,
                        read: true,
                        write: false,
                    });
                }
            }
            OperandKind::Args(_) => {
                let callee = inst.field(Field::C) as usize;
                for (k, &bank) in program.functions[callee].params.iter().enumerate() {
                    each(RegUse {
                        bank,
                        reg: raw + k,
                        read: true,
                        write: false,
                    });
                }
            }
            _ => {}
        }
    }
}

/// Assigns the registers of every function of `program` (one scratch for all).
pub fn assign_all(program: &Program, scratch: &mut Scratch) -> Vec<Assignment> {
    program
        .functions
        .iter()
        .map(|f| assign(program, f, scratch))
        .collect()
}

/// Assigns the registers of `func`.
pub fn assign(program: &Program, func: &Function, scratch: &mut Scratch) -> Assignment {
    let n = func.code.len();
    let ids = DenseIds::new(func);
    // One decoding pass: the uses, the successors, and the loop depth by a difference
    // array over the ranges of backward branches.
    let Scratch {
        depth_delta,
        uses,
        use_start,
        successors,
        weights,
        ..
    } = scratch;
    depth_delta.clear();
    depth_delta.resize(n + 1, 0);
    uses.clear();
    use_start.clear();
    successors.clear();
    let mut calls = false;
    let mut loops = false;
    for (pc, &inst) in func.code.iter().enumerate() {
        let info = Opcode::from_u8(inst.code).expect("verified opcode").info();
        let target = info.target_field().map(|f| inst.field(f) as usize);
        if let Some(target) = target {
            if target <= pc {
                loops = true;
                depth_delta[target] += 1;
                depth_delta[pc + 1] -= 1;
            }
        }
        let next = !info.terminal && pc + 1 < n;
        successors.push([
            if next { pc as u32 + 1 } else { NO_SUCCESSOR },
            target.map_or(NO_SUCCESSOR, |t| t as u32),
        ]);
        calls |= info.is_call() && !info.is_tail_call();
        use_start.push(uses.len() as u32);
        reg_uses(program, inst, |u| {
            uses.push(ids.id(u.bank, u.reg) << 2 | u.read as u32 | (u.write as u32) << 1)
        });
    }
    use_start.push(uses.len() as u32);
    weights.clear();
    weights.resize(ids.len(func), 0);
    let known_divisors = crate::constants::known_divisors(program, func);
    let mut divisions = known_divisors.iter().peekable();
    let mut depth = 0i32;
    for pc in 0..n {
        depth += depth_delta[pc];
        let weight = 1u64 << (3 * depth.clamp(0, 6) as u32);
        for &u in &uses[use_start[pc] as usize..use_start[pc + 1] as usize] {
            weights[(u >> 2) as usize] += weight;
        }
        // A known divisor is not read: its use does not count.
        if divisions.next_if(|&&(p, _)| p as usize == pc).is_some() {
            let divisor = ids.id(Bank::I64, func.code[pc].c as usize);
            weights[divisor as usize] -= weight;
        }
    }
    let mut ints = Heaviest::<(Bank, u16), CACHED_INT>::new();
    for bank in [Bank::I64, Bank::Cell] {
        for reg in 0..func.regs.get(bank) as usize {
            ints.offer(weights[ids.id(bank, reg) as usize], (bank, reg as u16));
        }
    }
    let mut floats = Heaviest::<u16, CACHED_FLOAT>::new();
    for reg in 0..func.regs.get(Bank::F64) as usize {
        floats.offer(weights[ids.id(Bank::F64, reg) as usize], reg as u16);
    }
    let (int, float) = (ints.items(), floats.items());
    let mut assignment = Assignment {
        regs: CachedSet { int, float },
        int_keys: int.map(|r| r.map_or(NO_KEY, |(bank, reg)| register_key(bank, reg))),
        float_keys: float.map(|r| r.map_or(NO_KEY, |reg| register_key(Bank::F64, reg))),
        live_out: Vec::new(),
        live_at_entry: 0,
        liveness: Liveness::CachedOnly,
        known_divisors,
    };
    // Registers are numbered densely in frame slot order, so with at most 64 slots every
    // register has a bit; else only the cached ones are tracked.
    let slots = ids.len(func);
    let live_bit = &mut scratch.live_bit;
    live_bit.clear();
    if slots <= 64 {
        assignment.liveness = Liveness::Slots;
        live_bit.extend((0..slots).map(|s| 1u64 << s));
    } else if assignment.all() != 0 {
        live_bit.resize(slots, 0);
        for (bank, reg, m) in assignment.cached() {
            live_bit[ids.id(bank, reg) as usize] = m.bit() as u64;
        }
    } else {
        // Nothing is tracked: the prologue clears every frame register.
        return assignment;
    }
    assignment.live_at_entry = liveness(func, loops, scratch);
    if calls {
        assignment.live_out = scratch.live_out.clone();
    }
    assignment
}

/// The registers live after each instruction (left in `scratch.live_out`), and those
/// live at entry: a backward dataflow over the function's control flow, on the live-set
/// bits of `scratch.live_bit` (`loops`: the function has a backward branch). A trap
/// ends the run, so it reads nothing; a `Deopt` reads everything (the interpreter
/// resumes from the frame); a return reads its operand.
fn liveness(func: &Function, loops: bool, scratch: &mut Scratch) -> u64 {
    let n = func.code.len();
    let Scratch {
        uses,
        use_start,
        successors,
        live_bit,
        use_mask,
        def_mask,
        live_in,
        live_out,
        ..
    } = scratch;
    for v in [
        &mut *use_mask,
        &mut *def_mask,
        &mut *live_in,
        &mut *live_out,
    ] {
        v.clear();
        v.resize(n, 0);
    }
    let all = live_bit.iter().fold(0, |m, b| m | b);
    for (pc, inst) in func.code.iter().enumerate() {
        if inst.code == Opcode::Deopt as u8 {
            use_mask[pc] = all;
        }
        for &u in &uses[use_start[pc] as usize..use_start[pc + 1] as usize] {
            let bit = live_bit[(u >> 2) as usize];
            if u & READ != 0 {
                use_mask[pc] |= bit;
            } else if u & WRITTEN != 0 {
                def_mask[pc] |= bit;
            }
        }
    }
    // In reverse order every successor but a loop header comes first: without loops
    // one sweep is the fixpoint, with them sweeps repeat until nothing changes.
    let mut changed = true;
    while changed {
        changed = false;
        for pc in (0..n).rev() {
            let out = successors[pc]
                .iter()
                .filter(|&&s| s != NO_SUCCESSOR)
                .fold(0, |m, &s| m | live_in[s as usize]);
            let inn = use_mask[pc] | (out & !def_mask[pc]);
            if out != live_out[pc] || inn != live_in[pc] {
                live_out[pc] = out;
                live_in[pc] = inn;
                changed = true;
            }
        }
        changed &= loops;
    }
    live_in.first().copied().unwrap_or(0)
}
