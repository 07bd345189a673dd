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
//!    Scripts [`libraries`] recognises (jQuery, React, lodash...) are not parsed: they are
//!    priced from profiles measured in a browser.
//! 2. [`collect`]: one AST walk per script records bodies of code, scopes, call sites,
//!    handler/timer registrations, workers, network requests and each body's cost shape
//!    ([`ir`]). The AST is dropped right after.
//! 3. [`resolve`]: calls, callbacks, `const` loop bounds and worker URLs are resolved against
//!    the whole page (classic scripts share one global scope).
//! 4. [`graph`]: the execution dependency graph (petgraph) of all of the above.
//! 5. [`cost`]: every body is priced bottom-up over the call graph's strongly connected
//!    components, in work units with uncertainty ([`dist`]), using [`builtins`] for the
//!    platform's costly operations; a self-recursion started from a constant gets its depth
//!    from [`recursion`], and a callee that loops over a parameter is priced again per call
//!    site with the size of what that site hands it.
//! 6. [`paths`]: the load path, one interaction path per handler (with how likely a visit
//!    runs it, [`interaction`]), one component per worker, converted to milliseconds with the
//!    device [`Calibration`]; each path's demand over time is laid out by [`curve`].
//!
//! The unit costs of step 5 are scaled per operation class by [`weights`], fitted on
//! micro-benchmarks measured in a browser (`cargo xtask accuracy --fit`).

pub mod budget;
pub mod builtins;
pub mod calibration;
pub mod collect;
pub mod cost;
pub mod curve;
pub mod dist;
mod fitted;
pub mod graph;
pub mod interaction;
pub mod ir;
pub mod libraries;
pub mod parse;
pub mod paths;
pub mod recursion;
pub mod resolve;
pub mod url;
pub mod weights;

use foresight_shared::protocol::demand::{PageDemand, PageSources, ScriptKind, ScriptSource};

pub use crate::budget::Budget;
use crate::collect::Target;
use crate::ir::{BodyKind, CalleeRef, Collected, RegKind, Registration, ScopeId, ScriptStatus};
use crate::parse::{Goal, Parsed};
pub use crate::weights::{Class, Weights};

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

/// Predicts the demand of the page captured in `sources`, within the default work [`Budget`].
pub fn estimate(sources: &PageSources, calibration: &Calibration) -> PageDemand {
    estimate_within(sources, calibration, Budget::default())
}

/// [`estimate`] with an explicit work budget.
pub fn estimate_within(
    sources: &PageSources,
    calibration: &Calibration,
    budget: Budget,
) -> PageDemand {
    estimate_weighted(sources, calibration, budget, Weights::default())
}

/// [`estimate_within`] with explicit unit weights: what the weight fit prices its
/// benchmarks with, one class at a time.
pub fn estimate_weighted(
    sources: &PageSources,
    calibration: &Calibration,
    budget: Budget,
    weights: Weights,
) -> PageDemand {
    let mut a = analyse_weighted(sources, budget, weights);
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
        truncated: a.collected.budget.truncated(),
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
    analyse_within(sources, Budget::default())
}

/// [`analyse`] with an explicit work budget.
pub fn analyse_within(sources: &PageSources, budget: Budget) -> Analysis {
    analyse_weighted(sources, budget, Weights::default())
}

/// [`analyse_within`] with explicit unit weights.
pub fn analyse_weighted(sources: &PageSources, budget: Budget, weights: Weights) -> Analysis {
    let mut c = Collected {
        budget: budget::Spend::new(budget),
        weights,
        ..Collected::default()
    };
    let page_realm = c.new_scope(None);
    for (i, script) in sources.scripts.iter().enumerate() {
        let status = collect_script(&mut c, i, script, page_realm);
        c.scripts.push(status);
    }
    for (i, h) in sources.handlers.iter().enumerate() {
        collect_inline_handler(&mut c, i, &h.element, &h.event, &h.source, page_realm);
    }
    // swc interns every literal's raw text in hstr's thread-wide atom store, which keeps an
    // entry until told to let go of those nobody else holds. The ASTs are gone by now, so
    // their literals go; without this, every distinct literal of every page analysed stayed
    // in the extension's wasm memory for good (about 2 MiB per page of 40,000 literals).
    swc_atoms::hstr::global_atom_store_gc();
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

/// A page at `url` whose only content is one classic inline script: what the calibration
/// kernel and the cost tests price.
pub(crate) fn one_script_page(url: &str, source: String) -> PageSources {
    PageSources {
        url: url.into(),
        scripts: vec![ScriptSource {
            url: None,
            kind: ScriptKind::Classic,
            bytes: source.len() as u64,
            source: Some(source),
        }],
        ..PageSources::default()
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
    // Each worker runs in its own global scope; everything else shares the page's.
    let worker = script.kind == ScriptKind::Worker;
    if script.kind != ScriptKind::Module
        && let Some((profile, how)) = libraries::recognise(src)
    {
        let realm = if worker {
            c.new_scope(None)
        } else {
            page_realm
        };
        let id = c.libraries.len();
        c.libraries.push(ir::LoadedLibrary {
            profile,
            how,
            script: i,
            bytes: src.len() as u64,
        });
        for global in profile.globals {
            c.bind(realm, ir::Atom::from(*global), ir::Binding::Library(id));
        }
        return ScriptStatus::Library(id);
    }
    let goal = match script.kind {
        ScriptKind::Module => Goal::Module,
        _ => Goal::Script,
    };
    let Some(program) = guarded_parse(c, &label, src, goal, "; priced by its size") else {
        return ScriptStatus::BySize;
    };
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

/// Parses `src` if the page's budget and the nesting prescan allow, charging the budget.
/// Records why not (with `fallback` saying what happens instead) or any syntax error.
fn guarded_parse(
    c: &mut Collected,
    label: &str,
    src: &str,
    goal: Goal,
    fallback: &str,
) -> Option<swc_ecma_ast::Program> {
    let bytes = src.len() as u64;
    let admitted = match c.budget.nodes_spent() {
        Some(spent) => Err(spent),
        None => c.budget.admit_bytes(bytes),
    };
    if let Err(exceeded) = admitted {
        c.warnings
            .push(format!("{label}: not analysed, {exceeded}{fallback}"));
        return None;
    }
    let prescan = match parse::prescan(src) {
        Ok(p) => p,
        Err(refusal) => {
            c.warnings
                .push(format!("{label}: not analysed, {refusal}{fallback}"));
            return None;
        }
    };
    if let Err(exceeded) = c.budget.charge_parse(bytes, &prescan) {
        c.warnings
            .push(format!("{label}: not analysed, {exceeded}{fallback}"));
        return None;
    }
    match parse::parse(src, goal) {
        Parsed::Ok(p) => Some(p),
        Parsed::Recovered(p, msg) => {
            c.parse_errors = c.parse_errors.saturating_add(1);
            c.warnings.push(format!(
                "{label}: syntax error: {msg}; analysed what could be parsed"
            ));
            Some(p)
        }
        Parsed::Failed(msg) => {
            c.parse_errors = c.parse_errors.saturating_add(1);
            c.warnings
                .push(format!("{label}: syntax error: {msg}{fallback}"));
            None
        }
    }
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
    let program = guarded_parse(c, &label, src, Goal::Script, "");

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
