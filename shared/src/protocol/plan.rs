//! Contention, policy, broker terms and the plan the planner derives from them.

use serde::{Deserialize, Serialize};

use super::broker::EngineKind;

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
    /// The CPUs the browser may run on: all of the machine's, unless the browser is confined
    /// to some (its CPU affinity: `taskset`, a container's cpuset).
    pub logical_cpus: u32,
    /// Use of those CPUs, 0.0-1.0 (machine-wide when the browser may use every core).
    pub cpu_usage: f64,
    /// Idle CPU, in millicores (`logical_cpus * 1000 * (1 - cpu_usage)`).
    pub available_cpu_millicores: u64,
    pub total_memory_bytes: u64,
    pub available_memory_bytes: u64,
    /// One-minute load average, where the OS has one.
    #[serde(default)]
    pub load_average_1m: Option<f64>,
    /// Use of each logical CPU, 0.0-1.0, in the OS's order (empty when not measured).
    #[serde(default)]
    pub per_core_usage: Vec<f64>,
    #[serde(default)]
    pub swap_total_bytes: u64,
    #[serde(default)]
    pub swap_used_bytes: u64,
    /// Tasks ready to run right now (smoothed), which says how oversubscribed the CPUs are
    /// when `cpu_usage` is already 1.0. Linux only.
    #[serde(default)]
    pub runnable_tasks: Option<f64>,
    /// Machine-wide network throughput, all interfaces but loopback.
    #[serde(default)]
    pub network: Option<NetworkThroughput>,
    /// The browser the host was started from: its whole process tree.
    #[serde(default)]
    pub browser: Option<ProcessGroupUsage>,
    /// Every other process on the machine.
    #[serde(default)]
    pub others: Option<ProcessGroupUsage>,
    /// Linux pressure stall information, when the kernel exposes it.
    #[serde(default)]
    pub pressure: Option<Pressure>,
    /// Where the smoothed figures are heading over the next seconds.
    #[serde(default)]
    pub forecast: Option<ContentionForecast>,
}

/// Bytes per second received and sent.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct NetworkThroughput {
    pub rx_bytes_per_s: f64,
    pub tx_bytes_per_s: f64,
}

/// What a group of processes uses right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ProcessGroupUsage {
    pub processes: u32,
    /// CPU in use, in millicores (may exceed 1000: several threads).
    pub cpu_millicores: u64,
    /// Resident memory, bytes.
    pub memory_bytes: u64,
}

/// Linux PSI `avg10` figures: the share of the last 10 s (0-100) in which at least one task
/// (`some`) or every task (`full`) was stalled waiting for the resource.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Pressure {
    #[serde(default)]
    pub cpu_some_avg10: Option<f64>,
    #[serde(default)]
    pub memory_some_avg10: Option<f64>,
    #[serde(default)]
    pub memory_full_avg10: Option<f64>,
    #[serde(default)]
    pub io_some_avg10: Option<f64>,
    #[serde(default)]
    pub io_full_avg10: Option<f64>,
}

/// A short-horizon forecast: the smoothed level plus its trend, `horizon_ms` ahead.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct ContentionForecast {
    pub horizon_ms: u64,
    pub available_cpu_millicores: u64,
    pub available_memory_bytes: u64,
    /// Trend of idle CPU, millicores per second (negative: the machine is getting busier).
    pub cpu_trend_millicores_per_s: f64,
    /// Trend of available memory, bytes per second.
    pub memory_trend_bytes_per_s: f64,
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
    /// How much later (as a fraction) a component may finish remotely than locally and still
    /// be offloaded to keep this machine within its share. Beyond it the broker counts as
    /// slower and the component stays local.
    #[serde(default = "Policy::default_offload_slack")]
    pub offload_slack: f64,
    /// At most this share (0.0-1.0) of the page's predicted CPU time may run remotely; the
    /// user's cap on what leaves the machine. 1.0 places no cap.
    #[serde(default = "Policy::default_max_remote_share")]
    pub max_remote_share: f64,
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
    fn default_offload_slack() -> f64 {
        0.25
    }
    fn default_max_remote_share() -> f64 {
        1.0
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
            offload_slack: Self::default_offload_slack(),
            max_remote_share: Self::default_max_remote_share(),
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
    /// The broker's total capacity, as it announced in `hello` (zero: not announced).
    #[serde(default)]
    pub capacity: ResourceAmounts,
    /// How long the broker takes for work that takes this browser 1 ms (2.0: half as fast).
    /// `None`: not measured, and the planner assumes parity for placement.
    #[serde(default)]
    pub speed_factor: Option<f64>,
    /// Measured throughput to the broker, bytes per second (0: not measured).
    #[serde(default)]
    pub bandwidth_bytes_per_s: u64,
    /// Time to start one remote component (executor start-up), ms. `None`: not measured.
    #[serde(default)]
    pub startup_ms: Option<f64>,
    /// The engines the broker runs workers on, each with its own speed, start-up and
    /// capacity (from the broker's `hello`, speed made relative to this browser by the
    /// extension). Empty: one engine, described by the fields above (older brokers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub engines: Vec<EngineTerms>,
}

