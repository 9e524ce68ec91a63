//! Tenants sharing one cluster: tokens, isolation, quotas and fair share.

use std::time::{Duration, Instant};
use wask::{Client, Error, LocalCluster, Options, TaskError};
use wask_proto::msg::{ClientEvent, ClientRequest, TaskSpec};
use wask_proto::{ArgTemplate, KeyId, ModuleHash, TaskLimits};
use wask_tests::raw::RawClient;
use wask_tests::{FAULTY, MATH, eventually};

const TOKEN_A: &str = "tenant-a-token-0123456789abcdef";
const TOKEN_B: &str = "tenant-b-token-fedcba9876543210";
const TOKEN_C: &str = "tenant-c-token-aaaaaaaaaaaaaaaa";
const TOKEN_D: &str = "tenant-d-token-bbbbbbbbbbbbbbbb";

fn hash(t: &str) -> String {
    wask_scheduler::tenants::hash_token(t)
}

fn config() -> String {
    format!(
        r#"
[[tenant]]
name = "a"
token_blake3 = "{}"

[[tenant]]
name = "b"
token_blake3 = "{}"
max_unfinished = 3
max_bytes = 1000

[[tenant]]
name = "c"
token_blake3 = "{}"
max_module_bytes = 1000

[[tenant]]
name = "d"
token_blake3 = "{}"
[tenant.limits]
max_stack = "64KiB"
"#,
        hash(TOKEN_A),
        hash(TOKEN_B),
        hash(TOKEN_C),
        hash(TOKEN_D)
    )
}

async fn cluster() -> LocalCluster {
    LocalCluster::builder()
        .workers(1)
        .tenants(config())
        .start()
        .await
        .unwrap()
}

