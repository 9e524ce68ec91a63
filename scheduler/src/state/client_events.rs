//! Clients: connecting, holding, wanting, releasing and cancelling keys,
//! and the values fetched from workers for them.
//!
//! Every key a client names is looked up in its own tenant, so another
//! tenant's keys are indistinguishable from keys that never existed.

use super::Core;
use super::event::Action;
use super::task::{TaskIdx, TaskSet, TaskState};
use bytes::Bytes;
use std::sync::Arc;
use wask_proto::msg::Done;
use wask_proto::{ClientId, KeyId, TaskError, TenantId, WorkerId};

/// A connected client.
#[derive(Debug)]
pub(crate) struct Client {
    /// Its tenant.
    pub tenant: TenantId,
    /// Tasks it holds futures of.
    pub holds: TaskSet,
    /// Unfinished tasks whose value it wants.
    pub wants: TaskSet,
    /// Scattered data (`AwaitingData`) it was asked to upload or may be
    /// asked to: it keeps the bytes until told.
    pub uploads: TaskSet,
}

/// A value asked of a worker for a client.
#[derive(Debug)]
pub(crate) struct Fetch {
    /// Who gets it.
    pub client: ClientId,
    /// Who was asked; only its answer counts.
    pub worker: WorkerId,
    /// Owner of the key.
    pub tenant: TenantId,
    /// The key.
    pub key: KeyId,
}

impl Core {
    /// A client joined; a known id is left as it is.
    pub(super) fn client_connected(&mut self, client: ClientId, tenant: TenantId) {
        if self.clients.contains_key(&client) {
            return;
        }
        self.tenants.ensure(tenant);
        self.clients.insert(
            client,
            Client {
                tenant,
                holds: TaskSet::default(),
                wants: TaskSet::default(),
                uploads: TaskSet::default(),
            },
        );
    }

    /// A client left: everything it held is released. Values fetched for it
    /// are dropped when they arrive.
    pub(super) fn client_disconnected(&mut self, client: ClientId, out: &mut Vec<Action>) {
        let Some(c) = self.clients.remove(&client) else {
            return;
        };
        for idx in c.wants {
            if let Some(t) = self.tasks.get_mut(idx) {
                t.wanted_by.remove(client);
            }
        }
        for idx in c.holds {
            if let Some(t) = self.tasks.get_mut(idx) {
                t.holders.remove(client);
                self.candidate(idx);
            }
        }
        // Sorted, so that the actions do not depend on hash order.
        let mut uploads: Vec<TaskIdx> = c.uploads.into_iter().collect();
        uploads.sort_unstable();
        for idx in uploads {
            self.source_left(idx, client, out);
        }
    }

    /// `Hold`: the client holds these keys (again).
    pub(super) fn hold(&mut self, client: ClientId, keys: &[KeyId], out: &mut Vec<Action>) {
        let Some(tenant) = self.clients.get(&client).map(|c| c.tenant) else {
            return;
        };
        for &key in keys {
            match self.index.get(&(tenant, key)) {
                Some(&idx) => self.add_holder(client, idx, out),
                None => out.push(Action::ClientErred {
                    client,
                    key,
                    error: TaskError::UnknownKey { key: key.hex() },
                }),
            }
        }
    }

    /// Makes `client` a holder of an existing task and tells it where the
    /// task stands if it is finished.
    pub(super) fn add_holder(&mut self, client: ClientId, idx: TaskIdx, out: &mut Vec<Action>) {
        let task = &mut self.tasks[idx];
        task.holders.insert(client);
        match &task.state {
            TaskState::Memory { nbytes, .. } => out.push(Action::ClientDone {
                client,
                done: Done {
                    key: task.key,
                    nbytes: *nbytes,
                    value: None,
                },
            }),
            TaskState::Erred { error } => out.push(Action::ClientErred {
                client,
                key: task.key,
                error: (**error).clone(),
            }),
            _ => {}
        }
        if let Some(c) = self.clients.get_mut(&client) {
            c.holds.insert(idx);
        }
    }

