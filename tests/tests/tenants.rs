//! Tenants sharing one cluster: tokens, isolation, quotas and fair share.

use std::time::Duration;
use wask::{Client, Error, LocalCluster, Options, TaskError};
use wask_proto::error::Limit;
use wask_proto::msg::{ClientEvent, ClientRequest, TaskSpec};
use wask_proto::{ArgTemplate, KeyId, ModuleHash, TaskLimits};
use wask_tests::raw::RawClient;
use wask_tests::{FAULTY, MATH, eventually, executed};

const TOKEN_A: &str = "tenant-a-token-0123456789abcdef";
const TOKEN_B: &str = "tenant-b-token-fedcba9876543210";
const TOKEN_C: &str = "tenant-c-token-aaaaaaaaaaaaaaaa";
const TOKEN_D: &str = "tenant-d-token-bbbbbbbbbbbbbbbb";
const TOKEN_E: &str = "tenant-e-token-cccccccccccccccc";
const TOKEN_F: &str = "tenant-f-token-dddddddddddddddd";
const TOKEN_G: &str = "tenant-g-token-eeeeeeeeeeeeeeee";

/// How long a task of A's runs while B tries to cancel it: far longer than
/// the few round trips of the check.
const RUNNING_MS: u64 = 1000;
/// Tenant E's fair-share weight (the others have 1).
const E_WEIGHT: u64 = 3;
/// Tenant F may have this many tasks running at once.
const F_MAX_IN_FLIGHT: u64 = 2;
/// Tenant G's per-task maxima: wall time (ms), memory, result and output
/// (bytes).
const G_MAX_TIME_MS: u64 = 300;
const G_MAX_MEMORY: u64 = 16 << 20;
const G_MAX_RESULT: u64 = 1 << 10;
const G_MAX_OUTPUT: u64 = 1 << 10;

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

[[tenant]]
name = "e"
token_blake3 = "{}"
weight = {E_WEIGHT}

[[tenant]]
name = "f"
token_blake3 = "{}"
max_in_flight = {F_MAX_IN_FLIGHT}

[[tenant]]
name = "g"
token_blake3 = "{}"
[tenant.limits]
max_time_ms = {G_MAX_TIME_MS}
max_memory = {G_MAX_MEMORY}
max_result = {G_MAX_RESULT}
max_output = {G_MAX_OUTPUT}
"#,
        hash(TOKEN_A),
        hash(TOKEN_B),
        hash(TOKEN_C),
        hash(TOKEN_D),
        hash(TOKEN_E),
        hash(TOKEN_F),
        hash(TOKEN_G),
    )
}

/// One worker of one thread, with the default queue depth.
async fn cluster() -> LocalCluster {
    cluster_of(1, 256).await
}

