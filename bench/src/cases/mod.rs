//! The cases, one per file. Each returns the JSON line it reports, with
//! the field names of shared/peers/dask_bench.py where the peers have the
//! case.
//!
//! - [`map_gather`], [`latency`], [`chain`], [`tree_reduce`], [`dedup`],
//!   [`cpu_bound`]: the peers' cases, through the client and the cluster.
//! - [`sandbox`]: a fresh sandbox per call, measured without a cluster.
//! - [`core_scale`]: the scheduler core alone with a million tasks.

pub mod chain;
pub mod core_scale;
pub mod cpu_bound;
pub mod dedup;
pub mod latency;
pub mod map_gather;
pub mod sandbox;
pub mod tree_reduce;
