//! The worker's QUIC shell.
//!
//! - `store.rs`: results held in memory.
//! - `actor/`: the task that owns the worker's state: its event loop and
//!   commands (`mod.rs`), and a `Compute` through its waits for a module,
//!   dependencies and a wasm thread (`compute.rs`).
//! - `peer.rs`: worker-to-worker transfers of dependency results.
//! - `scheduler_conn.rs`: connecting and saying hello to the scheduler.

mod actor;
mod peer;
mod scheduler_conn;
pub mod store;

use crate::sandbox::{Sandbox, SandboxConfig};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use wask_net::{Identity, NetError};
use wask_proto::WorkerId;

/// What a worker needs to start.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// The scheduler's address.
    pub scheduler: SocketAddr,
    /// The scheduler's certificate (DER), pinned.
    pub scheduler_cert: Vec<u8>,
    /// The cluster secret.
    pub secret: String,
    /// Name for logs and `wask info`.
    pub name: String,
    /// Threads that run wasm.
    pub nthreads: usize,
    /// Bytes of results the worker may hold.
    pub memory_limit: u64,
    /// Address to listen on for peers (port 0 picks one).
    pub listen: SocketAddr,
    /// Address peers should use, when it differs from the bound one.
    pub advertise: Option<String>,
    /// How long a connection to the peer port may take to say hello before
    /// it is dropped.
    pub hello_timeout: std::time::Duration,
    /// Sandbox settings.
    pub sandbox: SandboxConfig,
}

/// Why a worker could not start.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// Network trouble.
    #[error(transparent)]
    Net(#[from] NetError),
    /// The scheduler refused the worker.
    #[error("scheduler refused the worker: {0}")]
    Refused(String),
    /// The sandbox could not be set up.
    #[error("sandbox: {0}")]
    Sandbox(String),
}

/// A running worker.
pub struct Worker {
    id: WorkerId,
    peer_address: String,
    control: mpsc::UnboundedSender<actor::WorkerEvent>,
    done: Option<oneshot::Receiver<()>>,
    endpoint: quinn::Endpoint,
}

impl Worker {
    /// Starts the sandbox, the peer listener and the scheduler connection.
    pub async fn start(config: WorkerConfig) -> Result<Worker, WorkerError> {
        let identity = Identity::self_signed()?;
        let endpoint =
            wask_net::endpoint::server(config.listen, &identity, &[wask_proto::ALPN_PEER])?;
        let bound = endpoint.local_addr().map_err(NetError::from)?;
        let sandbox = Sandbox::new(config.sandbox.clone())
            .map_err(|e| WorkerError::Sandbox(e.to_string()))?;
        let store = Arc::new(store::Store::new(config.memory_limit));
        let secret: Arc<str> = config.secret.clone().into();

        let sched = scheduler_conn::connect(&endpoint, &config, bound, &identity).await?;
        let id = sched.worker;
        let peer_address = sched.peer_address.clone();
        tokio::spawn(peer::serve(
            endpoint.clone(),
            store.clone(),
            secret.clone(),
            config.hello_timeout,
        ));
        let (control, done) = actor::spawn(actor::Setup {
            worker: id,
            sched,
            store,
            sandbox: Arc::new(sandbox),
            nthreads: config.nthreads,
            peers: peer::Peers::new(endpoint.clone(), secret),
        });
        tracing::info!(worker = id, %peer_address, "worker started");
        Ok(Worker {
            id,
            peer_address,
            control,
            done: Some(done),
            endpoint,
        })
    }

    /// The id the scheduler gave this worker.
    pub fn id(&self) -> WorkerId {
        self.id
    }

    /// Where peers reach this worker.
    pub fn peer_address(&self) -> &str {
        &self.peer_address
    }

    /// Resolves when the worker stops (its scheduler connection ended).
    /// Cancel-safe: dropping this future (say, in a `select!`) keeps the
    /// receiver, so a later [`Worker::shutdown`] still waits for the stop.
    pub async fn closed(&mut self) {
        if let Some(done) = self.done.as_mut() {
            let _ = done.await;
            self.done = None;
        }
    }

    /// Tells the scheduler the worker is leaving, then stops.
    pub async fn shutdown(mut self) {
        let _ = self.control.send(actor::WorkerEvent::Shutdown);
        self.closed().await;
        self.endpoint
            .close(wask_net::codes::SHUTDOWN, b"worker shutting down");
    }
}
