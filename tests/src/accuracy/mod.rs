//! `cargo xtask accuracy`: how well the estimator's load-path predictions match what pages
//! really cost in headless Chromium, next to a naive baseline measured in the same run.
//!
//! 1. Installs the corpus's libraries from npm into `target/accuracy` (never committed) and
//!    writes the corpus pages ([`corpus`]) into a site served on loopback.
//! 2. Calibrates the estimator for this machine: its kernel's CPU time in headless Chromium.
//! 3. For each page: the estimate (the page loaded over HTTP exactly as `foresight-estimate`
//!    loads it) and the truth ([`truth`]: median of five fresh loads).
//! 4. Prints per-page figures and, for CPU, memory and network, Spearman's rho, MAPE and the
//!    share of pages whose truth lies in [p10, p90], for the estimator and for the baseline
//!    (cost proportional to the page's JavaScript bytes, its one constant fitted to the corpus;
//!    its interval is half to twice its value). Writes `target/accuracy/results.json`.
//!
//! Truth is each metric minus the `empty` page's (the browser's own cost of any page), floored
//! at a small positive value. CPU is main-thread `TaskDuration` in thread time (so other load
//! on the machine does not count), memory `JSHeapUsedSize` plus array-buffer backing stores,
//! network the encoded bytes of every response.

pub mod corpus;
pub mod fit;
pub mod microbench;
pub mod stats;
pub mod truth;

use std::path::{Path, PathBuf};
use std::process::Command;

use foresight_estimate::page;
use foresight_estimator::Budget;
use foresight_estimator::calibration::{KERNEL_JS, call_units, from_measurement};
use serde_json::json;

use crate::Error;
use crate::http::StaticServer;

/// Loads of each page measured; the median counts.
pub const RUNS: usize = 5;
/// Runs of the calibration kernel in one page load.
const KERNEL_RUNS: usize = 6;

pub struct Options {
    pub chromium: PathBuf,
    pub work: PathBuf,
}

fn install(work: &Path) -> Result<PathBuf, Error> {
    let modules = work.join("node_modules");
    if corpus::LIB_FILES
        .iter()
        .all(|(f, _)| modules.join(f).exists())
    {
        return Ok(modules);
    }
    std::fs::create_dir_all(work)?;
    let manifest = work.join("package.json");
    if !manifest.exists() {
        std::fs::write(&manifest, "{\"private\":true}")?;
    }
    eprintln!("accuracy: npm install {}", corpus::PACKAGES.join(" "));
    // npm's report goes nowhere: stdout is this tool's result (`--loads-only` prints JSON).
    let status = Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--ignore-scripts"])
        .args(corpus::PACKAGES)
        .current_dir(work)
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| Error::Setup(format!("npm (fetches the corpus's libraries): {e}")))?;
    if !status.success() {
        return Err(Error::Setup(format!("npm install failed ({status})")));
    }
    Ok(modules)
}

fn write_site(work: &Path, modules: &Path) -> Result<PathBuf, Error> {
    let site = work.join("site");
    let lib = site.join("lib");
    std::fs::create_dir_all(&lib)?;
    for (from, to) in corpus::LIB_FILES {
        std::fs::copy(modules.join(from), lib.join(to))?;
    }
    let calibrate = site.join("calibrate");
    std::fs::create_dir_all(&calibrate)?;
    std::fs::write(
        calibrate.join("index.html"),
        format!(
            "<!DOCTYPE html><body><script>window.__pending = 0;\n{KERNEL_JS}\nlet sink = 0;\nfor (let r = 0; r < {KERNEL_RUNS}; r++) sink += foresightKernel();\ndocument.title = String(sink);</script></body>"
        ),
    )?;
    write_pages(&site, &corpus::pages())?;
    Ok(site)
}

/// Writes each page as `NAME/index.html` under `site`.
fn write_pages(site: &Path, pages: &[corpus::Page]) -> Result<(), Error> {
    for p in pages {
        let dir = site.join(p.name);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("index.html"), p.html())?;
    }
    Ok(())
}

struct Row {
    name: &'static str,
    js_bytes: f64,
    truth: [f64; 3],
    predicted: [[f64; 3]; 3],
}

