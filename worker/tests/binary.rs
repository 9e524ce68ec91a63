//! The `wask-worker` binary as a child process, joining a real scheduler
//! (in this process, over loopback QUIC) through a scheduler file.
//!
//! Having an integration test here also makes `cargo test --workspace` build
//! the binary itself into `target/<profile>/`, where the cluster tests of
//! `wask-tests` start it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wask_net::Identity;
use wask_proto::limits::ResolvedLimits;
use wask_proto::scheduler_file::SchedulerFile;
use wask_scheduler::server::{OpenAccess, Scheduler, SchedulerConfig};
use wask_scheduler::state::CoreConfig;

const BIN: &str = env!("CARGO_BIN_EXE_wask-worker");
const SECRET: &str = "a-cluster-secret-for-tests";

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wask-worker-bin-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("creating a temp dir");
    dir
}

/// A scheduler on loopback and its scheduler file in `dir`.
async fn scheduler(dir: &Path) -> (Scheduler, PathBuf) {
    let scheduler = Scheduler::start(SchedulerConfig {
        listen: "127.0.0.1:0".parse().expect("literal"),
        identity: Identity::self_signed().expect("a self-signed identity"),
        cluster_secret: SECRET.to_string(),
        auth: Arc::new(OpenAccess),
        core: CoreConfig {
            saturation: 2,
            defaults: ResolvedLimits::default(),
            max_limits: ResolvedLimits::default(),
            tenants: Vec::new(),
        },
        hello_timeout: Duration::from_secs(5),
    })
    .await
    .expect("starting the scheduler");
    let file = dir.join("scheduler.json");
    let json = serde_json::to_string(&SchedulerFile::new(
        scheduler.address().to_string(),
        scheduler.cert_der(),
    ))
    .expect("json");
    std::fs::write(&file, json).expect("writing the scheduler file");
    (scheduler, file)
}

fn worker(file: &Path, secret: &str) -> Child {
    Command::new(BIN)
        .arg("--scheduler-file")
        .arg(file)
        .args(["--nthreads", "1", "--host", "127.0.0.1", "--name", "w-test"])
        .env("WASK_CLUSTER_SECRET", secret)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting the worker")
}

/// Waits for the child on a blocking thread, killing it after `limit`.
async fn exit_within(mut child: Child, limit: Duration) -> (std::process::ExitStatus, String) {
    tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = child.try_wait().expect("waiting for the worker") {
                let mut stderr = String::new();
                use std::io::Read;
                let _ = child
                    .stderr
                    .take()
                    .expect("piped")
                    .read_to_string(&mut stderr);
                return (status, stderr);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("the worker did not exit within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    })
    .await
    .expect("the waiting thread")
}

#[test]
fn help_explains_every_flag() {
    let out = Command::new(BIN)
        .arg("--help")
        .output()
        .expect("running --help");
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).expect("utf-8 help");
    for flag in [
        "--scheduler-file",
        "--tls-ca",
        "--secret-file",
        "--nthreads",
        "--memory-limit",
        "--name",
        "--host",
        "--port",
        "--advertise",
        "--hello-timeout",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}:\n{help}");
    }
    // The name a CA-issued scheduler certificate must carry.
    assert!(help.contains("`wask`"), "{help}");
}

#[test]
fn a_missing_scheduler_file_is_a_clear_error() {
    let out = Command::new(BIN)
        .args(["--scheduler-file", "/nonexistent/wask/scheduler.json"])
        .env("WASK_CLUSTER_SECRET", SECRET)
        .output()
        .expect("running the worker");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("/nonexistent/wask/scheduler.json"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joins_and_leaves_cleanly_on_sigterm() {
    let dir = temp_dir("join");
    let (scheduler, file) = scheduler(&dir).await;
    let mut child = worker(&file, SECRET);
    let stdout = child.stdout.take().expect("piped");
    // The ready line is printed once the scheduler has welcomed the worker.
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("reading");
        line
    })
    .await
    .expect("the reading thread");
    assert!(line.starts_with("wask-worker "), "no ready line: {line:?}");
    assert!(line.contains("serving peers on 127.0.0.1:"), "{line}");

    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) },
        0
    );
    let (status, stderr) = exit_within(child, Duration::from_secs(15)).await;
    assert!(status.success(), "exit {status}: {stderr}");
    scheduler.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_cluster_secret_is_refused() {
    let dir = temp_dir("secret");
    let (scheduler, file) = scheduler(&dir).await;
    let child = worker(&file, "not-the-cluster-secret");
    let (status, stderr) = exit_within(child, Duration::from_secs(30)).await;
    assert!(
        !status.success(),
        "a worker with a wrong secret kept running"
    );
    assert!(
        stderr.to_lowercase().contains("secret") || stderr.to_lowercase().contains("refused"),
        "the error does not say why: {stderr}"
    );
    scheduler.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
