//! The worker's actor: one task owning the worker's state.
//!
//! A `Compute` goes through three waits, each skipped when not needed: the
//! module (fetched from the scheduler and compiled once, off the async
//! threads), the dependencies held by other workers (fetched from them
//! directly), and a free wasm thread (the pool's queue). Reports to the
//! scheduler are gathered while the actor drains its channel and leave as
//! one `Finished` and one `Failed` message per pass.
//!
//! Scattered data arrives from the scheduler (inline in a `Store` command,
//! or on a data stream when large) and goes straight into the store, under
//! the same memory limit as results; a `Stored` report says it is held or
//! refused.

mod compute;

use super::peer::Peers;
use super::scheduler_conn::SchedulerConn;
use super::store::Store;
use crate::pool::{Ended, LINGER, Pool};
use crate::sandbox::{Compiled, Sandbox};
use bytes::Bytes;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::{mpsc, oneshot};
use wask_net::data;
use wask_proto::hash::{FastMap, new_map};
use wask_proto::key::{DATA_NAME, render_key};
use wask_proto::limits::INLINE_VALUE_MAX;
use wask_proto::msg::{
    ComputeTask, Failed, Finished, StoreData, Stored, StreamHeader, WorkerCommand, WorkerRequest,
};
use wask_proto::{KeyId, ModuleHash, ModuleId, TaskError, TenantId, WorkerId};

/// Everything the actor reacts to.
pub(crate) enum WorkerEvent {
    Command(WorkerCommand),
    ModuleBytes {
        module: ModuleId,
        bytes: Bytes,
    },
    Data(StoreData),
    /// Scattered data whose stream broke after its header, or went past the
    /// room the store has: reported with `error` (lost, or the worker is
    /// full), so the scheduler does not wait for it forever.
    DataFailed {
        tenant: TenantId,
        key: KeyId,
        error: TaskError,
    },
    Compiled {
        module: ModuleId,
        result: Result<Compiled, TaskError>,
    },
    /// Jobs the pool ran (see [`Ended`]).
    JobsDone(Ended),
    Fetched {
        pending: u64,
        deps: Vec<usize>,
        result: Result<Vec<Option<Bytes>>, String>,
    },
    SchedulerClosed(String),
    Shutdown,
}

pub(super) struct Setup {
    pub worker: WorkerId,
    pub sched: SchedulerConn,
    pub store: Arc<Store>,
    pub sandbox: Arc<Sandbox>,
    pub nthreads: usize,
    pub peers: Peers,
}

enum ModuleSlot {
    Fetching(Vec<ComputeTask>),
    Compiling(Vec<ComputeTask>),
    Ready(Compiled),
    Failed(TaskError),
}

struct PendingTask {
    task: ComputeTask,
    values: Vec<Option<Bytes>>,
    missing: usize,
}

struct Actor {
    worker: WorkerId,
    to_scheduler: mpsc::UnboundedSender<WorkerRequest>,
    conn: quinn::Connection,
    store: Arc<Store>,
    pool: Pool,
    /// The compile thread's queue.
    compiler: crossbeam_channel::Sender<(ModuleId, Bytes)>,
    peers: Arc<Peers>,
    me: mpsc::UnboundedSender<WorkerEvent>,
    modules: FastMap<ModuleId, ModuleSlot>,
    pending: FastMap<u64, PendingTask>,
    jobs: FastMap<u64, (TenantId, KeyId)>,
    /// Cancel flags of the jobs in the pool, by key: a `Free` of a key
    /// still running means nobody wants it any more.
    running: FastMap<(TenantId, KeyId), Arc<AtomicBool>>,
    /// Tasks accepted and not yet in the pool (waiting for their module or
    /// dependencies), with whether a `Free` cancelled them meanwhile.
    accepted: FastMap<(TenantId, KeyId), bool>,
    next_id: u64,
    /// Moving average of the jobs' run times, µs.
    job_us: u64,
    finished: Vec<Finished>,
    failed: Vec<Failed>,
    stored: Vec<Stored>,
}

