//! Remote Web Workers, measured where a user meets them: in real headless Chromium with the
//! built extension and a real broker on loopback (the end-to-end harness, `foresight-tests`).
//!
//! * round trip: p50 of sequential ping/pong messages through a native Worker and through the
//!   page's Worker placed on the broker (target: at most +1 ms), and the broker's share of it
//!   (a websocket client of our own, no browser or extension in the path). The page's
//!   messages take the direct path: page (MAIN world) -> MessagePort -> the isolated content
//!   script -> the tab's data channel (its own websocket) -> broker -> executor, and back the
//!   same way; the suite fails if the broker saw them come any other way. For comparison the
//!   same is measured on the relay path (page -> content script -> runtime port -> the
//!   background -> the background's websocket), with a second browser whose broker refuses
//!   the tab's channel (`round_trip_relay_*`);
//! * executor start: `worker_spawn` to `worker_started` at the broker, over its websocket
//!   (target: 1 ms from a pool of pre-started executors);
//! * compute: the same workloads (tests/fixtures/conformance/w/bench.js) timed inside a native
//!   worker (the browser's engine) and inside a remote one (QuickJS in the executor), as
//!   ratios: how many times slower the executor is.
//! * the same page against a broker whose workers run on V8 in confined Node children
//!   (`remote_worker.node_*`): compute speed relative to the browser's V8 (target: >= 0.9x),
//!   a worker's start from the pool of booted children (target: <= 2 ms), and an idle
//!   worker's memory on each engine (resident, and proportional: shared pages divided).
//!
//! Needs the extension packaged and the binaries built: `cargo xtask bench` does both. Release
//! binaries are used when present (the executor's speed is measured), debug ones otherwise.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use foresight_shared::protocol::broker::EngineKind;
use foresight_tests::artifacts::Artifacts;
use foresight_tests::browser::{BrowserKind, Tab};
use foresight_tests::conformance;
use foresight_tests::scenario::{Rig, RigOptions};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::report::Report;

const ROUND_TRIPS: usize = 200;
const SPAWNS: usize = 20;
const WORKLOADS: [&str; 5] = ["fib", "mandelbrot", "sha256", "json", "blur"];
/// Runs of each V8 workload (the best counts): they last 2-60 ms, so one run preempted on a
/// shared machine is common, and the best of a few is what each engine can do.
const V8_RUNS: usize = 7;

pub fn run(report: &mut Report) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(measure(report))?;
    runtime.block_on(measure_node(report))
}

/// The test artifacts, with the release binaries when they are built (the bench measures them).
pub(crate) fn artifacts() -> Result<Artifacts, String> {
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
    let options = RigOptions {
        artifacts: Some(artifacts()?),
        ..RigOptions::default()
    };
    let (mut rig, tab) = conformance_rig(options).await?;
    let eval = |expr: String| page_eval(&rig, &tab, expr);

    let local = ms(&eval(format!("benchRoundTrip('native', {ROUND_TRIPS})")).await?)?;
    let mark = rig.broker.events().len();
    let remote = ms(&eval(format!("benchRoundTrip('page', {ROUND_TRIPS})")).await?)?;
    let relayed = conformance::relayed_workers(&rig, mark);
    if !relayed.is_empty() {
        return Err(format!(
            "the round trip was measured on the relay, not the tab's data channel: {relayed:?}"
        ));
    }
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
        "p50, the page's Worker on the broker (loopback), through the tab's data channel",
    );
    report.add(
        "remote_worker.round_trip_overhead",
        remote - local,
        "ms",
        "remote - local; target <= 1 ms",
    );

    let mut c = BenchClient::connect(&rig).await?;
    let broker_rt = c.round_trips(ROUND_TRIPS).await?;
    report.add(
        "remote_worker.round_trip_broker",
        percentile_ms(&broker_rt, 50.0),
        "ms",
        "p50, websocket client <-> broker <-> executor echo, binary frames (no browser)",
    );
    drop(c);

    let (cold, spare) = executor_starts(&rig).await?;
    report.add(
        "remote_worker.executor_start_cold_p50",
        percentile_ms(&cold, 50.0),
        "ms",
        "worker_spawn -> worker_started, a new process (first worker of a connection)",
    );
    report.add(
        "remote_worker.executor_start_spare_p50",
        percentile_ms(&spare, 50.0),
        "ms",
        "same, in the connection's ready spare executor; target <= 1 ms",
    );
    report.add(
        "remote_worker.executor_start_spare_p90",
        percentile_ms(&spare, 90.0),
        "ms",
        "same, p90",
    );

    for name in WORKLOADS {
        let native = eval(format!("benchCompute('native', {name:?}, {V8_RUNS})")).await?;
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
            &format!("best of {V8_RUNS}, inside a native worker (V8)"),
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
    let (rss, pss) = idle_worker_memory(&mut rig).await?;
    report.add(
        "remote_worker.idle_worker_rss_quickjs",
        rss,
        "MiB",
        "resident memory of an idle QuickJS executor",
    );
    report.add(
        "remote_worker.idle_worker_pss_quickjs",
        pss,
        "MiB",
        "same, proportional (shared pages divided among processes)",
    );
    drop(tab);
    drop(rig);
    relay_round_trip(report).await
}

