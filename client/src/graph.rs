//! Task graphs: [`Delayed`] calls, built without a cluster and submitted
//! together by [`Client::compute`] or [`Client::persist`], like dask's
//! `delayed`, `compute` and `persist`.
//!
//! ```no_run
//! # async fn demo(client: wask::Client, math: wask::Module) -> wask::Result<()> {
//! let inc = math.task::<(i64,), i64>("inc")?;
//! let add = math.task::<(i64, i64), i64>("add")?;
//! let sum = math.task::<(Vec<i64>,), i64>("sum")?;
//! let xs: Vec<_> = (0..10).map(|i| inc.delay((i,))).collect::<Result<_, _>>()?;
//! let total = sum.delay((&xs,))?;              // nothing sent yet
//! let both = add.delay((&total, &xs[0]))?;
//! let f = client.compute(&both)?;              // one message: 12 calls
//! assert_eq!(f.await?, 56);
//! # Ok(()) }
//! ```
//!
//! A delayed call has the key `submit` would give the same call, so graphs
//! and futures share results. Only the outputs are held for the client; the
//! calls in between are kept by the cluster while the tasks that need them
//! run, then forgotten.

use crate::args::Args;
use crate::client::{Call, Client, build_call};
use crate::error::Result;
use crate::future::Future;
use crate::module::Task;
use crate::options::Options;
use crate::registry::Holder;
use std::marker::PhantomData;
use std::sync::Arc;
use wask_proto::hash::{FastMap, new_map};
use wask_proto::msg::TaskSpec;
use wask_proto::{ClientId, KeyId, TaskKey};

/// A call not yet submitted (or one whose result the cluster holds), to be
/// computed later as part of a graph, like dask's `Delayed`.
///
/// Use it as an argument of other delayed calls, of `submit` and `map`, and
/// compute it with [`Client::compute`]. Cloning is cheap.
pub struct Delayed<T> {
    pub(crate) source: Source,
    _t: PhantomData<fn() -> T>,
}

/// What a [`Delayed`] stands for.
#[derive(Clone)]
pub(crate) enum Source {
    /// A call and, through its arguments, the calls it needs.
    Call(Arc<Node>),
    /// A result the client holds already (a persisted call or a future).
    Held(Arc<Holder>),
}

/// One call of a graph.
pub(crate) struct Node {
    pub key: TaskKey,
    pub spec: TaskSpec,
    /// The client whose module the call uses.
    pub client: ClientId,
    /// Delayed calls among its arguments.
    pub inputs: Vec<Arc<Node>>,
    /// Futures among its arguments, kept alive while the call may be
    /// submitted.
    pub _keep: Vec<Arc<Holder>>,
}

impl Node {
    pub(crate) fn from_call(call: Call, client: ClientId) -> Node {
        Node {
            key: call.key,
            spec: call.spec,
            client,
            inputs: call.nodes,
            _keep: call.keep,
        }
    }
}

impl Drop for Node {
    /// Frees a long chain of calls without recursing once per call.
    fn drop(&mut self) {
        let mut stack = std::mem::take(&mut self.inputs);
        while let Some(node) = stack.pop() {
            if let Ok(mut node) = Arc::try_unwrap(node) {
                stack.append(&mut node.inputs);
            }
        }
    }
}

impl<T> Clone for Delayed<T> {
    fn clone(&self) -> Self {
        Delayed {
            source: self.source.clone(),
            _t: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for Delayed<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.source {
            Source::Call(node) => write!(f, "<Delayed: {}>", node.key),
            Source::Held(holder) => write!(f, "<Delayed: {}, held>", holder.key),
        }
    }
}

impl<T> Delayed<T> {
    fn new(source: Source) -> Delayed<T> {
        Delayed {
            source,
            _t: PhantomData,
        }
    }

    /// The key the result has (or will have): the key `submit` gives the
    /// same call.
    pub fn key(&self) -> String {
        self.task_key().to_string()
    }

