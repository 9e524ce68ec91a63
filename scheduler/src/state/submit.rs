//! Submitting tasks: validation, deduplication by key, and creation.
//!
//! A spec that cannot run anywhere (unknown module, no such task, a bad
//! template, repeated dependencies) is refused with `ClientErred` and
//! creates nothing. A spec whose key exists adds a holder and recomputes
//! nothing. Otherwise the task is created, held by the client; a missing
//! or failed dependency makes it `Erred` at once.

use super::Core;
use super::event::Action;
use super::ids::IdSet;
use super::task::{Task, TaskIdx, TaskKind, TaskState};
use std::sync::Arc;
use wask_proto::limits::ResolvedLimits;
use wask_proto::msg::TaskSpec;
use wask_proto::{ClientId, TaskError, TenantId};

/// Beyond this many dependencies, repeats are found by sorting a copy
/// rather than by comparing every pair.
const PAIRWISE_DEPS: usize = 16;

impl Core {
    /// Handles a `Submit` event.
    pub(super) fn submit(&mut self, client: ClientId, specs: Vec<TaskSpec>, out: &mut Vec<Action>) {
        let Some(tenant) = self.clients.get(&client).map(|c| c.tenant) else {
            return;
        };
        for spec in specs {
            self.submit_one(client, tenant, spec, out);
        }
    }

    fn submit_one(
        &mut self,
        client: ClientId,
        tenant: TenantId,
        spec: TaskSpec,
        out: &mut Vec<Action>,
    ) {
        if let Err(reason) = self.validate(tenant, &spec) {
            let error = TaskError::ModuleRejected { reason };
            out.push(Action::ClientErred {
                client,
                key: spec.key,
                error,
            });
            return;
        }
        if let Some(&idx) = self.index.get(&(tenant, spec.key)) {
            self.add_holder(client, idx, out);
            return;
        }
        if let Some(message) = self.over_quota(tenant) {
            out.push(Action::ClientErred {
                client,
                key: spec.key,
                error: TaskError::Quota { message },
            });
            return;
        }

        // The first missing or failed dependency, in spec order, decides
        // the error. A key of another tenant is simply not found.
        let mut problem = None;
        for dep in &spec.deps {
            match self.index.get(&(tenant, *dep)) {
                None => problem = Some(TaskError::UnknownKey { key: dep.hex() }),
                Some(&d) => {
                    if let TaskState::Erred { error } = &self.tasks[d].state {
                        problem = Some(error.for_dependents(|| self.render_idx(d)));
                    }
                }
            }
            if problem.is_some() {
                break;
            }
        }
        let (state, dependencies, args): (_, Box<[TaskIdx]>, _) = match problem {
            Some(error) => (
                TaskState::Erred {
                    error: Arc::new(error),
                },
                Box::default(),
                Default::default(),
            ),
            None => {
                let deps: Box<[TaskIdx]> = spec
                    .deps
                    .iter()
                    .map(|k| self.index[&(tenant, *k)])
                    .collect();
                let unfinished = deps
                    .iter()
                    .filter(|&&d| !matches!(self.tasks[d].state, TaskState::Memory { .. }))
                    .count();
                // `validate` bounds the number of dependencies by u32.
                (
                    TaskState::Waiting {
                        unfinished: unfinished as u32,
                    },
                    deps,
                    spec.args,
                )
            }
        };
        let task = Task {
            tenant,
            kind: TaskKind::Call {
                module: spec.module,
                func: spec.func,
            },
            waiters: 0,
            key: spec.key,
            pure: spec.pure,
            state,
            args,
            limits: {
                let policy = &self.tenants.ensure(tenant).policy;
                ResolvedLimits::resolve(&spec.limits, &policy.defaults, &policy.max_limits)
            },
            dependencies,
            dependents: Vec::new(),
            holders: IdSet::one(client),
            wanted_by: IdSet::default(),
        };
        let Some(r) = self.tasks.insert(task) else {
            let error = TaskError::Quota {
                message: "the scheduler holds 2^32 tasks".into(),
            };
            out.push(Action::ClientErred {
                client,
                key: spec.key,
                error,
            });
            return;
        };
        self.index.insert((tenant, spec.key), r.idx);
        let t = self.tenants.ensure(tenant);
        t.ntasks += 1;
        if matches!(self.tasks[r.idx].state, TaskState::Erred { .. }) {
            t.done += 1;
        }
        if let Some(c) = self.clients.get_mut(&client) {
            c.holds.insert(r.idx);
        }
        match &self.tasks[r.idx].state {
            TaskState::Erred { error } => {
                let error = (**error).clone();
                out.push(Action::ClientErred {
                    client,
                    key: spec.key,
                    error,
                });
            }
            TaskState::Waiting { unfinished } => {
                let ready = *unfinished == 0;
                for i in 0..self.tasks[r.idx].dependencies.len() {
                    let dep = self.tasks[r.idx].dependencies[i];
                    self.add_dependent(dep, r);
                }
                if ready {
                    self.make_ready(r.idx, false, out);
                }
            }
            _ => {}
        }
    }

