//! Output and statistics: JSON lines with their fields in order,
//! rounding, nearest-rank percentiles.

use serde::Serialize;
use serde_json::Value;
use std::io::Write;

/// One JSON object, its fields in the order they were added (`case`
/// first, as the peers print them).
#[derive(Clone, Debug)]
pub struct Line(Vec<(&'static str, Value)>);

impl Line {
    /// A line whose `case` field is `case`.
    pub fn new(case: &str) -> Line {
        Line(vec![("case", Value::from(case))])
    }

    /// Adds (or replaces) a field.
    pub fn with(mut self, key: &'static str, value: impl Serialize) -> Line {
        self.set(key, value);
        self
    }

    /// Adds (or replaces) a field in place.
    pub fn set(&mut self, key: &'static str, value: impl Serialize) {
        let value = serde_json::to_value(value).unwrap_or(Value::Null);
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.0.push((key, value)),
        }
    }

    /// The compact JSON text.
    pub fn render(&self) -> String {
        let fields: Vec<String> = self
            .0
            .iter()
            .map(|(k, v)| format!("{}:{v}", Value::from(*k)))
            .collect();
        format!("{{{}}}", fields.join(","))
    }
}

/// Prints one line and flushes, so that a reader sees each case as soon
/// as it is done.
pub fn emit(line: &Line) {
    let mut out = std::io::stdout().lock();
    // A closed stdout (e.g. `| head`) is not worth a panic.
    let _ = writeln!(out, "{}", line.render());
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

    #[test]
    fn lines_keep_their_order() {
        let mut l = Line::new("x").with("b", 1).with("a", [1.5, 2.0]);
        l.set("b", "two");
        assert_eq!(l.render(), r#"{"case":"x","b":"two","a":[1.5,2.0]}"#);
        let parsed: Value = serde_json::from_str(&l.render()).unwrap();
        assert_eq!(parsed["b"], "two");
    }
}
