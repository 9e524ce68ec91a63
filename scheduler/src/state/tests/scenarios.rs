//! One behaviour per test, asserting the exact actions.

use super::*;
use wask_proto::limits::ResolvedLimits;
use wask_proto::msg::{ClusterInfo, ComputeTask, DepLocation, WorkerInfo};

/// A key from a number, for tests with many tasks.
fn kn(i: u32) -> KeyId {
    let mut id = [0xee; 16];
    id[..4].copy_from_slice(&i.to_le_bytes());
    KeyId(id)
}

#[test]
fn one_task_runs_and_its_holder_gets_the_value() {
    let mut sim = Sim::new();
    sim.worker(1, 1);
    let mut s = spec(k(1), MA, &[]);
    s.limits.time_ms = Some(5);
    let out = sim.submit(CA, vec![s.clone()]);
    let limits = ResolvedLimits { time_ms: 5, ..ResolvedLimits::default() };
    let task = ComputeTask { tenant: A, key: k(1), module: MA, func: 0, args: s.args, deps: vec![], limits };
    assert_eq!(out, vec![Action::Compute { worker: 1, task }]);

    let out = sim.finish(1, A, k(1), 3, Some(b"abc"));
    let done = Done { key: k(1), nbytes: 3, value: Some(Bytes::from_static(b"abc")) };
    assert_eq!(out, vec![Action::ClientDone { client: CA, done }]);
    let worker = WorkerInfo {
        id: 1,
        name: "w1".into(),
        address: "10.0.0.1:9000".into(),
        nthreads: 1,
        held_bytes: 3,
        held_keys: 1,
        processing: 0,
        executed: 1,
    };
    assert_eq!(sim.core.info(A), ClusterInfo { workers: vec![worker], tasks: 1 });
    assert_eq!(sim.tasks(B), 0);
    assert_eq!(sim.core.render_key(A, k(1)), inc(k(1)));
    assert_eq!(sim.core.render_key(B, k(1)), k(1).hex());

    assert_eq!(sim.release(CA, &[k(1)]), vec![Action::Free { worker: 1, tenant: A, key: k(1) }]);
    assert_eq!(sim.tasks(A), 0);
    assert_eq!(sim.core.info(A).workers[0].held_keys, 0);
}

#[test]
fn limits_take_defaults_and_are_capped() {
    let defaults = ResolvedLimits { time_ms: 10, memory_bytes: 20, result_bytes: 30, output_bytes: 40 };
    let max_limits = ResolvedLimits { time_ms: 100, memory_bytes: 200, result_bytes: 300, output_bytes: 400 };
    let mut sim = Sim::bare(CoreConfig { saturation: 1, defaults, max_limits });
    sim.step(Event::ClientConnected { client: CA, tenant: A });
    sim.step(Event::ModuleRegistered { module: MA, tenant: A, task_names: names(&["inc"]) });
    sim.worker(1, 1);
    let mut s = spec(k(1), MA, &[]);
    s.limits = TaskLimits { time_ms: Some(1000), memory_bytes: Some(50), result_bytes: None, output_bytes: None };
    match &sim.submit(CA, vec![s])[..] {
        [Action::Compute { task, .. }] => assert_eq!(
            task.limits,
            ResolvedLimits { time_ms: 100, memory_bytes: 50, result_bytes: 30, output_bytes: 40 }
        ),
        other => panic!("expected one Compute, got {other:?}"),
    }
}

#[test]
fn impure_keys_render_as_uuids() {
    let mut sim = Sim::new();
    let mut s = spec(KeyId::random(), MA, &[]);
    s.pure = false;
    s.func = 1;
    sim.submit(CA, vec![s.clone()]);
    let rendered = sim.core.render_key(A, s.key);
    assert_eq!(rendered, wask_proto::key::render_key("add", s.key, false));
    assert!(rendered.starts_with("add-") && rendered.matches('-').count() == 5, "{rendered}");
}

