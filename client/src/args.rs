//! Arguments: values, futures and lists of futures, checked by type.
//!
//! A task handle `Task<(A, B), R>` accepts any `(X, Y)` where `X: Arg<A>`
//! and `Y: Arg<B>`. `Arg<T>` is implemented for `T` itself (and `&T`) when
//! `T: Serialize`, for `Future<T>` (and `&Future<T>`), and for a slice or
//! `Vec` of `Future<T>` where the parameter is `Vec<T>`. Values become
//! postcard bytes; futures become holes the worker fills with their results
//! (see `wask_proto::template`). A [`Delayed`] (a call not yet submitted)
//! stands wherever a future does; the calls it needs are submitted along.

use crate::Future;
use crate::error::Error;
use crate::graph::{Delayed, Node, Source};
use crate::registry::Holder;
use serde::Serialize;
use std::sync::Arc;
use wask_proto::KeyId;
use wask_proto::hash::FastMap;
use wask_proto::template::{ArgTemplate, Hole};

/// Dependencies found by a linear scan; beyond, by a hash index.
const LINEAR_DEPS: usize = 16;

/// Builds an argument template.
#[derive(Default)]
pub struct TemplateWriter {
    bytes: Vec<u8>,
    holes: Vec<Hole>,
    deps: Vec<KeyId>,
    /// `deps` by key, once there are more than [`LINEAR_DEPS`] (a list of
    /// 100,000 futures would otherwise be 5·10⁹ comparisons).
    dep_index: FastMap<KeyId, u32>,
    /// Keeps dependencies alive until the call is submitted.
    keep: Vec<Arc<Holder>>,
    /// Unsubmitted calls among the dependencies.
    nodes: Vec<Arc<Node>>,
}

/// What a [`TemplateWriter`] wrote.
pub(crate) struct Written {
    pub template: ArgTemplate,
    /// The dependencies' keys, without repeats, in hole order.
    pub deps: Vec<KeyId>,
    /// Futures among the dependencies, kept alive until the call is queued.
    pub keep: Vec<Arc<Holder>>,
    /// Delayed calls among the dependencies.
    pub nodes: Vec<Arc<Node>>,
}

impl TemplateWriter {
    fn value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
        let bytes = std::mem::take(&mut self.bytes);
        self.bytes = postcard::to_extend(v, bytes).map_err(|e| Error::Encode(e.to_string()))?;
        Ok(())
    }

    pub(crate) fn raw(&mut self, bytes: &[u8]) {
        self.bytes.extend_from_slice(bytes);
    }

    fn hole(&mut self, holder: &Arc<Holder>) {
        if self.dep_hole(holder.key.id) {
            self.keep.push(holder.clone());
        }
    }

    fn node(&mut self, node: &Arc<Node>) {
        if self.dep_hole(node.key.id) {
            self.nodes.push(node.clone());
        }
    }

    fn delayed<T>(&mut self, d: &Delayed<T>) {
        match &d.source {
            Source::Call(node) => self.node(node),
            Source::Held(holder) => self.hole(holder),
        }
    }

    /// Adds a hole for `key`; true the first time the key is seen (the
    /// caller then keeps what stands for it alive).
    fn dep_hole(&mut self, key: KeyId) -> bool {
        if self.deps.len() > LINEAR_DEPS && self.dep_index.is_empty() {
            self.dep_index = self
                .deps
                .iter()
                .enumerate()
                .map(|(i, k)| (*k, i as u32))
                .collect();
        }
        let found = if self.dep_index.is_empty() {
            self.deps.iter().position(|d| *d == key).map(|i| i as u32)
        } else {
            self.dep_index.get(&key).copied()
        };
        let (dep, new) = match found {
            Some(i) => (i, false),
            None => {
                let i = self.deps.len() as u32;
                self.deps.push(key);
                if !self.dep_index.is_empty() {
                    self.dep_index.insert(key, i);
                }
                (i, true)
            }
        };
        self.holes.push(Hole {
            at: self.bytes.len() as u32,
            dep,
        });
        new
    }

    /// A `Vec<T>` parameter from items that each stand for a `T` (futures,
    /// delayed calls).
    fn list<'a, T, A: Arg<T> + 'a>(
        &mut self,
        items: impl ExactSizeIterator<Item = &'a A>,
    ) -> Result<(), Error> {
        self.value(&(items.len() as u64))?; // postcard: a sequence is a varint length, then the items
        for item in items {
            item.write(self)?;
        }
        Ok(())
    }

    pub(crate) fn finish(self) -> Written {
        Written {
            template: ArgTemplate {
                bytes: self.bytes.into(),
                holes: self.holes,
            },
            deps: self.deps,
            keep: self.keep,
            nodes: self.nodes,
        }
    }
}

/// Something that can stand for a parameter of type `T`.
pub trait Arg<T> {
    /// Writes itself into the template.
    fn write(&self, w: &mut TemplateWriter) -> Result<(), Error>;
}

impl<T: Serialize> Arg<T> for T {
    fn write(&self, w: &mut TemplateWriter) -> Result<(), Error> {
        w.value(self)
    }
}

impl<T: Serialize> Arg<T> for &T {
    fn write(&self, w: &mut TemplateWriter) -> Result<(), Error> {
        w.value(*self)
    }
}

impl<T> Arg<T> for Future<T> {
    fn write(&self, w: &mut TemplateWriter) -> Result<(), Error> {
        w.hole(&self.holder);
        Ok(())
    }
}

