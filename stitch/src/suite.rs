//! The benchmark suite: `.vm3` programs embedded from `stitch/bench/` and a native Rust
//! version of each, which must compute the same value.
//!
//! The natives are the same algorithm written plainly, taking their input through
//! `black_box` so it cannot be folded. Where LLVM would replace a whole loop with a
//! closed form (the sum of `0..n`), the native keeps an opaque step so it still runs the
//! loop: otherwise `jit/native` would compare against no work at all.

use std::hint::black_box;
use vm3::Value;

/// One benchmark: its program (entry `main`, one i64 parameter) and argument.
pub struct Bench {
    pub name: &'static str,
    pub source: &'static str,
    /// The argument of `main`, sized for roughly 50-300 ms in the interpreter.
    pub arg: i64,
    pub native: fn(i64) -> Value,
}

macro_rules! bench {
    ($name:literal, $arg:expr, $native:expr) => {
        Bench {
            name: $name,
            source: include_str!(concat!("../bench/", $name, ".vm3")),
            arg: $arg,
            native: $native,
        }
    };
}

pub const SUITE: &[Bench] = &[
    bench!("sum_loop", 30_000_000, |n| Value::I64(sum_loop(n))),
    bench!("fib_iter", 20_000_000, |n| Value::I64(fib_iter(n))),
    bench!("collatz", 150_000, |n| Value::I64(collatz(n))),
    bench!("fib_rec", 32, |n| Value::I64(fib_rec(n))),
    bench!("gcd_sum", 1200, |n| Value::I64(gcd_sum(n))),
    bench!("mandel_row", 640, |n| Value::I64(mandel_row(n))),
    bench!("sqrt_sum", 15_000_000, |n| Value::F64(sqrt_sum(n))),
    bench!("mixed_call", 5_000_000, |n| Value::F64(mixed_call(n))),
    bench!("lookup_loop", 15_000_000, |n| Value::I64(lookup_loop(n))),
    bench!("wide_arith", 8_000_000, |n| Value::I64(wide_arith(n))),
];

fn sum_loop(n: i64) -> i64 {
    let mut sum = 0i64;
    let mut i = 0i64;
    while i < n {
        sum = sum.wrapping_add(i);
        // The opaque step keeps the loop a loop (see the module docs).
        i += black_box(1);
    }
    sum
}

fn fib_iter(n: i64) -> i64 {
    let (mut a, mut b) = (0i64, 1i64);
    for _ in 0..n {
        (a, b) = (b, a.wrapping_add(b));
    }
    a
}

fn collatz(n: i64) -> i64 {
    let (mut best, mut best_len) = (1, 0);
    for start in 1..n {
        let mut x = start;
        let mut steps = 0i64;
        while x != 1 {
            x = if x % 2 == 0 {
                x / 2
            } else {
                x.wrapping_mul(3).wrapping_add(1)
            };
            steps += 1;
        }
        if steps > best_len {
            best_len = steps;
            best = start;
        }
    }
    best
}

fn fib_rec(n: i64) -> i64 {
    if n < 2 {
        n
    } else {
        fib_rec(n - 1).wrapping_add(fib_rec(n - 2))
    }
}

fn gcd_sum(n: i64) -> i64 {
    fn gcd(mut a: i64, mut b: i64) -> i64 {
        while b != 0 {
            (a, b) = (b, a.wrapping_rem(b));
        }
        a
    }
    let mut total = 0i64;
    for i in 1..=n {
        for j in 1..=n {
            total = total.wrapping_add(gcd(i, j));
        }
    }
    total
}

fn mandel_row(n: i64) -> i64 {
    let size = n as f64;
    let mut total = 0i64;
    for y in 0..n {
        let ci = y as f64 * 2.0 / size + -1.0;
        for x in 0..n {
            let cr = x as f64 * 3.0 / size + -2.0;
            let (mut zr, mut zi) = (0.0f64, 0.0f64);
            let mut iterations = 0i64;
            while iterations < 50 {
                let (rr, ii) = (zr * zr, zi * zi);
                if rr + ii > 4.0 {
                    break;
                }
                let new_zr = rr - ii + cr;
                zi = (zr * 2.0).mul_add(zi, ci);
                zr = new_zr;
                iterations += 1;
            }
            total = total.wrapping_add(iterations);
        }
    }
    total
}

fn sqrt_sum(n: i64) -> f64 {
    let mut sum = 0.0;
    for i in 0..n {
        sum += (i as f64).sqrt();
    }
    sum
}

fn mixed_call(n: i64) -> f64 {
    #[inline(never)]
    fn addk(k: i64, acc: f64) -> f64 {
        acc + k as f64
    }
    let mut acc = 0.0;
    for k in 1..=n {
        acc = addk(k, acc);
    }
    acc
}

fn lookup_loop(n: i64) -> i64 {
    const SQUARES: [i64; 8] = [0, 1, 4, 9, 16, 25, 36, 49];
    let mut total = 0i64;
    for k in 0..n {
        let x = k % 11 - 2;
        total = total.wrapping_add(if (0..8).contains(&x) {
            SQUARES[x as usize]
        } else {
            100
        });
    }
    total
}

fn wide_arith(n: i64) -> i64 {
    const MUL: i64 = 6364136223846793005;
    const INC: i64 = 1442695040888963407;
    const DIV: i64 = 4294967311;
    let (mut x, mut acc) = (0i64, 0i64);
    for _ in 0..n {
        x = x.wrapping_mul(MUL).wrapping_add(INC);
        acc = acc.wrapping_add((x / DIV).wrapping_sub(x % DIV));
        acc = acc.wrapping_add(
            i64::MIN
                .wrapping_div(-1)
                .wrapping_add(i64::MIN.wrapping_rem(-1)),
        );
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The natives agree with the kernels' expected results (`; run:` lines).
    #[test]
    fn natives_match_kernels() {
        assert_eq!(sum_loop(10001), 50005000);
        assert_eq!(fib_iter(90), 2880067194370816120);
        assert_eq!(collatz(10000), 6171);
        assert_eq!(collatz(2), 1);
        assert_eq!(fib_rec(25), 75025);
        assert_eq!(mandel_row(40), 27831);
        assert_eq!(sqrt_sum(1000).to_string(), "21065.833110879048");
        assert_eq!(mixed_call(100), 5050.0);
        assert_eq!(gcd_sum(2), 5);
        // x = -2, -1 (default 100), 0..=7 (squares), 8 (default 100).
        assert_eq!(
            lookup_loop(11),
            300 + [0, 1, 4, 9, 16, 25, 36, 49].iter().sum::<i64>()
        );
    }

    #[test]
    fn sources_assemble() {
        for bench in SUITE {
            crate::load::assemble(bench.source, bench.name)
                .unwrap_or_else(|e| panic!("{}: {e:?}", bench.name));
        }
    }
}
