//! Workers: what each runs and holds, which have a free slot, and placement.
//!
//! A worker has up to `nthreads × saturation` slots: the scheduler sends
//! it at most that many tasks at once and keeps the rest in the tenants'
//! queues, so a worker that joins, or a tenant that submits later, is
//! served at once. How many of those slots are open adapts to the tasks'
//! measured durations: enough queued work to cover [`QUEUE_BUDGET_US`] per
//! thread plus the time the worker may hold their reports back (see
//! [`budget_us`]), at least one task per thread. Tiny tasks get deep pipelines
//! (the round trip is hidden), long tasks shallow ones (another tenant's
//! task waits behind few of them). The workers with a free slot are kept in a set ordered by load,
//! so "the least busy worker" is the first element and needs no scan.

use super::task::{TaskIdx, TaskSet};
use std::collections::BTreeSet;
use wask_proto::WorkerId;
use wask_proto::hash::{FastMap, new_map};
use wask_proto::limits::{REPORT_HOLD_MAX, REPORT_HOLD_US};

/// Microseconds of queued work per thread the scheduler aims to keep on a
/// worker beyond the running task.
pub(crate) const QUEUE_BUDGET_US: u64 = 2_000;

/// Microseconds of queued work per thread for tasks of `avg_us`:
/// [`QUEUE_BUDGET_US`] plus how long the worker may hold their reports
/// back while it has more queued ([`REPORT_HOLD_MAX`] of them, for at most
/// [`REPORT_HOLD_US`]). With less, the queue would run dry before the held
/// reports free their slots.
fn budget_us(avg_us: u64) -> u64 {
    QUEUE_BUDGET_US + REPORT_HOLD_US.min(REPORT_HOLD_MAX.saturating_mul(avg_us))
}

/// One worker.
#[derive(Debug)]
pub(crate) struct Worker {
    /// Its name, for `info`.
    pub name: String,
    /// Its address for peers, for `info`.
    pub address: String,
    /// Threads that run wasm.
    pub nthreads: u32,
    /// Tasks it may have in flight now.
    pub slots: u32,
    /// Most tasks it may have in flight (`nthreads × saturation`).
    pub max_slots: u32,
    /// Moving average of its tasks' durations, µs (0: none measured yet).
    pub avg_us: u64,
    /// Tasks sent to it and not reported.
    pub processing: TaskSet,
    /// Tasks in memory with a copy on it.
    pub has_what: TaskSet,
    /// Scattered data given to it and not yet reported (`Storing`).
    pub storing: TaskSet,
    /// Sum of the sizes of `storing` (wrapping, like `held_bytes`).
    pub storing_bytes: u64,
    /// Sum of `nbytes` over `has_what` (wrapping, like the sums in the
    /// invariant check, so absurd sizes from a worker cannot overflow).
    pub held_bytes: u64,
    /// Tasks it reported, finished or failed.
    pub executed: u64,
}

impl Worker {
    /// A worker with no work and no data.
    pub(crate) fn new(name: String, address: String, nthreads: u32, slots: u32) -> Worker {
        Worker {
            name,
            address,
            nthreads,
            slots,
            max_slots: slots,
            avg_us: 0,
            processing: TaskSet::default(),
            has_what: TaskSet::default(),
            storing: TaskSet::default(),
            storing_bytes: 0,
            held_bytes: 0,
            executed: 0,
        }
    }

    /// Tasks in flight, as the load key of the free set.
    pub(crate) fn load(&self) -> u32 {
        u32::try_from(self.processing.len()).unwrap_or(u32::MAX)
    }
}

/// All workers.
#[derive(Debug)]
pub(crate) struct Workers {
    /// Workers by id.
    pub map: FastMap<WorkerId, Worker>,
    /// `(load, id)` of every worker with a free slot.
    pub free: BTreeSet<(u32, WorkerId)>,
}

impl Default for Workers {
    fn default() -> Self {
        Workers {
            map: new_map(),
            free: BTreeSet::new(),
        }
    }
}

impl Workers {
    /// Adds a worker; `false` if the id is taken.
    pub(crate) fn join(&mut self, id: WorkerId, worker: Worker) -> bool {
        if self.map.contains_key(&id) {
            return false;
        }
        if worker.load() < worker.slots {
            self.free.insert((worker.load(), id));
        }
        self.map.insert(id, worker);
        true
    }

