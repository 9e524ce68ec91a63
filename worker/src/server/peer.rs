//! Worker-to-worker transfers of dependency results.
//!
//! Server side: a connection must first prove it belongs to the cluster
//! (hello with the cluster secret); each `Get` is then one bidirectional
//! stream: request frame in, a sizes frame and the raw bytes out.
//! Client side: one cached connection per peer, pinned to the certificate
//! the scheduler relayed.

use super::store::Store;
use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;
use wask_net::{NetError, codes, framed};
use wask_proto::frame;
use wask_proto::hash::{FastMap, new_map};
use wask_proto::msg::{PeerInfo, PeerReply, PeerRequest};
use wask_proto::{KeyId, PROTOCOL_VERSION, TenantId, WorkerId};

/// Largest request frame a peer may send.
const MAX_REQUEST: usize = 1 << 20;

/// Serves `Get`s from `store` to connections that said a good hello within
/// `hello_timeout`.
pub(super) async fn serve(
    endpoint: quinn::Endpoint,
    store: Arc<Store>,
    secret: Arc<str>,
    hello_timeout: Duration,
) {
    while let Some(incoming) = endpoint.accept().await {
        let store = store.clone();
        let secret = secret.clone();
        tokio::spawn(async move {
            let Ok(conn) = incoming.await else { return };
            if wask_net::endpoint::alpn(&conn).as_deref() != Some(wask_proto::ALPN_PEER) {
                conn.close(codes::PROTOCOL, b"unknown protocol");
                return;
            }
            if let Err(e) = serve_conn(&conn, &store, &secret, hello_timeout).await {
                tracing::debug!(remote = %conn.remote_address(), "peer connection: {e}");
                conn.close(e.close_code(), e.to_string().as_bytes());
            }
        });
    }
}

async fn serve_conn(
    conn: &quinn::Connection,
    store: &Arc<Store>,
    secret: &str,
    hello_timeout: Duration,
) -> Result<(), NetError> {
    // One deadline for the whole hello, however the peer dribbles it in.
    let hello = async {
        let (send, mut recv) = conn.accept_bi().await?;
        let body = recv.read_to_end(MAX_REQUEST).await?;
        Ok::<_, NetError>((send, body))
    };
    let Ok(hello) = tokio::time::timeout(hello_timeout, hello).await else {
        tracing::debug!(remote = %conn.remote_address(), "peer said no hello in time");
        conn.close(codes::HELLO_TIMEOUT, b"no hello in time");
        return Ok(());
    };
    let (mut send, body) = hello?;
    let ok = match frame::decode_body::<PeerRequest>(strip_prefix(&body)?)? {
        PeerRequest::Hello {
            protocol,
            secret: s,
        } => protocol == PROTOCOL_VERSION && wask_net::secrets_equal(&s, secret),
        _ => false,
    };
    framed::write_one(
        &mut send,
        if ok {
            &PeerReply::Welcome
        } else {
            &PeerReply::Refused
        },
    )
    .await?;
    send.finish()?;
    if !ok {
        conn.close(codes::REFUSED, b"bad hello");
        return Ok(());
    }
    loop {
        let (send, recv) = match conn.accept_bi().await {
            Ok(s) => s,
            Err(_) => return Ok(()),
        };
        let store = store.clone();
        let conn = conn.clone();
        tokio::spawn(async move {
            if let Err(e) = serve_get(send, recv, &store).await {
                tracing::debug!("peer get failed: {e}");
                if matches!(e, NetError::Frame(_) | NetError::Protocol(_)) {
                    conn.close(codes::PROTOCOL, b"bad request");
                }
            }
        });
    }
}

fn strip_prefix(body: &[u8]) -> Result<&[u8], NetError> {
    if body.len() < frame::PREFIX {
        return Err(NetError::Protocol("short frame".into()));
    }
    let len = u32::from_le_bytes(body[..frame::PREFIX].try_into().expect("4 bytes")) as usize;
    if body.len() != frame::PREFIX + len {
        return Err(NetError::Protocol(
            "frame length does not match the stream".into(),
        ));
    }
    Ok(&body[frame::PREFIX..])
}

async fn serve_get(
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    store: &Store,
) -> Result<(), NetError> {
    let body = recv.read_to_end(MAX_REQUEST).await?;
    let PeerRequest::Get { tenant, keys } =
        frame::decode_body::<PeerRequest>(strip_prefix(&body)?)?
    else {
        return Err(NetError::Protocol("expected a get".into()));
    };
    let values = store.get_many(tenant, &keys);
    let sizes = values
        .iter()
        .map(|v| v.as_ref().map(|b| b.len() as u64))
        .collect();
    let mut chunks = Vec::with_capacity(values.len() + 1);
    chunks.push(Bytes::from(frame::encode_to_vec(&PeerReply::Values(sizes))));
    chunks.extend(values.into_iter().flatten());
    send.write_all_chunks(&mut chunks).await?;
    send.finish()?;
    Ok(())
}

