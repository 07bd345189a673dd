//! Does a loaded client gain from offloading? One page with one heavy worker
//! (tests/fixtures/offload-page), in real headless Chromium with the built extension and the
//! native host, against the real `foresight-broker` binary with its Node backend on.
//!
//! Two machines are modelled by one: the client (this process, the browser, the host, and the
//! CPU hogs that load it) runs on the first CPU this process may use, the broker and its
//! executors on the others. The
//! host sees the browser's CPU affinity, so it plans against that core's load, as it would for
//! a browser confined to one core.
//!
//! Figures, all wall time from the page's `new Worker()` to the worker's answer:
//! * `idle_local_ms`: the work in a native Worker, nothing else running;
//! * `loaded_local_ms`: the same under the hogs (what the user gets without Foresight);
//! * `loaded_planned_ms`: the page's own Worker under the hogs, placed by the plan; the suite
//!   fails unless the plan sent it to the broker, on V8;
//! * `gain`: loaded local / loaded planned (above 1: offloading made the page faster).
//!
//! The broker calibrates its engines at start-up and the extension calibrates the device
//! before the page loads, so the planner compares QuickJS and V8 by measured speed.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use foresight_tests::browser::BrowserKind;
use foresight_tests::scenario::{Rig, RigOptions};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::report::Report;

const PAGE: &str = "offload-page/index.html";
const WORKER: &str = "offload-page/work.js";
/// Spinning threads on the client's CPU: a busy machine, where the page's worker gets about
/// a third of its core.
const HOG_THREADS: usize = 2;
const DEADLINE: Duration = Duration::from_secs(120);

pub fn run(report: &mut Report) -> Result<(), String> {
    let allowed = current_affinity()?;
    let Some((&client, broker_cpus)) = allowed.split_first().filter(|(_, rest)| !rest.is_empty())
    else {
        return Err("needs at least 2 CPUs (one for the client, one for the broker)".into());
    };
    // Threads inherit their creator's affinity: the runtime's threads, and through them the
    // browser and the host, run on the client's CPU.
    pin_current_thread(&[client])?;
    let result = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
        .and_then(|rt| rt.block_on(measure(report, client, broker_cpus)));
    pin_current_thread(&allowed)?;
    result
}

async fn measure(report: &mut Report, client: usize, broker_cpus: &[usize]) -> Result<(), String> {
    let artifacts = super::remote_worker::artifacts()?;
    let broker = ExternalBroker::start(&artifacts.broker_binary(), broker_cpus)?;
    let speeds = broker.wait_until_calibrated().await?;
    eprintln!("    broker engines (calibration kernel ms): {speeds}");
    let options = RigOptions {
        artifacts: Some(artifacts),
        broker_url: Some(broker.url()),
        ..RigOptions::default()
    };
    let rig = Rig::start_with(BrowserKind::Chromium, options)
        .await
        .map_err(|e| e.to_string())?;
    rig.wait_for_calibration()
        .await
        .map_err(|e| rig.context(e).to_string())?;

    let idle_local = job(&rig, true).await?;
    let (idle_placement, idle_planned) = planned_job(&rig).await?;
    let hogs = Hogs::start(HOG_THREADS, client);
    let loaded_local = job(&rig, true).await?;
    let (placement, loaded_planned) = planned_job_offloaded(&rig).await?;
    drop(hogs);

    report.add(
        "offload.idle_local_ms",
        idle_local,
        "ms",
        "the heavy worker in a native Worker, client CPU idle",
    );
    report.add(
        "offload.idle_planned_ms",
        idle_planned,
        "ms",
        &format!(
            "the page's Worker, client CPU idle, placed by the plan: {}",
            where_(&idle_placement)
        ),
    );
    report.add(
        "offload.loaded_local_ms",
        loaded_local,
        "ms",
        &format!("same, {HOG_THREADS} CPU hogs on the client's core"),
    );
    report.add(
        "offload.loaded_planned_ms",
        loaded_planned,
        "ms",
        &format!(
            "the page's Worker under the same hogs, placed by the plan: {}",
            where_(&placement)
        ),
    );
    report.add(
        "offload.gain",
        loaded_local / loaded_planned,
        "x",
        "loaded local / loaded planned (> 1: the loaded client finishes sooner offloaded)",
    );
    report.add(
        "offload.planned_vs_idle",
        loaded_planned / idle_local,
        "x",
        "loaded planned / idle local (1: offloading hides the load completely)",
    );
    Ok(())
}

