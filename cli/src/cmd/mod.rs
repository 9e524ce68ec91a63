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
    #[arg(long, value_name = "FILE", required_unless_present = "scheduler")]
    pub scheduler_file: Option<PathBuf>,
    /// Scheduler address instead of a scheduler file; the certificate to
    /// trust comes from --tls-ca (or $WASK_TLS_CA).
    #[arg(long, value_name = "HOST:PORT", conflicts_with = "scheduler_file")]
    pub scheduler: Option<String>,
    /// Certificate file (PEM or DER) to trust: the CA that issued the
    /// scheduler's certificate (which must carry the DNS name `wask`), or
    /// the scheduler's own certificate. Default: $WASK_TLS_CA with
    /// --scheduler; the scheduler file's certificate with --scheduler-file.
    #[arg(long, value_name = "CERT")]
    pub tls_ca: Option<PathBuf>,
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
    wask_proto::limits::positive_seconds(secs)
        .ok_or_else(|| "must be a positive number of seconds".into())
}

impl Connect {
    /// Connects to the scheduler.
    pub async fn client(&self) -> anyhow::Result<wask::Client> {
        match (&self.scheduler_file, &self.scheduler) {
            (Some(file), _) => {
                self.connect(file.clone(), &file.display().to_string())
                    .await
            }
            (None, Some(address)) => self.connect(address.clone(), address).await,
            (None, None) => Err(anyhow!("give --scheduler-file or --scheduler")),
        }
    }

    async fn connect<S: wask::ToScheduler>(
        &self,
        target: S,
        name: &str,
    ) -> anyhow::Result<wask::Client> {
        let mut builder = wask::Client::builder(target);
        if let Some(token) = &self.token {
            builder = builder.token(token.clone());
        }
        if let Some(ca) = &self.tls_ca {
            builder = builder.tls_ca(ca.clone());
        }
        let context = || format!("connecting with {name}");
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
