//! Fair share between tenants on one cluster: a flood from one tenant does
//! not delay another's task, free slots go by weight, and a tenant's
//! in-flight quota holds.

use std::time::Duration;
use wask::Options;
use wask_tests::tenants::*;
use wask_tests::{eventually, executed};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_from_one_tenant_does_not_delay_another() {
    // One worker of two threads, each sent at most two tasks at once: the
    // cluster's queue slots.
    const THREADS: usize = 2;
    const SATURATION: u32 = 2;
    const SLOTS: u64 = THREADS as u64 * SATURATION as u64;
    const FLOOD: u64 = 100_000;
    // Long enough that a round trip is a fraction of it on a loaded machine.
    const TASK_MS: u64 = 100;
    let cluster = cluster_of(THREADS, SATURATION).await;
    let a = connect(&cluster, TOKEN_A).await;
    let b = connect(&cluster, TOKEN_B).await;
    let sleep_a = sleep_task(&a).await;
    let sleep_b = sleep_task(&b).await;
    let impure = Options::new().pure(false);
    // B's module is compiled on the worker before the measurement.
    let warm = b.submit_with(&sleep_b, (1,), &impure).unwrap();
    assert_eq!(warm.result().await.unwrap(), 1);
    drop(warm);

    // A floods the cluster, and its tasks are known to the scheduler (A's
    // connection is ordered: info answers after the submissions) and fill
    // every thread.
    let flood = a
        .map_with(&sleep_a, (0..FLOOD).map(|_| (TASK_MS,)), &impure)
        .unwrap();
    assert_eq!(a.info().await.unwrap().tasks, FLOOD);
    assert!(
        eventually(Duration::from_secs(60), || async {
            processing(&a).await >= THREADS as u64
        })
        .await,
        "A's tasks do not reach the worker: {:?}",
        a.info().await
    );

    // B submits one task. B's info answers after the submission was handled,
    // so `before` counts every task reported before B's task was queued.
    let mine = b.submit_with(&sleep_b, (7,), &impure).unwrap();
    let before = executed(&b).await;
    // B's task goes to the next free slot, ahead of A's queue: before it
    // ends, at most the tasks already on the worker run, and as many more
    // on the other thread meanwhile (plus two for the last round trip).
    // Behind A's queue it would wait for all 100,000.
    let bound = 2 * SLOTS + 2;
    tokio::select! {
        r = mine.result() => assert_eq!(r.unwrap(), 7),
        _ = eventually(Duration::from_secs(120), || async {
            executed(&b).await - before > bound
        }) => panic!(
            "B's task still waits after {} other tasks ran (A has {FLOOD} queued)",
            executed(&b).await - before
        ),
    }
    let ran = executed(&b).await - before - 1;
    assert!(
        ran <= bound,
        "B's task waited for {ran} of A's tasks; the cluster has {SLOTS} slots"
    );
    assert!(done(&flood) < FLOOD, "A's flood ran out first");
    drop(flood);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn free_slots_are_shared_by_weight() {
    // Four threads and no queue on the worker: the scheduler's pick is
    // what runs. E has weight 3 and A weight 1: E runs 3 tasks at a time,
    // A 1, and over a stretch E finishes three times as many.
    const THREADS: usize = 4;
    // Long enough that a client seeing its results late by a round trip on
    // a loaded machine skews the counts below by a fraction of a round.
    const TASK_MS: u64 = 50;
    const EACH: u64 = 2_000;
    let cluster = cluster_of(THREADS, 1).await;
    let a = connect(&cluster, TOKEN_A).await;
    let e = connect(&cluster, TOKEN_E).await;
    let sleep_a = sleep_task(&a).await;
    let sleep_e = sleep_task(&e).await;
    let impure = Options::new().pure(false);
    // Both modules are compiled on the worker before the floods: a compile
    // under load would hold one tenant's slot for a while.
    for (client, task) in [(&a, &sleep_a), (&e, &sleep_e)] {
        let warm = client.submit_with(task, (1,), &impure).unwrap();
        assert_eq!(warm.result().await.unwrap(), 1);
    }
    let flood_a = a
        .map_with(&sleep_a, (0..EACH).map(|_| (TASK_MS,)), &impure)
        .unwrap();
    let flood_e = e
        .map_with(&sleep_e, (0..EACH).map(|_| (TASK_MS,)), &impure)
        .unwrap();
    assert_eq!(a.info().await.unwrap().tasks, EACH);
    assert_eq!(e.info().await.unwrap().tasks, EACH);

    // Whichever came first took every thread; after a few rounds the
    // shares are settled. Then count over the stretch in which A finishes
    // ROUNDS tasks.
    const ROUNDS: u64 = 20;
    let settled = || async { done(&flood_a) >= 1 && done(&flood_e) >= 2 * (E_WEIGHT + 1) };
    assert!(eventually(Duration::from_secs(60), settled).await);
    let (a0, e0) = (done(&flood_a), done(&flood_e));
    assert!(
        eventually(Duration::from_secs(60), || async {
            done(&flood_a) >= a0 + ROUNDS
        })
        .await,
        "A is starved: {} done",
        done(&flood_a)
    );
    let (a_ran, e_ran) = (done(&flood_a) - a0, done(&flood_e) - e0);
    // Exactly 3:1 but for the rounds cut at either end of the stretch; an
    // equal share would give 1:1.
    assert!(
        (E_WEIGHT - 1) * a_ran <= e_ran && e_ran <= (E_WEIGHT + 1) * a_ran,
        "weight {E_WEIGHT} ran {e_ran} tasks while weight 1 ran {a_ran}"
    );
    assert!(done(&flood_a) < EACH && done(&flood_e) < EACH);
    drop((flood_a, flood_e));
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_never_runs_more_than_its_in_flight_quota() {
    const THREADS: usize = 4;
    const TASKS: u64 = 12;
    let cluster = cluster_of(THREADS, 4).await;
    let f = connect(&cluster, TOKEN_F).await;
    let a = connect(&cluster, TOKEN_A).await;
    let sleep_f = sleep_task(&f).await;
    let sleep_a = sleep_task(&a).await;
    let impure = Options::new().pure(false);

    // F is the only tenant with work, so the workers' count of tasks in
    // flight is F's: it stays at the quota (reaching it) until all are done.
    let tasks = f
        .map_with(&sleep_f, (0..TASKS).map(|_| (20,)), &impure)
        .unwrap();
    let most = std::cell::Cell::new(0);
    let finished = eventually(Duration::from_secs(60), || async {
        let now = processing(&f).await;
        most.set(most.get().max(now));
        assert!(
            now <= F_MAX_IN_FLIGHT,
            "{now} of F's tasks in flight; its quota is {F_MAX_IN_FLIGHT}"
        );
        done(&tasks) == TASKS
    })
    .await;
    assert!(finished, "F's tasks did not finish");
    assert_eq!(
        most.get(),
        F_MAX_IN_FLIGHT,
        "F never had its quota's worth running"
    );
    assert_eq!(f.gather(&tasks).await.unwrap(), vec![20; TASKS as usize]);

    // A, without the quota, fills every thread: the count above would show
    // a quota that is not enforced.
    let tasks = a
        .map_with(&sleep_a, (0..TASKS).map(|_| (20,)), &impure)
        .unwrap();
    assert!(
        eventually(Duration::from_secs(60), || async {
            processing(&a).await >= THREADS as u64
        })
        .await
    );
    assert_eq!(a.gather(&tasks).await.unwrap(), vec![20; TASKS as usize]);
    cluster.shutdown().await;
}
