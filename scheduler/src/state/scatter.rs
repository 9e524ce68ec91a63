//! Scattered data: keys whose value a client uploads instead of a worker
//! computing it.
//!
//! The client announces each key and size ([`Event::Scatter`](super::Event::Scatter)) and keeps
//! the bytes. A new key is `AwaitingData`: the first client that scattered
//! it is asked for the bytes ([`Action::RequestData`]) as soon as a worker
//! is connected; clients that scatter the same bytes meanwhile are kept as
//! `sources`, to be asked should the uploader leave first. Every scatter
//! of a key by a client is answered exactly once, so the client knows when
//! it may drop the bytes: upload them, or drop them
//! ([`Action::DataNotNeeded`]: the tenant already has them, the client
//! already is a source or the uploader, or the key was refused, cancelled
//! or forgotten).
//!
//! When the bytes arrive ([`Event::DataReceived`](super::Event::DataReceived), checked by the shell
//! against the key's hash and size) they are passed straight on to the
//! least occupied worker ([`Action::StoreData`]); the core keeps no copy.
//! The worker's [`Event::Stored`](super::Event::Stored) report puts the key in memory, where it
//! behaves like any result. Data cannot be recomputed: when its last copy
//! is lost it becomes `Erred(DataLost)`, and so do its dependents.

use super::Core;
use super::event::Action;
use super::ids::IdSet;
use super::task::{Task, TaskIdx, TaskKind, TaskState};
use bytes::Bytes;
use std::sync::Arc;
use wask_proto::limits::{MAX_PAYLOAD, ResolvedLimits};
use wask_proto::msg::{ScatterSpec, Stored};
use wask_proto::{ClientId, KeyId, TaskError, TenantId, WorkerId};

/// The name part of a scattered key: `data-<32 hex>`.
pub(crate) const DATA_NAME: &str = "data";

impl Core {
    /// Handles [`Event::Scatter`](super::Event::Scatter).
    pub(super) fn scatter(
        &mut self,
        client: ClientId,
        data: Vec<ScatterSpec>,
        out: &mut Vec<Action>,
    ) {
        let Some(tenant) = self.clients.get(&client).map(|c| c.tenant) else {
            return;
        };
        for spec in data {
            self.scatter_one(client, tenant, spec, out);
        }
    }

    fn scatter_one(
        &mut self,
        client: ClientId,
        tenant: TenantId,
        spec: ScatterSpec,
        out: &mut Vec<Action>,
    ) {
        let ScatterSpec { key, nbytes } = spec;
        if nbytes > MAX_PAYLOAD as u64 {
            let error = TaskError::DataTooLarge {
                size: nbytes,
                max: MAX_PAYLOAD as u64,
            };
            return refuse(client, key, error, out);
        }
        // Like a submit: a key of another tenant is simply not found, so the
        // bytes are asked for as if nobody had them.
        if let Some(&idx) = self.index.get(&(tenant, key)) {
            self.add_holder(client, idx, out);
            if let TaskState::AwaitingData {
                uploader, sources, ..
            } = &mut self.tasks[idx].state
                && *uploader != Some(client)
                && sources.insert(client)
            {
                // Its bytes may be needed should the uploader leave.
                if let Some(c) = self.clients.get_mut(&client) {
                    c.uploads.insert(idx);
                }
            } else {
                // Each scatter gets its own answer, so a client counting
                // them knows when it may drop the bytes.
                out.push(Action::DataNotNeeded { client, key });
            }
            return;
        }
        let quota = self.over_quota(tenant).or_else(|| {
            let t = self.tenants.ensure(tenant);
            (t.held_bytes.saturating_add(nbytes) > t.policy.max_bytes).then(|| {
                format!(
                    "{} bytes of results held and {nbytes} scattered; the tenant's quota is {}",
                    t.held_bytes, t.policy.max_bytes
                )
            })
        });
        if let Some(message) = quota {
            return refuse(client, key, TaskError::Quota { message }, out);
        }
        let task = Task {
            tenant,
            kind: TaskKind::Data,
            waiters: 0,
            key,
            pure: true,
            state: TaskState::AwaitingData {
                uploader: None,
                sources: IdSet::one(client),
                nbytes,
            },
            args: Default::default(),
            limits: ResolvedLimits::default(),
            dependencies: Box::default(),
            dependents: Vec::new(),
            holders: IdSet::one(client),
            wanted_by: IdSet::default(),
        };
        let Some(r) = self.tasks.insert(task) else {
            let message = "the scheduler holds 2^32 tasks".to_string();
            return refuse(client, key, TaskError::Quota { message }, out);
        };
        self.index.insert((tenant, key), r.idx);
        self.tenants.ensure(tenant).ntasks += 1;
        if let Some(c) = self.clients.get_mut(&client) {
            c.holds.insert(r.idx);
            c.uploads.insert(r.idx);
        }
        self.ask_for_data(r.idx, out);
    }

