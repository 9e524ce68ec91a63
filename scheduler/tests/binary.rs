//! The `wask-scheduler` binary as a child process: its flags, its scheduler
//! file and a clean exit on SIGTERM.
//!
//! Having an integration test here also makes `cargo test --workspace` build
//! the binary itself into `target/<profile>/`, where the cluster tests of
//! `wask-tests` start it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use wask_proto::scheduler_file::SchedulerFile;

const BIN: &str = env!("CARGO_BIN_EXE_wask-scheduler");

fn temp_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("wask-sched-bin-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("creating a temp dir");
    dir
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
        "--host",
        "--port",
        "--scheduler-file",
        "--advertise",
        "--tls-cert",
        "--tls-key",
        "--secret-file",
        "--saturation",
        "--config",
        "--hash-token",
        "--hello-timeout",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}:\n{help}");
    }
    assert!(
        help.contains("8786"),
        "--help does not show the default port"
    );
    // The name a CA-issued certificate must carry.
    assert!(help.contains("`wask`"), "{help}");
}

#[test]
fn a_zero_hello_timeout_is_refused() {
    let out = Command::new(BIN)
        .args(["--host", "127.0.0.1", "--port", "0", "--hello-timeout", "0"])
        .output()
        .expect("running the scheduler");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--hello-timeout must be a positive number of seconds"),
        "{stderr}"
    );
}

#[test]
fn hash_token_prints_the_configured_hash() {
    let out = Command::new(BIN)
        .args(["--hash-token", "s3cret"])
        .output()
        .expect("running --hash-token");
    assert!(out.status.success());
    let printed = String::from_utf8(out.stdout).expect("utf-8");
    assert_eq!(
        printed.trim(),
        wask_scheduler::tenants::hash_token("s3cret")
    );
    assert_eq!(printed.trim().len(), 64);
}

#[test]
fn a_bad_config_is_refused_naming_the_file() {
    let dir = temp_dir("config");
    let config = dir.join("tenants.toml");
    std::fs::write(&config, "[[tenant]]\nname = 3\n").expect("writing the config");
    let out = Command::new(BIN)
        .args(["--host", "127.0.0.1", "--port", "0", "--config"])
        .arg(&config)
        .env("WASK_CLUSTER_SECRET", "0123456789abcdef0123")
        .output()
        .expect("running the scheduler");
    assert!(!out.status.success(), "a bad config was accepted");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("tenants.toml"),
        "the error does not name the file: {stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn writes_its_scheduler_file_and_exits_cleanly_on_sigterm() {
    let dir = temp_dir("run");
    let file = dir.join("scheduler.json");
    let mut child = Command::new(BIN)
        .args(["--host", "127.0.0.1", "--port", "0", "--scheduler-file"])
        .arg(&file)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting the scheduler");
    // Readiness is the line on stdout, printed after the file is written.
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped"))
        .read_line(&mut line)
        .expect("reading the ready line");
    assert!(
        line.starts_with("wask-scheduler listening on 127.0.0.1:"),
        "{line}"
    );

    let parsed: SchedulerFile =
        serde_json::from_str(&std::fs::read_to_string(&file).expect("the scheduler file exists"))
            .expect("the scheduler file is JSON");
    let port: u16 = parsed
        .address
        .strip_prefix("127.0.0.1:")
        .and_then(|p| p.parse().ok())
        .expect("address is 127.0.0.1:<port>");
    assert_ne!(port, 0);
    assert!(parsed.cert_der().is_some_and(|c| !c.is_empty()));
    // The cluster secret was created beside the file, readable only by us.
    let secret = dir.join("scheduler.json.secret");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&secret)
            .expect("the secret file exists")
            .permissions(),
    );
    assert_eq!(mode & 0o077, 0, "the secret file is readable by others");

    // SAFETY: kill(2) on our own child's pid.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(rc, 0);
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for the scheduler") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the scheduler did not exit within 15 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "exit status {status}");
    let _ = std::fs::remove_dir_all(&dir);
}
