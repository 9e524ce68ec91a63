//! Seeded random event streams: a few tenants, clients and workers, a
//! small key pool so keys collide (scattered data and calls too), workers
//! and clients that mostly answer what they were asked and sometimes lie.
//! Every invariant is checked after every event, every action is checked
//! against the connected peers, every scatter is answered once (upload or
//! drop the bytes), and at the end, with every client gone, no task may
//! remain.

use super::*;
use wask_proto::hash::{FastMap, new_map};
use wask_proto::msg::{ScatterSpec, Stored};

/// xorshift64: enough randomness for a test, and no dependency.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize].clone()
    }

    fn percent(&mut self, p: u64) -> bool {
        self.below(100) < p
    }
}

const KEYS: u8 = 40;
const CLIENTS: u32 = 5;
const WORKERS: u32 = 4;
const TENANTS: u32 = 3;

/// What the test knows of the peers, to check the actions.
#[derive(Default)]
struct Peers {
    /// Connected clients and their tenants.
    clients: FastMap<ClientId, TenantId>,
    /// Connected workers.
    workers: Vec<WorkerId>,
    /// Computes sent and not reported: (worker, tenant, key).
    running: Vec<(WorkerId, TenantId, KeyId)>,
    /// Fetches not answered: (worker, req).
    fetches: Vec<(WorkerId, u64)>,
    /// Keys submitted, latest last.
    submitted: Vec<KeyId>,
    /// Uploads asked for and not sent: (client, key, nbytes).
    requested: Vec<(ClientId, KeyId, u64)>,
    /// Data given to workers and not reported: (worker, tenant, key).
    storing: Vec<(WorkerId, TenantId, KeyId)>,
    /// Scatters not yet answered with an upload request or a drop, by
    /// client and key.
    owed: FastMap<(ClientId, KeyId), u32>,
}

fn random_spec(rng: &mut XorShift, tenant: TenantId, peers: &Peers) -> TaskSpec {
    let ndeps = rng.pick(&[0, 0, 1, 1, 2, 3]);
    let mut deps: Vec<KeyId> = Vec::new();
    while deps.len() < ndeps {
        // Mostly keys submitted before (by anyone: other tenants' keys too).
        let d = match peers.submitted.len() {
            n if n > 0 && rng.percent(85) => {
                peers.submitted[n - 1 - rng.below(n.min(12) as u64) as usize]
            }
            _ => k(1 + rng.below(KEYS as u64) as u8),
        };
        if !deps.contains(&d) || rng.percent(3) {
            deps.push(d);
        }
    }
    // Module `t` belongs to tenant `t`.
    let module = if rng.percent(95) {
        tenant
    } else {
        1 + rng.below(TENANTS as u64 + 1) as u32
    };
    let mut s = spec(k(1 + rng.below(KEYS as u64) as u8), module, &deps);
    s.func = if rng.percent(3) {
        7
    } else {
        rng.below(2) as u32
    };
    s.pure = rng.percent(80);
    if rng.percent(3) {
        s.args.holes.push(Hole { at: 100, dep: 0 });
    }
    s
}