    /// `AwaitingData` without uploader: asks the first source, or waits for
    /// a worker to exist, or, with no source left, the data is lost.
    fn ask_for_data(&mut self, idx: TaskIdx, out: &mut Vec<Action>) {
        let no_workers = self.workers.map.is_empty();
        let reference = self.tasks.reference(idx);
        let task = &mut self.tasks[idx];
        let key = task.key;
        let TaskState::AwaitingData {
            uploader: uploader @ None,
            sources,
            nbytes,
        } = &mut task.state
        else {
            return;
        };
        let Some(first) = sources.iter().next() else {
            self.lose_data(idx, out);
            return;
        };
        if no_workers {
            // Asking now would bring bytes nobody can hold, and the
            // scheduler does not keep them.
            self.awaiting_worker.push(reference);
            if self.awaiting_worker.len() >= 64 && self.awaiting_worker.len().is_power_of_two() {
                // Drop entries of data released meanwhile, so a client that
                // scatters and releases while no worker is up cannot grow
                // the list without bound.
                let tasks = &self.tasks;
                self.awaiting_worker.retain(|&r| {
                    matches!(
                        tasks.resolve(r).map(|t| &t.state),
                        Some(TaskState::AwaitingData { uploader: None, .. })
                    )
                });
            }
            return;
        }
        sources.remove(first);
        *uploader = Some(first);
        out.push(Action::RequestData {
            client: first,
            key,
            nbytes: *nbytes,
        });
    }

    /// A worker joined: asks for the data that waited for one.
    pub(super) fn ask_waiting_data(&mut self, out: &mut Vec<Action>) {
        if self.workers.map.is_empty() {
            return;
        }
        let waiting = std::mem::take(&mut self.awaiting_worker);
        for r in waiting {
            if self.tasks.resolve(r).is_some() {
                self.ask_for_data(r.idx, out);
            }
        }
    }

    /// A client that could upload `idx` disconnected before it did: the
    /// next source is asked, or the data is lost.
    pub(super) fn source_left(&mut self, idx: TaskIdx, client: ClientId, out: &mut Vec<Action>) {
        let Some(task) = self.tasks.get_mut(idx) else {
            return;
        };
        let TaskState::AwaitingData {
            uploader, sources, ..
        } = &mut task.state
        else {
            return;
        };
        if *uploader == Some(client) {
            *uploader = None;
            self.ask_for_data(idx, out);
        } else {
            sources.remove(client);
        }
    }

