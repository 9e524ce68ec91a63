//! The blocking face of the client, for plain `fn main` code, in the way
//! `reqwest::blocking` wraps `reqwest`: the same client driven by a runtime
//! of its own (two threads, shared by every blocking client in the process).

use crate::address::{SchedulerAddress, ToScheduler};
use crate::args::Args;
use crate::error::Result;
use crate::module::{Module, Task};
use crate::options::Options;
use serde::de::DeserializeOwned;
use std::path::Path;
use std::sync::OnceLock;
use wask_proto::msg::ClusterInfo;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("wask-blocking")
            .enable_all()
            .build()
            .expect("cannot start the blocking client's runtime")
    })
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    runtime().block_on(f)
}

/// A blocking [`crate::Client`].
#[derive(Clone, Debug)]
pub struct Client {
    inner: crate::Client,
}

/// A blocking [`crate::Future`].
pub struct Future<T> {
    pub(crate) inner: crate::Future<T>,
}

impl<T> Clone for Future<T> {
    fn clone(&self) -> Self {
        Future {
            inner: self.inner.clone(),
        }
    }
}

impl<T> std::fmt::Debug for Future<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

impl<T> Future<T> {
    /// The key.
    pub fn key(&self) -> String {
        self.inner.key()
    }

    /// Whether the task has finished.
    pub fn done(&self) -> bool {
        self.inner.done()
    }

    /// Cancels the task.
    pub fn cancel(&self) {
        self.inner.cancel()
    }

    /// Waits until the task has finished.
    pub fn wait(&self) -> Result<()> {
        block_on(self.inner.wait())
    }

    /// The async future underneath.
    pub fn as_async(&self) -> &crate::Future<T> {
        &self.inner
    }
}

impl<T> From<Future<T>> for crate::Delayed<T> {
    fn from(f: Future<T>) -> crate::Delayed<T> {
        f.inner.into()
    }
}

impl<T> From<&Future<T>> for crate::Delayed<T> {
    fn from(f: &Future<T>) -> crate::Delayed<T> {
        (&f.inner).into()
    }
}

impl<T: DeserializeOwned> Future<T> {
    /// Waits for the task and returns its decoded result.
    pub fn result(&self) -> Result<T> {
        block_on(self.inner.result())
    }
}

fn wrap<T>(v: Vec<crate::Future<T>>) -> Vec<Future<T>> {
    v.into_iter().map(|inner| Future { inner }).collect()
}

impl Client {
    /// Connects to a scheduler address or scheduler file.
    pub fn connect(target: impl ToScheduler) -> Result<Client> {
        Ok(Client {
            inner: block_on(crate::Client::connect(target))?,
        })
    }

    /// Connects with a tenant token.
    pub fn connect_with_token(
        target: impl ToScheduler,
        token: impl Into<String>,
    ) -> Result<Client> {
        Ok(Client {
            inner: block_on(crate::Client::builder(target).token(token).connect())?,
        })
    }

    /// Loads a module from a `.wasm` file.
    pub fn load_module(&self, path: impl AsRef<Path>) -> Result<Module> {
        block_on(self.inner.load_module(path))
    }

    /// Submits one call.
    pub fn submit<P, R, A: Args<P>>(&self, task: &Task<P, R>, args: A) -> Result<Future<R>> {
        Ok(Future {
            inner: self.inner.submit(task, args)?,
        })
    }

    /// Submits one call with options.
    pub fn submit_with<P, R, A: Args<P>>(
        &self,
        task: &Task<P, R>,
        args: A,
        options: &Options,
    ) -> Result<Future<R>> {
        Ok(Future {
            inner: self.inner.submit_with(task, args, options)?,
        })
    }

    /// Submits one call per item.
    pub fn map<P, R, A: Args<P>>(
        &self,
        task: &Task<P, R>,
        items: impl IntoIterator<Item = A>,
    ) -> Result<Vec<Future<R>>> {
        Ok(wrap(self.inner.map(task, items)?))
    }

