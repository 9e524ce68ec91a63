//! Clients, workers and tenants: values, disconnects, departures, fair share, isolation and garbage.

use super::*;

#[test]
fn tenants_cannot_see_each_others_keys() {
    let mut sim = Sim::new();
    sim.worker(1, 1);
    let (x, y, z, never) = (k(1), k(2), k(3), k(99));
    sim.submit(CA, vec![spec(x, MA, &[])]);
    sim.finish(1, A, x, 4, None);

    // Depending on A's key looks exactly like depending on a missing key.
    let unknown = |key: KeyId| TaskError::UnknownKey { key: key.hex() };
    assert_eq!(
        errors(&sim.submit(CB, vec![spec(y, MB, &[x])])),
        [(CB, y, unknown(x))]
    );
    assert_eq!(
        errors(&sim.submit(CB, vec![spec(z, MB, &[never])])),
        [(CB, z, unknown(never))]
    );
    assert_eq!(
        errors(&sim.step(Event::Hold {
            client: CB,
            keys: vec![x]
        })),
        [(CB, x, unknown(x))]
    );
    assert_eq!(
        errors(&sim.step(Event::Want {
            client: CB,
            keys: vec![x]
        })),
        [(CB, x, unknown(x))]
    );
    assert!(
        sim.step(Event::Cancel {
            client: CB,
            keys: vec![x]
        })
        .is_empty()
    );
    assert!(sim.release(CB, &[x]).is_empty());
    // So does A's module.
    let rejected = |m: ModuleId| TaskError::ModuleRejected {
        reason: format!("unknown module {m}"),
    };
    assert_eq!(
        errors(&sim.submit(CB, vec![spec(k(7), MA, &[])])),
        [(CB, k(7), rejected(MA))]
    );
    assert_eq!(
        errors(&sim.submit(CB, vec![spec(k(7), 77, &[])])),
        [(CB, k(7), rejected(77))]
    );

    // B's identical key is a separate task.
    match &sim.submit(CB, vec![spec(x, MB, &[])])[..] {
        [Action::Compute { worker: 1, task }] => assert_eq!((task.tenant, task.key), (B, x)),
        other => panic!("expected B's own x to run, got {other:?}"),
    }
    assert_eq!(
        dones(&sim.finish(1, B, x, 8, None)),
        [(
            CB,
            Done {
                key: x,
                nbytes: 8,
                value: None
            }
        )]
    );
    assert_eq!(
        sim.release(CB, &[x]),
        vec![Action::Free {
            worker: 1,
            tenant: B,
            key: x
        }]
    );
    assert_eq!(sim.tasks(A), 1);
    assert_eq!(
        sim.release(CA, &[x]),
        vec![Action::Free {
            worker: 1,
            tenant: A,
            key: x
        }]
    );
}