#[test]
fn same_key_is_computed_once() {
    let mut sim = Sim::new();
    sim.worker(1, 1);
    let out = sim.submit(CA, vec![spec(k(1), MA, &[]), spec(k(1), MA, &[])]);
    assert_eq!(computes(&out), [(1, k(1))]);
    assert!(sim.submit(CA2, vec![spec(k(1), MA, &[])]).is_empty());

    let out = sim.finish(1, A, k(1), 2, None);
    let done = Done { key: k(1), nbytes: 2, value: None };
    assert_eq!(dones(&out), [(CA, done.clone()), (CA2, done.clone())]);
    assert_eq!(out.len(), 2);

    // Submitting a key in memory answers at once and recomputes nothing.
    assert_eq!(sim.submit(CA, vec![spec(k(1), MA, &[])]), vec![Action::ClientDone { client: CA, done }]);
    assert!(sim.release(CA, &[k(1)]).is_empty());
    assert_eq!(frees(&sim.release(CA2, &[k(1)])), [(1, k(1))]);
}

#[test]
fn resubmitting_a_failed_key_reports_its_error() {
    let mut sim = Sim::new();
    sim.worker(1, 1);
    sim.submit(CA, vec![spec(k(1), MA, &[])]);
    let boom = TaskError::Panic { message: "boom".into() };
    assert_eq!(errors(&sim.fail(1, A, k(1), boom.clone())), [(CA, k(1), boom.clone())]);
    let out = sim.submit(CA2, vec![spec(k(1), MA, &[])]);
    assert_eq!(out, vec![Action::ClientErred { client: CA2, key: k(1), error: boom }]);
    assert_eq!(sim.core.info(A).workers[0].executed, 1);
}

#[test]
fn chain_runs_where_its_input_is_and_frees_inputs_when_done() {
    let mut sim = Sim::new();
    sim.worker(1, 1);
    sim.worker(2, 1);
    let (a, b, c, y, z) = (k(1), k(2), k(3), k(4), k(5));
    assert_eq!(computes(&sim.submit(CA, vec![spec(a, MA, &[])])), [(1, a)]);
    assert_eq!(computes(&sim.submit(CA, vec![spec(z, MA, &[])])), [(2, z)]);
    sim.finish(1, A, a, 100, None);
    assert_eq!(computes(&sim.submit(CA, vec![spec(y, MA, &[])])), [(1, y)]);
    sim.finish(2, A, z, 1, None);

    // Worker 1 is busier (it runs y) but holds b's 100 input bytes.
    let out = sim.submit(CA, vec![spec(b, MA, &[a]), spec(c, MA, &[b])]);
    match &out[..] {
        [Action::Compute { worker: 1, task }] => {
            assert_eq!(task.key, b);
            assert_eq!(task.deps, vec![DepLocation { key: a, who_has: vec![1] }]);
        }
        other => panic!("expected b on worker 1, got {other:?}"),
    }
    // Released inputs stay while a dependent still needs them.
    assert!(sim.release(CA, &[a, b]).is_empty());
    assert_eq!(sim.tasks(A), 5);

    let out = sim.finish(1, A, b, 10, None);
    assert_eq!(computes(&out), [(1, c)]);
    assert_eq!(frees(&out), [(1, a)]);
    assert!(dones(&out).is_empty(), "nobody holds b");

    let out = sim.finish(1, A, c, 1, None);
    assert_eq!(frees(&out), [(1, b)]);
    assert_eq!(dones(&out).len(), 1);
    assert_eq!(sim.tasks(A), 3); // c, y, z
}

#[test]
fn diamond_runs_next_to_the_most_input_bytes() {
    let mut sim = Sim::new();
    sim.worker(1, 1);
    sim.worker(2, 1);
    let (a, b, c, d, e) = (k(1), k(2), k(3), k(4), k(5));
    sim.submit(CA, vec![spec(a, MA, &[])]);
    sim.finish(1, A, a, 1000, None);
    // Worker 1 holds a but has two slots: the third dependent goes to 2.
    let out = sim.submit(CA, vec![spec(b, MA, &[a]), spec(c, MA, &[a]), spec(e, MA, &[a])]);
    assert_eq!(computes(&out), [(1, b), (1, c), (2, e)]);
    sim.finish(1, A, b, 10, None);
    sim.finish(2, A, e, 500, None);

    match &sim.submit(CA, vec![spec(d, MA, &[b, e])])[..] {
        [Action::Compute { worker: 2, task }] => assert_eq!(
            task.deps,
            vec![DepLocation { key: b, who_has: vec![1] }, DepLocation { key: e, who_has: vec![2] }]
        ),
        other => panic!("expected d on worker 2, got {other:?}"),
    }
    assert!(sim.release(CA, &[a]).is_empty(), "c still needs a");
    assert_eq!(frees(&sim.finish(1, A, c, 1, None)), [(1, a)]);
}

