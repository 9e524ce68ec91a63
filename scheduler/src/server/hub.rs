//! The hub: the one task that owns the core, the connections' outboxes and
//! the module registry. It drains its channel, feeds every event to the core,
//! then sends what the core decided, one batched message per connection.

use super::modules::{self, Modules};
use super::outbox::{self, Outbox};
use super::scatter::Asked;
use crate::state::{Action, Core, Event};
use bytes::Bytes;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use wask_net::data;
use wask_proto::hash::{FastMap, new_map};
use wask_proto::key::{DATA_NAME, render_key};
use wask_proto::limits::INLINE_VALUE_MAX;
use wask_proto::module::ModuleInfo;
use wask_proto::msg::{ClientEvent, PeerInfo, StoreData, Stored, StreamHeader, WorkerCommand};
use wask_proto::{ClientId, ModuleHash, ModuleId, TaskError, TenantId, WorkerId};

/// Events processed per pass before the outboxes are flushed, so a flood of
/// input cannot delay output without bound.
const MAX_EVENTS_PER_PASS: usize = 1024;

/// How long a client's `Done`s may wait for more to leave with them, while
/// more of its tenant's tasks are unfinished (dask's scheduler batches what
/// it sends a client for 2 ms too). A client awaiting the last result of
/// its tenant gets it at once; one gathering thousands gets them in a few
/// large messages rather than one small message per task, which costs
/// both ends a packet, a wake-up and an acknowledgement each.
const DONE_HOLD: Duration = Duration::from_millis(2);

/// Everything the connection tasks tell the hub.
pub enum HubEvent {
    /// A client said a good hello.
    ClientUp {
        /// Its id.
        client: ClientId,
        /// Its tenant.
        tenant: TenantId,
        /// Its writer.
        tx: mpsc::UnboundedSender<ClientEvent>,
        /// Its connection, for data streams.
        conn: quinn::Connection,
        /// The uploads it is asked for, checked by its connection task.
        asked: Arc<Asked>,
    },
    /// A worker said a good hello.
    WorkerUp(Box<WorkerUp>),
    /// A worker's connection ended.
    WorkerDown {
        /// Its id.
        worker: WorkerId,
    },
    /// An event for the core.
    Core(Event),
    /// A client registers a module by hash.
    ModuleQuery {
        /// Who asks.
        client: ClientId,
        /// Its tenant.
        tenant: TenantId,
        /// Correlation id.
        req: u32,
        /// The module.
        hash: ModuleHash,
    },
    /// A client uploaded module bytes (hash checked, inspected).
    ModuleUploaded {
        /// Who uploaded.
        client: ClientId,
        /// Its tenant.
        tenant: TenantId,
        /// The module.
        hash: ModuleHash,
        /// Its bytes.
        bytes: Bytes,
        /// What inspection found.
        info: Result<ModuleInfo, String>,
    },
    /// A worker needs a module's bytes.
    NeedModule {
        /// Who asks.
        worker: WorkerId,
        /// The module.
        module: ModuleId,
    },
    /// A client asks for `wask info`.
    Info {
        /// Who asks.
        client: ClientId,
        /// Its tenant.
        tenant: TenantId,
        /// Correlation id.
        req: u32,
    },
}

/// A worker that joined.
pub struct WorkerUp {
    pub(super) worker: WorkerId,
    pub(super) name: String,
    pub(super) nthreads: u32,
    pub(super) memory_limit: u64,
    pub(super) peer_address: String,
    pub(super) peer_cert: Bytes,
    pub(super) tx: mpsc::UnboundedSender<WorkerCommand>,
    pub(super) conn: quinn::Connection,
}

struct ClientConn {
    tx: mpsc::UnboundedSender<ClientEvent>,
    conn: quinn::Connection,
    asked: Arc<Asked>,
    outbox: Outbox<ClientEvent>,
}

struct WorkerConn {
    tx: mpsc::UnboundedSender<WorkerCommand>,
    conn: quinn::Connection,
    outbox: Outbox<WorkerCommand>,
    peer: PeerInfo,
}