/// Connections to other workers.
pub(super) struct Peers {
    endpoint: quinn::Endpoint,
    secret: Arc<str>,
    infos: std::sync::Mutex<FastMap<WorkerId, PeerInfo>>,
    conns: tokio::sync::Mutex<FastMap<WorkerId, quinn::Connection>>,
}

impl Peers {
    pub fn new(endpoint: quinn::Endpoint, secret: Arc<str>) -> Peers {
        Peers {
            endpoint,
            secret,
            infos: std::sync::Mutex::new(new_map()),
            conns: tokio::sync::Mutex::new(new_map()),
        }
    }

    fn infos(&self) -> std::sync::MutexGuard<'_, FastMap<WorkerId, PeerInfo>> {
        self.infos.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn add(&self, info: PeerInfo) {
        self.infos().insert(info.worker, info);
    }

    pub fn remove(&self, worker: WorkerId) {
        self.infos().remove(&worker);
        if let Ok(mut conns) = self.conns.try_lock()
            && let Some(c) = conns.remove(&worker)
        {
            c.close(codes::SHUTDOWN, b"peer left");
        }
    }

    pub fn info(&self, worker: WorkerId) -> Option<PeerInfo> {
        self.infos().get(&worker).cloned()
    }

    async fn connection(&self, info: &PeerInfo) -> Result<quinn::Connection, NetError> {
        let mut conns = self.conns.lock().await;
        if let Some(c) = conns.get(&info.worker)
            && c.close_reason().is_none()
        {
            return Ok(c.clone());
        }
        let addr = info
            .address
            .parse()
            .map_err(|_| NetError::Protocol(format!("bad peer address {}", info.address)))?;
        let conn =
            wask_net::endpoint::connect(&self.endpoint, addr, &info.cert, wask_proto::ALPN_PEER)
                .await?;
        let (mut send, mut recv) = conn.open_bi().await?;
        framed::write_one(
            &mut send,
            &PeerRequest::Hello {
                protocol: PROTOCOL_VERSION,
                secret: self.secret.to_string(),
            },
        )
        .await?;
        send.finish()?;
        let body = recv.read_to_end(MAX_REQUEST).await?;
        match frame::decode_body::<PeerReply>(strip_prefix(&body)?)? {
            PeerReply::Welcome => {}
            _ => return Err(NetError::Protocol("peer refused our hello".into())),
        }
        conns.insert(info.worker, conn.clone());
        Ok(conn)
    }

    /// Fetches `keys` of `tenant` from the peer; `None` where it lacks one.
    pub async fn fetch(
        &self,
        info: &PeerInfo,
        tenant: TenantId,
        keys: Vec<KeyId>,
    ) -> Result<Vec<Option<Bytes>>, NetError> {
        let conn = self.connection(info).await?;
        let n = keys.len();
        let (mut send, mut recv) = conn.open_bi().await?;
        framed::write_one(&mut send, &PeerRequest::Get { tenant, keys }).await?;
        send.finish()?;
        let body = Bytes::from(recv.read_to_end(wask_proto::limits::MAX_PAYLOAD).await?);
        if body.len() < frame::PREFIX {
            return Err(NetError::Protocol("short reply".into()));
        }
        let len = u32::from_le_bytes(body[..frame::PREFIX].try_into().expect("4 bytes")) as usize;
        let end = frame::PREFIX
            .checked_add(len)
            .filter(|e| *e <= body.len())
            .ok_or(NetError::Protocol("short reply".into()))?;
        let PeerReply::Values(sizes) = frame::decode_body::<PeerReply>(&body[frame::PREFIX..end])?
        else {
            return Err(NetError::Protocol("expected values".into()));
        };
        if sizes.len() != n {
            return Err(NetError::Protocol(
                "reply has the wrong number of values".into(),
            ));
        }
        let mut pos = end;
        let mut out = Vec::with_capacity(n);
        for size in sizes {
            match size {
                Some(s) => {
                    let next = pos
                        .checked_add(s as usize)
                        .filter(|e| *e <= body.len())
                        .ok_or(NetError::Protocol("short reply".into()))?;
                    out.push(Some(body.slice(pos..next)));
                    pos = next;
                }
                None => out.push(None),
            }
        }
        if pos != body.len() {
            return Err(NetError::Protocol("trailing bytes in reply".into()));
        }
        Ok(out)
    }
}
