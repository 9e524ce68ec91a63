//! Shared helpers for the end-to-end tests: paths of the guest modules built
//! by `build.rs`, running the binaries (`procs`), a raw protocol client
//! (`raw`), building test modules (`wasm`), and waiting for a cluster condition without sleeps as
//! synchronization.

pub mod hostile_cluster;
pub mod procs;
pub mod raw;
pub mod wasm;

use std::time::Duration;

/// The math example guest.
pub const MATH: &str = env!("WASK_GUEST_MATH");
/// The guest whose tasks fail in every way.
pub const FAULTY: &str = env!("WASK_GUEST_FAULTY");

/// Polls `cond` (each poll is a round trip to the scheduler) until it holds,
/// or fails after `limit`.
pub async fn eventually<F, Fut>(limit: Duration, mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if cond().await {
            return true;
        }
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::task::yield_now().await;
    }
}