    /// Handles [`Event::DataReceived`](super::Event::DataReceived): bytes for a key awaiting them go to
    /// a worker. Bytes nobody waits for (released, cancelled, already
    /// received from another source, another tenant's key) are dropped.
    pub(super) fn data_received(
        &mut self,
        client: ClientId,
        key: KeyId,
        value: Bytes,
        out: &mut Vec<Action>,
    ) {
        let Some(tenant) = self.clients.get(&client).map(|c| c.tenant) else {
            return;
        };
        let Some(&idx) = self.index.get(&(tenant, key)) else {
            return;
        };
        let TaskState::AwaitingData {
            uploader, nbytes, ..
        } = &mut self.tasks[idx].state
        else {
            return;
        };
        if value.len() as u64 != *nbytes {
            return;
        }
        let Some(worker) = self.workers.least_occupied() else {
            // Every worker left since the bytes were asked for: ask again
            // once one is back (another source, since this one dropped its
            // copy), or lose the data.
            if *uploader == Some(client) {
                *uploader = None;
                if let Some(c) = self.clients.get_mut(&client) {
                    c.uploads.remove(&idx);
                }
                self.ask_for_data(idx, out);
            }
            return;
        };
        let old = std::mem::replace(&mut self.tasks[idx].state, TaskState::Storing { worker });
        self.leave_state(idx, tenant, key, old, out);
        if let Some(w) = self.workers.map.get_mut(&worker) {
            w.storing.insert(idx);
        }
        self.tenants.ensure(tenant).data_uploads += 1;
        out.push(Action::StoreData {
            worker,
            tenant,
            key,
            value,
        });
    }

    /// Handles [`Event::Stored`](super::Event::Stored): the worker holds the data (it is in
    /// memory) or refused it (it is erred, and so are its dependents).
    /// Data the scheduler no longer wants there is freed.
    pub(super) fn stored(&mut self, worker: WorkerId, reports: Vec<Stored>, out: &mut Vec<Action>) {
        if !self.workers.map.contains_key(&worker) {
            return;
        }
        for Stored {
            tenant,
            key,
            result,
        } in reports
        {
            let free = Action::Free {
                worker,
                tenant,
                key,
            };
            let Some(&idx) = self.index.get(&(tenant, key)) else {
                if result.is_ok() {
                    out.push(free);
                }
                continue;
            };
            match (&mut self.tasks[idx].state, result) {
                (TaskState::Storing { worker: w }, Ok(nbytes)) if *w == worker => {
                    if let Some(w) = self.workers.map.get_mut(&worker) {
                        w.storing.remove(&idx);
                    }
                    self.enter_memory(idx, worker, nbytes, None, out);
                }
                (TaskState::Storing { worker: w }, Err(error)) if *w == worker => {
                    // Leaving `Storing` frees the worker's (absent) copy:
                    // harmless.
                    let for_dependents = error.for_dependents(|| self.render_idx(idx));
                    self.err(idx, Arc::new(error), out);
                    self.err_dependents(idx, Arc::new(for_dependents), out);
                }
                (TaskState::Memory { who_has, nbytes }, Ok(_)) => {
                    if who_has.insert(worker) {
                        let nbytes = *nbytes;
                        self.workers.add_replica(worker, idx, nbytes);
                    }
                }
                // A worker never stores a key it is computing.
                (TaskState::Processing { worker: w }, _) if *w == worker => {}
                (_, Ok(_)) => out.push(free),
                (_, Err(_)) => {}
            }
        }
    }

    /// The last copy of scattered data is gone: the key and its unfinished
    /// dependents fail with `DataLost`.
    pub(super) fn lose_data(&mut self, idx: TaskIdx, out: &mut Vec<Action>) {
        let key = self.render_idx(idx);
        let error = TaskError::DataLost { key: key.clone() };
        let for_dependents = error.for_dependents(|| key);
        self.err(idx, Arc::new(error), out);
        self.err_dependents(idx, Arc::new(for_dependents), out);
    }
}

/// Refuses a scattered key: the error, and the client may drop its bytes.
fn refuse(client: ClientId, key: KeyId, error: TaskError, out: &mut Vec<Action>) {
    out.push(Action::ClientErred { client, key, error });
    out.push(Action::DataNotNeeded { client, key });
}
