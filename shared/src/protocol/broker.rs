//! Extension <-> broker (`foresight-broker`), as JSON in websocket text frames.
//!
//! A client connects, sends `hello`, and may then request leases. A lease is a grant of
//! resources for a time; workers are spawned under a lease and die with it. Leases belong to
//! the connection that obtained them: when it closes, they are released.
//!
//! Requests carry a client-chosen `request_id` echoed in the answer. Workers carry a
//! client-chosen `worker_id`, unique within the connection.
//!
//! Worker messages (`postMessage` data) travel in websocket *binary* frames
//! ([`encode_worker_frame`]) as structured-clone bytes ([`crate::sclone`]) once both sides have
//! named [`FEATURE_STRUCTURED_CLONE`] in their `hello`; a client that did not still gets
//! protocol version 1's JSON `worker_message`.
//!
//! Data channels ([`FEATURE_DATA_CHANNEL`]): a second connection, opened by whoever is closer
//! to the worker's page (the extension's content script), whose `hello` asks for
//! [`ConnectionRole::DataChannel`]. The broker answers with a random `channel_id`; a
//! `worker_spawn` on the owner's connection that names it binds the worker's data to that
//! channel: page -> worker frames are accepted only from the channel, and the worker's
//! output (data frames, `worker_console`, `worker_error`, `worker_exited`) goes to it, in
//! order. Control — leases, spawns, terminations, `worker_started`, and `worker_exited` for
//! bookkeeping — stays on the owner's connection.

use serde::{Deserialize, Serialize};

use super::ErrorCode;
use super::executor::ConsoleLevel;
use super::plan::ResourceAmounts;

/// Feature named in `hello` by a client that sends and wants worker data as structured-clone
/// bytes in binary frames, and by a broker that speaks them.
pub const FEATURE_STRUCTURED_CLONE: &str = "structured_clone_v1";

/// Feature named in `hello` by a client and a broker that speak data channels: connections
/// with the [`ConnectionRole::DataChannel`] role and `worker_spawn`'s `channel_id`.
pub const FEATURE_DATA_CHANNEL: &str = "data_channel_v1";

/// First byte of a binary frame that carries one worker message, either way.
pub const BINARY_WORKER_MESSAGE: u8 = 0x01;

/// A script the worker may load with `importScripts`, supplied with the spawn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScriptSource {
    /// Absolute URL, as `importScripts` resolves it against the worker's URL.
    pub url: String,
    pub source: String,
}

/// A JavaScript engine a broker runs workers on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EngineKind {
    /// QuickJS, embedded in the broker: starts in about a millisecond, runs compute-heavy
    /// code several times slower than a browser's V8. Every broker has it.
    Quickjs,
    /// V8 in a kernel-confined Node process, from a pool of pre-started children: V8 speed,
    /// WebAssembly, tens of MB per worker.
    Node,
    #[serde(other)]
    Unknown,
}

/// One engine a broker offers, announced in its `hello`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngineOffer {
    pub engine: EngineKind,
    /// Median milliseconds this engine took for the calibration kernel (the extension's
    /// device-calibration kernel, `foresightKernel`), measured at the broker's start-up. A
    /// client divides it by its own time for the same kernel to get the engine's speed factor.
    /// Absent while the broker is still measuring.
    #[serde(default)]
    pub kernel_ms: Option<f64>,
    /// Milliseconds from `worker_spawn` to the worker's script running in a ready process
    /// (a pooled Node child, a connection's spare QuickJS executor: how clients mostly meet
    /// it), as measured at start-up (absent while still measuring).
    #[serde(default)]
    pub startup_ms: Option<f64>,
    /// Workers this engine runs at once at most, all clients together (each is a process);
    /// 0: no limit of its own, the lease pool bounds it.
    pub max_workers: u32,
    /// Whether workers on this engine have `WebAssembly`.
    #[serde(default)]
    pub webassembly: bool,
}

