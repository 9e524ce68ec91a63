//! `Client::scatter`, end to end: values from the client held on the
//! workers as futures, used as arguments, deduplicated, released, refused
//! when too large, lost with their worker or on their way to it; and
//! uploads nobody asked for refused with an error code.

use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;
use wask::{Client, ClusterInfo, Error, LocalCluster, Options, SchedulerAddress, TaskError};
use wask_net::Identity;
use wask_net::framed::{self, FrameReader};
use wask_proto::frame;
use wask_proto::key::data_key_id;
use wask_proto::limits::{INLINE_VALUE_MAX, MAX_FRAME, MAX_PAYLOAD};
use wask_proto::msg::{
    ClientEvent, ClientRequest, DataValue, ScatterSpec, StreamHeader, WorkerCommand, WorkerRequest,
};
use wask_scheduler::server::{OpenAccess, Scheduler, SchedulerConfig};
use wask_scheduler::state::CoreConfig;
use wask_tests::raw::RawClient;
use wask_tests::{MATH, eventually};
use wask_worker::sandbox::SandboxConfig;
use wask_worker::server::{Worker, WorkerConfig};

const BOUND: Duration = Duration::from_secs(30);

async fn info(c: &Client) -> ClusterInfo {
    c.info().await.unwrap()
}

/// (held keys, held bytes) over all workers.
async fn held(c: &Client) -> (u64, u64) {
    let i = info(c).await;
    (
        i.workers.iter().map(|w| w.held_keys).sum(),
        i.workers.iter().map(|w| w.held_bytes).sum(),
    )
}

