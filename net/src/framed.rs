//! The control stream: length-prefixed postcard frames, batched.
//!
//! A writer task owns the send half and drains a channel: every message
//! queued while the previous write was in flight goes out in the next
//! single write, so bursts batch themselves without a timer (dask waits up
//! to 10 ms to batch; we never wait).

use crate::NetError;
use quinn::{RecvStream, SendStream};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;
use wask_proto::frame::{self, FrameDecoder};

/// Bytes gathered into one write before it is sent.
const BATCH_BYTES: usize = 1 << 20;

/// Reads frames from a receive stream.
pub struct FrameReader {
    recv: RecvStream,
    decoder: FrameDecoder,
}

impl FrameReader {
    /// A reader refusing frames over `limit` bytes.
    pub fn new(recv: RecvStream, limit: usize) -> FrameReader {
        FrameReader {
            recv,
            decoder: FrameDecoder::new(limit),
        }
    }

    /// The next message, or `None` at a clean end of stream.
    pub async fn next<T: DeserializeOwned>(&mut self) -> Result<Option<T>, NetError> {
        loop {
            if let Some(msg) = self.decoder.next_message()? {
                return Ok(Some(msg));
            }
            match self.recv.read_chunk(256 << 10, true).await? {
                Some(chunk) => self.decoder.push(&chunk.bytes),
                None => {
                    self.decoder.finish()?;
                    return Ok(None);
                }
            }
        }
    }

    /// Tells the peer to stop sending (after a protocol error).
    pub fn stop(&mut self, code: quinn::VarInt) {
        let _ = self.recv.stop(code);
    }
}

/// Writes one message right away (used for hellos, before the writer task
/// exists).
pub async fn write_one<T: Serialize>(send: &mut SendStream, msg: &T) -> Result<(), NetError> {
    send.write_all(&frame::encode_to_vec(msg)).await?;
    Ok(())
}

/// Runs the writer loop: drains `rx`, batching, until the channel closes
/// (then finishes the stream) or a write fails.
pub async fn run_writer<T: Serialize>(
    mut send: SendStream,
    mut rx: mpsc::UnboundedReceiver<T>,
) -> Result<(), NetError> {
    let mut buf = Vec::with_capacity(64 << 10);
    while let Some(msg) = rx.recv().await {
        frame::encode(&msg, &mut buf);
        while buf.len() < BATCH_BYTES {
            match rx.try_recv() {
                Ok(msg) => frame::encode(&msg, &mut buf),
                Err(_) => break,
            }
        }
        send.write_all(&buf).await?;
        if buf.capacity() > 4 * BATCH_BYTES {
            buf = Vec::with_capacity(64 << 10);
        } else {
            buf.clear();
        }
    }
    let _ = send.finish();
    Ok(())
}

/// Starts the writer task for `send`; returns the sender to queue messages.
pub fn spawn_writer<T: Serialize + Send + 'static>(send: SendStream) -> mpsc::UnboundedSender<T> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        if let Err(e) = run_writer(send, rx).await {
            tracing::debug!("control stream writer ended: {e}");
        }
    });
    tx
}
