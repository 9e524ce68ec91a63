//! The real binaries as separate OS processes: `wask-scheduler`, two
//! `wask-worker`s and the quickstart example, talking QUIC over loopback
//! through a scheduler file.
//!
//! Needs the binaries built: `cargo test --workspace` does it.

use wask::Client;
use wask_tests::procs::{
    Host, Proc, START_TIMEOUT, STOP_TIMEOUT, TempDir, run_quickstart, start_scheduler,
    start_worker, worker_command,
};
use wask_tests::{MATH, eventually};

/// Loopback only: the tests never listen on other interfaces.
const LOOPBACK: &[&str] = &["--host", "127.0.0.1"];

/// The keys the quickstart prints: `x`'s (from `<Future: …, key: inc-…>`
/// after `submit(inc, 10)`) and `a.key`.
fn printed_keys(stdout: &str) -> (String, String) {
    let mut lines = stdout.lines();
    lines
        .by_ref()
        .find(|l| l.starts_with(">>> x = client.submit(inc, 10)"))
        .unwrap_or_else(|| panic!("no submit(inc, 10) step in\n{stdout}"));
    let future = lines.next().unwrap_or_default();
    let x = future
        .split("key: ")
        .nth(1)
        .and_then(|k| k.strip_suffix('>'))
        .unwrap_or_else(|| panic!("no future after submit(inc, 10): {future:?}"))
        .to_string();
    let a = stdout
        .lines()
        .find_map(|l| l.strip_prefix("a.key = "))
        .unwrap_or_else(|| panic!("no a.key line in\n{stdout}"))
        .to_string();
    for k in [&x, &a] {
        let hex = k.strip_prefix("inc-").unwrap_or_else(|| panic!("key {k}"));
        assert!(
            hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit()),
            "not a pure key: {k}"
        );
    }
    (x, a)
}

#[test]
fn quickstart_against_separate_processes() {
    let dir = TempDir::new("procs-quickstart");
    let scheduler = start_scheduler(Host::Here, dir.path(), LOOPBACK);
    let _w1 = start_worker(Host::Here, &scheduler.file, "w1");
    let _w2 = start_worker(Host::Here, &scheduler.file, "w2");

    let remote = run_quickstart(Host::Here, Some(&scheduler.file));
    remote.assert_success("quickstart --scheduler-file");
    for want in ["quickstart: all steps OK", "with 2 workers", "11", "500500"] {
        assert!(
            remote.stdout.contains(want),
            "{want:?} missing from\n{}",
            remote.stdout
        );
    }

    // The same binary on its embedded LocalCluster: a pure key hashes only
    // the call, so it is the same in another process on another cluster.
    let local = run_quickstart(Host::Here, None);
    local.assert_success("quickstart (LocalCluster)");
    assert!(local.stdout.contains("quickstart: all steps OK"));
    assert_eq!(printed_keys(&remote.stdout), printed_keys(&local.stdout));
}

async fn workers(client: &Client) -> usize {
    client.info().await.map(|i| i.workers.len()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_worker_and_scheduler_cleanly() {
    let dir = TempDir::new("procs-sigterm");
    let mut scheduler = start_scheduler(Host::Here, dir.path(), LOOPBACK);
    let mut w1 = start_worker(Host::Here, &scheduler.file, "w1");
    let mut w2 = start_worker(Host::Here, &scheduler.file, "w2");

    let client = Client::connect(scheduler.file.as_path()).await.unwrap();
    assert!(
        eventually(START_TIMEOUT, || async { workers(&client).await == 2 }).await,
        "the scheduler does not list both workers: {:?}",
        client.info().await
    );

    w1.terminate();
    let status = tokio::task::block_in_place(|| w1.wait(STOP_TIMEOUT));
    assert_eq!(
        status.code(),
        Some(0),
        "worker exit on SIGTERM: {status}\nstderr:\n{}",
        w1.stderr()
    );
    assert!(
        eventually(STOP_TIMEOUT, || async { workers(&client).await == 1 }).await,
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

    scheduler.proc.terminate();
    let status = tokio::task::block_in_place(|| scheduler.proc.wait(STOP_TIMEOUT));
    assert_eq!(
        status.code(),
        Some(0),
        "scheduler exit on SIGTERM: {status}\nstderr:\n{}",
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
