//! The dask Client page, end to end: real QUIC on loopback, real wasm built
//! by cargo, real wasmtime in the workers.

use std::time::Duration;
use wask::{Client, Error, LocalCluster, Options};
use wask_tests::{FAULTY, MATH, eventually, executed};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_page_session() {
    let cluster = LocalCluster::start(2).await.unwrap();
    let client = Client::connect(cluster.address()).await.unwrap();
    assert_eq!(client.info().await.unwrap().workers.len(), 2);
    let math = client.load_module(MATH).await.unwrap();
    let inc = math.task::<(i64,), i64>("inc").unwrap();
    let add = math.task::<(i64, i64), i64>("add").unwrap();
    let sum = math.task::<(Vec<i64>,), i64>("sum").unwrap();

    // submit: a pure key `inc-<32 hex>`, result() and .await
    let x = client.submit(&inc, (10,)).unwrap();
    let key = x.key();
    let hex = key
        .strip_prefix("inc-")
        .expect("key starts with the task name");
    assert_eq!(hex.len(), 32);
    assert!(hex.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(x.result().await.unwrap(), 11);
    assert!(x.done());
    assert_eq!((&x).await.unwrap(), 11);

    // map, futures and lists of futures as arguments, gather
    let l = client.map(&inc, (0..1000).map(|i| (i,))).unwrap();
    let y = client.submit(&add, (&x, 5)).unwrap();
    let total = client.submit(&sum, (&l,)).unwrap();
    assert_eq!(y.await.unwrap(), 16);
    assert_eq!(total.result().await.unwrap(), 500500);
    assert_eq!(
        client.gather(&l).await.unwrap(),
        (1..=1000).collect::<Vec<i64>>()
    );

    // keys are equal across clients (and processes: they hash only the call)
    let other = Client::connect(cluster.address()).await.unwrap();
    let math2 = other.load_module(MATH).await.unwrap();
    let inc2 = math2.task::<(i64,), i64>("inc").unwrap();
    let x2 = other.submit(&inc2, (10,)).unwrap();
    assert_eq!(x2.key(), key);
    assert_eq!(x2.result().await.unwrap(), 11);

    // pure: identical calls share one key and one execution
    let before = executed(&client).await;
    let a = client.submit(&inc, (12345,)).unwrap();
    let b = client.submit(&inc, (12345,)).unwrap();
    assert_eq!(a.key(), b.key());
    assert_eq!(a.result().await.unwrap(), 12346);
    assert_eq!(b.result().await.unwrap(), 12346);
    assert_eq!(executed(&client).await - before, 1);

    // pure(false): a uuid4 key, computed each time
    let impure = Options::new().pure(false);
    let r1 = client.submit_with(&inc, (1,), &impure).unwrap();
    let r2 = client.submit_with(&inc, (1,), &impure).unwrap();
    assert_ne!(r1.key(), r2.key());
    let u = r1.key().strip_prefix("inc-").unwrap().to_string();
    assert_eq!(u.len(), 36);
    assert_eq!(&u[14..15], "4", "uuid version 4: {u}");
    assert_eq!(client.gather(&[r1, r2]).await.unwrap(), vec![2, 2]);

    // as_completed yields every future once
    let fs = client.map(&inc, (0..20).map(|i| (i,))).unwrap();
    let mut done = client.as_completed(fs.clone());
    let mut n = 0;
    while let Some(f) = done.next().await {
        assert!(f.done());
        n += 1;
    }
    assert_eq!(n, 20);
    cluster.shutdown().await;
}

async fn held(c: &Client) -> u64 {
    c.info()
        .await
        .unwrap()
        .workers
        .iter()
        .map(|w| w.held_keys)
        .sum()
}

async fn held_becomes(c: &Client, want: u64) -> bool {
    eventually(Duration::from_secs(10), || async { held(c).await == want }).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_last_future_releases_the_result() {
    let cluster = LocalCluster::start(2).await.unwrap();
    let client = Client::connect(cluster.address()).await.unwrap();
    let math = client.load_module(MATH).await.unwrap();
    let inc = math.task::<(i64,), i64>("inc").unwrap();
    let sum = math.task::<(Vec<i64>,), i64>("sum").unwrap();

    let l = client.map(&inc, (0..100).map(|i| (i,))).unwrap();
    let total = client.submit(&sum, (&l,)).unwrap();
    assert_eq!(total.result().await.unwrap(), 5050);
    assert_eq!(held(&client).await, 101);
    // The inputs are held by their futures; dropping them frees them on the
    // workers, while the dependent's result stays.
    drop(l);
    assert!(
        held_becomes(&client, 1).await,
        "inputs not released: {}",
        held(&client).await
    );
    let clone = total.clone();
    drop(total);
    assert_eq!(held(&client).await, 1, "a clone still holds the key");
    drop(clone);
    assert!(
        held_becomes(&client, 0).await,
        "result not released: {}",
        held(&client).await
    );
    // A released pure key is computed again on the next submit.
    let before = executed(&client).await;
    let again = client.submit(&inc, (0,)).unwrap();
    assert_eq!(again.result().await.unwrap(), 1);
    assert_eq!(executed(&client).await - before, 1);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_at_the_call() {
    let cluster = LocalCluster::start(1).await.unwrap();
    let client = Client::connect(cluster.address()).await.unwrap();
    let math = client.load_module(MATH).await.unwrap();
    match math.task::<(i64,), i64>("nope") {
        Err(Error::UnknownTask { name, available }) => {
            assert_eq!(name, "nope");
            assert!(available.contains("inc(i64) -> i64"), "{available}");
        }
        other => panic!("expected UnknownTask, got {other:?}"),
    }
    match math.task::<(String,), i64>("inc") {
        Err(Error::SignatureMismatch {
            declared,
            requested,
            ..
        }) => {
            assert_eq!(declared, "inc(i64) -> i64");
            assert_eq!(requested, "inc(String) -> i64");
        }
        other => panic!("expected SignatureMismatch, got {other:?}"),
    }
    assert!(matches!(
        math.task::<(i64,), String>("inc"),
        Err(Error::SignatureMismatch { .. })
    ));
    match client.load_module_bytes(b"\0asm garbage".to_vec()).await {
        Err(Error::ModuleRefused(m)) => assert!(m.contains("invalid wasm"), "{m}"),
        other => panic!("expected ModuleRefused, got {other:?}"),
    }
    cluster.shutdown().await;
}

#[test]
fn blocking_client() {
    let cluster = wask::blocking::LocalCluster::start(2).unwrap();
    let client = wask::blocking::Client::connect(cluster.address()).unwrap();
    let math = client.load_module(MATH).unwrap();
    let inc = math.task::<(i64,), i64>("inc").unwrap();
    let sum = math.task::<(Vec<i64>,), i64>("sum").unwrap();
    let x = client.submit(&inc, (10,)).unwrap();
    assert_eq!(x.result().unwrap(), 11);
    let l = client.map(&inc, (0..10).map(|i| (i,))).unwrap();
    let t = client.submit(&sum, (&l,)).unwrap();
    assert_eq!(t.result().unwrap(), 55);
    assert_eq!(client.gather(&l).unwrap(), (1..=10).collect::<Vec<i64>>());
    let y = client.submit(&inc, (&x,)).unwrap();
    assert_eq!(y.result().unwrap(), 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_the_scheduler_fails_pending_futures() {
    let cluster = LocalCluster::start(1).await.unwrap();
    let client = Client::connect(cluster.address()).await.unwrap();
    let math = client.load_module(MATH).await.unwrap();
    let busy = math.task::<(u64, u64), u64>("busy").unwrap();
    let slow = client.submit(&busy, (1, 50_000_000_000)).unwrap();
    cluster.shutdown().await;
    match slow.result().await {
        Err(Error::ConnectionLost(_)) => {}
        other => panic!("expected ConnectionLost, got {other:?}"),
    }
    let inc = math.task::<(i64,), i64>("inc").unwrap();
    assert!(matches!(
        client.submit(&inc, (1,)),
        Err(Error::ConnectionLost(_))
    ));
}

async fn uploads(c: &Client) -> u64 {
    c.info().await.unwrap().module_uploads
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_module_is_uploaded_once() {
    let cluster = LocalCluster::start(1).await.unwrap();
    let first = Client::connect(cluster.address()).await.unwrap();
    assert_eq!(uploads(&first).await, 0);
    let math = first.load_module(MATH).await.unwrap();
    assert_eq!(uploads(&first).await, 1);

    // Again from the same client, then from another one: the scheduler has
    // the hash, so nothing is sent, and the handles work.
    let again = first.load_module(MATH).await.unwrap();
    let second = Client::connect(cluster.address()).await.unwrap();
    let theirs = second.load_module(MATH).await.unwrap();
    assert_eq!(uploads(&first).await, 1);
    assert_eq!(uploads(&second).await, 1);
    for (client, module) in [(&first, &math), (&first, &again), (&second, &theirs)] {
        let inc = module.task::<(i64,), i64>("inc").unwrap();
        assert_eq!(client.submit(&inc, (1,)).unwrap().await.unwrap(), 2);
    }

    // A module the scheduler lacks is uploaded: the count does move.
    second.load_module(FAULTY).await.unwrap();
    assert_eq!(uploads(&first).await, 2);
    cluster.shutdown().await;
}

/// Tasks assigned to the workers and not finished.
async fn processing(c: &Client) -> u64 {
    c.info()
        .await
        .unwrap()
        .workers
        .iter()
        .map(|w| w.processing)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn done_is_false_until_the_task_ends() {
    let cluster = LocalCluster::builder().workers(1).start().await.unwrap();
    let client = Client::connect(cluster.address()).await.unwrap();
    let faulty = client.load_module(FAULTY).await.unwrap();
    let spin = faulty.task::<(), u64>("spin").unwrap();
    let inc = faulty.task::<(i64,), i64>("inc").unwrap();
    // Runs until cancelled: the limit is far longer than the test.
    let running = client
        .submit_with(
            &spin,
            (),
            &Options::new().timeout(Duration::from_secs(600)).pure(false),
        )
        .unwrap();
    assert!(
        eventually(Duration::from_secs(30), || async {
            processing(&client).await == 1
        })
        .await,
        "the spinning task never reached the worker"
    );
    // done() read between two answers of the scheduler that both have the
    // task running, so it was running when done() answered.
    let done = running.done();
    assert_eq!(processing(&client).await, 1);
    assert!(!done, "done() while the task runs");
    assert!(running.exception().is_none());
    // Behind it, the only thread is busy: not done either, after a round
    // trip that has the scheduler dispatch it.
    let queued = client.submit(&inc, (7,)).unwrap();
    assert!(processing(&client).await >= 1);
    assert!(!queued.done());

    running.cancel();
    assert_eq!(queued.result().await.unwrap(), 8);
    assert!(queued.done());
    assert!(running.done());
    cluster.shutdown().await;
}
