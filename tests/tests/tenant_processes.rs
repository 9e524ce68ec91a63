//! Two tenants sharing one cluster of separate OS processes:
//! `wask-scheduler --config tenants.toml` and two `wask-worker`s, with two
//! clients in this process connecting with different tokens.
//!
//! The in-process version of these checks is `tenants.rs`; this one shows
//! the same behaviour through the real binaries, a real tenants file and
//! real QUIC over loopback. Readiness is always a ready line (never a
//! sleep); the processes are killed when the test ends, even on failure.
//!
//! Needs the binaries built: `cargo test --workspace` does it.

use std::path::Path;
use std::time::Duration;
use wask::{Client, Error, Options, SchedulerAddress, TaskError};
use wask_proto::KeyId;
use wask_proto::msg::{ClientEvent, ClientRequest};
use wask_tests::procs::{
    Host, Proc, START_TIMEOUT, SchedulerProc, TempDir, bin, start_scheduler, start_worker,
};
use wask_tests::raw::RawClient;
use wask_tests::{FAULTY, MATH, eventually, executed, task};

const TOKEN_A: &str = "tenant-a-process-token-0123456789";
const TOKEN_B: &str = "tenant-b-process-token-9876543210";
/// Tenant A may have this many tasks submitted and unfinished.
const A_MAX_UNFINISHED: u64 = 3;
/// Tenant B's own (larger) quota: A's tasks must not count against it.
const B_MAX_UNFINISHED: u64 = 5;
/// How long one of A's tasks sleeps in the quota and cancel tests: far
/// longer than it takes the scheduler to read the requests that follow it.
const A_SLEEP_MS: u64 = 1000;
/// Bound on waiting for any result.
const RESULT_TIMEOUT: Duration = Duration::from_secs(120);

/// What `wask-scheduler --hash-token <token>` prints, checked against the
/// library function the scheduler uses.
fn hash_with_binary(token: &str) -> String {
    let mut cmd = Host::Here.command(&bin("wask-scheduler"));
    cmd.args(["--hash-token", token]);
    let mut proc = Proc::spawn("wask-scheduler --hash-token", cmd);
    let status = proc.wait(START_TIMEOUT);
    assert!(status.success(), "{status}\nstderr:\n{}", proc.stderr());
    let hash = proc.stdout().trim().to_string();
    assert_eq!(hash, wask_scheduler::tenants::hash_token(token));
    hash
}

/// The tenants file: two tenants, tokens stored only as hashes. A may run
/// one task at a time (so its sleeps leave the workers to B) and have
/// [`A_MAX_UNFINISHED`] tasks unfinished.
fn write_config(dir: &Path) -> std::path::PathBuf {
    let text = format!(
        r#"
[[tenant]]
name = "a"
token_blake3 = "{}"
max_in_flight = 1
max_unfinished = {A_MAX_UNFINISHED}

[[tenant]]
name = "b"
token_blake3 = "{}"
max_unfinished = {B_MAX_UNFINISHED}
"#,
        hash_with_binary(TOKEN_A),
        hash_with_binary(TOKEN_B),
    );
    let path = dir.join("tenants.toml");
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    path
}

/// The scheduler and two workers, each a process of its own; all are
/// stopped (SIGTERM, then SIGKILL) when this is dropped, workers first.
struct Cluster {
    _workers: [Proc; 2],
    scheduler: SchedulerProc,
    address: SchedulerAddress,
    _dir: TempDir,
}

impl Cluster {
    fn start(tag: &str) -> Cluster {
        let dir = TempDir::new(tag);
        let config = write_config(dir.path());
        let config = config.to_str().expect("a UTF-8 temp path");
        let scheduler = start_scheduler(
            Host::Here,
            dir.path(),
            &["--host", "127.0.0.1", "--config", config],
        );
        let workers = [
            start_worker(Host::Here, &scheduler.file, "w1"),
            start_worker(Host::Here, &scheduler.file, "w2"),
        ];
        let address = SchedulerAddress::from_file(&scheduler.file).unwrap();
        Cluster {
            _workers: workers,
            scheduler,
            address,
            _dir: dir,
        }
    }

