//! Every change of a task's state, one function per target state, plus the
//! machinery around them: placement, the queue drain and forgetting tasks
//! nobody needs.
//!
//! Transitions never forget a task themselves: a task that may have lost
//! its last holder or waiter is pushed on `release_candidates`, and
//! [`Core::forget_unneeded`] runs once the event is applied. So no task
//! vanishes while a loop over its neighbours is running.

use super::event::Action;
use super::ids::IdSet;
use super::task::{Slab, TaskIdx, TaskKind, TaskRef, TaskState};
use super::{Core, Fetch};
use bytes::Bytes;
use std::sync::Arc;
use wask_proto::msg::{ComputeTask, DepLocation, Done};
use wask_proto::{ArgTemplate, ClientId, KeyId, TaskError, TenantId, WorkerId};

impl Core {
    /// A task whose dependencies are all in memory: dispatch it if a slot
    /// is free and nobody is queued before it, else queue it (at the front
    /// for a task rescheduled from a lost worker).
    pub(super) fn make_ready(&mut self, idx: TaskIdx, front: bool, out: &mut Vec<Action>) {
        let tenant = self.tasks[idx].tenant;
        let under_quota = self
            .tenants
            .get(tenant)
            .is_none_or(|t| t.processing < t.policy.max_in_flight);
        if !self.tenants.any_queued()
            && under_quota
            && let Some(worker) = self.choose_worker(idx)
        {
            self.dispatch(idx, worker, out);
            return;
        }
        let task = &mut self.tasks[idx];
        task.state = TaskState::Queued;
        let tenant = task.tenant;
        let r = self.tasks.reference(idx);
        self.tenants.push(tenant, r, front);
    }

    /// Where a ready task would run now, if any slot is free.
    fn choose_worker(&mut self, idx: TaskIdx) -> Option<WorkerId> {
        if !self.workers.has_free_slot() {
            return None;
        }
        let mut held = std::mem::take(&mut self.scratch_held);
        held.clear();
        for &dep in self.tasks[idx].dependencies.iter() {
            if let Some(TaskState::Memory { who_has, nbytes }) =
                self.tasks.get(dep).map(|t| &t.state)
            {
                held.extend(who_has.iter().map(|w| (w, *nbytes)));
            }
        }
        let worker = self.workers.choose(&mut held);
        self.scratch_held = held;
        worker
    }

    /// Ready → `Processing`: sends the task to `worker`.
    fn dispatch(&mut self, idx: TaskIdx, worker: WorkerId, out: &mut Vec<Action>) {
        let task = &self.tasks[idx];
        let TaskKind::Call { module, func } = task.kind else {
            // Unreachable: only calls are made ready, scattered data is
            // never `Waiting` (the invariant check says so). Should it
            // happen, the data fails visibly rather than hang.
            debug_assert!(false, "scattered data made ready");
            // Popped from its queue, or never queued: nothing to undo.
            self.tasks[idx].state = TaskState::Waiting { unfinished: 0 };
            let error = TaskError::DataLost {
                key: self.render_idx(idx),
            };
            self.err(idx, Arc::new(error), out);
            return;
        };
        let deps = task
            .dependencies
            .iter()
            .map(|&d| {
                let dep = &self.tasks[d];
                let who_has = match &dep.state {
                    TaskState::Memory { who_has, .. } => who_has.as_slice().to_vec(),
                    _ => Vec::new(),
                };
                DepLocation {
                    key: dep.key,
                    who_has,
                }
            })
            .collect();
        let compute = ComputeTask {
            tenant: task.tenant,
            key: task.key,
            module,
            func,
            args: task.args.clone(),
            deps,
            limits: task.limits,
        };
        let tenant = task.tenant;
        self.tasks[idx].state = TaskState::Processing { worker };
        self.tenants.started(tenant);
        self.workers.start(worker, idx);
        out.push(Action::Compute {
            worker,
            task: compute,
        });
    }

    /// Fills free worker slots from the tenants' queues, fairly.
    pub(super) fn drain_queues(&mut self, out: &mut Vec<Action>) {
        while self.workers.has_free_slot() {
            let Some(tenant) = self.tenants.pick() else {
                return;
            };
            let tasks = &self.tasks;
            let Some(r) = self.tenants.pop(tenant, |r| is_queued(tasks, r)) else {
                continue;
            };
            match self.choose_worker(r.idx) {
                Some(worker) => self.dispatch(r.idx, worker, out),
                None => {
                    // Unreachable (a slot is free); keep the task rather than lose it.
                    self.tenants.push(tenant, r, true);
                    return;
                }
            }
        }
    }

    /// `Processing` on `worker` → `Memory`: records the copy, tells the
    /// holders, serves pending wants, releases inputs and wakes dependents.
    pub(super) fn finish(
        &mut self,
        idx: TaskIdx,
        worker: WorkerId,
        nbytes: u64,
        value: Option<Bytes>,
        out: &mut Vec<Action>,
    ) {
        self.workers.stop(worker, idx);
        self.tenants.stopped(self.tasks[idx].tenant);
        self.enter_memory(idx, worker, nbytes, value, out);
    }

