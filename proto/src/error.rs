//! The typed ways a task can fail.
//!
//! A `TaskError` travels from the worker (or the scheduler) to every client
//! holding a future of the failed key, and to the futures of every task that
//! depends on it, as [`TaskError::DependencyFailed`] naming the root cause.

use serde::{Deserialize, Serialize};

/// Which sandbox limit a task ran into.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Limit {
    /// Wall-clock time of one execution.
    Time,
    /// Linear memory (plus tables) of the instance.
    Memory,
    /// Depth of the wasm call stack.
    Stack,
    /// Size of the encoded result.
    ResultSize,
    /// Size of the argument buffer after splicing in dependencies.
    ArgumentSize,
    /// Bytes written to stdout and stderr.
    Output,
    /// Elements of a table (`table.grow` was refused).
    TableElements,
}

impl Limit {
    /// The unit of the sizes of this limit, with a leading space.
    pub fn unit(&self) -> &'static str {
        match self {
            Limit::TableElements => " elements",
            Limit::Time => " ms",
            _ => " bytes",
        }
    }
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Limit::Time => "time",
            Limit::Memory => "memory",
            Limit::Stack => "stack",
            Limit::ResultSize => "result size",
            Limit::ArgumentSize => "argument size",
            Limit::Output => "output size",
            Limit::TableElements => "table size",
        })
    }
}

/// Why a task has no result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum TaskError {
    /// The guest panicked; the message is the panic's payload and location.
    #[error("task panicked: {message}")]
    Panic {
        /// What the panic said.
        message: String,
    },
    /// The task returned `Err(e)`; the message is `e.to_string()`.
    #[error("task returned an error: {message}")]
    Failed {
        /// The error's text.
        message: String,
    },
    /// The wasm trapped (unreachable, out-of-bounds access, division by zero, …).
    #[error("task trapped: {message}")]
    Trap {
        /// The trap as wasmtime describes it.
        message: String,
    },
    /// The task ran past its wall-time limit and was interrupted.
    #[error("task exceeded its time limit of {limit_ms} ms")]
    Timeout {
        /// The limit, in milliseconds.
        limit_ms: u64,
    },
    /// The task tried to grow its memory past its limit.
    #[error("task exceeded its memory limit of {limit_bytes} bytes")]
    MemoryLimit {
        /// The limit, in bytes.
        limit_bytes: u64,
    },
    /// The task recursed past the wasm stack limit.
    #[error("task exceeded its stack limit")]
    StackOverflow,
    /// Another sandbox limit: result size, argument size.
    #[error("task exceeded its {limit} limit ({size} > {max}{})", .limit.unit())]
    LimitExceeded {
        /// Which limit.
        limit: Limit,
        /// The size reached.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// The guest broke the wask ABI (bad pointers, missing exports, a bad
    /// status byte).
    #[error("module broke the wask ABI: {message}")]
    Abi {
        /// What was wrong.
        message: String,
    },
    /// The result bytes do not decode as the task's declared result type.
    #[error("result does not decode as the declared type: {message}")]
    BadResult {
        /// The decoder's complaint.
        message: String,
    },
    /// The module was refused or failed to compile on the worker.
    #[error("module rejected: {reason}")]
    ModuleRejected {
        /// Why.
        reason: String,
    },
    /// A dependency failed; `key` is the task that failed first.
    #[error("dependency {key} failed: {cause}")]
    DependencyFailed {
        /// The key of the task where the failure started.
        key: String,
        /// Its error.
        cause: Box<TaskError>,
    },
    /// A dependency's key is not known to the scheduler (never submitted,
    /// released, or held by another tenant: they are not told apart).
    #[error("unknown key {key}")]
    UnknownKey {
        /// The key.
        key: String,
    },
    /// The data of a dependency was lost with the worker that held it.
    #[error("the worker holding {key} left the cluster")]
    WorkerLost {
        /// The key whose data was lost.
        key: String,
    },
    /// Scattered data was lost: the worker holding its only copy left, its
    /// bytes failed to reach a worker, or every client that could upload
    /// it left first. It cannot be recomputed; release its futures and
    /// scatter it again (the key is uploaded again even while other
    /// clients still hold the failed future).
    #[error("scattered data {key} was lost: its only copy left the cluster")]
    DataLost {
        /// The key of the data.
        key: String,
    },
    /// Scattered data larger than [`crate::limits::MAX_PAYLOAD`].
    #[error("scattered data of {size} bytes exceeds the limit of {max} bytes")]
    DataTooLarge {
        /// Its size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// The task was cancelled.
    #[error("task was cancelled")]
    Cancelled,
    /// A tenant quota refused the task.
    #[error("quota exceeded: {message}")]
    Quota {
        /// Which quota, with the numbers.
        message: String,
    },
    /// The worker refused to keep the result: its memory limit is reached.
    #[error("worker out of memory for results: {message}")]
    WorkerFull {
        /// The numbers.
        message: String,
    },
}

impl TaskError {
    /// The error that dependents of a task failing with `self` get.
    pub fn for_dependents(&self, failed_key: impl FnOnce() -> String) -> TaskError {
        match self {
            TaskError::DependencyFailed { .. } => self.clone(),
            other => TaskError::DependencyFailed {
                key: failed_key(),
                cause: Box::new(other.clone()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependents_see_the_root_cause() {
        let e = TaskError::Panic {
            message: "boom".into(),
        };
        let d1 = e.for_dependents(|| "a-1".into());
        let d2 = d1.for_dependents(|| "b-2".into());
        assert_eq!(d1, d2);
        assert_eq!(d2.to_string(), "dependency a-1 failed: task panicked: boom");
    }
}
