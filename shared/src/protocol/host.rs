//! Extension <-> native host (`foresight-host`), over native messaging.
//!
//! The extension opens one port per browser session and keeps it open. It sends `hello` first;
//! every request carries a `request_id` that the reply echoes, so replies may be matched even
//! when several requests are in flight.
//!
//! Two things arrive without a request of their own:
//! * `contention_changed`, after the extension asked for it with `watch_contention`: the host
//!   then samples the machine about once a second and says so when capacity changed
//!   materially (never more often than the watch's `min_interval_ms`).
//! * `chunk`: a reply larger than the 1 MiB a browser accepts from a host is sent as its JSON
//!   text cut into pieces, in order, each carrying the reply's `request_id`; the extension
//!   joins the `data` of pieces `0..count` and parses the result as the reply.

use serde::{Deserialize, Serialize};

use super::ErrorCode;
use super::demand::PageDemand;
use super::plan::{BrokerTerms, ContentionSnapshot, Plan, Policy, TabLoad};

/// Extension -> host.
// A request is decoded, handled and dropped one at a time; boxing the large `plan` variant
// would only make every constructor and match noisier.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum HostRequest {
    Hello {
        protocol_version: u32,
        /// Free text identifying the client, e.g. `foresight-extension/0.1.0 chrome`.
        client: String,
    },
    /// Plan the given page.
    Plan {
        request_id: u64,
        demand: PageDemand,
        #[serde(default)]
        policy: Policy,
        /// `None` when no broker is configured or reachable.
        #[serde(default)]
        broker: Option<BrokerTerms>,
        /// The browser's other open tabs (not the one being planned).
        #[serde(default)]
        tabs: Vec<TabLoad>,
    },
    /// Report current contention without planning.
    Contention { request_id: u64 },
    /// Start (or, with `enabled: false`, stop) `contention_changed` updates. Answered with
    /// `contention`. Unset thresholds take the host's defaults.
    WatchContention {
        request_id: u64,
        #[serde(default = "default_true")]
        enabled: bool,
        /// Least time between two updates; the host never samples faster than 200 ms.
        #[serde(default)]
        min_interval_ms: Option<u64>,
        /// Change in idle CPU (now or forecast) that is worth an update.
        #[serde(default)]
        cpu_change_millicores: Option<u64>,
        /// Change in available memory (now or forecast) that is worth an update.
        #[serde(default)]
        memory_change_bytes: Option<u64>,
    },
    #[serde(other)]
    Unknown,
}

fn default_true() -> bool {
    true
}

/// Host -> extension.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum HostReply {
    Hello {
        protocol_version: u32,
        /// e.g. `foresight-host/0.1.0`.
        host: String,
        /// The broker this machine's host was configured with (`FORESIGHT_BROKER_URL`), which
        /// the extension uses unless the user chose one in its settings.
        #[serde(default)]
        broker_url: Option<String>,
    },
    Plan {
        request_id: u64,
        plan: Plan,
        /// The contention the plan was made against.
        contention: ContentionSnapshot,
    },
    Contention {
        request_id: u64,
        contention: ContentionSnapshot,
    },
    /// Unsolicited, while a watch is on: capacity changed materially.
    ContentionChanged {
        contention: ContentionSnapshot,
        /// What changed, in words.
        #[serde(default)]
        reasons: Vec<String>,
    },
    /// One piece of a reply too large for one frame (see the module documentation).
    Chunk {
        #[serde(default)]
        request_id: Option<u64>,
        index: u32,
        count: u32,
        /// A piece of the reply's JSON text.
        data: String,
    },
    /// The request could not be served; the host keeps serving the next one.
    Error {
        /// The request's id, when it could be read.
        #[serde(default)]
        request_id: Option<u64>,
        code: ErrorCode,
        message: String,
    },
    #[serde(other)]
    Unknown,
}