#[test]
fn wanted_small_value_comes_with_done() {
    let mut sim = Sim::new();
    sim.worker(1, 1);
    sim.submit(CA, vec![spec(k(1), MA, &[])]);
    assert!(
        sim.step(Event::Want {
            client: CA,
            keys: vec![k(1)]
        })
        .is_empty()
    );
    // CA2 wants it without holding it: it gets the value on its own.
    assert!(
        sim.step(Event::Want {
            client: CA2,
            keys: vec![k(1)]
        })
        .is_empty()
    );
    let out = sim.finish(1, A, k(1), 1, Some(b"v"));
    let value = Bytes::from_static(b"v");
    assert_eq!(
        out,
        vec![
            Action::ClientDone {
                client: CA,
                done: Done {
                    key: k(1),
                    nbytes: 1,
                    value: Some(value.clone())
                }
            },
            Action::ClientValue {
                client: CA2,
                key: k(1),
                value
            },
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
    assert!(
        sim.step(Event::Want {
            client: CA,
            keys: vec![x]
        })
        .is_empty()
    );
    let out = sim.finish(1, A, x, 1 << 20, None);
    assert_eq!(
        dones(&out),
        [(
            CA,
            Done {
                key: x,
                nbytes: 1 << 20,
                value: None
            }
        )]
    );
    let req = fetch_req(&out, 1, x);

    let big = Bytes::from(vec![5u8; 1 << 20]);
    // Only the worker asked may answer, and only once.
    assert!(
        sim.step(Event::Value {
            worker: 2,
            req,
            value: Some(big.clone())
        })
        .is_empty()
    );
    let out = sim.step(Event::Value {
        worker: 1,
        req,
        value: Some(big.clone()),
    });
    assert_eq!(
        out,
        vec![Action::ClientValue {
            client: CA,
            key: x,
            value: big.clone()
        }]
    );
    assert!(
        sim.step(Event::Value {
            worker: 1,
            req,
            value: Some(big)
        })
        .is_empty()
    );

    // After the finish: fetched at once; a worker that lost it is an error.
    let req = fetch_req(
        &sim.step(Event::Want {
            client: CA,
            keys: vec![x],
        }),
        1,
        x,
    );
    let out = sim.step(Event::Value {
        worker: 1,
        req,
        value: None,
    });
    assert_eq!(
        errors(&out),
        [(CA, x, TaskError::WorkerLost { key: inc(x) })]
    );

    let unknown = TaskError::UnknownKey { key: k(9).hex() };
    assert_eq!(
        errors(&sim.step(Event::Want {
            client: CA,
            keys: vec![k(9)]
        })),
        [(CA, k(9), unknown)]
    );
    sim.submit(CA, vec![spec(k(2), MA, &[])]);
    sim.fail(
        1,
        A,
        k(2),
        TaskError::Trap {
            message: "unreachable".into(),
        },
    );
    let out = sim.step(Event::Want {
        client: CA,
        keys: vec![k(2)],
    });
    assert_eq!(
        errors(&out),
        [(
            CA,
            k(2),
            TaskError::Trap {
                message: "unreachable".into()
            }
        )]
    );
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
    fetch_req(
        &sim.step(Event::Want {
            client: CA,
            keys: vec![x],
        }),
        2,
        x,
    );
    assert_eq!(frees(&sim.release(CA, &[x])), [(1, x), (2, x)]);
}

#[test]
fn disconnecting_releases_everything_the_client_held() {
    let mut sim = Sim::new();
    sim.worker(1, 1);
    let keys: Vec<KeyId> = (1..=4).map(k).collect();
    sim.submit(CA, keys.iter().map(|&key| spec(key, MA, &[])).collect());
    assert_eq!(
        computes(&sim.finish(1, A, keys[0], 1, None)),
        [(1, keys[2])]
    );
    sim.step(Event::Want {
        client: CA,
        keys: vec![keys[1]],
    });
    // k1 in memory, k2 and k3 running, k4 queued: the copy of k1 and the
    // two runs are freed (a free of a running task cancels it).
    let out = sim.step(Event::ClientDisconnected { client: CA });
    let mut freed = frees(&out);
    freed.sort();
    assert_eq!(freed, [(1, keys[0]), (1, keys[1]), (1, keys[2])]);
    assert_eq!(out.len(), 3);
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
    let out = sim.submit(
        CA,
        vec![
            spec(r, MA, &[]),
            spec(q, MA, &[a]),
            spec(s, MA, &[]),
            spec(c, MA, &[a, r]),
        ],
    );
    assert_eq!(computes(&out), [(1, r), (1, q), (2, s)]);
    sim.finish(2, A, s, 10, None);
    sim.finish(1, A, s, 10, None); // a second copy, on worker 1
    let fetch = fetch_req(
        &sim.step(Event::Want {
            client: CA,
            keys: vec![a],
        }),
        1,
        a,
    );

    let out = sim.step(Event::WorkerLeft { worker: 1 });
    let lost = TaskError::WorkerLost { key: inc(a) };
    let dep = TaskError::DependencyFailed {
        key: inc(a),
        cause: Box::new(lost.clone()),
    };
    let mut got = errors(&out);
    got.sort_by_key(|(_, key, _)| *key);
    assert_eq!(
        got,
        [
            (CA, a, lost.clone()),
            (CA, a, lost),
            (CA, q, dep.clone()),
            (CA, c, dep)
        ]
    );
    // r is rescheduled; q depended on the lost result and failed instead.
    assert_eq!(computes(&out), [(2, r)]);
    assert_eq!(
        sim.core
            .info(A)
            .workers
            .iter()
            .map(|w| w.id)
            .collect::<Vec<_>>(),
        [2]
    );
    // s survives on worker 2.
    let req = fetch_req(
        &sim.step(Event::Want {
            client: CA,
            keys: vec![s],
        }),
        2,
        s,
    );
    assert_ne!(req, fetch);
    // A late answer from the departed worker is ignored.
    assert!(
        sim.step(Event::Value {
            worker: 1,
            req: fetch,
            value: None
        })
        .is_empty()
    );
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
        [
            Action::ClientDone { .. },
            Action::Compute { worker: 1, task },
        ] => assert_eq!((task.tenant, task.key), (B, k(1))),
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
        Event::Submit {
            client: ghost,
            tasks: vec![spec(k(1), MA, &[])],
        },
        Event::Hold {
            client: ghost,
            keys: vec![k(1)],
        },
        Event::Want {
            client: ghost,
            keys: vec![k(1)],
        },
        Event::Release {
            client: ghost,
            keys: vec![k(1)],
        },
        Event::Cancel {
            client: ghost,
            keys: vec![k(1)],
        },
        Event::ClientDisconnected { client: ghost },
        Event::Finished {
            worker: ghost,
            tasks: vec![Finished {
                tenant: A,
                key: k(1),
                nbytes: 1,
                value: None,
                duration_us: 0,
            }],
        },
        Event::Failed {
            worker: ghost,
            tasks: vec![Failed {
                tenant: A,
                key: k(1),
                error: TaskError::StackOverflow,
            }],
        },
        Event::Value {
            worker: ghost,
            req: 1,
            value: None,
        },
        Event::WorkerLeft { worker: ghost },
    ] {
        assert!(sim.step(event).is_empty());
    }
    sim.worker(1, 1);
    assert!(
        sim.step(Event::Value {
            worker: 1,
            req: 12345,
            value: None
        })
        .is_empty()
    );
    // A second hello with a known id changes nothing.
    assert!(sim.worker(1, 64).is_empty());
    assert_eq!(sim.core.info(A).workers[0].nthreads, 1);
    sim.step(Event::ClientConnected {
        client: CA,
        tenant: B,
    });
    assert!(
        computes(&sim.submit(CA, vec![spec(k(1), MA, &[])])).len() == 1,
        "CA is still tenant A"
    );

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
    assert_eq!(
        frees(&sim.finish(1, B, k(1), 1, None)),
        [(1, k(1))],
        "wrong tenant"
    );
    assert!(sim.fail(1, A, k(50), TaskError::StackOverflow).is_empty());
    sim.submit(CA, vec![spec(k(3), MA, &[]), spec(k(4), MA, &[])]); // k4 queued
    assert_eq!(frees(&sim.finish(1, A, k(4), 1, None)), [(1, k(4))]);
    assert!(sim.fail(1, A, k(4), TaskError::StackOverflow).is_empty());
    // Absurd sizes do not overflow anything.
    sim.finish(1, A, k(1), u64::MAX, None);
    sim.finish(1, A, k(3), u64::MAX, None);
    assert_eq!(
        sim.core.info(A).workers[0].held_bytes,
        u64::MAX.wrapping_mul(2)
    );
    // A module registered again with fewer tasks: keys render as hex.
    sim.step(Event::ModuleRegistered {
        module: MA,
        tenant: A,
        task_names: names(&[]),
    });
    assert_eq!(sim.core.render_key(A, k(1)), k(1).hex());
    // k4 got k1's slot; its failure is reported like any other.
    let out = sim.fail(1, A, k(4), TaskError::StackOverflow);
    assert_eq!(errors(&out), [(CA, k(4), TaskError::StackOverflow)]);
}
