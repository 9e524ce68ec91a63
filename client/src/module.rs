//! Modules and typed task handles.

use crate::args::{Params, result_name};
use crate::error::{Error, Result};
use std::marker::PhantomData;
use std::sync::Arc;
use wask_proto::module::ModuleInfo;
use wask_proto::signature::TaskSignature;
use wask_proto::{ClientId, ModuleHash, ModuleId};

/// A wasm module registered with the scheduler.
#[derive(Clone)]
pub struct Module {
    pub(crate) inner: Arc<ModuleInner>,
}

pub(crate) struct ModuleInner {
    pub id: ModuleId,
    pub client: ClientId,
    pub info: ModuleInfo,
}

impl std::fmt::Debug for Module {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "<Module {} with {} tasks>",
            self.inner.info.hash,
            self.inner.info.tasks.len()
        )
    }
}

impl Module {
    /// blake3 of the wasm bytes.
    pub fn hash(&self) -> ModuleHash {
        self.inner.info.hash
    }

    /// The tasks the module declares.
    pub fn tasks(&self) -> &[TaskSignature] {
        &self.inner.info.tasks
    }

    /// The index and signature of the task `name`, or the error that lists
    /// the tasks there are.
    pub(crate) fn lookup(&self, name: &str) -> Result<(u32, &TaskSignature)> {
        self.inner
            .info
            .task(name)
            .ok_or_else(|| Error::UnknownTask {
                name: name.to_string(),
                available: self
                    .inner
                    .info
                    .tasks
                    .iter()
                    .map(|t| t.display())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// A typed handle on the task `name`, checked against its signature:
    /// `P` is the tuple of parameter types and `R` the result type.
    pub fn task<P: Params, R>(&self, name: &str) -> Result<Task<P, R>> {
        let (func, sig) = self.lookup(name)?;
        let requested = TaskSignature {
            name: name.to_string(),
            params: P::type_names(),
            result: result_name::<R>(),
        };
        if requested.params != sig.params || requested.result != sig.result {
            return Err(Error::SignatureMismatch {
                task: name.to_string(),
                declared: sig.display(),
                requested: requested.display(),
            });
        }
        Ok(Task {
            module: self.clone(),
            func,
            name: name.into(),
            _t: PhantomData,
        })
    }
}

/// A typed handle on one task of a module: `Task<(A, B), R>` is a call
/// taking `A` and `B` and giving `R`.
pub struct Task<P, R> {
    pub(crate) module: Module,
    pub(crate) func: u32,
    pub(crate) name: Arc<str>,
    _t: PhantomData<fn(P) -> R>,
}

impl<P, R> Clone for Task<P, R> {
    fn clone(&self) -> Self {
        Task {
            module: self.module.clone(),
            func: self.func,
            name: self.name.clone(),
            _t: PhantomData,
        }
    }
}

impl<P, R> std::fmt::Debug for Task<P, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<Task {}>", self.name)
    }
}

impl<P, R> Task<P, R> {
    pub(crate) fn untyped(module: Module, func: u32, name: Arc<str>) -> Task<P, R> {
        Task {
            module,
            func,
            name,
            _t: PhantomData,
        }
    }

    /// The task's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}
