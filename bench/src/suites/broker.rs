//! The broker under load on loopback: lease grant+release round trips per second and their
//! latency with 1, 100 and 1,000 concurrent connections, and how long a revocation takes to
//! reach its client with 10,000 live leases.
//!
//! The baseline, measured in the same run on the same runtime and loopback: a bare websocket
//! echo server (tokio-tungstenite, the same stack the broker uses) answering a message of the
//! same size, with the same number of connections. The ratio says what the broker's protocol
//! and lease engine cost beyond moving the bytes.
//!
//! Server and load generator share one 2-thread tokio runtime in this process, so on this
//! machine they compete for the same two cores (as they would on a laptop running both). An
//! operation is one request answered: a grant+release round trip is two.
//!
//! Two kinds of run. *Saturated*: every client sends its next request as soon as the last is
//! answered, which gives the most operations per second; its latency is then queueing by
//! Little's law (1,000 clients at 50,000 ops/s wait 20 ms on average whatever the server
//! does), so a 1 ms p99 at 1,000 saturating clients cannot be had. *Paced*: the clients
//! together offer a fixed [`PACED_OPS_PER_S`], spread evenly, below saturation; that latency
//! is what a request sees on a busy but not overloaded broker.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use foresight_broker::{BrokerConfig, ExecutorCommand, Server, ServerHandle};
use foresight_shared::protocol::plan::ResourceAmounts;
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Barrier, mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::measure::percentile_us;
use crate::report::Report;

const CONNECTIONS: &[usize] = &[1, 100, 1_000];
/// The offered load of the paced runs, all clients together.
const PACED_OPS_PER_S: u64 = 5_000;
const WARMUP: Duration = Duration::from_millis(500);
const MEASURE: Duration = Duration::from_secs(3);
const LIVE_LEASES: u64 = 10_000;
const REVOCATION_STEPS: u64 = 20;
const REVOKED_PER_STEP: u64 = 50;
/// Longest any single answer may take before the suite gives up.
const STALL: Duration = Duration::from_secs(30);

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

const WARMING: u8 = 0;
const MEASURING: u8 = 1;
const STOPPING: u8 = 2;

/// What one load run measured.
struct Load {
    ops_per_s: f64,
    p50_us: f64,
    p99_us: f64,
}