#[test]
fn tasks_beyond_the_slots_wait_and_drain_in_order() {
    let mut sim = Sim::new();
    sim.worker(1, 1); // 1 thread × saturation 2
    let keys: Vec<KeyId> = (1..=5).map(k).collect();
    let out = sim.submit(CA, keys.iter().map(|&key| spec(key, MA, &[])).collect());
    assert_eq!(computes(&out), [(1, keys[0]), (1, keys[1])]);
    assert_eq!(sim.core.info(A).workers[0].processing, 2);
    assert_eq!(computes(&sim.finish(1, A, keys[0], 1, None)), [(1, keys[2])]);
    assert_eq!(computes(&sim.finish(1, A, keys[1], 1, None)), [(1, keys[3])]);
    // A new worker takes queued work at once.
    assert_eq!(computes(&sim.worker(2, 4)), [(2, keys[4])]);
    for (w, key) in [(1, keys[2]), (1, keys[3]), (2, keys[4])] {
        assert!(computes(&sim.finish(w, A, key, 1, None)).is_empty());
    }
    assert_eq!(sim.tasks(A), 5);
}

#[test]
fn released_queued_task_never_runs() {
    let mut sim = Sim::new();
    sim.worker(1, 1);
    sim.submit(CA, (1..=3).map(|i| spec(k(i), MA, &[])).collect());
    assert!(sim.release(CA, &[k(3)]).is_empty());
    assert_eq!(sim.tasks(A), 2);
    assert!(computes(&sim.finish(1, A, k(1), 1, None)).is_empty());
}

#[test]
fn released_running_task_is_forgotten_and_its_result_freed() {
    let mut sim = Sim::new();
    sim.worker(1, 1);
    sim.submit(CA, (1..=3).map(|i| spec(k(i), MA, &[])).collect());
    // Its slot goes to the queued task.
    assert_eq!(computes(&sim.release(CA, &[k(1)])), [(1, k(3))]);
    assert_eq!(sim.tasks(A), 2);
    let out = sim.finish(1, A, k(1), 1, Some(b"x"));
    assert_eq!(out, vec![Action::Free { worker: 1, tenant: A, key: k(1) }]);
    assert_eq!(sim.core.info(A).workers[0].executed, 1);
}

#[test]
fn released_waiting_task_releases_its_inputs() {
    let mut sim = Sim::new();
    sim.worker(1, 1);
    sim.submit(CA, vec![spec(k(1), MA, &[]), spec(k(2), MA, &[k(1)])]);
    assert!(sim.release(CA, &[k(1)]).is_empty(), "k2 waits for k1");
    assert!(sim.release(CA, &[k(2)]).is_empty());
    assert_eq!(sim.tasks(A), 0);
    assert_eq!(frees(&sim.finish(1, A, k(1), 1, None)), [(1, k(1))]);
}

#[test]
fn failure_reaches_every_transitive_dependent_naming_the_root() {
    let mut sim = Sim::new();
    sim.worker(1, 1);
    let (a, b, c, d, e) = (k(1), k(2), k(3), k(4), k(5));
    sim.submit(CA, vec![spec(a, MA, &[]), spec(b, MA, &[a]), spec(c, MA, &[b])]);
    sim.submit(CA2, vec![spec(d, MA, &[b])]);
    sim.step(Event::Hold { client: CA2, keys: vec![c] });

    let boom = TaskError::Panic { message: "boom".into() };
    let mut got = errors(&sim.fail(1, A, a, boom.clone()));
    got.sort_by_key(|(client, key, _)| (*key, *client));
    let dep = TaskError::DependencyFailed { key: inc(a), cause: Box::new(boom.clone()) };
    assert_eq!(
        got,
        [(CA, a, boom), (CA, b, dep.clone()), (CA, c, dep.clone()), (CA2, c, dep.clone()), (CA2, d, dep.clone())]
    );
    assert_eq!(dep.to_string(), format!("dependency {} failed: task panicked: boom", inc(a)));

    // A new dependent of a failed task fails at once, with the same root.
    assert_eq!(errors(&sim.submit(CA, vec![spec(e, MA, &[c])])), [(CA, e, dep)]);
    // The slot is free again.
    assert_eq!(computes(&sim.submit(CA, vec![spec(k(6), MA, &[])])), [(1, k(6))]);
    sim.release(CA, &[a, b, c, e, k(6)]);
    sim.release(CA2, &[c, d]);
    assert_eq!(sim.tasks(A), 0);
}