/// What a connection is for, asked for in its `hello`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionRole {
    /// Leases, workers and their data: every connection's role unless it asks otherwise.
    Client,
    /// Only the data of workers another connection bound to it (`worker_spawn`'s
    /// `channel_id`): binary worker frames both ways, and the workers' `worker_console`,
    /// `worker_error`, `worker_exited` and `worker_bound`. No leases, no spawns.
    DataChannel,
    #[serde(other)]
    Unknown,
}

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
        /// Optional features the client speaks, e.g. [`FEATURE_STRUCTURED_CLONE`].
        #[serde(default)]
        features: Vec<String>,
        /// What this connection is for. Absent: [`ConnectionRole::Client`].
        #[serde(default, skip_serializing_if = "Option::is_none")]
        role: Option<ConnectionRole>,
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
        /// Accept a partial grant: anything between this and `resources` (each amount is
        /// granted up to what is free). Absent: all of `resources` or nothing.
        #[serde(default)]
        min_resources: Option<ResourceAmounts>,
        /// How long the client will wait in the broker's queue when the request does not fit
        /// now. Absent or 0: answer at once (`lease_granted` or `lease_denied`). Otherwise the
        /// broker may answer `lease_queued`, later followed by exactly one `lease_granted` or
        /// `lease_denied` no later than this many milliseconds after the request.
        #[serde(default)]
        max_wait_ms: Option<u64>,
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
        /// The lease's fencing epoch as the client knows it. When present and not the
        /// lease's current epoch, the spawn is refused (`bad_state`): the client acts on a
        /// stale view of its lease.
        #[serde(default)]
        epoch: Option<u64>,
        /// The scripts `importScripts` may load; any other URL fails with a NetworkError.
        #[serde(default)]
        imports: Vec<ScriptSource>,
        /// The `name` option of `new Worker(url, {name})`, the worker's `self.name`.
        #[serde(default)]
        name: String,
        /// A module worker (`{type: "module"}`): `source` is an ES module, and `imports`
        /// holds the modules it imports, by absolute URL.
        #[serde(default)]
        module: bool,
        /// The engine to run it on, one the broker offered in `hello`. Absent: the broker's
        /// default (QuickJS unless its operator chose otherwise).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        engine: Option<EngineKind>,
        /// A data channel's `channel_id` (from its `hello`): the worker's data goes through
        /// that connection instead of this one. An unknown or closed channel refuses the
        /// spawn (`not_found`, then `worker_exited` with `channel_closed`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        channel_id: Option<String>,
    },
    /// `worker.postMessage(data)` from the page, for clients without
    /// [`FEATURE_STRUCTURED_CLONE`] (the others send a binary frame).
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
    /// The broker is shutting down and grants nothing more.
    ShuttingDown,
    /// More than this client's quota allows (hosted brokers).
    QuotaExceeded,
    #[serde(other)]
    Unknown,
}

