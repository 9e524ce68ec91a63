//! Data streams: one unidirectional stream per large payload, opened with a
//! [`StreamHeader`] frame and carrying the raw bytes to its end.
//!
//! A receiver that must check the header before it accepts the payload
//! (is this upload expected? how large may it be?) reads the two apart
//! with [`recv_header`] and [`recv_payload`]; [`recv`] does both.

use crate::NetError;
use bytes::Bytes;
use quinn::{Connection, RecvStream};
use wask_proto::frame::{self, PREFIX};
use wask_proto::msg::StreamHeader;

/// Most bytes a header frame may have.
const MAX_HEADER: usize = 4 << 10;

/// Sends `payload` on a new stream of `conn`, headed by `header`.
pub async fn send(
    conn: &Connection,
    header: &StreamHeader,
    payload: Bytes,
) -> Result<(), NetError> {
    let mut stream = conn.open_uni().await?;
    let mut chunks = [Bytes::from(frame::encode_to_vec(header)), payload];
    stream.write_all_chunks(&mut chunks).await?;
    stream.finish()?;
    Ok(())
}

/// Reads a whole data stream: its header and at most `limit` payload bytes.
pub async fn recv(stream: RecvStream, limit: usize) -> Result<(StreamHeader, Bytes), NetError> {
    let (header, stream) = recv_header(stream).await?;
    let payload = recv_payload(stream, limit).await?;
    Ok((header, payload))
}

/// Reads the header of a data stream; the payload is left in the stream.
pub async fn recv_header(mut stream: RecvStream) -> Result<(StreamHeader, RecvStream), NetError> {
    let mut prefix = [0u8; PREFIX];
    stream
        .read_exact(&mut prefix)
        .await
        .map_err(|e| NetError::Protocol(format!("data stream header: {e}")))?;
    let len = u32::from_le_bytes(prefix) as usize;
    if len > MAX_HEADER {
        let _ = stream.stop(crate::codes::PROTOCOL);
        return Err(NetError::Protocol(format!(
            "data stream header of {len} bytes"
        )));
    }
    let mut body = vec![0u8; len];
    stream
        .read_exact(&mut body)
        .await
        .map_err(|e| NetError::Protocol(format!("data stream header: {e}")))?;
    let header: StreamHeader = frame::decode_body(&body)?;
    Ok((header, stream))
}

/// Reads the rest of a data stream, at most `limit` bytes; a longer one is
/// stopped with [`TOO_LARGE`](crate::codes::TOO_LARGE).
pub async fn recv_payload(mut stream: RecvStream, limit: usize) -> Result<Bytes, NetError> {
    match stream.read_to_end(limit).await {
        Ok(v) => Ok(Bytes::from(v)),
        Err(quinn::ReadToEndError::TooLong) => {
            let _ = stream.stop(crate::codes::TOO_LARGE);
            Err(NetError::TooLarge { limit })
        }
        Err(e) => Err(e.into()),
    }
}
