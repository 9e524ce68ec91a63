//! Tenants: their ready queues and the fair share between them.
//!
//! A ready task that finds no free worker slot waits in its tenant's FIFO
//! queue. When a slot frees, the next task comes from the tenant with the
//! lowest `processing / weight` among the tenants with queued tasks, so a
//! tenant with a thousand queued tasks does not delay another tenant's one.
//!
//! Queues drop entries lazily: a queued task that is cancelled or forgotten
//! stays in the queue as a stale [`TaskRef`] until it is popped, or until
//! stale entries outnumber live ones and the queue is compacted.

use super::task::TaskRef;
use std::collections::{BTreeSet, VecDeque};
use wask_proto::TenantId;
use wask_proto::hash::{FastMap, new_map};
use wask_proto::limits::ResolvedLimits;

/// What a tenant may use: its share, its quotas and its task limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantPolicy {
    /// Share of the cluster relative to other tenants.
    pub weight: u32,
    /// Most tasks running on workers at once.
    pub max_in_flight: u64,
    /// Most tasks submitted and not yet finished.
    pub max_unfinished: u64,
    /// Most bytes of results held on the workers.
    pub max_bytes: u64,
    /// Limits of a task that requests none.
    pub defaults: ResolvedLimits,
    /// The most a task may request.
    pub max_limits: ResolvedLimits,
}

impl TenantPolicy {
    /// No quotas, weight 1, the given limits.
    pub fn unlimited(defaults: ResolvedLimits, max_limits: ResolvedLimits) -> TenantPolicy {
        TenantPolicy {
            weight: 1,
            max_in_flight: u64::MAX,
            max_unfinished: u64::MAX,
            max_bytes: u64::MAX,
            defaults,
            max_limits,
        }
    }
}

/// Per-tenant scheduling state.
#[derive(Debug)]
pub(crate) struct Tenant {
    /// Share, quotas and limits.
    pub policy: TenantPolicy,
    /// Tasks the scheduler knows for this tenant.
    pub ntasks: u64,
    /// Tasks in `Memory` or `Erred`.
    pub done: u64,
    /// Bytes of the tenant's results in memory (one copy counted).
    pub held_bytes: u64,
    /// Bytes of scattered data announced and not in memory yet
    /// (`AwaitingData` or `Storing`): reserved against `max_bytes` from
    /// the scatter on.
    pub pending_bytes: u64,
    /// Tasks in the `Processing` state.
    pub processing: u64,
    /// Tasks in the `Queued` state.
    pub queued: u64,
    /// Scattered values received from the tenant's clients and passed on.
    pub data_uploads: u64,
    /// Queued tasks, oldest first, plus stale entries.
    pub queue: VecDeque<TaskRef>,
}

impl Default for Tenant {
    fn default() -> Self {
        Tenant {
            policy: TenantPolicy::unlimited(ResolvedLimits::default(), ResolvedLimits::default()),
            ntasks: 0,
            done: 0,
            held_bytes: 0,
            pending_bytes: 0,
            processing: 0,
            queued: 0,
            data_uploads: 0,
            queue: VecDeque::new(),
        }
    }
}

/// All tenants.
#[derive(Debug)]
pub(crate) struct Tenants {
    /// The policy of a tenant that was not configured.
    pub default_policy: TenantPolicy,
    /// Tenants by id; never removed (there are few).
    pub map: FastMap<TenantId, Tenant>,
    /// Tenants with `queued > 0`, ordered so ties go to the lowest id.
    pub with_queued: BTreeSet<TenantId>,
}

impl Default for Tenants {
    fn default() -> Self {
        Tenants {
            default_policy: TenantPolicy::unlimited(
                ResolvedLimits::default(),
                ResolvedLimits::default(),
            ),
            map: new_map(),
            with_queued: BTreeSet::new(),
        }
    }
}

impl Tenants {
    /// The tenant, created on first use.
    pub(crate) fn ensure(&mut self, id: TenantId) -> &mut Tenant {
        let policy = &self.default_policy;
        self.map.entry(id).or_insert_with(|| Tenant {
            policy: policy.clone(),
            ..Tenant::default()
        })
    }

    /// The tenant, if known.
    pub(crate) fn get(&self, id: TenantId) -> Option<&Tenant> {
        self.map.get(&id)
    }

