//! The heap in both tiers (spec §1, §2 "Strings, lists, maps", §3): results handed back
//! as Rust values, every heap trap at the same place in both tiers, stale and forged
//! handles refused, the heap limit, and memory given back when runs end.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use stencils::cell::{self, Kind};
use vm3::interp::Config;
use vm3::{Heap, RunError, Trap, Value, VerifiedProgram};
use vm3_tests::compare::Compiled as CompiledProgram;
use vm3_tests::compare::{same_outcome, show};

/// Counts the bytes the process has allocated and not freed, so a test can see that a
/// run gives back everything it took.
struct Counting;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::SeqCst);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as isize, Ordering::SeqCst);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::SeqCst);
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE_BYTES.fetch_add(new_size as isize - layout.size() as isize, Ordering::SeqCst);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Tests in this file run one at a time: the allocation count is process-wide.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn program(source: &str) -> VerifiedProgram {
    vm3::asm::assemble(source, "test.vm3")
        .unwrap_or_else(|e| panic!("{e:?}"))
        .verify()
        .unwrap_or_else(|e| panic!("{e:?}"))
}

/// Runs `main` in both tiers, requires the same outcome, and returns it.
fn both(p: &VerifiedProgram, args: &[Value], config: &Config) -> Result<Value, RunError> {
    let interp = vm3::interp::run(p, "main", args, config);
    let compiled = CompiledProgram::new(p)
        .expect("compile")
        .run("main", args, config);
    assert!(
        same_outcome(&interp, &compiled),
        "interpreter {}, compiled {}",
        show(&interp),
        show(&compiled)
    );
    interp
}

/// Requires a run that ended with `RunError::Result` saying `needle`.
fn assert_result_refused(result: Result<Value, RunError>, needle: &str, what: &str) {
    match result {
        Err(RunError::Result(message)) => assert!(message.contains(needle), "{what}: {message}"),
        other => panic!("{what}: {}", show(&other)),
    }
}

fn assert_trap(result: Result<Value, RunError>, trap: Trap, function: &str, pc: u32) {
    match result {
        Err(RunError::Trap(t)) => {
            assert_eq!(
                (t.trap, t.function.as_str(), t.pc),
                (trap, function, pc),
                "{t}"
            )
        }
        other => panic!(
            "expected {trap:?} in {function} at {pc}, got {}",
            show(&other)
        ),
    }
}

