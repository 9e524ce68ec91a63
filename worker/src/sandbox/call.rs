//! The host state of one call: what a `Store` carries for the WASI and wask
//! host functions, and what they leave behind for the run to report.
//!
//! A `Call` is built fresh for every task and dropped with its store, so
//! nothing (output, clock, random stream) leaks from one task to the next.
//! Building one allocates nothing: the output buffers grow only when the
//! guest writes.

use super::limits::CallLimiter;
use std::time::Instant;
use wask_proto::TaskError;
use wask_proto::limits::ResolvedLimits;
use wasmtime::ModuleExport;

/// Longest panic message kept, in bytes.
pub(super) const PANIC_MESSAGE_MAX: usize = 4 << 10;

/// Per-call host state (the `T` of `Store<T>`).
pub(crate) struct Call {
    /// Memory and table limits.
    pub(super) limiter: CallLimiter,
    /// The module's `memory` export, for host functions to find the guest's
    /// memory without a string lookup.
    pub(super) memory: ModuleExport,
    /// The task's limits.
    pub(super) limits: ResolvedLimits,
    /// When the run began (before instantiation).
    pub(super) started: Instant,
    /// What the guest wrote to fd 1.
    pub(super) stdout: Vec<u8>,
    /// What the guest wrote to fd 2.
    pub(super) stderr: Vec<u8>,
    /// The message the guest's panic hook reported, if any.
    pub(super) panic: Option<String>,
    /// Why a host function stopped the guest (output limit, a sleep past the
    /// time limit, `proc_exit`), if one did. It takes precedence over the
    /// trap that carried it out of wasm.
    pub(super) fault: Option<TaskError>,
    /// Whether the call trapped because the guest's shadow stack ran out
    /// (see [`super::stack`]).
    pub(super) stack_ran_out: bool,
    /// Virtual nanoseconds elapsed: advanced only by sleeps.
    pub(super) clock_ns: u64,
    /// Key of the random stream.
    pub(super) seed: [u8; 32],
    /// The random stream, made on the first `random_get`.
    pub(super) random: Option<blake3::OutputReader>,
    /// Set by the worker when nobody wants the result any more.
    pub(super) cancel: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    /// [`RunRequest::on_check`](super::RunRequest::on_check).
    pub(super) on_check: Option<super::CheckHook>,
}

impl Call {
    /// The state of a call about to start.
    pub(super) fn new(
        limiter: CallLimiter,
        memory: ModuleExport,
        limits: ResolvedLimits,
        seed: [u8; 32],
        started: Instant,
    ) -> Call {
        Call {
            limiter,
            memory,
            limits,
            started,
            stdout: Vec::new(),
            stderr: Vec::new(),
            panic: None,
            fault: None,
            stack_ran_out: false,
            clock_ns: 0,
            seed,
            random: None,
            cancel: None,
            on_check: None,
        }
    }

    /// Records why the guest must stop and returns the error that unwinds it
    /// out of wasm.
    pub(super) fn stop(&mut self, why: TaskError) -> wasmtime::Error {
        let error = wasmtime::Error::msg(why.to_string());
        self.fault.get_or_insert(why);
        error
    }

    /// Bytes written to stdout and stderr so far.
    pub(super) fn output_len(&self) -> u64 {
        (self.stdout.len() + self.stderr.len()) as u64
    }

    /// Fills `buf` from the random stream keyed by the seed, continuing where
    /// the last call left off.
    pub(super) fn fill_random(&mut self, buf: &mut [u8]) {
        let seed = &self.seed;
        self.random
            .get_or_insert_with(|| blake3::Hasher::new_keyed(seed).finalize_xof())
            .fill(buf);
    }

    /// Keeps the first panic message, cut to [`PANIC_MESSAGE_MAX`] bytes at a
    /// character boundary.
    pub(super) fn record_panic(&mut self, message: &[u8]) {
        if self.panic.is_some() {
            return;
        }
        let mut text =
            String::from_utf8_lossy(&message[..message.len().min(PANIC_MESSAGE_MAX)]).into_owned();
        if text.len() > PANIC_MESSAGE_MAX {
            // Lossy replacement can lengthen the text.
            let mut end = PANIC_MESSAGE_MAX;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
        }
        self.panic = Some(text);
    }
}
