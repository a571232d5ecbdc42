//! The benchmark suite: `.vm3` programs embedded from `stitch/bench/` and a native Rust
//! version of each, which must compute the same value.
//!
//! The natives are the same algorithm written plainly, taking their input through
//! `black_box` so it cannot be folded. Where LLVM would replace a whole loop with a
//! closed form (the sum of `0..n`), the native keeps an opaque step so it still runs the
//! loop: otherwise `jit/native` would compare against no work at all.

use std::collections::HashMap;
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
    bench!("sieve", 4_000_000, |n| Value::I64(sieve(n))),
    bench!("histogram", 6_000_000, |n| Value::I64(histogram(n))),
    bench!("string_builder", 500_000, |n| Value::I64(string_builder(n))),
    bench!("list_float", 3000, |n| Value::F64(list_float(n))),
    bench!("list_cells", 200, |n| Value::I64(list_cells(n))),
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

// Grown by push from empty, as the program grows its list (not `vec![0; n + 1]`).
#[allow(clippy::same_item_push)]
fn sieve(n: i64) -> i64 {
    let mut flags: Vec<i64> = Vec::new();
    for _ in 0..=n {
        flags.push(0);
    }
    let mut count = 0;
    let mut i = 2;
    while i <= n {
        if flags[i as usize] == 0 {
            count += 1;
            let mut j = i * i;
            while j <= n {
                flags[j as usize] = 1;
                j += i;
            }
        }
        i += 1;
    }
    count
}

/// Keys of the histogram program: an LCG reduced mod 4093, so -4092..=4092.
fn histogram(n: i64) -> i64 {
    const MUL: i64 = 6364136223846793005;
    const INC: i64 = 1442695040888963407;
    // std's HashMap (SipHash-1-3) is what a Rust programmer would write; the program's
    // map hashes with one multiply, so this native is a comparison with idiomatic Rust,
    // not with the fastest possible map. `entry` probes once where the program does a
    // get and a set.
    let mut counts: HashMap<i64, i64> = HashMap::new();
    let mut x = 0i64;
    for _ in 0..n {
        x = x.wrapping_mul(MUL).wrapping_add(INC);
        *counts.entry(x % 4093).or_insert(0) += 1;
    }
    (-4092i64..=4092).fold(0i64, |total, key| {
        total.wrapping_add(key.wrapping_mul(counts.get(&key).copied().unwrap_or(0)))
    })
}

/// Greedy word wrap at 60 bytes. Like `ConcatStr`, every concatenation allocates a new
/// string of exactly the joined length and copies both parts, so the comparison is of
/// the same algorithm; the old line is freed here, whereas the program's heap keeps
/// every intermediate string until its run ends.
fn string_builder(n: i64) -> i64 {
    const WORDS: [&str; 8] = [
        "the", "quick", "brown", "fox", "jumps", "over", "a", "naïve",
    ];
    fn concat(a: &str, b: &str) -> String {
        let mut s = String::with_capacity(a.len() + b.len());
        s.push_str(a);
        s.push_str(b);
        black_box(s)
    }
    let mut line = String::new();
    let mut index = 0;
    let mut total = 0i64;
    for _ in 0..n {
        let word = WORDS[index];
        index = (index + 3) % 8;
        if line.is_empty() {
            line = concat(word, "");
        } else if (line.len() + word.len()) as i64 >= 60 {
            total += line.len() as i64;
            line = concat(word, "");
        } else {
            line = concat(&line, " ");
            line = concat(&line, word);
        }
    }
    total + line.len() as i64
}

/// 2n passes of a three-point stencil over 1000 floats, in the program's order of
/// additions so that the sum is the same to the bit.
fn list_float(n: i64) -> f64 {
    const LEN: usize = 1000;
    const THIRD: f64 = 0.3333333333333333;
    let mut a: Vec<f64> = (0..LEN as i64).map(|i| (i * i % 17) as f64).collect();
    let mut b = a.clone();
    for _ in 0..n {
        for i in 1..LEN - 1 {
            b[i] = (a[i - 1] + a[i] + a[i + 1]) * THIRD;
        }
        for i in 1..LEN - 1 {
            a[i] = (b[i - 1] + b[i] + b[i + 1]) * THIRD;
        }
    }
    a.iter().fold(0.0, |sum, x| sum + x)
}

/// The sum of the entries of A * B for n x n matrices stored as vectors of rows,
/// reading `b[k][j]` through row k for every multiply as the program does.
fn list_cells(n: i64) -> i64 {
    fn matrix(n: i64, s: i64) -> Vec<Vec<i64>> {
        (0..n)
            .map(|i| (0..n).map(|j| (s * i * j + i + j) % 10).collect())
            .collect()
    }
    let (a, b) = (matrix(n, 3), matrix(n, 7));
    let n = n.max(0) as usize;
    let mut total = 0i64;
    for row in &a {
        for j in 0..n {
            let c = row.iter().zip(&b).fold(0i64, |c, (x, b_row)| {
                c.wrapping_add(x.wrapping_mul(b_row[j]))
            });
            total = total.wrapping_add(c);
        }
    }
    total
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
        assert_eq!(sieve(1000), 168);
        assert_eq!(sieve(10000), 1229);
        assert_eq!(sieve(1), 0);
        assert_eq!(histogram(0), 0);
        assert_eq!(histogram(1), 700);
        assert_eq!(histogram(100000), 1613896);
        assert_eq!(string_builder(0), 0);
        assert_eq!(string_builder(1), 3);
        assert_eq!(string_builder(3), 9);
        assert_eq!(string_builder(100), 487);
        assert_eq!(list_float(0), 8010.0);
        assert_eq!(list_float(1).to_string(), "8014.222222222149");
        assert_eq!(list_cells(0), 0);
        assert_eq!(list_cells(1), 0);
        assert_eq!(list_cells(2), 61);
        assert_eq!(list_cells(10), 23075);
    }

    #[test]
    fn sources_assemble() {
        for bench in SUITE {
            crate::load::assemble(bench.source, bench.name)
                .unwrap_or_else(|e| panic!("{}: {e:?}", bench.name));
        }
    }
}
