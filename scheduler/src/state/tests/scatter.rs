//! Scattered data: the upload handshake, deduplication, tenants, sources
//! that leave, storing, loss and refusals.

use super::*;
use crate::state::TenantPolicy;
use wask_proto::limits::{MAX_PAYLOAD, ResolvedLimits};
use wask_proto::msg::{ScatterSpec, Stored};

impl Sim {
    fn scatter(&mut self, client: ClientId, keys: &[(KeyId, u64)]) -> Vec<Action> {
        let data = keys
            .iter()
            .map(|&(key, nbytes)| ScatterSpec { key, nbytes })
            .collect();
        self.step(Event::Scatter { client, data })
    }

    fn upload(&mut self, client: ClientId, key: KeyId, value: &'static [u8]) -> Vec<Action> {
        self.step(Event::DataReceived {
            client,
            key,
            value: Bytes::from_static(value),
        })
    }

    fn stored(
        &mut self,
        worker: WorkerId,
        tenant: TenantId,
        key: KeyId,
        result: Result<u64, TaskError>,
    ) -> Vec<Action> {
        self.step(Event::Stored {
            worker,
            reports: vec![Stored {
                tenant,
                key,
                result,
            }],
        })
    }

    /// Scatters `key` from `client`, uploads `value` and has `worker` store
    /// it; checks each step's actions.
    fn scatter_stored(
        &mut self,
        client: ClientId,
        tenant: TenantId,
        key: KeyId,
        value: &'static [u8],
        worker: WorkerId,
    ) {
        let nbytes = value.len() as u64;
        assert_eq!(
            self.scatter(client, &[(key, nbytes)]),
            [request(client, key, nbytes)]
        );
        assert_eq!(
            self.upload(client, key, value),
            [store(worker, tenant, key, value)]
        );
        assert_eq!(
            dones(&self.stored(worker, tenant, key, Ok(nbytes))),
            [(client, done(key, nbytes))]
        );
    }
}

fn request(client: ClientId, key: KeyId, nbytes: u64) -> Action {
    Action::RequestData {
        client,
        key,
        nbytes,
    }
}

fn not_needed(client: ClientId, key: KeyId) -> Action {
    Action::DataNotNeeded { client, key }
}

fn store(worker: WorkerId, tenant: TenantId, key: KeyId, value: &'static [u8]) -> Action {
    Action::StoreData {
        worker,
        tenant,
        key,
        value: Bytes::from_static(value),
    }
}

fn done(key: KeyId, nbytes: u64) -> Done {
    Done {
        key,
        nbytes,
        value: None,
    }
}

fn data(key: KeyId) -> String {
    format!("data-{}", key.hex())
}

fn lost(key: KeyId) -> TaskError {
    TaskError::DataLost { key: data(key) }
}

#[test]
fn scattered_data_is_asked_for_passed_to_a_worker_and_held() {
    let mut sim = Sim::new();
    sim.worker(1, 1);
    sim.worker(2, 1);
    // Worker 1 is busy: the data goes to the least occupied worker.
    sim.submit(CA, vec![spec(k(9), MA, &[])]);
    let x = k(1);
    assert_eq!(sim.scatter(CA, &[(x, 3)]), [request(CA, x, 3)]);
    assert_eq!(sim.core.render_key(A, x), data(x));
    assert_eq!(sim.upload(CA, x, b"abc"), [store(2, A, x, b"abc")]);
    assert_eq!(
        sim.stored(2, A, x, Ok(3)),
        [Action::ClientDone {
            client: CA,
            done: done(x, 3)
        }]
    );
    let info = sim.core.info(A);
    assert_eq!((info.tasks, info.data_uploads), (2, 1));
    assert_eq!(
        (info.workers[1].held_bytes, info.workers[1].held_keys),
        (3, 1)
    );
    // In memory, it is a value like any other.
    let out = sim.step(Event::Want {
        client: CA,
        keys: vec![x],
    });
    fetch_req(&out, 2, x);
    assert_eq!(
        sim.release(CA, &[x]),
        [Action::Free {
            worker: 2,
            tenant: A,
            key: x
        }]
    );
    assert_eq!(sim.core.info(A).workers[1].held_keys, 0);
}

