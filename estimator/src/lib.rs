//! Foresight's Resource Estimator: predicts what a page's likely execution paths will cost
//! (CPU, memory, network) from its sources, before any of its code runs.
//!
//! It is a pure function ([`estimate`]): no I/O, clocks, randomness or threads, the same
//! output for the same input, and no panics on any input, because it runs as wasm inside the
//! browser extension, where a panic or a stack overflow aborts the whole instance.
//!
//! The work is a pipeline of passes, one concern each:
//!
//! 1. [`parse`]: a nesting prescan refuses input that would overflow swc's recursive parser,
//!    then swc parses each script (classic scripts as scripts, modules as modules, each
//!    falling back to the other goal).
//! 2. [`collect`]: one AST walk per script records bodies of code, scopes, call sites,
//!    handler/timer registrations, workers, network requests and each body's cost shape
//!    ([`ir`]). The AST is dropped right after.
//! 3. [`resolve`]: calls, callbacks, `const` loop bounds and worker URLs are resolved against
//!    the whole page (classic scripts share one global scope).
//! 4. [`graph`]: the execution dependency graph (petgraph) of all of the above.
//! 5. [`cost`]: every body is priced bottom-up over the call graph's strongly connected
//!    components, in work units with uncertainty ([`dist`]), using [`builtins`] for the
//!    platform's costly operations.
//! 6. [`paths`]: the load path, one interaction path per handler, one component per worker,
//!    converted to milliseconds with the device [`Calibration`]; each path's demand over
//!    time is laid out by [`curve`].

pub mod builtins;
pub mod collect;
pub mod cost;
pub mod curve;
pub mod dist;
pub mod graph;
pub mod ir;
pub mod parse;
pub mod paths;
pub mod resolve;
pub mod url;

use foresight_shared::protocol::demand::{PageDemand, PageSources, ScriptKind, ScriptSource};

use crate::collect::Target;
use crate::ir::{BodyKind, CalleeRef, Collected, RegKind, Registration, ScopeId, ScriptStatus};
use crate::parse::{Goal, Parsed};

/// How fast this device runs the estimator's abstract work units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Calibration {
    /// Work units per millisecond.
    pub units_per_ms: f64,
}

impl Default for Calibration {
    /// One unit is about one simple JS operation; V8's optimising tier on a mid-range laptop
    /// runs roughly a billion of those per second.
    fn default() -> Self {
        Calibration { units_per_ms: 1e6 }
    }
}

impl Calibration {
    /// The calibration actually used: a non-finite or non-positive rate falls back to the
    /// default instead of producing infinite or negative times.
    fn effective_units_per_ms(&self) -> f64 {
        if self.units_per_ms.is_finite() && self.units_per_ms > 0.0 {
            self.units_per_ms
        } else {
            Calibration::default().units_per_ms
        }
    }
}

/// Predicts the demand of the page captured in `sources`.
pub fn estimate(sources: &PageSources, calibration: &Calibration) -> PageDemand {
    let mut a = analyse(sources);
    let mut warnings = std::mem::take(&mut a.collected.warnings);
    let model = cost::CostModel::new(
        &a.collected,
        &a.resolution,
        &a.graph,
        sources.activity.dom_nodes,
    );
    let p = paths::Paths::new(sources, &a, &model, calibration.effective_units_per_ms());
    let mut path_list = vec![p.load()];
    path_list.extend(p.interactions(&mut warnings));
    let components = p.components();
    PageDemand {
        url: sources.url.clone(),
        paths: path_list,
        components,
        graph: graph::summary(&a.collected, &a.resolution, &a.graph),
        warnings,
        truncated: false,
    }
}

/// The page's structure, before any pricing: what [`estimate`] computes first. Public for
/// tests and tools that inspect the graph; the passes' types are not a stable API.
pub struct Analysis {
    pub collected: Collected,
    pub resolution: resolve::Resolution,
    /// Resolved URL of each worker site (`collected.spawns`), when the syntax gives one.
    pub worker_urls: Vec<Option<String>>,
    pub graph: graph::ExecGraph,
    /// The global scope shared by the page's classic scripts.
    pub page_realm: ScopeId,
}

