//! The sans-io scheduler core: events in, actions out.
//!
//! No sockets, no clock, no tokio, no wasmtime: [`Core::handle`] takes one
//! [`Event`] and appends the [`Action`]s the shell must carry out. Tests
//! drive it directly and call [`Core::check_invariants`] after every step.
//!
//! # Layout
//! - [`event`]: [`Event`] and [`Action`].
//! - `task`: tasks, their states and the slab storing them.
//! - `transition`: every change of a task's state, one function each, plus
//!   placement, the queue drain and forgetting what nobody needs.
//! - `submit`: validating and creating submitted tasks.
//! - `client_events`: clients connecting, holding, wanting, releasing and
//!   cancelling keys, and the values fetched for them.
//! - `scatter`: data scattered by clients: asking for the bytes, passing
//!   them to a worker, its report, and losing them.
//! - `worker_events`: workers joining, leaving and reporting results.
//! - `worker`: per-worker bookkeeping and the placement rule.
//! - `tenant`: per-tenant ready queues and the fair share between tenants.
//! - `ids`: a small inline set of client or worker ids.
//! - `invariants`: the full consistency check.
//!
//! # Life of a task
//! `Waiting { unfinished }` until its dependencies are in memory, then
//! `Queued` (when no worker slot is free) or straight to
//! `Processing { worker }`, then `Memory { who_has, nbytes }` or
//! `Erred { error }`. A task is forgotten (removed, and `Free` sent to the
//! workers holding it) as soon as no client holds it and no unfinished
//! task depends on it, whatever its state.
//!
//! # Life of scattered data
//! A scattered key is a task of kind `Data`, with no spec: it cannot run or
//! be recomputed. `AwaitingData { uploader, sources }` until the uploader's
//! bytes arrive (asked as soon as a worker is connected; another source is
//! asked if the uploader leaves first), then `Storing { worker, nbytes }`
//! once the bytes are passed on, then `Memory` when the worker says it
//! holds them. If every copy is lost (the worker left, the bytes did not
//! reach it, or every client that had the bytes left before uploading), it
//! becomes `Erred(DataLost)` and its dependents fail with that cause; a
//! client that scatters the same bytes again makes it `AwaitingData` again.

mod client_events;
pub mod event;
mod ids;
mod invariants;
mod scatter;
mod submit;
mod task;
mod tenant;
mod transition;
mod worker;
mod worker_events;

#[cfg(test)]
mod tests;

pub use event::{Action, Event};
pub use tenant::TenantPolicy;

use client_events::{Client, Fetch};
use std::collections::BTreeSet;
use std::sync::Arc;
use task::{Slab, TaskIdx, TaskKind, TaskRef};
use tenant::Tenants;
use wask_proto::hash::{FastMap, new_map};
use wask_proto::limits::ResolvedLimits;
use wask_proto::msg::{ClusterInfo, WorkerInfo};
use wask_proto::{ClientId, KeyId, ModuleId, TenantId, WorkerId};
use worker::Workers;

/// Settings of the core.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoreConfig {
    /// Tasks sent to a worker per thread before the rest wait on the
    /// scheduler (at least 1 is used).
    pub saturation: u32,
    /// Limits of a task that requests none.
    pub defaults: ResolvedLimits,
    /// The most a task may request.
    pub max_limits: ResolvedLimits,
    /// Tenants with their own policy; the others get
    /// [`TenantPolicy::unlimited`] with the limits above.
    pub tenants: Vec<(TenantId, TenantPolicy)>,
}

impl Default for CoreConfig {
    /// Saturation 2, [`ResolvedLimits::default`] as defaults and
    /// [`ResolvedLimits::CLUSTER_MAX`] as caps.
    fn default() -> Self {
        CoreConfig {
            saturation: 2,
            defaults: ResolvedLimits::default(),
            max_limits: ResolvedLimits::CLUSTER_MAX,
            tenants: Vec::new(),
        }
    }
}

/// A registered module: who may use it and its task names.
#[derive(Debug)]
struct Module {
    tenant: TenantId,
    task_names: Arc<[String]>,
}

/// The scheduler's state machine.
#[derive(Debug)]
pub struct Core {
    config: CoreConfig,
    /// Every task, by slot.
    tasks: Slab,
    /// Task slots by identity.
    index: FastMap<(TenantId, KeyId), TaskIdx>,
    tenants: Tenants,
    workers: Workers,
    clients: FastMap<ClientId, Client>,
    modules: FastMap<ModuleId, Module>,
    /// Value requests sent to workers and not answered, by request id.
    fetches: FastMap<u64, Fetch>,
    next_req: u64,
    /// Scattered data waiting for a worker before its bytes are asked for:
    /// exactly the tasks `AwaitingData` without uploader. Ordered, so they
    /// are asked for in slot order.
    awaiting_worker: BTreeSet<TaskIdx>,
    /// Tasks that may have lost their last holder or waiter during the
    /// current event; forgotten at its end if so.
    release_candidates: Vec<TaskRef>,
    /// Reused buffers, so transitions do not allocate.
    scratch_stack: Vec<TaskIdx>,
    scratch_held: Vec<(WorkerId, u64)>,
    scratch_keys: Vec<KeyId>,
}

