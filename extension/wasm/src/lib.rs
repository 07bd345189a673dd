//! The thin wasm-bindgen layer between the extension's JavaScript and Foresight's pure Rust
//! cores: the Resource Estimator and the fallback planner.
//!
//! Values cross as JSON text: the types are defined once, in `foresight-shared`, and the JS
//! side only calls `JSON.stringify`/`JSON.parse`. Bad input becomes a JS exception with a
//! message, never a panic (a panic in wasm32 aborts and poisons the whole instance).

use foresight_estimator::Calibration;
use foresight_shared::planner::{self, PlanInput};
use foresight_shared::protocol::PROTOCOL_VERSION;
use foresight_shared::protocol::demand::{PageDemand, PageSources};
use foresight_shared::protocol::plan::{
    BrokerTerms, ContentionSnapshot, PlanSource, Policy, TabLoad,
};
use wasm_bindgen::prelude::*;

pub mod pool;
mod text;

/// Small blocks from size-class pools, the rest (and the pools' chunks) from talc.
#[cfg(all(not(target_feature = "atomics"), target_family = "wasm"))]
#[global_allocator]
static ALLOCATOR: pool::Pooled<talc::wasm::WasmDynamicTalc> =
    pool::Pooled::new(talc::wasm::new_wasm_dynamic_allocator());

fn parse<T: serde::de::DeserializeOwned>(what: &str, json: &str) -> Result<T, JsError> {
    serde_json::from_str(json).map_err(|e| JsError::new(&format!("invalid {what}: {e}")))
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, JsError> {
    serde_json::to_string(value).map_err(|e| JsError::new(&format!("cannot encode result: {e}")))
}

/// `PageSources` JSON -> `PageDemand` JSON, with `units_per_ms` from the device calibration.
///
/// `texts[i]`, when it is a string, is the text of `scripts[i]` and replaces that script's
/// `source` in the JSON; `null` (or a shorter array) leaves the JSON's own. Script texts are
/// most of a page's bytes: passed as strings they skip `JSON.stringify` in the extension and
/// serde's unescaping here (about 2.5% of a 2 MB estimate), and the JSON is a few hundred
/// bytes. They are encoded by `TextEncoder.encodeInto` (see `text.rs`).
#[wasm_bindgen]
pub fn estimate(
    sources_json: &str,
    texts: Vec<JsValue>,
    units_per_ms: f64,
) -> Result<String, JsError> {
    let mut sources: PageSources = parse("page sources", sources_json)?;
    if texts.len() > sources.scripts.len() {
        return Err(JsError::new(&format!(
            "invalid page sources: {} script texts for {} scripts",
            texts.len(),
            sources.scripts.len()
        )));
    }
    for (script, text) in sources.scripts.iter_mut().zip(texts) {
        if let Some(text) = text::string_of(&text) {
            script.source = Some(text);
        } else if !text.is_null() && !text.is_undefined() {
            return Err(JsError::new(
                "invalid page sources: a script text is neither a string nor null",
            ));
        }
    }
    let mut calibration = Calibration::default();
    if units_per_ms.is_finite() && units_per_ms > 0.0 {
        calibration.units_per_ms = units_per_ms;
    }
    to_json(&foresight_estimator::estimate(&sources, &calibration))
}

/// The work units the estimator predicts for one call of `entry` after `source` is loaded:
/// the extension times its calibration kernel and divides by this (see
/// `foresight_estimator::calibration`).
#[wasm_bindgen]
pub fn calibration_units(source: &str, entry: &str) -> f64 {
    foresight_estimator::calibration::call_units(source, entry)
}

/// Plans a page inside the extension, for when no native host answers. `broker_json` is
/// `null` when no broker is reachable; `tabs_json` lists the browser's other tabs (`[]` or
/// `null` when unknown), the same `TabLoad`s the host's `plan` request carries, so the
/// fallback accounts for other tabs as the host does.
#[wasm_bindgen]
pub fn plan_fallback(
    demand_json: &str,
    contention_json: &str,
    policy_json: &str,
    broker_json: &str,
    tabs_json: &str,
) -> Result<String, JsError> {
    let demand: PageDemand = parse("demand", demand_json)?;
    let contention: ContentionSnapshot = parse("contention", contention_json)?;
    let policy: Policy = parse("policy", policy_json)?;
    let broker: Option<BrokerTerms> = parse("broker terms", broker_json)?;
    let tabs: Option<Vec<TabLoad>> = parse("tabs", tabs_json)?;
    let plan = planner::plan(PlanInput {
        demand: &demand,
        contention: &contention,
        policy: &policy,
        broker: broker.as_ref(),
        tabs: tabs.as_deref().unwrap_or_default(),
        source: PlanSource::ExtensionFallback,
    });
    to_json(&plan)
}

/// Overflows the wasm stack on purpose, as deeply nested page code once did inside swc: the
/// trap leaves this instance broken for good (every later call traps too). It exists so the
/// tests can prove that `extension/src/estimator.js` re-instantiates the module and carries
/// on; the extension itself never calls it.
#[wasm_bindgen]
pub fn debug_overflow_stack() -> u32 {
    deep(0)
}

#[allow(unconditional_recursion)]
fn deep(level: u32) -> u32 {
    // A frame the optimiser can neither drop nor turn into a loop.
    let frame = std::hint::black_box([level; 256]);
    let below = deep(std::hint::black_box(level.wrapping_add(1)));
    frame.iter().fold(below, |a, b| a.wrapping_add(*b))
}

/// Parses `source` as a classic script with swc and nothing else (no prescan, no walk), and
/// says whether it parsed: the baseline the benchmarks compare the estimator's wasm
/// throughput with, in the same runtime. The extension itself never calls it.
#[wasm_bindgen]
pub fn bench_parse(source: JsValue) -> bool {
    // The text comes in as `estimate`'s script texts do, so the ratio compares like with like.
    let source = text::string_of(&source).unwrap_or_default();
    matches!(
        foresight_estimator::parse::parse(&source, foresight_estimator::parse::Goal::Script),
        foresight_estimator::parse::Parsed::Ok(_)
    )
}

/// The wire protocol version this build speaks.
#[wasm_bindgen]
pub fn protocol_version() -> u32 {
    PROTOCOL_VERSION
}