/// Parses, collects and resolves every script and inline handler, and builds the graph.
pub fn analyse(sources: &PageSources) -> Analysis {
    let mut c = Collected::default();
    let page_realm = c.new_scope(None);
    for (i, script) in sources.scripts.iter().enumerate() {
        let status = collect_script(&mut c, i, script, page_realm);
        c.scripts.push(status);
    }
    for (i, h) in sources.handlers.iter().enumerate() {
        collect_inline_handler(&mut c, i, &h.element, &h.event, &h.source, page_realm);
    }
    let resolution = resolve::resolve(&mut c);
    let worker_urls = resolve::worker_urls(&c, sources);
    let graph = graph::build(&c, &resolution, &worker_urls, sources);
    Analysis {
        collected: c,
        resolution,
        worker_urls,
        graph,
        page_realm,
    }
}

fn script_label(i: usize, script: &ScriptSource) -> String {
    match &script.url {
        Some(u) => format!("script {u}"),
        None => format!("inline script #{i}"),
    }
}

/// Parses and collects one script; on any failure records why and prices it by size.
fn collect_script(
    c: &mut Collected,
    i: usize,
    script: &ScriptSource,
    page_realm: ScopeId,
) -> ScriptStatus {
    let label = script_label(i, script);
    let Some(src) = script.source.as_deref() else {
        c.warnings.push(format!(
            "{label}: source not available; priced by its size ({} bytes)",
            script.bytes
        ));
        return ScriptStatus::BySize;
    };
    if let Err(refusal) = parse::prescan(src) {
        c.warnings.push(format!(
            "{label}: not analysed, {refusal}; priced by its size"
        ));
        return ScriptStatus::BySize;
    }
    let goal = match script.kind {
        ScriptKind::Module => Goal::Module,
        _ => Goal::Script,
    };
    let program = match parse::parse(src, goal) {
        Parsed::Ok(p) => p,
        Parsed::Recovered(p, msg) => {
            c.parse_errors = c.parse_errors.saturating_add(1);
            c.warnings.push(format!(
                "{label}: syntax error: {msg}; analysed what could be parsed"
            ));
            p
        }
        Parsed::Failed(msg) => {
            c.parse_errors = c.parse_errors.saturating_add(1);
            c.warnings
                .push(format!("{label}: syntax error: {msg}; priced by its size"));
            return ScriptStatus::BySize;
        }
    };
    // Each worker runs in its own global scope; everything else shares the page's.
    let worker = script.kind == ScriptKind::Worker;
    let realm = if worker {
        c.new_scope(None)
    } else {
        page_realm
    };
    let body = collect::collect(
        c,
        &program,
        Target {
            script: Some(i),
            src,
            realm,
            kind: BodyKind::Script,
            name: script.url.clone(),
            label: &label,
            worker,
        },
    );
    ScriptStatus::Parsed(body)
}

/// An inline `on*` attribute: its code is the handler's body, registered by the document.
fn collect_inline_handler(
    c: &mut Collected,
    i: usize,
    element: &str,
    event: &str,
    src: &str,
    page_realm: ScopeId,
) {
    let label = format!("inline {event} handler #{i} on {element}");
    let program = match parse::prescan(src) {
        Err(refusal) => {
            c.warnings.push(format!("{label}: not analysed, {refusal}"));
            None
        }
        Ok(()) => match parse::parse(src, Goal::Script) {
            Parsed::Ok(p) => Some(p),
            Parsed::Recovered(p, msg) => {
                c.parse_errors = c.parse_errors.saturating_add(1);
                c.warnings.push(format!("{label}: syntax error: {msg}"));
                Some(p)
            }
            Parsed::Failed(msg) => {
                c.parse_errors = c.parse_errors.saturating_add(1);
                c.warnings.push(format!("{label}: syntax error: {msg}"));
                None
            }
        },
    };
    let callback = program.map(|p| {
        CalleeRef::Body(collect::collect(
            c,
            &p,
            Target {
                script: None,
                src,
                realm: page_realm,
                kind: BodyKind::InlineHandler,
                name: Some(format!("on{event}")),
                label: &label,
                worker: false,
            },
        ))
    });
    c.registrations.push(Registration {
        body: None,
        scope: page_realm,
        kind: RegKind::Event {
            event: event.to_string(),
            target: element.to_string(),
        },
        callback,
    });
}
