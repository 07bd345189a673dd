//! Helpers shared by the estimator's integration tests.

#![allow(dead_code)]

use foresight_estimator::{Budget, Calibration, Weights, estimate, estimate_weighted};
use foresight_shared::protocol::Quantiles;
use foresight_shared::protocol::demand::{
    InlineHandler, PageDemand, PageSources, ScriptKind, ScriptSource,
};

pub const PAGE: &str = "http://127.0.0.1:8080/app/index.html";

pub fn script(kind: ScriptKind, url: Option<&str>, source: &str) -> ScriptSource {
    ScriptSource {
        url: url.map(str::to_string),
        kind,
        source: Some(source.to_string()),
        bytes: source.len() as u64,
    }
}

pub fn inline(source: &str) -> ScriptSource {
    script(ScriptKind::Classic, None, source)
}

pub fn page(scripts: Vec<ScriptSource>) -> PageSources {
    PageSources {
        url: PAGE.to_string(),
        html_bytes: 2_000,
        scripts,
        ..Default::default()
    }
}

pub fn handler(element: &str, event: &str, source: &str) -> InlineHandler {
    InlineHandler {
        element: element.to_string(),
        event: event.to_string(),
        source: source.to_string(),
    }
}

pub fn run(p: &PageSources) -> PageDemand {
    let d = estimate(p, &Calibration::default());
    assert_well_formed(&d);
    d
}

/// [`run`] with every operation class at its hand-set cost and no warm-up: for tests of how
/// costs scale with sizes, which the fitted weights (`fitted.rs`) only rescale.
pub fn run_hand_set(p: &PageSources) -> PageDemand {
    let d = estimate_weighted(
        p,
        &Calibration::default(),
        Budget::default(),
        Weights::hand_set(),
    );
    assert_well_formed(&d);
    d
}

fn ordered(q: &Quantiles, what: &str) {
    assert!(
        q.p10.is_finite() && q.p50.is_finite() && q.p90.is_finite(),
        "{what}: non-finite {q:?}"
    );
    assert!(q.p10 >= 0.0, "{what}: negative {q:?}");
    assert!(q.p10 <= q.p50 && q.p50 <= q.p90, "{what}: unordered {q:?}");
}

/// Every quantile of every output is finite, non-negative and ordered; the load path is first.
pub fn assert_well_formed(d: &PageDemand) {
    let first = d.paths.first().expect("there is always a load path");
    assert_eq!(first.name, "load");
    for p in &d.paths {
        ordered(&p.cpu_ms, &format!("{} cpu", p.name));
        ordered(&p.memory_bytes, &format!("{} memory", p.name));
        ordered(&p.network_bytes, &format!("{} network", p.name));
        assert!((0.0..=1.0).contains(&p.probability));
    }
    for c in &d.components {
        ordered(&c.cpu_ms, &format!("{} cpu", c.id));
        ordered(&c.memory_bytes, &format!("{} memory", c.id));
    }
}
