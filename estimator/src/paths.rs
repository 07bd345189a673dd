//! The paths pass: turns priced bodies into the page's predicted execution paths and its
//! offloadable components.
//!
//! The load path is what the browser runs without any user input: the document and style
//! sheets, every script in execution order (classic and async in document order, then defer
//! and module scripts), then the `load`/`DOMContentLoaded` handlers and the timers that code
//! reached from there registers (and completion events like `xhr.onload` that such code
//! sets up). Each other event handler is an interaction path. Each worker
//! created with a URL the syntax gives is a component, priced from its own script when the
//! page sources include it.

use std::collections::{BTreeMap, BTreeSet};

use foresight_shared::protocol::demand::{
    ComponentDemand, ComponentKind, PageSources, PathDemand, PathKind, ScriptKind, ScriptSource,
};

use crate::cost::{
    BY_SIZE_EXEC_UNITS_PER_BYTE, Cost, CostModel, PARSE_UNITS_PER_BYTE, UNRESOLVED_CALL_UNITS,
};
use crate::curve::Timeline;
use crate::dist::Dist;
use crate::graph::{self, ExecGraph};
use crate::ir::{BodyId, Collected, RegId, RegKind, Registration, ScopeId, ScriptStatus};
use crate::weights::{Class, Weights};
use crate::{Analysis, interaction};

/// Blink parses HTML and builds the DOM at roughly 50 MB/s: 20 units per byte.
pub const HTML_UNITS_PER_BYTE: f64 = 20.0;
/// CSS parsing is about twice as fast as HTML per byte; each rule then costs style matching.
pub const CSS_UNITS_PER_BYTE: f64 = 10.0;
pub const CSS_RULE_UNITS: f64 = 100.0;
/// A script's memory beyond what its code allocates: the source string plus bytecode and
/// metadata, about as large again.
pub const SCRIPT_MEMORY_PER_BYTE: f64 = 2.0;
/// DOM and layout objects take several times the HTML that produced them.
pub const HTML_MEMORY_PER_BYTE: f64 = 4.0;
/// Dispatching one event to one listener (event object, propagation path).
pub const EVENT_DISPATCH_UNITS: f64 = 200.0;
/// Interaction paths listed at most; the rest are summarised in a warning, which keeps the
/// plan request small for pages with thousands of handlers.
pub const MAX_INTERACTION_PATHS: usize = 100;
/// The unit model's own error, applied to every CPU prediction: even with every loop bound
/// known, a work unit is not a fixed number of nanoseconds (JIT tiers, cache effects). Fitted
/// with the unit weights, from the benchmarks' leave-one-out residuals (`fitted.rs`).
pub const MODEL_SPREAD: (f64, f64) = crate::fitted::CPU_SPREAD;
/// Starting a worker: a new isolate and thread, ~2 ms.
pub const WORKER_STARTUP_UNITS: f64 = 2e6;
/// A worker's heap before its code allocates anything.
pub const WORKER_BASE_BYTES: f64 = 2.0 * 1024.0 * 1024.0;
/// A worker whose script the estimator has not seen.
pub const UNKNOWN_WORKER_CPU_MS: Dist = Dist::new(1.0, 20.0, 500.0);
pub const UNKNOWN_WORKER_BYTES: Dist = Dist::new(1_048_576.0, 4_194_304.0, 33_554_432.0);
/// The memory model's own error, like [`MODEL_SPREAD`] for CPU: object and array sizes are
/// V8's typical ones, and the heap holds more than what the code allocates (hidden classes,
/// feedback vectors, compiled code).
pub const MEMORY_SPREAD: (f64, f64) = (0.6, 1.6);
/// Bytes on the wire per response beyond its body (status line and headers).
pub const RESPONSE_OVERHEAD_BYTES: f64 = 250.0;
/// A response's size on the wire against the size captured: compression (unknown here) can
/// shrink text several times; headers and cookies add a little.
pub const NETWORK_SPREAD: (f64, f64) = (0.3, 1.1);
/// When a `requestAnimationFrame` callback runs after it is requested: the next frame.
pub const FRAME_MS: f64 = 16.7;

