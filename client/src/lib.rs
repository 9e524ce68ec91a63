//! # wask
//!
//! dask.distributed's `Client`, for Rust functions compiled to WebAssembly
//! and run in sandboxes on a cluster.
//!
//! ```no_run
//! # async fn demo() -> wask::Result<()> {
//! use wask::{Client, LocalCluster, Options};
//! let cluster = LocalCluster::start(2).await?;              // embedded default
//! let client = Client::connect(cluster.address()).await?;    // or a scheduler file
//! let math = client.load_module("math.wasm").await?;
//! let inc = math.task::<(i64,), i64>("inc")?;                 // checked against the module
//! let sum = math.task::<(Vec<i64>,), i64>("sum")?;
//! let x = client.submit(&inc, (10,))?;                       // key "inc-<32 hex>"
//! let l = client.map(&inc, (0..1000).map(|i| (i,)))?;
//! let y = client.submit(&inc, (&x,))?;                       // a future as an argument
//! let total = client.submit(&sum, (&l,))?;                   // a list of futures
//! assert_eq!(x.result().await?, 11);
//! assert_eq!(y.await?, 12);
//! let all: Vec<i64> = client.gather(&l).await?;
//! let r = client.submit_with(&inc, (1,), &Options::new().pure(false))?; // uuid key
//! # Ok(()) }
//! ```
//!
//! # Layout
//! - [`client`]: [`Client`]: connect, load modules, submit, map, gather.
//! - `scatter`: [`Client::scatter`]: values sent to the cluster as futures.
//! - [`future`]: [`Future`]: a result held by the cluster.
//! - [`graph`]: [`Delayed`] calls; `compute` and `persist` of task graphs.
//! - [`progress`]: a progress bar over futures.
//! - [`bag`]: [`Bag`], a partitioned collection of task results.
//! - [`module`]: [`Module`] and typed [`Task`] handles.
//! - [`args`]: what may be passed as an argument (values, futures, lists).
//! - [`options`]: [`Options`]: purity and limits of a call.
//! - [`address`]: [`SchedulerAddress`] and scheduler files.
//! - [`local`]: [`LocalCluster`], the embedded cluster.
//! - [`blocking`]: the same API without async.
//! - `registry`, `connection`: the client's bookkeeping and its connection.
//! - [`error`]: the [`Error`] type.
#![warn(missing_docs)]

pub mod address;
pub mod args;
pub mod bag;
pub mod blocking;
pub mod client;
mod connection;
pub mod error;
pub mod future;
pub mod graph;
pub mod local;
pub mod module;
pub mod options;
pub mod progress;
mod registry;
mod scatter;

pub use address::{SchedulerAddress, ToScheduler};
pub use bag::Bag;
pub use client::{AsCompleted, Client, ClientBuilder, Raw};
pub use error::{Error, Result};
pub use future::Future;
pub use graph::Delayed;
pub use local::{LocalCluster, LocalClusterBuilder};
pub use module::{Module, Task};
pub use options::Options;
pub use progress::Progress;
pub use wask_proto::msg::ClusterInfo;
pub use wask_proto::{TaskError, TaskKey};
pub use wask_worker::sandbox::Compiler;
