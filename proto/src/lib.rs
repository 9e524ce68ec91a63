//! wask-proto: everything two wask processes must agree on, and nothing that
//! does I/O.
//!
//! # Layout
//! - [`key`]: task keys (`name-<32 hex>` / `name-<uuid4>`), their 16-byte ids
//!   and the blake3 key derivation.
//! - [`template`]: argument templates, postcard literals with holes for the
//!   results of other tasks, and the worker-side splice.
//! - [`error`]: [`TaskError`], the typed ways a task can fail.
//! - [`limits`]: per-task sandbox limits and the size limits of the protocol.
//! - [`msg`]: the messages of each connection kind.
//! - [`frame`]: length-prefixed postcard frames and a sans-io decoder.
//! - [`signature`]: the `wask:tasks` custom section: task names and types.
//! - [`module`]: inspecting a wasm module (hash, tasks, imports) before use.
//! - [`scheduler_file`]: the JSON a scheduler writes for clients and workers.
//! - [`hash`]: the seeded hasher used for maps keyed by ids.
#![warn(missing_docs)]

pub mod error;
pub mod frame;
pub mod hash;
pub mod key;
pub mod limits;
pub mod module;
pub mod msg;
pub mod scheduler_file;
pub mod signature;
pub mod template;

pub use error::TaskError;
pub use key::{KeyId, ModuleHash, TaskKey};
pub use limits::TaskLimits;
pub use template::ArgTemplate;

/// Version of the wire protocol; peers with another version are refused.
pub const PROTOCOL_VERSION: u32 = 3;

/// ALPN of a client's connection to the scheduler.
pub const ALPN_CLIENT: &[u8] = b"wask-client/1";
/// ALPN of a worker's connection to the scheduler.
pub const ALPN_WORKER: &[u8] = b"wask-worker/1";
/// ALPN of a worker's connection to another worker.
pub const ALPN_PEER: &[u8] = b"wask-peer/1";

/// Identifies a tenant on the scheduler and the workers. Tenant 0 is the
/// default tenant of a cluster without a tenant configuration.
pub type TenantId = u32;

/// Identifies a worker for the lifetime of a scheduler.
pub type WorkerId = u32;

/// Identifies a client connection for the lifetime of a scheduler.
pub type ClientId = u32;

/// A module registered on the scheduler, scoped to one tenant.
pub type ModuleId = u32;
