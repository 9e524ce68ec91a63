//! A `Compute` through its waits: the module, the dependencies held by
//! other workers, a free wasm thread; then its result into the store and a
//! report for the scheduler.

use super::{Actor, ModuleSlot, PendingTask, WorkerEvent};
use crate::pool::Job;
use crate::sandbox::RunOutput;
use bytes::Bytes;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use wask_proto::hash::{FastMap, new_map};
use wask_proto::limits::PUSH_VALUE_MAX;
use wask_proto::msg::{ComputeTask, Finished, WorkerRequest};
use wask_proto::{KeyId, TaskError, TenantId, WorkerId};

/// The key of a task's random stream: equal for equal calls, so a pure
/// task gives the same bytes wherever it runs.
fn seed(tenant: TenantId, key: &KeyId) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(b"wask seed v1");
    h.update(&tenant.to_le_bytes());
    h.update(&key.0);
    *h.finalize().as_bytes()
}

impl Actor {
    /// A new task: wait for its module if needed.
    pub(super) fn accept(&mut self, task: ComputeTask) {
        self.accepted.insert((task.tenant, task.key), false);
        match self.modules.get_mut(&task.module) {
            None => {
                let _ = self.to_scheduler.send(WorkerRequest::NeedModule {
                    module: task.module,
                });
                self.modules
                    .insert(task.module, ModuleSlot::Fetching(vec![task]));
            }
            Some(ModuleSlot::Fetching(waiting)) | Some(ModuleSlot::Compiling(waiting)) => {
                waiting.push(task)
            }
            Some(ModuleSlot::Failed(e)) => {
                let e = e.clone();
                self.fail(task.tenant, task.key, e);
            }
            Some(ModuleSlot::Ready(_)) => self.prepare(task),
        }
    }

    /// The module is ready: gather the dependencies, fetching what is
    /// elsewhere.
    pub(super) fn prepare(&mut self, task: ComputeTask) {
        if let Err(e) = task.args.validate(task.deps.len()) {
            self.fail(
                task.tenant,
                task.key,
                TaskError::Abi {
                    message: e.to_string(),
                },
            );
            return;
        }
        if task.deps.is_empty() {
            self.start(task, &[]);
            return;
        }
        let keys: Vec<KeyId> = task.deps.iter().map(|d| d.key).collect();
        let values = self.store.get_many(task.tenant, &keys);
        let missing = values.iter().filter(|v| v.is_none()).count();
        if missing == 0 {
            let values: Vec<Bytes> = values.into_iter().flatten().collect();
            self.start(task, &values);
            return;
        }
        // Group the missing dependencies by the peer to fetch them from.
        let mut by_peer: FastMap<WorkerId, Vec<usize>> = new_map();
        for (i, v) in values.iter().enumerate() {
            if v.is_some() {
                continue;
            }
            match task.deps[i].who_has.iter().find(|w| **w != self.worker) {
                Some(w) => by_peer.entry(*w).or_default().push(i),
                None => {
                    let key = task.deps[i].key.hex();
                    self.fail(task.tenant, task.key, TaskError::WorkerLost { key });
                    return;
                }
            }
        }
        let id = self.next_id;
        self.next_id += 1;
        let tenant = task.tenant;
        self.pending.insert(
            id,
            PendingTask {
                task,
                values,
                missing,
            },
        );
        for (peer, deps) in by_peer {
            let peers = self.peers.clone();
            let me = self.me.clone();
            let peer_keys: Vec<KeyId> = deps.iter().map(|i| keys[*i]).collect();
            tokio::spawn(async move {
                let result = match peers.info(peer) {
                    Some(info) => peers
                        .fetch(&info, tenant, peer_keys)
                        .await
                        .map_err(|e| e.to_string()),
                    None => Err(format!("worker {peer} is not known")),
                };
                let _ = me.send(WorkerEvent::Fetched {
                    pending: id,
                    deps,
                    result,
                });
            });
        }
    }

