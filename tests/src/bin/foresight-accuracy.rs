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
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let args = Args::parse();
    match foresight_tests::accuracy::run(foresight_tests::accuracy::Options {
        chromium: args.chromium,
        work: args.work,
    })
    .await
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("foresight-accuracy: {e}");
            ExitCode::FAILURE
        }
    }
}
