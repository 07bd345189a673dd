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
//! * `foresight-broker node-sandbox ... -- <node arguments>` is the Node backend's launcher
//!   (it confines itself, then becomes node); also started by the broker only.
//! * `foresight-broker doctor` says which isolation layers this host provides for the Node
//!   backend and whether the broker would enable it (the same check runs at every start).
//!
//! Node workers: `--node auto|on|off` (default auto: enabled when node >= 20 is found and
//! every isolation layer is present), `--node-path`, `--node-accept-weaker-sandbox`,
//! `--node-pool-size`, `--node-max-workers`, `--default-engine quickjs|node`, or the `[node]`
//! table of the TOML file.

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

use foresight_broker::executor::node::{LaunchOptions, Layer};
use foresight_broker::node::{NodeBackend, NodeMode, doctor};
use foresight_broker::settings::{self, Addresses};
use foresight_broker::{BrokerConfig, ExecutorCommand, Server};
use foresight_shared::ids::DEFAULT_BROKER_ADDR;
use foresight_shared::protocol::broker::EngineKind;
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
    /// Run workers on Node (V8): auto, on or off [default: auto].
    #[arg(long, env = "FORESIGHT_BROKER_NODE")]
    node: Option<String>,
    /// The node binary [default: node on PATH].
    #[arg(long, env = "FORESIGHT_BROKER_NODE_PATH")]
    node_path: Option<PathBuf>,
    /// Enable Node workers even when an isolation layer is missing on this host.
    #[arg(long, env = "FORESIGHT_BROKER_NODE_ACCEPT_WEAKER_SANDBOX")]
    node_accept_weaker_sandbox: bool,
    /// Node children kept booted and waiting [default: 2].
    #[arg(long, env = "FORESIGHT_BROKER_NODE_POOL_SIZE")]
    node_pool_size: Option<usize>,
    /// Node workers at once, all clients together [default: 4 per CPU].
    #[arg(long, env = "FORESIGHT_BROKER_NODE_MAX_WORKERS")]
    node_max_workers: Option<usize>,
    /// The engine of a worker whose spawn names none: quickjs or node [default: quickjs].
    #[arg(long, env = "FORESIGHT_BROKER_DEFAULT_ENGINE")]
    default_engine: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one remote worker, speaking frames on stdin/stdout (started by the broker itself).
    Executor,
    /// Confine this process and become node (started by the broker itself).
    NodeSandbox {
        #[arg(long)]
        node: PathBuf,
        #[arg(long)]
        cgroup_procs: Vec<PathBuf>,
        #[arg(long)]
        read: Vec<PathBuf>,
        #[arg(long)]
        exec: Vec<PathBuf>,
        #[arg(long, value_delimiter = ',')]
        require: Vec<String>,
        #[arg(long)]
        probe: bool,
        #[arg(last = true)]
        node_args: Vec<std::ffi::OsString>,
    },
    /// Show which isolation layers this host provides for Node workers.
    Doctor,
}

fn main() -> ExitCode {
    let mut cli = Cli::parse();
    match cli.command.take() {
        Some(Command::Executor) => return foresight_broker::executor::main(),
        Some(Command::NodeSandbox {
            node,
            cgroup_procs,
            read,
            exec,
            require,
            probe,
            node_args,
        }) => {
            let require = require.iter().filter_map(|n| Layer::from_name(n)).collect();
            return foresight_broker::executor::node::launch(LaunchOptions {
                node,
                cgroup_procs,
                read,
                exec,
                require,
                probe,
                node_args,
            });
        }
        Some(Command::Doctor) => return run_doctor(&cli),
        None => {}
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
    let settings = node_settings(cli, &addresses)?;
    let (node, detection) = NodeBackend::detect(settings.clone(), &config.executor.program)?;
    match &node {
        Some(backend) if backend.missing_layers().is_empty() => {
            tracing::info!(node = ?detection.node, version = ?detection.version, "Node workers enabled, every isolation layer present");
        }
        Some(backend) => {
            let missing: Vec<&str> = backend.missing_layers().iter().map(|l| l.name()).collect();
            tracing::warn!(
                ?missing,
                "Node workers enabled WITHOUT some isolation layers (accepted by the operator)"
            );
        }
        None => tracing::info!(
            "Node workers off: {}",
            detection.problem.as_deref().unwrap_or("not configured")
        ),
    }
    config.node = node;
    config.default_engine = match cli
        .default_engine
        .as_deref()
        .or(addresses.default_engine.as_deref())
    {
        None | Some("quickjs") => EngineKind::Quickjs,
        Some("node") if config.node.is_some() => EngineKind::Node,
        Some("node") => {
            return Err("--default-engine node, but the Node backend is not enabled".into());
        }
        Some(other) => return Err(format!("unknown engine {other:?} (quickjs or node)")),
    };
    config.calibrate = true;
    Ok((config, addresses))
}

/// The Node settings: the file's, under flags and environment.
fn node_settings(
    cli: &Cli,
    addresses: &Addresses,
) -> Result<foresight_broker::node::NodeSettings, String> {
    let mut s = addresses.node.clone();
    if let Some(mode) = &cli.node {
        s.mode = match mode.as_str() {
            "auto" => NodeMode::Auto,
            "on" => NodeMode::On,
            "off" => NodeMode::Off,
            other => return Err(format!("--node {other:?}: expected auto, on or off")),
        };
    }
    if cli.node_path.is_some() {
        s.path = cli.node_path.clone();
    }
    if cli.node_accept_weaker_sandbox {
        s.accept_weaker_sandbox = true;
    }
    if let Some(n) = cli.node_pool_size {
        s.pool_size = n;
    }
    if let Some(n) = cli.node_max_workers {
        s.max_workers = n;
    }
    Ok(s)
}

/// `foresight-broker doctor`.
fn run_doctor(cli: &Cli) -> ExitCode {
    let addresses = match &cli.config {
        Some(path) => {
            let mut scratch = BrokerConfig::detect(ExecutorCommand {
                program: PathBuf::new(),
                args: Vec::new(),
            });
            match settings::load(path, &mut scratch) {
                Ok(a) => a,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::FAILURE;
                }
            }
        }
        None => Addresses::default(),
    };
    let settings = match node_settings(cli, &addresses) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let launcher = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("cannot find this executable: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Doctor reports; it never refuses (mode `on` only decides whether a broker starts).
    let lenient = foresight_broker::node::NodeSettings {
        mode: if settings.mode == NodeMode::Off {
            NodeMode::Off
        } else {
            NodeMode::Auto
        },
        ..settings.clone()
    };
    match NodeBackend::detect(lenient, &launcher) {
        Ok((backend, detection)) => {
            print!(
                "{}",
                doctor::report(&settings, &detection, backend.is_some())
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
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
