//! A hostile-peer test cluster: an in-process scheduler with a short hello
//! timeout, one worker, and a client connected before any attack; raw QUIC
//! connections to point at it.

use quinn::{Connection, Endpoint};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use wask::{Client, SchedulerAddress};
use wask_net::Identity;
use wask_scheduler::server::{OpenAccess, Scheduler, SchedulerConfig};
use wask_scheduler::state::CoreConfig;
use wask_worker::sandbox::SandboxConfig;
use wask_worker::server::{Worker, WorkerConfig};

use crate::{MATH, eventually};

/// The scheduler's and the worker's (peer port) hello timeout in these
/// tests.
pub const HELLO_TIMEOUT: Duration = Duration::from_millis(300);
/// Bound on waiting for a hostile connection to be closed.
pub const CLOSE_BOUND: Duration = Duration::from_secs(10);
/// Bound on a health check (connect, load the module, run `inc`).
pub const HEALTH_BOUND: Duration = Duration::from_secs(60);
/// The cluster secret of these tests.
pub const SECRET: &str = "hostile-peers-cluster-secret-0123456789";

/// An in-process scheduler, one worker, and a client connected before any
/// hostile peer shows up.
pub struct Cluster {
    pub scheduler: Scheduler,
    pub worker: Worker,
    pub address: SchedulerAddress,
    pub client: Client,
}

impl Cluster {
    pub async fn start() -> Cluster {
        let scheduler = Scheduler::start(SchedulerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            identity: Identity::self_signed().unwrap(),
            cluster_secret: SECRET.to_string(),
            auth: Arc::new(OpenAccess),
            core: CoreConfig::default(),
            hello_timeout: HELLO_TIMEOUT,
        })
        .await
        .unwrap();
        let address = SchedulerAddress {
            addr: scheduler.address(),
            cert_der: scheduler.cert_der().to_vec(),
        };
        let worker = Worker::start(WorkerConfig {
            scheduler: address.addr,
            scheduler_cert: address.cert_der.clone(),
            secret: SECRET.to_string(),
            name: "honest".to_string(),
            nthreads: 1,
            memory_limit: 1 << 30,
            listen: "127.0.0.1:0".parse().unwrap(),
            advertise: None,
            // Its peer port drops silent peers as fast as the scheduler.
            hello_timeout: HELLO_TIMEOUT,
            sandbox: SandboxConfig {
                max_instances: 3,
                ..SandboxConfig::default()
            },
        })
        .await
        .unwrap();
        let client = Client::connect(address.clone()).await.unwrap();
        let cluster = Cluster {
            scheduler,
            worker,
            address,
            client,
        };
        cluster.assert_workers(1).await;
        cluster
    }

    /// Runs `inc(n)` on the client connected before the attack and on a
    /// fresh one.
    pub async fn assert_serves(&self, n: i64) {
        let check = async {
            for (client, n) in [
                (self.client.clone(), n),
                (Client::connect(self.address.clone()).await.unwrap(), n + 1),
            ] {
                let math = client.load_module(MATH).await.unwrap();
                let inc = math.task::<(i64,), i64>("inc").unwrap();
                assert_eq!(client.submit(&inc, (n,)).unwrap().await.unwrap(), n + 1);
            }
        };
        tokio::time::timeout(HEALTH_BOUND, check)
            .await
            .expect("the cluster stopped serving");
        self.assert_workers(1).await;
    }

    /// Waits (bounded) until the scheduler lists exactly `n` workers.
    pub async fn assert_workers(&self, n: usize) {
        let count = || async {
            self.client
                .info()
                .await
                .map(|i| i.workers.len())
                .unwrap_or(usize::MAX)
        };
        assert!(
            eventually(CLOSE_BOUND, || async { count().await == n }).await,
            "the scheduler lists {} workers, not {n}",
            count().await
        );
    }

    pub async fn shutdown(self) {
        self.client.close();
        self.worker.shutdown().await;
        self.scheduler.shutdown().await;
    }
}

/// A raw QUIC connection (and the endpoint it lives on).
pub struct Raw {
    pub _endpoint: Endpoint,
    pub conn: Connection,
}

pub async fn raw(addr: SocketAddr, cert: &[u8], alpn: &[u8]) -> Raw {
    let endpoint = wask_net::endpoint::client(addr).unwrap();
    let conn = wask_net::endpoint::connect(&endpoint, addr, cert, alpn)
        .await
        .unwrap_or_else(|e| panic!("connecting with ALPN {:?}: {e}", bytes_text(alpn)));
    Raw {
        _endpoint: endpoint,
        conn,
    }
}

impl Cluster {
    pub async fn raw(&self, alpn: &[u8]) -> Raw {
        raw(self.address.addr, &self.address.cert_der, alpn).await
    }
}

pub fn bytes_text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}