    /// Removes a worker.
    pub(crate) fn leave(&mut self, id: WorkerId) -> Option<Worker> {
        let worker = self.map.remove(&id)?;
        self.free.remove(&(worker.load(), id));
        Some(worker)
    }

    /// Whether some worker has a free slot.
    pub(crate) fn has_free_slot(&self) -> bool {
        !self.free.is_empty()
    }

    /// The worker now runs `task`.
    pub(crate) fn start(&mut self, id: WorkerId, task: TaskIdx) {
        self.change_load(id, |w| {
            w.processing.insert(task);
        });
    }

    /// The worker no longer runs `task` (for the scheduler's purposes).
    pub(crate) fn stop(&mut self, id: WorkerId, task: TaskIdx) {
        self.change_load(id, |w| {
            w.processing.remove(&task);
        });
    }

    fn change_load(&mut self, id: WorkerId, f: impl FnOnce(&mut Worker)) {
        let Some(w) = self.map.get_mut(&id) else {
            return;
        };
        let before = w.load();
        f(w);
        let after = w.load();
        if before != after {
            if before < w.slots {
                self.free.remove(&(before, id));
            }
            if after < w.slots {
                self.free.insert((after, id));
            }
        }
    }

    /// Folds measured task durations into the worker's average and resizes
    /// its open slots to match.
    pub(crate) fn measured(&mut self, id: WorkerId, durations_us: impl Iterator<Item = u64>) {
        let Some(w) = self.map.get_mut(&id) else {
            return;
        };
        for d in durations_us {
            // EWMA with weight 1/8; the first sample sets it.
            w.avg_us = if w.avg_us == 0 {
                d.max(1)
            } else {
                (w.avg_us * 7 + d.max(1)) / 8
            };
        }
        if w.avg_us == 0 {
            return;
        }
        let per_thread =
            1 + (budget_us(w.avg_us) / w.avg_us.max(1)).min(u64::from(u32::MAX)) as u32;
        let slots = w
            .nthreads
            .saturating_mul(per_thread)
            .clamp(w.nthreads.max(1), w.max_slots.max(1));
        if slots == w.slots {
            return;
        }
        let load = w.load();
        let was_free = load < w.slots;
        w.slots = slots;
        match (was_free, load < slots) {
            (true, false) => {
                self.free.remove(&(load, id));
            }
            (false, true) => {
                self.free.insert((load, id));
            }
            _ => {}
        }
    }

    /// The worker now holds a copy of `task`.
    pub(crate) fn add_replica(&mut self, id: WorkerId, task: TaskIdx, nbytes: u64) {
        if let Some(w) = self.map.get_mut(&id)
            && w.has_what.insert(task)
        {
            w.held_bytes = w.held_bytes.wrapping_add(nbytes);
        }
    }

    /// The worker no longer holds a copy of `task`.
    pub(crate) fn drop_replica(&mut self, id: WorkerId, task: TaskIdx, nbytes: u64) {
        if let Some(w) = self.map.get_mut(&id)
            && w.has_what.remove(&task)
        {
            w.held_bytes = w.held_bytes.wrapping_sub(nbytes);
        }
    }

    /// Where scattered data goes: the worker holding the fewest bytes,
    /// counting the data on its way to it, ties to the fewest tasks in
    /// flight, then the lowest id; so values scattered on an idle cluster
    /// spread over the workers. A scan: workers are few. `None` without
    /// workers.
    pub(crate) fn store_target(&self) -> Option<WorkerId> {
        self.map
            .iter()
            .map(|(&id, w)| (w.held_bytes.saturating_add(w.storing_bytes), w.load(), id))
            .min()
            .map(|(_, _, id)| id)
    }

    /// Of `ids`, the known worker with the fewest tasks in flight, ties to
    /// the lowest id.
    pub(crate) fn least_busy(&self, ids: &[WorkerId]) -> Option<WorkerId> {
        ids.iter()
            .filter_map(|&id| Some((self.map.get(&id)?.load(), id)))
            .min()
            .map(|(_, id)| id)
    }

