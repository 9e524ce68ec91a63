//! Calibrating `busy`: how many steps make one call take about 1 ms in a
//! sandbox on this machine (the peers use 18,000 Python steps, ~1 ms).

use crate::direct::DirectMath;
use std::time::{Duration, Instant};

/// What one `busy` call costs at the chosen size.
#[derive(Clone, Copy, Debug)]
pub struct Busy {
    /// Steps per call.
    pub iters: u64,
    /// Mean wall time of one call in a fresh sandbox, µs (the peers'
    /// `busy_serial_us`: 200 calls after 50 of warm-up).
    pub serial_us: f64,
    /// The same 200 steps run by one `busy_serial(200, iters)` call, per
    /// step, µs: what cpu_bound's serial baseline costs per task.
    pub in_serial_us: f64,
}

/// Steps whose call takes `target` (best of 5 timings of a 2^20-step call,
/// scaled), unless `iters` is given; then `serial_us` is measured.
pub fn busy(math: &DirectMath, iters: Option<u64>, target: Duration) -> anyhow::Result<Busy> {
    let func = math.func("busy")?;
    let iters = match iters {
        Some(i) => i,
        None => {
            const PROBE: u64 = 1 << 20;
            let mut best = Duration::MAX;
            for i in 0..5 {
                let t0 = Instant::now();
                let _: u64 = math.call(func, &(i as u64, PROBE))?;
                best = best.min(t0.elapsed());
            }
            let per_step = best.as_secs_f64() / PROBE as f64;
            ((target.as_secs_f64() / per_step) as u64).max(1)
        }
    };
    for i in 0..50u64 {
        let _: u64 = math.call(func, &(i, iters))?;
    }
    let t0 = Instant::now();
    for i in 0..200u64 {
        let _: u64 = math.call(func, &(i, iters))?;
    }
    let serial_us = t0.elapsed().as_secs_f64() / 200.0 * 1e6;
    let t0 = Instant::now();
    let _: u64 = math.call(math.func("busy_serial")?, &(200u64, iters))?;
    let in_serial_us = t0.elapsed().as_secs_f64() / 200.0 * 1e6;
    Ok(Busy {
        iters,
        serial_us,
        in_serial_us,
    })
}
