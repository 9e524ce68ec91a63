//! Tasks: one per (tenant, key), their states, and the slab that stores them.
//!
//! Tasks refer to each other by [`TaskIdx`], a slot in the [`Slab`]. Lists
//! that may outlive the task they point to (a task's `dependents`, the
//! tenants' ready queues) hold a [`TaskRef`], which also carries the slot's
//! generation: a slot freed and reused for another task no longer matches,
//! so stale entries are skipped instead of being searched for and removed.

use super::ids::IdSet;
use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;
use wask_proto::limits::ResolvedLimits;
use wask_proto::{ArgTemplate, ClientId, KeyId, ModuleId, TaskError, TenantId, WorkerId};

/// A slot of the task slab.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct TaskIdx(pub u32);

/// A set of task slots, hashed by [`SlotHasher`].
pub(crate) type TaskSet = HashSet<TaskIdx, BuildHasherDefault<SlotHasher>>;

/// The hasher of [`TaskSet`]: a slot's bucket is the slot number itself,
/// so slots made one after another (a `map`'s tasks) sit in neighbouring
/// buckets and a sweep over them (finishing, freeing) walks the table in
/// order instead of missing the cache at every step. The top 7 bits, which
/// hashbrown compares to tell members of one bucket group apart, are mixed.
/// No seed is needed: slots are numbered by the scheduler, never by a peer.
#[derive(Default)]
pub(crate) struct SlotHasher(u64);

