//! [`Client::scatter`]: values from the client, held on the cluster as
//! futures, like dask's `Client.scatter`.
//!
//! A value is postcard-encoded here; its key is `data-<32 hex>`, blake3 of
//! the bytes ([`wask_proto::key::data_key_id`]), so equal data gets the
//! same key (dask's scatter is pure by default too). Scattering announces
//! the keys and sizes and returns at once; the bytes stay here until the
//! scheduler answers each announcement: upload them (small ones inline in
//! one control message, large ones on a stream each), or drop them, when
//! the tenant already holds the data. The scheduler passes uploaded bytes
//! on to a worker and keeps none.

use crate::client::Client;
use crate::connection::Connection;
use crate::error::{Error, Result};
use crate::future::Future;
use bytes::Bytes;
use serde::Serialize;
use std::sync::Mutex;
use wask_proto::hash::{FastMap, new_map};
use wask_proto::key::{DATA_NAME, data_key_id};
use wask_proto::limits::{INLINE_VALUE_MAX, MAX_PAYLOAD};
use wask_proto::msg::{ClientRequest, DataValue, ScatterSpec, StreamHeader};
use wask_proto::{KeyId, TaskKey};

/// Bytes of inline values gathered into one `Data` message, far below the
/// frame limit.
const DATA_BATCH_BYTES: usize = 1 << 20;

/// Scattered bytes waiting for the scheduler's answer, by key.
#[derive(Debug)]
pub(crate) struct Uploads {
    pending: Mutex<FastMap<KeyId, Pending>>,
}

#[derive(Debug)]
struct Pending {
    bytes: Bytes,
    /// Scatters of the key not answered yet: the scheduler answers each
    /// one, and the bytes go when the last answer came.
    unanswered: u32,
}

impl Default for Uploads {
    fn default() -> Self {
        Uploads {
            pending: Mutex::new(new_map()),
        }
    }
}

impl Uploads {
    fn lock(&self) -> std::sync::MutexGuard<'_, FastMap<KeyId, Pending>> {
        // Single map operations under the lock: a poisoned lock is safe.
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The key was scattered (again).
    fn add(&self, key: KeyId, bytes: &Bytes) {
        self.lock()
            .entry(key)
            .or_insert_with(|| Pending {
                bytes: bytes.clone(),
                unanswered: 0,
            })
            .unanswered += 1;
    }

    /// One scatter of `key` is answered; its bytes if they were still here.
    fn answer(&self, key: &KeyId) -> Option<Bytes> {
        let mut g = self.lock();
        let p = g.get_mut(key)?;
        p.unanswered -= 1;
        if p.unanswered == 0 {
            g.remove(key).map(|p| p.bytes)
        } else {
            Some(p.bytes.clone())
        }
    }

    /// Number of keys whose bytes are kept.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

/// The scheduler does not need these bytes (answering one scatter each).
pub(crate) fn not_needed(c: &Connection, keys: Vec<KeyId>) {
    for key in keys {
        c.uploads.answer(&key);
    }
}

/// The scheduler asks for these bytes: small ones go in `Data` messages on
/// the control stream, large ones on a stream each.
pub(crate) fn send_data(c: &Connection, keys: Vec<KeyId>) {
    let mut batch = Vec::new();
    let mut batch_bytes = 0;
    for key in keys {
        let Some(value) = c.uploads.answer(&key) else {
            tracing::warn!(key = %key.hex(), "the scheduler asks for data this client does not have");
            continue;
        };
        if value.len() > INLINE_VALUE_MAX {
            let conn = c.conn.clone();
            tokio::spawn(async move {
                let header = StreamHeader::Scatter { key };
                if let Err(e) = wask_net::data::send(&conn, &header, value).await {
                    tracing::debug!(key = %key.hex(), "uploading data failed: {e}");
                }
            });
            continue;
        }
        if batch_bytes + value.len() > DATA_BATCH_BYTES && !batch.is_empty() {
            c.registry
                .send(ClientRequest::Data(std::mem::take(&mut batch)));
            batch_bytes = 0;
        }
        batch_bytes += value.len();
        batch.push(DataValue { key, value });
    }
    if !batch.is_empty() {
        c.registry.send(ClientRequest::Data(batch));
    }
}

/// A postcard output that refuses to grow past a limit, so that encoding
/// data too large to scatter stops there instead of allocating it all.
/// Past the limit it fails with `SerializeBufferFull`, which nothing else
/// in encoding into a `Vec` can.
struct Limited {
    buf: Vec<u8>,
    limit: usize,
}

impl postcard::ser_flavors::Flavor for Limited {
    type Output = Vec<u8>;

    fn try_push(&mut self, b: u8) -> postcard::Result<()> {
        self.try_extend(&[b])
    }

