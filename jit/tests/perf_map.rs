//! `CompileOptions::perf_map`: the lines appended to `/tmp/perf-PID.map` cover exactly the
//! compiled functions of each program (one entry per function, named after it, from its
//! entry to the end of its last instruction, together tiling the region's code).

#[path = "common/kernels.rs"]
mod common_kernels;

use common_kernels::{kernels, outcome};
use jit::{Engine, EngineOptions, Module, Store};

/// One line of the map: start, size, name.
fn read_map() -> Vec<(u64, u64, String)> {
    let text = std::fs::read_to_string(jit::perf_map::path()).expect("the perf map exists");
    parse_map(&text)
}

fn parse_map(text: &str) -> Vec<(u64, u64, String)> {
    text.lines()
        .map(|line| {
            let mut fields = line.splitn(3, ' ');
            let mut hex = || u64::from_str_radix(fields.next().unwrap(), 16).unwrap();
            let (start, size) = (hex(), hex());
            (start, size, fields.next().expect("a name").to_string())
        })
        .collect()
}

#[test]
fn perf_map_entries_cover_exactly_the_compiled_functions() {
    let mut options = EngineOptions::default();
    options.compile.perf_map = true;
    let engine = Engine::new(options);
    // Keep every program alive to the end, so no region's address is reused by another.
    let kernels = kernels();
    let modules: Vec<(&String, Module)> = kernels
        .iter()
        .map(|k| (&k.name, Module::new(&engine, &k.program).unwrap()))
        .collect();
    let map = read_map();
    for (name, module) in &modules {
        let program = jit::testing::compiled_code(module).expect("compiled");
        let base = program.region_address();
        let region = base..base + program.region_bytes().len() as u64;
        let mut entries: Vec<_> = map
            .iter()
            .filter(|(start, _, _)| region.contains(start))
            .cloned()
            .collect();
        entries.sort();
        let mut expected: Vec<_> = module
            .program()
            .functions
            .iter()
            .enumerate()
            .map(|(f, function)| {
                let range = program.function_code(f).range();
                let size = range.len() as u64;
                (base + range.start as u64, size, function.name.clone())
            })
            .collect();
        expected.sort();
        assert_eq!(entries, expected, "{name}: the map's entries in its region");
        // The functions tile the code: no gap, no overlap, nothing past the code.
        let mut next = base;
        for (start, size, function) in &entries {
            assert_eq!(*start, next, "{name}: `{function}` does not follow on");
            assert!(*size > 0, "{name}: `{function}` is empty");
            next = start + size;
        }
        assert_eq!(
            next,
            base + program.code_len() as u64,
            "{name}: end of code"
        );
    }
    // Writing the map changes nothing in the code: the kernels give their results.
    let mut store = Store::new(&engine);
    for (kernel, (_, module)) in kernels.iter().zip(&modules) {
        let main = module.func("main").unwrap();
        for (args, expected) in &kernel.runs {
            let result = outcome(main.call(&mut store, args));
            assert_eq!(&result, expected, "{} {args:?}", kernel.name);
        }
    }
}

/// Under tier-up each unit is announced when it is compiled: one line per function
/// compiled, none for the functions it only calls (their bridges are not theirs).
#[test]
fn tier_up_units_are_announced_when_compiled() {
    let program = vm3::asm::assemble(
        "
func perf_probe_main(i64) -> i64
    CallI64     i1, i0, perf_probe_callee
    ReturnI64   i1
end

func perf_probe_callee(i64) -> i64
    AddI64K     i1, i0, 1
    ReturnI64   i1
end

func perf_probe_never_called(i64) -> i64
    ReturnI64   i0
end
",
        "probe.vm3",
    )
    .unwrap()
    .verify()
    .unwrap();
    let mut options = EngineOptions::default();
    options.tier = jit::Tier::Auto;
    options.tier_up = jit::TierUp {
        calls: 0,
        back_edges: 0,
    };
    options.compile.perf_map = true;
    let engine = Engine::new(options);
    let module = Module::new(&engine, &program).unwrap();
    // The map may not exist yet: this process may not have compiled anything so far.
    let probe = |name: &str| {
        let text = std::fs::read_to_string(jit::perf_map::path()).unwrap_or_default();
        parse_map(&text)
            .iter()
            .filter(|(_, _, n)| n == name)
            .count()
    };
    assert_eq!(probe("perf_probe_main"), 0, "nothing is compiled up front");
    let mut store = Store::new(&engine);
    let f = module.func("perf_probe_main").unwrap();
    assert_eq!(
        f.call(&mut store, &[vm3::Value::I64(4)]).unwrap(),
        vm3::Value::I64(5)
    );
    let map = read_map();
    for name in ["perf_probe_main", "perf_probe_callee"] {
        let lines: Vec<_> = map.iter().filter(|(_, _, n)| n == name).collect();
        assert_eq!(lines.len(), 1, "{name}: {lines:?}");
        assert!(lines[0].1 > 0, "{name} is empty");
    }
    assert_eq!(probe("perf_probe_never_called"), 0);
    // The map keeps these lines: the units stay mapped until the process ends, so that
    // the other test's regions, compiled meanwhile, cannot reuse their addresses.
    std::mem::forget(module);
}