    pub(super) fn fetched(
        &mut self,
        pending: u64,
        deps: Vec<usize>,
        result: Result<Vec<Option<Bytes>>, String>,
    ) {
        let Some(p) = self.pending.get_mut(&pending) else {
            return;
        };
        let lost = match result {
            Ok(values) => {
                let mut lost = None;
                for (i, v) in deps.iter().zip(values) {
                    match v {
                        Some(b) => {
                            if p.values[*i].is_none() {
                                p.values[*i] = Some(b);
                                p.missing -= 1;
                            }
                        }
                        None => lost = Some(*i),
                    }
                }
                lost
            }
            Err(e) => {
                tracing::warn!("fetching dependencies failed: {e}");
                deps.first().copied()
            }
        };
        if let Some(i) = lost {
            let p = self.pending.remove(&pending).expect("present");
            let key = p.task.deps[i].key.hex();
            self.fail(p.task.tenant, p.task.key, TaskError::WorkerLost { key });
            return;
        }
        if p.missing == 0 {
            let p = self.pending.remove(&pending).expect("present");
            let values: Vec<Bytes> = p.values.into_iter().flatten().collect();
            self.start(p.task, &values);
        }
    }

    /// Everything is here: splice the arguments and queue the job.
    pub(super) fn start(&mut self, task: ComputeTask, deps: &[Bytes]) {
        if self.accepted.remove(&(task.tenant, task.key)) == Some(true) {
            // Freed while it waited: the scheduler no longer wants it.
            return;
        }
        let Some(ModuleSlot::Ready(compiled)) = self.modules.get(&task.module) else {
            self.fail(
                task.tenant,
                task.key,
                TaskError::ModuleRejected {
                    reason: "module not compiled".into(),
                },
            );
            return;
        };
        let compiled = compiled.clone();
        let mut args = Vec::new();
        if let Err(e) = task
            .args
            .splice_into(|i| &deps[i], task.limits.memory_bytes, &mut args)
        {
            let (size, max) = match e {
                wask_proto::template::TemplateError::TooLarge { size, limit } => (size, limit),
                _ => (0, 0),
            };
            self.fail(
                task.tenant,
                task.key,
                TaskError::LimitExceeded {
                    limit: wask_proto::error::Limit::ArgumentSize,
                    size,
                    max,
                },
            );
            return;
        }
        let job = self.next_id;
        self.next_id += 1;
        self.jobs.insert(job, (task.tenant, task.key));
        let cancel = Arc::new(AtomicBool::new(false));
        self.running.insert((task.tenant, task.key), cancel.clone());
        self.pool.submit(Job {
            cancel,
            id: job,
            module: compiled,
            func: task.func,
            args,
            limits: task.limits,
            seed: seed(task.tenant, &task.key),
        });
    }

    pub(super) fn job_done(&mut self, job: u64, output: RunOutput) {
        let Some((tenant, key)) = self.jobs.remove(&job) else {
            return;
        };
        let cancelled = self
            .running
            .remove(&(tenant, key))
            .is_some_and(|f| f.load(Ordering::Relaxed));
        if cancelled {
            // The scheduler already forgot the task: nothing to report, and
            // its time (zero if it never started) says nothing of the others.
            return;
        }
        // Moving average (weight 1/8) of how long jobs take, for `next_event`.
        let us = output.elapsed.as_micros().min(u128::from(u32::MAX)) as u64;
        self.job_us = (self.job_us * 7 + us) / 8;
        if !output.stdout.is_empty() || !output.stderr.is_empty() {
            tracing::debug!(
                key = %key.hex(),
                stdout = %String::from_utf8_lossy(&output.stdout),
                stderr = %String::from_utf8_lossy(&output.stderr),
                "task output"
            );
        }
        match output.result {
            Ok(bytes) => {
                let bytes = Bytes::from(bytes);
                let nbytes = bytes.len() as u64;
                let value = (bytes.len() <= PUSH_VALUE_MAX).then(|| bytes.clone());
                match self.store.insert(tenant, key, bytes) {
                    Ok(()) => self.finished.push(Finished {
                        tenant,
                        key,
                        nbytes,
                        value,
                        duration_us: output.elapsed.as_micros() as u64,
                    }),
                    Err(full) => self.fail(
                        tenant,
                        key,
                        TaskError::WorkerFull {
                            message: full.to_string(),
                        },
                    ),
                }
            }
            Err(e) => self.fail(tenant, key, e),
        }
    }
}
