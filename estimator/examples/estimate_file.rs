//! Estimates a page made of the given script files (classic scripts, in order) and prints the
//! result and how long the estimate took. A measuring tool; the library itself has no I/O.
//!
//! ```text
//! cargo run --release -p foresight-estimator --example estimate_file -- a.js b.js
//! ```

use std::time::Instant;

use foresight_estimator::{Calibration, estimate};
use foresight_shared::protocol::demand::{PageSources, ScriptKind, ScriptSource};

fn main() {
    let mut scripts = Vec::new();
    for path in std::env::args().skip(1) {
        match std::fs::read_to_string(&path) {
            Ok(source) => scripts.push(ScriptSource {
                url: Some(format!("http://127.0.0.1/{path}")),
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
    let bytes: usize = scripts
        .iter()
        .filter_map(|s| s.source.as_ref())
        .map(String::len)
        .sum();
    let sources = PageSources {
        url: "http://127.0.0.1/".into(),
        scripts,
        ..Default::default()
    };
    let start = Instant::now();
    let d = estimate(&sources, &Calibration::default());
    let elapsed = start.elapsed();
    println!(
        "{bytes} bytes estimated in {:.1} ms",
        elapsed.as_secs_f64() * 1000.0
    );
    println!("graph: {:?}", d.graph);
    for w in &d.warnings {
        println!("warning: {w}");
    }
    for p in d.paths.iter().take(10) {
        println!(
            "path {:<32} cpu ms {:>9.3} {:>9.3} {:>9.3}  mem {:>12.0}  net {:>10.0}",
            p.name,
            p.cpu_ms.p10,
            p.cpu_ms.p50,
            p.cpu_ms.p90,
            p.memory_bytes.p50,
            p.network_bytes.p50
        );
    }
    for c in &d.components {
        println!("component {} {:?} cpu ms {:?}", c.id, c.url, c.cpu_ms);
    }
}
