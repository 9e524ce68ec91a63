//! The real binaries as separate OS processes: `wask-scheduler`, two
//! `wask-worker`s and the quickstart example, talking QUIC over loopback
//! through a scheduler file.
//!
//! Needs the binaries built: `cargo test --workspace` does it.

use wask::{Client, Error, Options, TaskError};
use wask_tests::procs::{
    Host, Proc, START_TIMEOUT, STOP_TIMEOUT, TempDir, bin, start_scheduler, start_worker,
    worker_command,
};
use wask_tests::quickstart::{Quickstart, run_quickstart};
use wask_tests::{FAULTY, MATH, eventually};

/// Loopback only: the tests never listen on other interfaces.
const LOOPBACK: &[&str] = &["--host", "127.0.0.1"];

#[test]
fn quickstart_against_separate_processes() {
    let dir = TempDir::new("procs-quickstart");
    let scheduler = start_scheduler(Host::Here, dir.path(), LOOPBACK);
    let _w1 = start_worker(Host::Here, &scheduler.file, "w1");
    let _w2 = start_worker(Host::Here, &scheduler.file, "w2");

    let remote = run_quickstart(Host::Here, Some(&scheduler.file));
    remote.assert_success("quickstart --scheduler-file");
    let remote = Quickstart::parse(&remote.stdout);
    assert_eq!(remote.workers, 2);

    // The same binary on its embedded LocalCluster: a pure key hashes only
    // the call, so it is the same in another process on another cluster; a
    // uuid key is new in every run.
    let local = run_quickstart(Host::Here, None);
    local.assert_success("quickstart (LocalCluster)");
    let local = Quickstart::parse(&local.stdout);
    assert_eq!(local.workers, 2);
    assert_eq!(
        (&remote.x, &remote.l01, &remote.a),
        (&local.x, &local.l01, &local.a)
    );
    for r in [&local.r.0, &local.r.1] {
        assert!(r != &remote.r.0 && r != &remote.r.1, "uuid key {r} reused");
    }
}

/// The names of the workers the scheduler lists, sorted.
async fn worker_names(client: &Client) -> Vec<String> {
    let mut names: Vec<String> = client
        .info()
        .await
        .map(|i| i.workers.into_iter().map(|w| w.name).collect())
        .unwrap_or_default();
    names.sort();
    names
}

/// Two workers named by `--name`, then `signal` to one worker, then to
/// the scheduler: each exits 0, the scheduler forgets the worker that
/// left, and the other worker stops on its own when the scheduler is gone.
async fn signal_stops_worker_and_scheduler_cleanly(signal: i32, what: &str) {
    let dir = TempDir::new(&format!("procs-{what}"));
    let mut scheduler = start_scheduler(Host::Here, dir.path(), LOOPBACK);
    let mut w1 = start_worker(Host::Here, &scheduler.file, "first-w1");
    let mut w2 = start_worker(Host::Here, &scheduler.file, "second-w2");

    let client = Client::connect(scheduler.file.as_path()).await.unwrap();
    let both = vec!["first-w1".to_string(), "second-w2".to_string()];
    assert!(
        eventually(START_TIMEOUT, || async {
            worker_names(&client).await == both
        })
        .await,
        "the scheduler does not list both workers by name: {:?}",
        client.info().await
    );
    // `wask info` shows them by name too.
    let info = tokio::task::block_in_place(|| wask_info(&scheduler.file));
    for name in &both {
        assert!(
            info.lines()
                .any(|l| l.split_whitespace().nth(1) == Some(name)),
            "{name} not in the name column of\n{info}"
        );
    }

    w1.signal(signal);
    let status = tokio::task::block_in_place(|| w1.wait(STOP_TIMEOUT));
    assert_eq!(
        status.code(),
        Some(0),
        "worker exit on {what}: {status}\nstderr:\n{}",
        w1.stderr()
    );
    assert!(
        eventually(STOP_TIMEOUT, || async {
            worker_names(&client).await == ["second-w2"]
        })
        .await,
        "the scheduler still lists the stopped worker: {:?}\nscheduler stderr:\n{}\nworker stderr:\n{}",
        client.info().await,
        scheduler.proc.stderr(),
        w1.stderr()
    );

    // The cluster goes on with the remaining worker.
    let math = client.load_module(MATH).await.unwrap();
    let inc = math.task::<(i64,), i64>("inc").unwrap();
    assert_eq!(client.submit(&inc, (41,)).unwrap().await.unwrap(), 42);
    client.close();

    scheduler.proc.signal(signal);
    let status = tokio::task::block_in_place(|| scheduler.proc.wait(STOP_TIMEOUT));
    assert_eq!(
        status.code(),
        Some(0),
        "scheduler exit on {what}: {status}\nstderr:\n{}",
        scheduler.proc.stderr()
    );
    // A worker whose scheduler is gone stops on its own (with an error: the
    // cluster it served ended under it), it does not hang.
    let status = tokio::task::block_in_place(|| w2.wait(STOP_TIMEOUT));
    assert!(!status.success(), "{status}");
    assert!(
        w2.stderr().contains("scheduler connection ended"),
        "{}",
        w2.stderr()
    );
}