    /// The key as a structured value.
    pub fn task_key(&self) -> &TaskKey {
        match &self.source {
            Source::Call(node) => &node.key,
            Source::Held(holder) => &holder.key,
        }
    }

    /// Whether the cluster holds the result for this client already (a
    /// persisted call or a future), rather than a call still to submit.
    pub fn is_persisted(&self) -> bool {
        matches!(self.source, Source::Held(_))
    }
}

impl<T> From<Future<T>> for Delayed<T> {
    fn from(f: Future<T>) -> Delayed<T> {
        Delayed::new(Source::Held(f.holder))
    }
}

impl<T> From<&Future<T>> for Delayed<T> {
    fn from(f: &Future<T>) -> Delayed<T> {
        Delayed::new(Source::Held(f.holder.clone()))
    }
}

impl<P, R> Task<P, R> {
    /// A delayed call of this task: nothing is sent until it, or a call
    /// that needs it, is computed.
    pub fn delay<A: Args<P>>(&self, args: A) -> Result<Delayed<R>> {
        self.delay_with(args, &Options::default())
    }

    /// [`delay`](Self::delay) with options (`pure(false)` draws the random
    /// key now, as dask's `delayed(pure=False)` does; limits).
    pub fn delay_with<A: Args<P>>(&self, args: A, options: &Options) -> Result<Delayed<R>> {
        let call = build_call(self, &args, options)?;
        let node = Node::from_call(call, self.module.inner.client);
        Ok(Delayed::new(Source::Call(Arc::new(node))))
    }
}

/// The calls of the graphs under `roots`, each once, dependencies before
/// dependents (an iterative depth-first walk: graphs may be deep chains).
pub(crate) struct Walk {
    /// The calls, dependencies first.
    pub order: Vec<Arc<Node>>,
    /// Where each key stands in `order`.
    pub index: FastMap<KeyId, usize>,
}

fn topological(roots: &[Arc<Node>]) -> Walk {
    let mut index: FastMap<KeyId, usize> = new_map();
    let mut order = Vec::new();
    let mut stack: Vec<(Arc<Node>, usize)> = Vec::new();
    for root in roots {
        if index.contains_key(&root.key.id) {
            continue;
        }
        // Reserved on entry (the slot is set on exit), so that a call
        // reached again while its inputs are walked is not walked twice.
        index.insert(root.key.id, usize::MAX);
        stack.push((root.clone(), 0));
        while let Some((node, next)) = stack.last_mut() {
            if let Some(input) = node.inputs.get(*next) {
                let input = input.clone();
                *next += 1;
                if let std::collections::hash_map::Entry::Vacant(e) = index.entry(input.key.id) {
                    e.insert(usize::MAX);
                    stack.push((input, 0));
                }
            } else if let Some((node, _)) = stack.pop() {
                index.insert(node.key.id, order.len());
                order.push(node);
            }
        }
    }
    Walk { order, index }
}

impl Client {
    /// Submits the graphs of `roots` in one message and returns a holder
    /// per root, in order.
    pub(crate) fn submit_graph(&self, roots: &[Arc<Node>]) -> Result<Vec<Arc<Holder>>> {
        let walk = topological(roots);
        if walk.order.iter().any(|node| node.client != self.conn.id) {
            return Err(crate::Error::ModuleRefused(
                "a delayed call's module was loaded by another client".into(),
            ));
        }
        let outputs: Vec<usize> = roots.iter().map(|r| walk.index[&r.key.id]).collect();
        // `walk` keeps every future the graph stands on alive until the
        // graph is queued.
        self.conn.registry.submit_graph(&walk, &outputs)
    }

    fn compute_sources<T>(&self, delayed: &[Delayed<T>]) -> Result<Vec<Arc<Holder>>> {
        let roots: Vec<Arc<Node>> = delayed
            .iter()
            .filter_map(|d| match &d.source {
                Source::Call(node) => Some(node.clone()),
                Source::Held(_) => None,
            })
            .collect();
        let mut computed = self.submit_graph(&roots)?.into_iter();
        delayed
            .iter()
            .map(|d| match &d.source {
                Source::Call(_) => Ok(computed.next().expect("one holder per call")),
                // `submit_graph` just checked the connection.
                Source::Held(holder) => Ok(holder.clone()),
            })
            .collect()
    }

