//! cpu_bound: `n` calls of `busy(i, iters)` (about 1 ms each) mapped over
//! the cluster and gathered, against the same work done serially in one
//! sandbox: one `busy_serial(n, iters)` call through the cluster. The
//! gathered results, summed, must equal `busy_serial`'s.

use crate::report::{Line, round};
use crate::setup::{Bench, impure, rest};
use crate::system::{CpuSnapshot, SchedTime, loadavg, main_thread_sched, threads_sched};
use anyhow::ensure;
use std::time::Instant;

/// Thread name prefixes whose CPU time is reported (embedded cluster):
/// the workers' wasm threads, a multi-threaded runtime's threads (with
/// `--async-threads`), the workers' epoch tickers. The main thread is
/// reported apart: it runs the default current-thread runtime.
const THREADS: [&str; 3] = ["wask-wasm-", "tokio-rt-worker", "wask-epoch"];

/// Runs the case with `n` tasks of `iters` steps.
pub async fn run(b: &Bench, n: usize, iters: u64) -> anyhow::Result<Line> {
    let (c, opts) = (&b.client, &impure());
    let t0 = Instant::now();
    let serial = c
        .submit_with(&b.math.busy_serial, (n as u64, iters), opts)?
        .result()
        .await?;
    let serial_s = t0.elapsed().as_secs_f64();
    rest().await;

    let cpu = CpuSnapshot::take();
    let threads0 = THREADS.map(threads_sched);
    let main0 = main_thread_sched();
    let t0 = Instant::now();
    let fs = c.map_with(&b.math.busy, (0..n as u64).map(|i| (i, iters)), opts)?;
    let res = c.gather(&fs).await?;
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu.used();
    let main = main_thread_sched().since(main0);
    let threads: Vec<SchedTime> = THREADS
        .iter()
        .zip(threads0)
        .map(|(t, before)| threads_sched(t).since(before))
        .collect();
    ensure!(res.len() == n);
    let combined = res.iter().fold(0u64, |a, &r| a.wrapping_add(r));
    ensure!(
        combined == serial,
        "busy over the cluster and busy_serial disagree"
    );
    let mut line = Line::new("cpu_bound")
        .with("n", n)
        .with("busy_iters", iters)
        .with("wall_s", round(wall, 4))
        .with("serial_s", round(serial_s, 4))
        .with("speedup_vs_serial", round(serial_s / wall, 3));
    cpu.add_to(&mut line);
    // Only an embedded cluster's wasm threads are in this process.
    if b.cluster.is_some() {
        let s = |d: std::time::Duration| round(d.as_secs_f64(), 3);
        line.set("wasm_threads_cpu_s", s(threads[0].run));
        line.set("wasm_threads_wait_s", s(threads[0].wait));
        line.set("tokio_threads_cpu_s", s(threads[1].run));
        line.set("epoch_threads_cpu_s", s(threads[2].run));
        line.set("main_thread_cpu_s", s(main.run));
        line.set("main_thread_wait_s", s(main.wait));
    }
    line.set("loadavg_end", loadavg());
    Ok(line)
}