fn random_event(rng: &mut XorShift, peers: &mut Peers) -> Event {
    let client = 1 + rng.below(CLIENTS as u64) as u32;
    let tenant = peers.clients.get(&client).copied().unwrap_or(1);
    let worker = 1 + rng.below(WORKERS as u64) as u32;
    let keys = |rng: &mut XorShift| {
        (0..1 + rng.below(3))
            .map(|_| k(1 + rng.below(KEYS as u64) as u8))
            .collect()
    };
    match rng.below(114) {
        0..=1 => Event::ClientConnected {
            client,
            tenant: 1 + rng.below(TENANTS as u64) as u32,
        },
        2 => Event::ClientDisconnected { client },
        3 if rng.percent(20) => {
            // Module `t` is registered again: usually as it was, sometimes
            // with a task less or for another tenant.
            let module = 1 + rng.below(TENANTS as u64) as u32;
            let (tenant, task_names) = match rng.below(10) {
                0 => (module, names(&["inc"])),
                1 => (1 + rng.below(TENANTS as u64) as u32, names(&["inc", "add"])),
                _ => (module, names(&["inc", "add"])),
            };
            Event::ModuleRegistered {
                module,
                tenant,
                task_names,
            }
        }
        3..=32 => Event::Submit {
            client,
            tasks: (0..1 + rng.below(4))
                .map(|_| random_spec(rng, tenant, peers))
                .collect(),
        },
        33..=36 => Event::Hold {
            client,
            keys: keys(rng),
        },
        37..=41 => Event::Want {
            client,
            keys: keys(rng),
        },
        42..=50 => Event::Release {
            client,
            keys: keys(rng),
        },
        51..=54 => Event::Cancel {
            client,
            keys: keys(rng),
        },
        55..=57 => Event::WorkerJoined {
            worker,
            name: format!("w{worker}"),
            address: String::new(),
            nthreads: rng.pick(&[0, 1, 1, 2, 3]),
            memory_limit: 0,
        },
        58..=59 => Event::WorkerLeft { worker },
        60..=91 => {
            // Mostly a task the worker was sent; sometimes anything.
            let (worker, tenant, key) = if !peers.running.is_empty() && rng.percent(85) {
                let i = rng.below(peers.running.len() as u64) as usize;
                peers.running.swap_remove(i)
            } else {
                (
                    worker,
                    1 + rng.below(TENANTS as u64) as u32,
                    k(1 + rng.below(KEYS as u64) as u8),
                )
            };
            if rng.percent(88) {
                let value = rng.percent(50).then(|| Bytes::from_static(b"v"));
                let nbytes = rng.pick(&[0, 1, 1000, u64::MAX]);
                Event::Finished {
                    worker,
                    tasks: vec![Finished {
                        tenant,
                        key,
                        nbytes,
                        value,
                        duration_us: 0,
                    }],
                }
            } else {
                let error =
                    rng.pick(&[TaskError::StackOverflow, TaskError::Timeout { limit_ms: 1 }]);
                Event::Failed {
                    worker,
                    tasks: vec![Failed { tenant, key, error }],
                }
            }
        }
        100..=105 => Event::Scatter {
            client,
            data: (0..1 + rng.below(3))
                .map(|_| ScatterSpec {
                    key: k(1 + rng.below(KEYS as u64) as u8),
                    nbytes: if rng.percent(2) {
                        u64::MAX
                    } else {
                        rng.below(4)
                    },
                })
                .collect(),
        },
        106..=109 => {
            // Mostly an upload that was asked for; sometimes anything.
            let (client, key, nbytes) = if !peers.requested.is_empty() && rng.percent(85) {
                let i = rng.below(peers.requested.len() as u64) as usize;
                peers.requested.swap_remove(i)
            } else {
                (client, k(1 + rng.below(KEYS as u64) as u8), rng.below(4))
            };
            Event::DataReceived {
                client,
                key,
                value: Bytes::from(vec![7u8; nbytes as usize]),
            }
        }
        110..=113 => {
            let (worker, tenant, key) = if !peers.storing.is_empty() && rng.percent(85) {
                let i = rng.below(peers.storing.len() as u64) as usize;
                peers.storing.swap_remove(i)
            } else {
                (
                    worker,
                    1 + rng.below(TENANTS as u64) as u32,
                    k(1 + rng.below(KEYS as u64) as u8),
                )
            };
            let result = if rng.percent(90) {
                Ok(rng.pick(&[0, 3, u64::MAX]))
            } else {
                Err(TaskError::WorkerFull {
                    message: "full".into(),
                })
            };
            Event::Stored {
                worker,
                reports: vec![Stored {
                    tenant,
                    key,
                    result,
                }],
            }
        }
        _ => {
            let (worker, req) = if !peers.fetches.is_empty() && rng.percent(80) {
                let i = rng.below(peers.fetches.len() as u64) as usize;
                peers.fetches.swap_remove(i)
            } else {
                (worker, rng.below(50))
            };
            Event::Value {
                worker,
                req,
                value: rng.percent(70).then(|| Bytes::from_static(b"v")),
            }
        }
    }
}