#[test]
fn scattering_held_data_uploads_nothing_and_tenants_do_not_share() {
    let mut sim = Sim::new();
    sim.worker(1, 1);
    let x = k(1);
    sim.scatter_stored(CA, A, x, b"abc", 1);
    // Another client of the tenant: a holder, told at once, no upload.
    assert_eq!(
        sim.scatter(CA2, &[(x, 3)]),
        [
            Action::ClientDone {
                client: CA2,
                done: done(x, 3)
            },
            not_needed(CA2, x)
        ]
    );
    // Another tenant with the same bytes: its own key, uploaded, as if
    // nobody had them.
    assert_eq!(sim.scatter(CB, &[(x, 3)]), [request(CB, x, 3)]);
    assert_eq!(sim.upload(CB, x, b"abc"), [store(1, B, x, b"abc")]);
    assert_eq!(sim.core.info(A).data_uploads, 1);
    assert_eq!(sim.core.info(B).data_uploads, 1);
    // A's bytes cannot satisfy B's key and the other way round: an upload
    // from A for a key A holds in memory is dropped.
    assert!(sim.upload(CA, x, b"abc").is_empty());
    sim.stored(1, B, x, Ok(3));
    assert_eq!(sim.core.info(A).workers[0].held_keys, 2);
    // Releasing A's copy keeps B's.
    sim.release(CA, &[x]);
    assert_eq!(
        sim.release(CA2, &[x]),
        [Action::Free {
            worker: 1,
            tenant: A,
            key: x
        }]
    );
    assert_eq!((sim.tasks(A), sim.tasks(B)), (0, 1));
}

#[test]
fn a_second_source_is_asked_when_the_uploader_leaves() {
    let mut sim = Sim::new();
    sim.worker(1, 1);
    let x = k(1);
    assert_eq!(sim.scatter(CA, &[(x, 3)]), [request(CA, x, 3)]);
    // Same bytes while they are awaited: kept as a source, not told yet.
    assert!(sim.scatter(CA2, &[(x, 3)]).is_empty());
    // The uploader leaves without uploading: the source is asked.
    assert_eq!(
        sim.step(Event::ClientDisconnected { client: CA }),
        [request(CA2, x, 3)]
    );
    assert_eq!(sim.upload(CA2, x, b"abc"), [store(1, A, x, b"abc")]);
    // And when the last one leaves too, the data is lost for whoever
    // depends on it.
    let y = k(2);
    sim.scatter(CA2, &[(y, 1)]);
    sim.step(Event::ClientConnected {
        client: CA,
        tenant: A,
    });
    sim.step(Event::Hold {
        client: CA,
        keys: vec![y],
    });
    let out = sim.step(Event::ClientDisconnected { client: CA2 });
    assert_eq!(errors(&out), [(CA, y, lost(y))]);
}

#[test]
fn every_scatter_is_answered_once_even_when_released_first() {
    let mut sim = Sim::new();
    sim.worker(1, 1);
    let x = k(1);
    sim.scatter(CA, &[(x, 3)]);
    sim.scatter(CA2, &[(x, 3)]);
    // Both release before any upload: CA was asked already, CA2 may drop
    // its bytes.
    assert!(sim.release(CA, &[x]).is_empty());
    assert_eq!(sim.release(CA2, &[x]), [not_needed(CA2, x)]);
    assert_eq!(sim.tasks(A), 0);
    // The upload in flight finds nothing waiting: dropped.
    assert!(sim.upload(CA, x, b"abc").is_empty());
    // The uploader scatters again while its upload is on its way: it may
    // drop the new copy. So may a source scattering again: each scatter
    // gets one answer.
    sim.scatter(CA, &[(x, 3)]);
    assert_eq!(sim.scatter(CA, &[(x, 3)]), [not_needed(CA, x)]);
    assert!(sim.scatter(CA2, &[(x, 3)]).is_empty());
    assert_eq!(sim.scatter(CA2, &[(x, 3)]), [not_needed(CA2, x)]);
    // The same key twice in one message: asked, then told to drop.
    let y = k(2);
    assert_eq!(
        sim.scatter(CA, &[(y, 1), (y, 1)]),
        [request(CA, y, 1), not_needed(CA, y)]
    );
}

#[test]
fn a_task_waits_for_scattered_data_whose_future_was_dropped() {
    let mut sim = Sim::new();
    sim.worker(1, 1);
    sim.worker(2, 1);
    let (x, y) = (k(1), k(2));
    // `submit(f, (&client.scatter(&v)?,))`: the data's future is dropped
    // right after the submit, before the bytes are even asked for.
    sim.scatter(CA, &[(x, 3)]);
    assert!(sim.submit(CA, vec![spec(y, MA, &[x])]).is_empty());
    assert!(sim.release(CA, &[x]).is_empty());
    sim.submit(CA, vec![spec(k(9), MA, &[])]); // worker 1 busy
    assert_eq!(sim.upload(CA, x, b"abc"), [store(2, A, x, b"abc")]);
    // Stored: the task runs where its input is.
    let out = sim.stored(2, A, x, Ok(3));
    assert_eq!(computes(&out), [(2, y)]);
    assert!(dones(&out).is_empty(), "nobody holds the data");
    // Once the task is done, the data is freed.
    assert_eq!(frees(&sim.finish(2, A, y, 1, None)), [(2, x)]);
}