#[test]
fn unknown_dependency_errs_the_task() {
    let mut sim = Sim::new();
    sim.worker(1, 1);
    let out = sim.submit(CA, vec![spec(k(2), MA, &[k(9)])]);
    assert_eq!(out, vec![Action::ClientErred { client: CA, key: k(2), error: TaskError::UnknownKey { key: k(9).hex() } }]);
    assert_eq!(sim.tasks(A), 1);
    assert!(sim.release(CA, &[k(2)]).is_empty());
    assert_eq!(sim.tasks(A), 0);
}

#[test]
fn tenants_cannot_see_each_others_keys() {
    let mut sim = Sim::new();
    sim.worker(1, 1);
    let (x, y, z, never) = (k(1), k(2), k(3), k(99));
    sim.submit(CA, vec![spec(x, MA, &[])]);
    sim.finish(1, A, x, 4, None);

    // Depending on A's key looks exactly like depending on a missing key.
    let unknown = |key: KeyId| TaskError::UnknownKey { key: key.hex() };
    assert_eq!(errors(&sim.submit(CB, vec![spec(y, MB, &[x])])), [(CB, y, unknown(x))]);
    assert_eq!(errors(&sim.submit(CB, vec![spec(z, MB, &[never])])), [(CB, z, unknown(never))]);
    assert_eq!(errors(&sim.step(Event::Hold { client: CB, keys: vec![x] })), [(CB, x, unknown(x))]);
    assert_eq!(errors(&sim.step(Event::Want { client: CB, keys: vec![x] })), [(CB, x, unknown(x))]);
    assert!(sim.step(Event::Cancel { client: CB, keys: vec![x] }).is_empty());
    assert!(sim.release(CB, &[x]).is_empty());
    // So does A's module.
    let rejected = |m: ModuleId| TaskError::ModuleRejected { reason: format!("unknown module {m}") };
    assert_eq!(errors(&sim.submit(CB, vec![spec(k(7), MA, &[])])), [(CB, k(7), rejected(MA))]);
    assert_eq!(errors(&sim.submit(CB, vec![spec(k(7), 77, &[])])), [(CB, k(7), rejected(77))]);

    // B's identical key is a separate task.
    match &sim.submit(CB, vec![spec(x, MB, &[])])[..] {
        [Action::Compute { worker: 1, task }] => assert_eq!((task.tenant, task.key), (B, x)),
        other => panic!("expected B's own x to run, got {other:?}"),
    }
    assert_eq!(dones(&sim.finish(1, B, x, 8, None)), [(CB, Done { key: x, nbytes: 8, value: None })]);
    assert_eq!(sim.release(CB, &[x]), vec![Action::Free { worker: 1, tenant: B, key: x }]);
    assert_eq!(sim.tasks(A), 1);
    assert_eq!(sim.release(CA, &[x]), vec![Action::Free { worker: 1, tenant: A, key: x }]);
}

#[test]
fn wanted_small_value_comes_with_done() {
    let mut sim = Sim::new();
    sim.worker(1, 1);
    sim.submit(CA, vec![spec(k(1), MA, &[])]);
    assert!(sim.step(Event::Want { client: CA, keys: vec![k(1)] }).is_empty());
    // CA2 wants it without holding it: it gets the value on its own.
    assert!(sim.step(Event::Want { client: CA2, keys: vec![k(1)] }).is_empty());
    let out = sim.finish(1, A, k(1), 1, Some(b"v"));
    let value = Bytes::from_static(b"v");
    assert_eq!(
        out,
        vec![
            Action::ClientDone { client: CA, done: Done { key: k(1), nbytes: 1, value: Some(value.clone()) } },
            Action::ClientValue { client: CA2, key: k(1), value },
        ]
    );
}