/// Everything the paths pass reads.
pub struct Paths<'a> {
    pub sources: &'a PageSources,
    pub c: &'a Collected,
    pub g: &'a ExecGraph,
    pub model: &'a CostModel<'a>,
    pub callbacks: &'a [Option<BodyId>],
    /// Values of the numeric expressions (timer delays).
    pub nums: &'a [Option<f64>],
    pub worker_urls: &'a [Option<String>],
    pub units_per_ms: f64,
    pub page_realm: ScopeId,
    /// Registrations by the body that registers them.
    by_body: BTreeMap<BodyId, Vec<RegId>>,
}

/// Whether an event target is the page itself (window, document, body).
fn global_target(target: &str) -> bool {
    let t = target.trim_start_matches("$(").trim_end_matches(')');
    matches!(
        t,
        "window" | "document" | "self" | "globalThis" | "body" | "document.body"
    ) || t.starts_with("body")
}

/// The page's own load events: they run on the load path.
fn is_load_event(reg: &Registration) -> bool {
    match &reg.kind {
        RegKind::Event { event, target } => {
            global_target(target)
                && matches!(
                    event.as_str(),
                    "load" | "DOMContentLoaded" | "readystatechange" | "pageshow"
                )
        }
        RegKind::Timer { .. } => false,
    }
}

/// Registrations that run as a consequence of the code that made them, not of a user action:
/// timers, and completion events of things that code started (`xhr.onload`, `img.onload`).
/// They count on whichever path registered them and get no path of their own.
fn follows_registrar(reg: &Registration) -> bool {
    match &reg.kind {
        RegKind::Timer { .. } => true,
        RegKind::Event { event, target } => {
            !global_target(target)
                && matches!(
                    event.as_str(),
                    "load" | "loadend" | "readystatechange" | "error"
                )
        }
    }
}

/// A script's size: its source's when captured, else what the network reported.
fn script_bytes(script: &ScriptSource) -> f64 {
    script
        .source
        .as_ref()
        .map_or(script.bytes as f64, |s| s.len() as f64)
}

fn parse_units(script: &ScriptSource, weights: &Weights) -> f64 {
    script_bytes(script) * PARSE_UNITS_PER_BYTE * weights.get(Class::Parse)
}

impl<'a> Paths<'a> {
    pub fn new(
        sources: &'a PageSources,
        analysis: &'a Analysis,
        model: &'a CostModel<'a>,
        units_per_ms: f64,
    ) -> Self {
        let c = &analysis.collected;
        let mut by_body: BTreeMap<BodyId, Vec<RegId>> = BTreeMap::new();
        for (id, reg) in c.registrations.iter().enumerate() {
            if let Some(b) = reg.body {
                by_body.entry(b).or_default().push(id);
            }
        }
        Paths {
            sources,
            c,
            g: &analysis.graph,
            model,
            callbacks: &analysis.resolution.callbacks,
            nums: &analysis.resolution.nums,
            worker_urls: &analysis.worker_urls,
            units_per_ms,
            page_realm: analysis.page_realm,
            by_body,
        }
    }

    fn ms(&self, units: Dist) -> Dist {
        units
            .scale(1.0 / self.units_per_ms)
            .widen(MODEL_SPREAD.0, MODEL_SPREAD.1)
    }

    /// Execution of the part of script `i` the walk did not reach (budget spent), by size.
    fn unanalysed(&self, i: usize) -> Dist {
        self.c.unanalysed_bytes.get(&i).map_or(Dist::ZERO, |rest| {
            BY_SIZE_EXEC_UNITS_PER_BYTE.scale(*rest as f64)
        })
    }

    /// Running a registration's callback once.
    fn callback_cost(&self, reg: RegId) -> Cost {
        let mut cost = match self.callbacks.get(reg).copied().flatten() {
            Some(b) => self.model.body(b),
            None => Cost::cpu(UNRESOLVED_CALL_UNITS),
        };
        cost.add(Cost::cpu(Dist::exact(EVENT_DISPATCH_UNITS)));
        cost
    }

