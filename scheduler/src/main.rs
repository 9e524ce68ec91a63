//! `wask-scheduler`: the scheduler of a wask cluster, as a process.

use anyhow::Context;
use clap::Parser;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use wask_net::{Identity, secret_file};
use wask_proto::limits::ResolvedLimits;
use wask_proto::scheduler_file::SchedulerFile;
use wask_scheduler::server::{Authenticator, OpenAccess, Scheduler, SchedulerConfig};
use wask_scheduler::state::CoreConfig;
use wask_scheduler::tenants::Tenants;

/// The scheduler of a wask cluster: accepts clients and workers over QUIC
/// (TLS always on) and dispatches tasks to the workers.
#[derive(Parser, Debug)]
#[command(
    name = "wask-scheduler",
    version,
    about = "The scheduler of a wask cluster: accepts clients and workers over QUIC (always TLS) and dispatches tasks to the workers."
)]
struct Args {
    /// Interface to listen on (0.0.0.0 for all).
    #[arg(long, default_value = "0.0.0.0")]
    host: IpAddr,
    /// UDP port to listen on; 0 picks a free one.
    #[arg(long, default_value_t = 8786)]
    port: u16,
    /// Write the address and TLS certificate here (JSON) once listening;
    /// clients, workers and the CLI connect with it.
    #[arg(long, value_name = "FILE")]
    scheduler_file: Option<PathBuf>,
    /// Address written to the scheduler file, when clients must use another
    /// one than the listening address (default: the host, or 127.0.0.1 when
    /// listening on all interfaces).
    #[arg(long, value_name = "HOST:PORT")]
    advertise: Option<String>,
    /// PEM certificate to present instead of a generated self-signed one,
    /// followed by any intermediate CAs. The scheduler file carries it, and
    /// clients using that file pin it as it is. Clients and workers given
    /// the issuing CA instead (wask-worker --tls-ca, Client tls_ca,
    /// WASK_TLS_CA) check the chain and the DNS name `wask`, which must be
    /// among its subject alternative names.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM (PKCS#8) private key of --tls-cert.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// File holding the cluster secret workers must present. Created with a
    /// fresh secret (mode 0600) if missing. Default: <scheduler-file>.secret,
    /// else ./wask-cluster.secret. WASK_CLUSTER_SECRET overrides it.
    #[arg(long, value_name = "FILE")]
    secret_file: Option<PathBuf>,
    /// Tasks queued per worker thread beyond the running one.
    #[arg(long, default_value_t = 256)]
    saturation: u32,
    /// Tenant configuration (TOML): tokens (as blake3 hashes), quotas,
    /// fair-share weights and per-task limits. Without it, every client is
    /// the one default tenant and no token is needed.
    #[arg(long, value_name = "TOML")]
    config: Option<PathBuf>,
    /// Seconds a client or worker may take to say hello after connecting
    /// before it is dropped.
    #[arg(long, value_name = "SECONDS", default_value_t = wask_proto::limits::HELLO_TIMEOUT_SECS as f64)]
    hello_timeout: f64,
    /// Print the hash to put in `token_blake3` for TOKEN, and exit.
    #[arg(long, value_name = "TOKEN")]
    hash_token: Option<String>,
}

fn secret(args: &Args) -> anyhow::Result<String> {
    if let Ok(s) = std::env::var("WASK_CLUSTER_SECRET") {
        anyhow::ensure!(
            s.len() >= 16,
            "WASK_CLUSTER_SECRET is shorter than 16 characters"
        );
        return Ok(s);
    }
    let path = args
        .secret_file
        .clone()
        .unwrap_or_else(|| match &args.scheduler_file {
            Some(f) => PathBuf::from(format!("{}.secret", f.display())),
            None => PathBuf::from("wask-cluster.secret"),
        });
    if path.exists() {
        return secret_file::read(&path).with_context(|| format!("reading {}", path.display()));
    }
    let s = secret_file::generate();
    secret_file::write(&path, &s).with_context(|| format!("writing {}", path.display()))?;
    tracing::info!(path = %path.display(), "wrote a new cluster secret");
    Ok(s)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = Args::parse();
    let mut shutdown = wask_net::shutdown::Shutdown::listen();
    if let Some(token) = &args.hash_token {
        println!("{}", wask_scheduler::tenants::hash_token(token));
        return Ok(());
    }
    let identity = match (&args.tls_cert, &args.tls_key) {
        (Some(c), Some(k)) => {
            let cert =
                std::fs::read_to_string(c).with_context(|| format!("reading {}", c.display()))?;
            let key =
                std::fs::read_to_string(k).with_context(|| format!("reading {}", k.display()))?;
            Identity::from_pem(&cert, &key)?
        }
        _ => Identity::self_signed()?,
    };
    let hello_timeout = wask_proto::limits::positive_seconds(args.hello_timeout)
        .context("--hello-timeout must be a positive number of seconds")?;
    let cluster_secret = secret(&args)?;
    let max_limits = ResolvedLimits::CLUSTER_MAX;
    let defaults = ResolvedLimits::default();
    let (auth, tenants): (Arc<dyn Authenticator>, _) = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let t = Tenants::parse(&text, defaults, max_limits)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            for (id, name) in t.names() {
                tracing::info!(tenant = id, %name, "tenant configured");
            }
            let policies = t.policies();
            (Arc::new(t), policies)
        }
        None => (Arc::new(OpenAccess), Vec::new()),
    };
    let scheduler = Scheduler::start(SchedulerConfig {
        listen: SocketAddr::new(args.host, args.port),
        identity,
        cluster_secret,
        auth,
        core: CoreConfig {
            saturation: args.saturation.max(1),
            defaults,
            max_limits,
            tenants,
        },
        hello_timeout,
    })
    .await?;
    let bound = scheduler.address();
    let advertised = args.advertise.clone().unwrap_or_else(|| {
        if bound.ip().is_unspecified() {
            SocketAddr::new([127, 0, 0, 1].into(), bound.port()).to_string()
        } else {
            bound.to_string()
        }
    });
    if let Some(path) = &args.scheduler_file {
        let json = serde_json::to_string_pretty(&SchedulerFile::new(
            advertised.clone(),
            scheduler.cert_der(),
        ))?;
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, json).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
        tracing::info!(path = %path.display(), "wrote scheduler file");
    }
    println!("wask-scheduler listening on {bound} (advertised as {advertised})");
    shutdown.signalled().await;
    tracing::info!("shutting down");
    scheduler.shutdown().await;
    Ok(())
}
