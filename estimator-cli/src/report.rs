//! What `foresight-estimate` prints: a table for people, or JSON (`--json`) whose top level
//! is the estimator's `PageDemand` (so `paths[i].cpu_ms.p50` and friends are where the wire
//! protocol puts them) plus the calibration used and the loader's notes.

use std::fmt::Write as _;

use foresight_shared::protocol::Quantiles;
use foresight_shared::protocol::demand::{DemandCurve, PageDemand, PathKind};
use serde_json::{Value, json};

/// Where the calibration came from, for the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CalibrationSource {
    Default,
    Given,
    Measured,
}

impl CalibrationSource {
    fn name(self) -> &'static str {
        match self {
            CalibrationSource::Default => "default",
            CalibrationSource::Given => "given",
            CalibrationSource::Measured => "measured in headless Chromium",
        }
    }
}

pub fn json(
    demand: &PageDemand,
    units_per_ms: f64,
    source: CalibrationSource,
    notes: &[String],
) -> Result<String, serde_json::Error> {
    let mut v = serde_json::to_value(demand)?;
    if let Value::Object(map) = &mut v {
        map.insert(
            "calibration".into(),
            json!({ "units_per_ms": units_per_ms, "source": source.name() }),
        );
        map.insert("notes".into(), json!(notes));
    }
    serde_json::to_string_pretty(&v)
}

fn q3(q: &Quantiles, scale: f64) -> String {
    format!(
        "{:>9} {:>9} {:>9}",
        short(q.p10 / scale),
        short(q.p50 / scale),
        short(q.p90 / scale)
    )
}

/// A number in at most about six characters.
fn short(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if a >= 1e6 {
        format!("{v:.2e}")
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

/// The median CPU curve as a bar per bucket.
fn sparkline(c: &DemandCurve) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    c.buckets
        .iter()
        .map(|b| {
            if b.cpu_ms.p50 <= 0.0 {
                ' '
            } else {
                let share = (b.cpu_ms.p50 / c.bucket_ms).clamp(0.0, 1.0);
                BARS[((share * 7.0).round() as usize).min(7)]
            }
        })
        .collect()
}

pub fn text(
    demand: &PageDemand,
    units_per_ms: f64,
    source: CalibrationSource,
    notes: &[String],
) -> String {
    let mut out = String::new();
    let g = &demand.graph;
    let _ = writeln!(out, "page         {}", demand.url);
    let _ = writeln!(
        out,
        "graph        {} nodes, {} edges: {} scripts, {} functions, {} unresolved calls, {} parse errors",
        g.nodes, g.edges, g.scripts, g.functions, g.unresolved_calls, g.parse_errors
    );
    let _ = writeln!(
        out,
        "calibration  {} work units per ms ({})",
        short(units_per_ms),
        source.name()
    );
    if demand.truncated {
        let _ = writeln!(
            out,
            "truncated    the page exceeded the work budget; see warnings"
        );
    }
    let _ = writeln!(
        out,
        "\n{:<34} {:>5}  {:^29}  {:^29}  {:>9}",
        "path", "prob", "CPU ms p10 / p50 / p90", "memory MB p10 / p50 / p90", "net KB p50"
    );
    for p in &demand.paths {
        let name = match (&p.kind, &p.event, &p.target) {
            (PathKind::Interaction, Some(e), Some(t)) => format!("{e} on {t}"),
            _ => p.name.clone(),
        };
        let name: String = if name.chars().count() > 34 {
            name.chars().take(31).collect::<String>() + "..."
        } else {
            name
        };
        let _ = writeln!(
            out,
            "{:<34} {:>5.2}  {}  {}  {:>9}",
            name,
            p.probability,
            q3(&p.cpu_ms, 1.0),
            q3(&p.memory_bytes, 1e6),
            short(p.network_bytes.p50 / 1e3)
        );
        if !p.curve.buckets.is_empty() {
            let _ = writeln!(
                out,
                "{:<34} |{}| {} buckets of {} ms (median CPU)",
                "",
                sparkline(&p.curve),
                p.curve.buckets.len(),
                short(p.curve.bucket_ms)
            );
        }
    }
    for c in &demand.components {
        let _ = writeln!(
            out,
            "\ncomponent {} ({}): CPU ms {}, memory MB {}{}",
            c.id,
            c.url.as_deref().unwrap_or("unknown URL"),
            q3(&c.cpu_ms, 1.0),
            q3(&c.memory_bytes, 1e6),
            if c.source_known {
                ""
            } else {
                " (source not seen)"
            }
        );
    }
    if !demand.warnings.is_empty() {
        let _ = writeln!(out);
    }
    for w in &demand.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    for n in notes {
        let _ = writeln!(out, "note: {n}");
    }
    out
}
