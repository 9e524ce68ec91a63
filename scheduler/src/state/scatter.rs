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
//! or forgotten). A key whose data erred (lost, refused by its worker,
//! cancelled) but is still held is awaited again when a client scatters
//! it again: that client has the bytes.
//!
//! The announced size counts against the tenant's bytes quota from the
//! scatter on (the tenant's `pending_bytes`, until the key is in memory or
//! leaves `AwaitingData`/`Storing`), so many announcements cannot together
//! pass a quota that each fits alone.
//!
//! When the bytes arrive ([`Event::DataReceived`](super::Event::DataReceived), checked by the shell
//! against the key's hash and size) they are passed straight on to the
//! worker holding the fewest bytes ([`Action::StoreData`]); the core keeps
//! no copy. The worker's [`Event::Stored`](super::Event::Stored) report puts the key in memory, where it
//! behaves like any result. Data cannot be recomputed: when its last copy
//! is lost it becomes `Erred(DataLost)`, and so do its dependents.
//!
//! Not handled: an uploader that stays connected and never uploads keeps
//! its key `AwaitingData` (and the other sources waiting) until every
//! holder releases it. Giving up after a deadline needs a clock, which the
//! core does not have yet (no event carries `now`); only a client of the
//! same tenant can cause it, within the tenant's quotas.

