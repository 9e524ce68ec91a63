//! The connection to the scheduler: hello, the writer task, and the reader
//! task that applies what the scheduler says to the registry.

use crate::error::Error;
use crate::registry::{Registry, Status};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use wask_net::{data, framed};
use wask_proto::hash::{FastMap, new_map};
use wask_proto::msg::{ClientEvent, ClientRequest, StreamHeader};
use wask_proto::{ClientId, PROTOCOL_VERSION};

/// An open, welcomed connection.
pub(crate) struct Connection {
    pub registry: Arc<Registry>,
    /// Scattered bytes the scheduler has not answered for.
    pub uploads: crate::scatter::Uploads,
    pub conn: quinn::Connection,
    pub id: ClientId,
    endpoint: quinn::Endpoint,
    replies: Mutex<FastMap<u32, mpsc::UnboundedSender<ClientEvent>>>,
    next_req: AtomicU32,
}

impl Connection {
    /// A fresh request id and the channel its replies arrive on.
    pub fn request(&self) -> (u32, mpsc::UnboundedReceiver<ClientEvent>) {
        let req = self.next_req.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::unbounded_channel();
        self.replies
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(req, tx);
        (req, rx)
    }

    /// Stops routing replies for `req`.
    pub fn done(&self, req: u32) {
        self.replies
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&req);
    }

    fn reply(&self, req: u32, ev: ClientEvent) {
        if let Some(tx) = self
            .replies
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&req)
        {
            let _ = tx.send(ev);
        }
    }

    /// Closes the connection.
    pub fn close(&self) {
        self.conn.close(wask_net::codes::SHUTDOWN, b"client closed");
        self.endpoint
            .close(wask_net::codes::SHUTDOWN, b"client closed");
    }

    /// Closes the connection and waits (briefly) until the scheduler has
    /// been told.
    pub async fn shutdown(&self) {
        self.close();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), self.endpoint.wait_idle())
            .await;
    }
}

/// Connects, says hello and starts the reader and writer tasks.
pub(crate) async fn connect(
    addr: SocketAddr,
    cert: &[u8],
    token: Option<String>,
) -> Result<Arc<Connection>, Error> {
    let c = |e: wask_net::NetError| Error::Connect(e.to_string());
    let endpoint = wask_net::endpoint::client(addr).map_err(c)?;
    let conn = wask_net::endpoint::connect(&endpoint, addr, cert, wask_proto::ALPN_CLIENT)
        .await
        .map_err(c)?;
    let (mut send, recv) = conn
        .open_bi()
        .await
        .map_err(|e| Error::Connect(e.to_string()))?;
    framed::write_one(
        &mut send,
        &ClientRequest::Hello {
            protocol: PROTOCOL_VERSION,
            token,
        },
    )
    .await
    .map_err(c)?;
    let mut reader = framed::FrameReader::new(recv, wask_proto::limits::MAX_FRAME);
    let timeout = std::time::Duration::from_secs(wask_proto::limits::HELLO_TIMEOUT_SECS);
    let answer = tokio::time::timeout(timeout, reader.next::<ClientEvent>())
        .await
        .map_err(|_| Error::Connect("no answer to hello".into()))?;
    let id = match answer {
        Ok(Some(ClientEvent::Welcome { client })) => client,
        Ok(Some(ClientEvent::Refused { reason })) => return Err(Error::Refused(reason)),
        Ok(_) => return Err(Error::Connect("unexpected answer to hello".into())),
        Err(e) => {
            return Err(Error::Refused(
                refusal_reason(&conn).unwrap_or_else(|| e.to_string()),
            ));
        }
    };
    let tx = framed::spawn_writer::<ClientRequest>(send);
    let connection = Arc::new(Connection {
        registry: Registry::new(tx),
        uploads: Default::default(),
        conn: conn.clone(),
        id,
        endpoint,
        replies: Mutex::new(new_map()),
        next_req: AtomicU32::new(1),
    });
    let weak = Arc::downgrade(&connection);
    let registry = connection.registry.clone();
    tokio::spawn(async move {
        let reason = loop {
            match reader.next::<ClientEvent>().await {
                Ok(Some(ev)) => match weak.upgrade() {
                    Some(c) => apply(&c, ev),
                    None => return,
                },
                Ok(None) => break "scheduler closed the connection".to_string(),
                Err(e) => break e.to_string(),
            }
        };
        tracing::debug!("connection to the scheduler ended: {reason}");
        registry.lose(reason);
        if let Some(c) = weak.upgrade() {
            c.replies.lock().unwrap_or_else(|p| p.into_inner()).clear();
        }
    });
    tokio::spawn(accept_values(conn, connection.registry.clone()));
    Ok(connection)
}

fn refusal_reason(conn: &quinn::Connection) -> Option<String> {
    match conn.close_reason()? {
        quinn::ConnectionError::ApplicationClosed(c) => {
            Some(String::from_utf8_lossy(&c.reason).into_owned())
        }
        other => Some(other.to_string()),
    }
}

fn apply(c: &Connection, ev: ClientEvent) {
    match ev {
        ClientEvent::Done(list) => {
            let mut values: FastMap<wask_proto::KeyId, Option<bytes::Bytes>> = new_map();
            values.reserve(list.len());
            for d in list {
                values.insert(d.key, d.value);
            }
            let keys: Vec<_> = values.keys().copied().collect();
            c.registry.each(keys, |k, h| {
                if let Some(h) = h {
                    let value = values.remove(&k).flatten();
                    h.set(|s| {
                        if matches!(s.status, Status::Pending) {
                            if value.is_some() {
                                s.wanted = false;
                            }
                            s.status = Status::Done { value };
                        }
                    });
                }
            });
        }
        ClientEvent::Erred { key, error } => {
            if let Some(h) = c.registry.get(&key) {
                h.set(|s| {
                    // The first error stands: a refused submit is followed
                    // by "unknown key" for the value it asked for.
                    if !matches!(s.status, Status::Cancelled | Status::Erred(_)) {
                        s.status = Status::Erred(error);
                        s.wanted = false;
                    }
                });
            }
        }
        ClientEvent::Value { key, value } => set_value(&c.registry, key, value),
        ClientEvent::ModuleReady { req, .. }
        | ClientEvent::ModuleNeeded { req }
        | ClientEvent::ModuleRefused { req, .. } => c.reply(req, ev),
        ClientEvent::Info { req, .. } => c.reply(req, ev),
        ClientEvent::SendData(keys) => crate::scatter::send_data(c, keys),
        ClientEvent::DataNotNeeded(keys) => crate::scatter::not_needed(c, keys),
        ClientEvent::Welcome { .. } | ClientEvent::Refused { .. } => {
            tracing::warn!("unexpected hello answer on an open connection");
        }
    }
}

fn set_value(registry: &Registry, key: wask_proto::KeyId, value: bytes::Bytes) {
    if let Some(h) = registry.get(&key) {
        h.set(|s| {
            if !matches!(s.status, Status::Cancelled) {
                s.status = Status::Done { value: Some(value) };
                s.wanted = false;
            }
        });
    }
}

async fn accept_values(conn: quinn::Connection, registry: Arc<Registry>) {
    while let Ok(stream) = conn.accept_uni().await {
        let registry = registry.clone();
        tokio::spawn(async move {
            match data::recv(stream, wask_proto::limits::MAX_PAYLOAD).await {
                Ok((StreamHeader::Value { key }, value)) => set_value(&registry, key, value),
                Ok((other, _)) => tracing::warn!("unexpected data stream {other:?}"),
                Err(e) => tracing::warn!("value stream failed: {e}"),
            }
        });
    }
}
