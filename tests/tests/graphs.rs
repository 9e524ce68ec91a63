//! Task graphs end to end: `Delayed` calls computed and persisted on a real
//! embedded cluster, real wasm, real QUIC.

use std::time::Duration;
use wask::{Bag, Client, Delayed, Error, LocalCluster, Task, TaskError};
use wask_tests::{FAULTY, MATH, eventually, executed};

const SETTLE: Duration = Duration::from_secs(30);

/// A cluster of two workers, a client, and math's `inc`, `add` and `sum`.
struct Arith {
    cluster: LocalCluster,
    client: Client,
    inc: Task<(i64,), i64>,
    add: Task<(i64, i64), i64>,
    sum: Task<(Vec<i64>,), i64>,
}

async fn arith() -> Arith {
    let cluster = LocalCluster::start(2).await.unwrap();
    let client = Client::connect(cluster.address()).await.unwrap();
    let math = client.load_module(MATH).await.unwrap();
    Arith {
        inc: math.task("inc").unwrap(),
        add: math.task("add").unwrap(),
        sum: math.task("sum").unwrap(),
        cluster,
        client,
    }
}

async fn tasks(client: &Client) -> u64 {
    client.info().await.unwrap().tasks
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compute_a_graph_and_forget_what_is_in_between() {
    let Arith {
        cluster,
        client,
        inc,
        add,
        sum,
    } = arith().await;

    let xs: Vec<Delayed<i64>> = (0..10).map(|i| inc.delay((i,)).unwrap()).collect();
    let total = sum.delay((&xs,)).unwrap();
    let both = add.delay((&total, &xs[0])).unwrap();
    // Building sends nothing.
    assert_eq!(tasks(&client).await, 0);
    assert_eq!(executed(&client).await, 0);

    let f = client.compute(&both).unwrap();
    assert_eq!(f.key(), both.key());
    assert_eq!(f.result().await.unwrap(), 56);
    // 10 incs, a sum and an add, each once (xs[0] is used twice).
    assert_eq!(executed(&client).await, 12);
    // Only the output stays; the 11 calls in between are forgotten once
    // the tasks needing them have run.
    assert!(eventually(SETTLE, || async { tasks(&client).await == 1 }).await);
    drop(f);
    assert!(eventually(SETTLE, || async { tasks(&client).await == 0 }).await);

    // A delayed call has the key submit gives the same call.
    let before = executed(&client).await;
    let d = inc.delay((10,)).unwrap();
    let s = client.submit(&inc, (10,)).unwrap();
    assert_eq!(d.key(), s.key());
    assert!(d.key().starts_with("inc-"));
    // Computing it while the future is held reuses the result.
    assert_eq!(s.result().await.unwrap(), 11);
    assert_eq!(client.compute(&d).unwrap().result().await.unwrap(), 11);
    assert_eq!(executed(&client).await, before + 1);

    // Computing a held output again sends nothing: not the output, nor the
    // calls under it, forgotten since.
    let deep = inc
        .delay((&inc.delay((&inc.delay((1,)).unwrap(),)).unwrap(),))
        .unwrap();
    let first = client.compute(&deep).unwrap();
    assert_eq!(first.result().await.unwrap(), 4);
    // Held: inc(10) (by `s`) and the output; the two calls under it go.
    assert!(eventually(SETTLE, || async { tasks(&client).await == 2 }).await);
    let ran = executed(&client).await;
    let again = client.compute(&deep).unwrap();
    assert_eq!(again.key(), first.key());
    // `info` answers after the scheduler has read whatever compute sent.
    assert_eq!(tasks(&client).await, 2);
    assert_eq!(again.result().await.unwrap(), 4);
    assert_eq!(executed(&client).await, ran);

    client.shutdown().await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persist_shares_and_deep_chains() {
    let Arith {
        cluster,
        client,
        inc,
        add,
        sum,
    } = arith().await;

    // persist: the result stays on the cluster; later graphs start from it.
    let xs: Vec<Delayed<i64>> = (0..100).map(|i| inc.delay((i,)).unwrap()).collect();
    let total = client.persist(&sum.delay((&xs,)).unwrap()).unwrap();
    assert!(total.is_persisted());
    let plus_one = client.compute(&add.delay((&total, 1)).unwrap()).unwrap();
    assert_eq!(plus_one.result().await.unwrap(), 5051);
    let twice = client
        .compute(&add.delay((&total, &total)).unwrap())
        .unwrap();
    assert_eq!(twice.result().await.unwrap(), 10100);
    // 100 incs and the sum once, then the two adds.
    assert_eq!(executed(&client).await, 103);

    // compute_all shares what the outputs have in common, in one message.
    let base = inc.delay((1000,)).unwrap();
    let outs: Vec<Delayed<i64>> = (0..5).map(|i| add.delay((&base, i)).unwrap()).collect();
    let fs = client.compute_all(&outs).unwrap();
    assert_eq!(
        client.gather(&fs).await.unwrap(),
        vec![1001, 1002, 1003, 1004, 1005]
    );
    assert_eq!(executed(&client).await, 103 + 6);

    // A chain of 2000 dependent calls, built and submitted in one go.
    let mut last = inc.delay((0,)).unwrap();
    for _ in 1..2000 {
        last = inc.delay((&last,)).unwrap();
    }
    let f = client.compute(&last).unwrap();
    assert_eq!(f.result().await.unwrap(), 2000);
    drop((f, fs, plus_one, twice, total));
    assert!(eventually(SETTLE, || async { tasks(&client).await == 0 }).await);

    // A delayed call as an argument of submit and map: it goes along.
    let d = inc.delay((41,)).unwrap();
    let f = client.submit(&inc, (&d,)).unwrap();
    assert_eq!(f.result().await.unwrap(), 43);
    let fs = client.map(&add, (0..3).map(|i| (d.clone(), i))).unwrap();
    assert_eq!(client.gather(&fs).await.unwrap(), vec![42, 43, 44]);
    // A future as a delayed value.
    let held: Delayed<i64> = (&f).into();
    assert!(held.is_persisted());
    let g = client.compute(&inc.delay((&held,)).unwrap()).unwrap();
    assert_eq!(g.result().await.unwrap(), 44);

    client.shutdown().await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_call_fails_the_graph_with_its_cause() {
    let cluster = LocalCluster::start(1).await.unwrap();
    let client = Client::connect(cluster.address()).await.unwrap();
    let faulty = client.load_module(FAULTY).await.unwrap();
    let boom = faulty.task::<(String,), i64>("boom").unwrap();
    let inc = faulty.task::<(i64,), i64>("inc").unwrap();

    let bad = boom.delay(("graph".to_string(),)).unwrap();
    let after = inc.delay((&inc.delay((&bad,)).unwrap(),)).unwrap();
    let f = client.compute(&after).unwrap();
    match f.result().await {
        Err(Error::Task {
            error: TaskError::DependencyFailed { key, cause },
            ..
        }) => {
            assert_eq!(key, bad.key());
            assert!(
                matches!(&*cause, TaskError::Panic { message } if message.contains("graph")),
                "{cause:?}"
            );
        }
        other => panic!("expected a dependency failure, got {other:?}"),
    }

    // A delayed call of a module another client loaded is refused at once.
    let other = Client::connect(cluster.address()).await.unwrap();
    match other.compute(&after) {
        Err(Error::ModuleRefused(m)) => assert!(m.contains("another client"), "{m}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    other.shutdown().await;
    client.shutdown().await;
    cluster.shutdown().await;
}

#[test]
fn blocking_compute_and_persist() {
    let cluster = wask::blocking::LocalCluster::start(1).unwrap();
    let client = wask::blocking::Client::connect(cluster.address()).unwrap();
    let math = client.load_module(MATH).unwrap();
    let inc = math.task::<(i64,), i64>("inc").unwrap();
    let double = math.task::<(i64,), i64>("double").unwrap();
    let x = client.persist(&inc.delay((20,)).unwrap()).unwrap();
    let y = client.compute(&double.delay((&x,)).unwrap()).unwrap();
    assert_eq!(y.result().unwrap(), 42);
    let all = client
        .compute_all(&[double.delay((&x,)).unwrap(), inc.delay((&x,)).unwrap()])
        .unwrap();
    assert_eq!(client.gather(&all).unwrap(), vec![42, 22]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bags_map_reduce_persist_and_gather() {
    let cluster = LocalCluster::start(2).await.unwrap();
    let client = Client::connect(cluster.address()).await.unwrap();
    let math = client.load_module(MATH).await.unwrap();
    let range = math.task::<(i64, i64), Vec<i64>>("range").unwrap();
    let squares = math.task::<(Vec<i64>,), Vec<i64>>("squares").unwrap();
    let sum = math.task::<(Vec<i64>,), i64>("sum").unwrap();

    let parts = (0..20)
        .map(|p| range.delay((p * 100, (p + 1) * 100)))
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let bag = Bag::from_delayed(parts);
    assert_eq!(bag.npartitions(), 20);
    let sq = bag.map_partitions(&squares).unwrap();
    let expected: i64 = (0..2000i64).map(|x| x * x).sum();
    // 20 per-partition sums, then 5 and 2 and 1 aggregates (fan-in 4).
    let total = sq.reduction(&sum, &sum, 4).unwrap();
    assert_eq!(client.compute(&total).unwrap().await.unwrap(), expected);
    assert_eq!(executed(&client).await, 20 + 20 + 20 + 5 + 2 + 1);

    // persist: the squares stay on the cluster (computed again here: the
    // first reduction's were forgotten), and reductions reuse them.
    let kept = sq.persist(&client).unwrap();
    assert!(kept.partitions().iter().all(|p| p.is_persisted()));
    let again = kept.reduction(&sum, &sum, 8).unwrap();
    assert_eq!(client.compute(&again).unwrap().await.unwrap(), expected);
    // 20 ranges and 20 squares for persist; 20 sums, 3 + 1 aggregates.
    assert_eq!(executed(&client).await, 68 + 40 + 20 + 3 + 1);
    let third = kept.reduction(&sum, &sum, 20).unwrap();
    assert_eq!(client.compute(&third).unwrap().await.unwrap(), expected);
    // No range or square again: 20 sums and one aggregate.
    assert_eq!(executed(&client).await, 132 + 20 + 1);
    let all = kept.gather(&client).await.unwrap();
    assert_eq!(all, (0..2000i64).map(|x| x * x).collect::<Vec<_>>());

    // A single partition is aggregated once too; bad reductions are refused.
    let one = Bag::from_delayed(vec![range.delay((1, 4)).unwrap()]);
    let r = one.reduction(&sum, &sum, 8).unwrap();
    assert_eq!(client.compute(&r).unwrap().await.unwrap(), 6);
    let empty: Bag<i64> = Bag::from_delayed(Vec::new());
    assert!(matches!(
        empty.reduction(&sum, &sum, 8),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        one.reduction(&sum, &sum, 1),
        Err(Error::InvalidArgument(_))
    ));
    client.shutdown().await;
    cluster.shutdown().await;
}