    /// `Want`: send these values now, or once they exist.
    pub(super) fn want(&mut self, client: ClientId, keys: &[KeyId], out: &mut Vec<Action>) {
        let Some(tenant) = self.clients.get(&client).map(|c| c.tenant) else {
            return;
        };
        for &key in keys {
            let Some(&idx) = self.index.get(&(tenant, key)) else {
                out.push(Action::ClientErred {
                    client,
                    key,
                    error: TaskError::UnknownKey { key: key.hex() },
                });
                continue;
            };
            let task = &mut self.tasks[idx];
            match &task.state {
                TaskState::Memory { who_has, .. } => {
                    if let Some(worker) = self.workers.least_busy(who_has.as_slice()) {
                        self.fetch(client, worker, tenant, key, out);
                    }
                }
                TaskState::Erred { error } => {
                    out.push(Action::ClientErred {
                        client,
                        key,
                        error: (**error).clone(),
                    });
                }
                _ => {
                    task.wanted_by.insert(client);
                    if let Some(c) = self.clients.get_mut(&client) {
                        c.wants.insert(idx);
                    }
                }
            }
        }
    }

    /// `Release`: the client no longer holds (or wants) these keys.
    pub(super) fn release(&mut self, client: ClientId, keys: &[KeyId]) {
        let Some(tenant) = self.clients.get(&client).map(|c| c.tenant) else {
            return;
        };
        for key in keys {
            if let Some(&idx) = self.index.get(&(tenant, *key)) {
                self.unhold(client, idx);
            }
        }
    }

    fn unhold(&mut self, client: ClientId, idx: TaskIdx) {
        let Some(task) = self.tasks.get_mut(idx) else {
            return;
        };
        task.holders.remove(client);
        task.wanted_by.remove(client);
        if let Some(c) = self.clients.get_mut(&client) {
            c.holds.remove(&idx);
            c.wants.remove(&idx);
        }
        self.candidate(idx);
    }

    /// `Cancel` (dask's `cancel_key`): if another client holds a key, only
    /// release it for this one; else the key and every unfinished task
    /// depending on it become `Erred(Cancelled)`, then this client releases
    /// the key.
    pub(super) fn cancel(&mut self, client: ClientId, keys: &[KeyId], out: &mut Vec<Action>) {
        let Some(tenant) = self.clients.get(&client).map(|c| c.tenant) else {
            return;
        };
        for key in keys {
            let Some(&idx) = self.index.get(&(tenant, *key)) else {
                continue;
            };
            let task = &self.tasks[idx];
            if !task.holders.iter().any(|c| c != client) {
                let cancelled = Arc::new(TaskError::Cancelled);
                if !task.state.is_finished() {
                    self.err(idx, cancelled.clone(), out);
                }
                self.err_dependents(idx, cancelled, out);
            }
            self.unhold(client, idx);
        }
    }

    /// A worker answered a fetch. Answers from another worker than the one
    /// asked, or to unknown requests, are ignored.
    pub(super) fn value(
        &mut self,
        worker: WorkerId,
        req: u64,
        value: Option<Bytes>,
        out: &mut Vec<Action>,
    ) {
        if self.fetches.get(&req).is_none_or(|f| f.worker != worker) {
            return;
        }
        let Some(f) = self.fetches.remove(&req) else {
            return;
        };
        if !self.clients.contains_key(&f.client) {
            return;
        }
        match value {
            Some(value) => out.push(Action::ClientValue {
                client: f.client,
                key: f.key,
                value,
            }),
            None => {
                let error = TaskError::WorkerLost {
                    key: self.render_key(f.tenant, f.key),
                };
                out.push(Action::ClientErred {
                    client: f.client,
                    key: f.key,
                    error,
                });
            }
        }
    }
}