/// Real headless Chromium with the extension, set up as `options` says, and the
/// conformance page open in it.
async fn conformance_rig(options: RigOptions) -> Result<(Rig, Tab), String> {
    conformance::start(BrowserKind::Chromium, options)
        .await
        .map_err(|e| e.to_string())
}

/// Evaluates `expr` in the page (awaiting a promise).
async fn page_eval(rig: &Rig, tab: &Tab, expr: String) -> Result<Value, String> {
    rig.browser
        .eval(tab, &expr)
        .await
        .map_err(|e| e.to_string())
}

/// The round trip on the relay path, for comparison: a broker that accepts one connection
/// (the background's) refuses the tab's data channel, so the page's messages go through the
/// background as they did before data channels.
async fn relay_round_trip(report: &mut Report) -> Result<(), String> {
    let options = RigOptions {
        artifacts: Some(artifacts()?),
        broker_connections: Some(1),
        ..RigOptions::default()
    };
    let (rig, tab) = conformance_rig(options).await?;
    let eval = |expr: String| page_eval(&rig, &tab, expr);
    let local = ms(&eval(format!("benchRoundTrip('native', {ROUND_TRIPS})")).await?)?;
    let mark = rig.broker.events().len();
    let remote = ms(&eval(format!("benchRoundTrip('page', {ROUND_TRIPS})")).await?)?;
    if conformance::relayed_workers(&rig, mark).is_empty() {
        return Err("the relay round trip was measured on a data channel".into());
    }
    report.add(
        "remote_worker.round_trip_relay_remote",
        remote,
        "ms",
        "p50, the same through the background (no data channel), for comparison",
    );
    report.add(
        "remote_worker.round_trip_relay_overhead",
        remote - local,
        "ms",
        "relay remote - its own local run",
    );
    Ok(())
}

/// The same page with every remote worker on V8 in a confined Node child.
async fn measure_node(report: &mut Report) -> Result<(), String> {
    let options = RigOptions {
        artifacts: Some(artifacts()?),
        engine: EngineKind::Node,
        ..RigOptions::default()
    };
    let (mut rig, tab) = conformance_rig(options).await?;
    for name in WORKLOADS {
        let native = rig
            .browser
            .eval(
                &tab,
                &format!("benchCompute('native', {name:?}, {V8_RUNS})"),
            )
            .await
            .map_err(|e| rig.context(e).to_string())?;
        let remote = rig
            .browser
            .eval(&tab, &format!("benchCompute('page', {name:?}, {V8_RUNS})"))
            .await
            .map_err(|e| with_broker_events(&rig, rig.context(e).to_string()))?;
        if native["result"] != remote["result"] {
            return Err(format!(
                "{name}: the engines disagree: {native} vs {remote}"
            ));
        }
        let (n, r) = (ms(&native["ms"])?, ms(&remote["ms"])?);
        report.add(
            &format!("remote_worker.node_compute_{name}_ms"),
            r,
            "ms",
            &format!("best of {V8_RUNS}, inside a Node child (V8, confined)"),
        );
        report.add(
            &format!("remote_worker.node_compute_{name}_speed"),
            if r > 0.0 { n / r } else { 0.0 },
            "x",
            "browser time / Node time (1 = as fast as the browser's V8); target >= 0.9",
        );
    }
    let (rss, pss) = idle_worker_memory(&mut rig).await?;
    report.add(
        "remote_worker.idle_worker_rss_node",
        rss,
        "MiB",
        "resident memory of an idle Node child (node, V8 heaps, the runner)",
    );
    report.add(
        "remote_worker.idle_worker_pss_node",
        pss,
        "MiB",
        "same, proportional (node's binary pages are shared by every child)",
    );
    let mut c = BenchClient::connect(&rig).await?;
    let mut starts = c.spawns(SPAWNS + 1, NODE_POOL_READY).await?;
    // The first may have found the pool still booting.
    starts.remove(0);
    report.add(
        "remote_worker.node_start_pool_p50",
        percentile_ms(&starts, 50.0),
        "ms",
        "worker_spawn -> worker_started, a booted child from the pool; target <= 2 ms",
    );
    report.add(
        "remote_worker.node_start_pool_p90",
        percentile_ms(&starts, 90.0),
        "ms",
        "same, p90",
    );
    Ok(())
}