/// One metric's figures for the estimator and the baseline.
fn summarise(
    what: &str,
    k: usize,
    rows: &[Row],
    report: &mut serde_json::Map<String, serde_json::Value>,
) {
    let truth: Vec<f64> = rows.iter().map(|r| r.truth[k]).collect();
    let p10: Vec<f64> = rows.iter().map(|r| r.predicted[k][0]).collect();
    let p50: Vec<f64> = rows.iter().map(|r| r.predicted[k][1]).collect();
    let p90: Vec<f64> = rows.iter().map(|r| r.predicted[k][2]).collect();
    // The baseline: proportional to JS bytes, with the median ratio of the corpus.
    let per_byte = stats::median(
        &rows
            .iter()
            .filter(|r| r.js_bytes > 0.0)
            .map(|r| r.truth[k] / r.js_bytes)
            .collect::<Vec<_>>(),
    );
    let base: Vec<f64> = rows
        .iter()
        .map(|r| (per_byte * r.js_bytes).max(truth_floor(k)))
        .collect();
    let base_lo: Vec<f64> = base.iter().map(|b| b * 0.5).collect();
    let base_hi: Vec<f64> = base.iter().map(|b| b * 2.0).collect();
    let est = (
        stats::spearman(&p50, &truth),
        stats::mape(&p50, &truth),
        stats::coverage(&p10, &p90, &truth),
    );
    let bl = (
        stats::spearman(&base, &truth),
        stats::mape(&base, &truth),
        stats::coverage(&base_lo, &base_hi, &truth),
    );
    println!(
        "{what:<8} estimator: rho {:>5.2}  MAPE {:>8.0}%  [p10,p90] {:>5.1}%   baseline: rho {:>5.2}  MAPE {:>8.0}%  [x/2,2x] {:>5.1}%",
        est.0, est.1, est.2, bl.0, bl.1, bl.2
    );
    report.insert(
        what.to_string(),
        json!({
            "estimator": { "spearman": est.0, "mape_percent": est.1, "coverage_percent": est.2 },
            "baseline": { "spearman": bl.0, "mape_percent": bl.1, "coverage_percent": bl.2, "per_js_byte": per_byte },
        }),
    );
}

fn truth_floor(k: usize) -> f64 {
    match k {
        0 => 0.05,
        1 => 1_000.0,
        _ => 100.0,
    }
}

/// The libraries whose load `measure_loads` measures: profile name and files under /lib/ (the
/// builds `tools/lib-profiles/measure.mjs` profiles).
const PROFILED: &[(&str, &[&str])] = &[
    ("jquery", &["jquery.min.js"]),
    ("lodash", &["lodash.min.js"]),
    ("moment", &["moment.min.js"]),
    ("d3", &["d3.min.js"]),
    ("chart.js", &["chart.umd.js"]),
    ("three", &["three.min.js"]),
    (
        "react",
        &["react.production.min.js", "react-dom.production.min.js"],
    ),
];

/// Main-thread CPU (thread time) and heap that loading each profiled library adds to a page,
/// as a page loads it (`<script src>` over HTTP, compiled while streaming), and this
/// machine's units per ms in the same clock: what `tools/lib-profiles/measure.mjs` stores as
/// each profile's load.
pub async fn measure_loads(options: Options) -> Result<serde_json::Value, Error> {
    let modules = install(&options.work)?;
    let site = write_site(&options.work, &modules)?;
    for (name, files) in PROFILED {
        let page = corpus::Page {
            name,
            libs: files,
            script: "document.title = 'loaded';".into(),
            body: "",
        };
        let dir = site.join(format!("load-{name}"));
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("index.html"), page.html())?;
    }
    let server = StaticServer::start(site).await?;
    let profile = tempfile::tempdir()?;
    let chromium = truth::Chromium::launch(&options.chromium, profile.path()).await?;
    let calibration = calibrate(&chromium, &server).await?;
    let mut out = serde_json::Map::new();
    for (name, _) in PROFILED {
        let (mut with, mut without) = (Vec::new(), Vec::new());
        // Interleaved, so that whatever else the machine does hits both alike.
        for _ in 0..RUNS {
            let url = server.url(&format!("load-{name}/index.html"));
            with.push(chromium.measure(&url).await?);
            without.push(chromium.measure(&server.url("empty/index.html")).await?);
        }
        let med = |v: &[truth::Measured], f: fn(&truth::Measured) -> f64| {
            stats::median(&v.iter().map(f).collect::<Vec<_>>())
        };
        let load_ms = (med(&with, |m| m.task_ms) - med(&without, |m| m.task_ms)).max(0.0);
        let heap = (med(&with, |m| m.heap_bytes) - med(&without, |m| m.heap_bytes)).max(0.0);
        eprintln!("loads: {name}: {load_ms:.2} ms of main-thread CPU, {heap:.0} bytes of heap");
        out.insert(
            name.to_string(),
            json!({ "load_ms": load_ms, "heap_bytes": heap }),
        );
    }
    Ok(json!({ "units_per_ms": calibration.units_per_ms, "libraries": out }))
}

/// This machine's calibration in main-thread CPU time: the estimator's kernel run in a page.
async fn calibrate(
    chromium: &truth::Chromium,
    server: &StaticServer,
) -> Result<foresight_estimator::Calibration, Error> {
    let mut kernel_ms = Vec::new();
    for _ in 0..3 {
        let m = chromium
            .measure(&server.url("calibrate/index.html"))
            .await?;
        kernel_ms.push(m.script_ms);
    }
    let units = call_units(KERNEL_JS, "foresightKernel") * KERNEL_RUNS as f64;
    let calibration = from_measurement(units, stats::median(&kernel_ms)).ok_or_else(|| {
        Error::Setup(format!(
            "implausible calibration: {units} units in {kernel_ms:?} ms"
        ))
    })?;
    eprintln!(
        "accuracy: {:.0} units per ms (kernel in {:.1} ms of thread time)",
        calibration.units_per_ms,
        stats::median(&kernel_ms)
    );
    Ok(calibration)
}