    /// Why the tenant may not add a task now, if it may not.
    pub(super) fn over_quota(&mut self, tenant: TenantId) -> Option<String> {
        let t = self.tenants.ensure(tenant);
        let unfinished = t.ntasks - t.done.min(t.ntasks);
        if unfinished >= t.policy.max_unfinished {
            return Some(format!(
                "{unfinished} tasks submitted and unfinished; the tenant's quota is {}",
                t.policy.max_unfinished
            ));
        }
        if t.held_bytes >= t.policy.max_bytes {
            return Some(format!(
                "{} bytes of results held; the tenant's quota is {} (release futures to free them)",
                t.held_bytes, t.policy.max_bytes
            ));
        }
        None
    }

    /// Why a spec cannot be accepted, if it cannot.
    fn validate(&mut self, tenant: TenantId, spec: &TaskSpec) -> Result<(), String> {
        // Another tenant's module is reported exactly like a missing one.
        let module = self
            .modules
            .get(&spec.module)
            .filter(|m| m.tenant == tenant)
            .ok_or_else(|| format!("unknown module {}", spec.module))?;
        if spec.func as usize >= module.task_names.len() {
            return Err(format!(
                "module {} has no task {} (it has {})",
                spec.module,
                spec.func,
                module.task_names.len()
            ));
        }
        if u32::try_from(spec.deps.len()).is_err() {
            return Err(format!("{} dependencies are too many", spec.deps.len()));
        }
        spec.args
            .validate(spec.deps.len())
            .map_err(|e| format!("bad argument template: {e}"))?;
        let repeated = if spec.deps.len() <= PAIRWISE_DEPS {
            spec.deps
                .iter()
                .enumerate()
                .any(|(i, k)| spec.deps[..i].contains(k))
        } else {
            let keys = &mut self.scratch_keys;
            keys.clear();
            keys.extend_from_slice(&spec.deps);
            keys.sort_unstable();
            keys.windows(2).any(|w| w[0] == w[1])
        };
        if repeated {
            return Err("a dependency is listed twice".into());
        }
        Ok(())
    }

    /// Records `dependent` as waiting on `dep`. Stale entries (finished or
    /// forgotten dependents) are swept when they outnumber live ones, so a
    /// long-lived input shared by many tasks over time keeps a short list.
    fn add_dependent(&mut self, dep: TaskIdx, dependent: super::task::TaskRef) {
        let d = &mut self.tasks[dep];
        d.waiters += 1;
        if d.dependents.len() >= 2 * d.waiters as usize + 8 {
            let mut list = std::mem::take(&mut d.dependents);
            list.retain(|&r| {
                self.tasks
                    .resolve(r)
                    .is_some_and(|t| !t.state.is_finished())
            });
            self.tasks[dep].dependents = list;
        }
        self.tasks[dep].dependents.push(dependent);
    }
}