impl<T> Arg<T> for &Future<T> {
    fn write(&self, w: &mut TemplateWriter) -> Result<(), Error> {
        w.hole(&self.holder);
        Ok(())
    }
}

impl<T> Arg<T> for Delayed<T> {
    fn write(&self, w: &mut TemplateWriter) -> Result<(), Error> {
        w.delayed(self);
        Ok(())
    }
}

impl<T> Arg<T> for &Delayed<T> {
    fn write(&self, w: &mut TemplateWriter) -> Result<(), Error> {
        w.delayed(self);
        Ok(())
    }
}

impl<T> Arg<Vec<T>> for &[Delayed<T>] {
    fn write(&self, w: &mut TemplateWriter) -> Result<(), Error> {
        w.list(self.iter())
    }
}

impl<T> Arg<Vec<T>> for Vec<Delayed<T>> {
    fn write(&self, w: &mut TemplateWriter) -> Result<(), Error> {
        self.as_slice().write(w)
    }
}

impl<T> Arg<Vec<T>> for &Vec<Delayed<T>> {
    fn write(&self, w: &mut TemplateWriter) -> Result<(), Error> {
        self.as_slice().write(w)
    }
}

impl<T> Arg<Vec<T>> for &[Future<T>] {
    fn write(&self, w: &mut TemplateWriter) -> Result<(), Error> {
        w.list(self.iter())
    }
}

impl<T> Arg<Vec<T>> for Vec<Future<T>> {
    fn write(&self, w: &mut TemplateWriter) -> Result<(), Error> {
        w.list(self.iter())
    }
}

impl<T> Arg<Vec<T>> for &Vec<Future<T>> {
    fn write(&self, w: &mut TemplateWriter) -> Result<(), Error> {
        w.list(self.iter())
    }
}

/// A tuple of arguments for a task whose parameters are the tuple `P`.
pub trait Args<P> {
    /// Writes every argument, in order.
    fn write_all(&self, w: &mut TemplateWriter) -> Result<(), Error>;
}

/// The parameter tuple of a task: its type names, for signature checks.
pub trait Params {
    /// The normalized type name of each parameter.
    fn type_names() -> Vec<String>;
}

fn name_of<T: ?Sized>() -> String {
    wask_proto::signature::normalize_type_name(std::any::type_name::<T>())
}

/// The normalized type name of a result type.
pub(crate) fn result_name<R>() -> String {
    name_of::<R>()
}

macro_rules! tuples {
    ($( ( $($p:ident $x:ident $i:tt),* ) )*) => {$(
        impl<$($p,)* $($x: Arg<$p>,)*> Args<($($p,)*)> for ($($x,)*) {
            #[allow(unused_variables)]
            fn write_all(&self, w: &mut TemplateWriter) -> Result<(), Error> {
                $( self.$i.write(w)?; )*
                Ok(())
            }
        }
        impl<$($p,)*> Params for ($($p,)*) {
            fn type_names() -> Vec<String> {
                vec![$(name_of::<$p>(),)*]
            }
        }
    )*};
}

tuples! {
    ()
    (A0 X0 0)
    (A0 X0 0, A1 X1 1)
    (A0 X0 0, A1 X1 1, A2 X2 2)
    (A0 X0 0, A1 X1 1, A2 X2 2, A3 X3 3)
    (A0 X0 0, A1 X1 1, A2 X2 2, A3 X3 3, A4 X4 4)
    (A0 X0 0, A1 X1 1, A2 X2 2, A3 X3 3, A4 X4 4, A5 X5 5)
    (A0 X0 0, A1 X1 1, A2 X2 2, A3 X3 3, A4 X4 4, A5 X5 5, A6 X6 6)
    (A0 X0 0, A1 X1 1, A2 X2 2, A3 X3 3, A4 X4 4, A5 X5 5, A6 X6 6, A7 X7 7)
}

impl<T> Arg<T> for crate::blocking::Future<T> {
    fn write(&self, w: &mut TemplateWriter) -> Result<(), Error> {
        w.hole(&self.inner.holder);
        Ok(())
    }
}

impl<T> Arg<T> for &crate::blocking::Future<T> {
    fn write(&self, w: &mut TemplateWriter) -> Result<(), Error> {
        w.hole(&self.inner.holder);
        Ok(())
    }
}

impl<T> Arg<Vec<T>> for &Vec<crate::blocking::Future<T>> {
    fn write(&self, w: &mut TemplateWriter) -> Result<(), Error> {
        w.list(self.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::tests::node;

    #[test]
    fn repeated_dependencies_are_one_dep_with_many_holes_past_the_linear_scan() {
        let nodes: Vec<Arc<Node>> = (0..40).map(|n| node(n, vec![])).collect();
        let mut w = TemplateWriter::default();
        // Each node, then each again in reverse, then one more repeat.
        for n in nodes.iter().chain(nodes.iter().rev()).chain(&nodes[..1]) {
            w.node(n);
            w.raw(&[0]);
        }
        let written = w.finish();
        let keys: Vec<KeyId> = nodes.iter().map(|n| n.key.id).collect();
        assert_eq!(written.deps, keys);
        assert_eq!(written.nodes.len(), 40);
        let deps: Vec<u32> = written.template.holes.iter().map(|h| h.dep).collect();
        let expected: Vec<u32> = (0..40).chain((0..40).rev()).chain([0]).collect();
        assert_eq!(deps, expected);
        let at: Vec<u32> = written.template.holes.iter().map(|h| h.at).collect();
        assert_eq!(at, (0..81).collect::<Vec<u32>>());
    }
}