    /// Where a ready task runs: among workers with a free slot, the one
    /// holding the most bytes of its inputs, ties to the fewest tasks in
    /// flight, then the lowest id. `held` lists `(worker, bytes)` for every
    /// copy of every input; it is sorted in place. `None` if no slot is free.
    pub(crate) fn choose(&self, held: &mut [(WorkerId, u64)]) -> Option<WorkerId> {
        let &(_, least_busy) = self.free.first()?;
        held.sort_unstable_by_key(|&(id, _)| id);
        // (bytes, load, id) of the best worker holding some input bytes.
        let mut best: Option<(u64, u32, WorkerId)> = None;
        for run in held.chunk_by(|a, b| a.0 == b.0) {
            let id = run[0].0;
            let bytes = run.iter().fold(0u64, |sum, &(_, b)| sum.saturating_add(b));
            let Some(w) = self.map.get(&id) else { continue };
            let load = w.load();
            if bytes == 0 || load >= w.slots {
                continue;
            }
            let better = match best {
                None => true,
                Some((b, l, i)) => bytes > b || (bytes == b && (load, id) < (l, i)),
            };
            if better {
                best = Some((bytes, load, id));
            }
        }
        Some(best.map_or(least_busy, |(_, _, id)| id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workers(loads: &[(WorkerId, u32, u32)]) -> Workers {
        let mut ws = Workers::default();
        let mut next = 1000;
        for &(id, load, slots) in loads {
            let mut w = Worker::new(format!("w{id}"), String::new(), 1, slots);
            for _ in 0..load {
                w.processing.insert(TaskIdx(next));
                next += 1;
            }
            assert!(ws.join(id, w));
        }
        ws
    }

    #[test]
    fn most_input_bytes_then_least_busy_then_lowest_id() {
        let ws = workers(&[(1, 1, 2), (2, 0, 2), (3, 0, 2), (4, 0, 2)]);
        assert_eq!(ws.choose(&mut []), Some(2));
        assert_eq!(ws.choose(&mut [(3, 10), (1, 5), (1, 6)]), Some(1));
        assert_eq!(ws.choose(&mut [(4, 10), (3, 10)]), Some(3));
        assert_eq!(ws.choose(&mut [(1, 10), (3, 10)]), Some(3));
        // Inputs of zero bytes weigh nothing.
        assert_eq!(ws.choose(&mut [(4, 0)]), Some(2));
    }

    #[test]
    fn full_workers_are_skipped() {
        let mut ws = workers(&[(1, 2, 2), (2, 1, 2)]);
        assert_eq!(ws.choose(&mut [(1, 100)]), Some(2));
        ws.start(2, TaskIdx(1));
        assert!(!ws.has_free_slot());
        assert_eq!(ws.choose(&mut [(2, 1)]), None);
        ws.stop(1, TaskIdx(1000));
        assert_eq!(ws.free.iter().copied().collect::<Vec<_>>(), vec![(1, 1)]);
        assert_eq!(ws.least_busy(&[2, 1, 9]), Some(1));
    }
}

#[cfg(test)]
mod adaptive_tests {
    use super::*;

    #[test]
    fn slots_follow_task_durations() {
        let mut ws = Workers::default();
        ws.join(1, Worker::new("w".into(), String::new(), 2, 2 * 16));
        // Tiny tasks: the full pipeline.
        ws.measured(1, std::iter::repeat_n(5, 50));
        assert_eq!(ws.map[&1].slots, 32);
        // 20 us tasks, whose reports may wait for 64 of them: 3.28 ms of
        // work queued.
        ws.measured(1, std::iter::repeat_n(20, 200));
        assert_eq!(ws.map[&1].slots, 2 * 16);
        let mut deep = Workers::default();
        deep.join(2, Worker::new("w".into(), String::new(), 2, 2 * 1000));
        deep.measured(2, std::iter::repeat_n(20, 200));
        assert_eq!(deep.map[&2].slots, 2 * 165);
        // 1 ms tasks, whose reports may wait 5 ms: 7 ms of work queued, one
        // running and seven queued per thread.
        ws.measured(1, std::iter::repeat_n(1_000, 200));
        assert_eq!(ws.map[&1].slots, 2 * 8);
        // Long tasks: one per thread; the worker leaves the free set when full.
        ws.measured(1, std::iter::repeat_n(1_000_000, 200));
        assert_eq!(ws.map[&1].slots, 2);
        ws.start(1, TaskIdx(0));
        ws.start(1, TaskIdx(1));
        assert!(!ws.has_free_slot());
        ws.measured(1, std::iter::repeat_n(5, 200));
        assert!(ws.has_free_slot());
    }
}
