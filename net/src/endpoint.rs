//! QUIC endpoints with wask's transport settings.

use crate::{Identity, NetError, tls};
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn::{Connection, Endpoint, TransportConfig, VarInt};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// Most unidirectional (data) streams a peer may have open at once.
pub const MAX_UNI_STREAMS: u32 = 16;
/// Most bidirectional streams a peer may have open at once.
pub const MAX_BIDI_STREAMS: u32 = 64;

/// Ack-eliciting packets a peer may receive before it must acknowledge
/// (QUIC's ACK frequency extension; the default acknowledges every other
/// packet). Control messages are small and frequent: an acknowledgement per
/// pair of them was a packet, a syscall and a wake-up each way. The peer
/// still acknowledges within its `max_ack_delay`, and an answer carries the
/// acknowledgement of its request.
const ACK_THRESHOLD: u32 = 16;

/// How long a peer may hold back an acknowledgement when fewer than
/// [`ACK_THRESHOLD`] packets came in (QUIC's default is 25 ms). A sender
/// that waits for acknowledgements (to open its congestion window, or to
/// pace) otherwise idles for up to that long: tree_reduce of 16,383 tasks
/// took a median 0.40 s with the default and 0.29 s with 2 ms, in one A/B
/// sitting. 1 ms was no faster there and cost cpu_bound, whose results
/// trickle in, one acknowledgement-only packet per millisecond.
const MAX_ACK_DELAY: Duration = Duration::from_millis(2);

/// Bytes a connection may have in flight before its first acknowledgement
/// (QUIC's default is ten packets, ~14 KiB). wask's connections stay within
/// one cluster, where a `map` or a graph of thousands of tasks goes out at
/// once; with the short [`MAX_ACK_DELAY`] it took tree_reduce from 0.33 s
/// to 0.27 s.
const INITIAL_WINDOW: u64 = 1 << 20;

/// Transport settings shared by every wask connection: bounded streams and
/// windows (so a peer cannot make us buffer without bound), keep-alives and
/// an idle timeout (so a dead or silent peer is dropped).
pub fn transport_config() -> Arc<TransportConfig> {
    let mut t = TransportConfig::default();
    t.max_concurrent_uni_streams(VarInt::from_u32(MAX_UNI_STREAMS));
    t.max_concurrent_bidi_streams(VarInt::from_u32(MAX_BIDI_STREAMS));
    t.stream_receive_window(VarInt::from_u32(16 << 20));
    t.receive_window(VarInt::from_u32(64 << 20));
    t.send_window(64 << 20);
    t.keep_alive_interval(Some(Duration::from_secs(5)));
    t.max_idle_timeout(Some(VarInt::from_u32(30_000).into()));
    let mut acks = quinn::AckFrequencyConfig::default();
    acks.ack_eliciting_threshold(VarInt::from_u32(ACK_THRESHOLD));
    acks.max_ack_delay(Some(MAX_ACK_DELAY));
    t.ack_frequency_config(Some(acks));
    let mut cubic = quinn::congestion::CubicConfig::default();
    cubic.initial_window(INITIAL_WINDOW);
    t.congestion_controller_factory(Arc::new(cubic));
    Arc::new(t)
}

/// Bytes of datagrams the kernel may queue for a socket before it drops
/// them (asked for; Linux caps it at `net.core.rmem_max` and
/// `net.core.wmem_max`). With the default (~208 KiB) a tree_reduce of
/// 16,383 tasks on loopback lost about 32 packets to a full receive
/// buffer while the receiving thread was busy, and each loss held its
/// connection back until QUIC noticed it and shrank its congestion window.
const SOCKET_BUFFER: usize = 4 << 20;

/// An endpoint on a UDP socket bound to `addr`, with [`SOCKET_BUFFER`].
fn endpoint(addr: SocketAddr, server: Option<quinn::ServerConfig>) -> Result<Endpoint, NetError> {
    let socket = std::net::UdpSocket::bind(addr)?;
    let sock = socket2::SockRef::from(&socket);
    // Best effort: a smaller buffer only means drops under load.
    for set in [
        sock.set_recv_buffer_size(SOCKET_BUFFER),
        sock.set_send_buffer_size(SOCKET_BUFFER),
    ] {
        if let Err(e) = set {
            tracing::debug!(%e, "cannot enlarge a UDP socket buffer");
        }
    }
    let runtime =
        quinn::default_runtime().ok_or_else(|| std::io::Error::other("no async runtime found"))?;
    Ok(Endpoint::new(
        quinn::EndpointConfig::default(),
        server,
        socket,
        runtime,
    )?)
}

/// A server endpoint on `addr` presenting `identity` and accepting `alpns`.
pub fn server(
    addr: SocketAddr,
    identity: &Identity,
    alpns: &[&[u8]],
) -> Result<Endpoint, NetError> {
    let crypto = tls::server_config(identity, alpns)?;
    let quic = QuicServerConfig::try_from(crypto).map_err(|e| NetError::Tls(e.to_string()))?;
    let mut cfg = quinn::ServerConfig::with_crypto(Arc::new(quic));
    cfg.transport_config(transport_config());
    // Refuse connection migration: cluster peers do not move.
    cfg.migration(false);
    endpoint(addr, Some(cfg))
}

/// A client-only endpoint bound to an ephemeral port of `peer`'s family.
pub fn client(peer: SocketAddr) -> Result<Endpoint, NetError> {
    let bind: SocketAddr = if peer.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    endpoint(bind, None)
}

/// Connects from `endpoint` to `addr`, trusting only `pinned_cert_der`.
pub async fn connect(
    endpoint: &Endpoint,
    addr: SocketAddr,
    pinned_cert_der: &[u8],
    alpn: &[u8],
) -> Result<Connection, NetError> {
    let crypto = tls::client_config(pinned_cert_der, alpn)?;
    let quic = QuicClientConfig::try_from(crypto).map_err(|e| NetError::Tls(e.to_string()))?;
    let mut cfg = quinn::ClientConfig::new(Arc::new(quic));
    cfg.transport_config(transport_config());
    let connecting = endpoint.connect_with(cfg, addr, tls::SERVER_NAME)?;
    Ok(connecting.await?)
}

/// The ALPN negotiated on `conn`.
pub fn alpn(conn: &Connection) -> Option<Vec<u8>> {
    conn.handshake_data()?
        .downcast::<quinn::crypto::rustls::HandshakeData>()
        .ok()?
        .protocol
}
