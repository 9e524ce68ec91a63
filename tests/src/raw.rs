//! A client that speaks the protocol directly, for tests that send what the
//! typed API never sends (another tenant's keys, oversized uploads).

use std::time::Duration;
use wask::SchedulerAddress;
use wask_net::framed::{self, FrameReader};
use wask_proto::msg::{ClientEvent, ClientRequest};

/// A welcomed raw client connection.
pub struct RawClient {
    /// Kept alive with the connection.
    pub endpoint: quinn::Endpoint,
    /// The connection, for data streams and close codes.
    pub conn: quinn::Connection,
    /// The control stream's send half.
    pub send: quinn::SendStream,
    /// The control stream's frames.
    pub reader: FrameReader,
}

impl RawClient {
    /// Connects, says hello with `token` and checks the welcome.
    pub async fn connect(address: &SchedulerAddress, token: Option<&str>) -> RawClient {
        let endpoint = wask_net::endpoint::client(address.addr).unwrap();
        let conn = wask_net::endpoint::connect(
            &endpoint,
            address.addr,
            &address.cert_der,
            wask_proto::ALPN_CLIENT,
        )
        .await
        .unwrap();
        let (mut send, recv) = conn.open_bi().await.unwrap();
        let hello = ClientRequest::Hello {
            protocol: wask_proto::PROTOCOL_VERSION,
            token: token.map(Into::into),
        };
        framed::write_one(&mut send, &hello).await.unwrap();
        let mut reader = FrameReader::new(recv, wask_proto::limits::MAX_FRAME);
        let welcome = reader.next::<ClientEvent>().await;
        assert!(
            matches!(welcome, Ok(Some(ClientEvent::Welcome { .. }))),
            "{welcome:?}"
        );
        RawClient {
            endpoint,
            conn,
            send,
            reader,
        }
    }

    /// Sends `req` without waiting for anything.
    pub async fn tell(&mut self, req: ClientRequest) {
        framed::write_one(&mut self.send, &req).await.unwrap();
    }

    /// Sends `req` and returns the next event (within 10 s).
    pub async fn ask(&mut self, req: ClientRequest) -> ClientEvent {
        self.tell(req).await;
        tokio::time::timeout(Duration::from_secs(10), self.reader.next::<ClientEvent>())
            .await
            .expect("an answer")
            .unwrap()
            .expect("an answer")
    }
}