#[test]
fn wanted_large_value_is_fetched_from_the_worker() {
    let mut sim = Sim::new();
    sim.worker(1, 1);
    sim.worker(2, 1);
    let x = k(1);
    sim.submit(CA, vec![spec(x, MA, &[])]);
    assert!(sim.step(Event::Want { client: CA, keys: vec![x] }).is_empty());
    let out = sim.finish(1, A, x, 1 << 20, None);
    assert_eq!(dones(&out), [(CA, Done { key: x, nbytes: 1 << 20, value: None })]);
    let req = fetch_req(&out, 1, x);

    let big = Bytes::from(vec![5u8; 1 << 20]);
    // Only the worker asked may answer, and only once.
    assert!(sim.step(Event::Value { worker: 2, req, value: Some(big.clone()) }).is_empty());
    let out = sim.step(Event::Value { worker: 1, req, value: Some(big.clone()) });
    assert_eq!(out, vec![Action::ClientValue { client: CA, key: x, value: big.clone() }]);
    assert!(sim.step(Event::Value { worker: 1, req, value: Some(big) }).is_empty());

    // After the finish: fetched at once; a worker that lost it is an error.
    let req = fetch_req(&sim.step(Event::Want { client: CA, keys: vec![x] }), 1, x);
    let out = sim.step(Event::Value { worker: 1, req, value: None });
    assert_eq!(errors(&out), [(CA, x, TaskError::WorkerLost { key: inc(x) })]);

    let unknown = TaskError::UnknownKey { key: k(9).hex() };
    assert_eq!(errors(&sim.step(Event::Want { client: CA, keys: vec![k(9)] })), [(CA, k(9), unknown)]);
    sim.submit(CA, vec![spec(k(2), MA, &[])]);
    sim.fail(1, A, k(2), TaskError::Trap { message: "unreachable".into() });
    let out = sim.step(Event::Want { client: CA, keys: vec![k(2)] });
    assert_eq!(errors(&out), [(CA, k(2), TaskError::Trap { message: "unreachable".into() })]);
}

#[test]
fn fetch_goes_to_the_least_busy_holder() {
    let mut sim = Sim::new();
    sim.worker(1, 1);
    sim.worker(2, 1);
    let x = k(1);
    sim.submit(CA, vec![spec(x, MA, &[])]);
    sim.finish(1, A, x, 10, None);
    // Worker 2 reports a copy too: one more replica, no Free.
    assert!(sim.finish(2, A, x, 10, None).is_empty());
    assert_eq!(sim.core.info(A).workers[1].held_keys, 1);
    sim.submit(CA, vec![spec(k(2), MA, &[])]); // runs on worker 1
    fetch_req(&sim.step(Event::Want { client: CA, keys: vec![x] }), 2, x);
    assert_eq!(frees(&sim.release(CA, &[x])), [(1, x), (2, x)]);
}

#[test]
fn cancel_errs_the_key_and_its_unfinished_dependents() {
    let mut sim = Sim::new();
    sim.worker(1, 1);
    let (a, b, q1, q2) = (k(1), k(2), k(3), k(4));
    let out = sim.submit(CA, vec![spec(a, MA, &[]), spec(b, MA, &[a]), spec(q1, MA, &[]), spec(q2, MA, &[])]);
    assert_eq!(computes(&out), [(1, a), (1, q1)]);

    let out = sim.step(Event::Cancel { client: CA, keys: vec![a] });
    assert_eq!(errors(&out), [(CA, a, TaskError::Cancelled), (CA, b, TaskError::Cancelled)]);
    // a's slot frees up for the queued task.
    assert_eq!(computes(&out), [(1, q2)]);
    assert_eq!(sim.tasks(A), 3, "a is released; b, q1, q2 are held");
    // The worker's late result is dropped.
    assert_eq!(frees(&sim.finish(1, A, a, 1, None)), [(1, a)]);

    // A queued task leaves the queue.
    sim.submit(CA, vec![spec(k(5), MA, &[])]);
    let out = sim.step(Event::Cancel { client: CA, keys: vec![k(5)] });
    assert_eq!(errors(&out), [(CA, k(5), TaskError::Cancelled)]);
    assert!(computes(&sim.finish(1, A, q1, 1, None)).is_empty());

    // A finished key is only released, but its pending dependents go.
    sim.submit(CA, vec![spec(k(6), MA, &[q1, q2])]);
    let out = sim.step(Event::Cancel { client: CA, keys: vec![q1] });
    assert_eq!(errors(&out), [(CA, k(6), TaskError::Cancelled)]);
    assert_eq!(frees(&out), [(1, q1)]);
}

#[test]
fn cancel_of_a_key_another_client_holds_only_releases_it() {
    let mut sim = Sim::new();
    sim.worker(1, 1);
    sim.submit(CA, vec![spec(k(1), MA, &[])]);
    sim.submit(CA2, vec![spec(k(1), MA, &[])]);
    assert!(sim.step(Event::Cancel { client: CA, keys: vec![k(1)] }).is_empty());
    assert_eq!(dones(&sim.finish(1, A, k(1), 1, None)), [(CA2, Done { key: k(1), nbytes: 1, value: None })]);
}

