//! `foresight-estimate <page.html | http://127.0.0.1:PORT/...> [--json]`: prints the page's
//! execution graph summary, its paths and their predicted demand. See the library for the
//! parts; this file is arguments, exit codes and output only.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use foresight_estimate::page;
use foresight_estimate::report::{self, CalibrationSource};
use foresight_estimator::{Budget, Calibration};

/// The estimator allocates a small block per AST node and frees them all once a script is
/// collected; under mimalloc a whole estimate runs about 30% faster than under glibc's malloc
/// (ARCHITECTURE.md, "Dependencies and why"). The bench measures under the same allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "foresight-estimate",
    version,
    about = "Predicts what a page's execution paths will cost (CPU, memory, network) before it runs"
)]
struct Args {
    /// A local HTML file (relative scripts and style sheets are read from disk) or a loopback
    /// URL (http://127.0.0.1:PORT/..., localhost, [::1]).
    page: String,
    /// Print JSON: the estimator's PageDemand plus `calibration` and `notes`.
    #[arg(long)]
    json: bool,
    /// This device's speed in the estimator's work units per millisecond.
    #[arg(long, value_name = "N", conflicts_with = "calibrate")]
    units_per_ms: Option<f64>,
    /// Measure --units-per-ms by running the calibration kernel in headless Chromium.
    #[arg(long)]
    calibrate: bool,
    /// Lift the work budget (for trusted input only: a hostile page can then take seconds
    /// and hundreds of MB).
    #[arg(long)]
    unlimited: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let (calibration, source) = if args.calibrate {
        match foresight_estimate::calibrate::measure() {
            Ok(m) => {
                eprintln!(
                    "calibration: {:.0} units in {:.2} ms (median) -> {:.0} units/ms",
                    m.units, m.median_ms, m.calibration.units_per_ms
                );
                (m.calibration, CalibrationSource::Measured)
            }
            Err(e) => {
                eprintln!("foresight-estimate: calibration failed: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else if let Some(n) = args.units_per_ms {
        if !(n.is_finite() && n > 0.0) {
            eprintln!("foresight-estimate: --units-per-ms must be a positive number, not {n}");
            return ExitCode::from(2);
        }
        (Calibration { units_per_ms: n }, CalibrationSource::Given)
    } else {
        (Calibration::default(), CalibrationSource::Default)
    };
    let mut loaded = match page::load(&args.page) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("foresight-estimate: {e}");
            return ExitCode::FAILURE;
        }
    };
    let budget = if args.unlimited {
        Budget::UNLIMITED
    } else {
        Budget::default()
    };
    let demand = page::estimate(&mut loaded, &calibration, budget, &mut |u| page::fetch(u));
    let out = if args.json {
        match report::json(&demand, calibration.units_per_ms, source, &loaded.notes) {
            Ok(s) => s + "\n",
            Err(e) => {
                eprintln!("foresight-estimate: cannot encode the result: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        report::text(&demand, calibration.units_per_ms, source, &loaded.notes)
    };
    // A closed pipe (`| head`) is the reader's choice, not an error worth a panic.
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush())
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        eprintln!("foresight-estimate: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