    async fn connect(&self, token: &str) -> Client {
        let client = Client::builder(&self.address)
            .token(token)
            .connect()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "connecting with a good token: {e}\nscheduler stderr:\n{}",
                    self.scheduler.proc.stderr()
                )
            });
        assert!(
            eventually(START_TIMEOUT, || async {
                client.info().await.is_ok_and(|i| i.workers.len() == 2)
            })
            .await,
            "the scheduler does not list both workers: {:?}",
            client.info().await
        );
        client
    }
}

/// Tasks the scheduler knows for the client's tenant.
async fn tenant_tasks(client: &Client) -> u64 {
    client.info().await.unwrap().tasks
}

/// `f`, failing the test instead of hanging past [`RESULT_TIMEOUT`].
async fn bounded<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(RESULT_TIMEOUT, f)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {RESULT_TIMEOUT:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_key_is_computed_and_held_per_tenant() {
    let cluster = Cluster::start("tenant-procs-keys");
    let a = cluster.connect(TOKEN_A).await;
    let b = cluster.connect(TOKEN_B).await;
    let inc_a = task::<(i64,), i64>(&a, MATH, "inc").await;
    let inc_b = task::<(i64,), i64>(&b, MATH, "inc").await;

    let start = executed(&a).await;
    let xa = a.submit(&inc_a, (10,)).unwrap();
    assert_eq!(bounded("A's inc(10)", xa.result()).await.unwrap(), 11);
    assert_eq!(executed(&a).await, start + 1, "A's inc(10) ran once");

    // B's identical pure call: the same key text, but B's own task, run
    // again for B rather than served from A's result.
    let xb = b.submit(&inc_b, (10,)).unwrap();
    assert_eq!(xb.key(), xa.key());
    assert!(xb.key().starts_with("inc-"), "{}", xb.key());
    assert_eq!(bounded("B's inc(10)", xb.result()).await.unwrap(), 11);
    assert_eq!(
        executed(&b).await,
        start + 2,
        "B's identical key must be computed for B"
    );
    assert_eq!(tenant_tasks(&a).await, 1, "A sees only its own task");
    assert_eq!(tenant_tasks(&b).await, 1, "B sees only its own task");

    // Within one tenant, the same call is deduplicated as usual.
    let again_b = b.submit(&inc_b, (10,)).unwrap();
    assert_eq!(
        bounded("B's inc(10) again", again_b.result())
            .await
            .unwrap(),
        11
    );
    assert_eq!(executed(&b).await, start + 2, "B's own key is reused");

    // A releasing (cancelling, then dropping) its future does nothing to
    // B's: B's result is still on the cluster and feeds a new task.
    a.cancel(std::slice::from_ref(&xa));
    drop(xa);
    assert!(
        eventually(RESULT_TIMEOUT, || async { tenant_tasks(&a).await == 0 }).await,
        "A's released task is still known to A: {:?}",
        a.info().await
    );
    assert_eq!(tenant_tasks(&b).await, 1, "A's release left B's task alone");
    let yb = b.submit(&inc_b, (&xb,)).unwrap();
    assert_eq!(bounded("B's inc(inc(10))", yb.result()).await.unwrap(), 12);
    assert_eq!(
        executed(&b).await,
        start + 3,
        "only inc(11) ran: B's inc(10) was still held"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_or_missing_token_is_refused_at_connect() {
    // SAFETY: no other test in this binary reads WASK_TOKEN (they all give
    // the client a token explicitly); this only makes sure the environment
    // does not supply one to the "missing token" attempt.
    unsafe { std::env::remove_var("WASK_TOKEN") };
    let cluster = Cluster::start("tenant-procs-refused");
    let stored_hash = wask_scheduler::tenants::hash_token(TOKEN_A);
    let attempts = [
        ("no token", Client::connect(&cluster.address).await),
        (
            "a wrong token",
            Client::builder(&cluster.address)
                .token("not-a-tenant-token")
                .connect()
                .await,
        ),
        (
            "the stored hash instead of the token",
            Client::builder(&cluster.address)
                .token(stored_hash)
                .connect()
                .await,
        ),
    ];
    for (what, attempt) in attempts {
        match attempt {
            Err(e @ Error::Refused(_)) => {
                let text = e.to_string();
                assert!(
                    text.contains("refused") && text.contains("token"),
                    "{what}: unclear refusal: {text}"
                );
            }
            other => panic!("{what}: expected a refusal, got {other:?}"),
        }
    }
    // The refusals did not disturb the scheduler: both tenants connect.
    let a = cluster.connect(TOKEN_A).await;
    let b = cluster.connect(TOKEN_B).await;
    assert_eq!(a.info().await.unwrap().workers.len(), 2);
    assert_eq!(b.info().await.unwrap().workers.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quota_refuses_only_the_tenant_over_it() {
    let cluster = Cluster::start("tenant-procs-quota");
    let a = cluster.connect(TOKEN_A).await;
    let b = cluster.connect(TOKEN_B).await;
    let sleep_a = task::<(u64,), u64>(&a, FAULTY, "sleep_ms").await;
    let sleep_b = task::<(u64,), u64>(&b, FAULTY, "sleep_ms").await;
    let impure = Options::new().pure(false);

    // Both tenants submit at the same moment, interleaved. A's first three
    // sleeps are still unfinished when its 4th and 5th arrive: those are
    // refused. B has 5 unfinished at most, within its own quota, while A
    // has 3: the accounting is per tenant.
    let mut fa = Vec::new();
    let mut fb = Vec::new();
    for _ in 0..B_MAX_UNFINISHED {
        fa.push(a.submit_with(&sleep_a, (A_SLEEP_MS,), &impure).unwrap());
        fb.push(b.submit_with(&sleep_b, (1,), &impure).unwrap());
    }
    assert_eq!(
        bounded("B's sleeps", b.gather(&fb)).await.unwrap(),
        vec![1; B_MAX_UNFINISHED as usize],
        "B is not affected by A's quota"
    );
    let mut accepted = Vec::new();
    for (i, f) in fa.into_iter().enumerate() {
        match bounded("A's sleep", f.result()).await {
            Ok(ms) => {
                assert_eq!(ms, A_SLEEP_MS);
                accepted.push(i);
            }
            Err(e @ Error::Task { .. }) => {
                let text = e.to_string();
                match e.task_error() {
                    Some(TaskError::Quota { message }) => assert!(
                        message.contains(&format!("quota is {A_MAX_UNFINISHED}")),
                        "{message}"
                    ),
                    other => panic!("A's submission {i}: expected a quota error, got {other:?}"),
                }
                assert!(text.contains("quota"), "unclear quota error: {text}");
            }
            Err(other) => panic!("A's submission {i}: {other:?}"),
        }
    }
    assert_eq!(
        accepted,
        (0..A_MAX_UNFINISHED as usize).collect::<Vec<_>>(),
        "the first {A_MAX_UNFINISHED} of A's submissions run, the rest are refused"
    );

    // A's tasks have finished: its quota is free again.
    let later = a.submit_with(&sleep_a, (1,), &impure).unwrap();
    assert_eq!(bounded("A's later sleep", later.result()).await.unwrap(), 1);
}

/// The answer to a request about `key`, with the key blanked out, to
/// compare the answers about different keys.
fn shape(key: KeyId, ev: &ClientEvent) -> String {
    match ev {
        ClientEvent::Erred {
            key: k,
            error: TaskError::UnknownKey { key: text },
        } if *k == key && *text == key.hex() => "unknown key".into(),
        other => format!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b_cannot_reach_a_key_of_a() {
    let cluster = Cluster::start("tenant-procs-gather");
    let a = cluster.connect(TOKEN_A).await;
    let b = cluster.connect(TOKEN_B).await;
    let inc_a = task::<(i64,), i64>(&a, MATH, "inc").await;
    let inc_b = task::<(i64,), i64>(&b, MATH, "inc").await;
    let xa = a.submit(&inc_a, (20,)).unwrap();
    assert_eq!(bounded("A's inc(20)", xa.result()).await.unwrap(), 21);
    let a_key = xa.task_key().id;
    let never = KeyId::random();
    let before = executed(&a).await;

    // Through the protocol, tenant A's own connection holds the key...
    let mut raw_a = RawClient::connect(&cluster.address, Some(TOKEN_A)).await;
    match bounded("A's raw hold", raw_a.ask(ClientRequest::Hold(vec![a_key]))).await {
        ClientEvent::Done(done) => {
            assert!(
                done.iter().any(|d| d.key == a_key && d.nbytes > 0),
                "{done:?}"
            )
        }
        other => panic!("A holding its own key: {other:?}"),
    }
    // ...while for tenant B, asking for the value of A's key or holding it
    // is answered exactly like a key that never existed.
    let mut raw_b = RawClient::connect(&cluster.address, Some(TOKEN_B)).await;
    for (what, req) in [
        (
            "want",
            ClientRequest::Want as fn(Vec<KeyId>) -> ClientRequest,
        ),
        ("hold", ClientRequest::Hold),
    ] {
        let theirs = bounded(what, raw_b.ask(req(vec![a_key]))).await;
        let missing = bounded(what, raw_b.ask(req(vec![never]))).await;
        assert_eq!(shape(a_key, &theirs), "unknown key", "{what}: {theirs:?}");
        assert_eq!(
            shape(a_key, &theirs),
            shape(never, &missing),
            "{what}: A's key and a missing key are told apart"
        );
    }

    assert_eq!(tenant_tasks(&b).await, 0, "B sees none of A's tasks");

    // With the typed client, passing A's future to one of B's calls fails
    // the same way: the key is unknown to B.
    let yb = b.submit(&inc_b, (&xa,)).unwrap();
    match bounded("B's inc(A's key)", yb.result()).await {
        Err(Error::Task {
            error: TaskError::UnknownKey { key },
            ..
        }) => assert_eq!(key, a_key.hex()),
        other => panic!("B depending on A's key: expected an unknown key, got {other:?}"),
    }
    assert_eq!(executed(&b).await, before, "nothing ran for B");

    // B cancelling A's keys does nothing to A: neither the finished key A
    // holds, nor a running one that A no longer holds but a waiting task
    // of A's depends on (a cancel reaching it would fail both).
    let sleep_a = task::<(u64,), u64>(&a, FAULTY, "sleep_ms").await;
    let busy_a = task::<(u64, u64), u64>(&a, MATH, "busy").await;
    let running = a
        .submit_with(&sleep_a, (A_SLEEP_MS,), &Options::new().pure(false))
        .unwrap();
    let waiting = a.submit(&busy_a, (&running, 1)).unwrap();
    let running_key = running.task_key().id;
    drop(running);
    // A's connection is ordered: once info answers, the release is done.
    let a_tasks = tenant_tasks(&a).await;
    raw_b
        .tell(ClientRequest::Cancel(vec![a_key, running_key]))
        .await;
    // B's connection is ordered too: this answer comes after the cancel
    // was handled, and nothing came before it (no event about A's keys).
    match bounded("B's info", raw_b.ask(ClientRequest::Info { req: 99 })).await {
        ClientEvent::Info { req: 99, .. } => {}
        other => panic!("B's cancel of A's keys was answered with {other:?}"),
    }
    let info = a.info().await.unwrap();
    assert_eq!(
        info.workers.iter().map(|w| w.processing).sum::<u64>(),
        1,
        "A's sleep is still running after B's cancel: {info:?}"
    );
    assert!(!waiting.done(), "{:?}", waiting.exception());
    assert_eq!(info.tasks, a_tasks, "A lost a key");
    let ya = a.submit(&inc_a, (&xa,)).unwrap();
    assert_eq!(bounded("A's inc(inc(20))", ya.result()).await.unwrap(), 22);
    assert_eq!(bounded("A's inc(20)", xa.result()).await.unwrap(), 21);
    // busy(x, 1) is x * 31 mod 1_000_003.
    assert_eq!(
        bounded("A's busy(sleep)", waiting.result()).await.unwrap(),
        A_SLEEP_MS * 31
    );
}
