//! [`Client::progress`]: a progress bar over futures, like dask's
//! `progress`.

use crate::client::Client;
use crate::future::Future;
use crate::registry::Status;
use std::time::Duration;

/// How a set of futures ended, as [`Client::progress`] counted them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// Futures that finished with a result.
    pub finished: usize,
    /// Futures that failed, were cancelled or lost their connection.
    pub failed: usize,
}

impl Client {
    /// Shows a progress bar on stderr (when it is a terminal) until every
    /// future has finished, then says how they ended; like dask's
    /// `progress(futures)`. Waiting does not fetch the results.
    pub async fn progress<T: Send + 'static>(&self, futures: &[Future<T>]) -> Progress {
        let bar = indicatif::ProgressBar::new(futures.len() as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "[{elapsed_precise}] {bar:40} {pos}/{len} tasks {msg}",
            )
            .expect("a valid template"),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        let mut tally = Progress::default();
        let mut done = self.as_completed(futures.to_vec());
        while let Some(f) = done.next().await {
            if matches!(f.holder.lock().status, Status::Done { .. }) {
                tally.finished += 1;
            } else {
                tally.failed += 1;
                bar.set_message(format!("({} failed)", tally.failed));
            }
            bar.inc(1);
        }
        bar.finish();
        tally
    }
}