pub fn run(report: &mut Report) -> Result<(), String> {
    raise_fd_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    runtime.block_on(async {
        let mut echo_p99_at_100 = 0.0;
        for &n in CONNECTIONS {
            let echo = echo_load(n, None).await?;
            let lease = lease_load(n, None).await?;
            if n == 100 {
                echo_p99_at_100 = echo.p99_us;
            }
            report.add(
                &format!("broker.lease_ops_per_s.c{n}"),
                lease.ops_per_s,
                "ops/s",
                if n == 1_000 { "target >= 50000" } else { "grant or release answered" },
            );
            report.add(
                &format!("broker.echo_ops_per_s.c{n}"),
                echo.ops_per_s,
                "ops/s",
                "baseline: bare websocket echo, same size",
            );
            report.add(
                &format!("broker.lease_vs_echo_throughput.c{n}"),
                ratio(lease.ops_per_s, echo.ops_per_s),
                "ratio",
                "1.0 = leases cost nothing beyond the websocket",
            );
            report.add(&format!("broker.lease_p50_us.c{n}"), lease.p50_us, "us", "");
            report.add(
                &format!("broker.lease_p99_us.c{n}"),
                lease.p99_us,
                "us",
                if n == 1_000 { "target <= 1000" } else { "" },
            );
            report.add(
                &format!("broker.echo_p50_us.c{n}"),
                echo.p50_us,
                "us",
                "baseline",
            );
            report.add(
                &format!("broker.echo_p99_us.c{n}"),
                echo.p99_us,
                "us",
                "baseline",
            );
            if n == 1 {
                continue;
            }
            // Each client paced so that together they offer PACED_OPS_PER_S.
            let period = Duration::from_secs_f64(n as f64 / PACED_OPS_PER_S as f64);
            let echo = echo_load(n, Some(period)).await?;
            // A lease cycle is two operations.
            let lease = lease_load(n, Some(period * 2)).await?;
            report.add(
                &format!("broker.paced_lease_ops_per_s.c{n}"),
                lease.ops_per_s,
                "ops/s",
                &format!("offered {PACED_OPS_PER_S}"),
            );
            report.add(
                &format!("broker.paced_lease_p50_us.c{n}"),
                lease.p50_us,
                "us",
                "",
            );
            report.add(
                &format!("broker.paced_lease_p99_us.c{n}"),
                lease.p99_us,
                "us",
                if n == 1_000 { "target <= 1000" } else { "" },
            );
            report.add(
                &format!("broker.paced_echo_p50_us.c{n}"),
                echo.p50_us,
                "us",
                "baseline, same offered load",
            );
            report.add(
                &format!("broker.paced_echo_p99_us.c{n}"),
                echo.p99_us,
                "us",
                "baseline, same offered load",
            );
        }
        if let Some(load) = load_average() {
            report.add(
                "broker.machine_load_1m",
                load,
                "load",
                "1-minute load average when the suite ended (2 cores; others' builds count)",
            );
        }
        let engine = engine_ops_per_s();
        report.add(
            "broker.engine_ops_per_s",
            engine,
            "ops/s",
            "the lease engine alone, no I/O: grant+release for 1,000 clients",
        );
        let (steps_p99, bulk_p99) = revocation_lag().await?;
        report.add(
            "broker.revocation_lag_p99_us",
            steps_p99,
            "us",
            &format!(
                "{LIVE_LEASES} live leases, {REVOKED_PER_STEP} revoked per capacity cut; target <= 100000"
            ),
        );
        report.add(
            "broker.revocation_lag_bulk_p99_us",
            bulk_p99,
            "us",
            "half the live leases revoked by one capacity cut",
        );
        report.add(
            "broker.echo_p99_us_baseline_for_revocation",
            echo_p99_at_100,
            "us",
            "echo round trip p99, 100 connections",
        );
        Ok(())
    })
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

// --- The servers ------------------------------------------------------------------------

/// A broker with a pool far larger than the load needs (so every request is granted) or
/// exactly `capacity`.
async fn start_broker(
    capacity: ResourceAmounts,
) -> Result<(SocketAddr, ServerHandle, oneshot::Sender<()>), String> {
    let mut config = BrokerConfig::new(
        capacity,
        ExecutorCommand {
            program: "/bin/false".into(),
            args: vec![],
        },
    );
    config.revoke_grace_ms = 0;
    config.shutdown_grace_ms = 0;
    let server = Server::new(config);
    let handle = server.handle();
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("bind: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(server.run(listener, async {
        let _ = stopped.await;
    }));
    Ok((addr, handle, stop))
}

/// The baseline: echoes every text frame back.
async fn start_echo() -> Result<(SocketAddr, oneshot::Sender<()>), String> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("bind: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let (stop, mut stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = &mut stopped => return,
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(async move {
                        let accepted =
                            tokio_tungstenite::accept_async_with_config(stream, Some(ws_config()))
                                .await;
                        let Ok(mut ws) = accepted else {
                            return;
                        };
                        while let Some(Ok(message)) = ws.next().await {
                            if message.is_text() && ws.send(message).await.is_err() {
                                return;
                            }
                        }
                    });
                }
            }
        }
    });
    Ok((addr, stop))
}

// --- The load ---------------------------------------------------------------------------

/// The websocket settings of the load generator and the echo baseline: the broker's read
/// buffer (see `READ_BUFFER_BYTES` in the broker), so that neither side pays tungstenite's
/// 128 KiB zero-fill per read and the baseline is not handicapped against the broker.
fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(8 * 1024)
}

async fn connect(addr: SocketAddr) -> Result<Ws, String> {
    let (ws, _) = tokio_tungstenite::connect_async_with_config(
        format!("ws://{addr}"),
        Some(ws_config()),
        true,
    )
    .await
    .map_err(|e| format!("connect: {e}"))?;
    Ok(ws)
}

/// The next text frame, within [`STALL`].
async fn next_text(ws: &mut Ws) -> Result<String, String> {
    loop {
        let frame = tokio::time::timeout(STALL, ws.next())
            .await
            .map_err(|_| "no answer in time".to_string())?
            .ok_or("connection closed")?
            .map_err(|e| format!("websocket: {e}"))?;
        if let Message::Text(text) = frame {
            return Ok(text.as_str().to_owned());
        }
    }
}

