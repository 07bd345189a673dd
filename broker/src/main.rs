//! `foresight-broker`: the thin binary over the library.
//!
//! * `foresight-broker [--config FILE] [--listen ADDR] [--cpu-millicores N] ...` serves
//!   clients. With no arguments: loopback, the machine's capacity, no tokens, extension
//!   origins only. Hosted: a TOML file ([`foresight_broker::settings`]) for tokens, quotas,
//!   limits and autoscaling; every flag also reads an environment variable
//!   (`FORESIGHT_BROKER_*`), and flags and environment win over the file. Once bound it
//!   prints exactly one line to stdout, `foresight-broker listening on ws://ADDR` (`wss://`
//!   with `--tls-cert` and `--tls-key` or a `[tls]` table; the real
//!   port when ADDR asks for port 0), so a parent process can wait for it; everything else,
//!   including every broker event, is logged to stderr (`RUST_LOG`, default `info`).
//!   `--metrics-listen ADDR` serves Prometheus metrics there. SIGINT and SIGTERM shut it
//!   down gracefully: notice to every lease, then drain.
//! * `foresight-broker executor` is executor mode: the broker starts itself this way, once per
//!   remote worker. It speaks frames on stdin/stdout and is not meant for people.

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

use foresight_broker::settings::{self, Addresses};
use foresight_broker::{BrokerConfig, ExecutorCommand, Server};
use foresight_shared::ids::DEFAULT_BROKER_ADDR;
use tokio::sync::broadcast::error::RecvError;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Parser)]
#[command(name = "foresight-broker", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// A TOML configuration file (tokens, quotas, limits, autoscaling).
    #[arg(long, env = "FORESIGHT_BROKER_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on (port 0 picks a free port) [default: 127.0.0.1:47800].
    #[arg(long, env = "FORESIGHT_BROKER_LISTEN")]
    listen: Option<String>,
    /// Serve Prometheus metrics (`GET /metrics`) on this address.
    #[arg(long, env = "FORESIGHT_BROKER_METRICS_LISTEN")]
    metrics_listen: Option<String>,
    /// CPU in the pool, in millicores [default: 1000 per logical CPU].
    #[arg(long, env = "FORESIGHT_BROKER_CPU_MILLICORES")]
    cpu_millicores: Option<u64>,
    /// Memory in the pool, in bytes [default: half of this machine's memory].
    #[arg(long, env = "FORESIGHT_BROKER_MEMORY_BYTES")]
    memory_bytes: Option<u64>,
    /// Longest lease granted or renewed, in milliseconds [default: 3600000].
    #[arg(long, env = "FORESIGHT_BROKER_MAX_TTL_MS")]
    max_ttl_ms: Option<u64>,
    /// Notice a preempted lease gets before it ends, in milliseconds [default: 1000].
    #[arg(long, env = "FORESIGHT_BROKER_REVOKE_GRACE_MS")]
    revoke_grace_ms: Option<u64>,
    /// Notice every lease gets on shutdown, in milliseconds [default: 2000].
    #[arg(long, env = "FORESIGHT_BROKER_SHUTDOWN_GRACE_MS")]
    shutdown_grace_ms: Option<u64>,
    /// Open connections, all clients together [default: 4096].
    #[arg(long, env = "FORESIGHT_BROKER_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
    /// Messages per second per connection, 0 for no limit [default: 0].
    #[arg(long, env = "FORESIGHT_BROKER_MESSAGES_PER_S")]
    messages_per_s: Option<u32>,
    /// Serve wss: the PEM certificate chain (with --tls-key).
    #[arg(long, env = "FORESIGHT_BROKER_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// Serve wss: the PEM private key (with --tls-cert).
    #[arg(long, env = "FORESIGHT_BROKER_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Page origins allowed to connect (exact, or a prefix ending in `*`); repeat or
    /// separate with commas [default: chrome-extension://*, moz-extension://*].
    #[arg(long, env = "FORESIGHT_BROKER_ALLOWED_ORIGINS", value_delimiter = ',')]
    allowed_origin: Vec<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one remote worker, speaking frames on stdin/stdout (started by the broker itself).
    Executor,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Executor) = cli.command {
        return foresight_broker::executor::main();
    }
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// Defaults, then the file, then environment and flags.
fn configure(cli: &Cli) -> Result<(BrokerConfig, Addresses), String> {
    let executor = ExecutorCommand::current_exe()
        .map_err(|e| format!("cannot find this executable to run executors: {e}"))?;
    let mut config = BrokerConfig::detect(executor);
    let mut addresses = match &cli.config {
        Some(path) => settings::load(path, &mut config).map_err(|e| e.to_string())?,
        None => Addresses::default(),
    };
    let set = |target: &mut u64, value: Option<u64>| {
        if let Some(v) = value {
            *target = v;
        }
    };
    set(&mut config.capacity.cpu_millicores, cli.cpu_millicores);
    set(&mut config.capacity.memory_bytes, cli.memory_bytes);
    set(&mut config.max_ttl_ms, cli.max_ttl_ms);
    set(&mut config.revoke_grace_ms, cli.revoke_grace_ms);
    set(&mut config.shutdown_grace_ms, cli.shutdown_grace_ms);
    if let Some(n) = cli.max_connections {
        config.limits.max_connections = n;
    }
    if let Some(n) = cli.messages_per_s {
        config.limits.messages_per_s = n;
    }
    if let (Some(cert), Some(key)) = (&cli.tls_cert, &cli.tls_key) {
        config.tls = Some(foresight_broker::tls::load(cert, key).map_err(|e| e.to_string())?);
    }
    if !cli.allowed_origin.is_empty() {
        config.allowed_origins = cli.allowed_origin.clone();
    }
    if cli.listen.is_some() {
        addresses.listen = cli.listen.clone();
    }
    if cli.metrics_listen.is_some() {
        addresses.metrics_listen = cli.metrics_listen.clone();
    }
    Ok((config, addresses))
}

