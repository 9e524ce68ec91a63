//! Peers that break the protocol on a worker's peer port (where workers
//! fetch dependencies from each other): garbage, wrong secrets, requests
//! that are no requests, silence. The worker must close them with the right
//! application code and go on serving.

use bytes::Bytes;
use std::net::SocketAddr;
use std::time::Duration;
use wask_net::{codes, framed};
use wask_proto::frame::{self, FrameDecoder};
use wask_proto::msg::{PeerInfo, PeerReply, PeerRequest, WorkerCommand, WorkerRequest};
use wask_proto::{ALPN_CLIENT, ALPN_PEER, ALPN_WORKER, PROTOCOL_VERSION};
use wask_tests::hostile_cluster::{
    CLOSE_BOUND, Cluster, HELLO_TIMEOUT, Noise, Raw, SECRET, assert_closed_with, raw,
    send_on_control, udp_noise, undecodable_frame, worker_hello,
};

/// Joins as a worker (with the secret) just long enough to learn the other
/// workers' peer addresses and certificates, then says goodbye.
async fn peers_of(cluster: &Cluster) -> Vec<PeerInfo> {
    let raw = cluster.raw(ALPN_WORKER).await;
    let hello = frame::encode_to_vec(&worker_hello(SECRET));
    let (mut send, mut reader) = send_on_control(&raw.conn, &hello).await;
    let mut peers = Vec::new();
    let learn = async {
        loop {
            match reader.next::<WorkerCommand>().await {
                Ok(Some(WorkerCommand::Welcome { .. })) => {}
                Ok(Some(WorkerCommand::Peers(p))) => {
                    peers.extend(p);
                    return;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    };
    tokio::time::timeout(CLOSE_BOUND, learn)
        .await
        .expect("no peer list");
    framed::write_one(&mut send, &WorkerRequest::Goodbye)
        .await
        .unwrap();
    let _ = send.finish();
    // It must be gone before any task is submitted, or tasks would go to it.
    cluster.assert_workers(1).await;
    raw.conn.close(codes::SHUTDOWN, b"bye");
    peers
}

/// The cluster's worker's peer port and certificate, as the scheduler
/// relays them to workers.
async fn peer_port(cluster: &Cluster) -> (SocketAddr, Bytes) {
    let peers = peers_of(cluster).await;
    let honest = peers
        .iter()
        .find(|p| p.worker == cluster.worker.id())
        .unwrap_or_else(|| panic!("the worker is not in {peers:?}"));
    assert_eq!(honest.address, cluster.worker.peer_address());
    (honest.address.parse().unwrap(), honest.cert.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_a_worker_peer_port() {
    let cluster = Cluster::start().await;
    let (addr, cert) = peer_port(&cluster).await;

    // Garbage as the hello request.
    let raw = raw(addr, &cert, ALPN_PEER).await;
    let (mut send, _recv) = raw.conn.open_bi().await.unwrap();
    let _ = send.write_all(&Noise(0x5eed_0003).bytes(300)).await;
    let _ = send.finish();
    assert_closed_with(&raw.conn, codes::PROTOCOL, "garbage peer hello").await;

    // A well-formed hello with the wrong secret: refused. The worker closes
    // right after writing its answer, so the answer may be lost to the
    // close; if it arrives, it is a refusal.
    let (raw_wrong, reply) = raw_peer_hello(addr, &cert, "not-the-cluster-secret-0123").await;
    assert!(
        matches!(reply, None | Some(PeerReply::Refused)),
        "{reply:?}"
    );
    assert_closed_with(&raw_wrong.conn, codes::REFUSED, "wrong peer secret").await;

    // The right secret, then a request that is no request.
    let (raw, reply) = raw_peer_hello(addr, &cert, SECRET).await;
    assert_eq!(reply, Some(PeerReply::Welcome));
    let (mut send, _recv) = raw.conn.open_bi().await.unwrap();
    let _ = send.write_all(&undecodable_frame()).await;
    let _ = send.finish();
    assert_closed_with(&raw.conn, codes::PROTOCOL, "garbage get").await;

    // The peer port speaks only the peer protocol.
    let endpoint = wask_net::endpoint::client(addr).unwrap();
    let refused = wask_net::endpoint::connect(&endpoint, addr, &cert, ALPN_CLIENT).await;
    assert!(refused.is_err(), "the peer port accepted ALPN_CLIENT");

    tokio::task::spawn_blocking(move || udp_noise(addr, 1000, 0x5eed_0004))
        .await
        .unwrap();

    // The only worker is the one attacked: `inc` runs on it.
    cluster.assert_serves(600).await;
    cluster.shutdown().await;
}

/// Connects to a worker's peer port and says hello with `secret`; the
/// answer, or `None` if the connection closed before it could be read.
async fn raw_peer_hello(addr: SocketAddr, cert: &[u8], secret: &str) -> (Raw, Option<PeerReply>) {
    let raw = raw(addr, cert, ALPN_PEER).await;
    let (mut send, mut recv) = raw.conn.open_bi().await.unwrap();
    let hello = PeerRequest::Hello {
        protocol: PROTOCOL_VERSION,
        secret: secret.to_string(),
    };
    framed::write_one(&mut send, &hello).await.unwrap();
    send.finish().unwrap();
    let body = tokio::time::timeout(CLOSE_BOUND, recv.read_to_end(1 << 10))
        .await
        .expect("no answer to the peer hello");
    let reply = match body {
        Ok(body) => {
            let mut decoder = FrameDecoder::new(1 << 10);
            decoder.push(&body);
            let reply = decoder
                .next_message::<PeerReply>()
                .unwrap()
                .expect("a whole reply");
            Some(reply)
        }
        Err(quinn::ReadToEndError::Read(quinn::ReadError::ConnectionLost(_))) => None,
        Err(e) => panic!("reading the peer's answer: {e}"),
    };
    (raw, reply)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_peers_on_a_worker_peer_port_are_dropped() {
    let cluster = Cluster::start().await;
    let (addr, cert) = peer_port(&cluster).await;

    // No stream at all.
    let silent = raw(addr, &cert, ALPN_PEER).await;
    let took = assert_closed_with(&silent.conn, codes::HELLO_TIMEOUT, "silent peer").await;
    // Dropped by the worker's own timer, set from its config, not sooner.
    assert!(
        took >= HELLO_TIMEOUT - Duration::from_millis(20),
        "closed after {took:?}"
    );
    assert!(took < CLOSE_BOUND, "closed after {took:?}");

    // A stream with part of a hello that is never finished.
    let partial = raw(addr, &cert, ALPN_PEER).await;
    let (mut send, _recv) = partial.conn.open_bi().await.unwrap();
    let mut hello = 100u32.to_le_bytes().to_vec();
    hello.extend_from_slice(&[0; 10]);
    send.write_all(&hello).await.unwrap();
    assert_closed_with(&partial.conn, codes::HELLO_TIMEOUT, "unfinished peer hello").await;

    // Meanwhile a peer with the secret is still welcome, and the worker
    // still runs tasks.
    let (_welcomed, reply) = raw_peer_hello(addr, &cert, SECRET).await;
    assert_eq!(reply, Some(PeerReply::Welcome));
    cluster.assert_serves(700).await;
    cluster.shutdown().await;
}