pub(super) fn spawn(setup: Setup) -> (mpsc::UnboundedSender<WorkerEvent>, oneshot::Receiver<()>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let (done_tx, done_rx) = oneshot::channel();
    let Setup {
        worker,
        sched,
        store,
        sandbox,
        nthreads,
        peers,
    } = setup;
    let SchedulerConn {
        conn,
        tx: to_scheduler,
        mut reader,
        ..
    } = sched;

    let commands = tx.clone();
    tokio::spawn(async move {
        let reason = loop {
            match reader.next::<WorkerCommand>().await {
                Ok(Some(cmd)) => {
                    if commands.send(WorkerEvent::Command(cmd)).is_err() {
                        return;
                    }
                }
                Ok(None) => break "scheduler closed the control stream".to_string(),
                Err(e) => break e.to_string(),
            }
        };
        let _ = commands.send(WorkerEvent::SchedulerClosed(reason));
    });
    tokio::spawn(accept_streams(conn.clone(), tx.clone(), store.clone()));

    let jobs_done = tx.clone();
    let pool = Pool::new(nthreads, sandbox.clone(), move |ended| {
        let _ = jobs_done.send(WorkerEvent::JobsDone(ended));
    });
    let compiler = spawn_compiler(sandbox.clone(), tx.clone());
    let actor = Actor {
        compiler,
        worker,
        to_scheduler,
        conn,
        store,
        pool,
        peers: Arc::new(peers),
        me: tx.clone(),
        modules: new_map(),
        pending: new_map(),
        jobs: new_map(),
        running: new_map(),
        accepted: new_map(),
        next_id: 0,
        job_us: LINGER.as_micros() as u64,
        finished: Vec::new(),
        failed: Vec::new(),
        stored: Vec::new(),
    };
    tokio::spawn(async move {
        actor.run(rx).await;
        let _ = done_tx.send(());
    });
    (tx, done_rx)
}

/// One thread compiles every module, in turn: compiling is costly
/// (cranelift's time can grow faster than a module's size), and on one
/// thread a flood of uploads cannot take the cores that run tasks, nor
/// tokio's blocking pool.
fn spawn_compiler(
    sandbox: Arc<Sandbox>,
    me: mpsc::UnboundedSender<WorkerEvent>,
) -> crossbeam_channel::Sender<(ModuleId, Bytes)> {
    let (tx, rx) = crossbeam_channel::unbounded::<(ModuleId, Bytes)>();
    let spawned = std::thread::Builder::new()
        .name("wask-compile".into())
        .spawn(move || {
            for (module, bytes) in rx {
                let result = sandbox.compile(&bytes);
                if me.send(WorkerEvent::Compiled { module, result }).is_err() {
                    return;
                }
            }
        });
    if let Err(e) = spawned {
        tracing::error!("cannot start the compile thread: {e}");
    }
    tx
}

/// Receives what the scheduler sends on data streams: module bytes and
/// scattered data. A stream that breaks the protocol (an unknown header,
/// module bytes that do not match their hash) closes the connection; one
/// that merely fails is logged, and reported when it carried data (the
/// scheduler waits for a `Stored` report of it).
async fn accept_streams(
    conn: quinn::Connection,
    me: mpsc::UnboundedSender<WorkerEvent>,
    store: Arc<Store>,
) {
    while let Ok(stream) = conn.accept_uni().await {
        let me = me.clone();
        let conn = conn.clone();
        let store = store.clone();
        tokio::spawn(async move {
            let (header, stream) = match data::recv_header(stream).await {
                Ok(h) => h,
                Err(e) => return tracing::warn!("data stream failed: {e}"),
            };
            let limit = match header {
                StreamHeader::ModuleForWorker { .. } => wask_proto::limits::MAX_MODULE,
                // No further than the store has room: more would be read
                // into memory only to be refused.
                StreamHeader::DataForWorker { .. } => wask_proto::limits::MAX_PAYLOAD
                    .min(usize::try_from(store.room()).unwrap_or(usize::MAX)),
                _ => return conn.close(wask_net::codes::PROTOCOL, b"unexpected data stream"),
            };
            let bytes = match data::recv_payload(stream, limit).await {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!("data stream failed: {e}");
                    if let StreamHeader::DataForWorker { tenant, key } = header {
                        let error = match e {
                            wask_net::NetError::TooLarge { limit } => TaskError::WorkerFull {
                                message: format!(
                                    "the data is larger than the {limit} bytes the worker's \
                                     memory limit leaves room for"
                                ),
                            },
                            _ => TaskError::DataLost {
                                key: render_key(DATA_NAME, key, true),
                            },
                        };
                        let _ = me.send(WorkerEvent::DataFailed { tenant, key, error });
                    }
                    return;
                }
            };
            let event = match header {
                StreamHeader::ModuleForWorker { module, hash }
                    if ModuleHash::of(&bytes) == hash =>
                {
                    WorkerEvent::ModuleBytes { module, bytes }
                }
                StreamHeader::DataForWorker { tenant, key } => WorkerEvent::Data(StoreData {
                    tenant,
                    key,
                    value: bytes,
                }),
                _ => {
                    return conn.close(
                        wask_net::codes::PROTOCOL,
                        b"module bytes do not match their hash",
                    );
                }
            };
            let _ = me.send(event);
        });
    }
}