/// Loads the page (with `?native`: its worker always local) and returns the page's time for
/// the work.
async fn job(rig: &Rig, native: bool) -> Result<f64, String> {
    let url = format!(
        "{}{}",
        rig.site.url(PAGE),
        if native { "?native" } else { "" }
    );
    let tab = rig.browser.open(&url).await.map_err(|e| e.to_string())?;
    let done = rig
        .browser
        .eval(&tab, "window.job")
        .await
        .map_err(|e| e.to_string())?;
    rig.browser.close(&tab).await.map_err(|e| e.to_string())?;
    done["wallMs"]
        .as_f64()
        .ok_or_else(|| format!("the page got no answer: {done}"))
}

fn where_(placement: &Value) -> String {
    match placement["target"].as_str() {
        Some("remote") => format!(
            "remote on {}",
            placement["engine"].as_str().unwrap_or("the default engine")
        ),
        Some(target) => target.to_string(),
        None => "?".to_string(),
    }
}

/// Loads the page as a user would; returns the plan's placement of its worker and the
/// page's time for the work.
async fn planned_job(rig: &Rig) -> Result<(Value, f64), String> {
    let page = rig.site.url(PAGE);
    let worker = rig.site.url(WORKER);
    let mark = rig.host_log.len();
    let tab = rig.browser.open(&page).await.map_err(|e| e.to_string())?;
    let (_, reply) = rig
        .host_log
        .wait_for("a plan for the page", mark, DEADLINE, |e| {
            e["dir"] == "out" && e["msg"]["type"] == "plan" && e["msg"]["plan"]["url"] == page
        })
        .await
        .map_err(|e| rig.context(e).to_string())?;
    let done = rig
        .browser
        .eval(&tab, "window.job")
        .await
        .map_err(|e| e.to_string())?;
    rig.browser.close(&tab).await.map_err(|e| e.to_string())?;
    let placement = reply["msg"]["plan"]["placements"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["url"] == worker))
        .cloned()
        .unwrap_or(Value::Null);
    let ms = done["wallMs"]
        .as_f64()
        .ok_or_else(|| format!("the page got no answer: {done}"))?;
    Ok((placement, ms))
}

/// Loads the page as a user would, until its plan (made against the hogs, once the host's
/// smoothed readings have caught up with them) sends the worker to the broker; returns that
/// placement and the page's time for the work.
async fn planned_job_offloaded(rig: &Rig) -> Result<(Value, f64), String> {
    let end = Instant::now() + DEADLINE;
    loop {
        let (placement, ms) = planned_job(rig).await?;
        if placement["target"] == "remote" {
            if placement["engine"] == "quickjs" {
                return Err(format!(
                    "the plan chose QuickJS for a heavy worker: {placement}"
                ));
            }
            return Ok((placement, ms));
        }
        if Instant::now() > end {
            return Err(format!(
                "under load the plan never offloaded the worker; last placement {placement}"
            ));
        }
        eprintln!(
            "    kept local ({}), {ms} ms; loading again",
            placement["reason"]
        );
    }
}

/// The CPUs the calling thread may run on, ascending.
fn current_affinity() -> Result<Vec<usize>, String> {
    // SAFETY: `set` is a plain bit set owned by this frame; 0 names the calling thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Err(format!(
                "sched_getaffinity: {}",
                std::io::Error::last_os_error()
            ));
        }
        Ok((0..libc::CPU_SETSIZE as usize)
            .filter(|&cpu| libc::CPU_ISSET(cpu, &set))
            .collect())
    }
}

