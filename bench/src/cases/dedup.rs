//! dedup: the same pure call twice gives one key and one execution,
//! counted from the workers' `executed` totals in `client.info()`.

use crate::report::Line;
use crate::setup::Bench;
use std::time::{SystemTime, UNIX_EPOCH};

/// Runs the case. The argument is negative and new per run, so that no
/// earlier case (or run against the same cluster) already holds the key.
pub async fn run(b: &Bench) -> anyhow::Result<Line> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let x = -((nanos % 1_000_000_000_000) as i64) - 1;
    let before = b.executed().await?;
    let f1 = b.client.submit(&b.math.inc, (x,))?;
    let f2 = b.client.submit(&b.math.inc, (x,))?;
    let (r1, r2) = (f1.result().await?, f2.result().await?);
    let executions = b.executed().await? - before;
    Ok(Line::new("dedup")
        .with("key1", f1.key())
        .with("key2", f2.key())
        .with("keys_equal", f1.key() == f2.key())
        .with("results", [r1, r2])
        .with("executions", executions)
        .with("computed_once", executions == 1))
}
