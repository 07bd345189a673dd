//! Remote Web Workers, measured where a user meets them: in real headless Chromium with the
//! built extension and a real broker on loopback (the end-to-end harness, `foresight-tests`).
//!
//! * round trip: p50 of sequential ping/pong messages through a native Worker and through the
//!   page's Worker placed on the broker (target: at most +1 ms);
//! * executor start: `worker_spawn` to `worker_started` at the broker, over its websocket
//!   (target: 1 ms from a pool of pre-started executors);
//! * compute: the same workloads (tests/fixtures/conformance/w/bench.js) timed inside a native
//!   worker (the browser's engine) and inside a remote one (QuickJS in the executor), as
//!   ratios: how many times slower the executor is.
//!
//! Needs the extension packaged and the binaries built: `cargo xtask bench` does both. Release
//! binaries are used when present (the executor's speed is measured), debug ones otherwise.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use foresight_tests::artifacts::Artifacts;
use foresight_tests::browser::BrowserKind;
use foresight_tests::conformance;
use foresight_tests::scenario::Rig;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::report::Report;

const ROUND_TRIPS: usize = 200;
const SPAWNS: usize = 20;
const WORKLOADS: [&str; 5] = ["fib", "mandelbrot", "sha256", "json", "blur"];

pub fn run(report: &mut Report) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(measure(report))
}

fn artifacts() -> Result<Artifacts, String> {
    let mut artifacts = Artifacts::locate().map_err(|e| e.to_string())?;
    let release = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(PathBuf::from));
    if let Some(release) = release
        && release.join("foresight-broker").exists()
        && release.join("foresight-host").exists()
    {
        artifacts.bin_dir = release;
    }
    eprintln!("    binaries from {}", artifacts.bin_dir.display());
    Ok(artifacts)
}

async fn measure(report: &mut Report) -> Result<(), String> {
    let mut rig = Rig::start_with(BrowserKind::Chromium, true, artifacts()?)
        .await
        .map_err(|e| e.to_string())?;
    let tab = conformance::open(&mut rig)
        .await
        .map_err(|e| rig.context(e).to_string())?;
    let eval = |expr: String| {
        let rig = &rig;
        let tab = &tab;
        async move {
            rig.browser
                .eval(tab, &expr)
                .await
                .map_err(|e| e.to_string())
        }
    };

    let local = ms(&eval(format!("benchRoundTrip('native', {ROUND_TRIPS})")).await?)?;
    let remote = ms(&eval(format!("benchRoundTrip('page', {ROUND_TRIPS})")).await?)?;
    report.add(
        "remote_worker.round_trip_local",
        local,
        "ms",
        "p50, native Worker in Chromium",
    );
    report.add(
        "remote_worker.round_trip_remote",
        remote,
        "ms",
        "p50, the page's Worker on the broker (loopback)",
    );
    report.add(
        "remote_worker.round_trip_overhead",
        remote - local,
        "ms",
        "remote - local; target <= 1 ms",
    );

    let starts = executor_starts(&rig).await?;
    report.add(
        "remote_worker.executor_start_p50",
        percentile_ms(&starts, 50.0),
        "ms",
        "worker_spawn -> worker_started, no pool; target <= 1 ms from a pool",
    );
    report.add(
        "remote_worker.executor_start_p90",
        percentile_ms(&starts, 90.0),
        "ms",
        "same, p90",
    );

    for name in WORKLOADS {
        let native = eval(format!("benchCompute('native', {name:?}, 3)")).await?;
        let remote = eval(format!("benchCompute('page', {name:?}, 2)")).await?;
        if native["result"] != remote["result"] {
            return Err(format!(
                "{name}: the engines disagree: {native} vs {remote}"
            ));
        }
        let (n, r) = (ms(&native["ms"])?, ms(&remote["ms"])?);
        report.add(
            &format!("remote_worker.compute_{name}_browser"),
            n,
            "ms",
            "best of 3, inside a native worker (V8)",
        );
        report.add(
            &format!("remote_worker.compute_{name}_executor"),
            r,
            "ms",
            "best of 2, inside the executor (QuickJS)",
        );
        report.add(
            &format!("remote_worker.compute_{name}_ratio"),
            if n > 0.0 { r / n } else { 0.0 },
            "x",
            "executor time / browser time (1 = as fast)",
        );
    }
    Ok(())
}

fn ms(v: &Value) -> Result<f64, String> {
    v.as_f64().ok_or_else(|| format!("not a number of ms: {v}"))
}

fn percentile_ms(times: &[Duration], p: f64) -> f64 {
    crate::measure::percentile_us(times, p) / 1000.0
}

/// Spawns [`SPAWNS`] workers one after the other over a websocket of our own and times each
/// from `worker_spawn` to `worker_started`.
async fn executor_starts(rig: &Rig) -> Result<Vec<Duration>, String> {
    let (mut ws, _) = tokio_tungstenite::connect_async(rig.broker.url())
        .await
        .map_err(|e| e.to_string())?;
    let next = async |ws: &mut tokio_tungstenite::WebSocketStream<_>| -> Result<Value, String> {
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(30), ws.next())
                .await
                .map_err(|_| "the broker did not answer".to_string())?
                .ok_or("the broker closed the connection")?
                .map_err(|e| e.to_string())?;
            if let Message::Text(text) = frame {
                return serde_json::from_str(text.as_str()).map_err(|e| e.to_string());
            }
        }
    };
    let send = |v: Value| Message::text(v.to_string());
    ws.send(send(json!({"type": "hello", "protocol_version": 1, "client": "bench", "features": ["structured_clone_v1"]})))
        .await
        .map_err(|e| e.to_string())?;
    next(&mut ws).await?;
    ws.send(send(json!({"type": "lease_request", "request_id": 1, "resources": {"cpu_millicores": 100, "memory_bytes": 16 << 20}, "ttl_ms": 30_000})))
        .await
        .map_err(|e| e.to_string())?;
    let lease = next(&mut ws).await?;
    let lease_id = lease["lease"]["lease_id"]
        .as_u64()
        .ok_or_else(|| format!("no lease: {lease}"))?;
    let mut times = Vec::with_capacity(SPAWNS);
    for i in 0..SPAWNS + 2 {
        let id = format!("start-{i}");
        let began = Instant::now();
        ws.send(send(json!({"type": "worker_spawn", "lease_id": lease_id, "worker_id": id, "script_url": "https://bench.test/w.js", "source": "onmessage = (e) => postMessage(e.data);"})))
            .await
            .map_err(|e| e.to_string())?;
        let started = next(&mut ws).await?;
        let elapsed = began.elapsed();
        if started["type"] != "worker_started" {
            return Err(format!("expected worker_started, got {started}"));
        }
        // The first two warm the page cache for the executor binary.
        if i >= 2 {
            times.push(elapsed);
        }
        ws.send(send(json!({"type": "worker_terminate", "worker_id": id})))
            .await
            .map_err(|e| e.to_string())?;
        next(&mut ws).await?;
    }
    Ok(times)
}