    /// How long after its registrar's code ends a registration's callback becomes ready, ms.
    fn delay_ms(&self, reg: &Registration) -> f64 {
        match &reg.kind {
            RegKind::Timer { api, delay } => match *api {
                "requestAnimationFrame" => FRAME_MS,
                _ => delay
                    .and_then(|d| self.nums.get(d).copied().flatten())
                    .filter(|d| d.is_finite())
                    .unwrap_or(0.0)
                    .max(0.0),
            },
            RegKind::Event { .. } => 0.0,
        }
    }

    /// Adds, as segments of `timeline`, the registrations `include` accepts among those made
    /// by code reachable from `entries` (each a body and the segment it runs in), through
    /// calls and through the callbacks of included registrations, so a timer set by a load
    /// handler counts too. A registration's segment waits for its registrar's segment (or for
    /// `load_events_after`, for the page's load events) plus its delay. Each registration
    /// counts once, ever, in one `seen` set.
    fn registered(
        &self,
        entries: &[(BodyId, usize)],
        include: &dyn Fn(&Registration) -> bool,
        seen: &mut BTreeSet<RegId>,
        timeline: &mut Timeline,
        load_events_after: Option<usize>,
    ) {
        let mut visited: BTreeSet<BodyId> = BTreeSet::new();
        let mut stack: Vec<(BodyId, usize)> = entries.to_vec();
        while let Some((b, segment)) = stack.pop() {
            if !visited.insert(b) {
                continue;
            }
            for reg in self.by_body.get(&b).into_iter().flatten() {
                let Some(r) = self.c.registrations.get(*reg) else {
                    continue;
                };
                if include(r) && seen.insert(*reg) {
                    let after = match load_events_after {
                        Some(last) if is_load_event(r) => last,
                        _ => segment,
                    };
                    let own =
                        timeline.push(self.callback_cost(*reg), Some(after), self.delay_ms(r));
                    if let Some(cb) = self.callbacks.get(*reg).copied().flatten() {
                        stack.push((cb, own));
                    }
                }
            }
            stack.extend(
                self.g
                    .callees(b)
                    .filter(|c| !visited.contains(c))
                    .map(|c| (c, segment)),
            );
        }
    }