/// A vector whose postcard encoding is larger than an inline value, so it
/// travels on data streams.
fn large_vec(seed: i64) -> Vec<i64> {
    (0..40_000).map(|i| i * 1000 + seed).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scattered_values_are_futures() {
    let cluster = LocalCluster::start(2).await.unwrap();
    let client = Client::connect(cluster.address()).await.unwrap();
    let math = client.load_module(MATH).await.unwrap();
    let inc = math.task::<(i64,), i64>("inc").unwrap();
    let sum = math.task::<(Vec<i64>,), i64>("sum").unwrap();

    // scatter, then result() and .await
    let x = client.scatter(&41i64).unwrap();
    // The key hashes the postcard bytes (41 is the zigzag varint 82).
    assert_eq!(x.key(), format!("data-{}", data_key_id(&[82]).hex()));
    assert_eq!(&x.result_bytes().await.unwrap()[..], &[82]);
    assert_eq!(x.result().await.unwrap(), 41);
    assert!(x.done());
    assert_eq!((&x).await.unwrap(), 41);

    // as an argument: the task runs where the data is
    assert_eq!(client.submit(&inc, (&x,)).unwrap().await.unwrap(), 42);
    let v: Vec<i64> = (1..=100).collect();
    let fv = client.scatter(&v).unwrap();
    assert_eq!(client.submit(&sum, (&fv,)).unwrap().await.unwrap(), 5050);
    // large data, on data streams both ways
    let big = large_vec(7);
    let fbig = client.scatter(&big).unwrap();
    let encoded = fbig.result_bytes().await.unwrap();
    assert!(encoded.len() > INLINE_VALUE_MAX);
    assert_eq!(fbig.key(), format!("data-{}", data_key_id(&encoded).hex()));
    assert_eq!(
        client.submit(&sum, (&fbig,)).unwrap().await.unwrap(),
        big.iter().sum::<i64>()
    );
    assert_eq!(fbig.result().await.unwrap(), big);

    // the scatter future dropped right after the submit that needs it
    let total = client
        .submit(&sum, (&client.scatter(&vec![5i64; 10]).unwrap(),))
        .unwrap();
    assert_eq!(total.await.unwrap(), 50);

    // scatter_many, map over the futures, gather
    let xs = client.scatter_many(0..50i64).unwrap();
    assert_eq!(xs.len(), 50);
    let ys = client.map(&inc, xs.iter().map(|f| (f,))).unwrap();
    assert_eq!(
        client.gather(&ys).await.unwrap(),
        (1..=50).collect::<Vec<i64>>()
    );
    assert_eq!(
        client.gather(&xs).await.unwrap(),
        (0..50).collect::<Vec<i64>>()
    );
    // a list of scattered futures as one argument
    assert_eq!(
        client.submit(&sum, (&xs,)).unwrap().await.unwrap(),
        (0..50).sum::<i64>()
    );
    // equal values share a key and a future
    let dup = client.scatter_many([3i64, 4, 3]).unwrap();
    assert_eq!(dup[0].key(), dup[2].key());
    assert_ne!(dup[0].key(), dup[1].key());
    assert_eq!(client.gather(&dup).await.unwrap(), vec![3, 4, 3]);
    cluster.shutdown().await;
}

#[test]
fn blocking_client_scatters() {
    let cluster = wask::blocking::LocalCluster::start(1).unwrap();
    let client = wask::blocking::Client::connect(cluster.address()).unwrap();
    let math = client.load_module(MATH).unwrap();
    let sum = math.task::<(Vec<i64>,), i64>("sum").unwrap();
    let inc = math.task::<(i64,), i64>("inc").unwrap();
    let v = client.scatter(&vec![1i64, 2, 3]).unwrap();
    assert_eq!(v.result().unwrap(), vec![1, 2, 3]);
    assert_eq!(client.submit(&sum, (&v,)).unwrap().result().unwrap(), 6);
    let xs = client.scatter_many([10i64, 20]).unwrap();
    let ys = client.map(&inc, xs.iter().map(|f| (f,))).unwrap();
    assert_eq!(client.gather(&ys).unwrap(), vec![11, 21]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn equal_data_is_uploaded_once_per_tenant() {
    let a = "scatter-token-a";
    let b = "scatter-token-b";
    let config = format!(
        "[[tenant]]\nname = \"a\"\ntoken_blake3 = \"{}\"\n\n[[tenant]]\nname = \"b\"\ntoken_blake3 = \"{}\"\n",
        wask_scheduler::tenants::hash_token(a),
        wask_scheduler::tenants::hash_token(b),
    );
    let cluster = LocalCluster::builder()
        .workers(2)
        .tenants(config)
        .start()
        .await
        .unwrap();
    let connect = |token: &'static str| {
        let address = cluster.address();
        async move {
            Client::builder(address)
                .token(token)
                .connect()
                .await
                .unwrap()
        }
    };
    let (a1, a2, b1) = (connect(a).await, connect(a).await, connect(b).await);
    let uploads = |c: Client| async move { info(&c).await.data_uploads };
    let big = large_vec(1);

    let x = a1.scatter(&big).unwrap();
    assert_eq!(x.result().await.unwrap(), big);
    assert_eq!(uploads(a1.clone()).await, 1);
    // Again from the same client, and from another client of the tenant:
    // the same key, nothing uploaded.
    let again = a1.scatter(&big).unwrap();
    let theirs = a2.scatter(&big).unwrap();
    assert_eq!((again.key(), theirs.key()), (x.key(), x.key()));
    assert_eq!(theirs.result().await.unwrap(), big);
    assert_eq!(uploads(a2.clone()).await, 1);
    assert_eq!(held(&a1).await.0, 1, "one copy on the workers");
    // Small values too.
    let s1 = a1.scatter(&"small".to_string()).unwrap();
    s1.wait().await.unwrap();
    let s2 = a2.scatter(&"small".to_string()).unwrap();
    assert_eq!(s2.result().await.unwrap(), "small");
    assert_eq!(uploads(a1.clone()).await, 2);

    // Another tenant with the same bytes: the same key string, its own
    // upload and copy, and no trace of A's.
    assert_eq!(info(&b1).await.data_uploads, 0);
    assert_eq!(info(&b1).await.tasks, 0);
    let y = b1.scatter(&big).unwrap();
    assert_eq!(y.key(), x.key());
    assert_eq!(y.result().await.unwrap(), big);
    assert_eq!(info(&b1).await.data_uploads, 1);
    assert_eq!(held(&b1).await.0, 3, "A's two keys and B's one");
    // Releasing A's copy does not touch B's.
    drop((x, again, theirs));
    assert!(
        eventually(BOUND, || async { held(&a1).await.0 == 2 }).await,
        "A's data was not released"
    );
    assert_eq!(y.result().await.unwrap(), big);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_last_future_forgets_the_data() {
    let cluster = LocalCluster::start(2).await.unwrap();
    let client = Client::connect(cluster.address()).await.unwrap();
    assert_eq!(held(&client).await, (0, 0));
    let big = large_vec(3);
    let x = client.scatter(&big).unwrap();
    x.wait().await.unwrap();
    let nbytes = x.result_bytes().await.unwrap().len() as u64;
    assert_eq!(held(&client).await, (1, nbytes));
    assert_eq!(info(&client).await.tasks, 1);
    let clone = x.clone();
    drop(x);
    assert_eq!(held(&client).await, (1, nbytes), "a clone still holds it");
    drop(clone);
    assert!(
        eventually(BOUND, || async {
            held(&client).await == (0, 0) && info(&client).await.tasks == 0
        })
        .await,
        "data not forgotten: {:?}",
        held(&client).await
    );
    // Scattered again once forgotten: uploaded again.
    let x = client.scatter(&big).unwrap();
    assert_eq!(x.result().await.unwrap(), big);
    assert_eq!(info(&client).await.data_uploads, 2);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_large_data_is_refused() {
    let cluster = LocalCluster::builder()
        .workers(1)
        .memory_limit(100_000)
        .start()
        .await
        .unwrap();
    let client = Client::connect(cluster.address()).await.unwrap();

    // Over the payload limit: refused at the call, nothing sent. (Zeroed
    // pages nobody writes cost no memory, and the encoder stops at the
    // limit.)
    let huge = Bytes::from(vec![0u8; MAX_PAYLOAD]);
    match client.scatter(&huge) {
        Err(Error::DataTooLarge { size, max }) => {
            assert_eq!(max, MAX_PAYLOAD as u64);
            assert!(size > max, "{size}");
        }
        other => panic!("expected DataTooLarge, got {other:?}"),
    }
    assert_eq!(info(&client).await.tasks, 0);

    // Over the worker's memory limit: refused by the worker.
    let big = client.scatter(&large_vec(5)).unwrap();
    match big.result().await {
        Err(Error::Task {
            error: TaskError::WorkerFull { .. },
            ..
        }) => {}
        other => panic!("expected WorkerFull, got {other:?}"),
    }
    // Within it: held.
    assert_eq!(client.scatter(&7i64).unwrap().await.unwrap(), 7);

    // The scheduler checks the size again, whatever the client says.
    let mut raw = RawClient::connect(&cluster.address(), None).await;
    let key = data_key_id(b"whatever");
    let spec = ScatterSpec {
        key,
        nbytes: MAX_PAYLOAD as u64 + 1,
    };
    match raw.ask(ClientRequest::Scatter(vec![spec])).await {
        ClientEvent::Erred {
            key: k,
            error: TaskError::DataTooLarge { size, max },
        } => {
            assert_eq!(
                (k, size, max),
                (key, MAX_PAYLOAD as u64 + 1, MAX_PAYLOAD as u64)
            );
        }
        other => panic!("expected DataTooLarge, got {other:?}"),
    }
    let next = tokio::time::timeout(BOUND, raw.reader.next::<ClientEvent>()).await;
    assert!(
        matches!(&next, Ok(Ok(Some(ClientEvent::DataNotNeeded(keys)))) if keys == &[key]),
        "{next:?}"
    );
    cluster.shutdown().await;
}

/// Waits until `raw`'s connection is closed and returns its close code.
async fn close_code(raw: &RawClient) -> u64 {
    match tokio::time::timeout(BOUND, raw.conn.closed()).await {
        Ok(quinn::ConnectionError::ApplicationClosed(c)) => c.error_code.into_inner(),
        other => panic!("expected an application close, got {other:?}"),
    }
}

/// Announces `value` from a raw client and waits for the request to
/// upload it.
async fn announce(raw: &mut RawClient, value: &[u8]) -> wask_proto::KeyId {
    let key = data_key_id(value);
    let spec = ScatterSpec {
        key,
        nbytes: value.len() as u64,
    };
    match raw.ask(ClientRequest::Scatter(vec![spec])).await {
        ClientEvent::SendData(keys) => assert_eq!(keys, [key]),
        other => panic!("expected SendData, got {other:?}"),
    }
    key
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_nobody_asked_for_close_the_connection() {
    let cluster = LocalCluster::start(1).await.unwrap();
    let address = cluster.address();
    let protocol = wask_net::codes::PROTOCOL.into_inner();

    // Inline data for a key never announced.
    let mut raw = RawClient::connect(&address, None).await;
    let value = Bytes::from_static(b"not asked");
    let stray = DataValue {
        key: data_key_id(&value),
        value,
    };
    raw.tell(ClientRequest::Data(vec![stray])).await;
    assert_eq!(close_code(&raw).await, protocol);

    // A data stream for a key never announced.
    let raw = RawClient::connect(&address, None).await;
    let header = StreamHeader::Scatter {
        key: data_key_id(b"x"),
    };
    let _ = wask_net::data::send(&raw.conn, &header, Bytes::from_static(b"x")).await;
    assert_eq!(close_code(&raw).await, protocol);

    // Bytes that do not hash to the announced key.
    let mut raw = RawClient::connect(&address, None).await;
    let key = announce(&mut raw, b"honest").await;
    let forged = DataValue {
        key,
        value: Bytes::from_static(b"forged"),
    };
    raw.tell(ClientRequest::Data(vec![forged])).await;
    assert_eq!(close_code(&raw).await, protocol);

    // More bytes than announced, on a stream.
    let mut raw = RawClient::connect(&address, None).await;
    let key = announce(&mut raw, b"short").await;
    let header = StreamHeader::Scatter { key };
    let _ = wask_net::data::send(&raw.conn, &header, Bytes::from_static(b"much longer")).await;
    assert_eq!(
        close_code(&raw).await,
        wask_net::codes::TOO_LARGE.into_inner()
    );

    // An honest upload works, and the cluster still serves.
    let mut raw = RawClient::connect(&address, None).await;
    let value = Bytes::from_static(b"honest");
    let key = announce(&mut raw, &value).await;
    raw.tell(ClientRequest::Data(vec![DataValue { key, value }]))
        .await;
    match tokio::time::timeout(BOUND, raw.reader.next::<ClientEvent>()).await {
        Ok(Ok(Some(ClientEvent::Done(done)))) => assert_eq!(done[0].key, key),
        other => panic!("expected Done, got {other:?}"),
    }
    let client = Client::connect(address).await.unwrap();
    let math = client.load_module(MATH).await.unwrap();
    let inc = math.task::<(i64,), i64>("inc").unwrap();
    let x = client.scatter(&1i64).unwrap();
    assert_eq!(client.submit(&inc, (&x,)).unwrap().await.unwrap(), 2);
    cluster.shutdown().await;
}

const SECRET: &str = "scatter-tests-cluster-secret-0123456789";

async fn worker(address: &SchedulerAddress, name: &str) -> Worker {
    Worker::start(WorkerConfig {
        scheduler: address.addr,
        scheduler_cert: address.cert_der.clone(),
        secret: SECRET.to_string(),
        name: name.to_string(),
        nthreads: 1,
        memory_limit: 1 << 30,
        listen: "127.0.0.1:0".parse().unwrap(),
        advertise: None,
        hello_timeout: Duration::from_secs(10),
        sandbox: SandboxConfig {
            max_instances: 3,
            ..SandboxConfig::default()
        },
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_leaves_loses_its_data_and_fails_the_dependents() {
    let (scheduler, address) = scheduler().await;
    let mut workers = vec![worker(&address, "w1").await, worker(&address, "w2").await];
    let client = Client::connect(address.clone()).await.unwrap();
    assert_eq!(info(&client).await.workers.len(), 2);
    let math = client.load_module(MATH).await.unwrap();
    let busy = math.task::<(u64, u64), u64>("busy").unwrap();

    // A long task keeps one worker busy; the data goes to the other, the
    // least occupied.
    let slow = client
        .submit_with(
            &busy,
            (1, u64::MAX),
            &Options::new().timeout(Duration::from_secs(600)).pure(false),
        )
        .unwrap();
    let x = client.scatter(&5u64).unwrap();
    assert_eq!(x.result().await.unwrap(), 5);
    let i = info(&client).await;
    let running = i.workers.iter().find(|w| w.processing == 1).unwrap().id;
    let holder = i.workers.iter().find(|w| w.held_keys == 1).unwrap().id;
    assert_ne!(running, holder, "the data went to the busy worker");
    // A task waiting for both: the data and the long task.
    let waiting = client.submit(&busy, (&x, &slow)).unwrap();

    // The holder leaves cleanly: the data is lost, and so is its dependent.
    let at = workers.iter().position(|w| w.id() == holder).unwrap();
    workers.remove(at).shutdown().await;
    let lost = TaskError::DataLost { key: x.key() };
    let for_dependents = TaskError::DependencyFailed {
        key: x.key(),
        cause: Box::new(lost.clone()),
    };
    match waiting.result().await {
        Err(Error::Task { error, .. }) => assert_eq!(error, for_dependents),
        other => panic!("expected the dependent to fail, got {other:?}"),
    }
    // The key's own error came first (in the same message): the value this
    // client fetched before is gone with it.
    match x.result().await {
        Err(Error::Task { key, error }) => assert_eq!((key, error), (x.key(), lost.clone())),
        other => panic!("expected DataLost, got {other:?}"),
    }
    assert_eq!(
        lost.to_string(),
        format!(
            "scattered data {} was lost: its only copy left the cluster",
            x.key()
        )
    );
    // A task submitted on the lost data fails at once with the same cause.
    let late = client.submit(&busy, (&x, 1)).unwrap();
    match late.result().await {
        Err(Error::Task { error, .. }) => assert_eq!(error, for_dependents),
        other => panic!("expected the late dependent to fail, got {other:?}"),
    }
    // The long task was not touched, and the cluster still takes data.
    assert!(!slow.done());
    assert_eq!(client.scatter(&9u64).unwrap().await.unwrap(), 9);
    slow.cancel();
    client.shutdown().await;
    for w in workers {
        w.shutdown().await;
    }
    scheduler.shutdown().await;
}

/// An in-process scheduler without workers, and its address.
async fn scheduler() -> (Scheduler, SchedulerAddress) {
    let scheduler = Scheduler::start(SchedulerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        identity: Identity::self_signed().unwrap(),
        cluster_secret: SECRET.to_string(),
        auth: Arc::new(OpenAccess),
        core: CoreConfig::default(),
        hello_timeout: Duration::from_secs(10),
    })
    .await
    .unwrap();
    let address = SchedulerAddress {
        addr: scheduler.address(),
        cert_der: scheduler.cert_der().to_vec(),
    };
    (scheduler, address)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_that_cannot_reach_its_worker_fails_instead_of_hanging() {
    let (scheduler, address) = scheduler().await;
    // A worker that stays connected but refuses every data stream.
    let fake =
        wask_tests::hostile_cluster::raw(address.addr, &address.cert_der, wask_proto::ALPN_WORKER)
            .await;
    let hello = frame::encode_to_vec(&wask_tests::hostile_cluster::worker_hello(SECRET));
    let (_send, mut reader) =
        wask_tests::hostile_cluster::send_on_control(&fake.conn, &hello).await;
    let welcome = reader.next::<WorkerCommand>().await;
    assert!(
        matches!(welcome, Ok(Some(WorkerCommand::Welcome { .. }))),
        "{welcome:?}"
    );
    let conn = fake.conn.clone();
    tokio::spawn(async move {
        while let Ok(mut stream) = conn.accept_uni().await {
            let _ = stream.stop(quinn::VarInt::from_u32(9));
        }
    });

    // Larger than a stream's receive window, so the scheduler's send
    // cannot be done before the refusal.
    let client = Client::connect(address).await.unwrap();
    let x = client.scatter(&Bytes::from(vec![1u8; 20 << 20])).unwrap();
    match tokio::time::timeout(BOUND, x.result()).await {
        Ok(Err(Error::Task {
            error: TaskError::DataLost { key },
            ..
        })) => assert_eq!(key, x.key()),
        other => panic!("expected DataLost, got {other:?}"),
    }
    client.shutdown().await;
    scheduler.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_reports_data_whose_stream_broke() {
    // A fake scheduler: welcomes the worker, then sends data whose stream
    // breaks after its header.
    let identity = Identity::self_signed().unwrap();
    let endpoint = wask_net::endpoint::server(
        "127.0.0.1:0".parse().unwrap(),
        &identity,
        &[wask_proto::ALPN_WORKER],
    )
    .unwrap();
    let address = SchedulerAddress {
        addr: endpoint.local_addr().unwrap(),
        cert_der: identity.cert_der.clone(),
    };
    let fake = async {
        let conn = endpoint.accept().await.unwrap().await.unwrap();
        let (mut send, recv) = conn.accept_bi().await.unwrap();
        let mut reader = FrameReader::new(recv, MAX_FRAME);
        let hello = reader.next::<WorkerRequest>().await;
        assert!(
            matches!(hello, Ok(Some(WorkerRequest::Hello { .. }))),
            "{hello:?}"
        );
        framed::write_one(&mut send, &WorkerCommand::Welcome { worker: 1 })
            .await
            .unwrap();
        let key = data_key_id(b"never whole");
        let mut data = conn.open_uni().await.unwrap();
        let header = StreamHeader::DataForWorker { tenant: 7, key };
        data.write_all(&frame::encode_to_vec(&header))
            .await
            .unwrap();
        data.write_all(b"never").await.unwrap();
        // Time for the worker to read the header before the reset.
        tokio::time::sleep(Duration::from_millis(500)).await;
        data.reset(quinn::VarInt::from_u32(9)).unwrap();
        loop {
            match reader.next::<WorkerRequest>().await {
                Ok(Some(WorkerRequest::Stored(reports))) => break (key, reports),
                Ok(Some(_)) => continue,
                other => panic!("expected a Stored report, got {other:?}"),
            }
        }
    };
    let worker = worker(&address, "w");
    let (w, (key, reports)) = tokio::time::timeout(BOUND, async { tokio::join!(worker, fake) })
        .await
        .expect("no Stored report");
    assert_eq!(reports.len(), 1);
    assert_eq!((reports[0].tenant, reports[0].key), (7, key));
    assert!(
        matches!(&reports[0].result, Err(TaskError::DataLost { .. })),
        "{reports:?}"
    );
    drop(w);
    endpoint.close(quinn::VarInt::from_u32(0), b"done");
}