    fn try_extend(&mut self, b: &[u8]) -> postcard::Result<()> {
        if self.buf.len() + b.len() > self.limit {
            return Err(postcard::Error::SerializeBufferFull);
        }
        self.buf.extend_from_slice(b);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<Vec<u8>> {
        Ok(self.buf)
    }
}

/// The postcard bytes of a value and its key, checked against the size
/// limit before anything is sent.
fn encode<T: Serialize>(value: &T) -> Result<(TaskKey, Bytes)> {
    let out = Limited {
        buf: Vec::new(),
        limit: MAX_PAYLOAD,
    };
    let bytes = match postcard::serialize_with_flavor(value, out) {
        Ok(bytes) => bytes,
        Err(postcard::Error::SerializeBufferFull) => {
            // Counting, unlike encoding, costs no memory.
            let size =
                postcard::serialize_with_flavor(value, postcard::ser_flavors::Size::default())
                    .map_or(u64::MAX, |n| n as u64);
            return Err(Error::DataTooLarge {
                size,
                max: MAX_PAYLOAD as u64,
            });
        }
        Err(e) => return Err(Error::Encode(e.to_string())),
    };
    let key = TaskKey {
        name: DATA_NAME.into(),
        id: data_key_id(&bytes),
        pure: true,
    };
    Ok((key, Bytes::from(bytes)))
}

impl Client {
    /// Sends a value to the cluster and returns its future, like dask's
    /// `Client.scatter`. Use the future like any other: `.await` or
    /// [`result`](Future::result) gives the value back, and as an argument
    /// of [`submit`](Client::submit) or [`map`](Client::map) the task runs
    /// where the data is (or fetches it from that worker), without the
    /// bytes going through the client again.
    ///
    /// The key is `data-<32 hex>`, a hash of the postcard bytes: scattering
    /// equal data gives the same key, and if this client's tenant already
    /// holds it nothing is uploaded. Like [`submit`](Client::submit), this
    /// only queues messages and returns at once; the bytes follow when the
    /// scheduler asks for them, and it passes them on to the worker holding
    /// the fewest bytes without keeping a copy. The data counts against that worker's
    /// memory limit and the tenant's bytes quota, and is released when the
    /// last future drops. It cannot be recomputed: if the worker holding it
    /// leaves, the future (and every task depending on it) fails with
    /// [`TaskError::DataLost`](wask_proto::TaskError::DataLost).
    ///
    /// Errors at once with [`Error::DataTooLarge`] for data over
    /// [`MAX_PAYLOAD`](wask_proto::limits::MAX_PAYLOAD) bytes.
    pub fn scatter<T: Serialize>(&self, value: &T) -> Result<Future<T>> {
        let (key, bytes) = encode(value)?;
        let mut v = self.scatter_encoded(vec![key], vec![bytes])?;
        Ok(v.pop().expect("one future per value"))
    }

    /// Scatters every value, in one message; the futures are in the same
    /// order (equal values share a key and a future). Nothing is sent if
    /// any value cannot be encoded or is too large. See
    /// [`scatter`](Client::scatter).
    pub fn scatter_many<T: Serialize>(
        &self,
        values: impl IntoIterator<Item = T>,
    ) -> Result<Vec<Future<T>>> {
        let values = values.into_iter();
        let mut keys = Vec::with_capacity(values.size_hint().0);
        let mut bytes = Vec::with_capacity(values.size_hint().0);
        for v in values {
            let (k, b) = encode(&v)?;
            keys.push(k);
            bytes.push(b);
        }
        self.scatter_encoded(keys, bytes)
    }

    fn scatter_encoded<T>(&self, keys: Vec<TaskKey>, bytes: Vec<Bytes>) -> Result<Vec<Future<T>>> {
        let uploads = &self.conn.uploads;
        let ids: Vec<KeyId> = keys.iter().map(|k| k.id).collect();
        let holders = self.conn.registry.hold_or_submit(keys, |fresh, send| {
            let specs = fresh.iter().map(|&i| {
                let (key, b) = (ids[i], &bytes[i]);
                // Kept before the announcement leaves, so the answer finds
                // them.
                uploads.add(key, b);
                ScatterSpec {
                    key,
                    nbytes: b.len() as u64,
                }
            });
            crate::registry::chunked(specs, |_| 0, ClientRequest::Scatter, send);
        })?;
        Ok(holders.into_iter().map(Future::new).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_the_hash_of_the_postcard_bytes() {
        let (key, bytes) = encode(&vec![1i64, 2, 3]).unwrap();
        assert_eq!(
            &bytes[..],
            &postcard::to_allocvec(&vec![1i64, 2, 3]).unwrap()[..]
        );
        assert_eq!(
            key.to_string(),
            format!("data-{}", data_key_id(&bytes).hex())
        );
        assert_eq!(key, encode(&vec![1i64, 2, 3]).unwrap().0);
        assert_ne!(key, encode(&vec![1i64, 2, 4]).unwrap().0);
    }

    /// Bytes serialized as one run (as `serde_bytes` does), so that the
    /// encoder need not visit each one.
    struct Blob(Vec<u8>);

    impl Serialize for Blob {
        fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
            s.serialize_bytes(&self.0)
        }
    }

    #[test]
    fn too_large_data_is_refused_before_sending() {
        // Zeroed pages nobody writes cost no memory; the encoder refuses
        // before copying them.
        let big = Blob(vec![0u8; MAX_PAYLOAD]); // plus its length prefix
        match encode(&big) {
            Err(Error::DataTooLarge { size, max }) => {
                assert_eq!(size, max + 5, "the bytes and a 5-byte varint length");
                assert_eq!(max, MAX_PAYLOAD as u64);
            }
            other => panic!("expected DataTooLarge, got {other:?}"),
        }
        let fits = Blob(vec![0u8; 100]);
        assert_eq!(encode(&fits).unwrap().1.len(), 101);
    }

    #[test]
    fn bytes_stay_until_every_scatter_is_answered() {
        let u = Uploads::default();
        let key = KeyId([1; 16]);
        let bytes = Bytes::from_static(b"abc");
        u.add(key, &bytes);
        u.add(key, &bytes);
        assert_eq!(u.answer(&key), Some(bytes.clone()));
        assert_eq!(u.len(), 1);
        assert_eq!(u.answer(&key), Some(bytes));
        assert_eq!(u.len(), 0);
        assert_eq!(u.answer(&key), None);
    }
}
