//! [`Client`]: submit calls, hold futures, gather results.

use crate::address::ToScheduler;
use crate::args::{Args, TemplateWriter};
use crate::connection::{self, Connection};
use crate::error::{Error, Result};
use crate::future::Future;
use crate::graph::Node;
use crate::module::{Module, ModuleInner, Task};
use crate::options::Options;
use crate::registry::Holder;
use serde::de::DeserializeOwned;
use std::path::Path;
use std::sync::Arc;
use wask_proto::key::pure_key_id;
use wask_proto::msg::{ClientEvent, ClientRequest, ClusterInfo, StreamHeader, TaskSpec};
use wask_proto::{KeyId, TaskKey};

/// A connection to a wask scheduler, like dask's `Client`.
///
/// Cheap to clone (all clones share the connection). Submitting only queues
/// messages and never blocks; waiting happens on the [`Future`]s.
#[derive(Clone)]
pub struct Client {
    pub(crate) conn: Arc<Connection>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "<Client {} to {}>",
            self.conn.id,
            self.conn.conn.remote_address()
        )
    }
}

/// Connection settings beyond the address.
#[derive(Debug)]
pub struct ClientBuilder<S> {
    target: S,
    token: Option<String>,
    tls_ca: Option<std::path::PathBuf>,
}

impl<S: ToScheduler> ClientBuilder<S> {
    /// The tenant token to present (default: `$WASK_TOKEN`, if set).
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// The certificate file (PEM or DER) to trust instead of the one the
    /// target carries; needed for a `host:port` target unless
    /// `$WASK_TLS_CA` names one. Either the CA that issued the scheduler's
    /// certificate (which must then carry the DNS name `wask`), or the
    /// scheduler's own certificate, pinned.
    pub fn tls_ca(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.tls_ca = Some(path.into());
        self
    }

    /// Connects.
    pub async fn connect(self) -> Result<Client> {
        let address = self.target.to_scheduler_trusting(self.tls_ca.as_deref())?;
        let token = self.token.or_else(|| std::env::var("WASK_TOKEN").ok());
        let conn = connection::connect(address.addr, &address.cert_der, token).await?;
        Ok(Client { conn })
    }
}

impl Client {
    /// Connects to a scheduler: a [`SchedulerAddress`](crate::SchedulerAddress)
    /// (e.g. `cluster.address()`), the path of a scheduler file, or a
    /// `"host:port"` with the certificate to trust in `$WASK_TLS_CA` (or
    /// given with [`Client::builder`]`(..).tls_ca(..)`).
    pub async fn connect(target: impl ToScheduler) -> Result<Client> {
        Client::builder(target).connect().await
    }

    /// Connection settings (token, certificate) before connecting.
    pub fn builder<S: ToScheduler>(target: S) -> ClientBuilder<S> {
        ClientBuilder {
            target,
            token: None,
            tls_ca: None,
        }
    }

