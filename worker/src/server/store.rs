//! The result store: results held in memory as bytes, per tenant.
//!
//! Shared between the worker's actor (which inserts and frees) and the peer
//! server (which reads); a std mutex held only for map operations, never
//! across an await or a copy of the bytes (values are refcounted `Bytes`).

use bytes::Bytes;
use std::sync::Mutex;
use wask_proto::hash::{FastMap, new_map};
use wask_proto::{KeyId, TenantId};

/// Held results and their total size.
pub struct Store {
    inner: Mutex<Inner>,
    limit: u64,
}

struct Inner {
    values: FastMap<(TenantId, KeyId), Bytes>,
    bytes: u64,
}

/// The store refused a value: holding it would pass the memory limit.
#[derive(Debug, thiserror::Error)]
#[error(
    "holding {size} more bytes would pass the worker's memory limit ({held} of {limit} bytes held)"
)]
pub struct StoreFull {
    /// Size of the refused value.
    pub size: u64,
    /// Bytes held.
    pub held: u64,
    /// The limit.
    pub limit: u64,
}

impl Store {
    /// An empty store holding at most `limit` bytes.
    pub fn new(limit: u64) -> Store {
        Store {
            inner: Mutex::new(Inner {
                values: new_map(),
                bytes: 0,
            }),
            limit,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding this lock cannot leave the map inconsistent
        // (every operation is a single map call), so a poisoned lock is safe
        // to keep using.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Holds `value` under (tenant, key), unless the limit forbids it.
    pub fn insert(&self, tenant: TenantId, key: KeyId, value: Bytes) -> Result<(), StoreFull> {
        let mut g = self.lock();
        let size = value.len() as u64;
        if g.bytes + size > self.limit {
            return Err(StoreFull {
                size,
                held: g.bytes,
                limit: self.limit,
            });
        }
        g.bytes += size;
        if let Some(old) = g.values.insert((tenant, key), value) {
            g.bytes -= old.len() as u64;
        }
        Ok(())
    }

    /// Bytes the store can still take.
    pub fn room(&self) -> u64 {
        self.limit.saturating_sub(self.lock().bytes)
    }

    /// The value of (tenant, key), if held.
    pub fn get(&self, tenant: TenantId, key: &KeyId) -> Option<Bytes> {
        self.lock().values.get(&(tenant, *key)).cloned()
    }

    /// Looks up several keys under one lock.
    pub fn get_many(&self, tenant: TenantId, keys: &[KeyId]) -> Vec<Option<Bytes>> {
        let g = self.lock();
        keys.iter()
            .map(|k| g.values.get(&(tenant, *k)).cloned())
            .collect()
    }

    /// Forgets (tenant, key).
    pub fn remove(&self, tenant: TenantId, key: &KeyId) {
        let mut g = self.lock();
        if let Some(old) = g.values.remove(&(tenant, *key)) {
            g.bytes -= old.len() as u64;
        }
    }

    /// (number of values, bytes) held.
    pub fn usage(&self) -> (usize, u64) {
        let g = self.lock();
        (g.values.len(), g.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_and_accounting() {
        let s = Store::new(10);
        s.insert(0, KeyId([1; 16]), Bytes::from_static(b"12345"))
            .unwrap();
        assert!(
            s.insert(0, KeyId([2; 16]), Bytes::from_static(b"123456"))
                .is_err()
        );
        s.insert(1, KeyId([1; 16]), Bytes::from_static(b"abcde"))
            .unwrap();
        assert_eq!(s.usage(), (2, 10));
        assert_eq!(
            s.get(1, &KeyId([1; 16])).unwrap(),
            Bytes::from_static(b"abcde")
        );
        assert!(s.get(2, &KeyId([1; 16])).is_none());
        s.remove(0, &KeyId([1; 16]));
        assert_eq!(s.usage(), (1, 5));
    }
}