impl Hasher for SlotHasher {
    fn write_u32(&mut self, slot: u32) {
        let slot = u64::from(slot);
        self.0 = slot | (slot.wrapping_mul(0x9e37_79b9_7f4a_7c15) & (0x7f << 57));
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u32` is reached from `TaskIdx`; any other use still
        // hashes every byte.
        for &b in bytes {
            self.write_u32((self.0 as u32).rotate_left(5) ^ u32::from(b));
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A slot and its generation: names one task even after the slot is reused.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct TaskRef {
    /// The slot.
    pub idx: TaskIdx,
    /// The slot's generation when the reference was made.
    pub generation: u32,
}

/// Where a task is in its life. Every change of state happens in one
/// function of `transition.rs` (or, for `Waiting`, at creation).
#[derive(Clone, Debug)]
pub(crate) enum TaskState {
    /// Some dependencies are not in memory yet.
    Waiting {
        /// Dependencies not in memory.
        unfinished: u32,
    },
    /// Ready, waiting in its tenant's queue for a free worker slot.
    Queued,
    /// Sent to a worker.
    Processing {
        /// The worker running it.
        worker: WorkerId,
    },
    /// Scattered data the scheduler waits for: `uploader` was asked for
    /// the bytes (`None` while no worker is connected to take them), and
    /// `sources` are other clients that scattered the same bytes and keep
    /// them until told, should the uploader leave first. There is no
    /// deadline: an uploader that stays connected and never uploads keeps
    /// the key here until its holders release it (see `scatter.rs`).
    AwaitingData {
        /// The client asked to upload.
        uploader: Option<ClientId>,
        /// Clients that also have the bytes, in the order they scattered.
        sources: IdSet,
        /// Size of the data.
        nbytes: u64,
    },
    /// Scattered data passed on to `worker`, which has not yet said it
    /// holds it. The scheduler kept no copy.
    Storing {
        /// The worker given the bytes.
        worker: WorkerId,
        /// Size of the data, checked when it arrived.
        nbytes: u64,
    },
    /// The result is held by workers.
    Memory {
        /// The workers holding it; never empty.
        who_has: IdSet,
        /// Size of the result.
        nbytes: u64,
    },
    /// Failed, was cancelled, or lost its result; final.
    Erred {
        /// Why; shared by every dependent that failed with it.
        error: Arc<TaskError>,
    },
}

impl TaskState {
    /// Memory or Erred: the task will not run (again).
    pub(crate) fn is_finished(&self) -> bool {
        matches!(self, TaskState::Memory { .. } | TaskState::Erred { .. })
    }
}

/// What a task's result comes from.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum TaskKind {
    /// A call of a module's task: it has a spec and runs on a worker.
    Call {
        /// The module, to run it and render the key's name.
        module: ModuleId,
        /// Index of the task in the module.
        func: u32,
    },
    /// Data a client scattered: no spec, never run, never recomputed. Its
    /// states are `AwaitingData`, `Storing`, `Memory` and `Erred`.
    Data,
}

/// One task.
#[derive(Debug)]
pub(crate) struct Task {
    /// Owner.
    pub tenant: TenantId,
    /// A call or scattered data.
    pub kind: TaskKind,
    /// Unfinished tasks depending on this one (the length of
    /// `dependents` minus the stale entries).
    pub waiters: u32,
    /// The key.
    pub key: KeyId,
    /// Whether the key is a pure (hash) key.
    pub pure: bool,
    /// The state.
    pub state: TaskState,
    /// Arguments; emptied once the task is finished.
    pub args: ArgTemplate,
    /// Limits, resolved at submission.
    pub limits: ResolvedLimits,
    /// The tasks whose results this one needs, in spec order; emptied once
    /// the task is finished.
    pub dependencies: Box<[TaskIdx]>,
    /// Tasks that depend on this one. May hold stale references (finished
    /// or forgotten tasks); see the module docs.
    pub dependents: Vec<TaskRef>,
    /// Clients holding a future of this key.
    pub holders: IdSet,
    /// Clients waiting for the value (asked with `Want` before it was in
    /// memory).
    pub wanted_by: IdSet,
}

/// A slot of the slab.
#[derive(Debug)]
struct Slot {
    generation: u32,
    task: Option<Task>,
}

/// Storage of all tasks: a vector of slots and a free list.
#[derive(Debug, Default)]
pub(crate) struct Slab {
    slots: Vec<Slot>,
    free: Vec<u32>,
    live: usize,
}

impl Slab {
    /// Number of tasks.
    pub(crate) fn len(&self) -> usize {
        self.live
    }

    /// Stores a task; `None` when all 2³² slots are taken.
    pub(crate) fn insert(&mut self, task: Task) -> Option<TaskRef> {
        if let Some(i) = self.free.pop() {
            let slot = &mut self.slots[i as usize];
            slot.task = Some(task);
            self.live += 1;
            return Some(TaskRef {
                idx: TaskIdx(i),
                generation: slot.generation,
            });
        }
        let i = u32::try_from(self.slots.len()).ok()?;
        self.slots.push(Slot {
            generation: 0,
            task: Some(task),
        });
        self.live += 1;
        Some(TaskRef {
            idx: TaskIdx(i),
            generation: 0,
        })
    }

    /// Takes a task out; its slot's generation changes.
    pub(crate) fn remove(&mut self, idx: TaskIdx) -> Option<Task> {
        let slot = self.slots.get_mut(idx.0 as usize)?;
        let task = slot.task.take()?;
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(idx.0);
        self.live -= 1;
        Some(task)
    }

    /// The task in a slot.
    pub(crate) fn get(&self, idx: TaskIdx) -> Option<&Task> {
        self.slots.get(idx.0 as usize)?.task.as_ref()
    }

    /// The task in a slot.
    pub(crate) fn get_mut(&mut self, idx: TaskIdx) -> Option<&mut Task> {
        self.slots.get_mut(idx.0 as usize)?.task.as_mut()
    }

    /// The task a reference names, if it is still there.
    pub(crate) fn resolve(&self, r: TaskRef) -> Option<&Task> {
        let slot = self.slots.get(r.idx.0 as usize)?;
        if slot.generation == r.generation {
            slot.task.as_ref()
        } else {
            None
        }
    }

    /// The task a reference names, if it is still there.
    pub(crate) fn resolve_mut(&mut self, r: TaskRef) -> Option<&mut Task> {
        let slot = self.slots.get_mut(r.idx.0 as usize)?;
        if slot.generation == r.generation {
            slot.task.as_mut()
        } else {
            None
        }
    }

    /// A reference to the task now in `idx`.
    pub(crate) fn reference(&self, idx: TaskIdx) -> TaskRef {
        let generation = self.slots.get(idx.0 as usize).map_or(0, |s| s.generation);
        TaskRef { idx, generation }
    }

    /// Every task, by slot.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (TaskIdx, &Task)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| Some((TaskIdx(i as u32), s.task.as_ref()?)))
    }

    /// Checks the free list and the live count.
    pub(crate) fn check(&self) -> Result<(), String> {
        let live = self.slots.iter().filter(|s| s.task.is_some()).count();
        if live != self.live {
            return Err(format!("slab counts {} live tasks, has {live}", self.live));
        }
        if live + self.free.len() != self.slots.len() {
            return Err(format!(
                "slab: {live} live + {} free != {} slots",
                self.free.len(),
                self.slots.len()
            ));
        }
        for &i in &self.free {
            if self.slots.get(i as usize).is_none_or(|s| s.task.is_some()) {
                return Err(format!("free slot {i} is in use or out of range"));
            }
        }
        Ok(())
    }
}

impl std::ops::Index<TaskIdx> for Slab {
    type Output = Task;
    fn index(&self, idx: TaskIdx) -> &Task {
        self.get(idx).expect("a live task")
    }
}

impl std::ops::IndexMut<TaskIdx> for Slab {
    fn index_mut(&mut self, idx: TaskIdx) -> &mut Task {
        self.get_mut(idx).expect("a live task")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn slot_hash_keeps_the_slot_in_the_low_bits_and_mixes_the_tag_bits() {
        let build = BuildHasherDefault::<SlotHasher>::default();
        let hashes: Vec<u64> = (0..1024).map(|i| build.hash_one(TaskIdx(i))).collect();
        for (i, h) in hashes.iter().enumerate() {
            assert_eq!(*h & 0xffff_ffff, i as u64, "slot {i} lands in bucket {i}");
        }
        let tags: HashSet<u64> = hashes.iter().map(|h| h >> 57).collect();
        assert_eq!(tags.len(), 128, "every 7-bit tag is used");
        let mut set = TaskSet::default();
        set.extend((0..1000).map(TaskIdx));
        assert!((0..1000).all(|i| set.remove(&TaskIdx(i))) && set.is_empty());
    }
}
