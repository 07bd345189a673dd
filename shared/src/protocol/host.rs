//! Extension <-> native host (`foresight-host`), over native messaging.
//!
//! The extension opens one port per browser session and keeps it open. It sends `hello` first;
//! every request carries a `request_id` that the reply echoes, so replies may be matched even
//! when several requests are in flight. The host never sends anything unsolicited yet.

use serde::{Deserialize, Serialize};

use super::ErrorCode;
use super::demand::PageDemand;
use super::plan::{BrokerTerms, ContentionSnapshot, Plan, Policy};

/// Extension -> host.
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
    },
    /// Report current contention without planning.
    Contention { request_id: u64 },
    #[serde(other)]
    Unknown,
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
