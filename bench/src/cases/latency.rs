//! latency: `n` sequential `submit(inc, i)` with `pure(false)`, each awaited
//! before the next; nearest-rank p50/p99 of the round trips, in µs.

use crate::report::Line;
use crate::report::{mean, percentile, round};
use crate::setup::{Bench, impure};
use crate::system::CpuSnapshot;
use anyhow::ensure;
use std::time::Instant;

/// Runs the case with `n` round trips.
pub async fn run(b: &Bench, n: usize) -> anyhow::Result<Line> {
    let opts = impure();
    let mut lat = Vec::with_capacity(n);
    let cpu = CpuSnapshot::take();
    for i in 0..n as i64 {
        let t0 = Instant::now();
        let r = b
            .client
            .submit_with(&b.math.inc, (i,), &opts)?
            .result()
            .await?;
        lat.push(t0.elapsed().as_secs_f64() * 1e6);
        ensure!(r == i + 1, "inc({i}) returned {r}");
    }
    let cpu = cpu.used();
    lat.sort_by(f64::total_cmp);
    let mut line = Line::new("latency")
        .with("n", n)
        .with("p50_us", round(percentile(&lat, 50.0), 1))
        .with("p99_us", round(percentile(&lat, 99.0), 1))
        .with("mean_us", round(mean(&lat), 1))
        .with("min_us", round(lat.first().copied().unwrap_or(f64::NAN), 1))
        .with("max_us", round(lat.last().copied().unwrap_or(f64::NAN), 1));
    cpu.add_to(&mut line);
    Ok(line)
}
