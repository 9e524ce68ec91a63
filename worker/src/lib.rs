//! wask-worker: runs tasks in fresh wasmtime sandboxes and keeps their
//! results in memory.
//!
//! # Layout
//! - [`sandbox`]: wasmtime engine, module cache, the minimal WASI, limits;
//!   one fresh store and instance per task.
//! - [`pool`]: the worker's own threads that run wasm (never tokio's).
//! - [`server`]: the QUIC shell: the scheduler connection, peer transfers and
//!   the result store.
#![warn(missing_docs)]

pub mod pool;
pub mod sandbox;
pub mod server;
