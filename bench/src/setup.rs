//! The cluster under test: an embedded `LocalCluster` or an external one
//! (`--scheduler-file`), a connected client, the math module's typed task
//! handles, and the warm-up the peers also do before timing.

use anyhow::{Context, ensure};
use std::path::Path;
use std::time::{Duration, Instant};
use wask::{Client, LocalCluster, Options, Task};

/// The math guest's tasks the cases submit.
pub struct MathTasks {
    /// `inc(x: i64) -> i64`.
    pub inc: Task<(i64,), i64>,
    /// `add(a: i64, b: i64) -> i64`.
    pub add: Task<(i64, i64), i64>,
    /// `busy(x: u64, iters: u64) -> u64`, about `iters` ns of arithmetic.
    pub busy: Task<(u64, u64), u64>,
    /// `busy_serial(count: u64, iters: u64) -> u64`: `busy` for `0..count`
    /// in one call.
    pub busy_serial: Task<(u64, u64), u64>,
}

/// A connected client, its cluster (if embedded) and the tasks.
pub struct Bench {
    /// The client every case submits through.
    pub client: Client,
    /// The embedded cluster; `None` with `--scheduler-file`.
    pub cluster: Option<LocalCluster>,
    /// The math module's tasks.
    pub math: MathTasks,
    /// Seconds from starting (or connecting) to all workers being known.
    pub startup_s: f64,
    /// Workers seen by the scheduler once started.
    pub workers: usize,
    /// Threads of the first worker.
    pub threads_per_worker: u32,
}

/// `pure(false)`: a fresh uuid key per call, as the peers' `pure=False`.
pub fn impure() -> Options {
    Options::new().pure(false)
}

impl Bench {
    /// Starts `workers` × `threads` locally (with `saturation` if given), or connects to the cluster of
    /// `scheduler_file`, then waits until the workers have joined and loads
    /// math.wasm.
    pub async fn start(
        scheduler_file: Option<&Path>,
        workers: usize,
        threads: usize,
        saturation: Option<u32>,
    ) -> anyhow::Result<Bench> {
        let t0 = Instant::now();
        let (client, cluster, want) = match scheduler_file {
            Some(f) => {
                let client = Client::connect(f.to_path_buf())
                    .await
                    .with_context(|| format!("connecting with {}", f.display()))?;
                (client, None, 1)
            }
            None => {
                let mut builder = LocalCluster::builder()
                    .workers(workers)
                    .threads_per_worker(threads);
                if let Some(s) = saturation {
                    builder = builder.saturation(s);
                }
                let cluster = builder
                    .start()
                    .await
                    .context("starting the local cluster")?;
                let client = Client::connect(cluster.address()).await?;
                (client, Some(cluster), workers)
            }
        };
        let info = loop {
            let info = client.info().await?;
            if info.workers.len() >= want {
                break info;
            }
            ensure!(
                t0.elapsed() < Duration::from_secs(60),
                "only {} of {want} workers joined within 60 s",
                info.workers.len()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let startup_s = t0.elapsed().as_secs_f64();
        let module = client
            .load_module(env!("WASK_GUEST_MATH"))
            .await
            .context("loading math.wasm")?;
        let math = MathTasks {
            inc: module.task("inc")?,
            add: module.task("add")?,
            busy: module.task("busy")?,
            busy_serial: module.task("busy_serial")?,
        };
        Ok(Bench {
            client,
            cluster,
            math,
            startup_s,
            workers: info.workers.len(),
            threads_per_worker: info.workers.first().map_or(0, |w| w.nthreads),
        })
    }

    /// Tasks the workers have run so far (finished or failed), summed.
    pub async fn executed(&self) -> anyhow::Result<u64> {
        Ok(self
            .client
            .info()
            .await?
            .workers
            .iter()
            .map(|w| w.executed)
            .sum())
    }

    /// The peers' warm-up, twice: a map of 500 `inc`, 20 `busy`, 50
    /// sequential round trips and a chain of 50 `add(a, a)`; then 0.5 s of
    /// rest. Every task is `pure(false)`.
    pub async fn warm_up(&self, busy_iters: u64) -> anyhow::Result<()> {
        let (c, m, o) = (&self.client, &self.math, &impure());
        for _ in 0..2 {
            let fs = c.map_with(&m.inc, (0..500).map(|i| (i,)), o)?;
            c.gather(&fs).await?;
            let fs = c.map_with(&m.busy, (0..20).map(|i| (i, busy_iters)), o)?;
            c.gather(&fs).await?;
            for i in 0..50 {
                ensure!(c.submit_with(&m.inc, (i,), o)?.result().await? == i + 1);
            }
            let mut a = c.submit_with(&m.inc, (0,), o)?;
            for _ in 0..50 {
                a = c.submit_with(&m.add, (&a, &a), o)?;
            }
            ensure!(a.result().await? == 1 << 50);
        }
        rest().await;
        Ok(())
    }

    /// Closes the client and stops the embedded cluster.
    pub async fn shutdown(self) {
        self.client.close();
        if let Some(cluster) = self.cluster {
            cluster.shutdown().await;
        }
    }
}

/// The peers' 0.5 s pause between cases, so that releases and the previous
/// case's work settle.
pub async fn rest() {
    tokio::time::sleep(Duration::from_millis(500)).await;
}
