//! The QUIC shell around the core.
//!
//! The shell does no scheduling. Connection tasks read frames, turn them into
//! [`HubEvent`]s and send them to the hub; the hub task owns the
//! [`Core`](crate::state::Core) and the module registry, feeds the core and
//! turns its actions into messages for the connections' writer tasks.
//!
//! - `accept.rs`: the accept loop, ALPN dispatch and the hello timeout.
//! - `client_conn.rs` / `worker_conn.rs`: one task per connection.
//! - `hub.rs`: the single task that owns the state.
//! - `modules.rs`: modules uploaded by tenants.
//! - `scatter.rs`: checking uploads of scattered data before the core, and
//!   the budget of uploaded bytes held at once.
//! - `outbox.rs`: per-connection message batching that keeps order.

mod accept;
mod client_conn;
mod hub;
mod modules;
mod outbox;
mod scatter;
mod worker_conn;

pub use hub::HubEvent;

use crate::state::CoreConfig;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::{mpsc, watch};
use wask_net::{Identity, NetError};
use wask_proto::TenantId;

/// How a token maps to a tenant.
pub trait Authenticator: Send + Sync + 'static {
    /// The tenant of `token`, or `None` to refuse the client.
    fn tenant(&self, token: Option<&str>) -> Option<TenantId>;

    /// Bytes of modules the tenant may upload.
    fn module_quota(&self, _tenant: TenantId) -> u64 {
        u64::MAX
    }
}

/// Every client is the default tenant 0 (a cluster without tenant config).
#[derive(Debug, Default)]
pub struct OpenAccess;

impl Authenticator for OpenAccess {
    fn tenant(&self, _token: Option<&str>) -> Option<TenantId> {
        Some(0)
    }
}

/// What a scheduler needs to start.
pub struct SchedulerConfig {
    /// Address to listen on (port 0 picks a free one).
    pub listen: SocketAddr,
    /// TLS identity presented to clients and workers.
    pub identity: Identity,
    /// Secret workers must present.
    pub cluster_secret: String,
    /// Token check for clients.
    pub auth: Arc<dyn Authenticator>,
    /// Core settings.
    pub core: CoreConfig,
    /// How long a new connection has to say hello before it is dropped.
    pub hello_timeout: std::time::Duration,
}

/// A running scheduler.
pub struct Scheduler {
    address: SocketAddr,
    cert_der: Vec<u8>,
    endpoint: quinn::Endpoint,
    shutdown: watch::Sender<bool>,
    hub: tokio::task::JoinHandle<()>,
}

/// State shared by the connection tasks.
pub(crate) struct Shared {
    pub hub: mpsc::Sender<HubEvent>,
    pub cluster_secret: String,
    pub auth: Arc<dyn Authenticator>,
    pub next_id: std::sync::atomic::AtomicU32,
    pub shutdown: watch::Receiver<bool>,
    pub hello_timeout: std::time::Duration,
    /// The budget of uploaded bytes held at once (see `scatter.rs`).
    pub relay: Arc<tokio::sync::Semaphore>,
}

impl Scheduler {
    /// Binds, starts the hub and the accept loop.
    pub async fn start(config: SchedulerConfig) -> Result<Scheduler, NetError> {
        let endpoint = wask_net::endpoint::server(
            config.listen,
            &config.identity,
            &[wask_proto::ALPN_CLIENT, wask_proto::ALPN_WORKER],
        )?;
        let address = endpoint.local_addr()?;
        let (hub_tx, hub_rx) = mpsc::channel(4096);
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let hub = tokio::spawn(hub::run(
            crate::state::Core::new(config.core),
            config.auth.clone(),
            hub_tx.downgrade(),
            hub_rx,
            shutdown_rx.clone(),
        ));
        let shared = Arc::new(Shared {
            hub: hub_tx,
            cluster_secret: config.cluster_secret,
            auth: config.auth,
            next_id: std::sync::atomic::AtomicU32::new(1),
            shutdown: shutdown_rx,
            hello_timeout: config.hello_timeout,
            relay: scatter::relay_budget(),
        });
        tokio::spawn(accept::run(endpoint.clone(), shared));
        tracing::info!(%address, "scheduler listening");
        Ok(Scheduler {
            address,
            cert_der: config.identity.cert_der,
            endpoint,
            shutdown: shutdown_tx,
            hub,
        })
    }

    /// The address it listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The DER certificate clients and workers must pin.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// Closes every connection and stops.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        self.endpoint
            .close(wask_net::codes::SHUTDOWN, b"scheduler shutting down");
        let _ = self.hub.await;
        self.endpoint.wait_idle().await;
    }
}
