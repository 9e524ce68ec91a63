//! Output and statistics: JSON lines, rounding, nearest-rank percentiles.

use serde_json::Value;
use std::io::Write;

/// Prints one JSON object on its own line and flushes, so that a reader
/// sees each case as soon as it is done.
pub fn emit(line: Value) {
    let mut out = std::io::stdout().lock();
    // A closed stdout (e.g. `| head`) is not worth a panic.
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// `x` rounded to `digits` decimals, as the peers' `round(x, digits)`.
pub fn round(x: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (x * scale).round() / scale
}

/// Nearest-rank percentile of sorted values, exactly as the peers compute
/// it: the value at rank `ceil(p/100 * n)` (1-based), clamped.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let k = (p / 100.0 * sorted.len() as f64).ceil() as isize - 1;
    sorted[k.clamp(0, sorted.len() as isize - 1) as usize]
}

/// The arithmetic mean (NaN when empty).
pub fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_matches_the_peers() {
        let v: Vec<f64> = (1..=1000).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 500.0);
        assert_eq!(percentile(&v, 99.0), 990.0);
        assert_eq!(percentile(&[3.0], 99.0), 3.0);
        assert_eq!(round(1.23456, 2), 1.23);
    }
}