impl Actor {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<WorkerEvent>) {
        while let Some(ev) = self.next_event(&mut rx).await {
            if !self.handle(ev).await {
                break;
            }
            while let Ok(ev) = rx.try_recv() {
                if !self.handle(ev).await {
                    self.flush();
                    return;
                }
            }
            self.flush();
        }
    }

    /// The next event. While a job that should end within [`LINGER`] runs,
    /// the actor waits for it by yielding to the runtime's other tasks
    /// rather than letting the runtime's thread sleep: the wasm thread's
    /// answer then needs no wake-up (tens of µs on a virtual machine whose
    /// idle CPUs halt, more than a small task takes). Not while more jobs
    /// are queued than the threads are about to take: the wasm threads
    /// hold their outputs back then (see [`crate::pool::REPORT_HOLD`]),
    /// and the wait would only spin.
    async fn next_event(
        &mut self,
        rx: &mut mpsc::UnboundedReceiver<WorkerEvent>,
    ) -> Option<WorkerEvent> {
        if let Ok(ev) = rx.try_recv() {
            return Some(ev);
        }
        if !self.jobs.is_empty()
            && self.job_us < LINGER.as_micros() as u64
            && self.pool.queued() <= self.pool.nthreads()
        {
            let start = std::time::Instant::now();
            while start.elapsed() < LINGER {
                tokio::task::yield_now().await;
                if let Ok(ev) = rx.try_recv() {
                    return Some(ev);
                }
            }
        }
        rx.recv().await
    }

    fn flush(&mut self) {
        if !self.finished.is_empty() {
            let _ = self
                .to_scheduler
                .send(WorkerRequest::Finished(std::mem::take(&mut self.finished)));
        }
        if !self.failed.is_empty() {
            let _ = self
                .to_scheduler
                .send(WorkerRequest::Failed(std::mem::take(&mut self.failed)));
        }
        if !self.stored.is_empty() {
            let _ = self
                .to_scheduler
                .send(WorkerRequest::Stored(std::mem::take(&mut self.stored)));
        }
    }

    /// Handles one event; false when the worker must stop.
    async fn handle(&mut self, ev: WorkerEvent) -> bool {
        match ev {
            WorkerEvent::Command(cmd) => self.command(cmd),
            WorkerEvent::ModuleBytes { module, bytes } => {
                if let Some(ModuleSlot::Fetching(tasks)) = self.modules.remove(&module) {
                    self.modules.insert(module, ModuleSlot::Compiling(tasks));
                    if self.compiler.send((module, bytes)).is_err() {
                        let result = Err(TaskError::ModuleRejected {
                            reason: "the worker's compile thread is gone".into(),
                        });
                        let _ = self.me.send(WorkerEvent::Compiled { module, result });
                    }
                }
            }
            WorkerEvent::Compiled { module, result } => {
                let tasks = match self.modules.remove(&module) {
                    Some(ModuleSlot::Compiling(tasks)) => tasks,
                    _ => Vec::new(),
                };
                match result {
                    Ok(compiled) => {
                        self.modules.insert(module, ModuleSlot::Ready(compiled));
                        for t in tasks {
                            self.prepare(t);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(module, "module rejected: {e}");
                        for t in tasks {
                            self.fail(t.tenant, t.key, e.clone());
                        }
                        self.modules.insert(module, ModuleSlot::Failed(e));
                    }
                }
            }
            WorkerEvent::JobsDone(ended) => {
                for (job, output) in ended {
                    self.job_done(job, output);
                }
            }
            WorkerEvent::Data(data) => self.store_data(data),
            WorkerEvent::DataFailed { tenant, key, error } => {
                self.stored.push(Stored {
                    tenant,
                    key,
                    result: Err(error),
                });
            }
            WorkerEvent::Fetched {
                pending,
                deps,
                result,
            } => self.fetched(pending, deps, result),
            WorkerEvent::SchedulerClosed(reason) => {
                tracing::warn!(worker = self.worker, "scheduler connection ended: {reason}");
                return false;
            }
            WorkerEvent::Shutdown => {
                let _ = self.to_scheduler.send(WorkerRequest::Goodbye);
                let _ = tokio::time::timeout(std::time::Duration::from_secs(2), self.conn.closed())
                    .await;
                return false;
            }
        }
        true
    }

    fn command(&mut self, cmd: WorkerCommand) {
        match cmd {
            WorkerCommand::Compute(tasks) => {
                for t in tasks {
                    self.accept(t);
                }
            }
            WorkerCommand::Free(keys) => {
                for (tenant, key) in keys {
                    self.store.remove(tenant, &key);
                    if let Some(flag) = self.running.get(&(tenant, key)) {
                        flag.store(true, Ordering::Relaxed);
                    }
                    if let Some(cancelled) = self.accepted.get_mut(&(tenant, key)) {
                        *cancelled = true;
                    }
                }
            }
            WorkerCommand::SendValue { req, tenant, key } => match self.store.get(tenant, &key) {
                Some(v) if v.len() > INLINE_VALUE_MAX => {
                    let conn = self.conn.clone();
                    tokio::spawn(async move {
                        if let Err(e) =
                            data::send(&conn, &StreamHeader::WorkerValue { req }, v).await
                        {
                            tracing::debug!("sending value failed: {e}");
                        }
                    });
                }
                value => {
                    let _ = self.to_scheduler.send(WorkerRequest::Value { req, value });
                }
            },
            WorkerCommand::Store(list) => {
                for data in list {
                    self.store_data(data);
                }
            }
            WorkerCommand::Peers(list) => {
                for p in list {
                    self.peers.add(p);
                }
            }
            WorkerCommand::PeerLeft(w) => self.peers.remove(w),
            WorkerCommand::ModuleUnavailable { module } => {
                if let Some(ModuleSlot::Fetching(tasks)) = self.modules.remove(&module) {
                    let e = TaskError::ModuleRejected {
                        reason: "the scheduler does not have the module".into(),
                    };
                    for t in tasks {
                        self.fail(t.tenant, t.key, e.clone());
                    }
                }
            }
            WorkerCommand::Welcome { .. } | WorkerCommand::Refused { .. } => {
                tracing::warn!("unexpected hello answer on an open connection");
            }
        }
    }

    /// Holds scattered data like a result, within the memory limit.
    fn store_data(&mut self, data: StoreData) {
        let StoreData { tenant, key, value } = data;
        let nbytes = value.len() as u64;
        let result = self
            .store
            .insert(tenant, key, value)
            .map(|()| nbytes)
            .map_err(|full| TaskError::WorkerFull {
                message: full.to_string(),
            });
        self.stored.push(Stored {
            tenant,
            key,
            result,
        });
    }

    fn fail(&mut self, tenant: TenantId, key: KeyId, error: TaskError) {
        self.accepted.remove(&(tenant, key));
        self.failed.push(Failed { tenant, key, error });
    }
}
