//! The command line: which cluster, which cases, and their sizes.

use clap::{Parser, ValueEnum};
use std::path::PathBuf;

/// wask-bench: the peers' benchmark cases (shared/peers/dask_bench.py and
/// ray_bench.py) against a wask cluster, plus wask's own sandbox and
/// scheduler-core cases. Prints one JSON object per line.
#[derive(Parser, Debug)]
#[command(name = "wask-bench", version)]
pub struct Cli {
    /// Connect to the cluster of this scheduler file instead of starting a
    /// `LocalCluster` in this process.
    #[arg(long)]
    pub scheduler_file: Option<PathBuf>,
    /// Workers of the embedded cluster.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// Threads per worker of the embedded cluster.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Tasks the scheduler may queue on an embedded worker per thread
    /// (`LocalClusterBuilder::saturation`); default: the builder's.
    #[arg(long)]
    pub saturation: Option<u32>,
    /// Threads of the async runtime that runs the client and the embedded
    /// cluster's scheduler and workers (their QUIC and bookkeeping; wasm
    /// runs on the workers' own threads); 0 (the default): one
    /// current-thread runtime. On few cores one thread wins: every message
    /// between client, scheduler and workers would otherwise hop between
    /// runtime threads, a wake-up and a context switch each.
    #[arg(long, default_value_t = 0)]
    pub async_threads: usize,
    /// Cases to run (repeatable or comma-separated); default: all.
    #[arg(long = "case", value_enum, value_delimiter = ',')]
    pub cases: Vec<Case>,
    /// Task counts of map_gather (comma-separated); one line per count.
    #[arg(long, value_delimiter = ',', default_value = "10000,100000")]
    pub n: Vec<usize>,
    /// Sequential round trips of the latency case.
    #[arg(long, default_value_t = 1000)]
    pub latency_n: usize,
    /// Length of the chain case.
    #[arg(long, default_value_t = 1000)]
    pub chain_n: usize,
    /// Leaves of the tree_reduce case.
    #[arg(long, default_value_t = 8192)]
    pub leaves: usize,
    /// Tasks of the cpu_bound case.
    #[arg(long, default_value_t = 2000)]
    pub cpu_n: usize,
    /// Steps of one `busy` call; default: calibrated so that one call takes
    /// about 1 ms in a sandbox on this machine.
    #[arg(long)]
    pub busy_iters: Option<u64>,
    /// Calls of the sandbox case.
    #[arg(long, default_value_t = 10000)]
    pub sandbox_n: usize,
    /// Tasks of the core_scale case.
    #[arg(long, default_value_t = 1_000_000)]
    pub core_tasks: usize,
    /// Simulated workers of the core_scale case.
    #[arg(long, default_value_t = 1000)]
    pub core_workers: u32,
}

/// A benchmark case; the names are the `case` field of the JSON lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Case {
    /// `map(inc, 0..n)` then `gather`.
    #[value(name = "map_gather")]
    MapGather,
    /// Sequential `submit(inc, i)` → result round trips.
    #[value(name = "latency")]
    Latency,
    /// Each task depends on the previous one.
    #[value(name = "chain")]
    Chain,
    /// Leaves, then pairwise `add` until one future is left.
    #[value(name = "tree_reduce")]
    TreeReduce,
    /// The same pure call twice: one key, one execution.
    #[value(name = "dedup")]
    Dedup,
    /// ~1 ms tasks against the same work in one sandbox.
    #[value(name = "cpu_bound")]
    CpuBound,
    /// A fresh sandbox per call, without a cluster.
    #[value(name = "sandbox")]
    Sandbox,
    /// The scheduler core alone, a million tasks.
    #[value(name = "core_scale")]
    CoreScale,
}

impl Case {
    /// Every case, in the order they run.
    pub const ALL: [Case; 8] = [
        Case::MapGather,
        Case::Latency,
        Case::Chain,
        Case::TreeReduce,
        Case::Dedup,
        Case::CpuBound,
        Case::Sandbox,
        Case::CoreScale,
    ];

    /// Whether the case needs a cluster (the last two do not).
    pub fn needs_cluster(self) -> bool {
        !matches!(self, Case::Sandbox | Case::CoreScale)
    }
}

impl Cli {
    /// The cases to run, in [`Case::ALL`] order, without repeats.
    pub fn selected(&self) -> Vec<Case> {
        Case::ALL
            .into_iter()
            .filter(|c| self.cases.is_empty() || self.cases.contains(c))
            .collect()
    }
}
