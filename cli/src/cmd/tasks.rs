//! `wask tasks MODULE.wasm`: the tasks a module declares, read locally with
//! the same checks the cluster applies.

use anyhow::Context;
use std::path::PathBuf;

/// The options of `wask tasks`.
#[derive(clap::Args)]
pub struct Args {
    /// The module: a .wasm file built with `#[wask_guest::task]`.
    #[arg(value_name = "MODULE.wasm")]
    module: PathBuf,
}

/// Prints each task's signature on a line of its own; a module the cluster
/// would refuse is an error with the reason.
pub fn run(args: Args) -> anyhow::Result<()> {
    let wasm = std::fs::read(&args.module)
        .with_context(|| format!("reading {}", args.module.display()))?;
    let info = wask_proto::module::inspect(&wasm, &Default::default())
        .with_context(|| format!("module {} refused", args.module.display()))?;
    for task in &info.tasks {
        println!("{}", task.display());
    }
    Ok(())
}
