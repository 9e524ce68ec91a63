//! Connecting to the scheduler: pinned TLS, hello with the cluster secret,
//! then a writer task for reports.

use super::{WorkerConfig, WorkerError};
use tokio::sync::mpsc;
use wask_net::{Identity, framed};
use wask_proto::msg::{WorkerCommand, WorkerRequest};
use wask_proto::{PROTOCOL_VERSION, WorkerId};

/// An established, welcomed scheduler connection.
pub(super) struct SchedulerConn {
    pub worker: WorkerId,
    pub conn: quinn::Connection,
    pub tx: mpsc::UnboundedSender<WorkerRequest>,
    pub reader: framed::FrameReader,
    /// Where peers reach this worker.
    pub peer_address: String,
}

pub(super) async fn connect(
    endpoint: &quinn::Endpoint,
    config: &WorkerConfig,
    bound: std::net::SocketAddr,
    identity: &Identity,
) -> Result<SchedulerConn, WorkerError> {
    let conn = wask_net::endpoint::connect(
        endpoint,
        config.scheduler,
        &config.scheduler_cert,
        wask_proto::ALPN_WORKER,
    )
    .await?;
    // Unless told otherwise, peers reach us at the address our packets to
    // the scheduler leave from: the interface that routes to the cluster.
    let peer_address = match &config.advertise {
        Some(a) => a.clone(),
        None if bound.ip().is_unspecified() => {
            // quinn reports the local IP of accepted connections only
            // (`local_ip()` is `None` on the connecting side), so ask the
            // kernel which source address routes to the scheduler.
            let ip = conn
                .local_ip()
                .or_else(|| route_source(config.scheduler))
                .unwrap_or(std::net::Ipv4Addr::LOCALHOST.into());
            std::net::SocketAddr::new(ip, bound.port()).to_string()
        }
        None => bound.to_string(),
    };
    let (mut send, recv) = conn.open_bi().await.map_err(wask_net::NetError::from)?;
    let hello = WorkerRequest::Hello {
        protocol: PROTOCOL_VERSION,
        secret: config.secret.clone(),
        name: config.name.clone(),
        nthreads: config.nthreads as u32,
        memory_limit: config.memory_limit,
        peer_address: peer_address.clone(),
        peer_cert: identity.cert_der.clone().into(),
    };
    framed::write_one(&mut send, &hello).await?;
    let mut reader = framed::FrameReader::new(recv, wask_proto::limits::MAX_FRAME);
    let timeout = std::time::Duration::from_secs(wask_proto::limits::HELLO_TIMEOUT_SECS);
    let answer = tokio::time::timeout(timeout, reader.next::<WorkerCommand>())
        .await
        .map_err(|_| WorkerError::Refused("no answer to hello".into()))??;
    match answer {
        Some(WorkerCommand::Welcome { worker }) => {
            let tx = framed::spawn_writer(send);
            Ok(SchedulerConn {
                worker,
                conn,
                tx,
                reader,
                peer_address,
            })
        }
        Some(WorkerCommand::Refused { reason }) => Err(WorkerError::Refused(reason)),
        _ => Err(WorkerError::Refused("unexpected answer to hello".into())),
    }
}

/// The source address the kernel picks for packets to `to`: `connect` on a
/// UDP socket only selects a route, it sends nothing.
fn route_source(to: std::net::SocketAddr) -> Option<std::net::IpAddr> {
    let any: std::net::SocketAddr = if to.is_ipv4() {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = std::net::UdpSocket::bind(any).ok()?;
    socket.connect(to).ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_unspecified()).then_some(ip)
}