/// One engine of the broker, as the planner prices it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngineTerms {
    pub engine: EngineKind,
    /// As [`BrokerTerms::speed_factor`], for this engine: the broker's time for the
    /// calibration kernel divided by this browser's. `None`: not measured yet.
    #[serde(default)]
    pub speed_factor: Option<f64>,
    /// As [`BrokerTerms::startup_ms`], for this engine. `None`: not measured yet.
    #[serde(default)]
    pub startup_ms: Option<f64>,
    /// Workers this engine runs at once, all clients together (0: no limit of its own).
    #[serde(default)]
    pub max_workers: u32,
}

/// Another open tab, as the extension sees it, so a plan leaves room for the browser's other
/// pages and not only for other applications.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TabLoad {
    pub tab_id: i64,
    /// The selected tab of its window.
    #[serde(default)]
    pub active: bool,
    /// Active in a window that is not minimized.
    #[serde(default)]
    pub visible: bool,
    /// Playing sound (background tabs that do are not throttled by the browser).
    #[serde(default)]
    pub audible: bool,
    /// Unloaded by the browser to save memory: it uses nothing until reloaded.
    #[serde(default)]
    pub discarded: bool,
    /// What Foresight predicted the tab's page needs (main thread plus local workers, p50),
    /// CPU ms over the policy horizon; 0 when the tab was not analysed.
    #[serde(default)]
    pub predicted_cpu_ms: f64,
    #[serde(default)]
    pub predicted_memory_bytes: u64,
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
    /// Expected completion time on this machine under the measured contention, ms.
    #[serde(default)]
    pub local_ms: Option<f64>,
    /// Expected completion time on the broker, transfer and start-up included, ms (`None`
    /// when no broker is usable).
    #[serde(default)]
    pub remote_ms: Option<f64>,
    /// The broker engine `remote_ms` is for, when the broker announced its engines: the one
    /// a remote component is spawned on (`worker_spawn`'s `engine`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<EngineKind>,
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
    /// What to reserve for each execution path, in the demand's order.
    #[serde(default)]
    pub paths: Vec<PathPlan>,
    /// When the page's predicted work should be done under this plan, ms from its start.
    #[serde(default)]
    pub expected_completion_ms: Option<f64>,
}

/// The reservation for one execution path of the page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PathPlan {
    /// The path's name, as in the demand (`load`, `click button#go`).
    pub name: String,
    /// On this machine, at the policy quantile: CPU as the path's peak rate, its memory and
    /// its network bandwidth.
    pub local: ResourceAmounts,
    /// Leased for the components this path starts; `None` when they all run locally.
    #[serde(default)]
    pub remote: Option<ResourceAmounts>,
    /// Ids of the path's components placed remotely.
    #[serde(default)]
    pub remote_components: Vec<String>,
}

impl Plan {
    /// The placement for a worker script URL, if the plan has one.
    pub fn placement_for_url(&self, url: &str) -> Option<&Placement> {
        self.placements
            .iter()
            .find(|p| p.url.as_deref() == Some(url))
    }
}
