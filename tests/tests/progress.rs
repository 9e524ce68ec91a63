//! `Client::progress` over real tasks: it waits for every future and
//! counts how they ended.

use wask::{Client, LocalCluster, Progress};
use wask_tests::FAULTY;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_waits_for_all_and_counts_failures() {
    let cluster = LocalCluster::start(2).await.unwrap();
    let client = Client::connect(cluster.address()).await.unwrap();
    let faulty = client.load_module(FAULTY).await.unwrap();
    let inc = faulty.task::<(i64,), i64>("inc").unwrap();
    let ok_or_fail = faulty.task::<(i64,), i64>("ok_or_fail").unwrap();

    let mut fs = client.map(&inc, (0..200).map(|i| (i,))).unwrap();
    // ok_or_fail fails for negative numbers.
    fs.extend(client.map(&ok_or_fail, (-5..5).map(|i| (i,))).unwrap());
    let tally = client.progress(&fs).await;
    assert_eq!(
        tally,
        Progress {
            finished: 205,
            failed: 5
        }
    );
    assert!(fs.iter().all(|f| f.done()));
    assert_eq!(client.progress::<i64>(&[]).await, Progress::default());
    client.shutdown().await;
    cluster.shutdown().await;
}

#[test]
fn blocking_progress() {
    let cluster = wask::blocking::LocalCluster::start(1).unwrap();
    let client = wask::blocking::Client::connect(cluster.address()).unwrap();
    let faulty = client.load_module(FAULTY).unwrap();
    let inc = faulty.task::<(i64,), i64>("inc").unwrap();
    let fs = client.map(&inc, (0..50).map(|i| (i,))).unwrap();
    client.wait(&fs);
    assert!(fs.iter().all(|f| f.done()));
    let tally = client.progress(&fs);
    assert_eq!(tally.finished, 50);
    assert_eq!(tally.failed, 0);
}