/// `error`, with what the broker last did (why a remote run failed is on its side).
fn with_broker_events(rig: &Rig, error: String) -> String {
    let events = rig.broker.events();
    let recent: Vec<String> = events
        .iter()
        .skip(events.len().saturating_sub(12))
        .map(|e| format!("    {e}"))
        .collect();
    format!(
        "{error}\n  the broker's last events:\n{}",
        recent.join("\n")
    )
}

/// How long the Node pool is given to boot a replacement child (~40 ms of node start-up,
/// confinement and the runner, slower on a loaded machine).
const NODE_POOL_READY: Duration = Duration::from_millis(300);

/// Resident and proportional memory, MiB, of an idle worker on the rig's broker: one that
/// started and waits for a message.
async fn idle_worker_memory(rig: &mut Rig) -> Result<(f64, f64), String> {
    let mark = rig.broker.events().len();
    let mut c = BenchClient::connect(rig).await?;
    c.send(json!({"type": "worker_spawn", "lease_id": c.lease_id, "worker_id": "idle", "script_url": "https://bench.test/idle.js", "source": "onmessage = (e) => postMessage(e.data);"}))
        .await?;
    let started = c.recv().await?;
    if started["type"] != "worker_started" {
        return Err(format!("expected worker_started, got {started}"));
    }
    let (_, pid) = rig
        .broker
        .wait_for(
            "the idle worker's start",
            mark,
            Duration::from_secs(10),
            |e| match e {
                foresight_broker::BrokerEvent::WorkerStarted {
                    worker_id,
                    executor_pid,
                    ..
                } if worker_id == "idle" => Some(*executor_pid),
                _ => None,
            },
        )
        .await
        .map_err(|e| e.to_string())?;
    let kib = |file: &str, key: &str| -> Result<f64, String> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/{file}"))
            .map_err(|e| format!("/proc/{pid}/{file}: {e}"))?;
        text.lines()
            .find_map(|l| {
                l.strip_prefix(key)?
                    .trim()
                    .strip_suffix("kB")?
                    .trim()
                    .parse()
                    .ok()
            })
            .ok_or_else(|| format!("no {key} in /proc/{pid}/{file}"))
    };
    let rss = kib("status", "VmRSS:")?;
    let pss = kib("smaps_rollup", "Pss:")?;
    c.send(json!({"type": "worker_terminate", "worker_id": "idle"}))
        .await?;
    c.recv().await?;
    Ok((rss / 1024.0, pss / 1024.0))
}

fn ms(v: &Value) -> Result<f64, String> {
    v.as_f64().ok_or_else(|| format!("not a number of ms: {v}"))
}

fn percentile_ms(times: &[Duration], p: f64) -> f64 {
    crate::measure::percentile_us(times, p) / 1000.0
}

/// Times `worker_spawn` -> `worker_started` over websockets of our own: the first worker of
/// each of [`COLD`] new connections (a new process), then [`SPAWNS`] workers one after the other
/// on one connection, spaced so that its spare executor is ready each time.
async fn executor_starts(rig: &Rig) -> Result<(Vec<Duration>, Vec<Duration>), String> {
    let mut cold = Vec::new();
    for i in 0..COLD {
        let mut c = BenchClient::connect(rig).await?;
        let times = c.spawns(1, Duration::ZERO).await?;
        // The first connection also warms the page cache for the executor binary.
        if i > 0 {
            cold.extend(times);
        }
    }
    let mut c = BenchClient::connect(rig).await?;
    let mut spare = c.spawns(SPAWNS + 1, SPARE_READY).await?;
    // The first of these had no spare yet.
    spare.remove(0);
    Ok((cold, spare))
}

