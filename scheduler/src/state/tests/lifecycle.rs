//! Single tasks: running, deduplication, limits, queueing, release.

use super::*;
use wask_proto::limits::ResolvedLimits;
use wask_proto::msg::{ClusterInfo, ComputeTask, WorkerInfo};

#[test]
fn one_task_runs_and_its_holder_gets_the_value() {
    let mut sim = Sim::new();
    sim.worker(1, 1);
    let mut s = spec(k(1), MA, &[]);
    s.limits.time_ms = Some(5);
    let out = sim.submit(CA, vec![s.clone()]);
    let limits = ResolvedLimits {
        time_ms: 5,
        ..ResolvedLimits::default()
    };
    let task = ComputeTask {
        tenant: A,
        key: k(1),
        module: MA,
        func: 0,
        args: s.args,
        deps: vec![],
        limits,
    };
    assert_eq!(out, vec![Action::Compute { worker: 1, task }]);

    let out = sim.finish(1, A, k(1), 3, Some(b"abc"));
    let done = Done {
        key: k(1),
        nbytes: 3,
        value: Some(Bytes::from_static(b"abc")),
    };
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
    assert_eq!(
        sim.core.info(A),
        ClusterInfo {
            workers: vec![worker],
            tasks: 1,
            module_uploads: 0,
            data_uploads: 0,
        }
    );
    assert_eq!(sim.tasks(B), 0);
    assert_eq!(sim.core.render_key(A, k(1)), inc(k(1)));
    assert_eq!(sim.core.render_key(B, k(1)), k(1).hex());

    assert_eq!(
        sim.release(CA, &[k(1)]),
        vec![Action::Free {
            worker: 1,
            tenant: A,
            key: k(1)
        }]
    );
    assert_eq!(sim.tasks(A), 0);
    assert_eq!(sim.core.info(A).workers[0].held_keys, 0);
}

#[test]
fn limits_take_defaults_and_are_capped() {
    let defaults = ResolvedLimits {
        time_ms: 10,
        memory_bytes: 20,
        result_bytes: 30,
        output_bytes: 40,
        stack_bytes: 128 << 10,
    };
    let max_limits = ResolvedLimits {
        time_ms: 100,
        memory_bytes: 200,
        result_bytes: 300,
        output_bytes: 400,
        stack_bytes: 1 << 20,
    };
    let mut sim = Sim::bare(CoreConfig {
        saturation: 1,
        defaults,
        max_limits,
        tenants: Vec::new(),
    });
    sim.step(Event::ClientConnected {
        client: CA,
        tenant: A,
    });
    sim.step(Event::ModuleRegistered {
        module: MA,
        tenant: A,
        task_names: names(&["inc"]),
    });
    sim.worker(1, 1);
    let mut s = spec(k(1), MA, &[]);
    s.limits = TaskLimits {
        time_ms: Some(1000),
        memory_bytes: Some(50),
        result_bytes: None,
        output_bytes: None,
        stack_bytes: Some(4 << 20),
    };
    match &sim.submit(CA, vec![s])[..] {
        [Action::Compute { task, .. }] => assert_eq!(
            task.limits,
            ResolvedLimits {
                time_ms: 100,
                memory_bytes: 50,
                result_bytes: 30,
                output_bytes: 40,
                stack_bytes: 1 << 20,
            }
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
    assert!(
        rendered.starts_with("add-") && rendered.matches('-').count() == 5,
        "{rendered}"
    );
}

#[test]
fn same_key_is_computed_once() {
    let mut sim = Sim::new();
    sim.worker(1, 1);
    let out = sim.submit(CA, vec![spec(k(1), MA, &[]), spec(k(1), MA, &[])]);
    assert_eq!(computes(&out), [(1, k(1))]);
    assert!(sim.submit(CA2, vec![spec(k(1), MA, &[])]).is_empty());

    let out = sim.finish(1, A, k(1), 2, None);
    let done = Done {
        key: k(1),
        nbytes: 2,
        value: None,
    };
    assert_eq!(dones(&out), [(CA, done.clone()), (CA2, done.clone())]);
    assert_eq!(out.len(), 2);

    // Submitting a key in memory answers at once and recomputes nothing.
    assert_eq!(
        sim.submit(CA, vec![spec(k(1), MA, &[])]),
        vec![Action::ClientDone { client: CA, done }]
    );
    assert!(sim.release(CA, &[k(1)]).is_empty());
    assert_eq!(frees(&sim.release(CA2, &[k(1)])), [(1, k(1))]);
}

#[test]
fn resubmitting_a_failed_key_reports_its_error() {
    let mut sim = Sim::new();
    sim.worker(1, 1);
    sim.submit(CA, vec![spec(k(1), MA, &[])]);
    let boom = TaskError::Panic {
        message: "boom".into(),
    };
    assert_eq!(
        errors(&sim.fail(1, A, k(1), boom.clone())),
        [(CA, k(1), boom.clone())]
    );
    let out = sim.submit(CA2, vec![spec(k(1), MA, &[])]);
    assert_eq!(
        out,
        vec![Action::ClientErred {
            client: CA2,
            key: k(1),
            error: boom
        }]
    );
    assert_eq!(sim.core.info(A).workers[0].executed, 1);
}

#[test]
fn tasks_beyond_the_slots_wait_and_drain_in_order() {
    let mut sim = Sim::new();
    sim.worker(1, 1); // 1 thread × saturation 2
    let keys: Vec<KeyId> = (1..=5).map(k).collect();
    let out = sim.submit(CA, keys.iter().map(|&key| spec(key, MA, &[])).collect());
    assert_eq!(computes(&out), [(1, keys[0]), (1, keys[1])]);
    assert_eq!(sim.core.info(A).workers[0].processing, 2);
    assert_eq!(
        computes(&sim.finish(1, A, keys[0], 1, None)),
        [(1, keys[2])]
    );
    assert_eq!(
        computes(&sim.finish(1, A, keys[1], 1, None)),
        [(1, keys[3])]
    );
    // A new worker takes queued work at once.
    assert_eq!(computes(&sim.worker(2, 4)), [(2, keys[4])]);
    for (w, key) in [(1, keys[2]), (1, keys[3]), (2, keys[4])] {
        assert!(computes(&sim.finish(w, A, key, 1, None)).is_empty());
    }
    assert_eq!(sim.tasks(A), 5);
}

#[test]
fn unfinished_counts_the_tenants_tasks_not_yet_done() {
    let mut sim = Sim::new();
    sim.worker(1, 1);
    sim.submit(CA, (1..=3).map(|i| spec(k(i), MA, &[])).collect());
    // Both of tenant A's clients see its three tasks; B has none.
    assert_eq!((sim.core.unfinished(CA), sim.core.unfinished(CA2)), (3, 3));
    assert_eq!(sim.core.unfinished(CB), 0);
    assert_eq!(sim.core.unfinished(99), 0);
    sim.finish(1, A, k(1), 1, None);
    sim.fail(1, A, k(2), TaskError::Cancelled);
    assert_eq!(sim.core.unfinished(CA), 1);
    sim.release(CA, &[k(3)]);
    assert_eq!(sim.core.unfinished(CA), 0);
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
    assert_eq!(
        out,
        vec![Action::Free {
            worker: 1,
            tenant: A,
            key: k(1)
        }]
    );
    assert_eq!(sim.core.info(A).workers[0].executed, 1);
}

#[test]
fn per_task_memory_is_small() {
    use crate::state::task::Task;
    let size = std::mem::size_of::<Task>();
    assert!(
        size <= 320,
        "a task takes {size} bytes before its heap parts"
    );
}
