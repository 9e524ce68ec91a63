//! Limits: the sandbox limits of one task and the size limits of the
//! protocol.

use serde::{Deserialize, Serialize};

/// Largest control frame, in bytes (the length prefix excluded).
pub const MAX_FRAME: usize = 16 << 20;
/// Largest value carried inline in a control frame; larger values travel on
/// a stream of their own.
pub const INLINE_VALUE_MAX: usize = 64 << 10;
/// Largest value sent along with a completion notice to a client that holds
/// the future, so that `result()` needs no further round trip.
pub const PUSH_VALUE_MAX: usize = 1 << 10;
/// Largest wasm module accepted.
pub const MAX_MODULE: usize = 64 << 20;
/// Largest payload (a result or scattered data) on a data stream.
pub const MAX_PAYLOAD: usize = 512 << 20;
/// Largest number of tasks a module may declare.
pub const MAX_TASKS_PER_MODULE: usize = 4096;
/// Seconds a peer has to send its hello after the connection is up.
pub const HELLO_TIMEOUT_SECS: u64 = 10;
/// How long a worker may hold back the reports of finished tasks while it
/// has more queued, to send them together, in microseconds.
pub const REPORT_HOLD_US: u64 = 5_000;
/// Most task reports a worker's thread holds back at once.
pub const REPORT_HOLD_MAX: u64 = 64;

/// Sandbox limits of one task. `None` fields take the cluster's defaults.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskLimits {
    /// Wall-time limit in milliseconds.
    pub time_ms: Option<u64>,
    /// Linear memory limit in bytes.
    pub memory_bytes: Option<u64>,
    /// Limit on the encoded result in bytes.
    pub result_bytes: Option<u64>,
    /// Limit on bytes written to stdout and stderr together.
    pub output_bytes: Option<u64>,
    /// Native stack the task's wasm may use, in bytes.
    pub stack_bytes: Option<u64>,
}

/// Fully resolved limits, as the worker enforces them.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvedLimits {
    /// Wall-time limit in milliseconds.
    pub time_ms: u64,
    /// Linear memory limit in bytes.
    pub memory_bytes: u64,
    /// Limit on the encoded result in bytes.
    pub result_bytes: u64,
    /// Limit on bytes written to stdout and stderr together.
    pub output_bytes: u64,
    /// Native stack the task's wasm may use, in bytes: between
    /// [`MIN_STACK`] and [`MAX_STACK`]; workers round it down to a power
    /// of two.
    pub stack_bytes: u64,
}

/// The smallest stack limit a worker enforces; smaller requests get this.
pub const MIN_STACK: u64 = 64 << 10;
/// The largest stack limit a worker enforces (its wasm threads' stacks are
/// larger by a margin for the host's own frames).
pub const MAX_STACK: u64 = 8 << 20;

impl Default for ResolvedLimits {
    fn default() -> Self {
        ResolvedLimits {
            time_ms: 60_000,
            memory_bytes: 256 << 20,
            result_bytes: 64 << 20,
            output_bytes: 1 << 20,
            stack_bytes: 512 << 10,
        }
    }
}

impl ResolvedLimits {
    /// The most a task may ask for on a cluster without other caps: a day
    /// of wall time, 4 GiB of memory (all wasm32 can address), the largest
    /// payload as result, 64 MiB of output and [`MAX_STACK`].
    pub const CLUSTER_MAX: ResolvedLimits = ResolvedLimits {
        time_ms: 24 * 3600 * 1000,
        memory_bytes: 4 << 30,
        result_bytes: MAX_PAYLOAD as u64,
        output_bytes: 64 << 20,
        stack_bytes: MAX_STACK,
    };

    /// Applies a task's requested limits, each capped at `max`.
    pub fn resolve(
        requested: &TaskLimits,
        defaults: &ResolvedLimits,
        max: &ResolvedLimits,
    ) -> ResolvedLimits {
        ResolvedLimits {
            time_ms: requested
                .time_ms
                .unwrap_or(defaults.time_ms)
                .min(max.time_ms),
            memory_bytes: requested
                .memory_bytes
                .unwrap_or(defaults.memory_bytes)
                .min(max.memory_bytes),
            result_bytes: requested
                .result_bytes
                .unwrap_or(defaults.result_bytes)
                .min(max.result_bytes),
            output_bytes: requested
                .output_bytes
                .unwrap_or(defaults.output_bytes)
                .min(max.output_bytes),
            stack_bytes: requested
                .stack_bytes
                .unwrap_or(defaults.stack_bytes)
                .min(max.stack_bytes)
                .clamp(MIN_STACK, MAX_STACK),
        }
    }
}

/// `secs` as a duration, if it is a positive number of seconds that fits
/// one (command-line timeouts).
pub fn positive_seconds(secs: f64) -> Option<std::time::Duration> {
    std::time::Duration::try_from_secs_f64(secs)
        .ok()
        .filter(|t| !t.is_zero())
}

/// Parses a byte size such as `4GiB`, `512MB`, `1e9` or `1048576`.
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| c.is_ascii_alphabetic() && c != 'e' && c != 'E')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a size (try 4GiB, 512MB, 1e9)"))?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" | "k" => 1e3,
        "mb" | "m" => 1e6,
        "gb" | "g" => 1e9,
        "tb" | "t" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        other => return Err(format!("unknown unit {other:?} in {s:?}")),
    };
    let v = n * mult;
    if !v.is_finite() || v < 0.0 || v > u64::MAX as f64 {
        return Err(format!("{s:?} is out of range"));
    }
    Ok(v as u64)
}

#[cfg(test)]
mod tests {
    use super::parse_bytes;

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("4GiB").unwrap(), 4 << 30);
        assert_eq!(parse_bytes("512MB").unwrap(), 512_000_000);
        assert_eq!(parse_bytes("1e9").unwrap(), 1_000_000_000);
        assert_eq!(parse_bytes("1048576").unwrap(), 1 << 20);
        assert_eq!(parse_bytes("1.5 KiB").unwrap(), 1536);
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("-1").is_err());
        assert!(parse_bytes("3 parsecs").is_err());
    }
}
