//! tree_reduce: `map(inc, 0..leaves)` then pairwise `add` of futures, level
//! by level, until one is left (an odd one out moves up a level); all
//! `pure(false)`. The result must be exactly `L(L+1)/2`.

use crate::report::{Line, round};
use crate::setup::{Bench, impure};
use crate::system::CpuSnapshot;
use anyhow::ensure;
use std::time::Instant;

/// Runs the case with `leaves` leaves (at least 1).
pub async fn run(b: &Bench, leaves: usize) -> anyhow::Result<Line> {
    let (c, opts) = (&b.client, &impure());
    let cpu = CpuSnapshot::take();
    let t0 = Instant::now();
    let mut level = c.map_with(&b.math.inc, (0..leaves as i64).map(|i| (i,)), opts)?;
    let mut tasks = leaves;
    while level.len() > 1 {
        let mut next = Vec::with_capacity(level.len().div_ceil(2));
        for pair in level.chunks(2) {
            match pair {
                [a, b2] => next.push(c.submit_with(&b.math.add, (a, b2), opts)?),
                [odd] => next.push(odd.clone()),
                _ => unreachable!("chunks(2)"),
            }
        }
        tasks += level.len() / 2;
        level = next;
    }
    let submit_s = t0.elapsed().as_secs_f64();
    let r = level[0].result().await?;
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu.used();
    let l = leaves as i64;
    ensure!(
        r == l * (l + 1) / 2,
        "tree_reduce of {leaves} leaves returned {r}"
    );
    let mut line = Line::new("tree_reduce")
        .with("leaves", leaves)
        .with("tasks", tasks)
        .with("wall_s", round(wall, 4))
        .with("tasks_per_s", round(tasks as f64 / wall, 1))
        .with("submit_s", round(submit_s, 4));
    cpu.add_to(&mut line);
    Ok(line)
}
