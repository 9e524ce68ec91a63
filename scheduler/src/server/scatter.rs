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
//!
//! The core may stop waiting for an upload it asked for (the key released
//! or erred) while the client, which answers every request, is sending it.
//! The permission then stays until the upload comes, so an honest client is
//! not cut off; to keep a client that never uploads from growing the
//! record, it is pruned whenever it doubles: permissions the core no longer
//! waits for become a mere count of uploads still expected, which are
//! dropped unread when they come.
//!
//! Uploaded bytes held by the scheduler are bounded by one budget,
//! [`RELAY_BYTES`] (a semaphore counting bytes): a streamed upload takes
//! its size from it before its bytes are read, inline values before the
//! next control frame is read, waiting while the budget is spent (QUIC
//! flow control then holds the client back). The bytes give their share
//! back when their last reference is dropped: once written to the worker,
//! or when the core drops them. So neither many uploads at once nor a
//! slow worker make the scheduler hold more than the budget, plus one
//! control frame per client.

use crate::state::Event;
use bytes::Bytes;
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wask_net::{NetError, codes, data};
use wask_proto::hash::{FastMap, new_map};
use wask_proto::key::data_key_id;
use wask_proto::limits::{INLINE_VALUE_MAX, MAX_PAYLOAD};
use wask_proto::msg::DataValue;
use wask_proto::{ClientId, KeyId};

/// Bytes of uploads the scheduler holds at once, from before they are read
/// until they are passed on to a worker: two of the largest.
pub(crate) const RELAY_BYTES: usize = 2 * MAX_PAYLOAD;

/// The record is pruned at this size at the earliest.
const PRUNE_MIN: usize = 64;

/// The shared budget of [`RELAY_BYTES`] for uploads in the scheduler.
pub(crate) fn relay_budget() -> Arc<Semaphore> {
    Arc::new(Semaphore::new(RELAY_BYTES))
}

/// The uploads one client was asked for.
#[derive(Debug)]
pub struct Asked {
    inner: Mutex<Record>,
}

#[derive(Debug)]
struct Record {
    /// Key → (announced size, requests not uploaded yet). The core may ask
    /// twice for a key: asked, released, scattered and asked again before
    /// the first upload came.
    keys: FastMap<KeyId, (u64, u32)>,
    /// Uploads still expected for requests the core no longer waits for
    /// and pruned from `keys`: that many uploads of unrecorded keys are
    /// dropped unread instead of closing the connection.
    withdrawn: u64,
    /// Size of `keys` at which it is pruned next.
    prune_at: usize,
}

/// Uploaded bytes holding their share of the relay budget.
struct Budgeted {
    bytes: Bytes,
    _permit: OwnedSemaphorePermit,
}

