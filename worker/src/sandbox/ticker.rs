//! The epoch ticker: a thread that advances the engines' epoch every tick,
//! which is what interrupts a task past its time limit.
//!
//! Each store gets a deadline of `ceil(time / tick) + 1` epochs. A late tick
//! only ever makes a timeout fire later than the limit, never earlier.

use super::tiers::Tiers;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Owns the ticker thread; dropping it stops and joins the thread.
pub(super) struct Ticker {
    /// Dropping the sender wakes the thread at once and ends it.
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Ticker {
    /// Starts a thread that advances the epoch of every engine of `tiers`
    /// every `tick`.
    pub(super) fn start(tiers: Arc<Tiers>, tick: Duration) -> std::io::Result<Ticker> {
        let (stop, stopped) = crossbeam_channel::bounded::<()>(0);
        let thread = std::thread::Builder::new()
            .name("wask-epoch".into())
            .stack_size(64 << 10)
            .spawn(move || tick_until_stopped(&tiers, tick, &stopped))?;
        Ok(Ticker {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

fn tick_until_stopped(tiers: &Tiers, tick: Duration, stopped: &Receiver<()>) {
    loop {
        match stopped.recv_timeout(tick) {
            Err(RecvTimeoutError::Timeout) => tiers.increment_epochs(),
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            // The thread cannot panic; if it somehow did there is nothing to add.
            let _ = thread.join();
        }
    }
}

/// The most epochs a deadline may be ahead: wasmtime adds the deadline to
/// the current epoch, which must not overflow. At one tick per nanosecond
/// this is still 146 years.
const MAX_TICKS: u64 = 1 << 62;

/// Epochs a store may run for under a time limit of `time_ms`:
/// `ceil(time_ms / tick) + 1`, capped at [`MAX_TICKS`].
pub(super) fn deadline_ticks(time_ms: u64, tick: Duration) -> u64 {
    let limit_ns = u128::from(time_ms) * 1_000_000;
    let tick_ns = tick.as_nanos().max(1);
    let ticks = limit_ns.div_ceil(tick_ns) + 1;
    u64::try_from(ticks).unwrap_or(MAX_TICKS).min(MAX_TICKS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_round_up_and_add_one() {
        let ms = Duration::from_millis(1);
        assert_eq!(deadline_ticks(0, ms), 1);
        assert_eq!(deadline_ticks(50, ms), 51);
        assert_eq!(deadline_ticks(5, Duration::from_millis(2)), 4);
        assert_eq!(deadline_ticks(u64::MAX, Duration::from_nanos(1)), MAX_TICKS);
    }
}
