// A stencil cannot format or do I/O.
use stencils::*;

#[stencil]
pub fn Trace<T: Tier>(t: &mut T, a: RegI, b: RegI) -> Flow {
    let v = t.i(b);
    println!("b = {v}");
    eprintln!("b = {v}");
    let s = format!("{v}");
    dbg!(v);
    t.set_i(a, s.len() as i64);
    Flow::Next
}

fn main() {}
