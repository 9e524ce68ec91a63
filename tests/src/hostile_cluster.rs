//! A hostile-peer test cluster: an in-process scheduler with a short hello
//! timeout, one worker, and a client connected before any attack; raw QUIC
//! connections to point at it, and the bytes to send on them (frames,
//! hellos, noise).

use bytes::Bytes;
use quinn::{ApplicationClose, Connection, ConnectionError, Endpoint, VarInt};
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wask::{Client, SchedulerAddress};
use wask_net::Identity;
use wask_net::framed;
use wask_proto::PROTOCOL_VERSION;
use wask_proto::frame;
use wask_proto::limits::MAX_FRAME;
use wask_proto::msg::{ClientRequest, WorkerRequest};
use wask_scheduler::server::{OpenAccess, Scheduler, SchedulerConfig};
use wask_scheduler::state::CoreConfig;
use wask_worker::sandbox::SandboxConfig;
use wask_worker::server::{Worker, WorkerConfig};

use crate::{MATH, eventually};

/// The scheduler's and the worker's (peer port) hello timeout in these
/// tests.
pub const HELLO_TIMEOUT: Duration = Duration::from_millis(300);
/// Bound on waiting for a hostile connection to be closed.
pub const CLOSE_BOUND: Duration = Duration::from_secs(10);
/// Bound on a health check (connect, load the module, run `inc`).
pub const HEALTH_BOUND: Duration = Duration::from_secs(60);
/// The cluster secret of these tests.
pub const SECRET: &str = "hostile-peers-cluster-secret-0123456789";

/// An in-process scheduler, one worker, and a client connected before any
/// hostile peer shows up.
pub struct Cluster {
    pub scheduler: Scheduler,
    pub worker: Worker,
    pub address: SchedulerAddress,
    pub client: Client,
}

impl Cluster {
    pub async fn start() -> Cluster {
        let scheduler = Scheduler::start(SchedulerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            identity: Identity::self_signed().unwrap(),
            cluster_secret: SECRET.to_string(),
            auth: Arc::new(OpenAccess),
            core: CoreConfig::default(),
            hello_timeout: HELLO_TIMEOUT,
        })
        .await
        .unwrap();
        let address = SchedulerAddress {
            addr: scheduler.address(),
            cert_der: scheduler.cert_der().to_vec(),
        };
        let worker = Worker::start(WorkerConfig {
            scheduler: address.addr,
            scheduler_cert: address.cert_der.clone(),
            secret: SECRET.to_string(),
            name: "honest".to_string(),
            nthreads: 1,
            memory_limit: 1 << 30,
            listen: "127.0.0.1:0".parse().unwrap(),
            advertise: None,
            // Its peer port drops silent peers as fast as the scheduler.
            hello_timeout: HELLO_TIMEOUT,
            sandbox: SandboxConfig {
                max_instances: 3,
                ..SandboxConfig::default()
            },
        })
        .await
        .unwrap();
        let client = Client::connect(address.clone()).await.unwrap();
        let cluster = Cluster {
            scheduler,
            worker,
            address,
            client,
        };
        cluster.assert_workers(1).await;
        cluster
    }

    /// Runs `inc(n)` on the client connected before the attack and on a
    /// fresh one.
    pub async fn assert_serves(&self, n: i64) {
        let check = async {
            for (client, n) in [
                (self.client.clone(), n),
                (Client::connect(self.address.clone()).await.unwrap(), n + 1),
            ] {
                let math = client.load_module(MATH).await.unwrap();
                let inc = math.task::<(i64,), i64>("inc").unwrap();
                assert_eq!(client.submit(&inc, (n,)).unwrap().await.unwrap(), n + 1);
            }
        };
        tokio::time::timeout(HEALTH_BOUND, check)
            .await
            .expect("the cluster stopped serving");
        self.assert_workers(1).await;
    }

    /// Waits (bounded) until the scheduler lists exactly `n` workers.
    pub async fn assert_workers(&self, n: usize) {
        let count = || async {
            self.client
                .info()
                .await
                .map(|i| i.workers.len())
                .unwrap_or(usize::MAX)
        };
        assert!(
            eventually(CLOSE_BOUND, || async { count().await == n }).await,
            "the scheduler lists {} workers, not {n}",
            count().await
        );
    }

    pub async fn shutdown(self) {
        self.client.close();
        self.worker.shutdown().await;
        self.scheduler.shutdown().await;
    }
}

/// A raw QUIC connection (and the endpoint it lives on).
pub struct Raw {
    pub _endpoint: Endpoint,
    pub conn: Connection,
}

