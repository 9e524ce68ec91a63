//! Peers that break the protocol on the scheduler's port: garbage and
//! oversized frames, silence, wrong hellos, stray UDP datagrams, a worker
//! reporting nonsense (a worker's peer port: `hostile_peer_ports.rs`).
//!
//! Each is made with a raw QUIC connection (or a plain UDP socket) against
//! an in-process scheduler with a short hello timeout and one in-process
//! worker. The hostile peer must be disconnected with the right application
//! code, and the cluster must go on serving: a client connected before the
//! attack and a fresh one both still run `inc`.

use bytes::Bytes;
use quinn::{ApplicationClose, ConnectionError};
use std::sync::Arc;
use std::time::Duration;
use wask::{Client, SchedulerAddress};
use wask_net::{codes, framed};
use wask_proto::frame;
use wask_proto::limits::MAX_FRAME;
use wask_proto::limits::ResolvedLimits;
use wask_proto::msg::{ClientEvent, ClientRequest, StreamHeader, WorkerCommand, WorkerRequest};
use wask_proto::{ALPN_CLIENT, ALPN_PEER, ALPN_WORKER, ModuleHash, PROTOCOL_VERSION};
use wask_scheduler::server::{Scheduler, SchedulerConfig};
use wask_scheduler::state::CoreConfig;
use wask_scheduler::tenants::Tenants;
use wask_tests::eventually;
use wask_tests::hostile_cluster::*;

