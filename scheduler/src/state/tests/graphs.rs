//! Dependencies: placement next to inputs, freeing inputs, failure and cancellation spreading to dependents.

use super::*;
use wask_proto::msg::DepLocation;

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
            assert_eq!(
                task.deps,
                vec![DepLocation {
                    key: a,
                    who_has: vec![1]
                }]
            );
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
    let out = sim.submit(
        CA,
        vec![spec(b, MA, &[a]), spec(c, MA, &[a]), spec(e, MA, &[a])],
    );
    assert_eq!(computes(&out), [(1, b), (1, c), (2, e)]);
    sim.finish(1, A, b, 10, None);
    sim.finish(2, A, e, 500, None);

    match &sim.submit(CA, vec![spec(d, MA, &[b, e])])[..] {
        [Action::Compute { worker: 2, task }] => assert_eq!(
            task.deps,
            vec![
                DepLocation {
                    key: b,
                    who_has: vec![1]
                },
                DepLocation {
                    key: e,
                    who_has: vec![2]
                }
            ]
        ),
        other => panic!("expected d on worker 2, got {other:?}"),
    }
    assert!(sim.release(CA, &[a]).is_empty(), "c still needs a");
    assert_eq!(frees(&sim.finish(1, A, c, 1, None)), [(1, a)]);
}

#[test]
fn released_waiting_task_releases_its_inputs() {
    let mut sim = Sim::new();
    sim.worker(1, 1);
    sim.submit(CA, vec![spec(k(1), MA, &[]), spec(k(2), MA, &[k(1)])]);
    assert!(sim.release(CA, &[k(1)]).is_empty(), "k2 waits for k1");
    // Nobody needs k1 any more: its run is cancelled.
    assert_eq!(frees(&sim.release(CA, &[k(2)])), [(1, k(1))]);
    assert_eq!(sim.tasks(A), 0);
    assert_eq!(frees(&sim.finish(1, A, k(1), 1, None)), [(1, k(1))]);
}

#[test]
fn failure_reaches_every_transitive_dependent_naming_the_root() {
    let mut sim = Sim::new();
    sim.worker(1, 1);
    let (a, b, c, d, e) = (k(1), k(2), k(3), k(4), k(5));
    sim.submit(
        CA,
        vec![spec(a, MA, &[]), spec(b, MA, &[a]), spec(c, MA, &[b])],
    );
    sim.submit(CA2, vec![spec(d, MA, &[b])]);
    sim.step(Event::Hold {
        client: CA2,
        keys: vec![c],
    });

    let boom = TaskError::Panic {
        message: "boom".into(),
    };
    let mut got = errors(&sim.fail(1, A, a, boom.clone()));
    got.sort_by_key(|(client, key, _)| (*key, *client));
    let dep = TaskError::DependencyFailed {
        key: inc(a),
        cause: Box::new(boom.clone()),
    };
    assert_eq!(
        got,
        [
            (CA, a, boom),
            (CA, b, dep.clone()),
            (CA, c, dep.clone()),
            (CA2, c, dep.clone()),
            (CA2, d, dep.clone())
        ]
    );
    assert_eq!(
        dep.to_string(),
        format!("dependency {} failed: task panicked: boom", inc(a))
    );

    // A new dependent of a failed task fails at once, with the same root.
    assert_eq!(
        errors(&sim.submit(CA, vec![spec(e, MA, &[c])])),
        [(CA, e, dep)]
    );
    // The slot is free again.
    assert_eq!(
        computes(&sim.submit(CA, vec![spec(k(6), MA, &[])])),
        [(1, k(6))]
    );
    sim.release(CA, &[a, b, c, e, k(6)]);
    sim.release(CA2, &[c, d]);
    assert_eq!(sim.tasks(A), 0);
}

#[test]
fn unknown_dependency_errs_the_task() {
    let mut sim = Sim::new();
    sim.worker(1, 1);
    let out = sim.submit(CA, vec![spec(k(2), MA, &[k(9)])]);
    assert_eq!(
        out,
        vec![Action::ClientErred {
            client: CA,
            key: k(2),
            error: TaskError::UnknownKey { key: k(9).hex() }
        }]
    );
    assert_eq!(sim.tasks(A), 1);
    assert!(sim.release(CA, &[k(2)]).is_empty());
    assert_eq!(sim.tasks(A), 0);
}

#[test]
fn cancel_errs_the_key_and_its_unfinished_dependents() {
    let mut sim = Sim::new();
    sim.worker(1, 1);
    let (a, b, q1, q2) = (k(1), k(2), k(3), k(4));
    let out = sim.submit(
        CA,
        vec![
            spec(a, MA, &[]),
            spec(b, MA, &[a]),
            spec(q1, MA, &[]),
            spec(q2, MA, &[]),
        ],
    );
    assert_eq!(computes(&out), [(1, a), (1, q1)]);

    let out = sim.step(Event::Cancel {
        client: CA,
        keys: vec![a],
    });
    assert_eq!(
        errors(&out),
        [(CA, a, TaskError::Cancelled), (CA, b, TaskError::Cancelled)]
    );
    // a's slot frees up for the queued task.
    assert_eq!(computes(&out), [(1, q2)]);
    assert_eq!(sim.tasks(A), 3, "a is released; b, q1, q2 are held");
    // The worker's late result is dropped.
    assert_eq!(frees(&sim.finish(1, A, a, 1, None)), [(1, a)]);

    // A queued task leaves the queue.
    sim.submit(CA, vec![spec(k(5), MA, &[])]);
    let out = sim.step(Event::Cancel {
        client: CA,
        keys: vec![k(5)],
    });
    assert_eq!(errors(&out), [(CA, k(5), TaskError::Cancelled)]);
    assert!(computes(&sim.finish(1, A, q1, 1, None)).is_empty());

    // A finished key is only released, but its pending dependents go.
    sim.submit(CA, vec![spec(k(6), MA, &[q1, q2])]);
    let out = sim.step(Event::Cancel {
        client: CA,
        keys: vec![q1],
    });
    assert_eq!(errors(&out), [(CA, k(6), TaskError::Cancelled)]);
    assert_eq!(frees(&out), [(1, q1)]);
}

#[test]
fn cancel_of_a_key_another_client_holds_only_releases_it() {
    let mut sim = Sim::new();
    sim.worker(1, 1);
    sim.submit(CA, vec![spec(k(1), MA, &[])]);
    sim.submit(CA2, vec![spec(k(1), MA, &[])]);
    assert!(
        sim.step(Event::Cancel {
            client: CA,
            keys: vec![k(1)]
        })
        .is_empty()
    );
    assert_eq!(
        dones(&sim.finish(1, A, k(1), 1, None)),
        [(
            CA2,
            Done {
                key: k(1),
                nbytes: 1,
                value: None
            }
        )]
    );
}
