//! Writes the compiled code of a `.vm3` file to a file, for `objdump -D -b binary`.
fn main() {
    let mut args = std::env::args().skip(1);
    let (src, out) = (
        args.next().expect("FILE.vm3"),
        args.next().expect("OUT.bin"),
    );
    let text = std::fs::read_to_string(&src).expect("read");
    let program = vm3::asm::assemble(&text, &src)
        .expect("assemble")
        .verify()
        .expect("verify");
    let module = jit::Module::new(&jit::Engine::default(), &program).expect("compile");
    let compiled = jit::testing::compiled_code(&module).expect("compiled");
    std::fs::write(&out, &compiled.region_bytes()[..compiled.code_len()]).expect("write");
    for f in 0..program.functions.len() {
        let code = compiled.function_code(f);
        println!(
            "{} entry {:#x} prologue {:?}",
            program.functions[f].name, code.entry, code.prologue
        );
        for (pc, r) in compiled.inst_code(f).iter().enumerate() {
            println!(
                "  {pc:3} {:#06x}..{:#06x} {}",
                r.start,
                r.end,
                vm3::asm::format_inst(&program, &program.functions[f], pc)
            );
        }
    }
}
