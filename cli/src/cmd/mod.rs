//! The commands, one per file, and what they share.

pub mod info;
pub mod submit;
pub mod tasks;

use anyhow::Context;
use std::path::PathBuf;

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
}

impl Connect {
    /// Connects to the scheduler.
    pub async fn client(&self) -> anyhow::Result<wask::Client> {
        let mut builder = wask::Client::builder(self.scheduler_file.clone());
        if let Some(token) = &self.token {
            builder = builder.token(token.clone());
        }
        builder
            .connect()
            .await
            .with_context(|| format!("connecting with {}", self.scheduler_file.display()))
    }
}