    /// The load path; always first. Its segments: the document (HTML, style sheets, and the
    /// fetches the preload scanner starts), each script in execution order, then load-time
    /// handlers and what they and the scripts schedule.
    pub fn load(&self) -> PathDemand {
        let s = self.sources;
        let mut t = Timeline::default();
        let mut document = Cost {
            cpu: Dist::exact(s.html_bytes as f64 * HTML_UNITS_PER_BYTE),
            mem: Dist::exact(s.html_bytes as f64 * HTML_MEMORY_PER_BYTE),
            net: Dist::exact(s.html_bytes as f64 + RESPONSE_OVERHEAD_BYTES),
        };
        for sheet in &s.stylesheets {
            let rules = sheet.rules.map_or(0.0, f64::from);
            document.cpu +=
                Dist::exact(sheet.bytes as f64 * CSS_UNITS_PER_BYTE + rules * CSS_RULE_UNITS);
            if sheet.url.is_some() {
                document.net += Dist::exact(sheet.bytes as f64 + RESPONSE_OVERHEAD_BYTES);
            }
        }
        let runs_early = |k: ScriptKind| {
            matches!(
                k,
                ScriptKind::Classic | ScriptKind::Async | ScriptKind::Unknown
            )
        };
        let runs_late = |k: ScriptKind| matches!(k, ScriptKind::Defer | ScriptKind::Module);
        let order: Vec<usize> = (0..s.scripts.len())
            .filter(|&i| s.scripts.get(i).is_some_and(|x| runs_early(x.kind)))
            .chain(
                (0..s.scripts.len())
                    .filter(|&i| s.scripts.get(i).is_some_and(|x| runs_late(x.kind))),
            )
            .collect();
        for &i in &order {
            if let Some(script) = s.scripts.get(i)
                && script.url.is_some()
            {
                document.net += Dist::exact(script_bytes(script) + RESPONSE_OVERHEAD_BYTES);
            }
        }
        let mut last = t.push(document, None, 0.0);
        let mut entries = Vec::new();
        for i in order {
            let Some(script) = s.scripts.get(i) else {
                continue;
            };
            let mut cost = Cost {
                cpu: Dist::exact(parse_units(script, &self.c.weights)),
                mem: Dist::exact(script_bytes(script) * SCRIPT_MEMORY_PER_BYTE),
                net: Dist::ZERO,
            };
            let body = match self.c.scripts.get(i) {
                Some(ScriptStatus::Parsed(b)) => {
                    cost.add(self.model.body(*b));
                    cost.cpu += self.unanalysed(i);
                    Some(*b)
                }
                Some(ScriptStatus::Library(l)) => {
                    cost = self.library_load(*l);
                    None
                }
                _ => {
                    cost.cpu += BY_SIZE_EXEC_UNITS_PER_BYTE.scale(script_bytes(script));
                    None
                }
            };
            last = t.push(cost, Some(last), 0.0);
            if let Some(b) = body {
                entries.push((b, last));
            }
        }
        let mut seen = BTreeSet::new();
        // Inline `onload` attributes (on <body>) are registered by the document itself.
        for (id, reg) in self.c.registrations.iter().enumerate() {
            if reg.body.is_none() && is_load_event(reg) && seen.insert(id) {
                let own = t.push(self.callback_cost(id), Some(last), 0.0);
                if let Some(cb) = self.callbacks.get(id).copied().flatten() {
                    entries.push((cb, own));
                }
            }
        }
        let include = |r: &Registration| is_load_event(r) || follows_registrar(r);
        self.registered(&entries, &include, &mut seen, &mut t, Some(last));
        self.path("load".to_string(), PathKind::Load, 1.0, &t, None)
    }

    /// One path per event handler of the page (not its workers), in discovery order.
    pub fn interactions(&self, warnings: &mut Vec<String>) -> Vec<PathDemand> {
        let mut out = Vec::new();
        let mut skipped = 0usize;
        for (id, reg) in self.c.registrations.iter().enumerate() {
            let RegKind::Event { event, target } = &reg.kind else {
                continue;
            };
            let realm = reg.body.and_then(|b| self.c.realms.get(b).copied());
            let elsewhere = is_load_event(reg) || follows_registrar(reg);
            if elsewhere || realm.is_some_and(|r| r != self.page_realm) {
                continue;
            }
            if out.len() >= MAX_INTERACTION_PATHS {
                skipped += 1;
                continue;
            }
            let mut t = Timeline::default();
            let dispatch = t.push(self.callback_cost(id), None, 0.0);
            if let Some(cb) = self.callbacks.get(id).copied().flatten() {
                let mut seen = BTreeSet::new();
                self.registered(
                    &[(cb, dispatch)],
                    &follows_registrar,
                    &mut seen,
                    &mut t,
                    None,
                );
            }
            out.push(self.path(
                format!("{event} {target}"),
                PathKind::Interaction,
                interaction::probability(event, target, &self.sources.activity),
                &t,
                Some((event, target)),
            ));
        }
        if skipped > 0 {
            warnings.push(format!(
                "{skipped} more event handlers were found; only the first {MAX_INTERACTION_PATHS} are listed as paths"
            ));
        }
        out
    }

