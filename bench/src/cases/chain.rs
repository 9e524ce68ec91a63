//! chain: `n` dependent tasks, each `submit(inc, previous_future)` with
//! `pure(false)`; only the last result comes back.

use crate::report::{Line, round};
use crate::setup::{Bench, impure};
use crate::system::CpuSnapshot;
use anyhow::ensure;
use std::time::Instant;

/// Runs the case with a chain of `n` tasks.
pub async fn run(b: &Bench, n: usize) -> anyhow::Result<Line> {
    let opts = impure();
    let cpu = CpuSnapshot::take();
    let t0 = Instant::now();
    let mut f = b.client.submit_with(&b.math.inc, (0,), &opts)?;
    for _ in 1..n {
        f = b.client.submit_with(&b.math.inc, (&f,), &opts)?;
    }
    let submit_s = t0.elapsed().as_secs_f64();
    let r = f.result().await?;
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu.used();
    ensure!(r == n as i64, "the chain of {n} returned {r}");
    let mut line = Line::new("chain")
        .with("n", n)
        .with("wall_s", round(wall, 4))
        .with("tasks_per_s", round(n as f64 / wall, 1))
        .with("submit_s", round(submit_s, 4));
    cpu.add_to(&mut line);
    Ok(line)
}
