//! TLS credentials given by the operator, across real processes: a CA and
//! a scheduler certificate made here with rcgen, `wask-scheduler
//! --tls-cert/--tls-key`, a `wask-worker <address> --tls-ca`, the `wask`
//! CLI and a `Client` connecting by address or by scheduler file.
//!
//! The rule under test (`wask_net::tls`): a client trusts one certificate,
//! either pinned as it is (the scheduler file carries the scheduler's own)
//! or as the CA of the chain the scheduler presents, whose leaf must carry
//! the DNS name `wask`.
//!
//! Needs the binaries built: `cargo test --workspace` does it.

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use std::path::{Path, PathBuf};
use std::process::Command;
use wask::{Client, Error};
use wask_tests::procs::{
    Host, Proc, Run, START_TIMEOUT, SchedulerProc, TempDir, bin, start_scheduler,
};
use wask_tests::{MATH, eventually};

/// A CA, and a scheduler certificate for `names` it issued, written as
/// `<tag>-ca.pem`, `<tag>-cert.pem` and `<tag>-key.pem` in `dir`.
struct Credentials {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

/// A `wask-scheduler` on 127.0.0.1 presenting `creds`' certificate.
fn scheduler_with(dir: &Path, creds: &Credentials) -> SchedulerProc {
    start_scheduler(
        Host::Here,
        dir,
        &[
            "--host",
            "127.0.0.1",
            "--tls-cert",
            creds.cert.to_str().unwrap(),
            "--tls-key",
            creds.key.to_str().unwrap(),
        ],
    )
}

fn credentials(dir: &Path, tag: &str, names: &[&str]) -> Credentials {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, format!("{tag} CA"));
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let cert = CertificateParams::new(names)
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let write = |name: &str, text: String| {
        let path = dir.join(format!("{tag}-{name}.pem"));
        std::fs::write(&path, text).unwrap();
        path
    };
    Credentials {
        ca: write("ca", ca.pem()),
        cert: write("cert", cert.pem()),
        key: write("key", key.serialize_pem()),
    }
}

/// Runs the `wask` CLI to its end, with `WASK_TLS_CA` set to `tls_ca_env`
/// (or removed).
fn wask_cli(args: &[&str], tls_ca_env: Option<&Path>) -> Run {
    let mut cmd = Command::new(bin("wask"));
    cmd.args(args)
        .env_remove("WASK_TOKEN")
        .env_remove("RUST_LOG");
    match tls_ca_env {
        Some(ca) => cmd.env("WASK_TLS_CA", ca),
        None => cmd.env_remove("WASK_TLS_CA"),
    };
    let mut proc = Proc::spawn("wask", cmd);
    let status = proc.wait(START_TIMEOUT);
    Run {
        status,
        stdout: proc.stdout(),
        stderr: proc.stderr(),
    }
}

/// The text after `prefix` on the line of `stdout` that starts with it.
fn line<'a>(stdout: &'a str, prefix: &str) -> &'a str {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} line in {stdout:?}"))
}

