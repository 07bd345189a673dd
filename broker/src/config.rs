//! What a broker is configured with: the size of its pool, the rules of its lease engine and
//! how to start an executor process.

use std::path::PathBuf;
use std::sync::Arc;

use foresight_shared::limits::BROKER_MAX_MESSAGE;
use foresight_shared::protocol::broker::EngineKind;
use foresight_shared::protocol::plan::ResourceAmounts;

use crate::node::NodeBackend;

use crate::scheduler::SchedulerConfig;
use crate::scheduler::scaling::ScalingConfig;

/// The longest lease granted unless configured otherwise: one hour. Longer work renews.
pub const DEFAULT_MAX_TTL_MS: u64 = 3_600_000;

/// Notice a preempted lease gets before it ends, unless configured otherwise.
pub const DEFAULT_REVOKE_GRACE_MS: u64 = 1_000;

/// How long shutdown waits for clients to release their leases, unless configured otherwise.
pub const DEFAULT_SHUTDOWN_GRACE_MS: u64 = 2_000;

/// Memory assumed when the machine's total cannot be read.
const FALLBACK_MEMORY_BYTES: u64 = 1024 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// The pool: the sum of all granted leases never exceeds it.
    pub capacity: ResourceAmounts,
    /// How to start an executor process (one per remote worker).
    pub executor: ExecutorCommand,
    /// The longest lease granted or renewed; longer requests are denied with a reason.
    pub max_ttl_ms: u64,
    /// Notice (`lease_revoking`) a preempted lease gets before it ends; 0 ends it at once.
    pub revoke_grace_ms: u64,
    /// The longest a request may ask to wait in the queue (`max_wait_ms`).
    pub max_queue_wait_ms: u64,
    /// Queued requests, all clients together, and per client.
    pub max_queue: usize,
    pub max_queued_per_client: usize,
    /// On shutdown, every lease is revoked with this much notice; the broker closes when
    /// all are released or the notice runs out.
    pub shutdown_grace_ms: u64,
    /// Size the pool with demand between a minimum and a maximum number of executor units
    /// (then `capacity` is ignored). `None`: the pool is `capacity`.
    pub scaling: Option<ScalingConfig>,
    /// Access tokens. Empty: no authentication (the embedded default); otherwise `hello`
    /// must carry one of them.
    pub tokens: Vec<ClientToken>,
    /// Page origins that may open a websocket: exact, or a prefix ending in `*`. Clients
    /// that send no `Origin` (not web pages) always may. Empty: every origin.
    pub allowed_origins: Vec<String>,
    pub limits: Limits,
    /// Serve `wss` with this TLS configuration ([`crate::tls::load`]); `None`: plain `ws`.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// The Node (V8) backend, when enabled ([`NodeBackend::detect`]); `None`: QuickJS only.
    pub node: Option<Arc<NodeBackend>>,
    /// The engine of a `worker_spawn` that names none.
    pub default_engine: EngineKind,
    /// Measure each engine's speed and start-up when the server starts, for `hello`.
    pub calibrate: bool,
}

/// One client's access token (hosted mode) and what it may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientToken {
    /// For logs and metrics; never the secret.
    pub name: String,
    pub token: String,
    /// The most the token's connections may hold together.
    pub quota: Option<ResourceAmounts>,
    /// The most connections it may have open.
    pub max_connections: Option<usize>,
    /// Its fair share in the queue, relative to a client without a token (1).
    pub weight: u64,
}

/// Limits on clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Open connections, all clients together; more are refused at the handshake (503).
    pub max_connections: usize,
    /// Longest websocket message accepted (at most the protocol's 16 MiB).
    pub max_message_bytes: usize,
    /// Messages per second per connection on average (0: no limit), in bursts of up to
    /// `message_burst`; more are refused with `limit_exceeded`.
    pub messages_per_s: u32,
    pub message_burst: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 4096,
            max_message_bytes: BROKER_MAX_MESSAGE,
            messages_per_s: 0,
            message_burst: 100,
        }
    }
}

