//! The accept loop: one task per connection, dispatched by ALPN.

use super::Shared;
use std::sync::Arc;

pub(super) async fn run(endpoint: quinn::Endpoint, shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.clone();
    loop {
        let incoming = tokio::select! {
            i = endpoint.accept() => match i { Some(i) => i, None => return },
            _ = shutdown.changed() => return,
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let remote = incoming.remote_address();
            // The QUIC handshake itself is bounded by the idle timeout.
            let conn = match incoming.await {
                Ok(c) => c,
                Err(e) => {
                    tracing::debug!(%remote, "handshake failed: {e}");
                    return;
                }
            };
            match wask_net::endpoint::alpn(&conn).as_deref() {
                Some(wask_proto::ALPN_CLIENT) => super::client_conn::run(conn, shared).await,
                Some(wask_proto::ALPN_WORKER) => super::worker_conn::run(conn, shared).await,
                _ => conn.close(wask_net::codes::PROTOCOL, b"unknown protocol"),
            }
        });
    }
}

/// Waits for the peer to open its control stream and send a first frame,
/// within the hello timeout.
pub(super) async fn hello<T: serde::de::DeserializeOwned>(
    conn: &quinn::Connection,
    timeout: std::time::Duration,
) -> Result<(quinn::SendStream, wask_net::framed::FrameReader, T), String> {
    let fut = async {
        let (send, recv) = conn.accept_bi().await.map_err(|e| e.to_string())?;
        // A hello is small; refuse anything big before buffering it.
        let mut reader = wask_net::framed::FrameReader::new(recv, wask_proto::limits::MAX_FRAME);
        match reader.next::<T>().await {
            Ok(Some(m)) => Ok((send, reader, m)),
            Ok(None) => Err("stream ended before hello".to_string()),
            Err(e) => Err(e.to_string()),
        }
    };
    match tokio::time::timeout(timeout, fut).await {
        Ok(r) => r,
        Err(_) => {
            conn.close(wask_net::codes::HELLO_TIMEOUT, b"no hello in time");
            Err("no hello in time".into())
        }
    }
}