impl AsRef<[u8]> for Budgeted {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

/// Takes `nbytes` from the relay budget, waiting for them if needed.
async fn budget(relay: &Arc<Semaphore>, nbytes: u64) -> Result<OwnedSemaphorePermit, NetError> {
    // At most MAX_PAYLOAD (the announced size was checked by the core),
    // which fits both u32 and the budget.
    let n = u32::try_from(nbytes.min(RELAY_BYTES as u64)).unwrap_or(u32::MAX);
    relay
        .clone()
        .acquire_many_owned(n)
        .await
        .map_err(|_| NetError::Protocol("the relay budget is closed".into()))
}

/// `DataReceived` whose bytes hold their size of the relay budget until
/// they are dropped (sent to a worker, or dropped by the core); other
/// events as they are. Waits while the budget is spent.
pub(crate) async fn budgeted(relay: &Arc<Semaphore>, event: Event) -> Result<Event, NetError> {
    let Event::DataReceived { client, key, value } = event else {
        return Ok(event);
    };
    let permit = budget(relay, value.len() as u64).await?;
    let value = Bytes::from_owner(Budgeted {
        bytes: value,
        _permit: permit,
    });
    Ok(Event::DataReceived { client, key, value })
}

impl Asked {
    /// An empty record.
    pub(crate) fn new() -> Asked {
        Asked {
            inner: Mutex::new(Record {
                keys: new_map(),
                withdrawn: 0,
                prune_at: PRUNE_MIN,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Record> {
        // Each operation leaves the record consistent: a poisoned lock is
        // safe.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The client is asked for `key`'s `nbytes` bytes. True when the
    /// record has doubled since it was last pruned: time to
    /// [`prune`](Asked::prune) it.
    pub(crate) fn ask(&self, key: KeyId, nbytes: u64) -> bool {
        let mut g = self.lock();
        let entry = g.keys.entry(key).or_insert((nbytes, 0));
        // The key is the hash of the bytes: an honest client announces
        // the same size each time.
        entry.0 = nbytes;
        entry.1 = entry.1.saturating_add(1);
        g.keys.len() >= g.prune_at
    }

    /// Keeps the permissions the core still waits for (`awaited`: whether
    /// it waits for an upload of that key from this client); the others
    /// become uploads expected, dropped when they come.
    pub(crate) fn prune(&self, awaited: impl Fn(KeyId) -> bool) {
        let mut g = self.lock();
        let mut withdrawn = 0u64;
        g.keys.retain(|&key, (_, asks)| {
            // The core waits for one upload of a key at most.
            let keep = u32::from(awaited(key)).min(*asks);
            withdrawn += u64::from(*asks - keep);
            *asks = keep;
            keep > 0
        });
        g.withdrawn = g.withdrawn.saturating_add(withdrawn);
        g.prune_at = (2 * g.keys.len()).max(PRUNE_MIN);
    }

    /// Takes the announced size of an upload if it was asked for; `None`
    /// for an upload the core stopped waiting for, to drop.
    fn take(&self, key: &KeyId) -> Result<Option<u64>, NetError> {
        let mut g = self.lock();
        if let Some((nbytes, asks)) = g.keys.get_mut(key) {
            let nbytes = *nbytes;
            *asks -= 1;
            if *asks == 0 {
                g.keys.remove(key);
            }
            return Ok(Some(nbytes));
        }
        if g.withdrawn > 0 {
            g.withdrawn -= 1;
            return Ok(None);
        }
        Err(NetError::Protocol(format!(
            "upload of data {} nobody asked for",
            key.hex()
        )))
    }

    /// Checks inline values; the events for the core (pass them through
    /// [`budgeted`]), or the violation. Hashing is done here, on the
    /// connection's task: inline values are at most [`INLINE_VALUE_MAX`]
    /// bytes each.
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
            let Some(nbytes) = self.take(&key)? else {
                continue;
            };
            check(key, nbytes, &value)?;
            events.push(Event::DataReceived { client, key, value });
        }
        Ok(events)
    }

    /// Reads and checks the rest of a stream headed `Scatter { key }`,
    /// within the relay budget; `None` for an upload the core no longer
    /// waits for, left unread.
    pub(crate) async fn stream(
        &self,
        relay: &Arc<Semaphore>,
        client: ClientId,
        key: KeyId,
        mut stream: quinn::RecvStream,
    ) -> Result<Option<Event>, NetError> {
        let Some(nbytes) = self.take(&key)? else {
            let _ = stream.stop(codes::SHUTDOWN);
            return Ok(None);
        };
        let permit = budget(relay, nbytes).await?;
        let limit = usize::try_from(nbytes).unwrap_or(usize::MAX);
        let value = data::recv_payload(stream, limit).await?;
        // Hashing up to MAX_PAYLOAD bytes is not for the async threads.
        let value = tokio::task::spawn_blocking(move || check(key, nbytes, &value).map(|()| value))
            .await
            .map_err(|e| NetError::Protocol(format!("checking data: {e}")))??;
        let value = Bytes::from_owner(Budgeted {
            bytes: value,
            _permit: permit,
        });
        Ok(Some(Event::DataReceived { client, key, value }))
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

    #[test]
    fn a_key_asked_twice_may_be_uploaded_twice() {
        // Scattered, released and scattered again before the first upload
        // came: the client answers both requests.
        let asked = Asked::new();
        let v = value(b"abc");
        asked.ask(v.key, 3);
        asked.ask(v.key, 3);
        assert_eq!(asked.inline(1, vec![v.clone()]).unwrap().len(), 1);
        assert_eq!(asked.inline(1, vec![v.clone()]).unwrap().len(), 1);
        assert!(asked.inline(1, vec![v]).is_err());
    }

    #[test]
    fn requests_no_longer_awaited_are_pruned_to_a_count() {
        let asked = Asked::new();
        let values: Vec<DataValue> = (0..PRUNE_MIN as u32)
            .map(|i| {
                let bytes = Bytes::from(i.to_le_bytes().to_vec());
                DataValue {
                    key: data_key_id(&bytes),
                    value: bytes,
                }
            })
            .collect();
        let mut due = false;
        for v in &values {
            due = asked.ask(v.key, 4);
        }
        assert!(due, "time to prune at {PRUNE_MIN} keys");
        // The core waits only for the first upload now.
        let first = values[0].key;
        asked.prune(|key| key == first);
        {
            let g = asked.lock();
            assert_eq!((g.keys.len(), g.withdrawn), (1, PRUNE_MIN as u64 - 1));
            assert_eq!(g.prune_at, PRUNE_MIN);
        }
        // The uploads still on their way are dropped, not refused; the
        // awaited one passes; one more is a violation.
        for v in values.iter().rev() {
            let events = asked.inline(1, vec![v.clone()]).unwrap();
            assert_eq!(events.len(), usize::from(v.key == first));
        }
        assert!(asked.inline(1, vec![values[1].clone()]).is_err());
    }

    #[tokio::test]
    async fn received_bytes_hold_the_relay_budget_until_dropped() {
        let relay = Arc::new(Semaphore::new(10));
        let event = Event::DataReceived {
            client: 1,
            key: KeyId([1; 16]),
            value: Bytes::from_static(b"abcdef"),
        };
        let event = budgeted(&relay, event).await.unwrap();
        assert_eq!(relay.available_permits(), 4);
        let Event::DataReceived { value, .. } = &event else {
            panic!("{event:?}");
        };
        let copy = value.clone();
        assert_eq!(&copy[..], b"abcdef");
        drop(event);
        assert_eq!(relay.available_permits(), 4, "a copy is still held");
        drop(copy);
        assert_eq!(relay.available_permits(), 10);
        // Over the budget: waits until bytes are dropped.
        let big = Event::DataReceived {
            client: 1,
            key: KeyId([2; 16]),
            value: Bytes::from_static(b"0123456789"),
        };
        let held = budgeted(&relay, big.clone()).await.unwrap();
        let waiting = tokio::time::timeout(
            std::time::Duration::from_millis(50),
            budgeted(&relay, big.clone()),
        );
        assert!(waiting.await.is_err(), "the budget is spent");
        drop(held);
        assert!(budgeted(&relay, big).await.is_ok());
    }
}
