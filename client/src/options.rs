//! Per-call options: purity and sandbox limits.

use std::time::Duration;
use wask_proto::TaskLimits;

/// Options of a `submit_with` / `map_with` call.
#[derive(Clone, Debug)]
pub struct Options {
    pub(crate) pure: bool,
    pub(crate) limits: TaskLimits,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            pure: true,
            limits: TaskLimits::default(),
        }
    }
}

impl Options {
    /// Pure, with the cluster's default limits.
    pub fn new() -> Options {
        Options::default()
    }

    /// `false` gives the call a random key (`name-<uuid4>`), so it is
    /// computed again instead of sharing an identical call's result.
    pub fn pure(mut self, pure: bool) -> Options {
        self.pure = pure;
        self
    }

    /// Wall-time limit (capped by the cluster).
    pub fn timeout(mut self, limit: Duration) -> Options {
        self.limits.time_ms = Some(limit.as_millis().min(u64::MAX as u128) as u64);
        self
    }

    /// Native stack limit of the task's wasm in bytes (capped by the
    /// cluster; workers enforce it rounded down to a power of two, at
    /// least 64 KiB).
    pub fn stack_limit(mut self, bytes: u64) -> Options {
        self.limits.stack_bytes = Some(bytes);
        self
    }

    /// Linear memory limit in bytes (capped by the cluster).
    pub fn memory_limit(mut self, bytes: u64) -> Options {
        self.limits.memory_bytes = Some(bytes);
        self
    }

    /// Limit on the encoded result in bytes (capped by the cluster).
    pub fn result_limit(mut self, bytes: u64) -> Options {
        self.limits.result_bytes = Some(bytes);
        self
    }

    /// Limit on stdout plus stderr in bytes (capped by the cluster).
    pub fn output_limit(mut self, bytes: u64) -> Options {
        self.limits.output_bytes = Some(bytes);
        self
    }
}
