//! Tasks that misbehave, one way each, so the end-to-end tests can check
//! that a sandbox contains them and the worker goes on serving (`inc`).

use std::hash::{BuildHasher, Hasher};
use std::hint::black_box;

/// Panics with `msg`.
#[wask_guest::task]
pub fn boom(msg: String) -> i64 {
    panic!("{msg}")
}

/// Fails with `msg` as the error.
#[wask_guest::task]
pub fn fail(msg: String) -> Result<i64, String> {
    Err(msg)
}

/// `x`, or an error when it is negative.
#[wask_guest::task]
pub fn ok_or_fail(x: i64) -> Result<i64, String> {
    if x < 0 {
        Err(format!("{x} is negative"))
    } else {
        Ok(x)
    }
}

/// Never returns: only a time limit stops it.
#[wask_guest::task]
pub fn spin() -> u64 {
    let mut n = 0u64;
    loop {
        n = black_box(n.wrapping_add(1));
        if black_box(false) {
            return n;
        }
    }
}

/// Allocates `step` bytes at a time and keeps them all: only a memory limit
/// stops it.
#[wask_guest::task]
pub fn grow(step: u64) -> u64 {
    let step = step.max(1) as usize;
    let mut kept: Vec<Vec<u8>> = Vec::new();
    loop {
        // Written, so the pages are really committed.
        let chunk = vec![black_box(1u8); step];
        kept.push(black_box(chunk));
        if black_box(kept.len()) == usize::MAX {
            return kept.len() as u64;
        }
    }
}

/// Recurses without end (each frame holds a 1 KiB array): only the stack
/// limit stops it.
#[wask_guest::task]
#[allow(unconditional_recursion)]
pub fn recurse(n: u64) -> u64 {
    // Small frames: nothing lives on the shadow stack in linear memory, so
    // the wasm call stack itself overflows (the sandbox's stack limit).
    recurse(black_box(n + 1)).wrapping_add(black_box(1))
}

/// Recursion `n` calls deep (small frames, on the wasm stack), then `n`.
#[wask_guest::task]
pub fn depth(n: u64) -> u64 {
    if n == 0 {
        0
    } else {
        depth(black_box(n - 1)).wrapping_add(black_box(1))
    }
}

/// Unbounded recursion with 1 KiB frames: Rust keeps such locals on the
/// shadow stack in linear memory, which runs out first and ends in an
/// out-of-bounds access.
#[wask_guest::task]
pub fn recurse_big(n: u64) -> u64 {
    let frame = black_box([n as u8; 1024]);
    recurse_big(black_box(n + 1)) + black_box(frame[(n % 1024) as usize] as u64) + black_box(1)
}

/// Sleeps `ms` milliseconds (WASI `poll_oneoff`), then returns `ms`.
#[wask_guest::task]
pub fn sleep_ms(ms: u64) -> u64 {
    std::thread::sleep(std::time::Duration::from_millis(ms));
    ms
}

/// `n` bytes (`i % 256`), for result size limits.
#[wask_guest::task]
pub fn big(n: u64) -> Vec<u8> {
    (0..n).map(|i| i as u8).collect()
}

/// The file's contents; the sandbox has no files, so this fails.
#[wask_guest::task]
pub fn read_file(path: String) -> Result<String, String> {
    std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))
}

/// The environment (`k=v`) and the arguments the task sees.
#[wask_guest::task]
pub fn env_and_args() -> (Vec<String>, Vec<String>) {
    let vars = std::env::vars().map(|(k, v)| format!("{k}={v}")).collect();
    (vars, std::env::args().collect())
}

/// The wall clock (nanoseconds since the Unix epoch) and a random number.
#[wask_guest::task]
pub fn now_and_random() -> (u64, u64) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(0);
    (now, hasher.finish())
}

/// Writes `n` bytes to stdout, for output limits.
#[wask_guest::task]
pub fn print(n: u64) -> u64 {
    let line = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n";
    let mut left = n as usize;
    while left > 0 {
        let part = left.min(line.len());
        print!("{}", &line[line.len() - part..]);
        left -= part;
    }
    let _ = std::io::Write::flush(&mut std::io::stdout());
    n
}

/// Writes `n` bytes to stderr, for output limits.
#[wask_guest::task]
pub fn eprint(n: u64) -> u64 {
    let line = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n";
    let mut left = n as usize;
    while left > 0 {
        let part = left.min(line.len());
        eprint!("{}", &line[line.len() - part..]);
        left -= part;
    }
    n
}

/// `a / b`: panics when `b` is 0 (or on `i32::MIN / -1`).
#[wask_guest::task]
pub fn divide(a: i32, b: i32) -> i32 {
    a / b
}

/// `x + 1`: a well-behaved task, to check the worker still serves.
#[wask_guest::task]
pub fn inc(x: i64) -> i64 {
    x + 1
}
