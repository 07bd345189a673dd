//! Contention, policy, broker terms and the plan the planner derives from them.

use serde::{Deserialize, Serialize};

/// An amount of each resource Foresight schedules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ResourceAmounts {
    /// CPU in thousandths of a core.
    pub cpu_millicores: u64,
    pub memory_bytes: u64,
    #[serde(default)]
    pub bandwidth_bytes_per_s: u64,
}

impl ResourceAmounts {
    pub fn is_zero(&self) -> bool {
        self.cpu_millicores == 0 && self.memory_bytes == 0 && self.bandwidth_bytes_per_s == 0
    }

    /// Whether every component of `self` is at most that of `other`.
    pub fn fits_within(&self, other: &ResourceAmounts) -> bool {
        self.cpu_millicores <= other.cpu_millicores
            && self.memory_bytes <= other.memory_bytes
            && self.bandwidth_bytes_per_s <= other.bandwidth_bytes_per_s
    }

    pub fn saturating_add(&self, other: &ResourceAmounts) -> ResourceAmounts {
        ResourceAmounts {
            cpu_millicores: self.cpu_millicores.saturating_add(other.cpu_millicores),
            memory_bytes: self.memory_bytes.saturating_add(other.memory_bytes),
            bandwidth_bytes_per_s: self
                .bandwidth_bytes_per_s
                .saturating_add(other.bandwidth_bytes_per_s),
        }
    }

    pub fn saturating_sub(&self, other: &ResourceAmounts) -> ResourceAmounts {
        ResourceAmounts {
            cpu_millicores: self.cpu_millicores.saturating_sub(other.cpu_millicores),
            memory_bytes: self.memory_bytes.saturating_sub(other.memory_bytes),
            bandwidth_bytes_per_s: self
                .bandwidth_bytes_per_s
                .saturating_sub(other.bandwidth_bytes_per_s),
        }
    }
}

/// Who measured a contention snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContentionSource {
    /// The native host, from the operating system.
    #[default]
    NativeHost,
    /// The extension, from what the browser exposes (no native host installed).
    Browser,
    #[serde(other)]
    Unknown,
}

/// How busy the machine is right now.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ContentionSnapshot {
    pub source: ContentionSource,
    /// Milliseconds since the Unix epoch.
    pub taken_at_ms: u64,
    pub logical_cpus: u32,
    /// Machine-wide CPU use, 0.0-1.0 of all cores.
    pub cpu_usage: f64,
    /// Idle CPU, in millicores (`logical_cpus * 1000 * (1 - cpu_usage)`).
    pub available_cpu_millicores: u64,
    pub total_memory_bytes: u64,
    pub available_memory_bytes: u64,
    /// One-minute load average, where the OS has one.
    #[serde(default)]
    pub load_average_1m: Option<f64>,
}

/// Whether offloading is allowed at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OffloadMode {
    /// Offload what the plan says is worth it.
    #[default]
    Auto,
    /// Never send code or data to a broker.
    Never,
    #[serde(other)]
    Unknown,
}

/// The user's policy, from the extension's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    #[serde(default)]
    pub offload: OffloadMode,
    /// Quantile of the demand distribution that reservations cover (0.5 = median).
    #[serde(default = "Policy::default_quantile")]
    pub quantile: f64,
    /// Share of currently idle CPU a page may use locally.
    #[serde(default = "Policy::default_local_share")]
    pub local_share: f64,
    /// Window, in ms, over which a path's CPU demand is spread to turn it into a rate.
    #[serde(default = "Policy::default_horizon_ms")]
    pub horizon_ms: f64,
    /// A component predicted to use more CPU than this (ms, at `quantile`) is offloaded when a
    /// broker is available, even if the machine could absorb it.
    #[serde(default = "Policy::default_offload_min_cpu_ms")]
    pub offload_min_cpu_ms: f64,
    /// Lease priority, 0 (lowest) to 9.
    #[serde(default = "Policy::default_priority")]
    pub priority: u8,
}

impl Policy {
    fn default_quantile() -> f64 {
        0.9
    }
    fn default_local_share() -> f64 {
        0.5
    }
    fn default_horizon_ms() -> f64 {
        1000.0
    }
    fn default_offload_min_cpu_ms() -> f64 {
        100.0
    }
    fn default_priority() -> u8 {
        5
    }
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            offload: OffloadMode::Auto,
            quantile: Self::default_quantile(),
            local_share: Self::default_local_share(),
            horizon_ms: Self::default_horizon_ms(),
            offload_min_cpu_ms: Self::default_offload_min_cpu_ms(),
            priority: Self::default_priority(),
        }
    }
}

/// What the extension knows about the broker when it asks for a plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BrokerTerms {
    /// Whether a broker connection is open and said hello.
    pub available: bool,
    /// Measured round-trip time, ms.
    #[serde(default)]
    pub rtt_ms: f64,
    /// The broker's total capacity, as it announced in `hello`.
    #[serde(default)]
    pub capacity: ResourceAmounts,
}

/// Where a component runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    Local,
    Remote,
    #[serde(other)]
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Placement {
    pub component_id: String,
    /// The component's script URL, so the orchestrator can match a `new Worker(url)`.
    #[serde(default)]
    pub url: Option<String>,
    pub target: Target,
    pub reason: String,
}

/// What to ask the broker for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemoteRequest {
    pub resources: ResourceAmounts,
    pub ttl_ms: u64,
    pub priority: u8,
}

/// Who produced a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanSource {
    NativeHost,
    /// The extension's built-in planner, used when no native host answers.
    ExtensionFallback,
    #[serde(other)]
    Unknown,
}

/// The planner's decision for one page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub url: String,
    pub source: PlanSource,
    /// What to reserve on this machine.
    pub local: ResourceAmounts,
    /// What to lease from the broker; `None` when everything runs locally.
    #[serde(default)]
    pub remote: Option<RemoteRequest>,
    pub placements: Vec<Placement>,
    /// Why, in words the popup shows.
    pub reasons: Vec<String>,
}

impl Plan {
    /// The placement for a worker script URL, if the plan has one.
    pub fn placement_for_url(&self, url: &str) -> Option<&Placement> {
        self.placements
            .iter()
            .find(|p| p.url.as_deref() == Some(url))
    }
}