#[test]
fn data_waits_for_a_worker_before_it_is_asked_for() {
    let mut sim = Sim::new();
    let x = k(1);
    assert!(sim.scatter(CA, &[(x, 3)]).is_empty());
    assert!(sim.scatter(CA2, &[(x, 3)]).is_empty());
    assert_eq!(sim.worker(1, 1), [request(CA, x, 3)]);
    // Every worker leaves while the bytes travel: the next source is asked
    // once a worker is back.
    sim.step(Event::WorkerLeft { worker: 1 });
    assert!(sim.upload(CA, x, b"abc").is_empty());
    assert_eq!(sim.worker(2, 1), [request(CA2, x, 3)]);
    assert_eq!(sim.upload(CA2, x, b"abc"), [store(2, A, x, b"abc")]);
    // Without a source left, the data is lost.
    let y = k(2);
    sim.step(Event::WorkerLeft { worker: 2 });
    sim.scatter(CA, &[(y, 1)]);
    sim.worker(3, 1);
    let out = sim.step(Event::WorkerLeft { worker: 3 });
    assert!(errors(&out).is_empty(), "the uploader may still send");
    assert_eq!(errors(&sim.upload(CA, y, b"z")), [(CA, y, lost(y))]);
}

#[test]
fn a_lost_worker_loses_its_data_and_fails_the_dependents() {
    let mut sim = Sim::new();
    sim.worker(1, 1);
    sim.worker(2, 1);
    let (x, y, z) = (k(1), k(2), k(3));
    sim.scatter_stored(CA, A, x, b"abc", 1);
    // y runs next to x; z waits for y.
    assert_eq!(computes(&sim.submit(CA, vec![spec(y, MA, &[x])])), [(1, y)]);
    sim.submit(CA, vec![spec(z, MA, &[y])]);
    let out = sim.step(Event::WorkerLeft { worker: 1 });
    let cause = lost(x);
    let dependents = cause.for_dependents(|| data(x));
    assert_eq!(
        errors(&out),
        [
            (CA, x, cause.clone()),
            (CA, y, dependents.clone()),
            (CA, z, dependents.clone())
        ]
    );
    assert_eq!(
        dependents.to_string(),
        format!(
            "dependency {} failed: scattered data {} was lost: its only copy left the cluster",
            data(x),
            data(x)
        )
    );
    assert!(computes(&out).is_empty(), "nothing reruns a lost input");
    // A task submitted on the lost data fails at once.
    let w = k(4);
    assert_eq!(
        errors(&sim.submit(CA, vec![spec(w, MA, &[x])])),
        [(CA, w, dependents)]
    );
}

#[test]
fn data_lost_on_its_way_to_a_worker() {
    let mut sim = Sim::new();
    sim.worker(1, 1);
    let x = k(1);
    sim.scatter(CA, &[(x, 3)]);
    sim.upload(CA, x, b"abc");
    let out = sim.step(Event::WorkerLeft { worker: 1 });
    assert_eq!(errors(&out), [(CA, x, lost(x))]);
    // A late report from another worker is freed.
    sim.worker(2, 1);
    assert_eq!(frees(&sim.stored(2, A, x, Ok(3))), [(2, x)]);
}

#[test]
fn a_full_worker_refuses_data() {
    let mut sim = Sim::new();
    sim.worker(1, 1);
    let (x, y) = (k(1), k(2));
    sim.scatter(CA, &[(x, 3)]);
    sim.submit(CA, vec![spec(y, MA, &[x])]);
    sim.upload(CA, x, b"abc");
    let full = TaskError::WorkerFull {
        message: "no room".into(),
    };
    let out = sim.stored(1, A, x, Err(full.clone()));
    assert_eq!(
        errors(&out),
        [
            (CA, x, full.clone()),
            (CA, y, full.for_dependents(|| data(x)))
        ]
    );
}

