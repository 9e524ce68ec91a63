//! One client connection: hello, then control frames, module uploads and
//! uploads of scattered data.

use super::hub::HubEvent;
use super::scatter::{self, Asked};
use super::{Shared, accept};
use crate::state::Event;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tracing::Instrument;
use wask_net::{NetError, codes, data, framed};
use wask_proto::msg::{ClientEvent, ClientRequest, StreamHeader};
use wask_proto::{ClientId, ModuleHash, PROTOCOL_VERSION, TenantId};

pub(super) async fn run(conn: quinn::Connection, shared: Arc<Shared>) {
    let remote = conn.remote_address();
    let (mut send, mut reader, hello) =
        match accept::hello::<ClientRequest>(&conn, shared.hello_timeout).await {
            Ok(h) => h,
            Err(e) => {
                tracing::info!(%remote, "client refused: {e}");
                conn.close(codes::PROTOCOL, b"bad hello");
                return;
            }
        };
    let tenant = match hello {
        ClientRequest::Hello { protocol, token } => {
            if protocol != PROTOCOL_VERSION {
                refuse(
                    &conn,
                    &mut send,
                    format!("protocol {protocol} is not {PROTOCOL_VERSION}"),
                )
                .await;
                return;
            }
            match shared.auth.tenant(token.as_deref()) {
                Some(t) => t,
                None => {
                    refuse(&conn, &mut send, "invalid or missing token".into()).await;
                    return;
                }
            }
        }
        _ => {
            refuse(&conn, &mut send, "first message must be a hello".into()).await;
            return;
        }
    };
    let client: ClientId = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let span = tracing::info_span!("client", client, tenant, %remote);
    // The span covers the whole connection, across its awaits.
    async move {
        if framed::write_one(&mut send, &ClientEvent::Welcome { client })
            .await
            .is_err()
        {
            return;
        }
        let tx = framed::spawn_writer::<ClientEvent>(send);
        let asked = Arc::new(Asked::new());
        if shared
            .hub
            .send(HubEvent::ClientUp {
                client,
                tenant,
                tx,
                conn: conn.clone(),
                asked: asked.clone(),
            })
            .await
            .is_err()
        {
            return;
        }
        tracing::info!("client connected");

        let uploads = tokio::spawn(accept_uploads(
            conn.clone(),
            shared.clone(),
            client,
            tenant,
            asked.clone(),
        ));
        let result = control_loop(&mut reader, &shared, client, tenant, &asked).await;
        uploads.abort();
        if let Err(e) = &result {
            tracing::warn!("client connection closed: {e}");
            conn.close(e.close_code(), e.to_string().as_bytes());
        }
        let _ = shared
            .hub
            .send(HubEvent::Core(Event::ClientDisconnected { client }))
            .await;
        tracing::info!("client disconnected");
    }
    .instrument(span)
    .await;
}

async fn refuse(conn: &quinn::Connection, send: &mut quinn::SendStream, reason: String) {
    tracing::info!(remote = %conn.remote_address(), "client refused: {reason}");
    let _ = framed::write_one(
        send,
        &ClientEvent::Refused {
            reason: reason.clone(),
        },
    )
    .await;
    let _ = send.finish();
    // Give the refusal a moment to reach the peer before the close does.
    let _ = tokio::time::timeout(std::time::Duration::from_millis(200), send.stopped()).await;
    conn.close(codes::REFUSED, reason.as_bytes());
}

async fn control_loop(
    reader: &mut framed::FrameReader,
    shared: &Shared,
    client: ClientId,
    tenant: TenantId,
    asked: &Asked,
) -> Result<(), NetError> {
    while let Some(msg) = reader.next::<ClientRequest>().await? {
        let ev = match msg {
            ClientRequest::Hello { .. } => return Err(NetError::Protocol("second hello".into())),
            ClientRequest::Module { req, hash } => HubEvent::ModuleQuery {
                client,
                tenant,
                req,
                hash,
            },
            ClientRequest::Submit(tasks) => HubEvent::Core(Event::Submit { client, tasks }),
            ClientRequest::Hold(keys) => HubEvent::Core(Event::Hold { client, keys }),
            ClientRequest::Want(keys) => HubEvent::Core(Event::Want { client, keys }),
            ClientRequest::Release(keys) => HubEvent::Core(Event::Release { client, keys }),
            ClientRequest::Cancel(keys) => HubEvent::Core(Event::Cancel { client, keys }),
            ClientRequest::Info { req } => HubEvent::Info {
                client,
                tenant,
                req,
            },
            ClientRequest::Scatter(data) => HubEvent::Core(Event::Scatter { client, data }),
            ClientRequest::Data(values) => {
                for ev in asked.inline(client, values)? {
                    let ev = scatter::budgeted(&shared.relay, ev).await?;
                    if shared.hub.send(HubEvent::Core(ev)).await.is_err() {
                        return Ok(());
                    }
                }
                continue;
            }
        };
        if shared.hub.send(ev).await.is_err() {
            return Ok(());
        }
    }
    Ok(())
}

async fn accept_uploads(
    conn: quinn::Connection,
    shared: Arc<Shared>,
    client: ClientId,
    tenant: TenantId,
    asked: Arc<Asked>,
) {
    while let Ok(stream) = conn.accept_uni().await {
        let shared = shared.clone();
        let conn = conn.clone();
        let asked = asked.clone();
        tokio::spawn(async move {
            let event = match data::recv_header(stream).await {
                Ok((StreamHeader::Module { hash }, stream)) => {
                    receive_module(stream, hash, client, tenant).await
                }
                Ok((StreamHeader::Scatter { key }, stream)) => {
                    match asked.stream(&shared.relay, client, key, stream).await {
                        Ok(Some(ev)) => Ok(HubEvent::Core(ev)),
                        // Not awaited any more: dropped unread.
                        Ok(None) => return,
                        Err(e) => Err(e),
                    }
                }
                Ok((other, _)) => Err(NetError::Protocol(format!(
                    "unexpected data stream {other:?}"
                ))),
                Err(e) => Err(e),
            };
            match event {
                Ok(event) => {
                    let _ = shared.hub.send(event).await;
                }
                Err(e) => {
                    tracing::warn!(client, "bad upload: {e}");
                    conn.close(e.close_code(), e.to_string().as_bytes());
                }
            }
        });
    }
}

/// Reads a module's bytes, checks their hash and inspects them.
async fn receive_module(
    stream: quinn::RecvStream,
    hash: ModuleHash,
    client: ClientId,
    tenant: TenantId,
) -> Result<HubEvent, NetError> {
    let bytes = data::recv_payload(stream, wask_proto::limits::MAX_MODULE).await?;
    if ModuleHash::of(&bytes) != hash {
        return Err(NetError::Protocol(
            "module bytes do not match their hash".into(),
        ));
    }
    let (bytes, info) = tokio::task::spawn_blocking(move || {
        let info = wask_proto::module::inspect(&bytes, &Default::default());
        (bytes, info)
    })
    .await
    .map_err(|e| NetError::Protocol(format!("inspecting a module: {e}")))?;
    Ok(HubEvent::ModuleUploaded {
        client,
        tenant,
        hash,
        bytes,
        info: info.map_err(|e| e.to_string()),
    })
}
