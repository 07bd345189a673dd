//! Foresight's Dynamic Resource Broker.
//!
//! Browser extensions connect over a websocket, say `hello`, lease CPU and memory from a
//! pool, and run Web Worker scripts remotely under a lease. The wire protocol is
//! [`foresight_shared::protocol::broker`]; `docs/PROTOCOL.md` describes it for other clients.
//!
//! The pieces:
//!
//! * [`config`] — the pool size, the lease engine's limits and how to start an executor
//!   process.
//! * [`tls`] — `wss` for hosted brokers (rustls).
//! * [`settings`] — the hosted broker's TOML file, applied under flags and environment.
//! * [`server`] — [`Server`]: the accept loop and graceful shutdown, with the listener and the
//!   shutdown signal injected by the caller (the binary, the tests, the demo).
//! * `admission` — who may connect and how much: Origin, tokens, connection and rate limits.
//! * `connection` — one client's protocol state machine: hello, leases, workers.
//! * [`scheduler`] — the pure lease engine (no I/O, time passed in): grants, the fair-share
//!   queue, preemption with notice, fencing epochs, capacity changes; it never over-commits.
//! * `workers` — executor child processes: spawning, relaying frames, killing, exit reasons.
//! * [`executor`] — what runs *inside* an executor process (`foresight-broker executor`):
//!   the sandbox, the JavaScript engine and the worker's event loop. Page code never runs in
//!   the broker process itself.
//! * [`node`] — the Node (V8) backend, broker side: start-up detection of the isolation
//!   layers (`doctor`), cgroups, the CPU watchdog and the pool of confined children.
//! * `metrics` — Prometheus counters and gauges on their own HTTP port
//!   ([`ServerHandle::serve_metrics`]).
//! * [`events`] — [`BrokerEvent`], broker-side evidence of what happened, for tests, the demo
//!   and the log.

mod admission;
pub mod config;
mod connection;
mod engines;
pub mod events;
pub mod executor;
mod metrics;
pub mod node;
pub mod scheduler;
pub mod server;
pub mod settings;
pub mod tls;
mod workers;

pub use config::{BrokerConfig, ClientToken, DEFAULT_MAX_TTL_MS, ExecutorCommand, Limits};
pub use events::{BrokerEvent, LeaseEndCause};
pub use server::{PoolStats, Server, ServerHandle};

/// The broker's name and version as sent in `hello`, e.g. `foresight-broker/0.1.0`.
pub const BROKER_NAME: &str = concat!("foresight-broker/", env!("CARGO_PKG_VERSION"));