async fn send(ws: &mut Ws, text: String) -> Result<(), String> {
    ws.send(Message::text(text))
        .await
        .map_err(|e| format!("send: {e}"))
}

async fn hello(ws: &mut Ws) -> Result<(), String> {
    send(
        ws,
        r#"{"type":"hello","protocol_version":1,"client":"foresight-bench"}"#.into(),
    )
    .await?;
    let answer = next_text(ws).await?;
    if !answer.contains(r#""type":"hello""#) {
        return Err(format!("hello refused: {answer}"));
    }
    Ok(())
}

fn lease_request(request_id: u64, cpu: u64, memory: u64) -> String {
    format!(
        r#"{{"type":"lease_request","request_id":{request_id},"resources":{{"cpu_millicores":{cpu},"memory_bytes":{memory}}},"ttl_ms":60000,"priority":1,"purpose":"bench"}}"#
    )
}

/// The lease id in a `lease_granted`, without a full parse (the load generator shares the
/// CPU with the broker; it should spend as little as it can).
fn granted_lease_id(answer: &str) -> Result<u64, String> {
    if !answer.contains(r#""type":"lease_granted""#) {
        return Err(format!("not granted: {answer}"));
    }
    let value: serde_json::Value =
        serde_json::from_str(answer).map_err(|e| format!("{e}: {answer}"))?;
    value["lease"]["lease_id"]
        .as_u64()
        .ok_or_else(|| format!("no lease id: {answer}"))
}

/// Runs `n` clients through warm-up and measurement and merges what they recorded.
async fn drive<F, Fut>(n: usize, client: F) -> Result<Load, String>
where
    F: Fn(Arc<AtomicU8>, Arc<Barrier>) -> Fut,
    Fut: std::future::Future<Output = Result<(u64, Vec<u32>), String>> + Send + 'static,
{
    let phase = Arc::new(AtomicU8::new(WARMING));
    // Everyone connected before the clock starts: the handshakes are not the load.
    let connected = Arc::new(Barrier::new(n + 1));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..n {
        tasks.spawn(client(phase.clone(), connected.clone()));
    }
    tokio::time::timeout(STALL, connected.wait())
        .await
        .map_err(|_| format!("{n} clients did not connect in time"))?;
    tokio::time::sleep(WARMUP).await;
    phase.store(MEASURING, Ordering::Release);
    let start = Instant::now();
    tokio::time::sleep(MEASURE).await;
    phase.store(STOPPING, Ordering::Release);
    let elapsed = start.elapsed();
    let mut ops = 0;
    let mut latencies = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (n_ops, lat) = joined.map_err(|e| format!("client task: {e}"))??;
        ops += n_ops;
        latencies.extend(
            lat.into_iter()
                .map(|us| Duration::from_micros(u64::from(us))),
        );
    }
    Ok(Load {
        ops_per_s: ops as f64 / elapsed.as_secs_f64(),
        p50_us: percentile_us(&latencies, 50.0),
        p99_us: percentile_us(&latencies, 99.0),
    })
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

/// Waits for the client's next slot when paced: slots `period` apart, first one at a random
/// phase so the clients do not fire together.
struct Pacer {
    period: Option<Duration>,
    next: tokio::time::Instant,
}

impl Pacer {
    fn new(period: Option<Duration>, seed: u64) -> Self {
        let phase = period.map_or(Duration::ZERO, |p| {
            p.mul_f64((seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 11) as f64 / (1u64 << 53) as f64)
        });
        Self {
            period,
            next: tokio::time::Instant::now() + phase,
        }
    }

    async fn wait(&mut self) {
        if let Some(period) = self.period {
            tokio::time::sleep_until(self.next).await;
            self.next += period;
        }
    }
}

static SEEDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

fn seed() -> u64 {
    SEEDS.fetch_add(1, Ordering::Relaxed)
}

