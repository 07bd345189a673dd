//! Every message that crosses a process or language boundary in Foresight.
//!
//! All messages are JSON objects tagged by a `"type"` field (snake_case). Each message enum has
//! an `Unknown` case that any unrecognised `"type"` decodes to, so a newer peer never crashes an
//! older one: the receiver answers `unsupported` (or ignores it, for notifications) and keeps
//! serving. Fields added in later versions carry `#[serde(default)]` for the same reason.
//!
//! The channels and their enums:
//!
//! | channel | to the server side | back |
//! |---|---|---|
//! | extension -> native host (native messaging) | [`host::HostRequest`] | [`host::HostReply`] |
//! | extension -> broker (websocket, text frames) | [`broker::ClientMessage`] | [`broker::ServerMessage`] |
//! | broker -> executor process (stdin/stdout frames) | [`executor::ToExecutor`] | [`executor::FromExecutor`] |
//!
//! The payload types shared by several channels live in [`demand`] (what the estimator
//! predicts) and [`plan`] (contention, policy, plans and resource amounts).
//!
//! `docs/PROTOCOL.md` documents every message for authors of other clients; a test in this
//! crate regenerates its examples and fails when the document and these types disagree.

pub mod broker;
pub mod demand;
pub mod examples;
pub mod executor;
pub mod host;
pub mod plan;

use serde::{Deserialize, Serialize};

/// The protocol version spoken by this build. Bumped on any incompatible change; peers send it
/// in their `hello` and refuse a different major version with a typed error.
pub const PROTOCOL_VERSION: u32 = 1;

/// Machine-readable error codes, shared by every channel's `error` message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// A frame or message exceeded a size limit.
    TooLarge,
    /// The stream ended in the middle of a frame.
    Truncated,
    /// The bytes were not valid JSON.
    InvalidJson,
    /// Valid JSON, but not a message of this protocol (missing or mistyped fields).
    InvalidMessage,
    /// A message type this peer does not implement.
    Unsupported,
    /// The peer speaks another protocol version.
    VersionMismatch,
    /// The message referred to a lease, worker or request this peer does not know.
    NotFound,
    /// The message is valid but not allowed now (e.g. a message before `hello`).
    BadState,
    /// The peer failed internally; the request may be retried.
    Internal,
    /// The caller is not allowed to use this peer (e.g. an extension the host was not
    /// installed for).
    Forbidden,
    /// The client is not allowed: a missing or unknown access token.
    Unauthorized,
    /// A limit on the client was reached (messages per second, connections per token); the
    /// message was not served. Slow down or close other connections.
    LimitExceeded,
    #[serde(other)]
    Unknown,
}

/// Quantiles of an uncertain quantity. The estimator reports p10/p50/p90 and guarantees
/// `p10 <= p50 <= p90`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Quantiles {
    pub p10: f64,
    pub p50: f64,
    pub p90: f64,
}

impl Quantiles {
    /// A quantity known exactly.
    pub fn exact(v: f64) -> Self {
        Self {
            p10: v,
            p50: v,
            p90: v,
        }
    }

    /// The value at quantile `q` in [0, 1], interpolated linearly between the known points
    /// and clamped outside them.
    pub fn at(&self, q: f64) -> f64 {
        let q = q.clamp(0.0, 1.0);
        if q <= 0.1 {
            self.p10
        } else if q <= 0.5 {
            self.p10 + (self.p50 - self.p10) * (q - 0.1) / 0.4
        } else if q <= 0.9 {
            self.p50 + (self.p90 - self.p50) * (q - 0.5) / 0.4
        } else {
            self.p90
        }
    }
}

#[cfg(test)]
mod tests;