    /// Any unfinished state → `Memory` with one copy on `worker` (a
    /// finished call, or scattered data the worker now holds): tells the
    /// holders, serves pending wants, releases inputs and wakes dependents.
    /// The caller has undone the old state's bookkeeping.
    pub(super) fn enter_memory(
        &mut self,
        idx: TaskIdx,
        worker: WorkerId,
        nbytes: u64,
        value: Option<Bytes>,
        out: &mut Vec<Action>,
    ) {
        self.workers.add_replica(worker, idx, nbytes);
        let task = &mut self.tasks[idx];
        let t = self.tenants.ensure(task.tenant);
        t.done += 1;
        t.held_bytes = t.held_bytes.wrapping_add(nbytes);
        task.state = TaskState::Memory {
            who_has: IdSet::one(worker),
            nbytes,
        };
        task.args = ArgTemplate::default();
        let (tenant, key) = (task.tenant, task.key);
        for client in task.holders.iter() {
            out.push(Action::ClientDone {
                client,
                done: Done {
                    key,
                    nbytes,
                    value: value.clone(),
                },
            });
        }
        let wanted = std::mem::take(&mut task.wanted_by);
        for client in wanted.iter() {
            let holder = self.tasks[idx].holders.contains(client);
            let Some(c) = self.clients.get_mut(&client) else {
                continue;
            };
            c.wants.remove(&idx);
            match &value {
                // A holder already got the value with its `Done`.
                Some(_) if holder => {}
                Some(v) => out.push(Action::ClientValue {
                    client,
                    key,
                    value: v.clone(),
                }),
                None => self.fetch(client, worker, tenant, key, out),
            }
        }
        self.detach_dependencies(idx);
        for i in 0..self.tasks[idx].dependents.len() {
            let r = self.tasks[idx].dependents[i];
            let Some(dependent) = self.tasks.resolve_mut(r) else {
                continue;
            };
            if let TaskState::Waiting { unfinished } = &mut dependent.state {
                *unfinished = unfinished.saturating_sub(1);
                if *unfinished == 0 {
                    self.make_ready(r.idx, false, out);
                }
            }
        }
        self.candidate(idx);
    }

    /// Any unfinished state → `Erred`: frees its slot, tells holders and
    /// wanters, releases its inputs. Dependents are the caller's business
    /// (see [`err_dependents`](Core::err_dependents)).
    pub(super) fn err(&mut self, idx: TaskIdx, error: Arc<TaskError>, out: &mut Vec<Action>) {
        let task = &mut self.tasks[idx];
        if matches!(task.state, TaskState::Erred { .. }) {
            return;
        }
        let old = std::mem::replace(
            &mut task.state,
            TaskState::Erred {
                error: error.clone(),
            },
        );
        task.args = ArgTemplate::default();
        let (tenant, key) = (task.tenant, task.key);
        if !matches!(old, TaskState::Memory { .. }) {
            self.tenants.ensure(tenant).done += 1;
        }
        let task = &mut self.tasks[idx];
        for client in task.holders.iter() {
            out.push(Action::ClientErred {
                client,
                key,
                error: (*error).clone(),
            });
        }
        let wanted = std::mem::take(&mut task.wanted_by);
        for client in wanted.iter() {
            let holder = self.tasks[idx].holders.contains(client);
            let Some(c) = self.clients.get_mut(&client) else {
                continue;
            };
            c.wants.remove(&idx);
            if !holder {
                out.push(Action::ClientErred {
                    client,
                    key,
                    error: (*error).clone(),
                });
            }
        }
        self.leave_state(idx, tenant, key, old, out);
        self.detach_dependencies(idx);
        self.candidate(idx);
    }

    /// Errs every unfinished task that depends, transitively, on `root`.
    pub(super) fn err_dependents(
        &mut self,
        root: TaskIdx,
        error: Arc<TaskError>,
        out: &mut Vec<Action>,
    ) {
        let mut stack = std::mem::take(&mut self.scratch_stack);
        stack.clear();
        stack.push(root);
        while let Some(t) = stack.pop() {
            let Some(n) = self.tasks.get(t).map(|t| t.dependents.len()) else {
                continue;
            };
            for i in 0..n {
                let r = self.tasks[t].dependents[i];
                if self
                    .tasks
                    .resolve(r)
                    .is_some_and(|d| !d.state.is_finished())
                {
                    self.err(r.idx, error.clone(), out);
                    stack.push(r.idx);
                }
            }
        }
        self.scratch_stack = stack;
    }

