//! Extension <-> broker (`foresight-broker`), as JSON in websocket text frames.
//!
//! A client connects, sends `hello`, and may then request leases. A lease is a grant of
//! resources for a time; workers are spawned under a lease and die with it. Leases belong to
//! the connection that obtained them: when it closes, they are released.
//!
//! Requests carry a client-chosen `request_id` echoed in the answer. Workers carry a
//! client-chosen `worker_id`, unique within the connection.

use serde::{Deserialize, Serialize};

use super::ErrorCode;
use super::plan::ResourceAmounts;

/// Identifies a lease; assigned by the broker, unique for the broker's lifetime.
pub type LeaseId = u64;

/// Client -> broker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    Hello {
        protocol_version: u32,
        client: String,
        /// Access token, for brokers that require one.
        #[serde(default)]
        token: Option<String>,
    },
    LeaseRequest {
        request_id: u64,
        resources: ResourceAmounts,
        ttl_ms: u64,
        /// 0 (lowest) to 9.
        #[serde(default)]
        priority: u8,
        /// What the lease is for (the page URL), for logs and metrics.
        #[serde(default)]
        purpose: String,
    },
    LeaseRenew {
        lease_id: LeaseId,
        ttl_ms: u64,
    },
    LeaseRelease {
        lease_id: LeaseId,
    },
    /// Start a worker under a lease.
    WorkerSpawn {
        lease_id: LeaseId,
        worker_id: String,
        /// The script's URL, for error messages and relative `importScripts`.
        script_url: String,
        /// The worker's script source.
        source: String,
    },
    /// `worker.postMessage(data)` from the page.
    WorkerMessage {
        worker_id: String,
        data: serde_json::Value,
    },
    /// `worker.terminate()` from the page.
    WorkerTerminate {
        worker_id: String,
    },
    #[serde(other)]
    Unknown,
}

/// A granted lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub lease_id: LeaseId,
    pub resources: ResourceAmounts,
    pub ttl_ms: u64,
    /// Deadline in milliseconds since the Unix epoch (broker clock).
    pub expires_at_ms: u64,
    /// Fencing epoch: strictly increasing across all grants of this broker.
    pub epoch: u64,
}

/// Why a lease request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DenyReason {
    /// More than the broker could ever grant.
    Infeasible,
    /// Not available now.
    InsufficientCapacity,
    /// The request itself is malformed (zero TTL, zero resources...).
    InvalidRequest,
    #[serde(other)]
    Unknown,
}

/// Why a lease ended without the client releasing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaseEndReason {
    Expired,
    Revoked,
    ShuttingDown,
    #[serde(other)]
    Unknown,
}

/// Why a remote worker stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerExitReason {
    /// The worker called `close()`.
    Closed,
    /// The client sent `worker_terminate`.
    Terminated,
    /// The worker's lease ended.
    LeaseEnded,
    /// The worker exceeded its CPU-time budget.
    CpuLimit,
    /// The worker exceeded its memory budget.
    MemoryLimit,
    /// The executor process died unexpectedly.
    Crashed,
    #[serde(other)]
    Unknown,
}

/// Broker -> client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    Hello {
        protocol_version: u32,
        /// e.g. `foresight-broker/0.1.0`.
        broker: String,
        /// The pool's total capacity.
        capacity: ResourceAmounts,
    },
    LeaseGranted {
        request_id: u64,
        lease: Lease,
    },
    LeaseDenied {
        request_id: u64,
        reason: DenyReason,
        message: String,
    },
    LeaseRenewed {
        lease_id: LeaseId,
        expires_at_ms: u64,
    },
    LeaseReleased {
        lease_id: LeaseId,
    },
    /// The lease ended without the client asking; its workers have been stopped.
    LeaseEnded {
        lease_id: LeaseId,
        reason: LeaseEndReason,
    },
    WorkerStarted {
        worker_id: String,
    },
    /// `postMessage(data)` from the remote worker.
    WorkerMessage {
        worker_id: String,
        data: serde_json::Value,
    },
    /// An uncaught exception in the worker (the worker keeps running, as in a browser).
    WorkerError {
        worker_id: String,
        message: String,
        #[serde(default)]
        filename: Option<String>,
        #[serde(default)]
        lineno: Option<u32>,
    },
    WorkerExited {
        worker_id: String,
        reason: WorkerExitReason,
    },
    /// A message could not be served; the connection stays open.
    Error {
        code: ErrorCode,
        message: String,
        #[serde(default)]
        request_id: Option<u64>,
    },
    #[serde(other)]
    Unknown,
}