/// Spec §5: "a string as its text, a list as `[1, 2, 3]`"; the embedding API gives
/// Rust values back: `String`, `Vec`, and for maps their pairs in key order.
#[test]
fn results_come_back_as_rust_values() {
    let _s = serial();
    let p = program(
        r#"
func main(i64) -> cell
    NewList     c0, 0
    ListPushI64 c0, i0
    ConstI64K   i1, -7
    ListPushI64 c0, i1
    ListPushI64 c0, i1
    ConstF64K   f0, 2.5
    ListSetF64  c0, f0, i2           ; item 0 = 2.5 (i2 is 0)
    ConstStrKW  c1, "h\xC3\xA9"
    ConstI64K   i3, 1
    ListSetCell c0, c1, i3           ; item 1 = "hé"
    NewMap      c2, 0
    MapSetI64I64 c2, i1, i0
    MapSetI64I64 c2, i0, i1
    NewList     c3, 4
    ListPushI64 c3, i0
    ListPushI64 c0, i0
    ConstI64K   i4, 3
    ListSetCell c0, c2, i4           ; item 3 = the map
    ConstI64K   i4, 2
    ListSetCell c0, c3, i4           ; item 2 = [i0]
    ReturnCell  c0
end
"#,
    );
    let v = both(&p, &[Value::I64(42)], &Config::default()).unwrap();
    let want = Value::List(vec![
        Value::F64(2.5),
        Value::Str("hé".into()),
        Value::List(vec![Value::I64(42)]),
        Value::Map(vec![(-7, 42), (42, -7)]),
    ]);
    assert!(v.same_bits(&want), "{v:?}");
    assert_eq!(v.to_string(), r#"[2.5, "hé", [42], {-7: 42, 42: -7}]"#);
}

/// A list that holds itself cannot come back as a value: the run ends with an error
/// that says so, in both tiers (issue 10, items 1 and 4: neither endless recursion nor
/// its raw handle handed out).
#[test]
fn a_list_inside_itself_is_refused_as_a_result() {
    let _s = serial();
    let p = program(
        "
func main() -> cell
    NewList     c0, 1
    ListPushI64 c0, i0
    ListSetCell c0, c0, i0
    ReturnCell  c0
end
",
    );
    assert_result_refused(
        both(&p, &[], &Config::default()),
        "contains itself",
        "itself",
    );
}

/// `main(n)`: a list nested `n + 1` deep (`[[[...[]...]]]`), built in a loop that
/// alternates between two registers (there is no cell move).
const NESTED: &str = "
func main(i64) -> cell
    NewList     c0, 0
    ConstI64K   i1, 0
loop:
    CmpGeI64Br  i1, i0, done0
    NewList     c1, 1
    ListPushI64 c1, i1
    ListSetCell c1, c0, i2
    AddI64K     i1, i1, 1
    CmpGeI64Br  i1, i0, done1
    NewList     c0, 1
    ListPushI64 c0, i1
    ListSetCell c0, c1, i2
    AddI64K     i1, i1, 1
    Jump        loop
done0:
    ReturnCell  c0
done1:
    ReturnCell  c1
end
";

/// Deep nesting (issue 10, item 1): a result nested 100,000 deep ended the process
/// with a stack overflow while it was read out of the heap, printed and dropped. Up to
/// `MAX_VALUE_DEPTH` levels it comes back and prints; deeper, both tiers end with an
/// error that says why.
#[test]
fn deeply_nested_results_come_back_or_are_refused() {
    let _s = serial();
    let p = program(NESTED);
    let limit = vm3::MAX_VALUE_DEPTH as i64;
    // `n` pushes around the empty list: n + 1 levels.
    let shallow = both(&p, &[Value::I64(limit - 1)], &Config::default()).unwrap();
    let text = shallow.to_string();
    assert_eq!(text.len(), 2 * limit as usize);
    assert!(text.starts_with("[[[") && text.ends_with("]]]"));
    for n in [limit, 100_000] {
        let result = both(&p, &[Value::I64(n)], &Config::default());
        assert_result_refused(result, "deeper than 1000 levels", &n.to_string());
    }
}

/// Deep arguments (issue 10, item 1): a 100,000-deep `Value::List` argument crashed
/// `Heap::alloc_value`; now it is refused as arguments are, and one within the limit
/// is taken.
#[test]
fn deeply_nested_arguments_are_refused() {
    let _s = serial();
    let p = program(
        "
func main(cell) -> i64
    ListLenI64  i0, c0
    ReturnI64   i0
end
",
    );
    let nest = |depth: usize| {
        let mut v = Value::List(Vec::new());
        for _ in 1..depth {
            v = Value::List(vec![v]);
        }
        v
    };
    let ok = nest(vm3::MAX_VALUE_DEPTH);
    assert_eq!(both(&p, &[ok], &Config::default()), Ok(Value::I64(1)));
    let deep = nest(100_000);
    match both(&p, std::slice::from_ref(&deep), &Config::default()) {
        Err(RunError::Arguments(message)) => {
            assert!(message.contains("deeper than 1000 levels"), "{message}")
        }
        other => panic!("{}", show(&other)),
    }
    // Taking the deep value apart by hand: dropping it whole would recurse 100,000 deep
    // in the test itself.
    let mut rest = deep;
    while let Value::List(mut items) = rest {
        rest = items.pop().unwrap_or(Value::Null);
    }
}

/// Shared sublists (issue 10, item 2): level k + 1 is `[level k, level k]`, so `N`
/// levels are 2N small lists on the heap but 2^N leaves as a value; N = 22 took 2.5 s
/// and 560 MB, N = 40 never ended. The expansion is bounded by the heap limit; past it
/// both tiers end with an error.
#[test]
fn shared_sublists_cannot_expand_without_bound() {
    let _s = serial();
    let p = program(
        "
func main(i64) -> cell
    NewList     c0, 0
    ConstI64K   i1, 0
    ConstI64K   i3, 1
loop:
    CmpGeI64Br  i1, i0, done0
    NewList     c1, 2
    ListPushI64 c1, i1
    ListPushI64 c1, i1
    ListSetCell c1, c0, i2
    ListSetCell c1, c0, i3
    AddI64K     i1, i1, 1
    CmpGeI64Br  i1, i0, done1
    NewList     c0, 2
    ListPushI64 c0, i1
    ListPushI64 c0, i1
    ListSetCell c0, c1, i2
    ListSetCell c0, c1, i3
    AddI64K     i1, i1, 1
    Jump        loop
done0:
    ReturnCell  c0
done1:
    ReturnCell  c1
end
",
    );
    let small = both(&p, &[Value::I64(3)], &Config::default()).unwrap();
    assert_eq!(
        small.to_string(),
        "[[[[], []], [[], []]], [[[], []], [[], []]]]"
    );
    // A 1 MiB heap allows 65,536 values.
    let config = Config {
        heap_limit: 1 << 20,
        ..Config::default()
    };
    assert!(both(&p, &[Value::I64(14)], &config).is_ok());
    for n in [16, 40, 200] {
        let result = both(&p, &[Value::I64(n)], &config);
        assert_result_refused(result, "expands to more than", &n.to_string());
    }
}

/// Strings are bytes: a result that is not UTF-8 comes back as `Bytes`, and string,
/// list and map arguments go into the run's heap.
#[test]
fn strings_are_bytes_and_arguments_are_allocated() {
    let _s = serial();
    let p = program(
        r#"
func main(cell, cell, cell) -> cell
    ConstStrKW  c3, "\xFF"
    ConcatStr   c3, c0, c3
    LenStr      i0, c3
    ListLenI64  i1, c1
    AddI64      i0, i0, i1
    ConstI64K   i2, 5
    MapGetI64I64 i3, c2, i2
    AddI64      i0, i0, i3
    ListPushI64 c1, i0
    ListSetCell c1, c3, i4           ; item 0 = the string
    ReturnCell  c1
end
"#,
    );
    let args = [
        Value::Str("ab".into()),
        Value::List(vec![Value::I64(1), Value::F64(0.5)]),
        Value::Map(vec![(5, 100), (6, 1)]),
    ];
    let v = both(&p, &args, &Config::default()).unwrap();
    let want = Value::List(vec![
        Value::Bytes(vec![b'a', b'b', 0xFF]),
        Value::F64(0.5),
        Value::I64(3 + 2 + 100),
    ]);
    assert!(v.same_bits(&want), "{v:?}");
}

/// Spec §2/§3: each heap trap, at the same function and index in both tiers.
#[test]
fn heap_traps_are_identical_in_both_tiers() {
    let _s = serial();
    let p = program(
        "
func main(i64) -> i64
    NewList     c0, 2
    ConstI64K   i1, 7
    ListPushI64 c0, i1
    CmpEqI64KBr i0, 0, index
    CmpEqI64KBr i0, 1, null
    CmpEqI64KBr i0, 2, wide
    CmpEqI64KBr i0, 3, kind
    CmpEqI64KBr i0, 4, map_as_list
    CmpEqI64KBr i0, 5, negative
    CmpEqI64KBr i0, 6, float_item
    CmpEqI64KBr i0, 7, string_of_list
    ReturnConstK 0
index:
    ConstI64K   i2, 1
    ListGetI64  i3, c0, i2         ; 13: length 1, index 1
    ReturnI64   i3
null:
    ListLenI64  i3, c5             ; 15: c5 is null
    ReturnI64   i3
wide:
    ConstI64KW  i2, 140737488355328
    ListPushI64 c0, i2             ; 18: 2^47 does not fit
    ReturnConstK 1
kind:
    ConstF64K   f0, 1.5
    ListSetF64  c0, f0, i4         ; item 0 = 1.5
    ListGetI64  i3, c0, i4         ; 22: a float item read as an integer
    ReturnI64   i3
map_as_list:
    NewMap      c1, 0
    ListPushI64 c1, i1             ; 25: a map where a list is wanted
    ReturnConstK 2
negative:
    ConstI64K   i2, -1
    ListSetI64  c0, i1, i2         ; 28
    ReturnConstK 3
float_item:
    ConstI64KW  i2, -140737488355329
    ListSetI64  c0, i2, i4         ; 31: below -2^47
    ReturnConstK 4
string_of_list:
    LenStr      i3, c0             ; 33
    ReturnI64   i3
end
",
    );
    let c = Config::default();
    let run = |k: i64| both(&p, &[Value::I64(k)], &c);
    assert_trap(run(0), Trap::IndexOutOfRange, "main", 13);
    assert_trap(run(1), Trap::BadHandle, "main", 15);
    assert_trap(run(2), Trap::IntegerDoesNotFitInCell, "main", 18);
    assert_trap(run(3), Trap::BadHandle, "main", 22);
    assert_trap(run(4), Trap::BadHandle, "main", 25);
    assert_trap(run(5), Trap::IndexOutOfRange, "main", 28);
    assert_trap(run(6), Trap::IntegerDoesNotFitInCell, "main", 31);
    assert_trap(run(7), Trap::BadHandle, "main", 33);
    assert!(run(8).unwrap().same_bits(&Value::I64(0)));
}

/// The largest and smallest integers a cell holds round-trip through a list.
#[test]
fn cell_integers_at_the_edges() {
    let _s = serial();
    let p = program(
        "
func main(i64) -> i64
    NewList     c0, 0
    ListPushI64 c0, i0
    ListGetI64  i1, c0, i2
    ReturnI64   i1
end
",
    );
    for v in [cell::INT_MAX, cell::INT_MIN, 0, -1] {
        let got = both(&p, &[Value::I64(v)], &Config::default()).unwrap();
        assert!(got.same_bits(&Value::I64(v)), "{v}: {got:?}");
    }
    assert_trap(
        both(&p, &[Value::I64(cell::INT_MAX + 1)], &Config::default()),
        Trap::IntegerDoesNotFitInCell,
        "main",
        1,
    );
}

/// Issue 10, item 4. A handle is only ever valid in the run of the heap that made it:
/// no two heaps share a generation (every fresh heap used to start at generation 1, so
/// the bits `0xFFFF_0001_0000_0000` named the first string constant of any run), a
/// heap's next run refuses the handles of its last one, and the program's string
/// constants, kept from run to run, are restamped each time. (Raw handle bits cannot
/// cross the embedding boundary at all: `vm3::Value` has no variant for them.)
#[test]
fn handles_are_valid_only_in_the_run_of_their_heap() {
    let p = program(
        r#"
func main() -> cell
    ConstStrKW  c0, "first"
    ReturnCell  c0
end
"#,
    );
    let first_constant = |heap: &Heap| {
        // SAFETY: the heap began a run of `p`, whose only string constant is number 0.
        unsafe { (*heap.view()).str_const(0) }
    };
    let mut a = Heap::default();
    let mut b = Heap::default();
    a.begin_run(&p);
    b.begin_run(&p);
    let (in_a, in_b) = (first_constant(&a), first_constant(&b));
    assert_ne!(in_a, in_b, "two fresh heaps stamped the same generation");
    assert_eq!(a.str_bytes(in_a), Some(&b"first"[..]));
    assert_eq!(
        b.str_bytes(in_a),
        None,
        "a handle of heap A was accepted by heap B"
    );
    assert_eq!(
        a.str_bytes(in_b),
        None,
        "a handle of heap B was accepted by heap A"
    );
    let forged = cell::handle(Kind::Str, 1, 0);
    if forged != in_a {
        assert_eq!(a.str_bytes(forged), None, "a forged handle was accepted");
    }
    // The next run of the same heap: the constant is kept, under a new generation.
    let mut earlier = vec![in_a];
    for _ in 0..100 {
        a.begin_run(&p);
        let now = first_constant(&a);
        assert_eq!(a.str_bytes(now), Some(&b"first"[..]));
        for &stale in &earlier {
            assert_eq!(a.str_bytes(stale), None, "a stale handle was accepted");
        }
        earlier.push(now);
    }
    a.end_run();
    b.end_run();
}

/// A program that allocates in a loop until the heap limit: it traps cleanly in both
/// tiers, at the same place, and the process's memory afterwards returns to what it
/// was (counted by this test binary's allocator), run after run.
#[test]
fn allocating_past_the_limit_traps_and_memory_returns() {
    let _s = serial();
    let p = program(
        "
; Builds lists of 64 integers until the heap is full.
func main(i64) -> i64
    ConstI64K   i1, 0
more:
    NewList     c0, 0
    ConstI64K   i2, 0
fill:
    ListPushI64 c0, i2
    AddI64K     i2, i2, 1
    CmpLtI64KBr i2, 64, fill
    AddI64K     i1, i1, 1
    CmpLtI64Br  i1, i0, more
    ReturnI64   i1
end
",
    );
    let compiled = CompiledProgram::new(&p).unwrap();
    let config = Config {
        heap_limit: 8 << 20,
        ..Config::default()
    };
    let args = [Value::I64(i64::MAX)];
    // Warm up whatever the runtime caches once per process (stdout locks, stacker).
    let _ = both(&p, &args, &config);
    for round in 0..5 {
        let before = LIVE_BYTES.load(Ordering::SeqCst);
        let interp = vm3::interp::run(&p, "main", &args, &config);
        assert_trap(interp, Trap::HeapLimitExceeded, "main", 3);
        let after_interp = LIVE_BYTES.load(Ordering::SeqCst);
        let jit = compiled.run("main", &args, &config);
        assert_trap(jit, Trap::HeapLimitExceeded, "main", 3);
        let after_jit = LIVE_BYTES.load(Ordering::SeqCst);
        assert_eq!(
            (after_interp - before, after_jit - before),
            (0, 0),
            "round {round}: bytes still allocated after the interpreted and compiled runs"
        );
    }
    // Below the limit the same program finishes: 100 lists fit in 8 MiB.
    assert!(both(&p, &[Value::I64(100)], &config)
        .unwrap()
        .same_bits(&Value::I64(100)));
}

/// A heap kept for many runs (an embedder's server) does not grow: each run frees its
/// objects, and slot tables are kept only up to a bound.
#[test]
fn a_reused_heap_does_not_grow() {
    let _s = serial();
    let p = program(
        r#"
func main(i64) -> i64
    ConstI64K   i1, 0
again:
    ConstStrKW  c0, "abc"
    ConcatStr   c0, c0, c0
    NewMap      c1, 0
    MapSetI64I64 c1, i1, i1
    AddI64K     i1, i1, 1
    CmpLtI64Br  i1, i0, again
    LenStr      i0, c0
    ReturnI64   i0
end
"#,
    );
    let compiled = CompiledProgram::new(&p).unwrap();
    let interpreted = CompiledProgram::interpreted(&p);
    let config = Config::default();
    let mut heap = Heap::new(config.heap_limit);
    let mut jit_store = compiled.store(&config);
    let mut interp_store = interpreted.store(&config);
    let args = [Value::I64(20_000)];
    // The first runs size the heaps' retained tables and the stores' stacks.
    for _ in 0..2 {
        vm3::interp::run_on(&p, "main", &args, &config, &mut heap).unwrap();
        compiled.run_in(&mut jit_store, "main", &args).unwrap();
        interpreted
            .run_in(&mut interp_store, "main", &args)
            .unwrap();
    }
    let before = LIVE_BYTES.load(Ordering::SeqCst);
    for _ in 0..10 {
        let v = vm3::interp::run_on(&p, "main", &args, &config, &mut heap).unwrap();
        assert!(v.same_bits(&Value::I64(6)));
        let v = compiled.run_in(&mut jit_store, "main", &args).unwrap();
        assert!(v.same_bits(&Value::I64(6)));
        let v = interpreted
            .run_in(&mut interp_store, "main", &args)
            .unwrap();
        assert!(v.same_bits(&Value::I64(6)));
    }
    let after = LIVE_BYTES.load(Ordering::SeqCst);
    assert_eq!(
        after - before,
        0,
        "a reused heap kept {} more bytes",
        after - before
    );
    assert_eq!(heap.used(), 0, "objects outlived their run");
}

/// Maps: growth from the smallest table through many doublings keeps every key, in
/// both tiers, against Rust's own map.
#[test]
fn maps_grow_and_keep_every_key() {
    let _s = serial();
    let p = program(
        "
; key = i * 7919 mod 10007 - 5000, value = i; then sum value * 3 + key over i.
func main(i64) -> i64
    NewMap      c0, 0
    ConstI64K   i1, 0
put:
    MulI64K     i2, i1, 7919
    ModI64K     i2, i2, 10007
    SubI64K     i2, i2, 5000
    MapSetI64I64 c0, i2, i1
    AddI64K     i1, i1, 1
    CmpLtI64Br  i1, i0, put
    ConstI64K   i1, 0
    ConstI64K   i4, 0
get:
    MulI64K     i2, i1, 7919
    ModI64K     i2, i2, 10007
    SubI64K     i2, i2, 5000
    MapGetI64I64 i3, c0, i2
    MulI64K     i3, i3, 3
    AddI64      i3, i3, i2
    AddI64      i4, i4, i3
    AddI64K     i1, i1, 1
    CmpLtI64Br  i1, i0, get
    ReturnI64   i4
end
",
    );
    // The loops test at the bottom: n >= 1.
    for n in [1i64, 5, 6, 7, 100, 5000] {
        let mut model = std::collections::HashMap::new();
        for i in 0..n {
            model.insert(i * 7919 % 10007 - 5000, i);
        }
        let want: i64 = (0..n)
            .map(|i| {
                let k = i * 7919 % 10007 - 5000;
                model[&k] * 3 + k
            })
            .sum();
        let got = both(&p, &[Value::I64(n)], &Config::default()).unwrap();
        assert!(
            got.same_bits(&Value::I64(want)),
            "n = {n}: {got:?}, want {want}"
        );
    }
}