    /// Undoes what being in state `old` meant elsewhere: the queue entry,
    /// the worker slot, the copies on workers (which get `Free`), the
    /// clients keeping scattered bytes (which may drop them).
    pub(super) fn leave_state(
        &mut self,
        idx: TaskIdx,
        tenant: TenantId,
        key: KeyId,
        old: TaskState,
        out: &mut Vec<Action>,
    ) {
        match old {
            TaskState::Waiting { .. } | TaskState::Erred { .. } => {}
            TaskState::Queued => {
                let tasks = &self.tasks;
                self.tenants.left_queue(tenant, |r| is_queued(tasks, r));
            }
            TaskState::Processing { worker } => {
                // Tell the worker, which stops the run (a cancel); should a
                // report still come, it gets another `Free`.
                self.workers.stop(worker, idx);
                self.tenants.stopped(tenant);
                out.push(Action::Free {
                    worker,
                    tenant,
                    key,
                });
            }
            TaskState::AwaitingData {
                uploader,
                sources,
                nbytes,
            } => {
                let t = self.tenants.ensure(tenant);
                t.pending_bytes = t.pending_bytes.wrapping_sub(nbytes);
                self.awaiting_worker.remove(&idx);
                for client in uploader.into_iter().chain(sources.iter()) {
                    if let Some(c) = self.clients.get_mut(&client) {
                        c.uploads.remove(&idx);
                    }
                }
                // The uploader dropped its bytes when asked; the others wait
                // to be told.
                for client in sources.iter() {
                    if self.clients.contains_key(&client) {
                        out.push(Action::DataNotNeeded { client, key });
                    }
                }
            }
            TaskState::Storing { worker, nbytes } => {
                self.stop_storing(idx, tenant, worker, nbytes);
                // The bytes may be on the worker already, or still on their
                // way: either way, `Free` (a late report gets another one).
                if self.workers.map.contains_key(&worker) {
                    out.push(Action::Free {
                        worker,
                        tenant,
                        key,
                    });
                }
            }
            TaskState::Memory { who_has, nbytes } => {
                let t = self.tenants.ensure(tenant);
                t.held_bytes = t.held_bytes.wrapping_sub(nbytes);
                for worker in who_has.iter() {
                    self.workers.drop_replica(worker, idx, nbytes);
                    out.push(Action::Free {
                        worker,
                        tenant,
                        key,
                    });
                }
            }
        }
    }

    /// The task no longer needs its inputs: each loses a waiter.
    fn detach_dependencies(&mut self, idx: TaskIdx) {
        let deps = std::mem::take(&mut self.tasks[idx].dependencies);
        for &dep in deps.iter() {
            if let Some(t) = self.tasks.get_mut(dep) {
                t.waiters = t.waiters.saturating_sub(1);
                self.candidate(dep);
            }
        }
    }

    /// Notes that the task may be unneeded now.
    pub(super) fn candidate(&mut self, idx: TaskIdx) {
        if let Some(t) = self.tasks.get(idx)
            && t.holders.is_empty()
            && t.waiters == 0
        {
            self.release_candidates.push(self.tasks.reference(idx));
        }
    }

    /// Forgets every candidate that no client holds and no unfinished task
    /// needs; forgetting a task may make its inputs candidates in turn.
    pub(super) fn forget_unneeded(&mut self, out: &mut Vec<Action>) {
        while let Some(r) = self.release_candidates.pop() {
            if self
                .tasks
                .resolve(r)
                .is_some_and(|t| t.holders.is_empty() && t.waiters == 0)
            {
                self.forget(r.idx, out);
            }
        }
    }

    /// Removes a task, whatever its state: copies are freed, a queue entry
    /// goes stale, a running task's slot is freed (its report gets `Free`).
    fn forget(&mut self, idx: TaskIdx, out: &mut Vec<Action>) {
        let Some(task) = self.tasks.remove(idx) else {
            return;
        };
        let (tenant, key) = (task.tenant, task.key);
        self.index.remove(&(tenant, key));
        let t = self.tenants.ensure(tenant);
        t.ntasks = t.ntasks.saturating_sub(1);
        if matches!(
            task.state,
            TaskState::Memory { .. } | TaskState::Erred { .. }
        ) {
            t.done = t.done.saturating_sub(1);
        }
        self.leave_state(idx, tenant, key, task.state, out);
        for &dep in task.dependencies.iter() {
            if let Some(t) = self.tasks.get_mut(dep) {
                t.waiters = t.waiters.saturating_sub(1);
                self.candidate(dep);
            }
        }
        for client in task.wanted_by.iter().chain(task.holders.iter()) {
            if let Some(c) = self.clients.get_mut(&client) {
                c.wants.remove(&idx);
                c.holds.remove(&idx);
            }
        }
    }

    /// Asks `worker` for a value on behalf of `client`.
    pub(super) fn fetch(
        &mut self,
        client: ClientId,
        worker: WorkerId,
        tenant: TenantId,
        key: KeyId,
        out: &mut Vec<Action>,
    ) {
        let req = self.next_req;
        self.next_req += 1;
        self.fetches.insert(
            req,
            Fetch {
                client,
                worker,
                tenant,
                key,
            },
        );
        out.push(Action::FetchValue {
            worker,
            req,
            tenant,
            key,
        });
    }
}

/// Whether a queue entry names a task that is still queued.
fn is_queued(tasks: &Slab, r: TaskRef) -> bool {
    tasks
        .resolve(r)
        .is_some_and(|t| matches!(t.state, TaskState::Queued))
}
