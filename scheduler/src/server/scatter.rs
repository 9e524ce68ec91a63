//! Uploads of scattered data, checked before the core sees them.
//!
//! A client may upload only what the scheduler asked it for (the core's
//! `RequestData`, recorded here by the hub before the request leaves), with
//! exactly the announced number of bytes, and bytes that hash to the key:
//! so one client cannot put other bytes under a key another client of its
//! tenant will trust. Anything else is a protocol violation and closes the
//! connection. Small values arrive inline in a `Data` frame, larger ones on
//! a stream of their own, read only after its header was checked, and no
//! further than the announced size.

use crate::state::Event;
use bytes::Bytes;
use std::sync::Mutex;
use wask_net::{NetError, data};
use wask_proto::hash::{FastMap, new_map};
use wask_proto::key::data_key_id;
use wask_proto::limits::INLINE_VALUE_MAX;
use wask_proto::msg::DataValue;
use wask_proto::{ClientId, KeyId};

/// The uploads one client was asked for: key → announced size.
#[derive(Debug, Default)]
pub struct Asked {
    keys: Mutex<FastMap<KeyId, u64>>,
}

impl Asked {
    /// An empty set.
    pub(crate) fn new() -> Asked {
        Asked {
            keys: Mutex::new(new_map()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FastMap<KeyId, u64>> {
        // Single map operations under the lock: a poisoned lock is safe.
        self.keys.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The client is asked for `key`'s `nbytes` bytes.
    pub(crate) fn ask(&self, key: KeyId, nbytes: u64) {
        self.lock().insert(key, nbytes);
    }

    /// Takes the announced size of an upload, if it was asked for.
    fn take(&self, key: &KeyId) -> Result<u64, NetError> {
        self.lock().remove(key).ok_or_else(|| {
            NetError::Protocol(format!("upload of data {} nobody asked for", key.hex()))
        })
    }

    /// Checks inline values; the events for the core, or the violation.
    pub(crate) fn inline(
        &self,
        client: ClientId,
        values: Vec<DataValue>,
    ) -> Result<Vec<Event>, NetError> {
        let mut events = Vec::with_capacity(values.len());
        for DataValue { key, value } in values {
            if value.len() > INLINE_VALUE_MAX {
                return Err(NetError::Protocol(format!(
                    "inline data of {} bytes (the most is {INLINE_VALUE_MAX})",
                    value.len()
                )));
            }
            let nbytes = self.take(&key)?;
            check(key, nbytes, &value)?;
            events.push(Event::DataReceived { client, key, value });
        }
        Ok(events)
    }

    /// Reads and checks the rest of a stream headed `Scatter { key }`.
    pub(crate) async fn stream(
        &self,
        client: ClientId,
        key: KeyId,
        stream: quinn::RecvStream,
    ) -> Result<Event, NetError> {
        let nbytes = self.take(&key)?;
        let limit = usize::try_from(nbytes).unwrap_or(usize::MAX);
        let value = data::recv_payload(stream, limit).await?;
        // Hashing up to MAX_PAYLOAD bytes is not for the async threads.
        let value = tokio::task::spawn_blocking(move || check(key, nbytes, &value).map(|()| value))
            .await
            .map_err(|e| NetError::Protocol(format!("checking data: {e}")))??;
        Ok(Event::DataReceived { client, key, value })
    }
}

/// The bytes have the announced size and hash to the key.
fn check(key: KeyId, nbytes: u64, value: &Bytes) -> Result<(), NetError> {
    if value.len() as u64 != nbytes {
        return Err(NetError::Protocol(format!(
            "data {} has {} bytes, {nbytes} were announced",
            key.hex(),
            value.len()
        )));
    }
    if data_key_id(value) != key {
        return Err(NetError::Protocol(format!(
            "data bytes do not hash to their key {}",
            key.hex()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(bytes: &'static [u8]) -> DataValue {
        DataValue {
            key: data_key_id(bytes),
            value: Bytes::from_static(bytes),
        }
    }

    #[test]
    fn only_asked_uploads_of_the_right_bytes_pass() {
        let asked = Asked::new();
        let v = value(b"abc");
        // Not asked for.
        assert!(asked.inline(1, vec![v.clone()]).is_err());
        // Asked for, once.
        asked.ask(v.key, 3);
        assert_eq!(
            asked.inline(1, vec![v.clone()]).unwrap(),
            vec![Event::DataReceived {
                client: 1,
                key: v.key,
                value: v.value.clone()
            }]
        );
        assert!(asked.inline(1, vec![v.clone()]).is_err());
        // Other bytes under the key.
        asked.ask(v.key, 3);
        let forged = DataValue {
            key: v.key,
            value: Bytes::from_static(b"abd"),
        };
        assert!(asked.inline(1, vec![forged]).is_err());
        // Another size than announced.
        asked.ask(v.key, 4);
        assert!(asked.inline(1, vec![v.clone()]).is_err());
        // Too large to be inline, whatever was announced.
        let big = Bytes::from(vec![0u8; INLINE_VALUE_MAX + 1]);
        let key = data_key_id(&big);
        asked.ask(key, big.len() as u64);
        assert!(
            asked
                .inline(1, vec![DataValue { key, value: big }])
                .is_err()
        );
    }
}
