//! The tenants of the tenant tests: their tokens, a configuration giving
//! each a quota, weight or limit to test, an embedded cluster with it, and
//! small helpers.

use crate::FAULTY;
use wask::{Client, LocalCluster};

/// The tenants' tokens: A to G, each configured by [`config`].
pub const TOKEN_A: &str = "tenant-a-token-0123456789abcdef";
pub const TOKEN_B: &str = "tenant-b-token-fedcba9876543210";
pub const TOKEN_C: &str = "tenant-c-token-aaaaaaaaaaaaaaaa";
pub const TOKEN_D: &str = "tenant-d-token-bbbbbbbbbbbbbbbb";
pub const TOKEN_E: &str = "tenant-e-token-cccccccccccccccc";
pub const TOKEN_F: &str = "tenant-f-token-dddddddddddddddd";
pub const TOKEN_G: &str = "tenant-g-token-eeeeeeeeeeeeeeee";

/// How long a task of A's runs while B tries to cancel it: far longer than
/// the few round trips of the check.
pub const RUNNING_MS: u64 = 1000;
/// Tenant E's fair-share weight (the others have 1).
pub const E_WEIGHT: u64 = 3;
/// Tenant F may have this many tasks running at once.
pub const F_MAX_IN_FLIGHT: u64 = 2;
/// Tenant G's per-task maxima: wall time (ms), memory, result and output
/// (bytes).
pub const G_MAX_TIME_MS: u64 = 300;
pub const G_MAX_MEMORY: u64 = 16 << 20;
pub const G_MAX_RESULT: u64 = 1 << 10;
pub const G_MAX_OUTPUT: u64 = 1 << 10;

/// The hash `tenants.toml` stores for a token.
pub fn hash(t: &str) -> String {
    wask_scheduler::tenants::hash_token(t)
}

/// The tenants' configuration: A plain; B with small unfinished and bytes
/// quotas; C with a small module quota; D a small stack maximum; E a weight
/// of [`E_WEIGHT`]; F [`F_MAX_IN_FLIGHT`]; G small per-task maxima.
pub fn config() -> String {
    format!(
        r#"
[[tenant]]
name = "a"
token_blake3 = "{}"

[[tenant]]
name = "b"
token_blake3 = "{}"
max_unfinished = 3
max_bytes = 1000

[[tenant]]
name = "c"
token_blake3 = "{}"
max_module_bytes = 1000

[[tenant]]
name = "d"
token_blake3 = "{}"
[tenant.limits]
max_stack = "64KiB"

[[tenant]]
name = "e"
token_blake3 = "{}"
weight = {E_WEIGHT}

[[tenant]]
name = "f"
token_blake3 = "{}"
max_in_flight = {F_MAX_IN_FLIGHT}

[[tenant]]
name = "g"
token_blake3 = "{}"
[tenant.limits]
max_time_ms = {G_MAX_TIME_MS}
max_memory = {G_MAX_MEMORY}
max_result = {G_MAX_RESULT}
max_output = {G_MAX_OUTPUT}
"#,
        hash(TOKEN_A),
        hash(TOKEN_B),
        hash(TOKEN_C),
        hash(TOKEN_D),
        hash(TOKEN_E),
        hash(TOKEN_F),
        hash(TOKEN_G),
    )
}

/// One worker of one thread, with the default queue depth.
pub async fn cluster() -> LocalCluster {
    cluster_of(1, 256).await
}

/// One worker of `threads` threads, each sent at most `saturation` tasks
/// at once.
pub async fn cluster_of(threads: usize, saturation: u32) -> LocalCluster {
    LocalCluster::builder()
        .workers(1)
        .threads_per_worker(threads)
        .saturation(saturation)
        .tenants(config())
        .start()
        .await
        .unwrap()
}

/// A client of `cluster` presenting `token`.
pub async fn connect(cluster: &LocalCluster, token: &str) -> Client {
    Client::builder(cluster.address())
        .token(token)
        .connect()
        .await
        .unwrap()
}

/// Tasks sent to the workers and not yet reported, for any tenant.
pub async fn processing(client: &Client) -> u64 {
    let info = client.info().await.unwrap();
    info.workers.iter().map(|w| w.processing).sum()
}

/// How many of `futures` have finished, as their client knows it.
pub fn done<T>(futures: &[wask::Future<T>]) -> u64 {
    futures.iter().filter(|f| f.done()).count() as u64
}

/// Loads the faulty guest for `client` and returns its `sleep_ms` task: a
/// task of a known duration that leaves the CPU to the cluster.
pub async fn sleep_task(client: &Client) -> wask::Task<(u64,), u64> {
    crate::task(client, FAULTY, "sleep_ms").await
}