/// Client `CA` of tenant `A`, whose results and data may take 10 bytes,
/// and one worker of one thread.
fn ten_byte_quota() -> Sim {
    let policy = TenantPolicy {
        max_bytes: 10,
        ..TenantPolicy::unlimited(ResolvedLimits::default(), ResolvedLimits::CLUSTER_MAX)
    };
    let mut sim = Sim::bare(CoreConfig {
        tenants: vec![(A, policy)],
        ..CoreConfig::default()
    });
    sim.step(Event::ClientConnected {
        client: CA,
        tenant: A,
    });
    sim.worker(1, 1);
    sim
}

#[test]
fn too_large_and_over_quota_data_are_refused_before_any_upload() {
    let mut sim = ten_byte_quota();
    let huge = MAX_PAYLOAD as u64 + 1;
    let (x, y, z) = (k(1), k(2), k(3));
    assert_eq!(
        sim.scatter(CA, &[(x, huge)]),
        [
            Action::ClientErred {
                client: CA,
                key: x,
                error: TaskError::DataTooLarge {
                    size: huge,
                    max: MAX_PAYLOAD as u64
                }
            },
            not_needed(CA, x)
        ]
    );
    sim.scatter_stored(CA, A, y, b"12345678", 1);
    let out = sim.scatter(CA, &[(z, 3)]);
    assert!(
        matches!(&errors(&out)[..], [(CA, _, TaskError::Quota { message })] if message.contains("quota is 10")),
        "{out:?}"
    );
    assert_eq!(out[1], not_needed(CA, z));
    assert_eq!(sim.tasks(A), 1);
}

#[test]
fn cancelled_data_tells_its_sources_and_frees_the_worker() {
    let mut sim = Sim::new();
    sim.worker(1, 1);
    let (x, y) = (k(1), k(2));
    sim.scatter(CA, &[(x, 3)]);
    sim.scatter(CA2, &[(x, 3)]);
    sim.release(CA2, &[x]);
    let out = sim.step(Event::Cancel {
        client: CA,
        keys: vec![x],
    });
    assert_eq!(
        out,
        [
            Action::ClientErred {
                client: CA,
                key: x,
                error: TaskError::Cancelled
            },
            not_needed(CA2, x)
        ]
    );
    // Cancelled while the worker stores it: freed there.
    sim.scatter(CA, &[(y, 1)]);
    sim.upload(CA, y, b"z");
    let out = sim.step(Event::Cancel {
        client: CA,
        keys: vec![y],
    });
    assert_eq!(frees(&out), [(1, y)]);
    assert_eq!(frees(&sim.stored(1, A, y, Ok(1))), [(1, y)]);
}

#[test]
fn garbage_about_data_is_ignored() {
    let mut sim = Sim::new();
    sim.worker(1, 1);
    let (x, y) = (k(1), k(2));
    // Unknown clients, workers and keys.
    assert!(sim.scatter(99, &[(x, 1)]).is_empty());
    assert!(sim.upload(99, x, b"a").is_empty());
    assert!(sim.upload(CA, x, b"a").is_empty());
    assert!(sim.stored(99, A, x, Ok(1)).is_empty());
    assert_eq!(frees(&sim.stored(1, A, x, Ok(1))), [(1, x)]);
    assert!(
        sim.stored(1, A, x, Err(TaskError::StackOverflow))
            .is_empty()
    );
    // The wrong size is not the data.
    sim.scatter(CA, &[(x, 3)]);
    assert!(sim.upload(CA, x, b"ab").is_empty());
    // A stored report for a call, or from a worker not storing the data.
    sim.submit(CA, vec![spec(y, MA, &[])]);
    assert!(sim.stored(1, A, y, Ok(1)).is_empty(), "running there");
    sim.worker(2, 1);
    assert_eq!(frees(&sim.stored(2, A, y, Ok(1))), [(2, y)]);
    assert_eq!(sim.upload(CA, x, b"abc"), [store(2, A, x, b"abc")]);
    assert_eq!(frees(&sim.stored(1, A, x, Ok(3))), [(1, x)]);
    // A call on the key of data (impossible with honest hashes) just holds.
    let out = sim.submit(CA2, vec![spec(x, MA, &[])]);
    assert!(computes(&out).is_empty());
    assert_eq!(sim.core.render_key(A, x), data(x));
}