async fn connect(cluster: &LocalCluster, token: &str) -> Client {
    Client::builder(cluster.address())
        .token(token)
        .connect()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_or_missing_token_is_refused_at_connect() {
    // SAFETY: tests in this binary do not read WASK_TOKEN concurrently with
    // this removal; it only makes sure the environment does not supply one.
    unsafe { std::env::remove_var("WASK_TOKEN") };
    let cluster = cluster().await;
    for attempt in [
        Client::connect(cluster.address()).await,
        Client::builder(cluster.address())
            .token("nope")
            .connect()
            .await,
    ] {
        match attempt {
            Err(Error::Refused(reason)) => assert!(reason.contains("token"), "{reason}"),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
    let ok = connect(&cluster, TOKEN_A).await;
    assert_eq!(ok.info().await.unwrap().workers.len(), 1);
    cluster.shutdown().await;
}

/// A client speaking the protocol directly, to ask for things the typed
/// The error with the key text blanked, to compare shapes.
fn shape(ev: &ClientEvent) -> String {
    match ev {
        ClientEvent::Erred {
            error: TaskError::UnknownKey { .. },
            ..
        } => "unknown key".into(),
        other => format!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_cannot_see_each_others_keys() {
    let cluster = cluster().await;
    let a = connect(&cluster, TOKEN_A).await;
    let b = connect(&cluster, TOKEN_B).await;
    let math_a = a.load_module(MATH).await.unwrap();
    let math_b = b.load_module(MATH).await.unwrap();
    let inc_a = math_a.task::<(i64,), i64>("inc").unwrap();
    let inc_b = math_b.task::<(i64,), i64>("inc").unwrap();
    let executed = || async { a.info().await.unwrap().workers[0].executed };

    let xa = a.submit(&inc_a, (10,)).unwrap();
    assert_eq!(xa.result().await.unwrap(), 11);
    let before = executed().await;
    // B's identical call has the same key text but is B's own result.
    let xb = b.submit(&inc_b, (10,)).unwrap();
    assert_eq!(xb.key(), xa.key());
    assert_eq!(xb.result().await.unwrap(), 11);
    assert_eq!(
        executed().await - before,
        1,
        "B's identical key must be computed for B"
    );
    assert_eq!(b.info().await.unwrap().tasks, 1, "B sees only its own task");

    // Through the protocol, B asks for a key only A has and for a key that
    // never existed: the answers are the same.
    let only_a = a.submit(&inc_a, (20,)).unwrap();
    assert_eq!(only_a.result().await.unwrap(), 21);
    let a_key = only_a.task_key().id;
    let never = KeyId::random();
    let mut raw = RawClient::connect(&cluster.address(), Some(TOKEN_B)).await;
    let module = match raw
        .ask(ClientRequest::Module {
            req: 1,
            hash: ModuleHash::of(&std::fs::read(MATH).unwrap()),
        })
        .await
    {
        ClientEvent::ModuleReady { module, .. } => module,
        other => panic!("{other:?}"),
    };
    for req in [
        |k| ClientRequest::Want(vec![k]),
        |k| ClientRequest::Hold(vec![k]),
    ] {
        let theirs = raw.ask(req(a_key)).await;
        let missing = raw.ask(req(never)).await;
        assert_eq!(shape(&theirs), "unknown key", "{theirs:?}");
        assert_eq!(shape(&theirs), shape(&missing));
    }
    // Depending on A's key: the same error as depending on a missing key.
    let spec = |dep: KeyId| TaskSpec {
        key: KeyId::random(),
        pure: false,
        module,
        func: math_b.tasks().iter().position(|t| t.name == "inc").unwrap() as u32,
        args: ArgTemplate {
            bytes: Vec::new().into(),
            holes: vec![wask_proto::template::Hole { at: 0, dep: 0 }],
        },
        deps: vec![dep],
        limits: TaskLimits::default(),
    };
    let theirs = raw.ask(ClientRequest::Submit(vec![spec(a_key)])).await;
    let missing = raw.ask(ClientRequest::Submit(vec![spec(never)])).await;
    assert_eq!(shape(&theirs), "unknown key", "{theirs:?}");
    assert_eq!(shape(&theirs), shape(&missing));
    // Cancelling A's key from B does nothing to A.
    raw.tell(ClientRequest::Cancel(vec![a_key])).await;
    let after_cancel = a.submit(&inc_a, (&only_a,)).unwrap();
    assert_eq!(after_cancel.result().await.unwrap(), 22);
    assert_eq!(only_a.result().await.unwrap(), 21);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_refuse_only_the_tenant_over_them() {
    let cluster = cluster().await;
    let a = connect(&cluster, TOKEN_A).await;
    let b = connect(&cluster, TOKEN_B).await;
    let fa = a.load_module(FAULTY).await.unwrap();
    let fb = b.load_module(FAULTY).await.unwrap();
    let sleep_a = fa.task::<(u64,), u64>("sleep_ms").unwrap();
    let sleep_b = fb.task::<(u64,), u64>("sleep_ms").unwrap();
    let impure = Options::new().pure(false);

    // B may have 3 unfinished tasks: the 4th and 5th are refused.
    let bs: Vec<_> = (0..5)
        .map(|_| b.submit_with(&sleep_b, (100,), &impure).unwrap())
        .collect();
    let as_: Vec<_> = (0..10)
        .map(|_| a.submit_with(&sleep_a, (1,), &impure).unwrap())
        .collect();
    let mut refused = 0;
    for f in &bs {
        match f.result().await {
            Ok(100) => {}
            Err(Error::Task {
                error: TaskError::Quota { message },
                ..
            }) => {
                assert!(message.contains("quota is 3"), "{message}");
                refused += 1;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(refused, 2);
    assert_eq!(
        a.gather(&as_).await.unwrap(),
        vec![1; 10],
        "A is not affected"
    );

    // B may hold 1000 bytes of results.
    let big = fb.task::<(u64,), Vec<u8>>("big").unwrap();
    let held = b.submit(&big, (1500,)).unwrap();
    assert_eq!(held.result().await.unwrap().len(), 1500);
    match b.submit(&big, (10,)).unwrap().result().await {
        Err(Error::Task {
            error: TaskError::Quota { message },
            ..
        }) => assert!(message.contains("bytes"), "{message}"),
        other => panic!("expected a quota error, got {other:?}"),
    }
    drop(held);
    let ok = eventually(Duration::from_secs(10), || async {
        b.submit_with(&big, (10,), &impure)
            .unwrap()
            .result()
            .await
            .is_ok()
    })
    .await;
    assert!(ok, "releasing the result frees the quota");

    // C may upload 1000 bytes of modules.
    let c = connect(&cluster, TOKEN_C).await;
    match c.load_module(MATH).await {
        Err(Error::ModuleRefused(reason)) => assert!(reason.contains("quota"), "{reason}"),
        other => panic!("expected a module quota refusal, got {other:?}"),
    }
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_from_one_tenant_does_not_delay_another() {
    let cluster = cluster().await;
    let a = connect(&cluster, TOKEN_A).await;
    let b = connect(&cluster, TOKEN_B).await;
    let busy_a = a
        .load_module(MATH)
        .await
        .unwrap()
        .task::<(u64, u64), u64>("busy")
        .unwrap();
    let busy_b = b
        .load_module(MATH)
        .await
        .unwrap()
        .task::<(u64, u64), u64>("busy")
        .unwrap();
    let impure = Options::new().pure(false);
    const ITERS: u64 = 20_000;

    // One task alone, for scale.
    let t0 = Instant::now();
    b.submit_with(&busy_b, (1, ITERS), &impure)
        .unwrap()
        .result()
        .await
        .unwrap();
    let alone = t0.elapsed();

    // Tenant A floods the one-thread cluster with 100,000 tasks and they run.
    let flood = a
        .map_with(&busy_a, (0..100_000u64).map(|i| (i, ITERS)), &impure)
        .unwrap();
    assert!(
        eventually(Duration::from_secs(60), || async {
            flood.iter().take(100).any(|f| f.done())
        })
        .await
    );

    // Tenant B's single task is served at the next free slot, not behind
    // A's queue: only the few tasks already sent to the worker run first.
    let t0 = Instant::now();
    b.submit_with(&busy_b, (7, ITERS), &impure)
        .unwrap()
        .result()
        .await
        .unwrap();
    let latency = t0.elapsed();
    let a_done = flood.iter().filter(|f| f.done()).count();
    println!(
        "fair share: B's task took {latency:?} (alone: {alone:?}) while A had {a_done} of 100000 tasks done"
    );
    assert!(a_done < 1_000, "B waited behind {a_done} of A's tasks");
    drop(flood);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stack_limits_are_per_task_and_capped_per_tenant() {
    let cluster = cluster().await;
    let a = connect(&cluster, TOKEN_A).await;
    let d = connect(&cluster, TOKEN_D).await;
    let depth_a = a.load_module(FAULTY).await.unwrap();
    let depth_a = depth_a.task::<(u64,), u64>("depth").unwrap();
    let overflow = |r: &Result<u64, Error>| {
        matches!(
            r,
            Err(Error::Task {
                error: TaskError::StackOverflow,
                ..
            })
        )
    };
    // 3000 small frames fit the default 512 KiB stack, not 64 KiB.
    let n = 3000;
    assert_eq!(a.submit(&depth_a, (n,)).unwrap().result().await.unwrap(), n);
    let small = Options::new().stack_limit(64 << 10);
    let r = a
        .submit_with(&depth_a, (n,), &small)
        .unwrap()
        .result()
        .await;
    assert!(overflow(&r), "{r:?}");
    // 20,000 need more than the default, and get it when asked for.
    let r = a.submit(&depth_a, (20_000,)).unwrap().result().await;
    assert!(overflow(&r), "{r:?}");
    let big = Options::new().stack_limit(8 << 20);
    let r = a
        .submit_with(&depth_a, (20_000,), &big)
        .unwrap()
        .result()
        .await;
    assert_eq!(r.unwrap(), 20_000);

    // Tenant D's maximum is 64 KiB: asking for more gets 64 KiB, by
    // default too.
    let depth_d = d.load_module(FAULTY).await.unwrap();
    let depth_d = depth_d.task::<(u64,), u64>("depth").unwrap();
    let r = d.submit_with(&depth_d, (n,), &big).unwrap().result().await;
    assert!(overflow(&r), "{r:?}");
    let r = d.submit(&depth_d, (n,)).unwrap().result().await;
    assert!(overflow(&r), "{r:?}");
    let r = d.submit_with(&depth_d, (10,), &big).unwrap().result().await;
    assert_eq!(r.unwrap(), 10);
}