    /// Loads a module from a `.wasm` file: checks it here, uploads it only if
    /// the scheduler does not have it yet.
    pub async fn load_module(&self, path: impl AsRef<Path>) -> Result<Module> {
        let path = path.as_ref();
        let bytes = tokio::fs::read(path).await.map_err(|e| Error::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        self.load_module_bytes(bytes).await
    }

    /// Loads a module from its bytes.
    pub async fn load_module_bytes(&self, bytes: impl Into<bytes::Bytes>) -> Result<Module> {
        let bytes: bytes::Bytes = bytes.into();
        let checked = bytes.clone();
        let info = tokio::task::spawn_blocking(move || {
            wask_proto::module::inspect(&checked, &Default::default())
        })
        .await
        .map_err(|e| Error::ModuleRefused(e.to_string()))?
        .map_err(|e| Error::ModuleRefused(e.to_string()))?;
        self.conn.registry.check_connected()?;
        let (req, mut replies) = self.conn.request();
        self.conn.registry.send(ClientRequest::Module {
            req,
            hash: info.hash,
        });
        let result = loop {
            match replies.recv().await {
                Some(ClientEvent::ModuleReady { module, .. }) => break Ok(module),
                Some(ClientEvent::ModuleRefused { reason, .. }) => {
                    break Err(Error::ModuleRefused(reason));
                }
                Some(ClientEvent::ModuleNeeded { .. }) => {
                    let header = StreamHeader::Module { hash: info.hash };
                    if let Err(e) =
                        wask_net::data::send(&self.conn.conn, &header, bytes.clone()).await
                    {
                        break Err(Error::ConnectionLost(e.to_string()));
                    }
                }
                Some(_) => {}
                None => {
                    break Err(Error::ConnectionLost(
                        "connection closed while loading a module".into(),
                    ));
                }
            }
        };
        self.conn.done(req);
        let id = result?;
        Ok(Module {
            inner: Arc::new(ModuleInner {
                id,
                client: self.conn.id,
                info,
            }),
        })
    }

    /// Builds a call and checks that its module (and those of the delayed
    /// calls it depends on) were loaded by this client.
    fn call<P, R, A: Args<P>>(
        &self,
        task: &Task<P, R>,
        args: &A,
        options: &Options,
    ) -> Result<Call> {
        self.check_module(&task.module.inner)?;
        build_call(task, args, options)
    }

    pub(crate) fn check_module(&self, module: &ModuleInner) -> Result<()> {
        if module.client != self.conn.id {
            return Err(Error::ModuleRefused(
                "the task's module was loaded by another client".into(),
            ));
        }
        Ok(())
    }

    /// Submits one call and returns its future. Identical pure calls share
    /// one key and one computation.
    pub fn submit<P, R, A: Args<P>>(&self, task: &Task<P, R>, args: A) -> Result<Future<R>> {
        self.submit_with(task, args, &Options::default())
    }

    /// [`submit`](Self::submit) with options (`pure(false)`, limits).
    pub fn submit_with<P, R, A: Args<P>>(
        &self,
        task: &Task<P, R>,
        args: A,
        options: &Options,
    ) -> Result<Future<R>> {
        let call = self.call(task, &args, options)?;
        if !call.nodes.is_empty() {
            let node = Arc::new(Node::from_call(call, task.module.inner.client));
            let holders = self.submit_graph(std::slice::from_ref(&node))?;
            return Ok(Future::new(holders.into_iter().next().expect("one output")));
        }
        let Call {
            spec, key, keep, ..
        } = call;
        let holders = self.conn.registry.hold_or_submit(vec![key], |_, send| {
            send(ClientRequest::Submit(vec![spec]));
        })?;
        // The dependencies' holders stay alive until the spec is queued, so
        // their release cannot reach the scheduler before it.
        drop(keep);
        Ok(Future::new(holders.into_iter().next().expect("one holder")))
    }

    /// Submits one call per item, in messages of up to 4096 calls.
    pub fn map<P, R, A: Args<P>>(
        &self,
        task: &Task<P, R>,
        items: impl IntoIterator<Item = A>,
    ) -> Result<Vec<Future<R>>> {
        self.map_with(task, items, &Options::default())
    }

    /// [`map`](Self::map) with options.
    pub fn map_with<P, R, A: Args<P>>(
        &self,
        task: &Task<P, R>,
        items: impl IntoIterator<Item = A>,
        options: &Options,
    ) -> Result<Vec<Future<R>>> {
        let items = items.into_iter();
        let n = items.size_hint().0;
        // A call's parts in separate lists: the specs move straight into
        // the messages.
        let (mut specs, mut keys, mut keep, mut nodes) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let mut delayed = false;
        for a in items {
            let call = self.call(task, &a, options)?;
            delayed |= !call.nodes.is_empty();
            specs.push(call.spec);
            keys.push(call.key);
            keep.push(call.keep);
            nodes.push(call.nodes);
        }
        if delayed {
            let client = task.module.inner.client;
            let nodes: Vec<Arc<Node>> = (specs.into_iter().zip(keys).zip(keep).zip(nodes))
                .map(|(((spec, key), keep), nodes)| {
                    let call = Call {
                        spec,
                        key,
                        keep,
                        nodes,
                    };
                    Arc::new(Node::from_call(call, client))
                })
                .collect();
            let holders = self.submit_graph(&nodes)?;
            return Ok(holders.into_iter().map(Future::new).collect());
        }
        let holders = self.conn.registry.hold_or_submit(keys, |fresh, send| {
            // `fresh` is in order: pick those specs out in one pass.
            let mut fresh = fresh.iter().copied().peekable();
            let new = specs
                .into_iter()
                .enumerate()
                .filter_map(|(i, spec)| fresh.next_if_eq(&i).map(|_| spec));
            crate::registry::chunked(
                new,
                crate::registry::spec_bytes,
                ClientRequest::Submit,
                send,
            );
        })?;
        drop(keep);
        Ok(holders.into_iter().map(Future::new).collect())
    }

    /// Submits a call by task name with already-encoded postcard arguments
    /// (the tuple of the task's parameters); its result is read with
    /// [`Future::result_bytes`]. For tools that do not know the types at
    /// compile time, such as the `wask` CLI.
    pub fn submit_encoded(
        &self,
        module: &Module,
        task: &str,
        args: Vec<u8>,
        options: &Options,
    ) -> Result<Future<Raw>> {
        let (func, _) = module.lookup(task)?;
        let handle: Task<Raw, Raw> = Task::untyped(module.clone(), func, task.into());
        self.submit_with(&handle, Encoded(args), options)
    }

    /// Waits for every future and returns their results, in order. The
    /// values are asked for in messages of up to 4096 keys.
    pub async fn gather<T: DeserializeOwned>(&self, futures: &[Future<T>]) -> Result<Vec<T>> {
        let want: Vec<KeyId> = futures
            .iter()
            .filter(|f| f.mark_wanted())
            .map(|f| f.task_key().id)
            .collect();
        self.conn
            .registry
            .send_chunked(want, |_| 0, ClientRequest::Want);
        let mut out = Vec::with_capacity(futures.len());
        for f in futures {
            f.until_value().await;
            out.push(f.decode()?);
        }
        Ok(out)
    }

    /// Waits until every future has finished (successfully or not).
    pub async fn wait<T>(&self, futures: &[Future<T>]) {
        for f in futures {
            let _ = f.wait().await;
        }
    }

    /// Cancels the futures (see [`Future::cancel`]), in messages of up to
    /// 4096 keys.
    pub fn cancel<T>(&self, futures: &[Future<T>]) {
        let mut keys = Vec::with_capacity(futures.len());
        for f in futures {
            f.holder.set(|s| {
                if matches!(s.status, crate::registry::Status::Pending) {
                    s.status = crate::registry::Status::Cancelled;
                }
            });
            keys.push(f.task_key().id);
        }
        self.conn
            .registry
            .send_chunked(keys, |_| 0, ClientRequest::Cancel);
    }

    /// Yields the futures as they finish, like dask's `as_completed`.
    pub fn as_completed<T: Send + 'static>(&self, futures: Vec<Future<T>>) -> AsCompleted<T> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let n = futures.len();
        for f in futures {
            let tx = tx.clone();
            tokio::spawn(async move {
                f.until(|s| !matches!(s, crate::registry::Status::Pending))
                    .await;
                let _ = tx.send(f);
            });
        }
        AsCompleted { rx, left: n }
    }

