//! A cluster across hosts: the scheduler, two workers and the client each in
//! a network namespace of their own, joined by a bridge in a fifth one, so
//! every connection (client → scheduler, worker → scheduler, worker →
//! worker) crosses a real (virtual) link with its own address instead of
//! loopback.
//!
//! Needs root and `ip` (iproute2). Without them the test says why and passes
//! as skipped. The namespaces are deleted at the end, even on failure; all
//! traffic stays inside them (no interface is added to the test's own
//! namespace).

use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::Duration;
use wask::Client;
use wask_tests::procs::{Host, TempDir, start_scheduler, start_worker};
use wask_tests::quickstart::{Quickstart, run_quickstart};
use wask_tests::{MATH, eventually};

/// Runs `ip <args>`; the error names the command and its stderr.
fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("running `ip {}`: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The namespaces of one run; deleted on drop.
struct Net {
    /// 10.213.<subnet>.0/24.
    subnet: u8,
    scheduler: String,
    workers: [String; 2],
    client: String,
    switch: String,
    created: Vec<String>,
}

impl Net {
    /// The address of the i-th host (1: scheduler, 2 and 3: workers,
    /// 4: client).
    fn addr(&self, i: u8) -> String {
        format!("10.213.{}.{i}", self.subnet)
    }

    /// Makes the namespaces, the bridge and the links. `Err` means this
    /// machine cannot run the test (the reason says why).
    fn setup() -> Result<Net, String> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err("not running as root".into());
        }
        ip(&["-V"]).map_err(|e| format!("no usable `ip` (iproute2): {e}"))?;
        let pid = std::process::id();
        let mut net = Net {
            subnet: (pid % 250) as u8 + 1,
            scheduler: format!("wask-s-{pid}"),
            workers: [format!("wask-w1-{pid}"), format!("wask-w2-{pid}")],
            client: format!("wask-c-{pid}"),
            switch: format!("wask-sw-{pid}"),
            created: Vec::new(),
        };
        let all = [
            net.switch.clone(),
            net.scheduler.clone(),
            net.workers[0].clone(),
            net.workers[1].clone(),
            net.client.clone(),
        ];
        for ns in &all {
            // A leftover of a crashed run with the same pid.
            let _ = ip(&["netns", "del", ns]);
            ip(&["netns", "add", ns])?;
            net.created.push(ns.clone());
        }
        let sw = net.switch.as_str();
        ip(&["-n", sw, "link", "set", "lo", "up"])?;
        ip(&["-n", sw, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", sw, "link", "set", "br0", "up"])?;
        for (i, host) in all[1..].iter().enumerate() {
            let i = i as u8 + 1;
            let port = format!("p{i}");
            // eth0 in the host's namespace, its peer in the switch's.
            ip(&[
                "-n", host, "link", "add", "eth0", "type", "veth", "peer", "name", &port, "netns",
                sw,
            ])?;
            ip(&["-n", sw, "link", "set", &port, "master", "br0"])?;
            ip(&["-n", sw, "link", "set", &port, "up"])?;
            let cidr = format!("{}/24", net.addr(i));
            ip(&["-n", host, "addr", "add", &cidr, "dev", "eth0"])?;
            ip(&["-n", host, "link", "set", "eth0", "up"])?;
            ip(&["-n", host, "link", "set", "lo", "up"])?;
        }
        Ok(net)
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for ns in self.created.iter().rev() {
            if let Err(e) = ip(&["netns", "del", ns]) {
                eprintln!("cleanup: {e}");
            }
        }
    }
}

/// Runs `f` on a thread of its own that has entered network namespace `ns`
/// (setns affects only the calling thread; sockets made there live in
/// `ns`).
fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/var/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        // SAFETY: a valid namespace fd; only this thread changes namespace.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
        f()
    })
    .join()
    .unwrap_or_else(|e| std::panic::resume_unwind(e))
}

#[test]
fn cluster_across_network_namespaces() {
    let net = match Net::setup() {
        Ok(n) => n,
        Err(why) => {
            eprintln!("SKIPPED cluster_across_network_namespaces: {why}");
            return;
        }
    };
    let dir = TempDir::new("netns");
    let scheduler_ip = net.addr(1);
    let scheduler = start_scheduler(
        Host::Netns(&net.scheduler),
        dir.path(),
        &["--host", &scheduler_ip],
    );
    assert!(
        scheduler.listening.starts_with(&format!("{scheduler_ip}:")),
        "{}",
        scheduler.listening
    );
    let _w1 = start_worker(Host::Netns(&net.workers[0]), &scheduler.file, "w1");
    let _w2 = start_worker(Host::Netns(&net.workers[1]), &scheduler.file, "w2");

    let run = run_quickstart(Host::Netns(&net.client), Some(&scheduler.file));
    run.assert_success("quickstart in the client namespace");
    assert_eq!(Quickstart::parse(&run.stdout).workers, 2);

    // The same from a client in this test, inside the client namespace:
    // both workers run part of the map, so the sum (on one of them) must
    // fetch the other's results over the bridge.
    let file = scheduler.file.clone();
    let worker_ips = [net.addr(2), net.addr(3)];
    let info = in_netns(&net.client, move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let client = Client::connect(file.as_path()).await.unwrap();
            let two = eventually(Duration::from_secs(30), || async {
                client
                    .info()
                    .await
                    .map(|i| i.workers.len() == 2)
                    .unwrap_or(false)
            })
            .await;
            assert!(two, "not 2 workers: {:?}", client.info().await);
            let math = client.load_module(MATH).await.unwrap();
            let inc = math.task::<(i64,), i64>("inc").unwrap();
            let sum = math.task::<(Vec<i64>,), i64>("sum").unwrap();
            // Arguments the quickstart did not use: fresh keys, run now.
            let l = client.map(&inc, (0..1000).map(|i| (i + 7000,))).unwrap();
            let total = client.submit(&sum, (&l,)).unwrap();
            let want: i64 = (7001..=8000).sum();
            assert_eq!(total.result().await.unwrap(), want);
            let info = client.info().await.unwrap();
            client.close();
            info
        })
    });
    let mut addresses: Vec<&str> = info
        .workers
        .iter()
        .map(|w| w.address.rsplit_once(':').map_or("", |(ip, _)| ip))
        .collect();
    addresses.sort();
    assert_eq!(
        addresses,
        [worker_ips[0].as_str(), worker_ips[1].as_str()],
        "workers advertise their namespace addresses"
    );
    for w in &info.workers {
        assert!(w.executed > 0, "worker {} ran nothing: {info:?}", w.name);
    }
}