use super::Core;
use super::event::Action;
use super::ids::IdSet;
use super::task::{Task, TaskIdx, TaskKind, TaskState};
use bytes::Bytes;
use std::sync::Arc;
use wask_proto::limits::{MAX_PAYLOAD, ResolvedLimits};
use wask_proto::msg::{ScatterSpec, Stored};
use wask_proto::{ClientId, KeyId, TaskError, TenantId, WorkerId};

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
        let existing = self.index.get(&(tenant, key)).copied();
        if let Some(idx) = existing {
            let task = &self.tasks[idx];
            let erred_data =
                task.kind == TaskKind::Data && matches!(task.state, TaskState::Erred { .. });
            if !erred_data {
                return self.scatter_again(client, idx, out);
            }
        }
        if let Some(message) = self.over_bytes_quota(tenant, nbytes) {
            return refuse(client, key, TaskError::Quota { message }, out);
        }
        let awaiting = TaskState::AwaitingData {
            uploader: None,
            sources: IdSet::one(client),
            nbytes,
        };
        let idx = match existing {
            Some(idx) => {
                // The erred data is awaited again, from this client; its
                // holders are told once it is in memory.
                self.tasks[idx].state = awaiting;
                let t = self.tenants.ensure(tenant);
                t.done = t.done.saturating_sub(1);
                self.add_holder(client, idx, out);
                idx
            }
            None => {
                let task = Task {
                    tenant,
                    kind: TaskKind::Data,
                    waiters: 0,
                    key,
                    pure: true,
                    state: awaiting,
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
                }
                r.idx
            }
        };
        let t = self.tenants.ensure(tenant);
        t.pending_bytes = t.pending_bytes.wrapping_add(nbytes);
        if let Some(c) = self.clients.get_mut(&client) {
            c.uploads.insert(idx);
        }
        self.ask_for_data(idx, out);
    }

    /// A scatter of a key the tenant has (and whose data did not err): the
    /// client becomes a holder, and a source if the bytes are still awaited.
    fn scatter_again(&mut self, client: ClientId, idx: TaskIdx, out: &mut Vec<Action>) {
        self.add_holder(client, idx, out);
        let task = &mut self.tasks[idx];
        if let TaskState::AwaitingData {
            uploader, sources, ..
        } = &mut task.state
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
            out.push(Action::DataNotNeeded {
                client,
                key: task.key,
            });
        }
    }

    /// Why `nbytes` more scattered bytes would pass the tenant's quotas:
    /// results held and data announced but not stored count too.
    fn over_bytes_quota(&mut self, tenant: TenantId, nbytes: u64) -> Option<String> {
        self.over_quota(tenant).or_else(|| {
            let t = self.tenants.ensure(tenant);
            let total = t
                .held_bytes
                .saturating_add(t.pending_bytes)
                .saturating_add(nbytes);
            (total > t.policy.max_bytes).then(|| {
                format!(
                    "{} bytes of results held, {} scattered and not stored yet, and {nbytes} \
                     scattered now; the tenant's quota is {}",
                    t.held_bytes, t.pending_bytes, t.policy.max_bytes
                )
            })
        })
    }

    /// `AwaitingData` without uploader: asks the first source, or waits for
    /// a worker to exist, or, with no source left, the data is lost.
    fn ask_for_data(&mut self, idx: TaskIdx, out: &mut Vec<Action>) {
        let no_workers = self.workers.map.is_empty();
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
            self.awaiting_worker.insert(idx);
            return;
        }
        self.awaiting_worker.remove(&idx);
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
        // In slot order: the actions do not depend on hash order.
        let waiting = std::mem::take(&mut self.awaiting_worker);
        for idx in waiting {
            self.ask_for_data(idx, out);
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
            if uploader.is_none() {
                // Waiting for a worker: lost if it was the last source.
                self.ask_for_data(idx, out);
            }
        }
    }

    /// Whether the core waits for `client` to upload `key`: it asked, and
    /// neither the bytes came nor did it stop waiting (the key released,
    /// erred or uploaded by another). The shell's record of the uploads it
    /// permits follows this.
    pub fn awaits_upload(&self, client: ClientId, key: KeyId) -> bool {
        let Some(tenant) = self.clients.get(&client).map(|c| c.tenant) else {
            return false;
        };
        self.index.get(&(tenant, key)).is_some_and(|&idx| {
            matches!(self.tasks[idx].state, TaskState::AwaitingData { uploader, .. } if uploader == Some(client))
        })
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
        let nbytes = *nbytes;
        let Some(worker) = self.workers.store_target() else {
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
        let storing = TaskState::Storing { worker, nbytes };
        let old = std::mem::replace(&mut self.tasks[idx].state, storing);
        self.leave_state(idx, tenant, key, old, out);
        let t = self.tenants.ensure(tenant);
        t.pending_bytes = t.pending_bytes.wrapping_add(nbytes);
        t.data_uploads += 1;
        if let Some(w) = self.workers.map.get_mut(&worker) {
            w.storing.insert(idx);
            w.storing_bytes = w.storing_bytes.wrapping_add(nbytes);
        }
        out.push(Action::StoreData {
            worker,
            tenant,
            key,
            value,
        });
    }

    /// Undoes the bookkeeping of `Storing { worker, nbytes }`: the worker's
    /// storing set and the tenant's pending bytes.
    pub(super) fn stop_storing(
        &mut self,
        idx: TaskIdx,
        tenant: TenantId,
        worker: WorkerId,
        nbytes: u64,
    ) {
        let t = self.tenants.ensure(tenant);
        t.pending_bytes = t.pending_bytes.wrapping_sub(nbytes);
        if let Some(w) = self.workers.map.get_mut(&worker)
            && w.storing.remove(&idx)
        {
            w.storing_bytes = w.storing_bytes.wrapping_sub(nbytes);
        }
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
            match (&self.tasks[idx].state, result) {
                (&TaskState::Storing { worker: w, nbytes }, Ok(_)) if w == worker => {
                    // The size checked on arrival, not the report's.
                    self.stop_storing(idx, tenant, worker, nbytes);
                    self.enter_memory(idx, worker, nbytes, None, out);
                }
                (TaskState::Storing { worker: w, .. }, Err(error)) if *w == worker => {
                    // Leaving `Storing` frees the worker's (absent) copy:
                    // harmless.
                    let for_dependents = error.for_dependents(|| self.render_idx(idx));
                    self.err(idx, Arc::new(error), out);
                    self.err_dependents(idx, Arc::new(for_dependents), out);
                }
                // A report repeated, or a stale one from a store before
                // the key was freed there and stored there again.
                (TaskState::Memory { who_has, .. }, Ok(_)) if who_has.contains(worker) => {}
                // A worker never stores a key it is computing.
                (TaskState::Processing { worker: w }, _) if *w == worker => {}
                // Not asked of this worker (now): a stale report after a
                // cancel, a loss or a scatter again. Its copy is freed.
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