async fn lease_load(n: usize, pace: Option<Duration>) -> Result<Load, String> {
    let capacity = ResourceAmounts {
        cpu_millicores: 1 << 40,
        memory_bytes: 1 << 50,
        bandwidth_bytes_per_s: 0,
    };
    let (addr, handle, stop) = start_broker(capacity).await?;
    let load = drive(n, move |phase, connected| async move {
        let mut ws = connect(addr).await?;
        hello(&mut ws).await?;
        connected.wait().await;
        let mut pacer = Pacer::new(pace, seed());
        let mut ops = 0u64;
        let mut latencies = Vec::new();
        let mut request_id = 0u64;
        loop {
            pacer.wait().await;
            let p = phase.load(Ordering::Acquire);
            if p == STOPPING {
                break;
            }
            request_id += 1;
            let t = Instant::now();
            send(&mut ws, lease_request(request_id, 10, 4096)).await?;
            let lease_id = granted_lease_id(&next_text(&mut ws).await?)?;
            let granted = t.elapsed();
            let t = Instant::now();
            send(
                &mut ws,
                format!(r#"{{"type":"lease_release","lease_id":{lease_id}}}"#),
            )
            .await?;
            let answer = next_text(&mut ws).await?;
            if !answer.contains(r#""type":"lease_released""#) {
                return Err(format!("not released: {answer}"));
            }
            let released = t.elapsed();
            if p == MEASURING {
                ops += 2;
                latencies.push(micros(granted));
                latencies.push(micros(released));
            }
        }
        let _ = ws.close(None).await;
        Ok((ops, latencies))
    })
    .await;
    if load.is_ok() {
        let stats = handle.stats();
        if stats.leases != 0 {
            return Err(format!("{} leases left after the load", stats.leases));
        }
    }
    let _ = stop.send(());
    load
}

async fn echo_load(n: usize, pace: Option<Duration>) -> Result<Load, String> {
    let (addr, stop) = start_echo().await?;
    let load = drive(n, move |phase, connected| async move {
        let mut ws = connect(addr).await?;
        connected.wait().await;
        let mut pacer = Pacer::new(pace, seed());
        let mut ops = 0u64;
        let mut latencies = Vec::new();
        let mut request_id = 0u64;
        loop {
            pacer.wait().await;
            let p = phase.load(Ordering::Acquire);
            if p == STOPPING {
                break;
            }
            request_id += 1;
            let t = Instant::now();
            // The same bytes as a lease request, so only the broker's work differs.
            send(&mut ws, lease_request(request_id, 10, 4096)).await?;
            next_text(&mut ws).await?;
            if p == MEASURING {
                ops += 1;
                latencies.push(micros(t.elapsed()));
            }
        }
        let _ = ws.close(None).await;
        Ok((ops, latencies))
    })
    .await;
    let _ = stop.send(());
    load
}

/// The pure engine's own rate: 1,000 clients each holding one lease, one releasing and
/// re-requesting at a time, so every operation works against a table of 1,000 leases. It
/// says how much of a websocket round trip the engine could ever account for.
fn engine_ops_per_s() -> f64 {
    use foresight_broker::scheduler::{LeaseRequest, NoticeKind, Scheduler, SchedulerConfig};
    const CLIENTS: u64 = 1_000;
    const ROUNDS: u64 = 200;
    let mut engine = Scheduler::new(SchedulerConfig {
        capacity: ResourceAmounts {
            cpu_millicores: 1 << 40,
            memory_bytes: 1 << 50,
            bandwidth_bytes_per_s: 0,
        },
        ceiling: None,
        max_ttl_ms: 60_000,
        revoke_grace_ms: 0,
        max_wait_ms: 0,
        max_queue: 1,
        max_queued_per_client: 1,
    });
    let request = |request_id| LeaseRequest {
        request_id,
        resources: ResourceAmounts {
            cpu_millicores: 10,
            memory_bytes: 4096,
            bandwidth_bytes_per_s: 0,
        },
        min_resources: None,
        ttl_ms: 60_000,
        priority: 1,
        max_wait_ms: 0,
        purpose: String::new(),
    };
    let mut out = Vec::new();
    let mut held = vec![0u64; CLIENTS as usize];
    let granted = |out: &mut Vec<_>| {
        out.drain(..)
            .find_map(|n: foresight_broker::scheduler::Notice| match n.kind {
                NoticeKind::Granted { lease, .. } => Some(lease.lease_id),
                _ => None,
            })
            .unwrap_or(0)
    };
    for client in 0..CLIENTS {
        engine.request(client, request(0), 0, &mut out);
        held[client as usize] = granted(&mut out);
    }
    let start = Instant::now();
    for round in 0..ROUNDS {
        for client in 0..CLIENTS {
            let now = round;
            engine.release(client, held[client as usize], now, &mut out);
            out.clear();
            engine.request(client, request(round), now, &mut out);
            held[client as usize] = granted(&mut out);
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    std::hint::black_box(&engine);
    (2 * CLIENTS * ROUNDS) as f64 / elapsed
}

// --- Revocation -------------------------------------------------------------------------

/// Fills a pool of exactly [`LIVE_LEASES`] units with one-unit leases over 100 connections,
/// then cuts the capacity in steps and times each `lease_ended{revoked}` from the cut to its
/// arrival at the client. Returns the p99 over the steps and the p99 of one bulk cut.
async fn revocation_lag() -> Result<(f64, f64), String> {
    const HOLDERS: u64 = 100;
    let unit = |k: u64| ResourceAmounts {
        cpu_millicores: k,
        memory_bytes: k,
        bandwidth_bytes_per_s: 0,
    };
    let (addr, handle, stop) = start_broker(unit(LIVE_LEASES)).await?;
    let (ended_tx, mut ended) = mpsc::unbounded_channel::<Instant>();
    let mut holders = tokio::task::JoinSet::new();
    let (ready_tx, mut ready) = mpsc::unbounded_channel::<()>();
    for _ in 0..HOLDERS {
        let ended_tx = ended_tx.clone();
        let ready_tx = ready_tx.clone();
        holders.spawn(async move {
            let mut ws = connect(addr).await?;
            hello(&mut ws).await?;
            for request_id in 0..LIVE_LEASES / HOLDERS {
                send(&mut ws, lease_request(request_id, 1, 1)).await?;
                granted_lease_id(&next_text(&mut ws).await?)?;
            }
            let _ = ready_tx.send(());
            // Every message from now on is a revocation; time its arrival.
            loop {
                let Some(Ok(frame)) = ws.next().await else {
                    return Ok::<(), String>(());
                };
                if let Message::Text(text) = frame {
                    let at = Instant::now();
                    if text.as_str().contains(r#""reason":"revoked""#) {
                        let _ = ended_tx.send(at);
                    }
                }
            }
        });
    }
    drop(ready_tx);
    for _ in 0..HOLDERS {
        tokio::time::timeout(STALL, ready.recv())
            .await
            .map_err(|_| "the holders did not get their leases in time".to_string())?
            .ok_or("a holder failed")?;
    }
    let live = handle.stats().leases as u64;
    if live != LIVE_LEASES {
        return Err(format!("{live} live leases, expected {LIVE_LEASES}"));
    }

    let mut collect = async |cut_to: u64, expect: u64| -> Result<Vec<Duration>, String> {
        let cut = Instant::now();
        handle.set_capacity(unit(cut_to));
        let mut lags = Vec::with_capacity(expect as usize);
        for _ in 0..expect {
            let at = tokio::time::timeout(STALL, ended.recv())
                .await
                .map_err(|_| "a revocation never arrived".to_string())?
                .ok_or("the holders are gone")?;
            lags.push(at.saturating_duration_since(cut));
        }
        Ok(lags)
    };
    let mut lags = Vec::new();
    let mut capacity = LIVE_LEASES;
    for _ in 0..REVOCATION_STEPS {
        capacity -= REVOKED_PER_STEP;
        lags.extend(collect(capacity, REVOKED_PER_STEP).await?);
    }
    let bulk = capacity / 2;
    let bulk_lags = collect(capacity - bulk, bulk).await?;
    let _ = stop.send(());
    holders.abort_all();
    Ok((percentile_us(&lags, 99.0), percentile_us(&bulk_lags, 99.0)))
}

/// The 1-minute load average: figures from a busy machine are not comparable to a quiet one.
fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// A thousand clients and their server ends need two thousand descriptors.
fn raise_fd_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain getrlimit/setrlimit on a valid struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}
