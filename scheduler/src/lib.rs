//! wask-scheduler: the scheduler of a wask cluster.
//!
//! # Layout
//! - [`state`]: the sans-io core. Events in, actions out; no sockets, no
//!   clock, no tokio. All scheduling decisions live here.
//! - [`server`]: the QUIC shell. Accepts clients and workers, decodes their
//!   frames into events, feeds the core and carries out its actions.
//! - [`tenants`]: the tenant configuration file (tokens, quotas, weights).
#![warn(missing_docs)]

pub mod server;
pub mod state;
pub mod tenants;
