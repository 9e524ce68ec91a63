//! The client's view of its keys.
//!
//! Every key the client holds has one [`Holder`], shared by all the
//! [`Future`](crate::Future)s of that key (an identical pure submit finds the
//! live holder and sends nothing). When the last future drops, the holder
//! tells the scheduler `Release`. Both the lookup-or-insert on submit and the
//! removal on drop happen under the registry lock while queuing their
//! message, so a `Release` can never overtake the `Submit` that revived a key.

use crate::error::Error;
use bytes::Bytes;
use std::sync::{Arc, Mutex, Weak};
use tokio::sync::{Notify, mpsc};
use wask_proto::hash::{FastMap, new_map};
use wask_proto::msg::ClientRequest;
use wask_proto::{KeyId, TaskError, TaskKey};

/// What the client knows about a key.
#[derive(Clone, Debug)]
pub(crate) enum Status {
    /// Not finished.
    Pending,
    /// Finished; the value if it has arrived.
    Done { value: Option<Bytes> },
    /// Failed.
    Erred(TaskError),
    /// Cancelled by this client.
    Cancelled,
    /// The connection ended first.
    Lost(String),
}

pub(crate) struct KeyState {
    pub status: Status,
    /// A `Want` was sent and its value has not arrived yet.
    pub wanted: bool,
}

/// Shared by every future of one key.
pub(crate) struct Holder {
    pub key: TaskKey,
    pub state: Mutex<KeyState>,
    pub notify: Notify,
    registry: Weak<Registry>,
}

impl Holder {
    pub fn lock(&self) -> std::sync::MutexGuard<'_, KeyState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn set(&self, f: impl FnOnce(&mut KeyState)) {
        f(&mut self.lock());
        self.notify.notify_waiters();
    }

    /// The registry, while the client lives.
    pub fn registry(&self) -> Option<Arc<Registry>> {
        self.registry.upgrade()
    }

    /// The error a caller sees for a failed or lost key.
    pub fn error(&self, status: &Status) -> Option<Error> {
        let key = self.key.to_string();
        match status {
            Status::Erred(TaskError::Cancelled) | Status::Cancelled => {
                Some(Error::Cancelled { key })
            }
            Status::Erred(e) => Some(Error::Task {
                key,
                error: e.clone(),
            }),
            Status::Lost(m) => Some(Error::ConnectionLost(m.clone())),
            _ => None,
        }
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        if let Some(reg) = self.registry.upgrade() {
            reg.release(self);
        }
    }
}

/// What a graph submission does with a call.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mark {
    /// Nothing new needs it.
    Unneeded,
    /// A new call (or output) needs it: sent unless this client holds it.
    Needed,
    /// An output this client did not hold: sent and held.
    NewOutput,
    /// An output this client holds already: not sent, nor what it needs.
    HeldOutput,
}

/// Keys held by this client.
pub(crate) struct Registry {
    inner: Mutex<Inner>,
    tx: mpsc::UnboundedSender<ClientRequest>,
}

struct Inner {
    keys: FastMap<KeyId, Weak<Holder>>,
    lost: Option<String>,
}

