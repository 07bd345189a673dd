//! Prometheus metrics on their own HTTP port: a hand-written text exposition (format 0.0.4)
//! served by a tiny HTTP/1.1 responder, so the broker needs no HTTP framework for one page.
//!
//! Counters are bumped where the engine's notices are delivered (so every grant, denial,
//! revocation... counts once, whichever task caused it); gauges are read from the engine
//! when scraped. Only `GET /metrics` is served; anything else gets 404, and a client that
//! does not finish its request head in time or sends more than 8 KiB is dropped.

use std::fmt::Write as _;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use foresight_shared::protocol::broker::DenyReason;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::scheduler::{EndReason, NoticeKind};
use crate::server::ServerHandle;

const REQUEST_HEAD_LIMIT: usize = 8 * 1024;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Monotonic counters since the broker started.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) connections: AtomicU64,
    pub(crate) granted: AtomicU64,
    pub(crate) queued: AtomicU64,
    pub(crate) denied_infeasible: AtomicU64,
    pub(crate) denied_capacity: AtomicU64,
    pub(crate) denied_quota: AtomicU64,
    pub(crate) denied_other: AtomicU64,
    pub(crate) released: AtomicU64,
    pub(crate) expired: AtomicU64,
    pub(crate) revoked: AtomicU64,
    pub(crate) disconnected: AtomicU64,
    pub(crate) refused_messages: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    /// Counts one notice of the engine.
    pub(crate) fn count(&self, notice: &NoticeKind) {
        match notice {
            NoticeKind::Granted { .. } => bump(&self.granted),
            NoticeKind::Queued { .. } => bump(&self.queued),
            NoticeKind::Denied { reason, .. } => bump(match reason {
                DenyReason::Infeasible => &self.denied_infeasible,
                DenyReason::InsufficientCapacity => &self.denied_capacity,
                DenyReason::QuotaExceeded => &self.denied_quota,
                _ => &self.denied_other,
            }),
            NoticeKind::Released { .. } => bump(&self.released),
            NoticeKind::Ended { reason, .. } => bump(match reason {
                EndReason::Expired => &self.expired,
                EndReason::Revoked(_) => &self.revoked,
                EndReason::Disconnected => &self.disconnected,
            }),
            NoticeKind::Renewed { .. } | NoticeKind::Revoking { .. } => {}
        }
    }
}

/// The Node backend: which isolation layers are active (1) or missing (0) on this host,
/// the pool, and how workers started and ended.
fn node_metrics(out: &mut String, node: &crate::node::NodeBackend) {
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let _ = write!(
        out,
        "# HELP foresight_broker_node_layer_active Isolation layers of Node workers on this host \
         (1: active or not needed, 0: missing).\n# TYPE foresight_broker_node_layer_active gauge\n"
    );
    for l in &node.detection.layers {
        let _ = writeln!(
            out,
            "foresight_broker_node_layer_active{{layer=\"{}\"}} {}",
            l.layer.name(),
            u8::from(!l.missing())
        );
    }
    let gauges = [
        (
            "node_pool_idle",
            "Node children booted and waiting.",
            node.idle() as u64,
        ),
        (
            "node_workers",
            "Node workers running.",
            node.live.load(Ordering::Relaxed) as u64,
        ),
        (
            "node_peak_memory_bytes",
            "The largest memory peak of a finished Node child.",
            load(&node.peak_memory),
        ),
    ];
    for (name, help, value) in gauges {
        let _ = write!(
            out,
            "# HELP foresight_broker_{name} {help}\n# TYPE foresight_broker_{name} gauge\n\
             foresight_broker_{name} {value}\n"
        );
    }
    let _ = write!(
        out,
        "# HELP foresight_broker_node_workers_started_total Node workers started, from the pool \
         (warm) or not.\n# TYPE foresight_broker_node_workers_started_total counter\n\
         foresight_broker_node_workers_started_total{{from=\"pool\"}} {}\n\
         foresight_broker_node_workers_started_total{{from=\"cold\"}} {}\n\
         # HELP foresight_broker_node_kills_total Node workers killed at a limit.\n\
         # TYPE foresight_broker_node_kills_total counter\n\
         foresight_broker_node_kills_total{{limit=\"cpu\"}} {}\n\
         foresight_broker_node_kills_total{{limit=\"memory\"}} {}\n",
        load(&node.started_warm),
        load(&node.started_cold),
        load(&node.cpu_kills),
        load(&node.oom_kills),
    );
}

