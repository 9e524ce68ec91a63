//! The commands, one per file, and what they share.

pub mod info;
pub mod submit;
pub mod tasks;

use anyhow::{Context, anyhow};
use std::path::PathBuf;
use std::time::Duration;

/// A mistake on the command line: `main` exits with 2 for it (as clap does
/// for its own), and with 1 for every other error.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Where the scheduler is and who we are: the options of every command that
/// talks to a cluster.
#[derive(clap::Args)]
pub struct Connect {
    /// Scheduler file (JSON with the address and the certificate to pin),
    /// as written by `wask-scheduler --scheduler-file`.
    #[arg(long, value_name = "FILE")]
    pub scheduler_file: PathBuf,
    /// Tenant token to present. Default: $WASK_TOKEN, if set (preferred: a
    /// command line is visible to other users of the machine).
    #[arg(long, value_name = "TOKEN")]
    pub token: Option<String>,
    /// Seconds to wait for the scheduler to answer before giving up (a
    /// scheduler that is gone never answers: QUIC runs over UDP).
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = parse_seconds)]
    pub connect_timeout: Duration,
}

/// A positive number of seconds, e.g. `2.5`.
pub fn parse_seconds(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if secs.is_nan() || secs <= 0.0 {
        return Err("must be more than 0 seconds".into());
    }
    Duration::try_from_secs_f64(secs).map_err(|e| e.to_string())
}

impl Connect {
    /// Connects to the scheduler.
    pub async fn client(&self) -> anyhow::Result<wask::Client> {
        let mut builder = wask::Client::builder(self.scheduler_file.clone());
        if let Some(token) = &self.token {
            builder = builder.token(token.clone());
        }
        let context = || format!("connecting with {}", self.scheduler_file.display());
        match tokio::time::timeout(self.connect_timeout, builder.connect()).await {
            Ok(connected) => connected.with_context(context),
            Err(_) => Err(anyhow!(
                "no answer from the scheduler within {:?}",
                self.connect_timeout
            ))
            .with_context(context),
        }
    }
}

/// Closes the connection and waits until the scheduler has been told: the
/// process exits right after, and a close that never left would leave the
/// scheduler holding this client's keys until the idle timeout.
pub async fn close(client: wask::Client) {
    client.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds() {
        assert_eq!(parse_seconds("2.5").unwrap(), Duration::from_millis(2500));
        assert_eq!(parse_seconds("10").unwrap(), Duration::from_secs(10));
        assert!(parse_seconds("0").is_err());
        assert!(parse_seconds("-1").is_err());
        assert!(parse_seconds("NaN").is_err());
        assert!(parse_seconds("inf").is_err());
        assert!(parse_seconds("soon").is_err());
    }
}
