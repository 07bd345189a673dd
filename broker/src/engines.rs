//! The engines a broker offers in its `hello` (QuickJS always, Node when enabled), with
//! each one's speed and start-up measured by a short calibration when the server starts.
//!
//! Speed is reported as the milliseconds the engine takes for the extension's own
//! calibration kernel (`foresightKernel` in extension/src/estimator.js, read from that very
//! file so the two cannot drift): the extension, which timed the same kernel in the browser,
//! divides the two to get the engine's speed factor relative to the browser (and to the
//! machine it runs on). Start-up is the time from spawning a worker to its `started`, in a
//! ready process (a pooled Node child, a spare QuickJS executor), as clients mostly meet it. The calibration runs real workers through the same path
//! clients use (executor processes, sandbox, limits), one engine after the other.

use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use foresight_shared::protocol::broker::{EngineKind, EngineOffer, WorkerExitReason};
use foresight_shared::protocol::executor::ExecutorLimits;
use foresight_shared::sclone;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::server::Shared;
use crate::workers::{self, Process, WorkerOutput, WorkerSpec};

const ESTIMATOR_JS: &str = include_str!("../../extension/src/estimator.js");

/// Longest one engine's calibration may take.
const CALIBRATION_TIMEOUT: Duration = Duration::from_secs(60);

/// The extension's calibration kernel, as its source text.
pub fn kernel_source() -> Option<&'static str> {
    let start = ESTIMATOR_JS.find("function foresightKernel()")?;
    let len = ESTIMATOR_JS[start..].find("\n}\n")?;
    Some(&ESTIMATOR_JS[start..start + len + 2])
}

/// A worker that times the kernel `runs` times after `warmup` runs and posts the median ms.
/// The timing runs after the top level (in a timer), so `started` marks start-up alone.
fn calibration_script(kernel: &str, warmup: u32, runs: u32) -> String {
    format!(
        "{kernel}\nsetTimeout(() => {{ const times = []; let sink = 0;\n\
         for (let r = 0; r < {total}; r++) {{ const t0 = performance.now(); sink += foresightKernel(); \
         if (r >= {warmup}) times.push(performance.now() - t0); }}\n\
         times.sort((a, b) => a - b);\n\
         postMessage({{ median: times[times.length >> 1], sink: sink }}); close(); }}, 0);",
        total = warmup + runs
    )
}

/// An engine's kernel time and start-up, ms, once measured.
type Measured = (EngineKind, Option<f64>, Option<f64>);

/// What was measured, per engine.
#[derive(Debug, Default)]
pub(crate) struct EngineTable {
    measured: Mutex<Vec<Measured>>,
}

impl EngineTable {
    fn record(&self, engine: EngineKind, kernel_ms: Option<f64>, startup_ms: Option<f64>) {
        if let Ok(mut m) = self.measured.lock() {
            m.retain(|e| e.0 != engine);
            m.push((engine, kernel_ms, startup_ms));
        }
    }

    fn get(&self, engine: EngineKind) -> (Option<f64>, Option<f64>) {
        self.measured
            .lock()
            .ok()
            .and_then(|m| m.iter().find(|e| e.0 == engine).map(|e| (e.1, e.2)))
            .unwrap_or((None, None))
    }
}

impl Shared {
    /// The engines for `hello`.
    pub(crate) fn engines(&self) -> Vec<EngineOffer> {
        let (kernel_ms, startup_ms) = self.engine_table.get(EngineKind::Quickjs);
        let mut offers = vec![EngineOffer {
            engine: EngineKind::Quickjs,
            kernel_ms,
            startup_ms,
            max_workers: 0,
            webassembly: false,
        }];
        if let Some(node) = &self.config.node {
            let (kernel_ms, startup_ms) = self.engine_table.get(EngineKind::Node);
            offers.push(EngineOffer {
                engine: EngineKind::Node,
                kernel_ms,
                startup_ms,
                max_workers: u32::try_from(node.settings.max_workers).unwrap_or(u32::MAX),
                webassembly: true,
            });
        }
        offers
    }
}

