//! Times each pass of the estimator over a page made of the given script files (banners
//! left as they are: pass files without them to see the code walked), next to swc's raw
//! parse of the same text: where the analysis spends what it adds to parsing. A measuring
//! tool for `bench`'s analysis-to-parse ratio.
//!
//! ```text
//! cargo run --release -p foresight-estimator --example pass_times -- a.js b.js
//! ```

use std::time::Instant;

use foresight_estimator::parse::{self, Goal};
use foresight_estimator::{Budget, Calibration, analyse_within, cost, estimate_within, paths};
use foresight_shared::protocol::demand::{PageSources, ScriptKind, ScriptSource};

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

fn main() {
    let mut scripts = Vec::new();
    for path in std::env::args().skip(1) {
        match std::fs::read_to_string(&path) {
            Ok(source) => scripts.push(ScriptSource {
                url: None,
                kind: ScriptKind::Classic,
                bytes: source.len() as u64,
                source: Some(source),
            }),
            Err(e) => {
                eprintln!("{path}: {e}");
                std::process::exit(1);
            }
        }
    }
    let sources = PageSources {
        url: "http://127.0.0.1/".into(),
        scripts,
        ..Default::default()
    };
    let rounds = 5;
    // `PASS_TIMES_PROFILE=N`: only run the whole estimate N times, for a profiler.
    if let Some(n) = std::env::var("PASS_TIMES_PROFILE")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        for _ in 0..n {
            std::hint::black_box(estimate_within(
                &sources,
                &Calibration::default(),
                Budget::UNLIMITED,
            ));
        }
        return;
    }
    let (mut parse_ms, mut analyse_ms, mut cost_ms, mut paths_ms, mut total_ms) =
        (f64::MAX, f64::MAX, f64::MAX, f64::MAX, f64::MAX);
    let (mut prescan_ms, mut summary_ms, mut drop_ms) = (f64::MAX, f64::MAX, f64::MAX);
    for _ in 0..rounds {
        let t = Instant::now();
        for s in &sources.scripts {
            if let Some(src) = &s.source {
                std::hint::black_box(parse::prescan(src).is_ok());
            }
        }
        prescan_ms = prescan_ms.min(ms(t));
        let t = Instant::now();
        for s in &sources.scripts {
            if let Some(src) = &s.source {
                std::hint::black_box(matches!(
                    parse::parse(src, Goal::Script),
                    parse::Parsed::Ok(_)
                ));
            }
        }
        parse_ms = parse_ms.min(ms(t));
        let t = Instant::now();
        let a = analyse_within(&sources, Budget::UNLIMITED);
        analyse_ms = analyse_ms.min(ms(t));
        let t = Instant::now();
        let model = cost::CostModel::new(&a.collected, &a.resolution, &a.graph, 0);
        cost_ms = cost_ms.min(ms(t));
        let t = Instant::now();
        let p = paths::Paths::new(&sources, &a, &model, 1e6);
        let mut warnings = Vec::new();
        std::hint::black_box((p.load(), p.interactions(&mut warnings), p.components()));
        paths_ms = paths_ms.min(ms(t));
        let t = Instant::now();
        std::hint::black_box(foresight_estimator::graph::summary(
            &a.collected,
            &a.resolution,
            &a.graph,
        ));
        summary_ms = summary_ms.min(ms(t));
        let t = Instant::now();
        drop(p);
        drop(model);
        drop(a);
        drop_ms = drop_ms.min(ms(t));
        let t = Instant::now();
        std::hint::black_box(estimate_within(
            &sources,
            &Calibration::default(),
            Budget::UNLIMITED,
        ));
        total_ms = total_ms.min(ms(t));
    }
    println!(
        "best of {rounds}: parse {parse_ms:.1} ms | prescan {prescan_ms:.1} ms | analyse (prescan+parse+collect+resolve+graph) {analyse_ms:.1} ms | cost model {cost_ms:.1} ms | paths (pricing what they reach) {paths_ms:.1} ms | summary {summary_ms:.1} ms | drop {drop_ms:.1} ms | whole estimate {total_ms:.1} ms | ratio {:.2}",
        parse_ms / total_ms
    );
}
