//! [`BrokerEvent`]: what the broker did, as it did it, for whoever subscribes
//! ([`crate::Server::subscribe`]). The tests use the events as broker-side evidence (a lease
//! really ended, an executor process was really reaped), the binary logs every one of them.
//!
//! Events travel on a `tokio::sync::broadcast` channel: a subscriber that falls behind loses
//! the oldest events (and is told so by `RecvError::Lagged`), and the broker never waits for
//! anyone.

use std::fmt;
use std::net::SocketAddr;

use foresight_shared::protocol::broker::{
    DenyReason, EngineKind, Lease, LeaseId, RevokeCause, WorkerExitReason,
};
use tokio::sync::broadcast;

/// Events kept for a slow subscriber before it starts losing the oldest.
const EVENT_BUFFER: usize = 4096;

/// Longest rendering of a message payload in an event's `Display`.
const DISPLAY_DATA_CHARS: usize = 200;

#[derive(Debug, Clone)]
pub enum BrokerEvent {
    ClientConnected {
        client_id: u64,
        peer: SocketAddr,
    },
    ClientHello {
        client_id: u64,
        client: String,
    },
    LeaseGranted {
        client_id: u64,
        lease: Lease,
        purpose: String,
    },
    LeaseDenied {
        client_id: u64,
        reason: DenyReason,
        message: String,
    },
    /// The request waits in the queue.
    LeaseQueued {
        client_id: u64,
        request_id: u64,
        position: u64,
    },
    /// The broker started taking the lease back; it ends at `ends_at_ms`.
    LeaseRevoking {
        client_id: u64,
        lease_id: LeaseId,
        cause: RevokeCause,
        ends_at_ms: u64,
    },
    LeaseEnded {
        client_id: u64,
        lease_id: LeaseId,
        cause: LeaseEndCause,
    },
    /// The executor reported that the script's top level ran (or the worker's first output
    /// arrived, whichever came first).
    WorkerStarted {
        client_id: u64,
        lease_id: LeaseId,
        worker_id: String,
        script_url: String,
        executor_pid: u32,
        /// The engine it runs on.
        engine: EngineKind,
    },
    /// Page -> worker. `data` is the message as `JSON.stringify` would render it (or a
    /// description of why it has none): the broker relays the structured-clone bytes
    /// themselves and only renders them for whoever listens to events.
    WorkerMessageIn {
        worker_id: String,
        data: serde_json::Value,
    },
    /// Worker -> page, rendered the same way.
    WorkerMessageOut {
        worker_id: String,
        data: serde_json::Value,
    },
    /// Emitted once the worker's executor process has been reaped: the process is gone.
    WorkerExited {
        worker_id: String,
        reason: WorkerExitReason,
    },
    ClientDisconnected {
        client_id: u64,
    },
    /// Connection `client_id` is a data channel (`data_channel_v1`).
    DataChannelOpened {
        client_id: u64,
    },
    /// Connection `client_id` spawned a worker whose data goes through the data channel
    /// that connection `channel_client_id` opened.
    WorkerBound {
        client_id: u64,
        channel_client_id: u64,
        worker_id: String,
    },
    /// A spare executor process exists, sandboxed and waiting for its connection's next
    /// worker.
    SpareExecutorStarted {
        executor_pid: u32,
    },
    /// The pool changed size (autoscaling or an operator's change).
    PoolResized {
        capacity: foresight_shared::protocol::plan::ResourceAmounts,
    },
}

/// Why a lease left the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseEndCause {
    /// The client sent `lease_release`.
    Released,
    /// Its TTL ran out.
    Expired,
    /// The connection that held it closed.
    Disconnected,
    /// The broker took it back (preemption, a smaller pool).
    Revoked,
    /// The broker is shutting down.
    ShuttingDown,
}

impl fmt::Display for LeaseEndCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LeaseEndCause::Released => "released",
            LeaseEndCause::Expired => "expired",
            LeaseEndCause::Disconnected => "disconnected",
            LeaseEndCause::Revoked => "revoked",
            LeaseEndCause::ShuttingDown => "shutting down",
        })
    }
}

/// Renders a payload for a log line, cut short: payloads may be megabytes.
fn short(data: &serde_json::Value) -> String {
    let text = data.to_string();
    match text.char_indices().nth(DISPLAY_DATA_CHARS) {
        Some((cut, _)) => format!("{}... ({} bytes)", &text[..cut], text.len()),
        None => text,
    }
}

