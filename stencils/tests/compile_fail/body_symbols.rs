// A stencil references nothing but its holes and the declared helpers: no `unsafe`,
// statics, external symbols, out-of-line functions or `std`.
use stencils::*;

#[stencil]
pub fn Reach<T: Tier>(t: &mut T, a: RegI, b: RegI) -> Flow {
    static mut COUNTER: i64 = 0;
    extern "C" {
        fn abs(x: i64) -> i64;
    }
    extern crate std;
    use std::mem;
    fn helper(x: i64) -> i64 {
        x * 2
    }
    struct Half;
    impl Half {
        fn of(x: i64) -> i64 {
            x / 2
        }
    }
    trait Twice {
        fn twice(x: i64) -> i64 {
            x * 2
        }
    }
    let v = unsafe {
        COUNTER += 1;
        abs(t.i(b))
    };
    let w = std::hint::black_box(helper(v));
    let boxed: alloc::boxed::Box<i64> = Box::new(w);
    t.set_i(a, Half::of(*boxed) + mem::size_of::<i64>() as i64);
    Flow::Next
}

fn main() {}