/// One worker of `threads` threads, each sent at most `saturation` tasks
/// at once.
async fn cluster_of(threads: usize, saturation: u32) -> LocalCluster {
    LocalCluster::builder()
        .workers(1)
        .threads_per_worker(threads)
        .saturation(saturation)
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

/// Tasks the workers have reported, finished or failed, for any tenant.
/// Tasks sent to the workers and not yet reported, for any tenant.
async fn processing(client: &Client) -> u64 {
    let info = client.info().await.unwrap();
    info.workers.iter().map(|w| w.processing).sum()
}

/// How many of `futures` have finished, as their client knows it.
fn done<T>(futures: &[wask::Future<T>]) -> u64 {
    futures.iter().filter(|f| f.done()).count() as u64
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

/// The answer to a request about a key, with the text of an unknown-key
/// error blanked out, to compare the answers about different keys.
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
    // Cancelling A's keys from B does nothing to A: neither the finished
    // key A holds, nor a running one that A no longer holds but a waiting
    // task of A's depends on (a cancel reaching it would fail both).
    let sleep_a = a
        .load_module(FAULTY)
        .await
        .unwrap()
        .task::<(u64,), u64>("sleep_ms")
        .unwrap();
    let busy_a = math_a.task::<(u64, u64), u64>("busy").unwrap();
    let running = a
        .submit_with(&sleep_a, (RUNNING_MS,), &Options::new().pure(false))
        .unwrap();
    let waiting = a.submit(&busy_a, (&running, 1)).unwrap();
    let running_key = running.task_key().id;
    drop(running);
    // A's connection is ordered: once info answers, the release is done.
    let a_tasks = a.info().await.unwrap().tasks;
    raw.tell(ClientRequest::Cancel(vec![a_key, running_key]))
        .await;
    // B's connection is ordered too: this answer comes after the cancel
    // was handled, and nothing came before it (no event about A's keys).
    match raw.ask(ClientRequest::Info { req: 99 }).await {
        ClientEvent::Info { req: 99, .. } => {}
        other => panic!("B's cancel of A's keys was answered with {other:?}"),
    }
    assert_eq!(
        processing(&a).await,
        1,
        "A's sleep is still running after B's cancel"
    );
    assert!(!waiting.done(), "{:?}", waiting.exception());
    assert_eq!(a.info().await.unwrap().tasks, a_tasks, "A lost a key");
    let after_cancel = a.submit(&inc_a, (&only_a,)).unwrap();
    assert_eq!(after_cancel.result().await.unwrap(), 22);
    assert_eq!(only_a.result().await.unwrap(), 21);
    // busy(x, 1) is x * 31 mod 1_000_003.
    assert_eq!(waiting.result().await.unwrap(), RUNNING_MS * 31);
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

/// Loads the faulty guest for `client` and returns its `sleep_ms` task: a
/// task of a known duration that leaves the CPU to the cluster.
async fn sleep_task(client: &Client) -> wask::Task<(u64,), u64> {
    client
        .load_module(FAULTY)
        .await
        .unwrap()
        .task::<(u64,), u64>("sleep_ms")
        .unwrap()
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_memory_result_and_output_are_capped_per_tenant() {
    let cluster = cluster().await;
    let a = connect(&cluster, TOKEN_A).await;
    let g = connect(&cluster, TOKEN_G).await;
    let module_a = a.load_module(FAULTY).await.unwrap();
    let module_g = g.load_module(FAULTY).await.unwrap();
    // Far more than G's maxima, within the cluster's.
    let generous = Options::new()
        .pure(false)
        .timeout(Duration::from_secs(60))
        .memory_limit(1 << 30)
        .result_limit(1 << 20)
        .output_limit(1 << 20);
    let task_error = |r: Result<u64, Error>| match r {
        Err(Error::Task { error, .. }) => error,
        other => panic!("expected a task error, got {other:?}"),
    };
    let sleep = |m: &wask::Module| m.task::<(u64,), u64>("sleep_ms").unwrap();
    let grow = |m: &wask::Module| m.task::<(u64,), u64>("grow").unwrap();
    let print = |m: &wask::Module| m.task::<(u64,), u64>("print").unwrap();
    let big = |m: &wask::Module| m.task::<(u64,), Vec<u8>>("big").unwrap();

    // A (no maxima of its own) gets what it asks for...
    let nap = 2 * G_MAX_TIME_MS;
    let over = 2 * G_MAX_RESULT;
    assert_eq!(
        a.submit_with(&sleep(&module_a), (nap,), &generous)
            .unwrap()
            .result()
            .await
            .unwrap(),
        nap
    );
    assert_eq!(
        a.submit_with(&big(&module_a), (over,), &generous)
            .unwrap()
            .result()
            .await
            .unwrap()
            .len() as u64,
        over
    );
    assert_eq!(
        a.submit_with(&print(&module_a), (over,), &generous)
            .unwrap()
            .result()
            .await
            .unwrap(),
        over
    );

    // ...G, asking the same, gets its maxima, named in typed errors.
    let error = task_error(
        g.submit_with(&sleep(&module_g), (nap,), &generous)
            .unwrap()
            .result()
            .await,
    );
    assert_eq!(
        error,
        TaskError::Timeout {
            limit_ms: G_MAX_TIME_MS
        }
    );
    assert_eq!(
        error.to_string(),
        format!("task exceeded its time limit of {G_MAX_TIME_MS} ms")
    );
    let error = task_error(
        g.submit_with(&grow(&module_g), (1 << 20,), &generous)
            .unwrap()
            .result()
            .await,
    );
    assert_eq!(
        error,
        TaskError::MemoryLimit {
            limit_bytes: G_MAX_MEMORY
        }
    );
    let error = task_error(
        g.submit_with(&big(&module_g), (over,), &generous)
            .unwrap()
            .result()
            .await
            .map(|v| v.len() as u64),
    );
    assert!(
        matches!(
            error,
            TaskError::LimitExceeded {
                limit: Limit::ResultSize,
                max: G_MAX_RESULT,
                size,
            } if size > G_MAX_RESULT
        ),
        "{error:?}"
    );
    let error = task_error(
        g.submit_with(&print(&module_g), (over,), &generous)
            .unwrap()
            .result()
            .await,
    );
    assert!(
        matches!(
            error,
            TaskError::LimitExceeded {
                limit: Limit::Output,
                max: G_MAX_OUTPUT,
                size,
            } if size > G_MAX_OUTPUT
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("output size limit"), "{error}");

    // Within its maxima, G's tasks run, on the same worker.
    let fits = G_MAX_RESULT / 2;
    assert_eq!(
        g.submit_with(&big(&module_g), (fits,), &generous)
            .unwrap()
            .result()
            .await
            .unwrap()
            .len() as u64,
        fits
    );
    assert_eq!(
        g.submit_with(&print(&module_g), (fits,), &generous)
            .unwrap()
            .result()
            .await
            .unwrap(),
        fits
    );
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
    // Limits are not part of a key: a pure call with other limits is the
    // same call and may share a result still held. Each call here is
    // impure, so it runs with its own limits.
    let impure = Options::new().pure(false);
    // 3000 small frames fit the default 512 KiB stack, not 64 KiB.
    let n = 3000;
    assert_eq!(
        a.submit_with(&depth_a, (n,), &impure)
            .unwrap()
            .result()
            .await
            .unwrap(),
        n
    );
    let small = impure.clone().stack_limit(64 << 10);
    let r = a
        .submit_with(&depth_a, (n,), &small)
        .unwrap()
        .result()
        .await;
    assert!(overflow(&r), "{r:?}");
    // 20,000 need more than the default, and get it when asked for.
    let r = a
        .submit_with(&depth_a, (20_000,), &impure)
        .unwrap()
        .result()
        .await;
    assert!(overflow(&r), "{r:?}");
    let big = impure.clone().stack_limit(8 << 20);
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
    let r = d
        .submit_with(&depth_d, (n,), &impure)
        .unwrap()
        .result()
        .await;
    assert!(overflow(&r), "{r:?}");
    let r = d.submit_with(&depth_d, (10,), &big).unwrap().result().await;
    assert_eq!(r.unwrap(), 10);
    cluster.shutdown().await;
}
