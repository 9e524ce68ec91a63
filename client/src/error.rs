//! The errors of the client API.

use wask_proto::TaskError;

/// Everything that can go wrong for a user of [`Client`](crate::Client).
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The task (or a dependency) failed on the cluster: a trap, a panic, a
    /// timeout, a memory limit, an error it returned, ...
    #[error("{key}: {error}")]
    Task {
        /// The key of the future that failed.
        key: String,
        /// How it failed.
        error: TaskError,
    },
    /// The module has no task of that name.
    #[error("module has no task {name:?} (it has: {available})")]
    UnknownTask {
        /// The name asked for.
        name: String,
        /// The tasks it has.
        available: String,
    },
    /// The typed handle does not match the task's signature.
    #[error("task {task} is {declared}, but the handle asks for {requested}")]
    SignatureMismatch {
        /// The task.
        task: String,
        /// The signature in the module.
        declared: String,
        /// The signature of the handle.
        requested: String,
    },
    /// The module was refused (by the client's own check or the scheduler).
    #[error("module refused: {0}")]
    ModuleRefused(String),
    /// A parameter of a client method is unusable (an empty bag to reduce,
    /// a fan-in below 2).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// An argument could not be encoded.
    #[error("cannot encode arguments: {0}")]
    Encode(String),
    /// A value to scatter is larger than a payload may be
    /// ([`MAX_PAYLOAD`](wask_proto::limits::MAX_PAYLOAD)); nothing was sent.
    #[error("data of {size} bytes is too large to scatter (the limit is {max} bytes)")]
    DataTooLarge {
        /// Its encoded size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// The result bytes do not decode as the handle's result type.
    #[error("{key}: cannot decode result: {message}")]
    Decode {
        /// The key.
        key: String,
        /// The decoder's complaint.
        message: String,
    },
    /// A future was cancelled.
    #[error("{key}: cancelled")]
    Cancelled {
        /// The key.
        key: String,
    },
    /// The connection to the scheduler is gone.
    #[error("connection to the scheduler lost: {0}")]
    ConnectionLost(String),
    /// The scheduler refused the connection (token, protocol).
    #[error("scheduler refused the connection: {0}")]
    Refused(String),
    /// Connecting failed.
    #[error("cannot connect: {0}")]
    Connect(String),
    /// A scheduler given by address, with no certificate to trust.
    #[error(
        "no certificate to trust for the scheduler at {address}: give its CA (or its own \
         certificate) with Client::builder(address).tls_ca(path) or $WASK_TLS_CA, or connect \
         with its scheduler file"
    )]
    NoTrustedCertificate {
        /// The address given.
        address: String,
    },
    /// Reading a module or scheduler file failed.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// Starting a local cluster failed.
    #[error("local cluster: {0}")]
    Cluster(String),
}

impl Error {
    /// The task error, if this is one.
    pub fn task_error(&self) -> Option<&TaskError> {
        match self {
            Error::Task { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