impl fmt::Display for BrokerEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BrokerEvent::ClientConnected { client_id, peer } => {
                write!(f, "client {client_id} connected from {peer}")
            }
            BrokerEvent::ClientHello { client_id, client } => {
                write!(f, "client {client_id} is {client:?}")
            }
            BrokerEvent::LeaseGranted {
                client_id,
                lease,
                purpose,
            } => write!(
                f,
                "client {client_id} granted lease {} (epoch {}): {} millicores, {} bytes, \
                 {} B/s for {} ms, for {purpose:?}",
                lease.lease_id,
                lease.epoch,
                lease.resources.cpu_millicores,
                lease.resources.memory_bytes,
                lease.resources.bandwidth_bytes_per_s,
                lease.ttl_ms
            ),
            BrokerEvent::LeaseDenied {
                client_id,
                reason,
                message,
            } => write!(
                f,
                "client {client_id} denied a lease ({reason:?}): {message}"
            ),
            BrokerEvent::LeaseQueued {
                client_id,
                request_id,
                position,
            } => write!(
                f,
                "client {client_id} request {request_id} queued at position {position}"
            ),
            BrokerEvent::LeaseRevoking {
                client_id,
                lease_id,
                cause,
                ends_at_ms,
            } => write!(
                f,
                "client {client_id} lease {lease_id} revoked ({cause:?}), ends at {ends_at_ms}"
            ),
            BrokerEvent::LeaseEnded {
                client_id,
                lease_id,
                cause,
            } => write!(f, "client {client_id} lease {lease_id} ended: {cause}"),
            BrokerEvent::WorkerStarted {
                client_id,
                lease_id,
                worker_id,
                script_url,
                executor_pid,
                engine,
            } => write!(
                f,
                "client {client_id} worker {worker_id:?} ({script_url}) started under lease \
                 {lease_id} in executor pid {executor_pid} on {engine:?}"
            ),
            BrokerEvent::WorkerMessageIn { worker_id, data } => {
                write!(f, "page -> worker {worker_id:?}: {}", short(data))
            }
            BrokerEvent::WorkerMessageOut { worker_id, data } => {
                write!(f, "worker {worker_id:?} -> page: {}", short(data))
            }
            BrokerEvent::WorkerExited { worker_id, reason } => {
                write!(f, "worker {worker_id:?} exited: {reason:?}")
            }
            BrokerEvent::ClientDisconnected { client_id } => {
                write!(f, "client {client_id} disconnected")
            }
            BrokerEvent::DataChannelOpened { client_id } => {
                write!(f, "client {client_id} is a data channel")
            }
            BrokerEvent::WorkerBound {
                client_id,
                channel_client_id,
                worker_id,
            } => write!(
                f,
                "client {client_id} worker {worker_id:?}: data through client \
                 {channel_client_id}'s data channel"
            ),
            BrokerEvent::SpareExecutorStarted { executor_pid } => {
                write!(f, "spare executor {executor_pid} waits for a worker")
            }
            BrokerEvent::PoolResized { capacity } => write!(
                f,
                "pool resized to {} millicores, {} bytes, {} B/s",
                capacity.cpu_millicores, capacity.memory_bytes, capacity.bandwidth_bytes_per_s
            ),
        }
    }
}

/// The sending side, shared by every task of the broker.
#[derive(Debug, Clone)]
pub(crate) struct Events {
    tx: broadcast::Sender<BrokerEvent>,
}

impl Events {
    pub(crate) fn new() -> Self {
        Self {
            tx: broadcast::channel(EVENT_BUFFER).0,
        }
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<BrokerEvent> {
        self.tx.subscribe()
    }

    /// Whether anyone listens: lets callers skip cloning large payloads for nobody.
    pub(crate) fn wanted(&self) -> bool {
        self.tx.receiver_count() > 0
    }

    pub(crate) fn emit(&self, event: BrokerEvent) {
        // An error only means that nobody subscribes right now.
        let _ = self.tx.send(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_cuts_large_payloads() {
        let event = BrokerEvent::WorkerMessageOut {
            worker_id: "w".into(),
            data: serde_json::Value::String("x".repeat(10_000)),
        };
        let text = event.to_string();
        assert!(text.len() < 400, "{text}");
        assert!(text.contains("10002 bytes"), "{text}");
    }
}
