//! `foresight-demo` (run it through `cargo xtask demo`): the whole Foresight data flow on a
//! bundled page, on embedded defaults — a broker on a loopback port, the native host
//! installed into a throwaway browser profile, and a real browser with the extension. It
//! prints the seven steps as the parts report them.

use std::process::ExitCode;

use clap::Parser;
use foresight_tests::browser::BrowserKind;
use foresight_tests::scenario::{self, Rig};

#[derive(Parser)]
#[command(about = "Run Foresight's whole data flow on a bundled demo page")]
struct Args {
    /// Run the browser headless and exit when the steps are done.
    #[arg(long)]
    headless: bool,
    /// Which browser to drive.
    #[arg(long, default_value = "chromium", value_parser = ["chromium", "firefox"])]
    browser: String,
}

const TITLES: [&str; 7] = [
    "The browser loads a page",
    "The Resource Estimator analyses its code (wasm, in the extension)",
    "The Predictive Execution Planner makes a plan (native host)",
    "The extension asks the broker for a lease",
    "The Dynamic Resource Broker grants it",
    "The page runs, its Web Worker on the broker",
    "The Execution Orchestrator adjusts",
];

fn print_step(n: u8, title: &str, detail: String) {
    let heading = TITLES.get(usize::from(n).saturating_sub(1)).unwrap_or(&"");
    println!("\n[{n}/7] {heading}\n      {title}: {detail}");
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let args = Args::parse();
    let kind = if args.browser == "firefox" {
        BrowserKind::Firefox
    } else {
        BrowserKind::Chromium
    };
    match run(kind, args.headless).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("foresight-demo: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(kind: BrowserKind, headless: bool) -> Result<(), foresight_tests::Error> {
    println!(
        "Foresight demo in {}{}",
        kind.name(),
        if headless { " (headless)" } else { "" }
    );
    let mut rig = Rig::start(kind, headless).await?;
    println!("  demo site:   {}", rig.site.url(scenario::PAGE));
    println!(
        "  broker:      {} (embedded, started for this demo)",
        rig.broker.url()
    );
    println!("  native host: installed into {}", rig.dir.path().display());
    let mut report = |n: u8, title: &str, detail: String| print_step(n, title, detail);
    if let Err(e) = scenario::remote_run(&mut rig, &mut report).await {
        return Err(rig.context(e));
    }
    if !headless {
        let tab = rig.browser.open(&rig.site.url(scenario::PAGE)).await?;
        println!("\nThe demo page is open in the browser window; press Ctrl-C to stop.");
        let _ = tokio::signal::ctrl_c().await;
        let _ = rig.browser.close(&tab).await;
        return Ok(());
    }
    if let Err(e) = scenario::local_fallback_run(&mut rig, &mut report).await {
        return Err(rig.context(e));
    }
    println!(
        "\nAll seven steps ran: the worker's result was computed on the broker, and locally once the broker was gone."
    );
    Ok(())
}