/// The exposition text for one scrape.
pub(crate) fn render(handle: &ServerHandle) -> String {
    let stats = handle.stats();
    let c = handle.counters();
    let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let mut out = String::with_capacity(2048);
    let mut gauge = |name: &str, help: &str, value: u64| {
        let _ = write!(
            out,
            "# HELP foresight_broker_{name} {help}\n# TYPE foresight_broker_{name} gauge\n\
             foresight_broker_{name} {value}\n"
        );
    };
    gauge(
        "connections",
        "Open client connections.",
        handle.connections() as u64,
    );
    gauge("leases", "Live leases.", stats.leases as u64);
    gauge(
        "queued_requests",
        "Lease requests waiting in the queue.",
        stats.queued as u64,
    );
    gauge(
        "capacity_cpu_millicores",
        "The pool's CPU.",
        stats.capacity.cpu_millicores,
    );
    gauge(
        "capacity_memory_bytes",
        "The pool's memory.",
        stats.capacity.memory_bytes,
    );
    gauge(
        "granted_cpu_millicores",
        "CPU held by leases.",
        stats.granted.cpu_millicores,
    );
    gauge(
        "granted_memory_bytes",
        "Memory held by leases.",
        stats.granted.memory_bytes,
    );
    let mut counter = |name: &str, help: &str, samples: &[(&str, u64)]| {
        let _ = write!(
            out,
            "# HELP foresight_broker_{name} {help}\n# TYPE foresight_broker_{name} counter\n"
        );
        for (labels, value) in samples {
            let _ = writeln!(out, "foresight_broker_{name}{labels} {value}");
        }
    };
    counter(
        "connections_total",
        "Client connections accepted.",
        &[("", n(&c.connections))],
    );
    counter(
        "leases_granted_total",
        "Leases granted.",
        &[("", n(&c.granted))],
    );
    counter(
        "lease_requests_queued_total",
        "Lease requests that had to wait.",
        &[("", n(&c.queued))],
    );
    counter(
        "lease_requests_denied_total",
        "Lease requests denied, by reason.",
        &[
            ("{reason=\"infeasible\"}", n(&c.denied_infeasible)),
            ("{reason=\"insufficient_capacity\"}", n(&c.denied_capacity)),
            ("{reason=\"quota_exceeded\"}", n(&c.denied_quota)),
            ("{reason=\"other\"}", n(&c.denied_other)),
        ],
    );
    counter(
        "leases_ended_total",
        "Leases ended, by cause.",
        &[
            ("{cause=\"released\"}", n(&c.released)),
            ("{cause=\"expired\"}", n(&c.expired)),
            ("{cause=\"revoked\"}", n(&c.revoked)),
            ("{cause=\"disconnected\"}", n(&c.disconnected)),
        ],
    );
    counter(
        "messages_refused_total",
        "Client messages refused by a rate limit.",
        &[("", n(&c.refused_messages))],
    );
    if let Some(node) = handle.node() {
        node_metrics(&mut out, &node);
    }
    out
}

/// Serves `GET /metrics` on `listener` until `shutdown` completes.
pub async fn serve(
    handle: ServerHandle,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let handle = handle.clone();
                    tokio::spawn(async move {
                        if let Err(e) = answer(&handle, stream).await {
                            tracing::debug!("metrics request failed: {e}");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!("metrics accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}

async fn answer(handle: &ServerHandle, mut stream: TcpStream) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    let read_head = async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buf).await?;
            if n == 0 || head.len() + n > REQUEST_HEAD_LIMIT {
                return Err(std::io::Error::other("incomplete or oversized request"));
            }
            head.extend_from_slice(&buf[..n]);
        }
        Ok(())
    };
    tokio::time::timeout(REQUEST_TIMEOUT, read_head)
        .await
        .map_err(|_| std::io::Error::other("request head timed out"))??;
    let line = head.split(|b| *b == b'\r').next().unwrap_or_default();
    let (status, content_type, body) = if line.starts_with(b"GET /metrics ") {
        (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            render(handle),
        )
    } else {
        (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "only GET /metrics is served\n".into(),
        )
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}