    fn path(
        &self,
        name: String,
        kind: PathKind,
        probability: f64,
        t: &Timeline,
        trigger: Option<(&String, &String)>,
    ) -> PathDemand {
        let cost = t.total();
        PathDemand {
            name,
            kind,
            probability,
            cpu_ms: self.ms(cost.cpu).to_quantiles(),
            memory_bytes: cost
                .mem
                .widen(MEMORY_SPREAD.0, MEMORY_SPREAD.1)
                .to_quantiles(),
            network_bytes: cost
                .net
                .widen(NETWORK_SPREAD.0, NETWORK_SPREAD.1)
                .to_quantiles(),
            event: trigger.map(|(e, _)| e.clone()),
            target: trigger.map(|(_, t)| t.clone()),
            curve: t.curve(self.units_per_ms, MODEL_SPREAD),
        }
    }

    /// One component per page worker site whose URL the syntax gives, `worker-0` first.
    pub fn components(&self) -> Vec<ComponentDemand> {
        let mut out = Vec::new();
        for (id, spawn) in self.c.spawns.iter().enumerate() {
            if self.c.realms.get(spawn.body).copied() != Some(self.page_realm) {
                continue;
            }
            let Some(url) = self.worker_urls.get(id).cloned().flatten() else {
                continue;
            };
            let script = graph::worker_script(self.sources, &url);
            let (cpu_ms, memory, source_known) = match script {
                Some(i) => {
                    let cost = self.worker_cost(i);
                    let known = self
                        .sources
                        .scripts
                        .get(i)
                        .is_some_and(|s| s.source.is_some());
                    (self.ms(cost.cpu), cost.mem, known)
                }
                None => (UNKNOWN_WORKER_CPU_MS, UNKNOWN_WORKER_BYTES, false),
            };
            out.push(ComponentDemand {
                id: format!("worker-{}", out.len()),
                kind: ComponentKind::Worker,
                url: Some(url),
                source_known,
                cpu_ms: cpu_ms.to_quantiles(),
                memory_bytes: memory.to_quantiles(),
                offloadable: true,
            });
        }
        out
    }

    /// A worker script's start-up plus one `message` event: what offloading it would move.
    fn worker_cost(&self, script: usize) -> Cost {
        let mut cost = Cost {
            cpu: Dist::exact(WORKER_STARTUP_UNITS),
            mem: Dist::exact(WORKER_BASE_BYTES),
            net: Dist::ZERO,
        };
        let Some(src) = self.sources.scripts.get(script) else {
            return cost;
        };
        cost.cpu += Dist::exact(parse_units(src, &self.c.weights));
        cost.mem += Dist::exact(script_bytes(src) * SCRIPT_MEMORY_PER_BYTE);
        match self.c.scripts.get(script) {
            Some(ScriptStatus::Parsed(top)) => {
                cost.add(self.model.body(*top));
                cost.cpu += self.unanalysed(script);
                let on_message = |r: &Registration| {
                    matches!(&r.kind, RegKind::Event { event, .. } if event == "message")
                        || follows_registrar(r)
                };
                let mut t = Timeline::default();
                let start = t.push(Cost::ZERO, None, 0.0);
                self.registered(
                    &[(*top, start)],
                    &on_message,
                    &mut BTreeSet::new(),
                    &mut t,
                    None,
                );
                cost.add(t.total());
            }
            Some(ScriptStatus::Library(l)) => {
                // Measured loads include the compile that `parse_units` priced above.
                let lib = self.library_load(*l);
                cost.cpu = Dist::exact(WORKER_STARTUP_UNITS) + lib.cpu;
                cost.mem = Dist::exact(WORKER_BASE_BYTES) + lib.mem;
            }
            _ => cost.cpu += BY_SIZE_EXEC_UNITS_PER_BYTE.scale(script_bytes(src)),
        }
        cost
    }

    /// Loading recognised library `l`: its measured profile (compile and top-level code,
    /// and the heap it leaves) instead of the per-byte parse cost and the code walk.
    fn library_load(&self, l: usize) -> Cost {
        match self.c.libraries.get(l) {
            Some(lib) => {
                let (cpu, mem) = lib.profile.load_cost(lib.bytes);
                Cost {
                    cpu,
                    mem,
                    net: Dist::ZERO,
                }
            }
            None => Cost::ZERO,
        }
    }
}
