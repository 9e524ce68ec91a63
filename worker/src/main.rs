//! `wask-worker`: a worker of a wask cluster, as a process.

use anyhow::Context;
use clap::Parser;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use wask_proto::scheduler_file::SchedulerFile;
use wask_worker::sandbox::{Compiler, SandboxConfig};
use wask_worker::server::{Worker, WorkerConfig};

/// A worker of a wask cluster: runs tasks in fresh wasmtime sandboxes on its
/// own threads and holds their results in memory.
#[derive(Parser, Debug)]
#[command(
    name = "wask-worker",
    version,
    about = "A worker of a wask cluster: runs each task in a fresh wasmtime sandbox and holds results in memory."
)]
struct Args {
    /// Scheduler address (host:port); needs --tls-ca. Or use
    /// --scheduler-file.
    #[arg(
        value_name = "SCHEDULER",
        required_unless_present = "scheduler_file",
        requires = "tls_ca"
    )]
    scheduler: Option<String>,
    /// Scheduler file written by `wask-scheduler --scheduler-file`.
    #[arg(long, value_name = "FILE", conflicts_with = "scheduler")]
    scheduler_file: Option<PathBuf>,
    /// With SCHEDULER: the certificate to trust (PEM, first one, or DER).
    /// Either the CA that issued the scheduler's certificate, which must
    /// then carry the DNS name `wask` among its subject alternative names
    /// (that name is checked, not the host dialed), or the scheduler's own
    /// certificate, pinned as it is.
    #[arg(long, value_name = "CERT")]
    tls_ca: Option<PathBuf>,
    /// File holding the cluster secret (default: <scheduler-file>.secret).
    /// WASK_CLUSTER_SECRET overrides it.
    #[arg(long, value_name = "FILE")]
    secret_file: Option<PathBuf>,
    /// Threads running wasm (default: the number of cores).
    #[arg(long)]
    nthreads: Option<usize>,
    /// Bytes of results this worker may hold, e.g. 4GiB. Past it, new
    /// results are refused with a clear error until memory is released.
    #[arg(long, default_value = "4GiB", value_parser = wask_proto::limits::parse_bytes)]
    memory_limit: u64,
    /// Name shown in `wask info` and logs (default: the peer address).
    #[arg(long)]
    name: Option<String>,
    /// Interface to listen on for peer workers.
    #[arg(long, default_value = "0.0.0.0")]
    host: IpAddr,
    /// UDP port for peer workers; 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Address peers should use to reach this worker (default: the local
    /// address of the connection to the scheduler, with the bound port).
    #[arg(long, value_name = "HOST:PORT")]
    advertise: Option<String>,
    /// Seconds the compilation of one module may take. Modules compile in
    /// a child process, which is killed past this; the module is refused.
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0)]
    compile_timeout: f64,
    /// Address space the compile process may map, e.g. 2GiB; a module
    /// needing more to compile is refused.
    #[arg(long, value_name = "BYTES", default_value = "2GiB", value_parser = wask_proto::limits::parse_bytes)]
    compile_memory: u64,
    /// Seconds a connection to the peer port may take to say hello (with
    /// the cluster secret) before it is dropped.
    #[arg(long, value_name = "SECONDS", default_value_t = wask_proto::limits::HELLO_TIMEOUT_SECS as f64)]
    hello_timeout: f64,
}

/// The first argument that makes this binary the compile process of a
/// worker (see `wask_worker::sandbox::Compiler`), not a worker.
const COMPILE_MODE: &str = "--compile-module";

fn main() -> std::process::ExitCode {
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == COMPILE_MODE)
    {
        return wask_worker::sandbox::serve_compile();
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("Error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e:?}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn target(args: &Args) -> anyhow::Result<(SocketAddr, Vec<u8>)> {
    use std::net::ToSocketAddrs;
    let resolve = |s: &str| -> anyhow::Result<SocketAddr> {
        s.to_socket_addrs()?
            .next()
            .with_context(|| format!("{s} resolves to nothing"))
    };
    if let Some(f) = &args.scheduler_file {
        let text =
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
        let file: SchedulerFile =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", f.display()))?;
        let cert = file
            .cert_der()
            .context("scheduler file: cert_der_hex is not hex")?;
        return Ok((resolve(&file.address)?, cert));
    }
    let addr = resolve(args.scheduler.as_deref().expect("clap requires it"))?;
    let ca = args.tls_ca.as_ref().expect("clap requires it");
    let bytes = std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
    let cert = wask_net::tls::certificate_from_file(&bytes)
        .with_context(|| format!("reading {}", ca.display()))?;
    Ok((addr, cert))
}

fn secret(args: &Args) -> anyhow::Result<String> {
    if let Ok(s) = std::env::var("WASK_CLUSTER_SECRET") {
        return Ok(s);
    }
    let path = match (&args.secret_file, &args.scheduler_file) {
        (Some(p), _) => p.clone(),
        (None, Some(f)) => PathBuf::from(format!("{}.secret", f.display())),
        (None, None) => {
            anyhow::bail!("no cluster secret: pass --secret-file or set WASK_CLUSTER_SECRET")
        }
    };
    wask_net::secret_file::read(&path)
        .with_context(|| format!("reading the cluster secret from {}", path.display()))
}

async fn run() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = Args::parse();
    let mut shutdown = wask_net::shutdown::Shutdown::listen();
    let (scheduler, scheduler_cert) = target(&args)?;
    let nthreads = args.nthreads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    anyhow::ensure!(nthreads >= 1, "--nthreads must be at least 1");
    let compile_timeout = wask_proto::limits::positive_seconds(args.compile_timeout)
        .context("--compile-timeout must be a positive number of seconds")?;
    let hello_timeout = wask_proto::limits::positive_seconds(args.hello_timeout)
        .context("--hello-timeout must be a positive number of seconds")?;
    let compiler = Compiler::Subprocess {
        program: std::env::current_exe().context("finding this program to run its compiler")?,
        args: vec![COMPILE_MODE.into()],
        time_limit: compile_timeout,
        memory_limit: args.compile_memory,
    };
    let config = WorkerConfig {
        scheduler,
        scheduler_cert,
        secret: secret(&args)?,
        name: args.name.clone().unwrap_or_default(),
        nthreads,
        memory_limit: args.memory_limit,
        listen: SocketAddr::new(args.host, args.port),
        advertise: args.advertise.clone(),
        hello_timeout,
        sandbox: SandboxConfig {
            max_instances: nthreads as u32 + 2,
            compiler,
            ..SandboxConfig::default()
        },
    };
    let mut worker = Worker::start(config).await?;
    println!(
        "wask-worker {} serving peers on {}",
        worker.id(),
        worker.peer_address()
    );
    tokio::select! {
        _ = shutdown.signalled() => {
            tracing::info!("shutting down: telling the scheduler");
            worker.shutdown().await;
        }
        _ = worker.closed() => {
            anyhow::bail!("the scheduler connection ended");
        }
    }
    Ok(())
}
