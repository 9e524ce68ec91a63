//! Small arithmetic tasks: what the examples, benchmarks and end-to-end
//! tests submit. Built to `math.wasm` by the examples' build script.

use std::hash::{BuildHasher, Hasher};
use std::hint::black_box;

/// `x + 1`.
#[wask_guest::task]
pub fn inc(x: i64) -> i64 {
    x + 1
}

/// `a + b`.
#[wask_guest::task]
pub fn add(a: i64, b: i64) -> i64 {
    a + b
}

/// The sum of `xs`.
#[wask_guest::task]
pub fn sum(xs: Vec<i64>) -> i64 {
    xs.iter().sum()
}

/// `2 * x`.
#[wask_guest::task]
pub fn double(x: i64) -> i64 {
    x * 2
}

/// The integers from `start` up to, not including, `end`.
#[wask_guest::task]
pub fn range(start: i64, end: i64) -> Vec<i64> {
    (start..end).collect()
}

/// The square of each of `xs`.
#[wask_guest::task]
pub fn squares(xs: Vec<i64>) -> Vec<i64> {
    xs.iter().map(|x| x * x).collect()
}

/// Burns CPU for `iters` steps of a small recurrence started at `x`:
/// `acc = (acc * 31 + i) % 1_000_003`. About a nanosecond per step.
#[wask_guest::task]
pub fn busy(x: u64, iters: u64) -> u64 {
    let mut acc = x % 1_000_003;
    for i in 0..black_box(iters) {
        acc = black_box((acc * 31 + i) % 1_000_003);
    }
    acc
}

/// `busy(i, iters)` for every `i` in `0..count`, one after another in this
/// one sandbox, combined with `wrapping_add`: the serial baseline of the
/// benchmark's cpu_bound case (the same work as `count` separate `busy`
/// tasks).
#[wask_guest::task]
pub fn busy_serial(count: u64, iters: u64) -> u64 {
    (0..count).fold(0u64, |acc, i| acc.wrapping_add(busy(i, iters)))
}

/// A random number, from the seed std draws through WASI `random_get`.
/// Submit it with `pure(false)`: the worker seeds its sandboxes.
#[wask_guest::task]
pub fn random_u64() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(0);
    hasher.finish()
}

/// The mean of `xs` (NaN when empty).
#[wask_guest::task]
pub fn mean(xs: Vec<f64>) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// The parts joined.
#[wask_guest::task]
pub fn concat(parts: Vec<String>) -> String {
    parts.concat()
}

/// Booleans, tuples and options in and out, as the CLI's JSON gives them:
/// `(flag, label, a + extra)`, the sum only when `flag` (a missing `extra`
/// counts as 0).
#[wask_guest::task]
pub fn tagged(flag: bool, pair: (i64, String), extra: Option<i64>) -> (bool, String, Option<i64>) {
    let (a, label) = pair;
    let total = flag.then(|| a + extra.unwrap_or(0));
    (flag, label, total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_compute() {
        assert_eq!(inc(1), 2);
        assert_eq!(add(2, 3), 5);
        assert_eq!(sum(vec![1, 2, 3]), 6);
        assert_eq!(double(21), 42);
        assert_eq!(range(2, 5), vec![2, 3, 4]);
        assert_eq!(squares(vec![1, -2, 3]), vec![1, 4, 9]);
        assert_eq!(busy(1, 2), 31 * 31 + 1);
        assert_eq!(busy_serial(2, 2), busy(0, 2) + busy(1, 2));
        assert_eq!(mean(vec![1.0, 3.0]), 2.0);
        assert_eq!(concat(vec!["a".into(), "b".into()]), "ab");
        assert_eq!(
            tagged(true, (2, "x".into()), Some(40)),
            (true, "x".into(), Some(42))
        );
        assert_eq!(
            tagged(false, (2, "x".into()), None),
            (false, "x".into(), None)
        );
    }
}
