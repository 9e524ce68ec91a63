//! map_gather: `client.map(inc, 0..n)` (pure keys, as dask's default) then
//! `gather`, checked against `1..=n`.

use crate::report::{Line, round};
use crate::setup::Bench;
use crate::system::CpuSnapshot;
use anyhow::ensure;
use std::time::Instant;

/// Runs the case with `n` tasks.
pub async fn run(b: &Bench, n: usize) -> anyhow::Result<Line> {
    let executed0 = b.executed().await?;
    let cpu = CpuSnapshot::take();
    let t0 = Instant::now();
    let fs = b.client.map(&b.math.inc, (0..n as i64).map(|i| (i,)))?;
    let submit_s = t0.elapsed().as_secs_f64();
    let res = b.client.gather(&fs).await?;
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu.used();
    ensure!(
        res.iter().enumerate().all(|(i, &r)| r == i as i64 + 1),
        "map_gather returned wrong results"
    );
    drop(fs);
    let executions = b.executed().await? - executed0;
    let mut line = Line::new("map_gather")
        .with("n", n)
        .with("wall_s", round(wall, 4))
        .with("tasks_per_s", round(n as f64 / wall, 1))
        .with("submit_s", round(submit_s, 4))
        .with("executions", executions);
    cpu.add_to(&mut line);
    Ok(line)
}