/// How much of the state machine a run exercised.
#[derive(Default, Debug)]
struct Seen {
    computes: u64,
    done: u64,
    fetches: u64,
    cancelled: u64,
    lost: u64,
    dependency_failed: u64,
    queued_steps: u64,
    uploads_asked: u64,
    data_stored: u64,
    data_lost: u64,
}

impl Seen {
    fn add(&mut self, o: &Seen) {
        self.computes += o.computes;
        self.done += o.done;
        self.fetches += o.fetches;
        self.cancelled += o.cancelled;
        self.lost += o.lost;
        self.dependency_failed += o.dependency_failed;
        self.queued_steps += o.queued_steps;
        self.uploads_asked += o.uploads_asked;
        self.data_stored += o.data_stored;
        self.data_lost += o.data_lost;
    }
}

/// Counts one answer to a scatter of `key` by `client`; false if none was
/// owed.
fn answer(owed: &mut FastMap<(ClientId, KeyId), u32>, client: ClientId, key: KeyId) -> bool {
    match owed.get_mut(&(client, key)) {
        Some(n) if *n > 1 => {
            *n -= 1;
            true
        }
        Some(_) => owed.remove(&(client, key)).is_some(),
        None => false,
    }
}

fn run(seed: u64, steps: usize) -> Seen {
    let mut rng = XorShift(seed);
    let config = CoreConfig {
        saturation: 1 + (seed % 3) as u32,
        ..CoreConfig::default()
    };
    let mut sim = Sim::bare(config);
    let mut peers = Peers {
        clients: new_map(),
        owed: new_map(),
        ..Peers::default()
    };
    let mut seen = Seen::default();
    let mut setup = Vec::new();
    for t in 1..=TENANTS {
        setup.push(Event::ModuleRegistered {
            module: t,
            tenant: t,
            task_names: names(&["inc", "add"]),
        });
    }
    for client in 1..=CLIENTS {
        setup.push(Event::ClientConnected {
            client,
            tenant: 1 + client % TENANTS,
        });
    }
    for worker in 1..=2 {
        setup.push(Event::WorkerJoined {
            worker,
            name: String::new(),
            address: String::new(),
            nthreads: 1,
            memory_limit: 0,
        });
    }
    for _ in 0..steps {
        let event = match setup.pop() {
            Some(e) => e,
            None => random_event(&mut rng, &mut peers),
        };
        match &event {
            Event::ClientConnected { client, tenant } => {
                peers.clients.entry(*client).or_insert(*tenant);
            }
            Event::ClientDisconnected { client } => {
                peers.clients.remove(client);
                peers.owed.retain(|(c, _), _| c != client);
                peers.requested.retain(|r| r.0 != *client);
            }
            Event::Scatter { client, data } if peers.clients.contains_key(client) => {
                for d in data {
                    *peers.owed.entry((*client, d.key)).or_default() += 1;
                }
            }
            Event::WorkerJoined { worker, .. } if !peers.workers.contains(worker) => {
                peers.workers.push(*worker)
            }
            Event::Submit { tasks, .. } => peers.submitted.extend(tasks.iter().map(|t| t.key)),
            Event::WorkerLeft { worker } => {
                peers.workers.retain(|w| w != worker);
                peers.running.retain(|r| r.0 != *worker);
                peers.fetches.retain(|f| f.0 != *worker);
                peers.storing.retain(|f| f.0 != *worker);
            }
            _ => {}
        }
        let out = sim.step(event);
        if sim.core.tenants.any_queued() {
            seen.queued_steps += 1;
        }
        for action in out {
            match action {
                Action::Compute { worker, task } => {
                    seen.computes += 1;
                    assert!(
                        peers.workers.contains(&worker),
                        "Compute to unknown worker {worker}"
                    );
                    assert!(task.args.validate(task.deps.len()).is_ok());
                    peers.running.push((worker, task.tenant, task.key));
                }
                Action::Free { worker, .. } => {
                    assert!(peers.workers.contains(&worker), "Free to unknown worker")
                }
                Action::FetchValue { worker, req, .. } => {
                    seen.fetches += 1;
                    assert!(
                        peers.workers.contains(&worker),
                        "FetchValue to unknown worker"
                    );
                    peers.fetches.push((worker, req));
                }
                Action::RequestData {
                    client,
                    key,
                    nbytes,
                } => {
                    seen.uploads_asked += 1;
                    assert!(
                        answer(&mut peers.owed, client, key),
                        "seed {seed}: upload of {key:?} asked of client {client}, which owes none"
                    );
                    peers.requested.push((client, key, nbytes));
                }
                Action::DataNotNeeded { client, key } => {
                    assert!(
                        answer(&mut peers.owed, client, key),
                        "seed {seed}: client {client} told to drop {key:?} once too often"
                    );
                }
                Action::StoreData {
                    worker,
                    tenant,
                    key,
                    value,
                } => {
                    seen.data_stored += 1;
                    assert!(
                        peers.workers.contains(&worker),
                        "StoreData to unknown worker"
                    );
                    assert!(value.len() < 4);
                    peers.storing.push((worker, tenant, key));
                }
                Action::ClientErred { client, error, .. } => {
                    match error {
                        TaskError::Cancelled => seen.cancelled += 1,
                        TaskError::DataLost { .. } => seen.data_lost += 1,
                        TaskError::WorkerLost { .. } => seen.lost += 1,
                        TaskError::DependencyFailed { .. } => seen.dependency_failed += 1,
                        _ => {}
                    }
                    assert!(
                        peers.clients.contains_key(&client),
                        "message to unknown client {client}"
                    );
                }
                Action::ClientDone { client, .. } | Action::ClientValue { client, .. } => {
                    seen.done += 1;
                    assert!(
                        peers.clients.contains_key(&client),
                        "message to unknown client {client}"
                    );
                }
            }
        }
    }
    // A scatter not answered yet keeps its bytes for a reason: the key
    // still waits for them, with the client as a source.
    for (&(client, key), &n) in &peers.owed {
        let tenant = peers.clients[&client];
        let waiting = sim.core.index.get(&(tenant, key)).is_some_and(|&idx| {
            matches!(&sim.core.tasks[idx].state, crate::state::task::TaskState::AwaitingData { sources, .. } if sources.contains(client))
        });
        assert!(
            waiting && n == 1,
            "seed {seed}: client {client} keeps the bytes of {key:?} ({n} scatters) forever"
        );
    }
    // With every client gone, nothing may remain but copies being freed.
    for client in 1..=CLIENTS {
        sim.step(Event::ClientDisconnected { client });
    }
    for tenant in 0..=TENANTS {
        assert_eq!(
            sim.tasks(tenant),
            0,
            "seed {seed}: tenant {tenant} keeps tasks nobody holds"
        );
    }
    for w in sim.core.info(1).workers {
        assert_eq!(
            (w.held_keys, w.processing),
            (0, 0),
            "seed {seed}: worker {} keeps work",
            w.id
        );
    }
    seen
}

#[test]
fn random_events_keep_every_invariant() {
    let mut seen = Seen::default();
    for seed in [1, 2, 3, 0x5eed_cafe_f00d] {
        seen.add(&run(seed, 10_000));
    }
    // The streams must reach every part of the machine, not just refusals.
    let Seen {
        computes,
        done,
        fetches,
        cancelled,
        lost,
        dependency_failed,
        queued_steps,
        uploads_asked,
        data_stored,
        data_lost,
    } = seen;
    assert!(
        computes > 1000
            && done > 1000
            && fetches > 50
            && cancelled > 0
            && lost > 100
            && dependency_failed > 100
            && queued_steps > 100
            && uploads_asked > 100
            && data_stored > 50
            && data_lost > 10,
        "too little exercised: {seen:?}"
    );
}