    /// Submits the call and every call it needs, in one message, and
    /// returns the future of its result (dask's `client.compute`). Only the
    /// result is held for this client; the calls in between are forgotten
    /// once the tasks that need them have run.
    pub fn compute<T>(&self, delayed: &Delayed<T>) -> Result<Future<T>> {
        let holder = self
            .compute_sources(std::slice::from_ref(delayed))?
            .into_iter()
            .next()
            .expect("one holder");
        Ok(Future::new(holder))
    }

    /// [`compute`](Self::compute) of several calls, sharing what they have
    /// in common, in one message.
    pub fn compute_all<T>(&self, delayed: &[Delayed<T>]) -> Result<Vec<Future<T>>> {
        Ok(self
            .compute_sources(delayed)?
            .into_iter()
            .map(Future::new)
            .collect())
    }

    /// Submits the call like [`compute`](Self::compute) and returns it as a
    /// delayed value backed by its result on the cluster (dask's
    /// `persist`): graphs built on it later start from the result instead
    /// of computing it again.
    pub fn persist<T>(&self, delayed: &Delayed<T>) -> Result<Delayed<T>> {
        Ok(self.compute(delayed)?.into())
    }

    /// [`persist`](Self::persist) of several calls, in one message.
    pub fn persist_all<T>(&self, delayed: &[Delayed<T>]) -> Result<Vec<Delayed<T>>> {
        Ok(self
            .compute_all(delayed)?
            .into_iter()
            .map(Delayed::from)
            .collect())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use wask_proto::KeyId;
    use wask_proto::template::ArgTemplate;

    pub(crate) fn node(n: u8, inputs: Vec<Arc<Node>>) -> Arc<Node> {
        let id = KeyId([n; 16]);
        Arc::new(Node {
            key: TaskKey {
                name: "t".into(),
                id,
                pure: true,
            },
            spec: TaskSpec {
                key: id,
                pure: true,
                module: 0,
                func: 0,
                args: ArgTemplate::default(),
                deps: inputs.iter().map(|i| i.key.id).collect(),
                limits: Default::default(),
            },
            client: 0,
            inputs,
            _keep: Vec::new(),
        })
    }

    fn topological_order(roots: &[Arc<Node>]) -> Vec<Arc<Node>> {
        topological(roots).order
    }

    fn ids(order: &[Arc<Node>]) -> Vec<u8> {
        order.iter().map(|n| n.key.id.0[0]).collect()
    }

    #[test]
    fn dependencies_come_first_and_shared_calls_once() {
        let a = node(1, vec![]);
        let b = node(2, vec![a.clone()]);
        let c = node(3, vec![a.clone(), b.clone()]);
        let d = node(4, vec![c.clone(), b.clone()]);
        assert_eq!(
            ids(&topological_order(std::slice::from_ref(&d))),
            vec![1, 2, 3, 4]
        );
        // Several roots share their calls; a root reached from another
        // appears once.
        assert_eq!(
            ids(&topological_order(&[b.clone(), d.clone(), a])),
            vec![1, 2, 3, 4]
        );
    }

    #[test]
    fn deep_chains_neither_overflow_the_walk_nor_the_drop() {
        let mut last = node(0, vec![]);
        for i in 0..200_000u32 {
            let mut id = KeyId([1; 16]);
            id.0[..4].copy_from_slice(&i.to_le_bytes());
            let mut n = Arc::try_unwrap(node(0, vec![last])).ok().expect("unique");
            n.key.id = id;
            n.spec.key = id;
            last = Arc::new(n);
        }
        assert_eq!(topological_order(&[last.clone()]).len(), 200_001);
        drop(last);
    }
}
