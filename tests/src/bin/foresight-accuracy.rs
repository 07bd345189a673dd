//! `foresight-accuracy` (run it through `cargo xtask accuracy`): scores the estimator's
//! load-path predictions against real page loads in headless Chromium. See
//! `foresight_tests::accuracy` for the method.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

#[derive(Parser)]
#[command(about = "Score the Resource Estimator against real page loads in headless Chromium")]
struct Args {
    /// The Chromium binary.
    #[arg(
        long,
        env = "FORESIGHT_CHROMIUM",
        default_value = "/usr/lib/chromium/chromium"
    )]
    chromium: PathBuf,
    /// Working folder (npm packages, the generated site, results.json).
    #[arg(long)]
    work: PathBuf,
    /// Only measure what loading each profiled library costs (thread time, heap) and print it
    /// as JSON, for `tools/lib-profiles/measure.mjs`.
    #[arg(long)]
    loads_only: bool,
    /// Fit the cost model's unit weights on the micro-benchmark set (not the corpus) and
    /// write them to this file (`estimator/src/fitted.rs`).
    #[arg(long, value_name = "FITTED_RS")]
    fit: Option<PathBuf>,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let args = Args::parse();
    let options = foresight_tests::accuracy::Options {
        chromium: args.chromium,
        work: args.work,
    };
    let result = if let Some(out) = args.fit {
        foresight_tests::accuracy::fit::fit(options, &out).await
    } else if args.loads_only {
        foresight_tests::accuracy::measure_loads(options)
            .await
            .map(|v| println!("{v}"))
    } else {
        foresight_tests::accuracy::run(options).await
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("foresight-accuracy: {e}");
            ExitCode::FAILURE
        }
    }
}