    /// Workers, their threads, held bytes and task counts.
    pub async fn info(&self) -> Result<ClusterInfo> {
        self.conn.registry.check_connected()?;
        let (req, mut replies) = self.conn.request();
        self.conn.registry.send(ClientRequest::Info { req });
        let r = match replies.recv().await {
            Some(ClientEvent::Info { info, .. }) => Ok(info),
            _ => Err(Error::ConnectionLost("no answer to info".into())),
        };
        self.conn.done(req);
        r
    }

    /// Closes the connection; the cluster forgets this client's keys.
    pub fn close(&self) {
        self.conn.close();
    }

    /// Closes the connection and waits until the scheduler has been told
    /// (at most 2 s), so a process may exit right after.
    pub async fn shutdown(&self) {
        self.conn.shutdown().await;
    }
}

/// One call, encoded: its spec and key, and what its arguments stand on.
pub(crate) struct Call {
    pub spec: TaskSpec,
    pub key: TaskKey,
    /// Futures among the arguments, kept alive until the call is queued.
    pub keep: Vec<Arc<Holder>>,
    /// Delayed calls among the arguments, submitted with it.
    pub nodes: Vec<Arc<Node>>,
}

/// Encodes `args` for `task` and derives the call's key: the same key on
/// every machine for a pure call, a fresh uuid otherwise.
pub(crate) fn build_call<P, R, A: Args<P>>(
    task: &Task<P, R>,
    args: &A,
    options: &Options,
) -> Result<Call> {
    let mut w = TemplateWriter::default();
    args.write_all(&mut w)?;
    let written = w.finish();
    let id = if options.pure {
        pure_key_id(
            &task.module.inner.info.hash,
            &task.name,
            &written.template,
            &written.deps,
        )
    } else {
        KeyId::random()
    };
    let key = TaskKey {
        name: task.name.clone(),
        id,
        pure: options.pure,
    };
    let spec = TaskSpec {
        key: id,
        pure: options.pure,
        module: task.module.inner.id,
        func: task.func,
        args: written.template,
        deps: written.deps,
        limits: options.limits,
    };
    Ok(Call {
        spec,
        key,
        keep: written.keep,
        nodes: written.nodes,
    })
}

/// The result type of a call submitted with [`Client::submit_encoded`]:
/// read it with [`Future::result_bytes`].
#[derive(Debug)]
pub enum Raw {}

/// Postcard bytes standing for the whole argument tuple of a call.
struct Encoded(Vec<u8>);

impl Args<Raw> for Encoded {
    fn write_all(&self, w: &mut TemplateWriter) -> Result<()> {
        w.raw(&self.0);
        Ok(())
    }
}

/// Futures in the order they finish; see [`Client::as_completed`].
pub struct AsCompleted<T> {
    rx: tokio::sync::mpsc::UnboundedReceiver<Future<T>>,
    left: usize,
}

impl<T> AsCompleted<T> {
    /// The next future to finish, or `None` when all have.
    pub async fn next(&mut self) -> Option<Future<T>> {
        if self.left == 0 {
            return None;
        }
        let f = self.rx.recv().await?;
        self.left -= 1;
        Some(f)
    }
}
