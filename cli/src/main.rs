//! `wask`: the command line of a wask cluster.
//!
//! # Layout
//! - [`cmd`]: one file per command (`tasks`, `submit`, `info`) and what they
//!   share: connecting, and [`cmd::UsageError`] for exit code 2.
//! - [`types`]: reads the type names of task signatures (`Vec<i64>`,
//!   `(i64,String)`, `[u8;4]`) into a [`types::Type`].
//! - [`json`]: converts JSON to postcard bytes and back by a
//!   [`types::Type`], for arguments and results.
//!
//! Exit codes: 0 on success, 1 when the work failed (a refused module, a
//! task error, a lost connection), 2 when the command line is wrong (clap's
//! own errors, a bad argument, an unknown task).

mod cmd;
mod json;
mod types;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// The command line of a wask cluster: list a module's tasks, submit a call
/// with JSON arguments, show the workers.
#[derive(Parser)]
#[command(
    name = "wask",
    version,
    about = "The command line of a wask cluster: list a module's tasks, submit a call with JSON arguments, show the workers.",
    after_help = "Exit codes: 0 success; 1 the work failed (refused module, task error, connection); 2 bad command line (bad argument, unknown task).\nLogs go to stderr; set RUST_LOG (default: warn)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the tasks of a module (a .wasm file) with their signatures,
    /// one per line, e.g. `inc(i64) -> i64`.
    Tasks(cmd::tasks::Args),
    /// Call a task on the cluster with JSON arguments and print its key and
    /// result.
    Submit(cmd::submit::Args),
    /// Show the cluster's workers and how many tasks it holds for you.
    Info(cmd::info::Args),
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Tasks(args) => cmd::tasks::run(args),
        Command::Submit(args) => cmd::submit::run(args).await,
        Command::Info(args) => cmd::info::run(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            if e.downcast_ref::<cmd::UsageError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
