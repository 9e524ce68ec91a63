//! Shared helpers for the end-to-end tests: paths of the guest modules built
//! by `build.rs`, running the binaries (`procs`) and the quickstart
//! (`quickstart`, its output parsed), a raw protocol client
//! (`raw`), the tenants of the tenant tests (`tenants`), building test
//! modules (`wasm`), and waiting for a cluster
//! condition by polling it with a deadline (never a sleep as
//! synchronization).

pub mod hostile_cluster;
pub mod procs;
pub mod quickstart;
pub mod raw;
pub mod tenants;
pub mod wasm;

use std::time::Duration;

/// The math example guest.
pub const MATH: &str = env!("WASK_GUEST_MATH");
/// The guest whose tasks fail in every way.
pub const FAULTY: &str = env!("WASK_GUEST_FAULTY");

/// Loads the guest `module` (a path, such as [`MATH`]) for `client` and
/// returns its task `name` as a typed handle.
pub async fn task<P: wask::args::Params, R>(
    client: &wask::Client,
    module: &str,
    name: &str,
) -> wask::Task<P, R> {
    let module = client.load_module(module).await.expect("loading the guest");
    module.task::<P, R>(name).expect("the guest's task")
}

/// Tasks run by every worker of the client's cluster, in all.
pub async fn executed(client: &wask::Client) -> u64 {
    let info = client.info().await.expect("cluster info");
    info.workers.iter().map(|w| w.executed).sum()
}

/// The longest pause between two polls of [`eventually`].
const MAX_POLL_PAUSE: Duration = Duration::from_millis(20);

/// Polls `cond` (typically a round trip to the scheduler) until it holds,
/// or fails after `limit`. The pause between polls doubles from 100 µs up
/// to [`MAX_POLL_PAUSE`]: a condition that holds soon is seen soon, and one
/// that takes seconds does not keep a core busy asking.
pub async fn eventually<F, Fut>(limit: Duration, mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    let mut pause = Duration::from_micros(100);
    loop {
        if cond().await {
            return true;
        }
        let now = tokio::time::Instant::now();
        if now > deadline {
            return false;
        }
        tokio::time::sleep(pause.min(deadline - now)).await;
        pause = (pause * 2).min(MAX_POLL_PAUSE);
    }
}