/// Restricts the calling thread to `cpus`.
fn pin_current_thread(cpus: &[usize]) -> Result<(), String> {
    // SAFETY: `set` is a plain bit set owned by this frame; 0 names the calling thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &cpu in cpus {
            libc::CPU_SET(cpu, &mut set);
        }
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(format!(
                "sched_setaffinity({cpus:?}): {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    Ok(())
}

/// Threads spinning on one CPU until dropped: other applications keeping the client busy.
struct Hogs {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Hogs {
    fn start(n: usize, cpu: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..n)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let _ = pin_current_thread(&[cpu]);
                    let mut x = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        x = std::hint::black_box(
                            x.wrapping_mul(6364136223846793005).wrapping_add(1),
                        );
                    }
                })
            })
            .collect();
        Self { stop, threads }
    }
}

impl Drop for Hogs {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// The real broker binary, as a user runs it, with its Node backend on, on `cpus`.
struct ExternalBroker {
    child: Child,
    port: u16,
}

impl ExternalBroker {
    fn start(binary: &Path, cpus: &[usize]) -> Result<Self, String> {
        // A free port: the broker binds it again right away.
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let cpus = cpus.to_vec();
        let mut cmd = Command::new(binary);
        cmd.args(["--listen", &format!("127.0.0.1:{port}"), "--node", "on"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: between fork and exec only sched_setaffinity runs (async-signal-safe) on a
        // set built in this frame.
        unsafe {
            cmd.pre_exec(move || {
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                for &cpu in &cpus {
                    libc::CPU_SET(cpu, &mut set);
                }
                if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("{}: {e}", binary.display()))?;
        Ok(Self { child, port })
    }

    fn url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }

    /// Waits until the broker answers and its hello carries every engine's calibration time;
    /// returns the engines as announced.
    async fn wait_until_calibrated(&self) -> Result<Value, String> {
        let end = Instant::now() + DEADLINE;
        let mut last = String::from("no answer");
        while Instant::now() < end {
            match self.hello().await {
                Ok(hello) => {
                    let engines = hello["engines"].clone();
                    let measured = engines.as_array().is_some_and(|es| {
                        es.len() >= 2 && es.iter().all(|e| e["kernel_ms"].is_number())
                    });
                    if measured {
                        return Ok(engines);
                    }
                    last = format!("engines not calibrated yet: {engines}");
                }
                Err(e) => last = e,
            }
            // A poll with a deadline: the broker announces no "calibrated" event.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(format!("the broker was not ready in time: {last}"))
    }

    async fn hello(&self) -> Result<Value, String> {
        let (mut ws, _) = tokio_tungstenite::connect_async(self.url())
            .await
            .map_err(|e| e.to_string())?;
        ws.send(Message::text(
            json!({"type": "hello", "protocol_version": 1, "client": "bench"}).to_string(),
        ))
        .await
        .map_err(|e| e.to_string())?;
        let reply = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .map_err(|_| "no hello from the broker".to_string())?
            .ok_or("the broker closed the connection")?
            .map_err(|e| e.to_string())?;
        let _ = ws.close(None).await;
        match reply {
            Message::Text(text) => serde_json::from_str(text.as_str()).map_err(|e| e.to_string()),
            other => Err(format!("unexpected frame: {other:?}")),
        }
    }
}

impl Drop for ExternalBroker {
    /// Stops the broker as an operator would (SIGTERM: it ends its executors and leases),
    /// and kills it if it has not exited within the grace period.
    fn drop(&mut self) {
        if let Ok(pid) = libc::pid_t::try_from(self.child.id()) {
            // SAFETY: signalling our own child, which has not been reaped yet.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
