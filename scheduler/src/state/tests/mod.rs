//! Tests of the core: a harness that feeds events, collects actions and
//! checks every invariant after every step.
//!
//! One behaviour per test, asserting the exact actions:
//! - `lifecycle`: single tasks: running, deduplication, limits, queueing,
//!   release.
//! - `graphs`: dependencies: placement next to inputs, freeing inputs,
//!   failure and cancellation reaching dependents.
//! - `peers`: clients, workers and tenants: values, disconnects,
//!   departures, fair share, isolation, garbage.
//! - `scatter`: scattered data: the upload handshake, deduplication,
//!   tenants, sources that leave, storing, loss, refusals.
//!
//! And `random`: seeded random event streams, invariants after each event.

mod graphs;
mod lifecycle;
mod peers;
mod random;
mod scatter;

use super::{Action, Core, CoreConfig, Event};
use bytes::Bytes;
use std::sync::Arc;
use wask_proto::msg::{Done, Failed, Finished, TaskSpec};
use wask_proto::template::Hole;
use wask_proto::{
    ArgTemplate, ClientId, KeyId, ModuleId, TaskError, TaskLimits, TenantId, WorkerId,
};

/// Tenant A, its client and module (tasks `inc`, `add`).
const A: TenantId = 1;
const CA: ClientId = 1;
const MA: ModuleId = 1;
/// Tenant B, its client and module (tasks `inc`, `add`).
const B: TenantId = 2;
const CB: ClientId = 2;
const MB: ModuleId = 2;
/// A second client of tenant A.
const CA2: ClientId = 3;

/// A core under test.
struct Sim {
    core: Core,
    steps: usize,
}

impl Sim {
    /// Default config, tenants A and B with a client and a module each.
    fn new() -> Sim {
        let mut sim = Sim::bare(CoreConfig::default());
        for (client, tenant, module) in [(CA, A, MA), (CB, B, MB), (CA2, A, 0)] {
            sim.step(Event::ClientConnected { client, tenant });
            if module != 0 {
                sim.step(Event::ModuleRegistered {
                    module,
                    tenant,
                    task_names: names(&["inc", "add"]),
                });
            }
        }
        sim
    }

    /// No clients, workers or modules.
    fn bare(config: CoreConfig) -> Sim {
        Sim {
            core: Core::new(config),
            steps: 0,
        }
    }

    /// Applies an event; panics if an invariant breaks.
    fn step(&mut self, event: Event) -> Vec<Action> {
        let mut out = Vec::new();
        let described = format!("{event:?}");
        self.core.handle(event, &mut out);
        self.steps += 1;
        if let Err(e) = self.core.check_invariants() {
            panic!(
                "step {}: invariant broken after {described}: {e}\nactions: {out:#?}",
                self.steps
            );
        }
        out
    }

    fn worker(&mut self, worker: WorkerId, nthreads: u32) -> Vec<Action> {
        self.step(Event::WorkerJoined {
            worker,
            name: format!("w{worker}"),
            address: format!("10.0.0.{worker}:9000"),
            nthreads,
            memory_limit: 1 << 30,
        })
    }

    fn submit(&mut self, client: ClientId, tasks: Vec<TaskSpec>) -> Vec<Action> {
        self.step(Event::Submit { client, tasks })
    }

    fn finish(
        &mut self,
        worker: WorkerId,
        tenant: TenantId,
        key: KeyId,
        nbytes: u64,
        value: Option<&[u8]>,
    ) -> Vec<Action> {
        let value = value.map(Bytes::copy_from_slice);
        self.step(Event::Finished {
            worker,
            tasks: vec![Finished {
                tenant,
                key,
                nbytes,
                value,
                duration_us: 1,
            }],
        })
    }

    fn fail(
        &mut self,
        worker: WorkerId,
        tenant: TenantId,
        key: KeyId,
        error: TaskError,
    ) -> Vec<Action> {
        self.step(Event::Failed {
            worker,
            tasks: vec![Failed { tenant, key, error }],
        })
    }

    fn release(&mut self, client: ClientId, keys: &[KeyId]) -> Vec<Action> {
        self.step(Event::Release {
            client,
            keys: keys.to_vec(),
        })
    }

    fn tasks(&self, tenant: TenantId) -> u64 {
        self.core.info(tenant).tasks
    }
}

fn names(names: &[&str]) -> Arc<[String]> {
    names.iter().map(|s| s.to_string()).collect()
}

/// A key with all bytes `n`.
fn k(n: u8) -> KeyId {
    KeyId([n; 16])
}

/// A call of task 0 of `module` whose arguments are one literal byte
/// followed by the results of `deps`.
fn spec(key: KeyId, module: ModuleId, deps: &[KeyId]) -> TaskSpec {
    let holes = (0..deps.len() as u32)
        .map(|dep| Hole { at: 1, dep })
        .collect();
    TaskSpec {
        key,
        pure: true,
        module,
        func: 0,
        args: ArgTemplate {
            bytes: Bytes::from_static(&[7]),
            holes,
        },
        deps: deps.to_vec(),
        limits: TaskLimits::default(),
    }
}

/// `(worker, key)` of every `Compute`.
fn computes(actions: &[Action]) -> Vec<(WorkerId, KeyId)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Compute { worker, task } => Some((*worker, task.key)),
            _ => None,
        })
        .collect()
}

/// `(worker, key)` of every `Free`.
fn frees(actions: &[Action]) -> Vec<(WorkerId, KeyId)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Free { worker, key, .. } => Some((*worker, *key)),
            _ => None,
        })
        .collect()
}

/// `(client, key, error)` of every `ClientErred`.
fn errors(actions: &[Action]) -> Vec<(ClientId, KeyId, TaskError)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::ClientErred { client, key, error } => Some((*client, *key, error.clone())),
            _ => None,
        })
        .collect()
}

/// `(client, done)` of every `ClientDone`.
fn dones(actions: &[Action]) -> Vec<(ClientId, Done)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::ClientDone { client, done } => Some((*client, done.clone())),
            _ => None,
        })
        .collect()
}

/// The `req` of the only `FetchValue`, checking its worker and key.
fn fetch_req(actions: &[Action], worker: WorkerId, key: KeyId) -> u64 {
    let reqs: Vec<u64> = actions
        .iter()
        .filter_map(|a| match a {
            Action::FetchValue {
                worker: w,
                req,
                key: k,
                ..
            } if *w == worker && *k == key => Some(*req),
            _ => None,
        })
        .collect();
    assert_eq!(
        reqs.len(),
        1,
        "one FetchValue({worker}, {key:?}) in {actions:#?}"
    );
    reqs[0]
}

/// A key from a number, for tests with many tasks.
fn kn(i: u32) -> KeyId {
    let mut id = [0xee; 16];
    id[..4].copy_from_slice(&i.to_le_bytes());
    KeyId(id)
}

/// The rendered pure key of task `inc`.
fn inc(key: KeyId) -> String {
    format!("inc-{}", key.hex())
}