/// Measures every offered engine, one after the other, and records what it found.
///
/// Start-up is measured as clients usually meet it: in a ready process. A Node worker takes a
/// booted child from the pool; a QuickJS worker takes its connection's spare executor, which
/// is started after the connection's first worker (that first, cold start costs a process:
/// ~7 ms against ~1 ms). So QuickJS's start-up is timed a second time, in a spare started as
/// the kernel began: it has had the kernel's whole run (hundreds of ms) to get ready.
pub(crate) async fn calibrate(shared: Arc<Shared>) {
    let Some(kernel) = kernel_source() else {
        tracing::warn!("no calibration kernel in estimator.js: engines announced unmeasured");
        return;
    };
    let mut engines = vec![(EngineKind::Quickjs, 1, 3)];
    if shared.config.node.is_some() {
        engines.push((EngineKind::Node, 3, 7));
    }
    for (engine, warmup, runs) in engines {
        let script = calibration_script(kernel, warmup, runs);
        let measured = tokio::time::timeout(CALIBRATION_TIMEOUT, async {
            let spare = (engine == EngineKind::Quickjs)
                .then(|| workers::Spare::start(&shared.config.executor).ok())
                .flatten();
            let (kernel_ms, cold_ms) = run_once(&shared, engine, None, "", script).await?;
            let startup_ms = match spare {
                Some(spare) => {
                    let start = START_SCRIPT.to_string();
                    run_once(&shared, engine, Some(spare), "start-", start)
                        .await?
                        .1
                }
                None => cold_ms,
            };
            Ok::<_, String>((kernel_ms, startup_ms))
        })
        .await;
        match measured {
            Ok(Ok((kernel_ms, startup_ms))) => {
                tracing::info!(?engine, kernel_ms, startup_ms, "engine calibrated");
                shared
                    .engine_table
                    .record(engine, Some(kernel_ms), Some(startup_ms));
            }
            Ok(Err(e)) => tracing::warn!(?engine, "calibration failed: {e}"),
            Err(_) => tracing::warn!(?engine, "calibration timed out"),
        }
    }
}

/// A worker that only starts: its start-up is what is timed.
const START_SCRIPT: &str = "postMessage({ median: 1 }); close();";

/// Runs `source` on `engine` (QuickJS: in `spare` when given) as worker
/// `calibration-{label}{engine}` and returns the kernel's median (the `median` the script
/// posts) and the start-up time, both in ms.
async fn run_once(
    shared: &Arc<Shared>,
    engine: EngineKind,
    spare: Option<workers::Spare>,
    label: &str,
    source: String,
) -> Result<(f64, f64), String> {
    let process = match (engine, &shared.config.node) {
        (EngineKind::Node, Some(node)) => Process::node(node),
        _ => Process::quickjs(&shared.config.executor, spare),
    }
    .map_err(|e| e.to_string())?;
    let (tx, mut rx) = mpsc::channel(16);
    let mut tasks = JoinSet::new();
    let spec = WorkerSpec {
        worker_id: format!("calibration-{label}{engine:?}"),
        lease_id: 0,
        script_url: "foresight:calibration.js".into(),
        source,
        imports: Vec::new(),
        name: String::new(),
        module: false,
        limits: ExecutorLimits {
            cpu_ms: 30_000,
            memory_bytes: 64 * 1024 * 1024,
            stack_bytes: 1024 * 1024,
        },
        cpu_millicores: 1000,
    };
    let began = Instant::now();
    let handle = workers::spawn(process, spec, 0, tx, shared.events.clone(), &mut tasks)
        .map_err(|e| e.to_string())?;
    let mut startup_ms = None;
    let mut kernel_ms = None;
    while let Some(event) = rx.recv().await {
        match event.output {
            WorkerOutput::Started => {
                startup_ms.get_or_insert(began.elapsed().as_secs_f64() * 1000.0);
                if let (EngineKind::Node, Some(node)) = (engine, &shared.config.node) {
                    node.refill();
                }
            }
            WorkerOutput::Message(data) => {
                let value = sclone::decode(&data)
                    .map_err(|e| e.to_string())?
                    .to_json()
                    .map_err(|e| e.to_string())?;
                kernel_ms = value["median"].as_f64();
            }
            WorkerOutput::Ended(WorkerExitReason::Closed, _) => break,
            WorkerOutput::Ended(reason, _) => return Err(format!("ended with {reason:?}")),
            WorkerOutput::Error { message, .. } => return Err(message),
            // The calibration worker has no data channel.
            WorkerOutput::Console { .. } | WorkerOutput::ChannelClosed => {}
        }
    }
    drop(handle);
    while tasks.join_next().await.is_some() {}
    match (kernel_ms, startup_ms) {
        (Some(k), Some(s)) if k > 0.0 => Ok((k, s)),
        _ => Err("no measurement came back".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_is_the_extensions() {
        let kernel = kernel_source().expect("kernel in estimator.js");
        assert!(kernel.starts_with("function foresightKernel()"), "{kernel}");
        assert!(kernel.ends_with("\n}"), "{kernel}");
        assert!(kernel.contains("const N = 4000000;"), "{kernel}");
    }
}
