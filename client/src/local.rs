//! [`LocalCluster`]: a scheduler and workers inside this process, talking
//! real QUIC over loopback: the same code paths as a real cluster.

use crate::address::SchedulerAddress;
use crate::error::{Error, Result};
use std::sync::Arc;
use wask_proto::limits::ResolvedLimits;
use wask_scheduler::server::{Authenticator, OpenAccess, Scheduler, SchedulerConfig};
use wask_scheduler::state::CoreConfig;
use wask_scheduler::tenants::Tenants;
use wask_worker::sandbox::{Compiler, SandboxConfig};
use wask_worker::server::{Worker, WorkerConfig};

/// An embedded cluster, like dask's `LocalCluster`.
pub struct LocalCluster {
    scheduler: Scheduler,
    workers: Vec<Worker>,
    address: SchedulerAddress,
}

/// Settings of a [`LocalCluster`].
#[derive(Clone, Debug)]
pub struct LocalClusterBuilder {
    workers: usize,
    threads_per_worker: usize,
    memory_limit: u64,
    saturation: u32,
    defaults: ResolvedLimits,
    tenants: Option<String>,
    compiler: Compiler,
}

impl Default for LocalClusterBuilder {
    fn default() -> Self {
        LocalClusterBuilder {
            workers: 2,
            threads_per_worker: 1,
            memory_limit: 4 << 30,
            saturation: 256,
            defaults: ResolvedLimits::default(),
            tenants: None,
            compiler: Compiler::InProcess,
        }
    }
}

impl LocalClusterBuilder {
    /// Where the workers compile modules. The default compiles in this
    /// process, without a time or memory bound: an embedded cluster runs its
    /// own user's code. To bound it, point a
    /// [`Compiler::Subprocess`] at a `wask-worker` binary (with the
    /// argument `--compile-module`), as `wask-worker` processes do.
    pub fn compiler(mut self, compiler: Compiler) -> Self {
        self.compiler = compiler;
        self
    }

    /// Number of workers (default 2).
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = n;
        self
    }

    /// Threads running wasm per worker (default 1).
    pub fn threads_per_worker(mut self, n: usize) -> Self {
        self.threads_per_worker = n.max(1);
        self
    }

    /// Bytes of results each worker may hold (default 4 GiB).
    pub fn memory_limit(mut self, bytes: u64) -> Self {
        self.memory_limit = bytes;
        self
    }

    /// Tasks queued per worker thread beyond the running one (default 256; fewer for long tasks, which the scheduler measures).
    pub fn saturation(mut self, n: u32) -> Self {
        self.saturation = n.max(1);
        self
    }

    /// Default per-task limits (time, memory, result, output).
    pub fn default_limits(mut self, limits: ResolvedLimits) -> Self {
        self.defaults = limits;
        self
    }

    /// Tenants, as the TOML of `wask-scheduler --config` (tokens, quotas,
    /// weights, limits). Without it, every client is the default tenant.
    pub fn tenants(mut self, toml: impl Into<String>) -> Self {
        self.tenants = Some(toml.into());
        self
    }

    /// Starts the scheduler and the workers.
    pub async fn start(self) -> Result<LocalCluster> {
        let c = |e: &dyn std::fmt::Display| Error::Cluster(e.to_string());
        let identity = wask_net::Identity::self_signed().map_err(|e| c(&e))?;
        let secret = KeySecret::random();
        let (auth, tenants): (Arc<dyn Authenticator>, _) = match &self.tenants {
            Some(text) => {
                let t = Tenants::parse(text, self.defaults, ResolvedLimits::CLUSTER_MAX)
                    .map_err(|e| c(&e))?;
                let policies = t.policies();
                (Arc::new(t), policies)
            }
            None => (Arc::new(OpenAccess), Vec::new()),
        };
        let scheduler = Scheduler::start(SchedulerConfig {
            listen: "127.0.0.1:0".parse().expect("literal address"),
            identity,
            cluster_secret: secret.0.clone(),
            auth,
            core: CoreConfig {
                saturation: self.saturation,
                defaults: self.defaults,
                max_limits: ResolvedLimits::CLUSTER_MAX,
                tenants,
            },
            hello_timeout: std::time::Duration::from_secs(wask_proto::limits::HELLO_TIMEOUT_SECS),
        })
        .await
        .map_err(|e| c(&e))?;
        let address = SchedulerAddress {
            addr: scheduler.address(),
            cert_der: scheduler.cert_der().to_vec(),
        };
        let mut workers = Vec::with_capacity(self.workers);
        for i in 0..self.workers {
            let w = Worker::start(WorkerConfig {
                scheduler: address.addr,
                scheduler_cert: address.cert_der.clone(),
                secret: secret.0.clone(),
                name: format!("local-{i}"),
                nthreads: self.threads_per_worker,
                memory_limit: self.memory_limit,
                listen: "127.0.0.1:0".parse().expect("literal address"),
                advertise: None,
                hello_timeout: std::time::Duration::from_secs(
                    wask_proto::limits::HELLO_TIMEOUT_SECS,
                ),
                sandbox: SandboxConfig {
                    max_instances: self.threads_per_worker as u32 + 2,
                    memory_ceiling: ResolvedLimits::CLUSTER_MAX.memory_bytes,
                    compiler: self.compiler.clone(),
                    ..SandboxConfig::default()
                },
            })
            .await
            .map_err(|e| c(&e))?;
            workers.push(w);
        }
        Ok(LocalCluster {
            scheduler,
            workers,
            address,
        })
    }
}

struct KeySecret(String);

impl KeySecret {
    fn random() -> KeySecret {
        KeySecret(format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        ))
    }
}

impl LocalCluster {
    /// A scheduler and `workers` workers of one thread each.
    pub async fn start(workers: usize) -> Result<LocalCluster> {
        LocalCluster::builder().workers(workers).start().await
    }

    /// Settings before starting.
    pub fn builder() -> LocalClusterBuilder {
        LocalClusterBuilder::default()
    }

    /// Where clients connect.
    pub fn address(&self) -> SchedulerAddress {
        self.address.clone()
    }

    /// Number of workers.
    pub fn workers(&self) -> usize {
        self.workers.len()
    }

    /// Stops the workers, then the scheduler.
    pub async fn shutdown(self) {
        for w in self.workers {
            w.shutdown().await;
        }
        self.scheduler.shutdown().await;
    }
}