/// A client connection past its hello: the scheduler said welcome.
async fn welcomed_client(cluster: &Cluster) -> (Raw, quinn::SendStream, framed::FrameReader) {
    let raw = cluster.raw(ALPN_CLIENT).await;
    let (send, mut reader) = send_on_control(&raw.conn, &client_hello()).await;
    match reader.next::<ClientEvent>().await {
        Ok(Some(ClientEvent::Welcome { .. })) => {}
        other => panic!("expected a welcome, got {other:?}"),
    }
    (raw, send, reader)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_the_control_stream_is_a_protocol_error() {
    let cluster = Cluster::start().await;

    for alpn in [ALPN_CLIENT, ALPN_WORKER] {
        let raw = cluster.raw(alpn).await;
        let _streams = send_on_control(&raw.conn, &undecodable_frame()).await;
        assert_closed_with(&raw.conn, codes::PROTOCOL, "undecodable hello").await;
    }

    // After a good hello, in the control loop.
    let (raw, mut send, _reader) = welcomed_client(&cluster).await;
    let _ = send.write_all(&undecodable_frame()).await;
    assert_closed_with(&raw.conn, codes::PROTOCOL, "undecodable frame after hello").await;

    // A frame that decodes but has bytes left over.
    let (raw, mut send, _reader) = welcomed_client(&cluster).await;
    let mut body = postcard_info_request();
    body.push(0);
    let mut f = (body.len() as u32).to_le_bytes().to_vec();
    f.extend_from_slice(&body);
    let _ = send.write_all(&f).await;
    assert_closed_with(&raw.conn, codes::PROTOCOL, "trailing bytes").await;

    // A second hello.
    let (raw, mut send, _reader) = welcomed_client(&cluster).await;
    let _ = send.write_all(&client_hello()).await;
    assert_closed_with(&raw.conn, codes::PROTOCOL, "second hello").await;

    // Noise before any hello: refused as malformed or oversized, or dropped
    // at the hello timeout when its length prefix is small and unfinished.
    let mut noise = Noise(0x5eed_0001);
    for round in 0..8 {
        let raw = cluster.raw(ALPN_CLIENT).await;
        let len = 1 + (noise.next_u64() % 4096) as usize;
        let _streams = send_on_control(&raw.conn, &noise.bytes(len)).await;
        let err = tokio::time::timeout(CLOSE_BOUND, raw.conn.closed())
            .await
            .unwrap_or_else(|_| panic!("noise round {round}: still open"));
        match err {
            ConnectionError::ApplicationClosed(ApplicationClose { error_code, .. })
                if error_code == codes::PROTOCOL || error_code == codes::HELLO_TIMEOUT => {}
            other => panic!("noise round {round}: {other}"),
        }
    }

    cluster.assert_serves(100).await;
    cluster.shutdown().await;
}

fn postcard_info_request() -> Vec<u8> {
    let f = frame::encode_to_vec(&ClientRequest::Info { req: 7 });
    f[frame::PREFIX..].to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_frame_is_refused_before_its_body() {
    let cluster = Cluster::start().await;
    for (alpn, len) in [
        (ALPN_CLIENT, MAX_FRAME as u32 + 1),
        (ALPN_WORKER, MAX_FRAME as u32 + 1),
        (ALPN_CLIENT, u32::MAX),
    ] {
        let raw = cluster.raw(alpn).await;
        // Only the prefix: the body is never sent.
        let _streams = send_on_control(&raw.conn, &len.to_le_bytes()).await;
        assert_closed_with(&raw.conn, codes::PROTOCOL, "oversized hello prefix").await;
    }

    let (raw, mut send, _reader) = welcomed_client(&cluster).await;
    let _ = send.write_all(&(MAX_FRAME as u32 + 1).to_le_bytes()).await;
    assert_closed_with(&raw.conn, codes::PROTOCOL, "oversized prefix after hello").await;

    // A data stream whose header announces more than a header may be.
    let (raw, _send, _reader) = welcomed_client(&cluster).await;
    let mut uni = raw.conn.open_uni().await.unwrap();
    let _ = uni.write_all(&(1u32 << 20).to_le_bytes()).await;
    assert_closed_with(&raw.conn, codes::PROTOCOL, "oversized data stream header").await;

    // A module upload whose bytes do not match its hash.
    let (raw, _send, _reader) = welcomed_client(&cluster).await;
    let mut uni = raw.conn.open_uni().await.unwrap();
    let header = StreamHeader::Module {
        hash: ModuleHash::of(b"something else"),
    };
    let _ = uni.write_all(&frame::encode_to_vec(&header)).await;
    let _ = uni.write_all(b"\0asm\x01\0\0\0").await;
    let _ = uni.finish();
    assert_closed_with(&raw.conn, codes::PROTOCOL, "module bytes not matching").await;

    cluster.assert_serves(200).await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_peers_are_dropped_after_the_hello_timeout() {
    let cluster = Cluster::start().await;
    for alpn in [ALPN_CLIENT, ALPN_WORKER] {
        // No stream at all.
        let raw = cluster.raw(alpn).await;
        let took = assert_closed_with(&raw.conn, codes::HELLO_TIMEOUT, "no stream").await;
        // The timer starts once the scheduler has the handshake, after the
        // client has it: closing sooner would mean the timeout is not used.
        assert!(
            took >= HELLO_TIMEOUT - Duration::from_millis(20),
            "closed after {took:?}"
        );

        // Half a length prefix, then nothing.
        let raw = cluster.raw(alpn).await;
        let _streams = send_on_control(&raw.conn, &[7, 0]).await;
        assert_closed_with(&raw.conn, codes::HELLO_TIMEOUT, "half a prefix").await;

        // A prefix announcing 100 bytes, and 10 of them.
        let raw = cluster.raw(alpn).await;
        let mut partial = 100u32.to_le_bytes().to_vec();
        partial.extend_from_slice(&[0; 10]);
        let _streams = send_on_control(&raw.conn, &partial).await;
        assert_closed_with(&raw.conn, codes::HELLO_TIMEOUT, "partial hello").await;
    }
    cluster.assert_serves(300).await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_hellos_are_refused() {
    let cluster = Cluster::start().await;

    // A worker with the wrong secret is told why, then closed with REFUSED.
    let raw = cluster.raw(ALPN_WORKER).await;
    let hello = frame::encode_to_vec(&worker_hello("not-the-cluster-secret-0123"));
    let (_send, mut reader) = send_on_control(&raw.conn, &hello).await;
    match reader.next::<WorkerCommand>().await {
        Ok(Some(WorkerCommand::Refused { reason })) => {
            assert!(reason.contains("secret"), "{reason}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_closed_with(&raw.conn, codes::REFUSED, "wrong secret").await;

    // A worker with the right secret but no threads.
    let raw = cluster.raw(ALPN_WORKER).await;
    let mut hello = worker_hello(SECRET);
    if let WorkerRequest::Hello { nthreads, .. } = &mut hello {
        *nthreads = 0;
    }
    let _streams = send_on_control(&raw.conn, &frame::encode_to_vec(&hello)).await;
    assert_closed_with(&raw.conn, codes::REFUSED, "zero threads").await;

    // A client speaking another protocol version.
    let raw = cluster.raw(ALPN_CLIENT).await;
    let hello = frame::encode_to_vec(&ClientRequest::Hello {
        protocol: PROTOCOL_VERSION + 1,
        token: None,
    });
    let (_send, mut reader) = send_on_control(&raw.conn, &hello).await;
    match reader.next::<ClientEvent>().await {
        Ok(Some(ClientEvent::Refused { reason })) => {
            assert!(reason.contains("protocol"), "{reason}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_closed_with(&raw.conn, codes::REFUSED, "wrong protocol").await;

    // A client whose first message is not a hello.
    let raw = cluster.raw(ALPN_CLIENT).await;
    let info = frame::encode_to_vec(&ClientRequest::Info { req: 1 });
    let _streams = send_on_control(&raw.conn, &info).await;
    assert_closed_with(&raw.conn, codes::REFUSED, "no hello first").await;

    // Hellos on the wrong ALPN do not decode as the other kind's hello: a
    // protocol error, and never a welcome.
    let raw = cluster.raw(ALPN_WORKER).await;
    let (_send, mut reader) = send_on_control(&raw.conn, &client_hello()).await;
    assert!(
        reader.next::<WorkerCommand>().await.is_err(),
        "a client hello on the worker ALPN was answered"
    );
    assert_closed_with(&raw.conn, codes::PROTOCOL, "client hello as a worker").await;

    let raw = cluster.raw(ALPN_CLIENT).await;
    let hello = frame::encode_to_vec(&worker_hello(SECRET));
    let (_send, mut reader) = send_on_control(&raw.conn, &hello).await;
    assert!(
        reader.next::<ClientEvent>().await.is_err(),
        "a worker hello on the client ALPN was answered"
    );
    assert_closed_with(&raw.conn, codes::PROTOCOL, "worker hello as a client").await;

    // The scheduler does not speak the peer protocol: the TLS handshake
    // fails on ALPN.
    let endpoint = wask_net::endpoint::client(cluster.address.addr).unwrap();
    let refused = wask_net::endpoint::connect(
        &endpoint,
        cluster.address.addr,
        &cluster.address.cert_der,
        ALPN_PEER,
    )
    .await;
    assert!(refused.is_err(), "the scheduler accepted ALPN_PEER");

    // None of the refused workers was registered.
    cluster.assert_serves(400).await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_noise_is_ignored() {
    let cluster = Cluster::start().await;
    let addr = cluster.address.addr;
    tokio::task::spawn_blocking(move || udp_noise(addr, 2000, 0x5eed_0002))
        .await
        .unwrap();
    cluster.assert_serves(500).await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_reporting_nonsense_does_not_break_the_cluster() {
    let cluster = Cluster::start().await;
    let raw = cluster.raw(ALPN_WORKER).await;
    let hello = frame::encode_to_vec(&worker_hello(SECRET));
    let (mut send, mut reader) = send_on_control(&raw.conn, &hello).await;
    match reader.next::<WorkerCommand>().await {
        Ok(Some(WorkerCommand::Welcome { .. })) => {}
        other => panic!("expected a welcome, got {other:?}"),
    }
    cluster.assert_workers(2).await;
    let key = wask_proto::KeyId([0xab; 16]);
    let nonsense = [
        WorkerRequest::Finished(vec![wask_proto::msg::Finished {
            tenant: 0,
            key,
            nbytes: 8,
            value: Some(Bytes::from_static(b"12345678")),
            duration_us: 1,
        }]),
        WorkerRequest::Failed(vec![wask_proto::msg::Failed {
            tenant: 7,
            key,
            error: wask_proto::TaskError::Cancelled,
        }]),
        WorkerRequest::Value {
            req: 999_999,
            value: Some(Bytes::from_static(b"x")),
        },
        WorkerRequest::Value {
            req: 0,
            value: None,
        },
        WorkerRequest::NeedModule { module: 12345 },
    ];
    // A value stream answering nothing.
    let mut uni = raw.conn.open_uni().await.unwrap();
    let _ = uni
        .write_all(&frame::encode_to_vec(&StreamHeader::WorkerValue {
            req: 424242,
        }))
        .await;
    let _ = uni.write_all(b"unasked").await;
    let _ = uni.finish();
    for msg in &nonsense {
        framed::write_one(&mut send, msg).await.unwrap();
    }
    // The unknown module is answered, after everything sent before it: the
    // scheduler took the nonsense without dropping the connection.
    let answer = tokio::time::timeout(CLOSE_BOUND, async {
        loop {
            match reader.next::<WorkerCommand>().await {
                Ok(Some(WorkerCommand::ModuleUnavailable { module })) => return module,
                // The scheduler tells it to drop the result it made up.
                Ok(Some(WorkerCommand::Peers(_) | WorkerCommand::Free(_))) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
    })
    .await
    .expect("no answer to NeedModule");
    assert_eq!(answer, 12345);
    assert!(raw.conn.close_reason().is_none());
    cluster.assert_workers(2).await;
    framed::write_one(&mut send, &WorkerRequest::Goodbye)
        .await
        .unwrap();
    cluster.assert_workers(1).await;
    cluster.assert_serves(700).await;
    cluster.shutdown().await;
}

/// A worker hello with `secret` to the scheduler at `address`: the
/// connection, the control stream's send half (kept open) and the answer.
async fn worker_hello_to(
    address: &SchedulerAddress,
    secret: &str,
) -> (
    Raw,
    quinn::SendStream,
    Result<Option<WorkerCommand>, wask_net::NetError>,
) {
    let raw = raw(address.addr, &address.cert_der, ALPN_WORKER).await;
    let hello = frame::encode_to_vec(&worker_hello(secret));
    let (send, mut reader) = send_on_control(&raw.conn, &hello).await;
    let answer = reader.next::<WorkerCommand>().await;
    (raw, send, answer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_token_cannot_register_a_worker() {
    const TOKEN: &str = "a-valid-tenant-token-0123456789abcdef";
    let toml = format!(
        "[[tenant]]\nname = \"t\"\ntoken_blake3 = \"{}\"\n",
        wask_scheduler::tenants::hash_token(TOKEN)
    );
    let tenants = Tenants::parse(
        &toml,
        ResolvedLimits::default(),
        ResolvedLimits::CLUSTER_MAX,
    )
    .expect("a valid tenants file");
    let scheduler = Scheduler::start(SchedulerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        identity: wask_net::Identity::self_signed().unwrap(),
        cluster_secret: SECRET.to_string(),
        core: CoreConfig {
            tenants: tenants.policies(),
            ..CoreConfig::default()
        },
        auth: Arc::new(tenants),
        hello_timeout: HELLO_TIMEOUT,
    })
    .await
    .unwrap();
    let address = SchedulerAddress {
        addr: scheduler.address(),
        cert_der: scheduler.cert_der().to_vec(),
    };
    // The token is a tenant's: a client connects with it.
    let client = Client::builder(address.clone())
        .token(TOKEN)
        .connect()
        .await
        .unwrap();
    // As a worker's secret it is refused, like any wrong secret.
    let (refused, _send, answer) = worker_hello_to(&address, TOKEN).await;
    match answer {
        Ok(Some(WorkerCommand::Refused { reason })) => {
            assert!(reason.contains("secret"), "{reason}")
        }
        other => panic!("a tenant token registered a worker: {other:?}"),
    }
    assert_closed_with(&refused.conn, codes::REFUSED, "tenant token as secret").await;
    assert!(client.info().await.unwrap().workers.is_empty());
    // The cluster secret is no tenant token either.
    match Client::builder(address.clone())
        .token(SECRET)
        .connect()
        .await
    {
        Err(wask::Error::Refused(reason)) => assert!(reason.contains("token"), "{reason}"),
        other => panic!("the cluster secret connected a client: {other:?}"),
    }
    // The cluster secret does register a worker on this scheduler.
    let (joined, _send, answer) = worker_hello_to(&address, SECRET).await;
    assert!(
        matches!(answer, Ok(Some(WorkerCommand::Welcome { .. }))),
        "{answer:?}"
    );
    assert!(
        eventually(CLOSE_BOUND, || async {
            client.info().await.unwrap().workers.len() == 1
        })
        .await
    );
    joined.conn.close(codes::SHUTDOWN, b"bye");
    client.close();
    scheduler.shutdown().await;
}