struct Hub {
    core: Core,
    /// The hub's own channel, for what its spawned sends report.
    me: mpsc::WeakSender<HubEvent>,
    auth: std::sync::Arc<dyn super::Authenticator>,
    actions: Vec<Action>,
    clients: FastMap<ClientId, ClientConn>,
    workers: FastMap<WorkerId, WorkerConn>,
    modules: Modules,
    dirty_clients: Vec<ClientId>,
    dirty_workers: Vec<WorkerId>,
    /// Clients whose outbox holds `Done`s back (see [`DONE_HOLD`]), with
    /// when it started to.
    held: Vec<(ClientId, Instant)>,
}

pub(super) async fn run(
    core: Core,
    auth: std::sync::Arc<dyn super::Authenticator>,
    me: mpsc::WeakSender<HubEvent>,
    mut rx: mpsc::Receiver<HubEvent>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut hub = Hub {
        core,
        me,
        auth,
        actions: Vec::new(),
        clients: new_map(),
        workers: new_map(),
        modules: Modules::new(),
        dirty_clients: Vec::new(),
        dirty_workers: Vec::new(),
        held: Vec::new(),
    };
    loop {
        let release = hub.held.iter().map(|&(_, since)| since + DONE_HOLD).min();
        let first = tokio::select! {
            ev = rx.recv() => match ev { Some(ev) => ev, None => return },
            _ = shutdown.changed() => return,
            () = sleep_until(release) => {
                hub.flush();
                continue;
            }
        };
        hub.handle(first);
        let mut n = 1;
        while n < MAX_EVENTS_PER_PASS {
            match rx.try_recv() {
                Ok(ev) => hub.handle(ev),
                Err(_) => break,
            }
            n += 1;
        }
        hub.flush();
    }
}