impl Core {
    /// An empty core: no clients, workers, modules or tasks.
    pub fn new(config: CoreConfig) -> Core {
        let mut tenants = Tenants {
            default_policy: TenantPolicy::unlimited(config.defaults, config.max_limits),
            ..Tenants::default()
        };
        for (id, policy) in &config.tenants {
            tenants.ensure(*id).policy = policy.clone();
        }
        Core {
            config,
            tasks: Slab::default(),
            index: new_map(),
            tenants,
            workers: Workers::default(),
            clients: new_map(),
            modules: new_map(),
            fetches: new_map(),
            next_req: 1,
            awaiting_worker: BTreeSet::new(),
            release_candidates: Vec::new(),
            scratch_stack: Vec::new(),
            scratch_held: Vec::new(),
            scratch_keys: Vec::new(),
        }
    }

    /// Applies one event, appending the resulting actions to `out`. Never
    /// panics, whatever the event holds.
    pub fn handle(&mut self, event: Event, out: &mut Vec<Action>) {
        match event {
            Event::ClientConnected { client, tenant } => self.client_connected(client, tenant),
            Event::ClientDisconnected { client } => self.client_disconnected(client, out),
            Event::ModuleRegistered {
                module,
                tenant,
                task_names,
            } => {
                self.tenants.ensure(tenant);
                self.modules.insert(module, Module { tenant, task_names });
            }
            Event::Submit { client, tasks } => self.submit(client, tasks, out),
            Event::Scatter { client, data } => self.scatter(client, data, out),
            Event::DataReceived { client, key, value } => {
                self.data_received(client, key, value, out)
            }
            Event::Stored { worker, reports } => self.stored(worker, reports, out),
            Event::Hold { client, keys } => self.hold(client, &keys, out),
            Event::Want { client, keys } => self.want(client, &keys, out),
            Event::Release { client, keys } => self.release(client, &keys),
            Event::Cancel { client, keys } => self.cancel(client, &keys, out),
            Event::WorkerJoined {
                worker,
                name,
                address,
                nthreads,
                memory_limit: _,
            } => {
                self.worker_joined(worker, name, address, nthreads);
                self.ask_waiting_data(out);
            }
            Event::WorkerLeft { worker } => self.worker_left(worker, out),
            Event::Finished { worker, tasks } => self.finished(worker, tasks, out),
            Event::Failed { worker, tasks } => self.failed(worker, tasks, out),
            Event::Value { worker, req, value } => self.value(worker, req, value, out),
        }
        self.forget_unneeded(out);
        self.drain_queues(out);
    }

    /// Checks every cross-reference and count of the state; `Err` describes
    /// the first inconsistency. Costs O(state): for tests.
    pub fn check_invariants(&self) -> Result<(), String> {
        invariants::check(self)
    }

    /// A snapshot of the workers, and the number of tasks of `tenant`.
    pub fn info(&self, tenant: TenantId) -> ClusterInfo {
        let mut workers: Vec<WorkerInfo> = self
            .workers
            .map
            .iter()
            .map(|(&id, w)| WorkerInfo {
                id,
                name: w.name.clone(),
                address: w.address.clone(),
                nthreads: w.nthreads,
                held_bytes: w.held_bytes,
                held_keys: w.has_what.len() as u64,
                processing: w.processing.len() as u64,
                executed: w.executed,
            })
            .collect();
        workers.sort_by_key(|w| w.id);
        ClusterInfo {
            workers,
            tasks: self.tenants.get(tenant).map_or(0, |t| t.ntasks),
            // Modules live in the server, which fills this in.
            module_uploads: 0,
            data_uploads: self.tenants.get(tenant).map_or(0, |t| t.data_uploads),
        }
    }

    /// Tasks of `client`'s tenant that are neither in memory nor erred:
    /// while there are any, more results are coming, and the shell may
    /// gather the client's `Done`s for a moment (0 for an unknown client).
    pub fn unfinished(&self, client: ClientId) -> u64 {
        self.clients
            .get(&client)
            .and_then(|c| self.tenants.get(c.tenant))
            .map_or(0, |t| t.ntasks.saturating_sub(t.done))
    }

    /// The key as people read it: `name-<hex>` or `name-<uuid>` when the
    /// task is known, else the bare hex of the id.
    pub fn render_key(&self, tenant: TenantId, key: KeyId) -> String {
        match self.index.get(&(tenant, key)) {
            Some(&idx) => self.render_idx(idx),
            None => key.hex(),
        }
    }

    /// [`render_key`](Core::render_key) of a live task.
    fn render_idx(&self, idx: TaskIdx) -> String {
        let Some(task) = self.tasks.get(idx) else {
            return String::new();
        };
        let name = match task.kind {
            TaskKind::Call { module, func } => self
                .modules
                .get(&module)
                .and_then(|m| m.task_names.get(func as usize))
                .map(String::as_str),
            TaskKind::Data => Some(wask_proto::key::DATA_NAME),
        };
        match name {
            Some(name) => wask_proto::key::render_key(name, task.key, task.pure),
            None => task.key.hex(),
        }
    }
}