/// `wask info --scheduler-file FILE`'s output; it must succeed.
fn wask_info(file: &std::path::Path) -> String {
    let mut cmd = Host::Here.command(&bin("wask"));
    cmd.arg("info").arg("--scheduler-file").arg(file);
    let mut proc = Proc::spawn("wask info", cmd);
    let status = proc.wait(START_TIMEOUT);
    assert!(status.success(), "{status}\n{}", proc.stderr());
    proc.stdout()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_worker_and_scheduler_cleanly() {
    signal_stops_worker_and_scheduler_cleanly(libc::SIGTERM, "sigterm").await;
}

/// Ctrl-C in a terminal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_stops_worker_and_scheduler_cleanly() {
    signal_stops_worker_and_scheduler_cleanly(libc::SIGINT, "sigint").await;
}

#[test]
fn worker_with_the_wrong_secret_is_refused() {
    let dir = TempDir::new("procs-secret");
    let scheduler = start_scheduler(Host::Here, dir.path(), LOOPBACK);
    let mut cmd = worker_command(Host::Here, &scheduler.file, "intruder");
    cmd.env("WASK_CLUSTER_SECRET", "not-the-cluster-secret-0123456789");
    let mut worker = Proc::spawn("wask-worker intruder", cmd);
    let status = worker.wait(START_TIMEOUT);
    assert!(!status.success(), "a worker with a wrong secret ran");
    assert!(
        worker.stderr().contains("refused"),
        "exit {status}, stderr:\n{}",
        worker.stderr()
    );
    assert!(
        !worker.stdout().contains("serving peers"),
        "{}",
        worker.stdout()
    );
}

#[test]
fn missing_scheduler_file_is_a_clear_error() {
    let dir = TempDir::new("procs-nofile");
    let missing = dir.path().join("nope.json");
    let mut worker = Proc::spawn("wask-worker", worker_command(Host::Here, &missing, "lost"));
    let status = worker.wait(START_TIMEOUT);
    assert!(!status.success());
    assert!(worker.stderr().contains("nope.json"), "{}", worker.stderr());
}

/// The scheduler file is written once the port is bound, and names it.
#[test]
fn scheduler_file_names_the_bound_port() {
    let dir = TempDir::new("procs-file");
    let scheduler = start_scheduler(Host::Here, dir.path(), LOOPBACK);
    let address = wask::SchedulerAddress::from_file(&scheduler.file).unwrap();
    assert_eq!(address.addr.to_string(), scheduler.listening);
    assert_ne!(address.addr.port(), 0);
    assert!(!address.cert_der.is_empty());
}

/// Bytes of results the worker holds, as the scheduler reports them.
async fn held_bytes(client: &Client) -> u64 {
    client
        .info()
        .await
        .map(|i| i.workers.iter().map(|w| w.held_bytes).sum())
        .unwrap_or(u64::MAX)
}

/// `wask-worker --memory-limit`: a result that would pass it is refused
/// with `WorkerFull`, the worker goes on serving, and once results are
/// released the same call succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_its_memory_limit_a_worker_refuses_results_until_released() {
    const LIMIT: u64 = 20_000;
    let dir = TempDir::new("procs-memory");
    let scheduler = start_scheduler(Host::Here, dir.path(), LOOPBACK);
    let mut cmd = worker_command(Host::Here, &scheduler.file, "small");
    cmd.args(["--memory-limit", &LIMIT.to_string()]);
    let mut worker = Proc::spawn("wask-worker small", cmd);
    worker.wait_for_line("wask-worker ", START_TIMEOUT);

    let client = Client::connect(scheduler.file.as_path()).await.unwrap();
    let faulty = client.load_module(FAULTY).await.unwrap();
    // `big(n)`: n bytes, held as a postcard Vec<u8> (a 2-byte length, then
    // the bytes).
    let big = faulty.task::<(u64,), Vec<u8>>("big").unwrap();
    let inc = faulty.task::<(i64,), i64>("inc").unwrap();
    let impure = Options::new().pure(false);

    let first = client.submit(&big, (12_000,)).unwrap();
    assert_eq!(first.result().await.unwrap().len(), 12_000);
    assert_eq!(held_bytes(&client).await, 12_002);

    // 12,002 + 12,003 bytes would pass 20,000.
    let refused = client.submit_with(&big, (12_001,), &impure).unwrap();
    match refused.result().await {
        Err(Error::Task {
            error: TaskError::WorkerFull { message },
            ..
        }) => assert!(
            message.contains("12003") && message.contains(&LIMIT.to_string()),
            "{message}"
        ),
        other => panic!("expected WorkerFull, got {other:?}"),
    }
    // What fits still fits, and the worker still runs tasks.
    let small = client.submit(&big, (100,)).unwrap();
    assert_eq!(small.result().await.unwrap().len(), 100);
    assert_eq!(client.submit(&inc, (1,)).unwrap().await.unwrap(), 2);

    // Released, the memory is free again: the refused call now succeeds.
    drop((first, small, refused));
    assert!(
        eventually(STOP_TIMEOUT, || async { held_bytes(&client).await == 0 }).await,
        "results not released: {} bytes held",
        held_bytes(&client).await
    );
    let again = client.submit_with(&big, (12_001,), &impure).unwrap();
    assert_eq!(again.result().await.unwrap().len(), 12_001);
    assert_eq!(held_bytes(&client).await, 12_003);
    client.close();
}
