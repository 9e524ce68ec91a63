//! The full consistency check of the core, run by tests after every step.
//!
//! It recomputes every count and cross-reference from scratch (tasks ↔
//! index, dependencies ↔ dependents ↔ waiters, holders ↔ clients, states
//! ↔ workers ↔ tenants ↔ queues, scattered data ↔ its sources and the
//! worker storing it) and compares. O(state); never used on
//! the hot path.

use super::Core;
use super::task::{TaskIdx, TaskKind, TaskState};
use wask_proto::TenantId;
use wask_proto::hash::{FastMap, new_map};

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)*) => {
        if !$cond {
            return Err(format!($($fmt)*));
        }
    };
}

/// Per-tenant counts, recomputed.
#[derive(Default)]
struct Counts {
    tasks: u64,
    processing: u64,
    queued: u64,
    done: u64,
    held_bytes: u64,
    pending_bytes: u64,
}

pub(super) fn check(core: &Core) -> Result<(), String> {
    core.tasks.check()?;
    ensure!(
        core.index.len() == core.tasks.len(),
        "index has {} keys, slab {} tasks",
        core.index.len(),
        core.tasks.len()
    );
    for (&(tenant, key), &idx) in &core.index {
        let t = core
            .tasks
            .get(idx)
            .ok_or_else(|| format!("index points {key:?} at empty slot {idx:?}"))?;
        ensure!(
            t.tenant == tenant && t.key == key,
            "slot {idx:?} holds {:?}, index says {key:?}",
            t.key
        );
    }

    // How often each task appears in its tenant's queue (stale entries too).
    let mut in_queue: FastMap<(TenantId, TaskIdx, u32), usize> = new_map();
    for (&id, tenant) in &core.tenants.map {
        for r in &tenant.queue {
            *in_queue.entry((id, r.idx, r.generation)).or_default() += 1;
        }
    }
    let mut waiters: FastMap<TaskIdx, u32> = new_map();
    let mut counts: FastMap<TenantId, Counts> = new_map();
    for (idx, t) in core.tasks.iter() {
        let name = || format!("task {:?} ({:?})", t.key, t.state);
        let c = counts.entry(t.tenant).or_default();
        c.tasks += 1;
        match &t.state {
            TaskState::Memory { nbytes, .. } => {
                c.done += 1;
                c.held_bytes = c.held_bytes.wrapping_add(*nbytes);
            }
            TaskState::Erred { .. } => c.done += 1,
            TaskState::AwaitingData { nbytes, .. } | TaskState::Storing { nbytes, .. } => {
                c.pending_bytes = c.pending_bytes.wrapping_add(*nbytes);
            }
            _ => {}
        }

        let me = core.tasks.reference(idx);
        let mut not_in_memory = 0u32;
        for (i, &d) in t.dependencies.iter().enumerate() {
            let dep = core
                .tasks
                .get(d)
                .ok_or_else(|| format!("{}: dependency {d:?} is gone", name()))?;
            ensure!(
                dep.tenant == t.tenant,
                "{}: depends on another tenant's task",
                name()
            );
            ensure!(
                !t.dependencies[..i].contains(&d),
                "{}: dependency listed twice",
                name()
            );
            ensure!(
                dep.dependents.contains(&me),
                "{}: missing from its dependency's dependents",
                name()
            );
            ensure!(
                !matches!(dep.state, TaskState::Erred { .. }),
                "{}: depends on an erred task",
                name()
            );
            if !matches!(dep.state, TaskState::Memory { .. }) {
                not_in_memory += 1;
            }
            *waiters.entry(d).or_default() += 1;
        }
        if t.state.is_finished() {
            ensure!(
                t.dependencies.is_empty(),
                "{}: finished but still lists dependencies",
                name()
            );
            ensure!(
                t.wanted_by.is_empty(),
                "{}: finished with pending wants",
                name()
            );
            ensure!(
                t.args.bytes.is_empty() && t.args.holes.is_empty(),
                "{}: finished but keeps its arguments",
                name()
            );
        }
        match t.kind {
            TaskKind::Data => {
                ensure!(
                    !matches!(
                        t.state,
                        TaskState::Waiting { .. }
                            | TaskState::Queued
                            | TaskState::Processing { .. }
                    ),
                    "{}: scattered data cannot run",
                    name()
                );
                ensure!(
                    t.dependencies.is_empty() && t.args.bytes.is_empty() && t.args.holes.is_empty(),
                    "{}: scattered data has a spec",
                    name()
                );
                ensure!(t.pure, "{}: scattered data has a random key", name());
            }
            TaskKind::Call { .. } => ensure!(
                !matches!(
                    t.state,
                    TaskState::AwaitingData { .. } | TaskState::Storing { .. }
                ),
                "{}: a call in a state of scattered data",
                name()
            ),
        }
        match &t.state {
            TaskState::AwaitingData {
                uploader, sources, ..
            } => {
                match uploader {
                    Some(u) => ensure!(
                        !sources.contains(*u),
                        "{}: uploader {u} is also a source",
                        name()
                    ),
                    None => {
                        ensure!(
                            core.workers.map.is_empty() && !sources.is_empty(),
                            "{}: nobody asked for the bytes",
                            name()
                        );
                        ensure!(
                            core.awaiting_worker.contains(&idx),
                            "{}: not in the set waiting for a worker",
                            name()
                        );
                    }
                }
                ensure!(
                    uploader.is_none() || !core.awaiting_worker.contains(&idx),
                    "{}: asked for and waiting for a worker",
                    name()
                );
                for c in uploader.iter().copied().chain(sources.iter()) {
                    let client = core
                        .clients
                        .get(&c)
                        .ok_or_else(|| format!("{}: source {c} is not connected", name()))?;
                    ensure!(
                        client.tenant == t.tenant && client.uploads.contains(&idx),
                        "{}: source {c} does not list the upload",
                        name()
                    );
                }
            }
            TaskState::Storing { worker, .. } => {
                let w = core
                    .workers
                    .map
                    .get(worker)
                    .ok_or_else(|| format!("{}: stored on unknown worker", name()))?;
                ensure!(
                    w.storing.contains(&idx),
                    "{}: not in its worker's storing set",
                    name()
                );
            }
            TaskState::Waiting { unfinished } => {
                ensure!(*unfinished > 0, "{}: waiting for nothing", name());
                ensure!(
                    *unfinished == not_in_memory,
                    "{}: {not_in_memory} inputs not in memory",
                    name()
                );
            }
            TaskState::Queued => {
                ensure!(
                    not_in_memory == 0,
                    "{}: queued with inputs not in memory",
                    name()
                );
                c.queued += 1;
                let entries = in_queue
                    .get(&(t.tenant, idx, me.generation))
                    .copied()
                    .unwrap_or(0);
                ensure!(
                    entries == 1,
                    "{}: in its tenant's queue {entries} times",
                    name()
                );
            }
            TaskState::Processing { worker } => {
                ensure!(
                    not_in_memory == 0,
                    "{}: processing with inputs not in memory",
                    name()
                );
                c.processing += 1;
                let w = core
                    .workers
                    .map
                    .get(worker)
                    .ok_or_else(|| format!("{}: on unknown worker", name()))?;
                ensure!(
                    w.processing.contains(&idx),
                    "{}: not in its worker's processing set",
                    name()
                );
            }
            TaskState::Memory { who_has, .. } => {
                ensure!(!who_has.is_empty(), "{}: in memory nowhere", name());
                for (i, w) in who_has.iter().enumerate() {
                    ensure!(
                        !who_has.as_slice()[..i].contains(&w),
                        "{}: worker {w} listed twice",
                        name()
                    );
                    let worker = core
                        .workers
                        .map
                        .get(&w)
                        .ok_or_else(|| format!("{}: on unknown worker {w}", name()))?;
                    ensure!(
                        worker.has_what.contains(&idx),
                        "{}: missing from worker {w}'s has_what",
                        name()
                    );
                }
            }
            TaskState::Erred { .. } => {}
        }
        for c in t.holders.iter() {
            let client = core
                .clients
                .get(&c)
                .ok_or_else(|| format!("{}: held by unknown client {c}", name()))?;
            ensure!(
                client.tenant == t.tenant,
                "{}: held by client {c} of another tenant",
                name()
            );
            ensure!(
                client.holds.contains(&idx),
                "{}: client {c} does not list it",
                name()
            );
        }
        for c in t.wanted_by.iter() {
            let client = core
                .clients
                .get(&c)
                .ok_or_else(|| format!("{}: wanted by unknown client {c}", name()))?;
            ensure!(
                client.wants.contains(&idx),
                "{}: client {c} does not list its want",
                name()
            );
        }
    }
    for (idx, t) in core.tasks.iter() {
        let n = waiters.get(&idx).copied().unwrap_or(0);
        ensure!(
            t.waiters == n,
            "task {:?}: {} waiters recorded, {n} unfinished dependents",
            t.key,
            t.waiters
        );
        ensure!(
            !t.holders.is_empty() || n > 0,
            "task {:?} ({:?}) is needed by nobody",
            t.key,
            t.state
        );
    }

    for (&id, w) in &core.workers.map {
        for &idx in &w.processing {
            let ok = core.tasks.get(idx).is_some_and(
                |t| matches!(t.state, TaskState::Processing { worker } if worker == id),
            );
            ensure!(ok, "worker {id} lists {idx:?} as processing");
        }
        for &idx in &w.storing {
            let ok = core.tasks.get(idx).is_some_and(
                |t| matches!(t.state, TaskState::Storing { worker, .. } if worker == id),
            );
            ensure!(ok, "worker {id} lists {idx:?} as storing");
        }
        let storing = w.storing.iter().fold(0u64, |sum, &idx| {
            match core.tasks.get(idx).map(|t| &t.state) {
                Some(TaskState::Storing { nbytes, .. }) => sum.wrapping_add(*nbytes),
                _ => sum,
            }
        });
        ensure!(
            storing == w.storing_bytes,
            "worker {id} counts {} bytes being stored, is given {storing}",
            w.storing_bytes
        );
        let mut bytes = 0u64;
        for &idx in &w.has_what {
            match core.tasks.get(idx).map(|t| &t.state) {
                Some(TaskState::Memory { who_has, nbytes }) if who_has.contains(id) => {
                    bytes = bytes.wrapping_add(*nbytes)
                }
                _ => return Err(format!("worker {id} lists {idx:?} as held")),
            }
        }
        ensure!(
            bytes == w.held_bytes,
            "worker {id} counts {} held bytes, holds {bytes}",
            w.held_bytes
        );
        let free = w.load() < w.slots;
        ensure!(
            core.workers.free.contains(&(w.load(), id)) == free,
            "worker {id}: free set disagrees (free: {free})"
        );
    }
    for &(load, id) in &core.workers.free {
        ensure!(
            core.workers.map.get(&id).is_some_and(|w| w.load() == load),
            "free set has stale ({load}, {id})"
        );
    }

    for (&id, tenant) in &core.tenants.map {
        let c = counts.remove(&id).unwrap_or_default();
        ensure!(
            tenant.ntasks == c.tasks,
            "tenant {id}: {} tasks counted, {} exist",
            tenant.ntasks,
            c.tasks
        );
        ensure!(
            tenant.done == c.done && tenant.held_bytes == c.held_bytes,
            "tenant {id}: done {} / held {} counted, {} / {} exist",
            tenant.done,
            tenant.held_bytes,
            c.done,
            c.held_bytes
        );
        ensure!(
            tenant.pending_bytes == c.pending_bytes,
            "tenant {id}: {} bytes of scattered data pending counted, {} exist",
            tenant.pending_bytes,
            c.pending_bytes
        );
        ensure!(
            tenant.processing <= tenant.policy.max_in_flight,
            "tenant {id}: {} processing over its quota",
            tenant.processing
        );
        ensure!(
            tenant.processing == c.processing,
            "tenant {id}: {} processing counted, {}",
            tenant.processing,
            c.processing
        );
        ensure!(
            tenant.queued == c.queued,
            "tenant {id}: {} queued counted, {} queued",
            tenant.queued,
            c.queued
        );
        ensure!(
            core.tenants.with_queued.contains(&id) == (c.queued > 0),
            "tenant {id}: with_queued disagrees"
        );
    }
    ensure!(
        counts.is_empty(),
        "tasks of unknown tenants {:?}",
        counts.keys().collect::<Vec<_>>()
    );
    for id in &core.tenants.with_queued {
        ensure!(
            core.tenants.map.contains_key(id),
            "with_queued names unknown tenant {id}"
        );
    }
    ensure!(
        !(core.tenants.any_queued() && core.workers.has_free_slot()),
        "tasks are queued while a worker slot is free"
    );

    for (&id, client) in &core.clients {
        for &idx in &client.holds {
            ensure!(
                core.tasks.get(idx).is_some_and(|t| t.holders.contains(id)),
                "client {id} holds {idx:?}, not listed"
            );
        }
        for &idx in &client.uploads {
            let ok = core.tasks.get(idx).is_some_and(|t| match &t.state {
                TaskState::AwaitingData {
                    uploader, sources, ..
                } => *uploader == Some(id) || sources.contains(id),
                _ => false,
            });
            ensure!(ok, "client {id} lists {idx:?} as an upload");
        }
        for &idx in &client.wants {
            ensure!(
                core.tasks
                    .get(idx)
                    .is_some_and(|t| t.wanted_by.contains(id)),
                "client {id} wants {idx:?}, not listed"
            );
        }
    }
    for (req, f) in &core.fetches {
        ensure!(
            core.workers.map.contains_key(&f.worker),
            "fetch {req} waits on unknown worker {}",
            f.worker
        );
        ensure!(*req < core.next_req, "fetch {req} is from the future");
    }
    for &idx in &core.awaiting_worker {
        ensure!(
            core.tasks
                .get(idx)
                .is_some_and(|t| matches!(t.state, TaskState::AwaitingData { uploader: None, .. })),
            "{idx:?} waits for a worker but is not data waiting to be asked for"
        );
    }
    ensure!(
        core.release_candidates.is_empty(),
        "release candidates left over"
    );
    Ok(())
}
