//! sandbox: the cost of a fresh sandbox per call, without a cluster:
//! `Sandbox::run` of math.wasm's `inc` (instantiate from the cached
//! `InstancePre`, copy the arguments in, call, read the result, drop the
//! store), serially on this thread, after 1000 calls of warm-up.

use crate::direct::DirectMath;
use crate::report::Line;
use crate::report::{percentile, round};
use anyhow::{anyhow, ensure};
use std::time::Instant;

/// Runs the case with `n` calls.
pub fn run(math: &DirectMath, n: usize) -> anyhow::Result<Line> {
    let func = math.func("inc")?;
    let args: Vec<Vec<u8>> = (0..n as i64)
        .map(|i| postcard::to_allocvec(&(i,)))
        .collect::<Result<_, _>>()?;
    for a in args.iter().take(1000) {
        math.run_raw(func, a)
            .result
            .map_err(|e| anyhow!("inc failed: {e}"))?;
    }
    let mut each = Vec::with_capacity(n);
    let mut outputs = Vec::with_capacity(n);
    let t0 = Instant::now();
    for a in &args {
        let t = Instant::now();
        outputs.push(math.run_raw(func, a).result);
        each.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let wall = t0.elapsed().as_secs_f64();
    for (i, out) in outputs.into_iter().enumerate() {
        let bytes = out.map_err(|e| anyhow!("inc({i}) failed: {e}"))?;
        let r: i64 = postcard::from_bytes(&bytes)?;
        ensure!(r == i as i64 + 1, "inc({i}) returned {r}");
    }
    each.sort_by(f64::total_cmp);
    Ok(Line::new("sandbox")
        .with("n", n)
        .with("wall_s", round(wall, 4))
        .with("us_per_task", round(wall / n as f64 * 1e6, 2))
        .with("tasks_per_s", round(n as f64 / wall, 1))
        .with("p50_us", round(percentile(&each, 50.0), 2))
        .with("p99_us", round(percentile(&each, 99.0), 2)))
}
