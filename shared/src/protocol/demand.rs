//! What the extension captures from a page ([`PageSources`]) and what the Resource Estimator
//! predicts from it ([`PageDemand`]).
//!
//! `PageSources` crosses from the extension's JavaScript into the wasm estimator; `PageDemand`
//! goes from the extension to the native host inside a plan request, and is shown in the popup.

use serde::{Deserialize, Serialize};

use super::Quantiles;

/// Everything the content script and background captured about one page load.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PageSources {
    /// The document's URL; relative script and worker URLs resolve against it.
    pub url: String,
    /// Size of the HTML document in bytes.
    #[serde(default)]
    pub html_bytes: u64,
    /// Scripts in document order, plus worker scripts the background fetched.
    #[serde(default)]
    pub scripts: Vec<ScriptSource>,
    /// Inline event-handler attributes (`onclick="..."`).
    #[serde(default)]
    pub handlers: Vec<InlineHandler>,
    #[serde(default)]
    pub stylesheets: Vec<StylesheetSource>,
    #[serde(default)]
    pub activity: TabActivity,
}

/// How the browser runs a script, which decides when it runs on the load path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScriptKind {
    #[default]
    Classic,
    Async,
    Defer,
    Module,
    /// A worker's entry script, fetched because page code creates that worker.
    Worker,
    #[serde(other)]
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ScriptSource {
    /// Absolute URL for external scripts; `None` for inline ones.
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub kind: ScriptKind,
    /// The source text; `None` when it could not be fetched (the estimator then prices the
    /// script from `bytes` alone and says so).
    #[serde(default)]
    pub source: Option<String>,
    /// Size in bytes (of `source` when present, else as reported by the network).
    #[serde(default)]
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct InlineHandler {
    /// A short description of the element, e.g. `button#go`.
    pub element: String,
    /// The event name without the `on` prefix, e.g. `click`.
    pub event: String,
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct StylesheetSource {
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub bytes: u64,
    /// Number of CSS rules, when the sheet was readable.
    #[serde(default)]
    pub rules: Option<u32>,
}

/// What the tab was doing when it was captured.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TabActivity {
    #[serde(default)]
    pub visible: bool,
    #[serde(default)]
    pub focused: bool,
    /// DOM element count at capture time.
    #[serde(default)]
    pub dom_nodes: u32,
    /// User interactions (clicks, keys) seen so far.
    #[serde(default)]
    pub interactions: u32,
    /// Selectors (`#id`) of elements with an id that had no box at capture time
    /// (`display: none`, detached): handlers bound to them are less likely to run.
    #[serde(default)]
    pub hidden_targets: Vec<String>,
}

/// The estimator's prediction for one page.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PageDemand {
    pub url: String,
    /// One entry per likely execution path; the first is always the load path.
    pub paths: Vec<PathDemand>,
    /// Parts of the page that could run elsewhere (workers), with their own cost.
    #[serde(default)]
    pub components: Vec<ComponentDemand>,
    #[serde(default)]
    pub graph: GraphSummary,
    /// Things the estimator could not analyse (parse errors, missing sources), in words.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Whether the page exceeded the estimator's work budget, so that some of its code was
    /// priced by size instead of analysed (the warnings say which).
    #[serde(default)]
    pub truncated: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PathKind {
    /// Scripts in the order the browser runs them, then load-time handlers and timers.
    Load,
    /// A user interaction: one handler for one event.
    Interaction,
    #[serde(other)]
    Unknown,
}

/// Predicted cost of one execution path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PathDemand {
    /// `load`, or e.g. `click button#go`.
    pub name: String,
    pub kind: PathKind,
    /// Probability that this path runs at all in a visit.
    pub probability: f64,
    /// CPU time on the main thread, in milliseconds on this device.
    pub cpu_ms: Quantiles,
    /// Peak additional memory, bytes.
    pub memory_bytes: Quantiles,
    /// Bytes fetched over the network.
    pub network_bytes: Quantiles,
    /// For an interaction path: the event that triggers it (`click`, `input`, `submit`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// For an interaction path: a CSS selector for the element the handler is registered on
    /// (`#sort`, `button#go`; for a delegated handler, the ancestor it is registered on, such
    /// as `document` or `window`). When the code names its element in a way that is not a
    /// selector (a variable whose value is not known), the expression as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// How the path's demand is spread over time after it starts. Empty from estimators that
    /// predate it.
    #[serde(default)]
    pub curve: DemandCurve,
}

/// A path's demand over time: consecutive buckets of equal width from the path's start (the
/// start of navigation for the load path, the event's dispatch for an interaction).
///
/// The clock is the main thread's: code runs back to back in the order the browser would run
/// it, and timers wait for their delay; waiting on the network is not modelled (requests are
/// assumed to complete as fast as the page consumes them). Each bucket's `cpu_ms` quantiles
/// come from laying the path out with every part at that quantile of its duration, so the
/// p90 curve is the slow case throughout and stretches further in time than the p50 curve.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct DemandCurve {
    /// Width of each bucket in milliseconds (a 1, 2 or 5 times a power of ten).
    #[serde(default)]
    pub bucket_ms: f64,
    /// Bucket `i` covers `[i * bucket_ms, (i + 1) * bucket_ms)`.
    #[serde(default)]
    pub buckets: Vec<CurveBucket>,
}

/// What a path demands during one bucket of its [`DemandCurve`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurveBucket {
    /// Main-thread CPU time spent in the bucket, ms (at most `bucket_ms`).
    pub cpu_ms: Quantiles,
    /// Memory the path holds by the end of the bucket, bytes (cumulative: the last bucket's
    /// equals the path's `memory_bytes`).
    pub memory_bytes: Quantiles,
    /// Bytes requested during the bucket.
    pub network_bytes: Quantiles,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ComponentKind {
    /// A dedicated Web Worker (`new Worker(url)`).
    Worker,
    #[serde(other)]
    Unknown,
}

/// A separately placeable part of the page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComponentDemand {
    /// Stable within one estimate; plans refer to components by it.
    pub id: String,
    pub kind: ComponentKind,
    /// The absolute URL of the component's script, when the estimator could resolve it.
    #[serde(default)]
    pub url: Option<String>,
    /// Whether the component's own source was available to the estimator.
    #[serde(default)]
    pub source_known: bool,
    pub cpu_ms: Quantiles,
    pub memory_bytes: Quantiles,
    /// Whether the component may run remotely at all (e.g. it needs no DOM).
    pub offloadable: bool,
}

/// Size of the execution dependency graph, for display and sanity checks.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct GraphSummary {
    pub nodes: u32,
    pub edges: u32,
    pub scripts: u32,
    pub functions: u32,
    /// Call sites whose callee could not be resolved (recorded, never dropped).
    pub unresolved_calls: u32,
    pub parse_errors: u32,
}
