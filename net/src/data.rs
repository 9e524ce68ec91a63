//! Data streams: one unidirectional stream per large payload, opened with a
//! [`StreamHeader`] frame and carrying the raw bytes to its end.
//!
//! A receiver that must check the header before it accepts the payload
//! (is this upload expected? how large may it be?) reads the two apart
//! with [`recv_header`] and [`recv_payload`]; [`recv`] does both.

use crate::NetError;
use bytes::Bytes;
use quinn::{Connection, RecvStream};
use std::time::Duration;
use wask_proto::frame::{self, PREFIX};
use wask_proto::msg::StreamHeader;

/// Most bytes a header frame may have.
const MAX_HEADER: usize = 4 << 10;

/// Time allowed for a data stream of `nbytes`: 10 s, plus the bytes at
/// 4 MiB/s (138 s for the largest payload). A peer that stalls a stream
/// longer (never reads what it is sent, or sends a header and then
/// nothing) would otherwise hold the stream, the task moving it and
/// whatever budget the bytes took, for as long as it keeps its connection
/// alive.
pub fn deadline(nbytes: u64) -> Duration {
    Duration::from_secs(10).saturating_add(Duration::from_secs(nbytes / (4 << 20)))
}

fn timed_out(nbytes: u64) -> NetError {
    NetError::TimedOut {
        nbytes,
        secs: deadline(nbytes).as_secs(),
    }
}

/// Sends `payload` on a new stream of `conn`, headed by `header`, within
/// [`deadline`]; a stream not written by then is reset, so the receiver
/// never takes part of a payload for all of it.
pub async fn send(
    conn: &Connection,
    header: &StreamHeader,
    payload: Bytes,
) -> Result<(), NetError> {
    let nbytes = payload.len() as u64;
    let limit = deadline(nbytes);
    let start = tokio::time::Instant::now();
    let mut stream = tokio::time::timeout(limit, conn.open_uni())
        .await
        .map_err(|_| timed_out(nbytes))??;
    let mut chunks = [Bytes::from(frame::encode_to_vec(header)), payload];
    match tokio::time::timeout_at(start + limit, stream.write_all_chunks(&mut chunks)).await {
        Ok(written) => written?,
        Err(_) => {
            // Dropping the stream would finish it: a truncated payload.
            let _ = stream.reset(crate::codes::SHUTDOWN);
            return Err(timed_out(nbytes));
        }
    }
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

/// Reads the rest of a data stream, at most `limit` bytes, within the
/// [`deadline`] of `limit` bytes; a longer one is stopped with
/// [`TOO_LARGE`](crate::codes::TOO_LARGE), a slower one with
/// [`PROTOCOL`](crate::codes::PROTOCOL).
pub async fn recv_payload(mut stream: RecvStream, limit: usize) -> Result<Bytes, NetError> {
    let nbytes = limit as u64;
    match tokio::time::timeout(deadline(nbytes), stream.read_to_end(limit)).await {
        Ok(Ok(v)) => Ok(Bytes::from(v)),
        Ok(Err(quinn::ReadToEndError::TooLong)) => {
            let _ = stream.stop(crate::codes::TOO_LARGE);
            Err(NetError::TooLarge { limit })
        }
        Ok(Err(e)) => Err(e.into()),
        Err(_) => {
            let _ = stream.stop(crate::codes::PROTOCOL);
            Err(timed_out(nbytes))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deadline_grows_with_the_bytes_from_ten_seconds() {
        assert_eq!(deadline(0), Duration::from_secs(10));
        assert_eq!(deadline(4 << 20), Duration::from_secs(11));
        assert_eq!(
            deadline(wask_proto::limits::MAX_PAYLOAD as u64),
            Duration::from_secs(10 + (wask_proto::limits::MAX_PAYLOAD as u64 >> 22))
        );
        assert_eq!(
            deadline(u64::MAX),
            Duration::from_secs(10 + (u64::MAX >> 22))
        );
    }
}