async fn serve(cli: Cli) -> Result<(), String> {
    let (config, addresses) = configure(&cli)?;
    let listen = addresses
        .listen
        .unwrap_or_else(|| DEFAULT_BROKER_ADDR.to_string());
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("cannot read the bound address: {e}"))?;
    tracing::info!(
        cpu_millicores = config.capacity.cpu_millicores,
        memory_bytes = config.capacity.memory_bytes,
        max_ttl_ms = config.max_ttl_ms,
        scaling = ?config.scaling,
        tokens = config.tokens.len(),
        allowed_origins = ?config.allowed_origins,
        "pool"
    );

    let server = Server::new(config);
    let (stop_metrics, metrics_stopped) = tokio::sync::oneshot::channel::<()>();
    let metrics = match addresses.metrics_listen {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(&addr)
                .await
                .map_err(|e| format!("cannot listen for metrics on {addr}: {e}"))?;
            tracing::info!("metrics on http://{addr}/metrics");
            Some(tokio::spawn(server.handle().serve_metrics(
                listener,
                async {
                    let _ = metrics_stopped.await;
                },
            )))
        }
        None => None,
    };
    let mut events = server.subscribe();
    tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(event) => tracing::info!(target: "foresight_broker::event", "{event}"),
                Err(RecvError::Lagged(n)) => tracing::warn!("event log skipped {n} events"),
                Err(RecvError::Closed) => break,
            }
        }
    });

    let mut stdout = std::io::stdout().lock();
    let scheme = if server.config().tls.is_some() {
        "wss"
    } else {
        "ws"
    };
    writeln!(stdout, "foresight-broker listening on {scheme}://{addr}")
        .and_then(|()| stdout.flush())
        .map_err(|e| format!("cannot write to stdout: {e}"))?;
    drop(stdout);

    server
        .run(listener, shutdown_signal())
        .await
        .map_err(|e| format!("server failed: {e}"))?;
    let _ = stop_metrics.send(());
    if let Some(metrics) = metrics {
        let _ = metrics.await;
    }
    tracing::info!("shut down");
    Ok(())
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(e) => {
                tracing::warn!("cannot watch SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        result = tokio::signal::ctrl_c() => {
            if let Err(e) = result {
                tracing::warn!("cannot watch SIGINT: {e}");
                std::future::pending::<()>().await;
            }
        }
        () = terminate => {}
    }
    tracing::info!("shutdown requested");
}
