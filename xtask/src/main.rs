//! `cargo xtask`: Foresight's build, package, test and demo commands.
//!
//! * `dist`  — builds the wasm estimator, generates its JS glue, and packages the extension
//!   for Chrome and Firefox (unpacked folders plus a `.zip` and an `.xpi`).
//! * `test`  — every test: formatting, the extension's JavaScript unit tests (Node),
//!   `web-ext lint` of the Firefox package, Rust unit and integration tests, and the
//!   end-to-end tests in real headless Chromium and Firefox.
//! * `lint`  — `cargo fmt --check` and `cargo clippy -D warnings`, native and wasm32.
//! * `bench` — the benchmarks (`foresight-bench`, release build): a table, and
//!   `target/bench/results.json` for comparing runs.
//! * `accuracy` — scores the estimator against page loads measured in headless Chromium
//!   (`foresight-accuracy`; a corpus of pages built from npm libraries fetched at run time).
//! * `demo`  — the main job on embedded defaults: a local broker, the native host installed
//!   into a throwaway profile, and a real browser on the bundled demo page.
//!
//! Each command sets up what it can (the wasm32 target) and says exactly what is missing
//! when it cannot (a browser that is not installed).

mod accuracy;
mod dist;
mod manifest;
mod util;
mod weblint;

use std::process::ExitCode;

use util::{Result, cargo, paths};

const USAGE: &str = "\
usage: cargo xtask <command> [options]

commands:
  dist                      build the wasm estimator and package the extension
  test [-- <filter>...]     run every test, including the real-browser end-to-end tests
  lint                      cargo fmt --check and clippy -D warnings (native and wasm32)
  bench [<suite>...]        run the benchmarks; writes target/bench/results.json
  accuracy [--fit]          score the estimator against real page loads (headless Chromium);
                            --fit: fit its unit weights on the micro-benchmarks instead
  demo [--headless] [--browser chromium|firefox]
                            run the whole data flow on a bundled demo page
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("dist") => dist::dist().map(|_| ()),
        Some("test") => test(&args[1..]),
        Some("lint") => lint(),
        Some("bench") => bench(&args[1..]),
        Some("accuracy") => accuracy::accuracy(args.get(1).is_some_and(|a| a == "--fit")),
        Some("demo") => demo(&args[1..]),
        Some("-h" | "--help" | "help") => {
            print!("{USAGE}");
            Ok(())
        }
        _ => {
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Builds what the tests need, then runs `cargo test` on the whole workspace with the
/// artifacts' locations in the environment.
fn test(args: &[String]) -> Result<()> {
    util::step("checking formatting");
    cargo(&["fmt", "--all", "--", "--check"]).map_err(|e| {
        format!("{e}\n  the code is not formatted: run `cargo fmt --all` and commit the result")
    })?;
    let browsers = util::Browsers::find()?;
    util::step("extension unit tests (node --test)");
    let mut node = std::process::Command::new("node");
    node.arg("--test")
        .arg(paths::workspace_root().join("extension/tests"));
    util::run(node).map_err(|e| {
        format!("{e}\n  the extension's unit tests need Node.js: `sudo apt-get install -y nodejs`")
    })?;
    let dist = dist::dist()?;
    weblint::lint(&dist)?;
    util::step("building the native host and the broker");
    cargo(&[
        "build",
        "-p",
        "foresight-host",
        "-p",
        "foresight-broker",
        "--bins",
    ])?;
    util::step("running every test");
    let filters: Vec<&str> = args
        .iter()
        .skip_while(|a| a.as_str() == "--")
        .map(String::as_str)
        .collect();
    let mut cmd = util::cargo_command(&["test", "--workspace", "--"]);
    cmd.args(&filters);
    util::test_env(&mut cmd, &dist, &browsers);
    util::run(cmd)
}

/// Runs the benchmarks in a release build; suite names select a subset.
fn bench(args: &[String]) -> Result<()> {
    let mut cmd = util::cargo_command(&["run", "--release", "-p", "foresight-bench", "--"]);
    // The remote_worker and offload suites drive a real browser with the packaged extension,
    // a release broker (whose executor speed they measure) and the native host.
    if args.is_empty() || args.iter().any(|a| a == "remote_worker" || a == "offload") {
        let browsers = util::Browsers::find()?;
        let dist = dist::dist()?;
        util::step("building the native host and the broker (release)");
        cargo(&[
            "build",
            "--release",
            "-p",
            "foresight-host",
            "-p",
            "foresight-broker",
            "--bins",
        ])?;
        util::test_env(&mut cmd, &dist, &browsers);
    }
    util::step("running the benchmarks (release build)");
    cmd.args(args);
    util::run(cmd)
}

fn lint() -> Result<()> {
    util::step("cargo fmt --check");
    cargo(&["fmt", "--all", "--", "--check"])?;
    util::step("cargo clippy (native)");
    cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ])?;
    util::ensure_wasm_target()?;
    util::step("cargo clippy (wasm32)");
    cargo(&[
        "clippy",
        "-p",
        "foresight-wasm",
        "-p",
        "foresight-estimator",
        "-p",
        "foresight-shared",
        "--target",
        "wasm32-unknown-unknown",
        "--",
        "-D",
        "warnings",
    ])
}

fn demo(args: &[String]) -> Result<()> {
    let headless = args.iter().any(|a| a == "--headless");
    let browser = args
        .iter()
        .position(|a| a == "--browser")
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
        .unwrap_or("chromium");
    if !matches!(browser, "chromium" | "firefox") {
        return Err(format!("unknown browser {browser:?}: use chromium or firefox").into());
    }
    if !headless
        && std::env::var_os("DISPLAY").is_none()
        && std::env::var_os("WAYLAND_DISPLAY").is_none()
    {
        return Err(
            "no display to open a browser window on: run `cargo xtask demo --headless`".into(),
        );
    }
    let browsers = util::Browsers::find()?;
    let dist = dist::dist()?;
    util::step("building the native host, the broker and the demo driver");
    cargo(&[
        "build",
        "-p",
        "foresight-host",
        "-p",
        "foresight-broker",
        "-p",
        "foresight-tests",
        "--bins",
    ])?;
    let mut cmd = std::process::Command::new(paths::bin_dir().join("foresight-demo"));
    cmd.args(["--browser", browser]);
    if headless {
        cmd.arg("--headless");
    }
    util::test_env(&mut cmd, &dist, &browsers);
    util::run(cmd)
}