/// `wask-worker <address> --tls-ca <ca>` with the scheduler's secret file.
fn worker_by_address(address: &str, ca: &Path, secret: &Path, name: &str) -> Proc {
    let mut cmd = Host::Here.command(&bin("wask-worker"));
    cmd.arg(address)
        .arg("--tls-ca")
        .arg(ca)
        .arg("--secret-file")
        .arg(secret)
        .args(["--nthreads", "1", "--host", "127.0.0.1", "--name", name]);
    Proc::spawn(&format!("wask-worker {name}"), cmd)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ca_issued_scheduler_certificate() {
    let dir = TempDir::new("tls-ca");
    let creds = credentials(dir.path(), "good", &["wask", "scheduler.example"]);
    let scheduler = scheduler_with(dir.path(), &creds);
    let address = scheduler.listening.clone();
    let secret = PathBuf::from(format!("{}.secret", scheduler.file.display()));

    // The scheduler file carries the given certificate, not a generated one.
    let file = wask::SchedulerAddress::from_file(&scheduler.file).unwrap();
    let given = std::fs::read(&creds.cert).unwrap();
    assert_eq!(
        file.cert_der,
        wask_net::tls::certificate_from_file(&given).unwrap()
    );

    // A worker given the address and the CA joins.
    let mut worker = worker_by_address(&address, &creds.ca, &secret, "by-address");
    worker.wait_for_line("wask-worker ", START_TIMEOUT);

    // A client by address with the CA from the builder; its worker is there
    // under its name.
    let client = Client::builder(address.as_str())
        .tls_ca(&creds.ca)
        .connect()
        .await
        .unwrap();
    assert!(
        eventually(START_TIMEOUT, || async {
            client.info().await.is_ok_and(|i| i.workers.len() == 1)
        })
        .await
    );
    let info = client.info().await.unwrap();
    assert_eq!(info.workers[0].name, "by-address");
    let math = client.load_module(MATH).await.unwrap();
    let inc = math.task::<(i64,), i64>("inc").unwrap();
    assert_eq!(client.submit(&inc, (1,)).unwrap().await.unwrap(), 2);

    // By address without a certificate to trust: a clear error.
    match Client::connect(address.as_str()).await {
        Err(e @ Error::NoTrustedCertificate { .. }) => {
            let text = e.to_string();
            assert!(
                text.contains("tls_ca") && text.contains("WASK_TLS_CA"),
                "{text}"
            );
        }
        other => panic!("expected NoTrustedCertificate, got {other:?}"),
    }
    // A string naming the scheduler file is still a scheduler file, which
    // pins the CA-issued certificate as it is.
    let by_file = Client::connect(scheduler.file.to_str().unwrap())
        .await
        .unwrap();
    assert_eq!(by_file.info().await.unwrap().workers.len(), 1);

    // The CLI: by scheduler file; by address with --tls-ca; by address with
    // $WASK_TLS_CA; by address with nothing to trust.
    let math_path = MATH;
    let file_arg = scheduler.file.to_str().unwrap();
    let ca_arg = creds.ca.to_str().unwrap();
    let run = wask_cli(
        &[
            "submit",
            "--scheduler-file",
            file_arg,
            math_path,
            "inc",
            "10",
        ],
        None,
    );
    run.assert_success("wask submit --scheduler-file");
    assert_eq!(line(&run.stdout, "result: "), "11");
    let run = wask_cli(
        &[
            "submit",
            "--scheduler",
            &address,
            "--tls-ca",
            ca_arg,
            math_path,
            "inc",
            "20",
        ],
        None,
    );
    run.assert_success("wask submit --scheduler --tls-ca");
    assert_eq!(line(&run.stdout, "result: "), "21");
    let run = wask_cli(&["info", "--scheduler", &address], Some(&creds.ca));
    run.assert_success("wask info --scheduler with WASK_TLS_CA");
    assert_eq!(line(&run.stdout, "workers: "), "1");
    assert!(run.stdout.contains(" by-address "), "{}", run.stdout);
    let run = wask_cli(&["info", "--scheduler", &address], None);
    assert_eq!(run.status.code(), Some(1), "{}", run.stdout);
    assert!(run.stderr.contains("WASK_TLS_CA"), "{}", run.stderr);

    // A worker trusting another CA is refused by its own TLS check.
    let stranger = credentials(dir.path(), "stranger", &["wask"]);
    let mut intruder = worker_by_address(&address, &stranger.ca, &secret, "stranger");
    let status = intruder.wait(START_TIMEOUT);
    assert!(!status.success());
    assert!(
        intruder.stderr().contains("UnknownIssuer"),
        "{}",
        intruder.stderr()
    );
    client.close();
    by_file.close();
}

/// Through the CA, the name `wask` is what a client checks: a certificate
/// without it is refused by a worker given the CA, with the reason.
#[test]
fn without_the_name_wask_a_ca_issued_certificate_is_refused() {
    let dir = TempDir::new("tls-name");
    let creds = credentials(dir.path(), "nameless", &["scheduler.example", "127.0.0.1"]);
    let scheduler = scheduler_with(dir.path(), &creds);
    let secret = PathBuf::from(format!("{}.secret", scheduler.file.display()));
    let mut worker = worker_by_address(&scheduler.listening, &creds.ca, &secret, "w");
    let status = worker.wait(START_TIMEOUT);
    assert!(!status.success());
    assert!(
        worker.stderr().contains("not valid for name \"wask\""),
        "{}",
        worker.stderr()
    );
    // Given the certificate itself, the same worker joins.
    let mut pinned = worker_by_address(&scheduler.listening, &creds.cert, &secret, "w");
    pinned.wait_for_line("wask-worker ", START_TIMEOUT);
}
