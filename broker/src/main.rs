//! `foresight-broker`: the thin binary over the library.
//!
//! * `foresight-broker [--listen ADDR] [--cpu-millicores N] [--memory-bytes N]
//!   [--max-ttl-ms N]` serves clients. Once bound it prints exactly one line to stdout,
//!   `foresight-broker listening on ws://ADDR` (the real port when ADDR asks for port 0), so a
//!   parent process can wait for it; everything else, including every broker event, is logged
//!   to stderr (`RUST_LOG`, default `info`). SIGINT and SIGTERM shut it down gracefully.
//! * `foresight-broker executor` is executor mode: the broker starts itself this way, once per
//!   remote worker. It speaks frames on stdin/stdout and is not meant for people.

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use foresight_broker::{BrokerConfig, DEFAULT_MAX_TTL_MS, ExecutorCommand, Server};
use foresight_shared::ids::DEFAULT_BROKER_ADDR;
use tokio::sync::broadcast::error::RecvError;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Parser)]
#[command(name = "foresight-broker", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = DEFAULT_BROKER_ADDR)]
    listen: String,
    /// CPU in the pool, in millicores [default: 1000 per logical CPU].
    #[arg(long)]
    cpu_millicores: Option<u64>,
    /// Memory in the pool, in bytes [default: half of this machine's memory].
    #[arg(long)]
    memory_bytes: Option<u64>,
    /// Longest lease granted or renewed, in milliseconds.
    #[arg(long, default_value_t = DEFAULT_MAX_TTL_MS)]
    max_ttl_ms: u64,
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

async fn serve(cli: Cli) -> Result<(), String> {
    let executor = ExecutorCommand::current_exe()
        .map_err(|e| format!("cannot find this executable to run executors: {e}"))?;
    let mut config = BrokerConfig::detect(executor);
    if let Some(cpu) = cli.cpu_millicores {
        config.capacity.cpu_millicores = cpu;
    }
    if let Some(memory) = cli.memory_bytes {
        config.capacity.memory_bytes = memory;
    }
    config.max_ttl_ms = cli.max_ttl_ms;

    let listener = tokio::net::TcpListener::bind(&cli.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", cli.listen))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("cannot read the bound address: {e}"))?;
    tracing::info!(
        cpu_millicores = config.capacity.cpu_millicores,
        memory_bytes = config.capacity.memory_bytes,
        max_ttl_ms = config.max_ttl_ms,
        "pool"
    );

    let server = Server::new(config);
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
    writeln!(stdout, "foresight-broker listening on ws://{addr}")
        .and_then(|()| stdout.flush())
        .map_err(|e| format!("cannot write to stdout: {e}"))?;
    drop(stdout);

    server
        .run(listener, shutdown_signal())
        .await
        .map_err(|e| format!("server failed: {e}"))?;
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
