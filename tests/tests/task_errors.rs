//! Every way a task can fail gives its typed error, dependents fail with the
//! root cause, and the same worker goes on serving.

use std::time::Duration;
use wask::{Client, Error, LocalCluster, Options, TaskError};
use wask_tests::FAULTY;

fn task_error<T: std::fmt::Debug>(r: Result<T, Error>) -> TaskError {
    match r {
        Err(Error::Task { error, .. }) => error,
        other => panic!("expected a task error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_typed_and_the_worker_keeps_serving() {
    // One worker of one thread: every task below runs in the same worker.
    let cluster = LocalCluster::start(1).await.unwrap();
    let client = Client::connect(cluster.address()).await.unwrap();
    let m = client.load_module(FAULTY).await.unwrap();
    let inc = m.task::<(i64,), i64>("inc").unwrap();
    let still_serving = |n: i64| {
        let f = client.submit(&inc, (n,)).unwrap();
        async move { assert_eq!(f.result().await.unwrap(), n + 1) }
    };

    let boom = m.task::<(String,), i64>("boom").unwrap();
    match task_error(
        client
            .submit(&boom, ("kaboom".to_string(),))
            .unwrap()
            .result()
            .await,
    ) {
        TaskError::Panic { message } => assert!(message.contains("kaboom"), "{message}"),
        e => panic!("expected a panic, got {e:?}"),
    }
    still_serving(1).await;

    let fail = m.task::<(String,), i64>("fail").unwrap();
    assert_eq!(
        task_error(
            client
                .submit(&fail, ("no luck".to_string(),))
                .unwrap()
                .result()
                .await
        ),
        TaskError::Failed {
            message: "no luck".into()
        }
    );

    let divide = m.task::<(i32, i32), i32>("divide").unwrap();
    match task_error(client.submit(&divide, (1, 0)).unwrap().result().await) {
        TaskError::Panic { message } => assert!(message.contains("divide by zero"), "{message}"),
        e => panic!("expected a panic, got {e:?}"),
    }
    assert_eq!(
        client
            .submit(&divide, (9, 3))
            .unwrap()
            .result()
            .await
            .unwrap(),
        3
    );

    let spin = m.task::<(), u64>("spin").unwrap();
    let limited = Options::new().timeout(Duration::from_millis(300));
    assert_eq!(
        task_error(
            client
                .submit_with(&spin, (), &limited)
                .unwrap()
                .result()
                .await
        ),
        TaskError::Timeout { limit_ms: 300 }
    );
    still_serving(2).await;

    let grow = m.task::<(u64,), u64>("grow").unwrap();
    let small = Options::new().memory_limit(32 << 20);
    assert_eq!(
        task_error(
            client
                .submit_with(&grow, (1 << 20,), &small)
                .unwrap()
                .result()
                .await
        ),
        TaskError::MemoryLimit {
            limit_bytes: 32 << 20
        }
    );
    still_serving(3).await;

    let recurse = m.task::<(u64,), u64>("recurse").unwrap();
    assert_eq!(
        task_error(client.submit(&recurse, (0,)).unwrap().result().await),
        TaskError::StackOverflow
    );
    still_serving(4).await;
    // Big frames exhaust Rust's shadow stack (in linear memory) first; the
    // sandbox recognises that too.
    let recurse_big = m.task::<(u64,), u64>("recurse_big").unwrap();
    assert_eq!(
        task_error(client.submit(&recurse_big, (0,)).unwrap().result().await),
        TaskError::StackOverflow
    );
    still_serving(40).await;

    let sleep = m.task::<(u64,), u64>("sleep_ms").unwrap();
    assert_eq!(
        task_error(
            client
                .submit_with(&sleep, (3_600_000,), &limited)
                .unwrap()
                .result()
                .await
        ),
        TaskError::Timeout { limit_ms: 300 }
    );
    still_serving(5).await;

    // A dependent of a failed task fails with the root cause, naming it.
    let ok_or_fail = m.task::<(i64,), i64>("ok_or_fail").unwrap();
    let bad = client.submit(&ok_or_fail, (-1,)).unwrap();
    let child = client.submit(&inc, (&bad,)).unwrap();
    let grandchild = client.submit(&inc, (&child,)).unwrap();
    match task_error(grandchild.result().await) {
        TaskError::DependencyFailed { key, cause } => {
            assert_eq!(key, bad.key());
            assert!(matches!(*cause, TaskError::Failed { .. }), "{cause:?}");
        }
        e => panic!("expected DependencyFailed, got {e:?}"),
    }
    still_serving(6).await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_queued_and_running_tasks() {
    let cluster = LocalCluster::start(1).await.unwrap();
    let client = Client::connect(cluster.address()).await.unwrap();
    let m = client.load_module(FAULTY).await.unwrap();
    let spin = m.task::<(), u64>("spin").unwrap();
    let inc = m.task::<(i64,), i64>("inc").unwrap();
    let sleep = m.task::<(u64,), u64>("sleep_ms").unwrap();
    // A limit far longer than the test: only a real cancel frees the thread.
    let limited = Options::new().timeout(Duration::from_secs(600)).pure(false);
    // Occupy the only thread, then queue a task and its dependent.
    let blocker = client.submit_with(&spin, (), &limited).unwrap();
    let queued = client
        .submit_with(&sleep, (1,), &Options::new().pure(false))
        .unwrap();
    let after = client.submit(&inc, (7,)).unwrap();
    queued.cancel();
    assert!(matches!(
        queued.result().await,
        Err(Error::Cancelled { .. })
    ));
    client.cancel(std::slice::from_ref(&blocker));
    assert!(matches!(
        blocker.result().await,
        Err(Error::Cancelled { .. })
    ));
    // The worker's only thread is free again long before the blocker's limit.
    let next = tokio::time::timeout(Duration::from_secs(60), after.result()).await;
    assert_eq!(
        next.expect("the cancelled run still holds the thread")
            .unwrap(),
        8
    );
    cluster.shutdown().await;
}