#[test]
fn disconnecting_releases_everything_the_client_held() {
    let mut sim = Sim::new();
    sim.worker(1, 1);
    let keys: Vec<KeyId> = (1..=4).map(k).collect();
    sim.submit(CA, keys.iter().map(|&key| spec(key, MA, &[])).collect());
    assert_eq!(computes(&sim.finish(1, A, keys[0], 1, None)), [(1, keys[2])]);
    sim.step(Event::Want { client: CA, keys: vec![keys[1]] });
    // k1 in memory, k2 and k3 running, k4 queued.
    let out = sim.step(Event::ClientDisconnected { client: CA });
    assert_eq!(out, vec![Action::Free { worker: 1, tenant: A, key: keys[0] }]);
    assert_eq!(sim.tasks(A), 0);
    assert_eq!(frees(&sim.finish(1, A, keys[1], 1, None)), [(1, keys[1])]);
    // Its events are now ignored.
    assert!(sim.submit(CA, vec![spec(k(9), MA, &[])]).is_empty());
}

#[test]
fn a_leaving_worker_reschedules_its_tasks_and_loses_its_results() {
    let mut sim = Sim::new();
    sim.worker(1, 1);
    sim.worker(2, 1);
    let (a, r, q, s, c) = (k(1), k(2), k(3), k(4), k(5));
    sim.submit(CA, vec![spec(a, MA, &[])]);
    sim.finish(1, A, a, 100, None);
    let out = sim.submit(CA, vec![spec(r, MA, &[]), spec(q, MA, &[a]), spec(s, MA, &[]), spec(c, MA, &[a, r])]);
    assert_eq!(computes(&out), [(1, r), (1, q), (2, s)]);
    sim.finish(2, A, s, 10, None);
    sim.finish(1, A, s, 10, None); // a second copy, on worker 1
    let fetch = fetch_req(&sim.step(Event::Want { client: CA, keys: vec![a] }), 1, a);

    let out = sim.step(Event::WorkerLeft { worker: 1 });
    let lost = TaskError::WorkerLost { key: inc(a) };
    let dep = TaskError::DependencyFailed { key: inc(a), cause: Box::new(lost.clone()) };
    let mut got = errors(&out);
    got.sort_by_key(|(_, key, _)| *key);
    assert_eq!(got, [(CA, a, lost.clone()), (CA, a, lost), (CA, q, dep.clone()), (CA, c, dep)]);
    // r is rescheduled; q depended on the lost result and failed instead.
    assert_eq!(computes(&out), [(2, r)]);
    assert_eq!(sim.core.info(A).workers.iter().map(|w| w.id).collect::<Vec<_>>(), [2]);
    // s survives on worker 2.
    let req = fetch_req(&sim.step(Event::Want { client: CA, keys: vec![s] }), 2, s);
    assert_ne!(req, fetch);
    // A late answer from the departed worker is ignored.
    assert!(sim.step(Event::Value { worker: 1, req: fetch, value: None }).is_empty());
    assert_eq!(dones(&sim.finish(2, A, r, 1, None)).len(), 1);
}

#[test]
fn another_tenant_is_served_at_the_next_free_slot() {
    let mut sim = Sim::new();
    sim.worker(1, 1);
    let out = sim.submit(CA, (0..1000).map(|i| spec(kn(i), MA, &[])).collect());
    assert_eq!(computes(&out), [(1, kn(0)), (1, kn(1))]);
    assert!(sim.submit(CB, vec![spec(k(1), MB, &[])]).is_empty());
    match &sim.finish(1, A, kn(0), 1, None)[..] {
        [Action::ClientDone { .. }, Action::Compute { worker: 1, task }] => assert_eq!((task.tenant, task.key), (B, k(1))),
        other => panic!("expected B's task next, got {other:?}"),
    }
    assert_eq!(computes(&sim.finish(1, A, kn(1), 1, None)), [(1, kn(2))]);
    assert_eq!(computes(&sim.finish(1, B, k(1), 1, None)), [(1, kn(3))]);
}