impl Registry {
    pub fn new(tx: mpsc::UnboundedSender<ClientRequest>) -> Arc<Registry> {
        Arc::new(Registry {
            inner: Mutex::new(Inner {
                keys: new_map(),
                lost: None,
            }),
            tx,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a request to the scheduler.
    pub fn send(&self, req: ClientRequest) {
        let _ = self.tx.send(req);
    }

    /// Queues requests for `items`, made by `wrap`, in messages of at most
    /// [`CHUNK_SPECS`] items and about [`CHUNK_BYTES`] by `size` (none for
    /// no items).
    pub fn send_chunked<T>(
        &self,
        items: Vec<T>,
        size: impl Fn(&T) -> usize,
        wrap: impl Fn(Vec<T>) -> ClientRequest,
    ) {
        chunked(items, size, wrap, &mut |req| {
            let _ = self.tx.send(req);
        });
    }

    /// The error for new work once the connection is gone.
    pub fn check_connected(&self) -> Result<(), Error> {
        match &self.lock().lost {
            Some(m) => Err(Error::ConnectionLost(m.clone())),
            None => Ok(()),
        }
    }

    /// Returns the holder of each key, creating the missing ones; the specs
    /// of created keys are sent in the same critical section: `make` gets
    /// the new keys' indices, in order, and sends the requests for them.
    pub fn hold_or_submit(
        self: &Arc<Self>,
        keys: Vec<TaskKey>,
        make: impl FnOnce(&[usize], &mut dyn FnMut(ClientRequest)),
    ) -> Result<Vec<Arc<Holder>>, Error> {
        let mut g = self.lock();
        if let Some(m) = &g.lost {
            return Err(Error::ConnectionLost(m.clone()));
        }
        let mut holders = Vec::with_capacity(keys.len());
        let mut fresh = Vec::new();
        for (i, key) in keys.into_iter().enumerate() {
            let (h, new) = self.hold(&mut g, key);
            if new {
                fresh.push(i);
            }
            holders.push(h);
        }
        if !fresh.is_empty() {
            make(&fresh, &mut |req| {
                let _ = self.tx.send(req);
            });
        }
        Ok(holders)
    }

    /// Submits the graph `walk` and returns the holders of its `outputs`
    /// (indices into `walk.order`). Only what the outputs this client does
    /// not hold yet need is sent; a call it holds is not sent again, nor is
    /// what lies under it. The calls in between are submitted and released
    /// in the same breath: the cluster keeps them only as long as the tasks
    /// that depend on them need them, as dask does with the intermediate
    /// keys of a computed graph.
    pub fn submit_graph(
        self: &Arc<Self>,
        walk: &crate::graph::Walk,
        outputs: &[usize],
    ) -> Result<Vec<Arc<Holder>>, Error> {
        let nodes = &walk.order;
        let mut g = self.lock();
        if let Some(m) = &g.lost {
            return Err(Error::ConnectionLost(m.clone()));
        }
        let mut mark = vec![Mark::Unneeded; nodes.len()];
        let mut holders = Vec::with_capacity(outputs.len());
        for &i in outputs {
            let (holder, fresh) = self.hold(&mut g, nodes[i].key.clone());
            if mark[i] == Mark::Unneeded {
                mark[i] = if fresh {
                    Mark::NewOutput
                } else {
                    Mark::HeldOutput
                };
            }
            holders.push(holder);
        }
        // Dependents come after their dependencies: walking backwards, a
        // call's need is known before the call is reached.
        let mut specs = Vec::new();
        let mut transient = Vec::new();
        for (i, node) in nodes.iter().enumerate().rev() {
            match mark[i] {
                Mark::NewOutput => {}
                Mark::Needed => {
                    // Not `upgrade`: dropping the temporary holder could
                    // release the key, which takes the lock held here.
                    if g.keys
                        .get(&node.key.id)
                        .is_some_and(|w| w.strong_count() > 0)
                    {
                        continue;
                    }
                    transient.push(node.key.id);
                }
                Mark::Unneeded | Mark::HeldOutput => continue,
            }
            specs.push(node.spec.clone());
            for input in &node.inputs {
                let j = walk.index[&input.key.id];
                if mark[j] == Mark::Unneeded {
                    mark[j] = Mark::Needed;
                }
            }
        }
        specs.reverse();
        self.send_chunked(specs, spec_bytes, ClientRequest::Submit);
        self.send_chunked(transient, |_| 0, ClientRequest::Release);
        Ok(holders)
    }

    /// The live holder of `key`, or a new one registered under the lock;
    /// true if new (its spec must be sent).
    fn hold(self: &Arc<Self>, g: &mut Inner, key: TaskKey) -> (Arc<Holder>, bool) {
        if let Some(h) = g.keys.get(&key.id).and_then(Weak::upgrade) {
            return (h, false);
        }
        let h = self.new_holder(key);
        g.keys.insert(h.key.id, Arc::downgrade(&h));
        (h, true)
    }

    fn new_holder(self: &Arc<Self>, key: TaskKey) -> Arc<Holder> {
        Arc::new(Holder {
            key,
            state: Mutex::new(KeyState {
                status: Status::Pending,
                wanted: false,
            }),
            notify: Notify::new(),
            registry: Arc::downgrade(self),
        })
    }

    fn release(&self, holder: &Holder) {
        let mut g = self.lock();
        let id = holder.key.id;
        // Only the holder registered for the key releases it: a newer holder
        // may have replaced this one while it was dropping.
        let mine = match g.keys.get(&id) {
            Some(w) => std::ptr::eq(w.as_ptr(), holder as *const Holder),
            None => false,
        };
        if mine {
            g.keys.remove(&id);
            if g.lost.is_none() {
                let _ = self.tx.send(ClientRequest::Release(vec![id]));
            }
        }
    }

    /// The live holder of `key`.
    pub fn get(&self, key: &KeyId) -> Option<Arc<Holder>> {
        self.lock().keys.get(key).and_then(Weak::upgrade)
    }

    /// Runs `f` on the live holders of `keys`, under one lock.
    pub fn each(
        &self,
        keys: impl IntoIterator<Item = KeyId>,
        mut f: impl FnMut(KeyId, Option<Arc<Holder>>),
    ) {
        let holders: Vec<(KeyId, Option<Arc<Holder>>)> = {
            let g = self.lock();
            keys.into_iter()
                .map(|k| (k, g.keys.get(&k).and_then(Weak::upgrade)))
                .collect()
        };
        // Holders are used (and possibly dropped) outside the lock: a drop
        // takes the lock again.
        for (k, h) in holders {
            f(k, h);
        }
    }

    /// The connection ended: every pending key fails with `reason`.
    pub fn lose(&self, reason: String) {
        let holders: Vec<Arc<Holder>> = {
            let mut g = self.lock();
            g.lost = Some(reason.clone());
            g.keys.values().filter_map(Weak::upgrade).collect()
        };
        for h in holders {
            h.set(|s| {
                if matches!(s.status, Status::Pending)
                    || (s.wanted && matches!(s.status, Status::Done { value: None }))
                {
                    s.status = Status::Lost(reason.clone());
                }
            });
        }
    }
}

/// Most specs in one `Submit` or `Scatter` message.
pub(crate) const CHUNK_SPECS: usize = 4096;

/// Bytes of arguments after which a `Submit` message is closed.
pub(crate) const CHUNK_BYTES: usize = 1 << 20;

/// Sends `items` in messages made by `wrap`, each of at most
/// [`CHUNK_SPECS`] items and, by `size`, not much more than [`CHUNK_BYTES`]:
/// however many calls a `map` makes, each message stays far below the
/// frame limit, and the scheduler starts on the first while the others
/// are still on their way. Nothing is sent for no items.
pub(crate) fn chunked<T, I: IntoIterator<Item = T>>(
    items: I,
    size: impl Fn(&T) -> usize,
    wrap: impl Fn(Vec<T>) -> ClientRequest,
    send: &mut dyn FnMut(ClientRequest),
) {
    let mut items = items.into_iter();
    // Sized once per message: at most what is left, as far as known.
    let capacity =
        |items: &I::IntoIter| items.size_hint().1.unwrap_or(CHUNK_SPECS).min(CHUNK_SPECS);
    let mut chunk = Vec::with_capacity(capacity(&items));
    let mut bytes = 0;
    while let Some(item) = items.next() {
        bytes += size(&item);
        chunk.push(item);
        if chunk.len() == CHUNK_SPECS || bytes >= CHUNK_BYTES {
            let next = Vec::with_capacity(capacity(&items));
            send(wrap(std::mem::replace(&mut chunk, next)));
            bytes = 0;
        }
    }
    if !chunk.is_empty() {
        send(wrap(chunk));
    }
}

/// About the bytes a spec takes in a message.
pub(crate) fn spec_bytes(spec: &wask_proto::msg::TaskSpec) -> usize {
    64 + spec.args.bytes.len() + spec.args.holes.len() * 8 + spec.deps.len() * 16
}

#[cfg(test)]
mod chunk_tests {
    use super::*;
    use wask_proto::KeyId;
    use wask_proto::msg::ScatterSpec;

    fn sizes(reqs: &[ClientRequest]) -> Vec<usize> {
        reqs.iter()
            .map(|r| match r {
                ClientRequest::Scatter(list) => list.len(),
                _ => unreachable!(),
            })
            .collect()
    }

    #[test]
    fn messages_close_at_a_count_or_at_a_size() {
        let spec = |n: u32| ScatterSpec {
            key: KeyId([n as u8; 16]),
            nbytes: u64::from(n),
        };
        let mut sent = Vec::new();
        let n = 2 * CHUNK_SPECS as u32 + 1;
        chunked((0..n).map(spec), |_| 0, ClientRequest::Scatter, &mut |r| {
            sent.push(r)
        });
        assert_eq!(sizes(&sent), [CHUNK_SPECS, CHUNK_SPECS, 1]);
        // In order, none lost.
        let all: Vec<u64> = sent
            .iter()
            .flat_map(|r| match r {
                ClientRequest::Scatter(list) => list.iter().map(|s| s.nbytes).collect::<Vec<_>>(),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(all, (0..u64::from(n)).collect::<Vec<_>>());

        let mut sent = Vec::new();
        let big = CHUNK_BYTES / 3 + 1;
        chunked(
            (0..7).map(spec),
            |_| big,
            ClientRequest::Scatter,
            &mut |r| sent.push(r),
        );
        assert_eq!(sizes(&sent), [3, 3, 1]);

        let mut sent = Vec::new();
        chunked(
            std::iter::empty(),
            |_| 0,
            ClientRequest::Scatter,
            &mut |r| sent.push(r),
        );
        assert!(sent.is_empty());
    }
}
