//! wask-bench: the peers' benchmark cases (shared/peers/dask_bench.py and
//! ray_bench.py) against a wask cluster, plus two of wask's own: a fresh
//! sandbox per call, and the scheduler core alone with a million tasks.
//!
//! Prints one JSON object per line: a `meta` line, then one line per case,
//! with the peers' field names. `bench/compare.sh` runs it next to the peers
//! and `bench/table.py` turns the lines into a table.
//!
//! # Layout
//! - [`cli`]: the command line.
//! - [`setup`]: the cluster (embedded or external), client, tasks, warm-up.
//! - [`direct`]: math.wasm in a `Sandbox` of this process, no cluster.
//! - [`calibrate`]: sizing `busy` to about 1 ms.
//! - [`cases`]: one file per case.
//! - [`report`]: JSON lines and statistics.
//! - [`system`]: CPU time, load average, machine facts.
//! - [`alloc`]: the counting allocator behind core_scale's bytes per task.

mod alloc;
mod calibrate;
mod cases;
mod cli;
mod direct;
mod report;
mod setup;
mod system;

use clap::Parser;
use cli::{Case, Cli};
use report::{Line, emit, round};
use std::time::Duration;

#[global_allocator]
static ALLOCATOR: alloc::Counting = alloc::Counting;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = match cli.async_threads {
        0 => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?,
        n => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build()?,
    };
    runtime.block_on(Box::pin(run(cli)))
}

/// Blocking work on the runtime's thread: `block_in_place` where the
/// runtime has worker threads to hand the async work to; on a
/// current-thread runtime nothing else runs meanwhile anyway.
fn blocking<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::current().runtime_flavor() {
        tokio::runtime::RuntimeFlavor::CurrentThread => f(),
        _ => tokio::task::block_in_place(f),
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let cases = cli.selected();
    let loadavg_start = system::loadavg();

    // Its own sandbox, dropped before the cluster starts (so that its epoch
    // ticker does not run during the cluster cases).
    let busy = blocking(|| {
        let math = direct::DirectMath::new()?;
        calibrate::busy(&math, cli.busy_iters, Duration::from_millis(1))
    })?;

    let bench = if cases.iter().any(|c| c.needs_cluster()) {
        Some(
            setup::Bench::start(
                cli.scheduler_file.as_deref(),
                cli.workers,
                cli.threads,
                cli.saturation,
            )
            .await?,
        )
    } else {
        None
    };
    emit(
        &Line::new("meta")
            .with("system", "wask")
            .with("wask", env!("CARGO_PKG_VERSION"))
            .with("rustc", env!("WASK_BENCH_RUSTC"))
            .with("wasmtime", env!("WASK_BENCH_WASMTIME"))
            .with("quinn", env!("WASK_BENCH_QUINN"))
            .with("tokio", env!("WASK_BENCH_TOKIO"))
            .with("platform", system::platform())
            .with("cpus", system::cpus())
            .with(
                "cluster",
                bench.as_ref().map(|_| match cli.scheduler_file {
                    Some(_) => "external",
                    None => "embedded",
                }),
            )
            .with("workers", bench.as_ref().map(|b| b.workers))
            .with(
                "threads_per_worker",
                bench.as_ref().map(|b| b.threads_per_worker),
            )
            .with(
                "cluster_startup_s",
                bench.as_ref().map(|b| round(b.startup_s, 3)),
            )
            .with("saturation", cli.saturation)
            .with("async_threads", cli.async_threads)
            .with("busy_iters", busy.iters)
            .with("busy_serial_us", round(busy.serial_us, 1))
            .with("busy_in_serial_us", round(busy.in_serial_us, 1))
            .with("loadavg_start", loadavg_start),
    );

    if let Some(b) = &bench {
        b.warm_up(busy.iters).await?;
        for &case in &cases {
            match case {
                Case::MapGather => {
                    for &n in &cli.n {
                        emit(&cases::map_gather::run(b, n).await?);
                        setup::rest().await;
                    }
                }
                Case::Latency => emit(&cases::latency::run(b, cli.latency_n).await?),
                Case::Chain => {
                    emit(&cases::chain::run(b, cli.chain_n).await?);
                    setup::rest().await;
                }
                Case::TreeReduce => {
                    emit(&cases::tree_reduce::run(b, cli.leaves).await?);
                    setup::rest().await;
                }
                Case::Dedup => emit(&cases::dedup::run(b).await?),
                Case::CpuBound => emit(&cases::cpu_bound::run(b, cli.cpu_n, busy.iters).await?),
                Case::Sandbox | Case::CoreScale => {}
            }
        }
    }
    if let Some(b) = bench {
        b.shutdown().await;
    }

    if cases.contains(&Case::Sandbox) {
        emit(&blocking(|| {
            cases::sandbox::run(&direct::DirectMath::new()?, cli.sandbox_n)
        })?);
    }
    if cases.contains(&Case::CoreScale) {
        emit(&blocking(|| {
            cases::core_scale::run(cli.core_tasks, cli.core_workers)
        })?);
    }
    Ok(())
}
