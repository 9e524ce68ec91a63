//! [`Future`]: a handle on a result that lives on the cluster.

use crate::error::{Error, Result};
use crate::registry::{Holder, Status};
use serde::de::DeserializeOwned;
use std::marker::PhantomData;
use std::sync::Arc;
use wask_proto::TaskKey;
use wask_proto::msg::ClientRequest;

/// A result on the cluster, like dask's `Future`.
///
/// Cheap to clone; the cluster keeps the result while any clone (in this
/// client or another) is alive, or a pending task needs it. Use it as an
/// argument to further tasks: the value never comes back to the client for
/// that. `.await` or [`result`](Future::result) fetches and decodes it.
pub struct Future<T> {
    pub(crate) holder: Arc<Holder>,
    _t: PhantomData<fn() -> T>,
}

impl<T> Clone for Future<T> {
    fn clone(&self) -> Self {
        Future {
            holder: self.holder.clone(),
            _t: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for Future<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let status = match &self.holder.lock().status {
            Status::Pending => "pending",
            Status::Done { .. } => "finished",
            Status::Erred(_) => "error",
            Status::Cancelled => "cancelled",
            Status::Lost(_) => "lost",
        };
        write!(f, "<Future: {status}, key: {}>", self.holder.key)
    }
}

impl<T> Future<T> {
    pub(crate) fn new(holder: Arc<Holder>) -> Future<T> {
        Future {
            holder,
            _t: PhantomData,
        }
    }

    /// The key: `name-<32 hex>` for a pure call, `name-<uuid4>` otherwise.
    pub fn key(&self) -> String {
        self.holder.key.to_string()
    }

    /// The key as a structured value.
    pub fn task_key(&self) -> &TaskKey {
        &self.holder.key
    }

    /// Whether the task has finished (successfully or not).
    pub fn done(&self) -> bool {
        !matches!(self.holder.lock().status, Status::Pending)
    }

    /// The error, if the task failed (without waiting).
    pub fn exception(&self) -> Option<Error> {
        let st = self.holder.lock().status.clone();
        self.holder.error(&st)
    }

    /// Cancels the task (and what depends on it) unless another client
    /// holds it; this future then reports [`Error::Cancelled`].
    pub fn cancel(&self) {
        self.holder.set(|s| {
            if matches!(s.status, Status::Pending) {
                s.status = Status::Cancelled;
            }
        });
        if let Some(reg) = self.holder_registry() {
            reg.send(ClientRequest::Cancel(vec![self.holder.key.id]));
        }
    }

    fn holder_registry(&self) -> Option<Arc<crate::registry::Registry>> {
        self.holder.registry()
    }

    /// Waits until the task has finished (without fetching the value).
    pub async fn wait(&self) -> Result<()> {
        self.until(|s| !matches!(s, Status::Pending)).await;
        let st = self.holder.lock().status.clone();
        match self.holder.error(&st) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    pub(crate) async fn until(&self, ready: impl Fn(&Status) -> bool) {
        loop {
            let notified = self.holder.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if ready(&self.holder.lock().status) {
                return;
            }
            notified.await;
        }
    }

    /// Marks the value as asked for; true if a `Want` must be sent.
    pub(crate) fn mark_wanted(&self) -> bool {
        let mut s = self.holder.lock();
        let have = matches!(
            s.status,
            Status::Done { value: Some(_) }
                | Status::Erred(_)
                | Status::Cancelled
                | Status::Lost(_)
        );
        if have || s.wanted {
            false
        } else {
            s.wanted = true;
            true
        }
    }

    /// Asks for the value unless it is here or already asked for.
    pub(crate) fn want(&self) {
        if self.mark_wanted()
            && let Some(reg) = self.holder_registry()
        {
            reg.send(ClientRequest::Want(vec![self.holder.key.id]));
        }
    }

    /// Waits for the value (after [`want`](Self::want)).
    pub(crate) async fn until_value(&self) {
        self.until(|s| !matches!(s, Status::Pending | Status::Done { value: None }))
            .await;
    }
}

impl<T> Future<T> {
    /// Waits for the task and returns its result's postcard bytes.
    pub async fn result_bytes(&self) -> Result<bytes::Bytes> {
        self.want();
        self.until_value().await;
        let st = self.holder.lock().status.clone();
        match st {
            Status::Done { value: Some(bytes) } => Ok(bytes),
            other => Err(self
                .holder
                .error(&other)
                .unwrap_or_else(|| Error::ConnectionLost("no value".into()))),
        }
    }
}

impl<T: DeserializeOwned> Future<T> {
    /// Waits for the task and returns its decoded result.
    pub async fn result(&self) -> Result<T> {
        self.want();
        self.until_value().await;
        self.decode()
    }

    pub(crate) fn decode(&self) -> Result<T> {
        let st = self.holder.lock().status.clone();
        match st {
            Status::Done { value: Some(bytes) } => {
                postcard::from_bytes(&bytes).map_err(|e| Error::Decode {
                    key: self.key(),
                    message: e.to_string(),
                })
            }
            other => Err(self
                .holder
                .error(&other)
                .unwrap_or_else(|| Error::ConnectionLost("no value".into()))),
        }
    }
}

impl<T: DeserializeOwned + Send + 'static> std::future::IntoFuture for Future<T> {
    type Output = Result<T>;
    type IntoFuture = std::pin::Pin<Box<dyn std::future::Future<Output = Result<T>> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move { self.result().await })
    }
}

impl<T: DeserializeOwned + Send + 'static> std::future::IntoFuture for &Future<T> {
    type Output = Result<T>;
    type IntoFuture = std::pin::Pin<Box<dyn std::future::Future<Output = Result<T>> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        let f = self.clone();
        Box::pin(async move { f.result().await })
    }
}
