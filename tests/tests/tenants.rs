//! Tenants sharing one cluster: tokens, isolation, quotas and per-task
//! limits (fair share: `fair_share.rs`).

use std::time::Duration;
use wask::{Client, Error, Options, TaskError};
use wask_proto::error::Limit;
use wask_proto::msg::{ClientEvent, ClientRequest, TaskSpec};
use wask_proto::{ArgTemplate, KeyId, ModuleHash, TaskLimits};
use wask_tests::raw::RawClient;
use wask_tests::tenants::*;
use wask_tests::{FAULTY, MATH, eventually, task};

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
    let sleep_a = task::<(u64,), u64>(&a, FAULTY, "sleep_ms").await;
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