#[test]
fn garbage_events_are_ignored_or_answered_with_errors() {
    let mut sim = Sim::new();
    let ghost = 99;
    for event in [
        Event::Submit { client: ghost, tasks: vec![spec(k(1), MA, &[])] },
        Event::Hold { client: ghost, keys: vec![k(1)] },
        Event::Want { client: ghost, keys: vec![k(1)] },
        Event::Release { client: ghost, keys: vec![k(1)] },
        Event::Cancel { client: ghost, keys: vec![k(1)] },
        Event::ClientDisconnected { client: ghost },
        Event::Finished { worker: ghost, tasks: vec![Finished { tenant: A, key: k(1), nbytes: 1, value: None, duration_us: 0 }] },
        Event::Failed { worker: ghost, tasks: vec![Failed { tenant: A, key: k(1), error: TaskError::StackOverflow }] },
        Event::Value { worker: ghost, req: 1, value: None },
        Event::WorkerLeft { worker: ghost },
    ] {
        assert!(sim.step(event).is_empty());
    }
    sim.worker(1, 1);
    assert!(sim.step(Event::Value { worker: 1, req: 12345, value: None }).is_empty());
    // A second hello with a known id changes nothing.
    assert!(sim.worker(1, 64).is_empty());
    assert_eq!(sim.core.info(A).workers[0].nthreads, 1);
    sim.step(Event::ClientConnected { client: CA, tenant: B });
    assert!(computes(&sim.submit(CA, vec![spec(k(1), MA, &[])])).len() == 1, "CA is still tenant A");

    let rejected = |out: Vec<Action>, what: &str| {
        let got = errors(&out);
        assert!(
            matches!(&got[..], [(CA, _, TaskError::ModuleRejected { reason })] if reason.contains(what)),
            "expected a rejection mentioning {what:?}, got {out:?}"
        );
    };
    let mut s = spec(k(2), MA, &[]);
    s.func = 2;
    rejected(sim.submit(CA, vec![s]), "no task 2");
    let mut s = spec(k(2), MA, &[k(1)]);
    s.args.holes = vec![Hole { at: 0, dep: 1 }];
    rejected(sim.submit(CA, vec![s]), "template");
    let mut s = spec(k(2), MA, &[k(1)]);
    s.args.holes = vec![Hole { at: 9, dep: 0 }];
    rejected(sim.submit(CA, vec![s]), "template");
    rejected(sim.submit(CA, vec![spec(k(2), MA, &[k(1), k(1)])]), "twice");
    let many: Vec<KeyId> = (0..20).map(|i| kn(i % 19)).collect();
    rejected(sim.submit(CA, vec![spec(k(2), MA, &many)]), "twice");
    rejected(sim.submit(CA, vec![spec(k(2), 5, &[])]), "unknown module");
    assert_eq!(sim.tasks(A), 1, "rejected specs create nothing");

    // Reports of work the scheduler did not ask for.
    assert_eq!(frees(&sim.finish(1, A, k(50), 1, None)), [(1, k(50))]);
    assert_eq!(frees(&sim.finish(1, B, k(1), 1, None)), [(1, k(1))], "wrong tenant");
    assert!(sim.fail(1, A, k(50), TaskError::StackOverflow).is_empty());
    sim.submit(CA, vec![spec(k(3), MA, &[]), spec(k(4), MA, &[])]); // k4 queued
    assert_eq!(frees(&sim.finish(1, A, k(4), 1, None)), [(1, k(4))]);
    assert!(sim.fail(1, A, k(4), TaskError::StackOverflow).is_empty());
    // Absurd sizes do not overflow anything.
    sim.finish(1, A, k(1), u64::MAX, None);
    sim.finish(1, A, k(3), u64::MAX, None);
    assert_eq!(sim.core.info(A).workers[0].held_bytes, u64::MAX.wrapping_mul(2));
    // A module registered again with fewer tasks: keys render as hex.
    sim.step(Event::ModuleRegistered { module: MA, tenant: A, task_names: names(&[]) });
    assert_eq!(sim.core.render_key(A, k(1)), k(1).hex());
    // k4 got k1's slot; its failure is reported like any other.
    let out = sim.fail(1, A, k(4), TaskError::StackOverflow);
    assert_eq!(errors(&out), [(CA, k(4), TaskError::StackOverflow)]);
}

#[test]
fn per_task_memory_is_small() {
    use crate::state::task::Task;
    let size = std::mem::size_of::<Task>();
    assert!(size <= 320, "a task takes {size} bytes before its heap parts");
}
