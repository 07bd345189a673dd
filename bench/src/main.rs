//! `foresight-bench` (run it through `cargo xtask bench`): every speed and memory figure
//! Foresight promises, each measured next to a baseline in the same run so that figures from
//! different machines and runs can be compared as ratios.
//!
//! Prints a table and writes `target/bench/results.json` as
//! `{"figure name": {"value": n, "unit": "..."}}`. Pass suite names to run only those.
//!
//! A suite is a function in `suites/` that measures and records figures into a [`Report`];
//! add one by writing the file and listing it in [`SUITES`].

mod measure;
mod report;
mod suites;

use std::process::ExitCode;

use report::Report;

/// The allocator the native estimator ships with (`foresight-estimate`), so the native
/// figures are the CLI's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A suite measures and records its figures, or says why it could not.
type Suite = fn(&mut Report) -> Result<(), String>;

/// Every suite, by name.
const SUITES: &[(&str, Suite)] = &[
    ("framing", suites::framing::run),
    ("planner", suites::planner::run),
    ("sampler", suites::sampler::run),
    ("broker", suites::broker::run),
    ("remote_worker", suites::remote_worker::run),
    ("offload", suites::offload::run),
    ("estimator", suites::estimator::run),
];

fn main() -> ExitCode {
    let filters: Vec<String> = std::env::args().skip(1).collect();
    let unknown: Vec<&String> = filters
        .iter()
        .filter(|f| !SUITES.iter().any(|(name, _)| name == f))
        .collect();
    if !unknown.is_empty() {
        let names: Vec<&str> = SUITES.iter().map(|(n, _)| *n).collect();
        eprintln!("unknown suite(s) {unknown:?}; suites: {}", names.join(", "));
        return ExitCode::from(2);
    }
    let mut report = Report::default();
    let mut failed = false;
    for (name, suite) in SUITES {
        if !filters.is_empty() && !filters.iter().any(|f| f == name) {
            continue;
        }
        eprintln!("==> bench suite {name}");
        if let Err(e) = suite(&mut report) {
            eprintln!("suite {name} failed: {e}");
            failed = true;
        }
    }
    report.print();
    match report.write_json() {
        Ok(path) => eprintln!("figures written to {}", path.display()),
        Err(e) => {
            eprintln!("cannot write the results: {e}");
            failed = true;
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