pub async fn raw(addr: SocketAddr, cert: &[u8], alpn: &[u8]) -> Raw {
    let endpoint = wask_net::endpoint::client(addr).unwrap();
    let conn = wask_net::endpoint::connect(&endpoint, addr, cert, alpn)
        .await
        .unwrap_or_else(|e| panic!("connecting with ALPN {:?}: {e}", bytes_text(alpn)));
    Raw {
        _endpoint: endpoint,
        conn,
    }
}

impl Cluster {
    pub async fn raw(&self, alpn: &[u8]) -> Raw {
        raw(self.address.addr, &self.address.cert_der, alpn).await
    }
}

pub fn bytes_text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Waits (bounded) for `conn` to be closed by the other side and checks the
/// application code. Returns how long it took.
pub async fn assert_closed_with(conn: &Connection, want: VarInt, what: &str) -> Duration {
    let start = Instant::now();
    let err = tokio::time::timeout(CLOSE_BOUND, conn.closed())
        .await
        .unwrap_or_else(|_| panic!("{what}: still open after {CLOSE_BOUND:?}"));
    match err {
        ConnectionError::ApplicationClosed(ApplicationClose { error_code, reason }) => {
            assert_eq!(
                error_code,
                want,
                "{what}: closed with code {error_code} ({:?}), expected {want}",
                bytes_text(&reason)
            );
        }
        other => panic!("{what}: expected an application close with {want}, got {other}"),
    }
    start.elapsed()
}

/// A deterministic byte source (xorshift64).
pub struct Noise(pub u64);

impl Noise {
    /// The next 64 bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// `n` bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

/// A frame of the right length whose body is no message: variant 0x42 of
/// an enum with a handful of variants.
pub fn undecodable_frame() -> Vec<u8> {
    let body = [0x42u8, 0x13, 0x37, 0x00];
    let mut f = (body.len() as u32).to_le_bytes().to_vec();
    f.extend_from_slice(&body);
    f
}

/// A client hello frame without a token.
pub fn client_hello() -> Vec<u8> {
    frame::encode_to_vec(&ClientRequest::Hello {
        protocol: PROTOCOL_VERSION,
        token: None,
    })
}

/// A worker hello with `secret`, for a worker that will serve no peers.
pub fn worker_hello(secret: &str) -> WorkerRequest {
    WorkerRequest::Hello {
        protocol: PROTOCOL_VERSION,
        secret: secret.to_string(),
        name: "fake".to_string(),
        nthreads: 1,
        memory_limit: 1 << 20,
        // Nobody fetches from it: it leaves before any task is submitted.
        peer_address: "127.0.0.1:9".to_string(),
        peer_cert: Bytes::from_static(b"not a certificate"),
    }
}

/// Opens the control stream and writes `bytes` on it. The stream halves are
/// returned so that they stay open (dropping the send half would finish it).
pub async fn send_on_control(
    conn: &Connection,
    bytes: &[u8],
) -> (quinn::SendStream, framed::FrameReader) {
    let (mut send, recv) = conn.open_bi().await.unwrap();
    // The scheduler may close the connection before the write completes.
    let _ = send.write_all(bytes).await;
    (send, framed::FrameReader::new(recv, MAX_FRAME))
}

/// Sends `count` datagrams of noise (some shaped like QUIC long- and
/// short-header packets) from a loopback socket to `to`.
pub fn udp_noise(to: SocketAddr, count: usize, seed: u64) {
    assert!(to.ip().is_loopback(), "noise stays on loopback: {to}");
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut noise = Noise(seed);
    for i in 0..count {
        let mut d = match i % 4 {
            // Random bytes of random size.
            0 => {
                let n = 1 + (noise.next_u64() % 1400) as usize;
                noise.bytes(n)
            }
            // A long-header "Initial" of QUIC v1, padded to 1200 bytes.
            1 => {
                let mut d = vec![0xc0 | (noise.next_u64() as u8 & 0x0f), 0, 0, 0, 1];
                let dcid = 8 + (noise.next_u64() % 13) as u8;
                d.push(dcid);
                d.extend(noise.bytes(dcid as usize));
                d.push(8);
                d.extend(noise.bytes(8));
                d.extend(noise.bytes(1200 - d.len()));
                d
            }
            // An unknown version (asks for version negotiation).
            2 => {
                let mut d = vec![0xc0, 0x1a, 0x2a, 0x3a, 0x4a, 8];
                d.extend(noise.bytes(8));
                d.push(8);
                d.extend(noise.bytes(1200 - d.len()));
                d
            }
            // A short-header packet for a connection that does not exist.
            _ => {
                let n = 21 + (noise.next_u64() % 1200) as usize;
                let mut d = noise.bytes(n);
                d[0] = 0x40 | (d[0] & 0x3f);
                d
            }
        };
        if d.is_empty() {
            d.push(0);
        }
        socket.send_to(&d, to).unwrap();
    }
}
