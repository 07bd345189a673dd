//! The contention sampler's own cost, measured on the real `foresight-host` process: one host
//! watching contention at 1 Hz (the extension's default, so CPU, memory, network, PSI every
//! second and every process every 10 s) beside an idle host from the same binary that only
//! said hello, both over the same window. Targets: the watching host under 0.5% of one core
//! and under 20 MB resident.
//!
//! CPU time and resident memory come from `/proc/<pid>/{stat,status}` (Linux only).

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use foresight_shared::framing::encode_message;
use foresight_shared::limits::BROWSER_TO_HOST_MAX_FRAME;
use foresight_shared::protocol::PROTOCOL_VERSION;
use foresight_shared::protocol::host::HostRequest;

use crate::report::Report;

/// Long enough for several process-table refreshes (every 10 s) and a steady smoothing state.
const WINDOW: Duration = Duration::from_secs(30);
/// Start-up costs (dynamic loading, first samples) are not the steady state being measured.
const WARM_UP: Duration = Duration::from_secs(3);

pub fn run(report: &mut Report) -> Result<(), String> {
    if !cfg!(target_os = "linux") {
        return Err("the sampler suite reads /proc and runs on Linux only".into());
    }
    let binary = build_host()?;
    let mut watching = Host::start(&binary, true)?;
    let mut idle = Host::start(&binary, false)?;
    std::thread::sleep(WARM_UP);
    let (w0, i0, t0) = (watching.cpu_ticks()?, idle.cpu_ticks()?, Instant::now());
    std::thread::sleep(WINDOW);
    let (w1, i1, elapsed) = (watching.cpu_ticks()?, idle.cpu_ticks()?, t0.elapsed());
    let ticks_per_s = clock_ticks_per_second();
    let percent = |ticks: u64| ticks as f64 / ticks_per_s / elapsed.as_secs_f64() * 100.0;
    let watching_rss = watching.rss_mb()?;
    let idle_rss = idle.rss_mb()?;
    let watching_cpu = percent(w1.saturating_sub(w0));
    let idle_cpu = percent(i1.saturating_sub(i0));
    let updates = watching.stop();
    idle.stop();
    report.add(
        "sampler.cpu_percent_of_core",
        watching_cpu,
        "%",
        "host watching at 1 Hz; target < 0.5",
    );
    report.add(
        "sampler.idle_host_cpu_percent_of_core",
        idle_cpu,
        "%",
        "baseline: the same binary, idle",
    );
    report.add(
        "sampler.rss",
        watching_rss,
        "MB",
        "host watching at 1 Hz; target < 20",
    );
    report.add(
        "sampler.idle_host_rss",
        idle_rss,
        "MB",
        "baseline: the same binary, idle",
    );
    report.add(
        "sampler.output_bytes",
        updates as f64,
        "bytes",
        "contention updates written during the run",
    );
    Ok(())
}

/// Builds the release host next to this bench and returns its path.
fn build_host() -> Result<PathBuf, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--quiet",
            "-p",
            "foresight-host",
            "--bin",
            "foresight-host",
        ])
        .status()
        .map_err(|e| format!("cannot run cargo to build the host: {e}"))?;
    if !status.success() {
        return Err("building foresight-host failed".into());
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let binary = exe
        .parent()
        .map(|d| d.join("foresight-host"))
        .ok_or("the bench has no folder")?;
    if binary.exists() {
        Ok(binary)
    } else {
        Err(format!("no host at {}", binary.display()))
    }
}

struct Host {
    child: Child,
    drain: Option<std::thread::JoinHandle<usize>>,
}

impl Host {
    fn start(binary: &PathBuf, watch: bool) -> Result<Host, String> {
        let origin = format!(
            "chrome-extension://{}/",
            foresight_shared::ids::CHROME_EXTENSION_ID
        );
        let mut child = Command::new(binary)
            .arg(origin)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .env_remove("FORESIGHT_HOST_LOG")
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let mut stdin = child.stdin.take().ok_or("no stdin")?;
        let mut requests = vec![HostRequest::Hello {
            protocol_version: PROTOCOL_VERSION,
            client: "foresight-bench".into(),
        }];
        if watch {
            requests.push(HostRequest::WatchContention {
                request_id: 1,
                enabled: true,
                min_interval_ms: Some(1000),
                cpu_change_millicores: None,
                memory_change_bytes: None,
            });
        }
        for r in &requests {
            let frame = encode_message(r, BROWSER_TO_HOST_MAX_FRAME).map_err(|e| e.to_string())?;
            stdin.write_all(&frame).map_err(|e| e.to_string())?;
        }
        stdin.flush().map_err(|e| e.to_string())?;
        // Keep stdin open (closing it is the browser disconnecting) by leaking it into the
        // child handle again.
        child.stdin = Some(stdin);
        let mut stdout = child.stdout.take().ok_or("no stdout")?;
        let drain = std::thread::spawn(move || {
            let mut total = 0;
            let mut buf = [0u8; 64 * 1024];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                total += n;
            }
            total
        });
        Ok(Host {
            child,
            drain: Some(drain),
        })
    }

    fn proc_file(&self, name: &str) -> Result<String, String> {
        std::fs::read_to_string(format!("/proc/{}/{name}", self.child.id()))
            .map_err(|e| format!("cannot read /proc/{}/{name}: {e}", self.child.id()))
    }

    /// User plus system CPU time, in clock ticks.
    fn cpu_ticks(&self) -> Result<u64, String> {
        let stat = self.proc_file("stat")?;
        // The command name may hold spaces; fields are counted after its closing parenthesis.
        let after = stat.rsplit_once(')').map(|(_, r)| r).ok_or("odd stat")?;
        let fields: Vec<&str> = after.split_whitespace().collect();
        let field = |i: usize| -> Result<u64, String> {
            fields
                .get(i)
                .and_then(|f| f.parse().ok())
                .ok_or_else(|| format!("no field {i} in stat"))
        };
        // utime and stime are fields 14 and 15 of the whole line, 11 and 12 after the name.
        Ok(field(11)? + field(12)?)
    }

    /// Peak resident memory, MB.
    fn rss_mb(&self) -> Result<f64, String> {
        let status = self.proc_file("status")?;
        let kb: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .ok_or("no VmHWM in status")?;
        Ok(kb / 1000.0)
    }

    /// Disconnects like a browser and returns how many bytes the host wrote.
    fn stop(&mut self) -> usize {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
        self.drain
            .take()
            .and_then(|d| d.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf reads a constant of the running system; no memory is involved.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}
