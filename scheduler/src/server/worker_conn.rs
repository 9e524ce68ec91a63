//! One worker connection: hello with the cluster secret, then reports.

use super::hub::{HubEvent, WorkerUp};
use super::{Shared, accept};
use crate::state::Event;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tracing::Instrument;
use wask_net::{NetError, codes, data, framed};
use wask_proto::msg::{StreamHeader, WorkerCommand, WorkerRequest};
use wask_proto::{PROTOCOL_VERSION, WorkerId};

pub(super) async fn run(conn: quinn::Connection, shared: Arc<Shared>) {
    let remote = conn.remote_address();
    let (mut send, mut reader, hello) =
        match accept::hello::<WorkerRequest>(&conn, shared.hello_timeout).await {
            Ok(h) => h,
            Err(e) => {
                tracing::info!(%remote, "worker refused: {e}");
                conn.close(codes::PROTOCOL, b"bad hello");
                return;
            }
        };
    let WorkerRequest::Hello {
        protocol,
        secret,
        name,
        nthreads,
        memory_limit,
        peer_address,
        peer_cert,
    } = hello
    else {
        conn.close(codes::PROTOCOL, b"first message must be a hello");
        return;
    };
    let refusal = if protocol != PROTOCOL_VERSION {
        Some(format!("protocol {protocol} is not {PROTOCOL_VERSION}"))
    } else if !wask_net::secrets_equal(&secret, &shared.cluster_secret) {
        Some("wrong cluster secret".to_string())
    } else if nthreads == 0 || nthreads > 4096 {
        Some(format!("nthreads {nthreads} out of range"))
    } else {
        None
    };
    if let Some(reason) = refusal {
        tracing::warn!(%remote, "worker refused: {reason}");
        let _ = framed::write_one(
            &mut send,
            &WorkerCommand::Refused {
                reason: reason.clone(),
            },
        )
        .await;
        let _ = send.finish();
        let _ = tokio::time::timeout(std::time::Duration::from_millis(200), send.stopped()).await;
        conn.close(codes::REFUSED, reason.as_bytes());
        return;
    }
    let worker: WorkerId = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let span = tracing::info_span!("worker", worker, %name, %remote);
    // The span covers the whole connection, across its awaits.
    async move {
        if framed::write_one(&mut send, &WorkerCommand::Welcome { worker })
            .await
            .is_err()
        {
            return;
        }
        let tx = framed::spawn_writer::<WorkerCommand>(send);
        let up = WorkerUp {
            worker,
            name,
            nthreads,
            memory_limit,
            peer_address,
            peer_cert,
            tx,
            conn: conn.clone(),
        };
        if shared
            .hub
            .send(HubEvent::WorkerUp(Box::new(up)))
            .await
            .is_err()
        {
            return;
        }
        tracing::info!(nthreads, "worker joined");

        let values = tokio::spawn(accept_values(conn.clone(), shared.clone(), worker));
        let result = control_loop(&mut reader, &shared, worker).await;
        values.abort();
        if let Err(e) = &result {
            tracing::warn!("worker connection closed: {e}");
            conn.close(e.close_code(), e.to_string().as_bytes());
        }
        let _ = shared.hub.send(HubEvent::WorkerDown { worker }).await;
        tracing::info!("worker left");
    }
    .instrument(span)
    .await;
}

async fn control_loop(
    reader: &mut framed::FrameReader,
    shared: &Shared,
    worker: WorkerId,
) -> Result<(), NetError> {
    while let Some(msg) = reader.next::<WorkerRequest>().await? {
        let ev = match msg {
            WorkerRequest::Hello { .. } => return Err(NetError::Protocol("second hello".into())),
            WorkerRequest::Finished(tasks) => HubEvent::Core(Event::Finished { worker, tasks }),
            WorkerRequest::Failed(tasks) => HubEvent::Core(Event::Failed { worker, tasks }),
            WorkerRequest::Value { req, value } => {
                HubEvent::Core(Event::Value { worker, req, value })
            }
            WorkerRequest::NeedModule { module } => HubEvent::NeedModule { worker, module },
            WorkerRequest::Stored(reports) => HubEvent::Core(Event::Stored { worker, reports }),
            WorkerRequest::Goodbye => return Ok(()),
        };
        if shared.hub.send(ev).await.is_err() {
            return Ok(());
        }
    }
    Ok(())
}

async fn accept_values(conn: quinn::Connection, shared: Arc<Shared>, worker: WorkerId) {
    while let Ok(stream) = conn.accept_uni().await {
        let shared = shared.clone();
        let conn = conn.clone();
        tokio::spawn(async move {
            match data::recv(stream, wask_proto::limits::MAX_PAYLOAD).await {
                Ok((StreamHeader::WorkerValue { req }, value)) => {
                    let _ = shared
                        .hub
                        .send(HubEvent::Core(Event::Value {
                            worker,
                            req,
                            value: Some(value),
                        }))
                        .await;
                }
                Ok((other, _)) => {
                    tracing::warn!(worker, "unexpected data stream {other:?}");
                    conn.close(codes::PROTOCOL, b"unexpected data stream");
                }
                Err(e) => {
                    tracing::warn!(worker, "bad data stream: {e}");
                    conn.close(e.close_code(), e.to_string().as_bytes());
                }
            }
        });
    }
}