impl Hub {
    fn handle(&mut self, ev: HubEvent) {
        match ev {
            HubEvent::Core(ev) => {
                if let Event::ClientDisconnected { client } = &ev {
                    self.clients.remove(client);
                    self.modules.forget_client(*client);
                }
                self.core_event(ev);
            }
            HubEvent::ClientUp {
                client,
                tenant,
                tx,
                conn,
                asked,
            } => {
                self.clients.insert(
                    client,
                    ClientConn {
                        tx,
                        conn,
                        asked,
                        outbox: Outbox::default(),
                    },
                );
                self.core_event(Event::ClientConnected { client, tenant });
            }
            HubEvent::WorkerUp(up) => {
                let WorkerUp {
                    worker,
                    name,
                    nthreads,
                    memory_limit,
                    peer_address,
                    peer_cert,
                    tx,
                    conn,
                } = *up;
                let peer = PeerInfo {
                    worker,
                    address: peer_address.clone(),
                    cert: peer_cert,
                };
                let others: Vec<PeerInfo> = self.workers.values().map(|w| w.peer.clone()).collect();
                for (id, w) in self.workers.iter_mut() {
                    outbox::push(&mut w.outbox, WorkerCommand::Peers(vec![peer.clone()]));
                    self.dirty_workers.push(*id);
                }
                let mut me = WorkerConn {
                    tx,
                    conn,
                    outbox: Outbox::default(),
                    peer,
                };
                if !others.is_empty() {
                    outbox::push(&mut me.outbox, WorkerCommand::Peers(others));
                }
                self.workers.insert(worker, me);
                self.dirty_workers.push(worker);
                self.core_event(Event::WorkerJoined {
                    worker,
                    name,
                    address: peer_address,
                    nthreads,
                    memory_limit,
                });
            }
            HubEvent::WorkerDown { worker } => {
                if self.workers.remove(&worker).is_some() {
                    for (id, w) in self.workers.iter_mut() {
                        outbox::push(&mut w.outbox, WorkerCommand::PeerLeft(worker));
                        self.dirty_workers.push(*id);
                    }
                    self.core_event(Event::WorkerLeft { worker });
                }
            }
            HubEvent::ModuleQuery {
                client,
                tenant,
                req,
                hash,
            } => {
                let reply = match self.modules.lookup(tenant, &hash) {
                    Some(module) => ClientEvent::ModuleReady { req, module },
                    None if self.modules.wait(tenant, hash, client, req) => {
                        ClientEvent::ModuleNeeded { req }
                    }
                    None => ClientEvent::ModuleRefused {
                        req,
                        reason: "too many module uploads pending".into(),
                    },
                };
                self.send_client(client, reply);
            }
            HubEvent::ModuleUploaded {
                client,
                tenant,
                hash,
                bytes,
                info,
            } => {
                self.modules.count_upload(tenant);
                let waiting = self.modules.take_waiting(tenant, &hash);
                match info {
                    Ok(info) => {
                        let quota = self.auth.module_quota(tenant);
                        let (module, new) = match self.modules.insert(tenant, hash, bytes, quota) {
                            Ok(r) => r,
                            Err(reason) => {
                                tracing::info!(client, tenant, %hash, "module refused: {reason}");
                                for (c, req) in waiting {
                                    self.send_client(
                                        c,
                                        ClientEvent::ModuleRefused {
                                            req,
                                            reason: reason.clone(),
                                        },
                                    );
                                }
                                return;
                            }
                        };
                        if new {
                            tracing::info!(client, tenant, module, %hash, tasks = info.tasks.len(), "module registered");
                            let task_names = modules::task_names(&info);
                            self.core_event(Event::ModuleRegistered {
                                module,
                                tenant,
                                task_names,
                            });
                        }
                        for (c, req) in waiting {
                            self.send_client(c, ClientEvent::ModuleReady { req, module });
                        }
                    }
                    Err(reason) => {
                        tracing::info!(client, tenant, %hash, "module refused: {reason}");
                        for (c, req) in waiting {
                            self.send_client(
                                c,
                                ClientEvent::ModuleRefused {
                                    req,
                                    reason: reason.clone(),
                                },
                            );
                        }
                    }
                }
            }
            HubEvent::NeedModule { worker, module } => {
                let Some(w) = self.workers.get_mut(&worker) else {
                    return;
                };
                match self.modules.get(module) {
                    Some(entry) => {
                        let conn = w.conn.clone();
                        let header = StreamHeader::ModuleForWorker {
                            module,
                            hash: entry.hash,
                        };
                        let bytes = entry.bytes.clone();
                        tokio::spawn(async move {
                            if let Err(e) = data::send(&conn, &header, bytes).await {
                                tracing::debug!(worker, "sending module failed: {e}");
                            }
                        });
                    }
                    None => {
                        outbox::push(&mut w.outbox, WorkerCommand::ModuleUnavailable { module });
                        self.dirty_workers.push(worker);
                    }
                }
            }
            HubEvent::Info {
                client,
                tenant,
                req,
            } => {
                let mut info = self.core.info(tenant);
                info.module_uploads = self.modules.uploads(tenant);
                self.send_client(client, ClientEvent::Info { req, info });
            }
        }
    }

    fn core_event(&mut self, ev: Event) {
        let mut actions = std::mem::take(&mut self.actions);
        self.core.handle(ev, &mut actions);
        for action in actions.drain(..) {
            self.dispatch(action);
        }
        self.actions = actions;
    }