    /// Whether any task waits in a queue.
    pub(crate) fn any_queued(&self) -> bool {
        !self.with_queued.is_empty()
    }

    /// A task of the tenant started processing.
    pub(crate) fn started(&mut self, id: TenantId) {
        self.ensure(id).processing += 1;
    }

    /// A task of the tenant stopped processing.
    pub(crate) fn stopped(&mut self, id: TenantId) {
        let t = self.ensure(id);
        t.processing = t.processing.saturating_sub(1);
    }

    /// Queues a task (which is now `Queued`): at the back, or at the front
    /// for a task that was already running once.
    pub(crate) fn push(&mut self, id: TenantId, task: TaskRef, front: bool) {
        let t = self.ensure(id);
        if front {
            t.queue.push_front(task);
        } else {
            t.queue.push_back(task);
        }
        t.queued += 1;
        self.with_queued.insert(id);
    }

    /// A queued task left the `Queued` state other than by [`pop`]; its
    /// entry goes stale. `is_queued` tells live entries from stale ones.
    ///
    /// [`pop`]: Tenants::pop
    pub(crate) fn left_queue(&mut self, id: TenantId, is_queued: impl Fn(TaskRef) -> bool) {
        let t = self.ensure(id);
        t.queued = t.queued.saturating_sub(1);
        if t.queued == 0 {
            t.queue.clear();
            self.with_queued.remove(&id);
        } else if t.queue.len() as u64 > 2 * t.queued + 64 {
            t.queue.retain(|&r| is_queued(r));
        }
    }

    /// The tenant that gets the next free slot: the lowest
    /// `processing / weight` among those with queued tasks and below their
    /// in-flight quota, ties to the lowest id.
    pub(crate) fn pick(&self) -> Option<TenantId> {
        let mut best: Option<(TenantId, u128, u128)> = None;
        for &id in &self.with_queued {
            let Some(t) = self.map.get(&id) else { continue };
            if t.processing >= t.policy.max_in_flight {
                continue;
            }
            let (p, w) = (t.processing as u128, t.policy.weight.max(1) as u128);
            // p / w < bp / bw, without division.
            if best.is_none_or(|(_, bp, bw)| p * bw < bp * w) {
                best = Some((id, p, w));
            }
        }
        best.map(|(id, _, _)| id)
    }

    /// The oldest live queued task of the tenant, taken out of the queue.
    pub(crate) fn pop(
        &mut self,
        id: TenantId,
        is_queued: impl Fn(TaskRef) -> bool,
    ) -> Option<TaskRef> {
        let t = self.map.get_mut(&id)?;
        let mut found = None;
        while let Some(r) = t.queue.pop_front() {
            if is_queued(r) {
                found = Some(r);
                break;
            }
        }
        match found {
            Some(_) => t.queued = t.queued.saturating_sub(1),
            // The count was wrong; `check_invariants` reports it in tests.
            None => t.queued = 0,
        }
        if t.queued == 0 {
            t.queue.clear();
            self.with_queued.remove(&id);
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::task::TaskIdx;

    fn r(i: u32) -> TaskRef {
        TaskRef {
            idx: TaskIdx(i),
            generation: 0,
        }
    }

    #[test]
    fn fair_share_picks_least_busy_tenant() {
        let mut t = Tenants::default();
        t.push(1, r(0), false);
        t.push(2, r(1), false);
        t.ensure(1).processing = 4;
        t.ensure(2).processing = 1;
        assert_eq!(t.pick(), Some(2));
        t.ensure(1).policy.weight = 8; // 4/8 < 1/1
        assert_eq!(t.pick(), Some(1));
        t.ensure(2).processing = 0;
        assert_eq!(t.pick(), Some(2));
    }

    #[test]
    fn pop_skips_stale_entries() {
        let mut t = Tenants::default();
        for i in 0..3 {
            t.push(7, r(i), false);
        }
        t.left_queue(7, |x| x.idx.0 != 0);
        assert_eq!(t.pop(7, |x| x.idx.0 != 0), Some(r(1)));
        t.push(7, r(9), true);
        assert_eq!(t.pop(7, |x| x.idx.0 != 0), Some(r(9)));
        assert_eq!(t.pop(7, |x| x.idx.0 != 0), Some(r(2)));
        assert!(!t.any_queued());
        assert_eq!(t.pop(7, |_| true), None);
    }
}