#[test]
fn data_spreads_over_idle_workers_by_bytes_held_and_on_their_way() {
    let mut sim = Sim::new();
    sim.worker(1, 1);
    sim.worker(2, 1);
    let (x, y, z) = (k(1), k(2), k(3));
    sim.scatter(CA, &[(x, 3), (y, 1), (z, 1)]);
    assert_eq!(sim.upload(CA, x, b"abc"), [store(1, A, x, b"abc")]);
    // x is on its way to worker 1: y goes to worker 2.
    assert_eq!(sim.upload(CA, y, b"y"), [store(2, A, y, b"y")]);
    sim.stored(1, A, x, Ok(3));
    sim.stored(2, A, y, Ok(1));
    // Worker 2 holds 1 byte, worker 1 holds 3.
    assert_eq!(sim.upload(CA, z, b"z"), [store(2, A, z, b"z")]);
}

#[test]
fn announced_data_counts_against_the_bytes_quota() {
    let mut sim = ten_byte_quota();
    let (x, y, z) = (k(1), k(2), k(3));
    let quota = |out: &[Action]| matches!(&errors(out)[..], [(CA, _, TaskError::Quota { message })] if message.contains("6 scattered and not stored yet"));
    // Announced, not uploaded: 6 of the 10 bytes are taken.
    assert_eq!(sim.scatter(CA, &[(x, 6)]), [request(CA, x, 6)]);
    let out = sim.scatter(CA, &[(y, 6)]);
    assert!(quota(&out), "{out:?}");
    // On its way to the worker: still taken.
    sim.upload(CA, x, b"123456");
    let out = sim.scatter(CA, &[(y, 6)]);
    assert!(quota(&out), "{out:?}");
    // Freed when the key is: released while stored.
    sim.release(CA, &[x]);
    assert_eq!(sim.scatter(CA, &[(y, 6)]), [request(CA, y, 6)]);
    // Released while awaited: freed too.
    sim.release(CA, &[y]);
    assert_eq!(sim.scatter(CA, &[(z, 10)]), [request(CA, z, 10)]);
}

#[test]
fn a_stored_report_not_asked_of_that_worker_is_freed() {
    let mut sim = Sim::new();
    sim.worker(1, 1);
    let x = k(1);
    sim.scatter_stored(CA, A, x, b"abc", 1);
    // A stale report from another worker (it was given x before a cancel
    // or a loss): not a copy the scheduler knows of.
    sim.worker(2, 1);
    assert_eq!(frees(&sim.stored(2, A, x, Ok(3))), [(2, x)]);
    assert_eq!(sim.core.info(A).workers[1].held_keys, 0);
    // The same report again from the holder changes nothing.
    assert!(sim.stored(1, A, x, Ok(3)).is_empty());
    assert_eq!(sim.core.info(A).workers[0].held_keys, 1);
}

#[test]
fn lost_data_scattered_again_is_uploaded_again() {
    let mut sim = Sim::new();
    sim.worker(1, 1);
    let x = k(1);
    sim.scatter_stored(CA, A, x, b"abc", 1);
    sim.scatter(CA2, &[(x, 3)]);
    sim.worker(2, 1);
    let out = sim.step(Event::WorkerLeft { worker: 1 });
    assert_eq!(errors(&out), [(CA, x, lost(x)), (CA2, x, lost(x))]);
    // CA releases its future and scatters the bytes again, while CA2 still
    // holds the erred key: the bytes are asked for again.
    sim.release(CA, &[x]);
    assert_eq!(sim.scatter(CA, &[(x, 3)]), [request(CA, x, 3)]);
    assert_eq!(sim.upload(CA, x, b"abc"), [store(2, A, x, b"abc")]);
    assert_eq!(
        dones(&sim.stored(2, A, x, Ok(3))),
        [(CA2, done(x, 3)), (CA, done(x, 3))]
    );
    assert_eq!(sim.core.info(A).data_uploads, 2);
}

#[test]
fn data_released_while_no_worker_is_up_leaves_no_trace() {
    let mut sim = Sim::new();
    for i in 0..100 {
        let x = kn(i);
        assert!(sim.scatter(CA, &[(x, 1)]).is_empty());
        sim.release(CA, &[x]);
    }
    assert!(sim.core.awaiting_worker.is_empty());
    assert!(sim.worker(1, 1).is_empty());
}

#[test]
fn data_waiting_for_a_worker_is_lost_when_its_last_source_leaves() {
    let mut sim = Sim::new();
    let x = k(1);
    sim.scatter(CA, &[(x, 3)]);
    sim.step(Event::Hold {
        client: CA2,
        keys: vec![x],
    });
    let out = sim.step(Event::ClientDisconnected { client: CA });
    assert_eq!(errors(&out), [(CA2, x, lost(x))]);
    assert!(sim.worker(1, 1).is_empty());
}