/// How long a spare executor is given to get ready (it needs ~10 ms: a process, a network
/// namespace, QuickJS and the worker's world).
const SPARE_READY: Duration = Duration::from_millis(100);
const COLD: usize = 6;

struct BenchClient {
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    lease_id: u64,
    next: usize,
}

impl BenchClient {
    async fn connect(rig: &Rig) -> Result<Self, String> {
        let (ws, _) = tokio_tungstenite::connect_async(rig.broker.url())
            .await
            .map_err(|e| e.to_string())?;
        let mut c = Self {
            ws,
            lease_id: 0,
            next: 0,
        };
        c.send(json!({"type": "hello", "protocol_version": 1, "client": "bench", "features": ["structured_clone_v1"]}))
            .await?;
        c.recv().await?;
        c.send(json!({"type": "lease_request", "request_id": 1, "resources": {"cpu_millicores": 100, "memory_bytes": 16 << 20}, "ttl_ms": 30_000}))
            .await?;
        let lease = c.recv().await?;
        c.lease_id = lease["lease"]["lease_id"]
            .as_u64()
            .ok_or_else(|| format!("no lease: {lease}"))?;
        Ok(c)
    }

    async fn send(&mut self, v: Value) -> Result<(), String> {
        self.ws
            .send(Message::text(v.to_string()))
            .await
            .map_err(|e| e.to_string())
    }

    async fn recv(&mut self) -> Result<Value, String> {
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(30), self.ws.next())
                .await
                .map_err(|_| "the broker did not answer".to_string())?
                .ok_or("the broker closed the connection")?
                .map_err(|e| e.to_string())?;
            if let Message::Text(text) = frame {
                return serde_json::from_str(text.as_str()).map_err(|e| e.to_string());
            }
        }
    }

    /// `n` sequential round trips (after a warm-up) with an echo worker, in binary frames.
    async fn round_trips(&mut self, n: usize) -> Result<Vec<Duration>, String> {
        self.send(json!({"type": "worker_spawn", "lease_id": self.lease_id, "worker_id": "echo", "script_url": "https://bench.test/echo.js", "source": "onmessage = (e) => postMessage(e.data);"}))
            .await?;
        self.recv().await?;
        let payload = foresight_shared::sclone::encode_json(&json!("ping"));
        let frame = foresight_shared::protocol::broker::encode_worker_frame("echo", &payload);
        let mut times = Vec::with_capacity(n);
        for i in 0..n + 20 {
            let began = Instant::now();
            self.ws
                .send(Message::binary(frame.clone()))
                .await
                .map_err(|e| e.to_string())?;
            loop {
                let next = tokio::time::timeout(Duration::from_secs(30), self.ws.next())
                    .await
                    .map_err(|_| "the echo worker did not answer".to_string())?
                    .ok_or("the broker closed the connection")?
                    .map_err(|e| e.to_string())?;
                if matches!(next, Message::Binary(_)) {
                    break;
                }
            }
            if i >= 20 {
                times.push(began.elapsed());
            }
        }
        self.send(json!({"type": "worker_terminate", "worker_id": "echo"}))
            .await?;
        self.recv().await?;
        Ok(times)
    }

    /// `n` workers, one after the other, `gap` apart; each is terminated once started.
    async fn spawns(&mut self, n: usize, gap: Duration) -> Result<Vec<Duration>, String> {
        let mut times = Vec::with_capacity(n);
        for _ in 0..n {
            tokio::time::sleep(gap).await;
            let id = format!("start-{}", self.next);
            self.next += 1;
            let began = Instant::now();
            self.send(json!({"type": "worker_spawn", "lease_id": self.lease_id, "worker_id": id, "script_url": "https://bench.test/w.js", "source": "onmessage = (e) => postMessage(e.data);"}))
                .await?;
            let started = self.recv().await?;
            times.push(began.elapsed());
            if started["type"] != "worker_started" {
                return Err(format!("expected worker_started, got {started}"));
            }
            self.send(json!({"type": "worker_terminate", "worker_id": id}))
                .await?;
            self.recv().await?;
        }
        Ok(times)
    }
}
