//! Hostile guests, end to end: modules that loop, hoard memory, recurse,
//! flood their output, trap, break the ABI, import what they may not, or are
//! not wasm at all. Each gets its exact typed error, and after each one the
//! same worker still runs a well-behaved task.
//!
//! The misbehaving Rust tasks live in the `faulty` guest; the modules no
//! Rust compiler would emit are hand-written in `tests/fixtures/*.wat`. A
//! fixture follows the wask ABI (a `memory` export, `wask:alloc`,
//! `wask:task:<name>`) where it needs to get past inspection, and the test
//! appends its `wask:tasks` custom section.

use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};
use wask::{Client, Error, Future, LocalCluster, Module, Options, Task, TaskError};
use wask_proto::error::Limit;
use wask_proto::signature::{SECTION, TaskSignature, encode_record};
use wask_tests::{FAULTY, eventually};

/// A cluster of one worker (one wasm thread), a client and the `faulty`
/// guest: every task of a test runs on that worker.
struct Harness {
    cluster: LocalCluster,
    client: Client,
    faulty: Module,
    inc: Task<(i64,), i64>,
    worker: u64,
    next: AtomicI64,
}

impl Harness {
    async fn start() -> Harness {
        let cluster = LocalCluster::builder().workers(1).start().await.unwrap();
        let client = Client::connect(cluster.address()).await.unwrap();
        let faulty = client.load_module(FAULTY).await.unwrap();
        let inc = faulty.task::<(i64,), i64>("inc").unwrap();
        let info = client.info().await.unwrap();
        assert_eq!(info.workers.len(), 1, "{info:?}");
        let worker = info.workers[0].id;
        let h = Harness {
            cluster,
            client,
            faulty,
            inc,
            worker,
            next: AtomicI64::new(0),
        };
        h.still_serving().await;
        h
    }

    /// A typed handle on one of the `faulty` tasks.
    fn faulty<P: wask::args::Params, R>(&self, name: &str) -> Task<P, R> {
        self.faulty.task(name).unwrap()
    }

    /// The one worker is still there and still computes `inc` correctly (a
    /// fresh key each time, so it really runs).
    async fn still_serving(&self) {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let f = self
            .client
            .submit_with(&self.inc, (n,), &Options::new().pure(false))
            .unwrap();
        assert_eq!(f.result().await.unwrap(), n + 1);
        let info = self.client.info().await.unwrap();
        let ids: Vec<u64> = info.workers.iter().map(|w| w.id).collect();
        assert_eq!(ids, [self.worker], "the worker was replaced: {info:?}");
    }

    /// Loads a module that must be accepted.
    async fn load(&self, wasm: Vec<u8>) -> Module {
        self.client.load_module_bytes(wasm).await.unwrap()
    }

    /// Loads a module that must be refused, and returns the reason.
    async fn refused(&self, wasm: Vec<u8>) -> String {
        match self.client.load_module_bytes(wasm).await {
            Err(Error::ModuleRefused(reason)) => reason,
            other => panic!("expected ModuleRefused, got {other:?}"),
        }
    }

    async fn shutdown(self) {
        self.cluster.shutdown().await;
    }
}

/// The task error a future ends with.
async fn task_error<T: serde_like::Decode>(f: Future<T>) -> TaskError {
    match f.result().await {
        Err(Error::Task { key, error }) => {
            assert_eq!(key, f.key());
            error
        }
        other => panic!("expected a task error, got {other:?}"),
    }
}

/// `Future::result` needs `T: DeserializeOwned`; this names that bound
/// without a serde dependency of our own.
mod serde_like {
    pub trait Decode: std::fmt::Debug + for<'de> DeserializeBound<'de> {}
    pub trait DeserializeBound<'de> {}
    impl<T: std::fmt::Debug> Decode for T where T: for<'de> DeserializeBound<'de> {}
}