/// Extension pages: the only web origins the embedded broker serves by default.
pub fn default_allowed_origins() -> Vec<String> {
    vec![
        "chrome-extension://*".to_string(),
        "moz-extension://*".to_string(),
    ]
}

impl BrokerConfig {
    /// A broker with the given pool and the default TTL ceiling.
    pub fn new(capacity: ResourceAmounts, executor: ExecutorCommand) -> Self {
        Self {
            capacity,
            executor,
            max_ttl_ms: DEFAULT_MAX_TTL_MS,
            revoke_grace_ms: DEFAULT_REVOKE_GRACE_MS,
            max_queue_wait_ms: 60_000,
            max_queue: 10_000,
            max_queued_per_client: 64,
            shutdown_grace_ms: DEFAULT_SHUTDOWN_GRACE_MS,
            scaling: None,
            tokens: Vec::new(),
            allowed_origins: default_allowed_origins(),
            limits: Limits::default(),
            tls: None,
            node: None,
            default_engine: EngineKind::Quickjs,
            calibrate: false,
        }
    }

    /// The lease engine's part of the configuration.
    pub fn scheduler(&self) -> SchedulerConfig {
        let (capacity, ceiling) = match &self.scaling {
            Some(scaling) => (
                scaling.pool(scaling.min_units.max(1)),
                Some(scaling.pool(scaling.max_units.max(scaling.min_units).max(1))),
            ),
            None => (self.capacity, None),
        };
        SchedulerConfig {
            capacity,
            ceiling,
            max_ttl_ms: self.max_ttl_ms,
            revoke_grace_ms: self.revoke_grace_ms,
            max_wait_ms: self.max_queue_wait_ms,
            max_queue: self.max_queue,
            max_queued_per_client: self.max_queued_per_client,
        }
    }

    /// A pool sized from this machine: every logical CPU (1000 millicores each) and half of
    /// the total memory. Half, because each executor also needs address space beyond its
    /// JavaScript heap (see [`crate::executor::sandbox`]) and the machine runs other things.
    /// Bandwidth is not scheduled yet, so the pool has none.
    pub fn detect(executor: ExecutorCommand) -> Self {
        let (cpus, memory) = match sysinfo::System::new() {
            Ok(mut system) => {
                system.refresh_cpu_list(sysinfo::CpuRefreshKind::nothing());
                system.refresh_memory();
                (system.cpus().len() as u64, system.total_memory())
            }
            Err(_) => (0, 0),
        };
        let cpus = if cpus == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get() as u64)
        } else {
            cpus
        };
        let memory = if memory == 0 {
            FALLBACK_MEMORY_BYTES
        } else {
            memory / 2
        };
        Self::new(
            ResourceAmounts {
                cpu_millicores: cpus * 1000,
                memory_bytes: memory,
                bandwidth_bytes_per_s: 0,
            },
            executor,
        )
    }
}

/// The command that starts one executor process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutorCommand {
    pub program: PathBuf,
    pub args: Vec<String>,
}

impl ExecutorCommand {
    /// This very binary in executor mode (`<current exe> executor`), which is how the
    /// `foresight-broker` binary runs its workers.
    pub fn current_exe() -> std::io::Result<Self> {
        Ok(Self {
            program: std::env::current_exe()?,
            args: vec!["executor".to_string()],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detected_capacity_is_plausible() {
        let config = BrokerConfig::detect(ExecutorCommand {
            program: "x".into(),
            args: vec![],
        });
        assert!(config.capacity.cpu_millicores >= 1000);
        assert_eq!(config.capacity.cpu_millicores % 1000, 0);
        assert!(config.capacity.memory_bytes > 0);
        assert_eq!(config.max_ttl_ms, DEFAULT_MAX_TTL_MS);
    }
}