    fn dispatch(&mut self, action: Action) {
        match action {
            Action::Compute { worker, task } => {
                if let Some(o) = self.worker_outbox(worker) {
                    o.compute(task);
                }
            }
            Action::Free {
                worker,
                tenant,
                key,
            } => self.send_worker(worker, WorkerCommand::Free(vec![(tenant, key)])),
            Action::FetchValue {
                worker,
                req,
                tenant,
                key,
            } => self.send_worker(worker, WorkerCommand::SendValue { req, tenant, key }),
            Action::ClientDone { client, done } => {
                if let Some(o) = self.client_outbox(client) {
                    o.done(done);
                }
            }
            Action::ClientErred { client, key, error } => {
                self.send_client(client, ClientEvent::Erred { key, error })
            }
            Action::RequestData {
                client,
                key,
                nbytes,
            } => {
                // Recorded before the request leaves: the upload cannot
                // arrive before its permission.
                if let Some(c) = self.clients.get(&client) {
                    if c.asked.ask(key, nbytes) {
                        let core = &self.core;
                        c.asked.prune(|key| core.awaits_upload(client, key));
                    }
                    if let Some(o) = self.client_outbox(client) {
                        o.send_data(key);
                    }
                }
            }
            Action::DataNotNeeded { client, key } => {
                if let Some(o) = self.client_outbox(client) {
                    o.data_not_needed(key);
                }
            }
            Action::StoreData {
                worker,
                tenant,
                key,
                value,
            } => {
                if value.len() <= INLINE_VALUE_MAX {
                    if let Some(o) = self.worker_outbox(worker) {
                        o.store(StoreData { tenant, key, value });
                    }
                } else if let Some(w) = self.workers.get(&worker) {
                    let conn = w.conn.clone();
                    let me = self.me.clone();
                    tokio::spawn(async move {
                        let header = StreamHeader::DataForWorker { tenant, key };
                        let Err(e) = data::send(&conn, &header, value).await else {
                            return;
                        };
                        tracing::debug!(worker, "sending data failed: {e}");
                        if let wask_net::NetError::Write(quinn::WriteError::Stopped(code)) = e
                            && code == wask_net::codes::TOO_LARGE
                        {
                            // The worker had no room for the bytes and
                            // reports so itself (a `WorkerFull` store).
                            return;
                        }
                        // The data is lost unless the worker got it after
                        // all: the core hears so like a refusal by the
                        // worker (and ignores it if the worker left).
                        let error = TaskError::DataLost {
                            key: render_key(DATA_NAME, key, true),
                        };
                        let reports = vec![Stored {
                            tenant,
                            key,
                            result: Err(error),
                        }];
                        if let Some(hub) = me.upgrade() {
                            let _ = hub
                                .send(HubEvent::Core(Event::Stored { worker, reports }))
                                .await;
                        }
                    });
                }
            }
            Action::ClientValue { client, key, value } => {
                if value.len() <= INLINE_VALUE_MAX {
                    self.send_client(client, ClientEvent::Value { key, value });
                } else if let Some(c) = self.clients.get(&client) {
                    let conn = c.conn.clone();
                    tokio::spawn(async move {
                        if let Err(e) = data::send(&conn, &StreamHeader::Value { key }, value).await
                        {
                            tracing::debug!(client, "sending value failed: {e}");
                        }
                    });
                }
            }
        }
    }

    /// The client's outbox, marked for the next flush.
    fn client_outbox(&mut self, client: ClientId) -> Option<&mut Outbox<ClientEvent>> {
        let c = self.clients.get_mut(&client)?;
        if c.outbox.is_empty() {
            self.dirty_clients.push(client);
        }
        Some(&mut c.outbox)
    }

    /// The worker's outbox, marked for the next flush.
    fn worker_outbox(&mut self, worker: WorkerId) -> Option<&mut Outbox<WorkerCommand>> {
        let w = self.workers.get_mut(&worker)?;
        if w.outbox.is_empty() {
            self.dirty_workers.push(worker);
        }
        Some(&mut w.outbox)
    }

    fn send_client(&mut self, client: ClientId, msg: ClientEvent) {
        if let Some(o) = self.client_outbox(client) {
            outbox::push(o, msg);
        }
    }

    fn send_worker(&mut self, worker: WorkerId, msg: WorkerCommand) {
        if let Some(o) = self.worker_outbox(worker) {
            outbox::push(o, msg);
        }
    }

    fn flush(&mut self) {
        for id in self.dirty_workers.drain(..) {
            if let Some(w) = self.workers.get_mut(&id) {
                for msg in w.outbox.drain() {
                    let _ = w.tx.send(msg);
                }
            }
        }
        let now = Instant::now();
        for id in self.dirty_clients.drain(..) {
            self.held.push((id, now));
        }
        let (clients, core) = (&mut self.clients, &self.core);
        self.held.retain(|&(id, since)| {
            let Some(c) = clients.get_mut(&id) else {
                return false;
            };
            if c.outbox.holdable() && now < since + DONE_HOLD && core.unfinished(id) > 0 {
                return true;
            }
            for msg in c.outbox.drain() {
                let _ = c.tx.send(msg);
            }
            false
        });
    }
}

/// Waits until `at`, or forever when there is nothing to wait for.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}