pub async fn run(options: Options) -> Result<(), Error> {
    let modules = install(&options.work)?;
    let site = write_site(&options.work, &modules)?;
    let server = StaticServer::start(site).await?;

    let profile = tempfile::tempdir()?;
    let chromium = truth::Chromium::launch(&options.chromium, profile.path()).await?;

    // Calibrated like the truth is measured, in main-thread CPU time (the extension and the
    // CLI time the same kernel with the page's own clock, which on a busy machine also counts
    // other processes' time).
    let calibration = calibrate(&chromium, &server).await?;
    let pages = corpus::pages();
    let mut raw = Vec::new();
    for p in &pages {
        let url = server.url(&format!("{}/index.html", p.name));
        let mut runs = Vec::new();
        for _ in 0..RUNS {
            runs.push(chromium.measure(&url).await?);
        }
        let med =
            |f: fn(&truth::Measured) -> f64| stats::median(&runs.iter().map(f).collect::<Vec<_>>());
        let truth = [
            med(|m| m.task_ms),
            med(|m| m.heap_bytes),
            med(|m| m.network_bytes),
        ];
        let script_ms = med(|m| m.script_ms);
        let u = url.clone();
        let cal = calibration;
        let (demand, js_bytes) = tokio::task::spawn_blocking(move || {
            let mut loaded = page::load(&u).map_err(|e| Error::Setup(e.to_string()))?;
            let js: f64 = loaded.sources.scripts.iter().map(|s| s.bytes as f64).sum();
            let d = page::estimate(&mut loaded, &cal, Budget::default(), &mut |x| {
                page::fetch(x)
            });
            Ok::<_, Error>((d, js))
        })
        .await
        .map_err(|e| Error::Setup(e.to_string()))??;
        let load = demand
            .paths
            .first()
            .ok_or_else(|| Error::Setup(format!("{}: no load path", p.name)))?;
        let q = |x: &foresight_shared::protocol::Quantiles| [x.p10, x.p50, x.p90];
        raw.push((
            p.name,
            js_bytes,
            truth,
            script_ms,
            [
                q(&load.cpu_ms),
                q(&load.memory_bytes),
                q(&load.network_bytes),
            ],
        ));
        eprintln!(
            "accuracy: {:<22} truth CPU {:>8.1} ms (script {:>7.1}), heap {:>6.2} MB, net {:>7.0} KB | predicted CPU {:>7.1} / {:>7.1} / {:>7.1} ms",
            p.name,
            truth[0],
            script_ms,
            truth[1] / 1e6,
            truth[2] / 1e3,
            load.cpu_ms.p10,
            load.cpu_ms.p50,
            load.cpu_ms.p90
        );
    }
    // The browser's own cost of any page: the empty page's.
    let empty = raw
        .iter()
        .find(|r| r.0 == "empty")
        .map(|r| r.2)
        .unwrap_or([0.0; 3]);
    let rows: Vec<Row> = raw
        .iter()
        .map(|(name, js, truth, _, predicted)| Row {
            name,
            js_bytes: *js,
            truth: [0, 1, 2].map(|k| {
                let base = if k == 2 { 0.0 } else { empty[k] };
                (truth[k] - base).max(truth_floor(k))
            }),
            predicted: *predicted,
        })
        .collect();
    println!(
        "\n{:<22} {:>10} {:>28} {:>10} {:>28}",
        "page", "CPU ms", "predicted p10 / p50 / p90", "heap MB", "predicted p10 / p50 / p90"
    );
    for r in &rows {
        println!(
            "{:<22} {:>10.1} {:>9.1} {:>9.1} {:>9.1}  {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
            r.name,
            r.truth[0],
            r.predicted[0][0],
            r.predicted[0][1],
            r.predicted[0][2],
            r.truth[1] / 1e6,
            r.predicted[1][0] / 1e6,
            r.predicted[1][1] / 1e6,
            r.predicted[1][2] / 1e6,
        );
    }
    println!("\n{} pages, median of {RUNS} loads each\n", rows.len());
    let mut report = serde_json::Map::new();
    summarise("cpu", 0, &rows, &mut report);
    summarise("memory", 1, &rows, &mut report);
    summarise("network", 2, &rows, &mut report);
    report.insert("units_per_ms".into(), json!(calibration.units_per_ms));
    report.insert(
        "pages".into(),
        json!(rows
            .iter()
            .map(|r| json!({ "name": r.name, "js_bytes": r.js_bytes, "truth": r.truth, "predicted": r.predicted }))
            .collect::<Vec<_>>()),
    );
    let path = options.work.join("results.json");
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&report).unwrap_or_default(),
    )?;
    println!("\nwrote {}", path.display());
    Ok(())
}
