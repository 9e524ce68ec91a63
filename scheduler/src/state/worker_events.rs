//! Workers joining, leaving and reporting finished or failed tasks.
//!
//! Reports are checked against the state: a result the scheduler did not
//! ask that worker for (unknown key, released, cancelled, or running
//! elsewhere) is freed on that worker, unless the key is in memory, in
//! which case the worker's copy is simply one more replica.

use super::Core;
use super::event::Action;
use super::task::{TaskIdx, TaskKind, TaskState};
use super::worker::Worker;
use std::sync::Arc;
use wask_proto::msg::{Failed, Finished};
use wask_proto::{TaskError, WorkerId};

impl Core {
    /// A worker joined; its slots are filled from the queues at the end of
    /// the event. A known id is left as it is. (Its memory limit is not
    /// used by placement yet.)
    pub(super) fn worker_joined(
        &mut self,
        worker: WorkerId,
        name: String,
        address: String,
        nthreads: u32,
    ) {
        let slots = nthreads.saturating_mul(self.config.saturation.max(1));
        self.workers
            .join(worker, Worker::new(name, address, nthreads, slots));
    }

    /// A worker left: its running tasks are rescheduled, results only it
    /// held are lost (their keys and unfinished dependents erred; with
    /// `DataLost` for scattered data, and for data it was being given), and
    /// values asked of it are answered with an error.
    pub(super) fn worker_left(&mut self, worker: WorkerId, out: &mut Vec<Action>) {
        let Some(gone) = self.workers.leave(worker) else {
            return;
        };

        // Sorted, so that the actions do not depend on hash order.
        let mut running: Vec<TaskIdx> = gone.processing.into_iter().collect();
        running.sort_unstable();
        for &idx in &running {
            let task = &mut self.tasks[idx];
            self.tenants.stopped(task.tenant);
            // Ready again, placed below once the losses are known.
            task.state = TaskState::Waiting { unfinished: 0 };
        }

        // Scattered data on its way to the worker: the scheduler kept no
        // copy, and the client dropped its own once it uploaded.
        let mut storing: Vec<TaskIdx> = gone.storing.into_iter().collect();
        storing.sort_unstable();
        for idx in storing {
            let state = self.tasks.get(idx).map(|t| &t.state);
            if matches!(state, Some(TaskState::Storing { worker: w, .. }) if *w == worker) {
                self.lose_data(idx, out);
            }
        }

        let mut held: Vec<TaskIdx> = gone.has_what.into_iter().collect();
        held.sort_unstable();
        for idx in held {
            let task = &mut self.tasks[idx];
            let scattered = task.kind == TaskKind::Data;
            let TaskState::Memory { who_has, .. } = &mut task.state else {
                continue;
            };
            who_has.remove(worker);
            if who_has.is_empty() && scattered {
                self.lose_data(idx, out);
            } else if who_has.is_empty() {
                let key = self.render_idx(idx);
                let error = TaskError::WorkerLost { key: key.clone() };
                let for_dependents = error.for_dependents(|| key);
                self.err(idx, Arc::new(error), out);
                self.err_dependents(idx, Arc::new(for_dependents), out);
            }
        }

        for idx in running {
            if self
                .tasks
                .get(idx)
                .is_some_and(|t| matches!(t.state, TaskState::Waiting { unfinished: 0 }))
            {
                self.make_ready(idx, true, out);
            }
        }

        let mut lost: Vec<u64> = self
            .fetches
            .iter()
            .filter(|(_, f)| f.worker == worker)
            .map(|(&r, _)| r)
            .collect();
        lost.sort_unstable();
        for req in lost {
            let Some(f) = self.fetches.remove(&req) else {
                continue;
            };
            if self.clients.contains_key(&f.client) {
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

    /// A worker reports results it now holds.
    pub(super) fn finished(
        &mut self,
        worker: WorkerId,
        reports: Vec<Finished>,
        out: &mut Vec<Action>,
    ) {
        let Some(w) = self.workers.map.get_mut(&worker) else {
            return;
        };
        w.executed += reports.len() as u64;
        self.workers
            .measured(worker, reports.iter().map(|f| f.duration_us));
        for f in reports {
            let Some(&idx) = self.index.get(&(f.tenant, f.key)) else {
                out.push(Action::Free {
                    worker,
                    tenant: f.tenant,
                    key: f.key,
                });
                continue;
            };
            match &mut self.tasks[idx].state {
                TaskState::Processing { worker: w } if *w == worker => {
                    self.finish(idx, worker, f.nbytes, f.value, out);
                }
                TaskState::Memory { who_has, nbytes } => {
                    if who_has.insert(worker) {
                        let nbytes = *nbytes;
                        self.workers.add_replica(worker, idx, nbytes);
                    }
                }
                _ => out.push(Action::Free {
                    worker,
                    tenant: f.tenant,
                    key: f.key,
                }),
            }
        }
    }

    /// A worker reports failed tasks. Reports of tasks it was not running
    /// (for the scheduler) are ignored: it holds nothing to free.
    pub(super) fn failed(&mut self, worker: WorkerId, reports: Vec<Failed>, out: &mut Vec<Action>) {
        let Some(w) = self.workers.map.get_mut(&worker) else {
            return;
        };
        w.executed += reports.len() as u64;
        for f in reports {
            let Some(&idx) = self.index.get(&(f.tenant, f.key)) else {
                continue;
            };
            if !matches!(self.tasks[idx].state, TaskState::Processing { worker: w } if w == worker)
            {
                continue;
            }
            let for_dependents = f.error.for_dependents(|| self.render_idx(idx));
            self.err(idx, Arc::new(f.error), out);
            self.err_dependents(idx, Arc::new(for_dependents), out);
        }
    }
}
