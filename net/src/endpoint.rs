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
    t.ack_frequency_config(Some(acks));
    Arc::new(t)
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
    Ok(Endpoint::server(cfg, addr)?)
}

/// A client-only endpoint bound to an ephemeral port of `peer`'s family.
pub fn client(peer: SocketAddr) -> Result<Endpoint, NetError> {
    let bind: SocketAddr = if peer.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    Ok(Endpoint::client(bind)?)
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