    /// Sends a value to the cluster; see [`crate::Client::scatter`].
    pub fn scatter<T: serde::Serialize>(&self, value: &T) -> Result<Future<T>> {
        Ok(Future {
            inner: self.inner.scatter(value)?,
        })
    }

    /// Sends every value to the cluster, in one message; see
    /// [`crate::Client::scatter_many`].
    pub fn scatter_many<T: serde::Serialize>(
        &self,
        values: impl IntoIterator<Item = T>,
    ) -> Result<Vec<Future<T>>> {
        Ok(wrap(self.inner.scatter_many(values)?))
    }

    /// Waits for every future and returns their results.
    pub fn gather<T: DeserializeOwned>(&self, futures: &[Future<T>]) -> Result<Vec<T>> {
        let inner: Vec<crate::Future<T>> = futures.iter().map(|f| f.inner.clone()).collect();
        block_on(self.inner.gather(&inner))
    }

    /// Cancels the futures.
    pub fn cancel<T>(&self, futures: &[Future<T>]) {
        let inner: Vec<crate::Future<T>> = futures.iter().map(|f| f.inner.clone()).collect();
        self.inner.cancel(&inner)
    }

    /// Submits a delayed call and the calls it needs; see
    /// [`crate::Client::compute`].
    pub fn compute<T>(&self, delayed: &crate::Delayed<T>) -> Result<Future<T>> {
        Ok(Future {
            inner: self.inner.compute(delayed)?,
        })
    }

    /// [`compute`](Self::compute) of several delayed calls, in one message.
    pub fn compute_all<T>(&self, delayed: &[crate::Delayed<T>]) -> Result<Vec<Future<T>>> {
        Ok(wrap(self.inner.compute_all(delayed)?))
    }

    /// Submits a delayed call and returns it backed by its result on the
    /// cluster; see [`crate::Client::persist`].
    pub fn persist<T>(&self, delayed: &crate::Delayed<T>) -> Result<crate::Delayed<T>> {
        self.inner.persist(delayed)
    }

    /// [`persist`](Self::persist) of several delayed calls, in one message.
    pub fn persist_all<T>(&self, delayed: &[crate::Delayed<T>]) -> Result<Vec<crate::Delayed<T>>> {
        self.inner.persist_all(delayed)
    }

    /// Waits until every future has finished (successfully or not).
    pub fn wait<T>(&self, futures: &[Future<T>]) {
        let inner: Vec<crate::Future<T>> = futures.iter().map(|f| f.inner.clone()).collect();
        block_on(self.inner.wait(&inner))
    }

    /// Shows a progress bar until every future has finished; see
    /// [`crate::Client::progress`].
    pub fn progress<T: Send + 'static>(&self, futures: &[Future<T>]) -> crate::Progress {
        let inner: Vec<crate::Future<T>> = futures.iter().map(|f| f.inner.clone()).collect();
        block_on(self.inner.progress(&inner))
    }

    /// Cluster information.
    pub fn info(&self) -> Result<ClusterInfo> {
        block_on(self.inner.info())
    }

    /// The async client underneath.
    pub fn as_async(&self) -> &crate::Client {
        &self.inner
    }
}

/// A blocking [`crate::LocalCluster`].
pub struct LocalCluster {
    inner: Option<crate::LocalCluster>,
}

impl LocalCluster {
    /// Starts a scheduler and `workers` one-thread workers in this process.
    pub fn start(workers: usize) -> Result<LocalCluster> {
        let inner = block_on(async { crate::LocalCluster::start(workers).await })?;
        Ok(LocalCluster { inner: Some(inner) })
    }

    /// Where clients connect.
    pub fn address(&self) -> SchedulerAddress {
        self.inner.as_ref().expect("running").address()
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        if let Some(c) = self.inner.take() {
            block_on(c.shutdown());
        }
    }
}
