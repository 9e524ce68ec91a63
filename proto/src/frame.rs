//! Length-prefixed postcard frames.
//!
//! A frame is a little-endian `u32` length followed by that many bytes of
//! postcard. [`FrameDecoder`] is sans-io: push bytes as they arrive, pull
//! frames out. A frame longer than the limit, or one that does not decode to
//! exactly one message, is an error and the connection carrying it is
//! closed.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Bytes of the length prefix.
pub const PREFIX: usize = 4;

/// Why a frame was refused.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The length prefix exceeds the limit.
    #[error("frame of {len} bytes exceeds the limit of {limit}")]
    TooLarge {
        /// The announced length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The frame is not a valid message.
    #[error("malformed frame: {0}")]
    Malformed(#[from] postcard::Error),
    /// The frame decodes but has bytes left over.
    #[error("frame has {0} trailing bytes")]
    Trailing(usize),
    /// The stream ended in the middle of a frame.
    #[error("stream ended inside a frame")]
    Truncated,
}

/// Appends one frame holding `msg` to `out`.
pub fn encode<T: Serialize>(msg: &T, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; PREFIX]);
    // Serializing into a Vec cannot fail for our message types (no maps with
    // non-string keys, no unsized sequences).
    let mut out2 = std::mem::take(out);
    out2 = postcard::to_extend(msg, out2).expect("postcard encoding into a Vec");
    *out = out2;
    let len = (out.len() - start - PREFIX) as u32;
    out[start..start + PREFIX].copy_from_slice(&len.to_le_bytes());
}

/// One frame holding `msg`, as a fresh buffer.
pub fn encode_to_vec<T: Serialize>(msg: &T) -> Vec<u8> {
    let mut v = Vec::new();
    encode(msg, &mut v);
    v
}

/// Decodes one message that must span all of `body` (no prefix).
pub fn decode_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, FrameError> {
    let (msg, rest) = postcard::take_from_bytes(body)?;
    if !rest.is_empty() {
        return Err(FrameError::Trailing(rest.len()));
    }
    Ok(msg)
}

/// Accumulates bytes and yields whole frames.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    start: usize,
    limit: usize,
}

impl FrameDecoder {
    /// A decoder refusing frames longer than `limit`.
    pub fn new(limit: usize) -> FrameDecoder {
        FrameDecoder {
            buf: Vec::new(),
            start: 0,
            limit,
        }
    }

    /// Adds received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > (64 << 10) && self.start * 2 > self.buf.len() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The body of the next whole frame, if one is buffered. Errors if the
    /// buffered prefix announces a frame over the limit, before its body
    /// arrives, so an oversized frame is never buffered.
    pub fn next_body(&mut self) -> Result<Option<&[u8]>, FrameError> {
        let avail = &self.buf[self.start..];
        if avail.len() < PREFIX {
            return Ok(None);
        }
        let len = u32::from_le_bytes(avail[..PREFIX].try_into().expect("4 bytes")) as usize;
        if len > self.limit {
            return Err(FrameError::TooLarge {
                len,
                limit: self.limit,
            });
        }
        if avail.len() < PREFIX + len {
            return Ok(None);
        }
        let body_start = self.start + PREFIX;
        self.start = body_start + len;
        Ok(Some(&self.buf[body_start..body_start + len]))
    }

    /// The next whole message, if one is buffered.
    pub fn next_message<T: DeserializeOwned>(&mut self) -> Result<Option<T>, FrameError> {
        match self.next_body()? {
            Some(body) => decode_body(body).map(Some),
            None => Ok(None),
        }
    }

    /// Call at the end of the stream: errors if a partial frame is left.
    pub fn finish(&self) -> Result<(), FrameError> {
        if self.start == self.buf.len() {
            Ok(())
        } else {
            Err(FrameError::Truncated)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::{ClientRequest, TaskSpec};
    use crate::{ArgTemplate, KeyId, TaskLimits};

    fn submit() -> ClientRequest {
        ClientRequest::Submit(vec![TaskSpec {
            key: KeyId([1; 16]),
            pure: true,
            module: 3,
            func: 0,
            args: ArgTemplate::literal(vec![20]),
            deps: vec![],
            limits: TaskLimits::default(),
        }])
    }

    #[test]
    fn round_trip_in_pieces() {
        let mut bytes = Vec::new();
        encode(&submit(), &mut bytes);
        encode(&ClientRequest::Release(vec![KeyId([2; 16])]), &mut bytes);
        let mut d = FrameDecoder::new(1 << 20);
        let mut got = Vec::new();
        for b in &bytes {
            d.push(std::slice::from_ref(b));
            while let Some(m) = d.next_message::<ClientRequest>().unwrap() {
                got.push(m);
            }
        }
        assert_eq!(
            got,
            vec![submit(), ClientRequest::Release(vec![KeyId([2; 16])])]
        );
        d.finish().unwrap();
    }

    #[test]
    fn oversized_prefix_is_refused_before_the_body() {
        let mut d = FrameDecoder::new(100);
        d.push(&1000u32.to_le_bytes());
        assert!(matches!(
            d.next_message::<ClientRequest>(),
            Err(FrameError::TooLarge {
                len: 1000,
                limit: 100
            })
        ));
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        let mut seed = 0x1234_5678_u64;
        for n in 0..2000 {
            let len = n % 64;
            let mut body = Vec::with_capacity(len);
            for _ in 0..len {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                body.push(seed as u8);
            }
            let mut framed = (len as u32).to_le_bytes().to_vec();
            framed.extend_from_slice(&body);
            let mut d = FrameDecoder::new(1 << 20);
            d.push(&framed);
            // Either a message or an error; never a panic or a hang.
            let _ = d.next_message::<ClientRequest>();
            let _ = d.next_message::<crate::msg::WorkerRequest>();
        }
    }

    #[test]
    fn truncated_and_trailing() {
        let mut bytes = encode_to_vec(&submit());
        bytes.pop();
        let mut d = FrameDecoder::new(1 << 20);
        d.push(&bytes);
        assert!(d.next_message::<ClientRequest>().unwrap().is_none());
        assert!(matches!(d.finish(), Err(FrameError::Truncated)));

        let mut body = postcard::to_allocvec(&submit()).unwrap();
        body.push(0);
        assert!(matches!(
            decode_body::<ClientRequest>(&body),
            Err(FrameError::Trailing(1))
        ));
    }
}
