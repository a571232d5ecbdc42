// Nothing in a stencil body may panic: every error is a `Flow::Trap(..)`. All the
// violations of one body are reported together.
use stencils::*;

#[stencil]
pub fn Checked<T: Tier>(t: &mut T, a: RegI, b: RegI, c: Table) -> Flow {
    let i = t.i(b);
    if i < 0 {
        panic!("negative index {}", i);
    }
    assert!(i < 1000);
    assert_eq!(i % 2, 0);
    debug_assert!(i != 7);
    let v = t.lookup(c, i).unwrap();
    let w = t.lookup(c, i + 1).expect("in range");
    let table = [1i64, 2, 3];
    let x = table[i as usize];
    match v {
        0 => todo!(),
        1 => unimplemented!("one"),
        2 => unreachable!(),
        _ => {}
    }
    t.set_i(a, v + w + x);
    Flow::Next
}

fn main() {}