/// Why the broker takes a lease back before its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevokeCause {
    /// A request of higher priority needs the resources.
    Preempted,
    /// The pool shrank below what is granted.
    CapacityReduced,
    /// The broker is shutting down.
    ShuttingDown,
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
    /// The worker's data channel closed (or was never there): the worker was stopped, and
    /// its owner may move it elsewhere, as after a crash.
    ChannelClosed,
    /// The broker did not start the worker (the `error` before it says why: no such lease, a
    /// stale epoch, an engine at its limit...). Nothing of it ran, so its owner may run it
    /// elsewhere.
    Refused,
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
        /// Optional features the broker speaks; the client may use those it named too.
        #[serde(default)]
        features: Vec<String>,
        /// The engines workers may run on (`worker_spawn`'s `engine`), with their measured
        /// speed and start-up. Absent from older brokers: QuickJS only.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        engines: Vec<EngineOffer>,
        /// For a connection that asked for [`ConnectionRole::DataChannel`]: its id, random
        /// and unguessable, for the owner's `worker_spawn`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        channel_id: Option<String>,
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
    /// The request waits in the broker's queue (only when it allowed that with
    /// `max_wait_ms`). Exactly one `lease_granted` or `lease_denied` with the same
    /// `request_id` follows, within the request's `max_wait_ms`.
    LeaseQueued {
        request_id: u64,
        /// 1 = next in line, by the broker's fair-share order at the time of queueing.
        position: u64,
        /// When the broker expects to grant it, assuming current leases run to their
        /// deadlines and none is renewed; absent when it cannot tell.
        #[serde(default)]
        estimated_wait_ms: Option<u64>,
    },
    /// The broker will take this lease back at `ends_at_ms` (then `lease_ended` with
    /// `revoked`). Until then the lease and its workers keep running; releasing it earlier
    /// frees the resources sooner. Renewals are refused meanwhile.
    LeaseRevoking {
        lease_id: LeaseId,
        cause: RevokeCause,
        ends_at_ms: u64,
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
    /// The worker's script is running (its top level ran, or it already said something).
    WorkerStarted {
        worker_id: String,
        /// The engine it runs on (absent from older brokers).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        engine: Option<EngineKind>,
    },
    /// On a data channel: a worker was bound to it. Sent before any output of the worker, so
    /// the channel may send the worker's data from then on.
    WorkerBound {
        worker_id: String,
    },
    /// `postMessage(data)` from the remote worker, rendered as `JSON.stringify` would, for a
    /// client without [`FEATURE_STRUCTURED_CLONE`] (the others get a binary frame).
    WorkerMessage {
        worker_id: String,
        data: serde_json::Value,
    },
    /// The worker called `console.*`: the page shows it in its own console.
    WorkerConsole {
        worker_id: String,
        level: ConsoleLevel,
        text: String,
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
        /// CPU time the worker's executor used, in ms, when known: reported by the executor
        /// when the worker ended on its own (closed, a limit), measured by the broker when
        /// the client terminated it; absent at a lease's end.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cpu_ms: Option<u64>,
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

/// A binary frame that is not a worker message this side can read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BinaryFrameError {
    #[error("empty binary frame")]
    Empty,
    #[error("unknown binary frame kind {0:#04x}")]
    UnknownKind(u8),
    #[error("binary frame truncated in its header")]
    Truncated,
    #[error("the worker id in a binary frame is not UTF-8")]
    WorkerId,
}

/// A binary worker-message frame: [`BINARY_WORKER_MESSAGE`], the worker id's length as a
/// little-endian `u16`, the worker id in UTF-8, then the structured-clone bytes.
pub fn encode_worker_frame(worker_id: &str, payload: &[u8]) -> Vec<u8> {
    let id = worker_id.as_bytes();
    let id = &id[..id.len().min(usize::from(u16::MAX))];
    let mut frame = Vec::with_capacity(3 + id.len() + payload.len());
    frame.push(BINARY_WORKER_MESSAGE);
    frame.extend_from_slice(&(id.len() as u16).to_le_bytes());
    frame.extend_from_slice(id);
    frame.extend_from_slice(payload);
    frame
}

/// Splits a binary frame into the worker id and the structured-clone bytes.
pub fn decode_worker_frame(frame: &[u8]) -> Result<(&str, &[u8]), BinaryFrameError> {
    let (&kind, rest) = frame.split_first().ok_or(BinaryFrameError::Empty)?;
    if kind != BINARY_WORKER_MESSAGE {
        return Err(BinaryFrameError::UnknownKind(kind));
    }
    if rest.len() < 2 {
        return Err(BinaryFrameError::Truncated);
    }
    let len = usize::from(u16::from_le_bytes([rest[0], rest[1]]));
    let rest = &rest[2..];
    if rest.len() < len {
        return Err(BinaryFrameError::Truncated);
    }
    let id = std::str::from_utf8(&rest[..len]).map_err(|_| BinaryFrameError::WorkerId)?;
    Ok((id, &rest[len..]))
}
