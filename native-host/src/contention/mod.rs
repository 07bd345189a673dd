//! Contention sensing: how busy this machine is, as a [`ContentionSnapshot`] the planner can
//! use.
//!
//! The serve loop only sees the [`Sampler`] trait, so it can be tested against a
//! [`FixedSampler`]; the host itself runs a [`SystemSampler`] over `sysinfo` plus, on Linux,
//! PSI and the runnable-task count ([`procfs`]).
//!
//! What a sample reads, and how often:
//!
//! * every sample: CPU counters (global and per core), memory and swap, network counters,
//!   PSI, load average and runnable tasks: a handful of small `/proc` files;
//! * every [`PROCESS_REFRESH_INTERVAL`]: every process's CPU and memory, to split "this browser"
//!   from "everything else" ([`processes`]); that is the one costly read, and the split moves
//!   slowly.
//!
//! CPU usage is a difference between two readings of the kernel's counters, so the sampler
//! takes its first reading when it is created and never reads the counters more often than
//! [`sysinfo::MINIMUM_CPU_UPDATE_INTERVAL`]: a request that arrives sooner gets the previous
//! snapshot (with its original `taken_at_ms`). Idle CPU, available memory and runnable tasks
//! are smoothed and forecast [`FORECAST_HORIZON`] ahead ([`smoothing`]); the snapshot's
//! headline figures are the smoothed ones, `per_core_usage` is the raw last reading.

pub mod processes;
pub mod procfs;
pub mod smoothing;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use foresight_shared::protocol::plan::{
    ContentionForecast, ContentionSnapshot, ContentionSource, NetworkThroughput, ProcessGroupUsage,
};
use sysinfo::{
    CpuRefreshKind, MemoryRefreshKind, Networks, ProcessRefreshKind, ProcessesToUpdate, System,
};

use processes::ProcInfo;
use smoothing::Holt;

/// How often the per-process split is refreshed.
pub const PROCESS_REFRESH_INTERVAL: Duration = Duration::from_secs(10);

/// How far ahead the forecast looks.
pub const FORECAST_HORIZON: Duration = Duration::from_secs(5);

/// Why no snapshot could be taken.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SampleError {
    #[error("contention sensing is unavailable on this system: {0}")]
    Unavailable(String),
}

/// Something that can say how busy the machine is.
pub trait Sampler {
    fn sample(&mut self) -> Result<ContentionSnapshot, SampleError>;
}

/// Always answers with the same snapshot: for tests, and for callers that measured elsewhere.
#[derive(Debug, Clone)]
pub struct FixedSampler(pub ContentionSnapshot);

impl Sampler for FixedSampler {
    fn sample(&mut self) -> Result<ContentionSnapshot, SampleError> {
        Ok(self.0.clone())
    }
}

/// Samples the operating system through `sysinfo` and `/proc`.
pub struct SystemSampler {
    /// The reason, when `sysinfo` does not support this platform; every sample then fails.
    system: Result<System, String>,
    /// `None` where network counters are unsupported.
    networks: Option<Networks>,
    /// When the counters were first read; the first real sample must be at least
    /// `MINIMUM_CPU_UPDATE_INTERVAL` later to have a meaningful CPU delta.
    primed_at: Instant,
    last: Option<(Instant, ContentionSnapshot)>,
    processes_at: Option<Instant>,
    process_interval: Duration,
    groups: Option<(ProcessGroupUsage, ProcessGroupUsage)>,
    idle: Holt,
    memory: Holt,
    runnable: Holt,
    host_pid: u32,
    /// The CPUs the browser may run on (its affinity, which the host inherits); `None`: all.
    allowed_cpus: Option<Vec<usize>>,
}

impl SystemSampler {
    /// Creates the sampler and takes the first (priming) reading of the CPU counters.
    pub fn new() -> Self {
        let system = System::new().map_err(|e| e.to_string()).map(|mut system| {
            system.refresh_cpu_specifics(CpuRefreshKind::nothing().with_usage());
            system
        });
        Self {
            system,
            networks: Networks::new_with_refreshed_list().ok(),
            primed_at: Instant::now(),
            last: None,
            processes_at: None,
            process_interval: PROCESS_REFRESH_INTERVAL,
            groups: None,
            idle: Holt::default(),
            memory: Holt::default(),
            runnable: Holt::default(),
            host_pid: std::process::id(),
            allowed_cpus: procfs::read_cpus_allowed(),
        }
    }

    /// Re-reads the process table at most this often instead of [`PROCESS_REFRESH_INTERVAL`]
    /// (a one-off report wants per-process CPU from two close samples).
    pub fn with_process_interval(mut self, interval: Duration) -> Self {
        self.process_interval = interval;
        self
    }

    fn sample_at(&mut self, now: Instant) -> Result<ContentionSnapshot, SampleError> {
        if let Err(reason) = &self.system {
            return Err(SampleError::Unavailable(reason.clone()));
        }
        let previous = match &self.last {
            Some((refreshed_at, snapshot))
                if now.saturating_duration_since(*refreshed_at)
                    < sysinfo::MINIMUM_CPU_UPDATE_INTERVAL =>
            {
                return Ok(snapshot.clone());
            }
            Some((refreshed_at, _)) => *refreshed_at,
            None => {
                // Only the very first sample can be too close to the priming reading; waiting
                // out the rest of the interval (at most 200 ms, once per process) is what makes
                // its CPU figure a measurement rather than the average since boot.
                let since_prime = now.saturating_duration_since(self.primed_at);
                let wait = sysinfo::MINIMUM_CPU_UPDATE_INTERVAL.saturating_sub(since_prime);
                if wait > Duration::ZERO {
                    std::thread::sleep(wait);
                }
                self.primed_at
            }
        };
        let refreshed_at = now.max(Instant::now());
        let elapsed_s = refreshed_at
            .saturating_duration_since(previous)
            .as_secs_f64()
            .max(1e-3);
        let processes_due = self
            .processes_at
            .is_none_or(|at| refreshed_at.saturating_duration_since(at) >= self.process_interval);
        let Ok(system) = &mut self.system else {
            return Err(SampleError::Unavailable("sysinfo is gone".into()));
        };
        system.refresh_cpu_specifics(CpuRefreshKind::nothing().with_usage());
        system.refresh_memory_specifics(MemoryRefreshKind::nothing().with_ram().with_swap());
        if processes_due {
            system.refresh_processes_specifics(
                ProcessesToUpdate::All,
                true,
                // Without tasks: on Linux sysinfo lists each thread as a process of its own,
                // with its process's memory, and the groups summed them (a 2-core machine's
                // browser showed 19 cores and 18 GB). Threads left from an older refresh are
                // skipped below.
                ProcessRefreshKind::nothing()
                    .with_cpu()
                    .with_memory()
                    .without_tasks(),
            );
            let procs: Vec<ProcInfo> = system
                .processes()
                .values()
                .filter(|p| p.thread_kind().is_none())
                .map(|p| ProcInfo {
                    pid: p.pid().as_u32(),
                    parent: p.parent().map(|pp| pp.as_u32()),
                    name: p.name().to_string_lossy().into_owned(),
                    cpu_percent: p.cpu_usage(),
                    memory_bytes: p.memory(),
                })
                .collect();
            let root = processes::browser_root(&procs, self.host_pid);
            self.groups = Some(processes::group(&procs, root));
            self.processes_at = Some(refreshed_at);
        }
        let network = self.networks.as_mut().map(|networks| {
            networks.refresh(true);
            let (rx, tx) = networks
                .iter()
                .filter(|(name, _)| name.as_os_str() != "lo")
                .fold((0u64, 0u64), |(rx, tx), (_, n)| {
                    (
                        rx.saturating_add(n.received()),
                        tx.saturating_add(n.transmitted()),
                    )
                });
            NetworkThroughput {
                rx_bytes_per_s: (rx as f64 / elapsed_s).round(),
                tx_bytes_per_s: (tx as f64 / elapsed_s).round(),
            }
        });

        let raw = snapshot_of(system, self.allowed_cpus.as_deref(), unix_ms_now());
        let at_s = refreshed_at
            .saturating_duration_since(self.primed_at)
            .as_secs_f64();
        let full = f64::from(raw.logical_cpus) * 1000.0;
        let total_memory = raw.total_memory_bytes as f64;
        self.idle.update(raw.available_cpu_millicores as f64, at_s);
        self.memory.update(raw.available_memory_bytes as f64, at_s);
        let runnable = procfs::read_runnable();
        if let Some(r) = runnable {
            self.runnable.update(r, at_s);
        }
        let clamp = |v: f64, max: f64| v.clamp(0.0, max).round() as u64;
        let idle = self
            .idle
            .level()
            .map_or(raw.available_cpu_millicores, |l| clamp(l, full));
        let horizon_s = FORECAST_HORIZON.as_secs_f64();
        let snapshot = ContentionSnapshot {
            cpu_usage: if full > 0.0 {
                1.0 - idle as f64 / full
            } else {
                0.0
            },
            available_cpu_millicores: idle,
            available_memory_bytes: self
                .memory
                .level()
                .map_or(raw.available_memory_bytes, |l| clamp(l, total_memory)),
            runnable_tasks: runnable
                .and(self.runnable.level())
                .map(|r| (r * 10.0).round() / 10.0),
            network,
            browser: self.groups.map(|g| g.0),
            others: self.groups.map(|g| g.1),
            pressure: procfs::read_pressure(),
            forecast: Some(ContentionForecast {
                horizon_ms: FORECAST_HORIZON.as_millis() as u64,
                available_cpu_millicores: self
                    .idle
                    .forecast(horizon_s)
                    .map_or(idle, |f| clamp(f, full)),
                available_memory_bytes: self
                    .memory
                    .forecast(horizon_s)
                    .map_or(raw.available_memory_bytes, |f| clamp(f, total_memory)),
                cpu_trend_millicores_per_s: finite_or_zero(self.idle.trend()),
                memory_trend_bytes_per_s: finite_or_zero(self.memory.trend()),
            }),
            ..raw
        };
        self.last = Some((refreshed_at, snapshot.clone()));
        Ok(snapshot)
    }
}

fn finite_or_zero(x: f64) -> f64 {
    if x.is_finite() {
        (x * 10.0).round() / 10.0
    } else {
        0.0
    }
}

impl Default for SystemSampler {
    fn default() -> Self {
        Self::new()
    }
}

impl Sampler for SystemSampler {
    fn sample(&mut self) -> Result<ContentionSnapshot, SampleError> {
        self.sample_at(Instant::now())
    }
}

/// The unsmoothed reading of what `system` last refreshed, over the CPUs in `allowed`.
fn snapshot_of(system: &System, allowed: Option<&[usize]>, taken_at_ms: u64) -> ContentionSnapshot {
    let per_core: Vec<f64> = system
        .cpus()
        .iter()
        .map(|c| usage_fraction(c.usage()))
        .collect();
    let (logical_cpus, cpu_usage) = match usable_cpus(&per_core, allowed) {
        Some(usable) => usable,
        None => {
            let n = match per_core.len() {
                0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
                n => n,
            };
            (n, usage_fraction(system.global_cpu_usage()))
        }
    };
    let logical_cpus = u32::try_from(logical_cpus).unwrap_or(u32::MAX);
    let load_average_1m = System::load_average()
        .ok()
        .map(|l| l.one)
        .filter(|l| l.is_finite() && *l >= 0.0);
    ContentionSnapshot {
        source: ContentionSource::NativeHost,
        taken_at_ms,
        logical_cpus,
        cpu_usage,
        available_cpu_millicores: idle_millicores(logical_cpus, cpu_usage),
        total_memory_bytes: system.total_memory(),
        available_memory_bytes: system.available_memory().min(system.total_memory()),
        load_average_1m,
        per_core_usage: per_core
            .iter()
            .map(|u| (u * 1000.0).round() / 1000.0)
            .collect(),
        swap_total_bytes: system.total_swap(),
        swap_used_bytes: system.used_swap().min(system.total_swap()),
        ..Default::default()
    }
}

/// The CPU count and use that matter to a browser confined to some of the machine's CPUs
/// (`taskset`, a container's cpuset): only those. An idle core the browser may not use is no
/// room for its work, so counting it would keep work local that is starved there. `None` when
/// nothing is restricted (or the affinity names no CPU the counters know): the machine-wide
/// figures apply.
fn usable_cpus(per_core: &[f64], allowed: Option<&[usize]>) -> Option<(usize, f64)> {
    let usable: Vec<f64> = allowed?
        .iter()
        .filter_map(|&cpu| per_core.get(cpu).copied())
        .collect();
    if usable.is_empty() || usable.len() >= per_core.len() {
        return None;
    }
    let usage = usable.iter().sum::<f64>() / usable.len() as f64;
    Some((usable.len(), usage))
}

/// `sysinfo` reports percent of all cores. A non-finite reading would serialize as `null` and
/// break the client's decoding, so it becomes 0 (the counters said nothing about load).
fn usage_fraction(percent: f32) -> f64 {
    let fraction = f64::from(percent) / 100.0;
    if fraction.is_finite() {
        fraction.clamp(0.0, 1.0)
    } else {
        0.0
    }
}

fn idle_millicores(logical_cpus: u32, cpu_usage: f64) -> u64 {
    (f64::from(logical_cpus) * 1000.0 * (1.0 - cpu_usage)).round() as u64
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn unix_ms_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_is_a_clamped_finite_fraction() {
        assert_eq!(usage_fraction(25.0), 0.25);
        assert_eq!(usage_fraction(140.0), 1.0);
        assert_eq!(usage_fraction(-3.0), 0.0);
        assert_eq!(usage_fraction(f32::NAN), 0.0);
        assert_eq!(usage_fraction(f32::INFINITY), 0.0);
    }

    #[test]
    fn a_browser_confined_to_some_cpus_sees_only_their_use() {
        let per_core = [1.0, 0.0, 0.5, 0.0];
        // Pinned to the busy core: no idle core for it, though half the machine is idle.
        assert_eq!(usable_cpus(&per_core, Some(&[0])), Some((1, 1.0)));
        assert_eq!(usable_cpus(&per_core, Some(&[0, 2])), Some((2, 0.75)));
        // Every CPU allowed, no affinity known, or none the counters know: machine-wide.
        assert_eq!(usable_cpus(&per_core, Some(&[0, 1, 2, 3])), None);
        assert_eq!(usable_cpus(&per_core, None), None);
        assert_eq!(usable_cpus(&per_core, Some(&[9])), None);
        // A CPU beyond the counters (hot-plugged since) is left out, not indexed.
        assert_eq!(usable_cpus(&per_core, Some(&[1, 9])), Some((1, 0.0)));
    }

    #[test]
    fn idle_millicores_follow_the_formula() {
        assert_eq!(idle_millicores(2, 0.25), 1500);
        assert_eq!(idle_millicores(4, 1.0), 0);
        assert_eq!(idle_millicores(1, 0.0), 1000);
    }

    #[test]
    fn system_sampler_is_plausible_and_reuses_samples_inside_the_interval() {
        let mut sampler = SystemSampler::new();
        let start = Instant::now() + sysinfo::MINIMUM_CPU_UPDATE_INTERVAL;
        let first = sampler.sample_at(start).expect("linux is supported");
        assert_eq!(first.source, ContentionSource::NativeHost);
        assert!(first.logical_cpus >= 1);
        assert!((0.0..=1.0).contains(&first.cpu_usage));
        assert!(first.available_cpu_millicores <= u64::from(first.logical_cpus) * 1000);
        assert!(first.total_memory_bytes > 0);
        assert!(first.available_memory_bytes <= first.total_memory_bytes);
        assert!(first.taken_at_ms > 0);
        // Processes, not threads: the groups count no more than /proc lists, and their CPU
        // fits the machine (sysinfo's per-process figure may overshoot a little).
        let listed = std::fs::read_dir("/proc")
            .expect("/proc")
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
            .count() as u64;
        let (browser, others) = (
            first.browser.expect("the browser group"),
            first.others.expect("everything else"),
        );
        assert!(
            u64::from(browser.processes + others.processes) <= listed + 16,
            "{browser:?} {others:?}: /proc lists {listed}"
        );
        let machine = u64::from(first.logical_cpus) * 1000;
        assert!(
            browser.cpu_millicores + others.cpu_millicores <= machine * 2,
            "{browser:?} {others:?}"
        );

        // Asked again sooner than the interval: the very same snapshot comes back.
        let (refreshed_at, _) = sampler.last.clone().expect("a sample was recorded");
        let again = sampler
            .sample_at(refreshed_at + Duration::from_millis(1))
            .expect("cached");
        assert_eq!(again, first);

        // Asked after the interval: a fresh reading with its own timestamp.
        let later = refreshed_at + sysinfo::MINIMUM_CPU_UPDATE_INTERVAL;
        sampler.sample_at(later).expect("refreshed");
        let (recorded, _) = sampler.last.clone().expect("a sample was recorded");
        assert!(recorded >= later);
    }

    #[test]
    fn system_sampler_fills_in_the_detail_on_linux() {
        if !cfg!(target_os = "linux") {
            return;
        }
        let mut sampler = SystemSampler::new();
        let s = sampler.sample().expect("linux is supported");
        assert_eq!(s.per_core_usage.len(), s.logical_cpus as usize);
        assert!(s.per_core_usage.iter().all(|u| (0.0..=1.0).contains(u)));
        assert!(s.swap_used_bytes <= s.swap_total_bytes);
        assert!(s.runnable_tasks.is_some());
        let (browser, others) = (s.browser.expect("grouped"), s.others.expect("grouped"));
        // The test binary's parent tree is "the browser" here; the rest is everything else.
        assert!(browser.processes >= 1 && others.processes >= 1, "{s:?}");
        let forecast = s.forecast.expect("a forecast");
        assert_eq!(forecast.horizon_ms, FORECAST_HORIZON.as_millis() as u64);
        assert!(forecast.available_cpu_millicores <= u64::from(s.logical_cpus) * 1000);
        assert!(forecast.available_memory_bytes <= s.total_memory_bytes);
        if std::path::Path::new("/proc/pressure/cpu").exists() {
            assert!(s.pressure.and_then(|p| p.cpu_some_avg10).is_some(), "{s:?}");
        }
        // Processes are refreshed only every few seconds, not on every sample.
        let first_split = sampler.processes_at;
        let later = Instant::now() + sysinfo::MINIMUM_CPU_UPDATE_INTERVAL;
        sampler.sample_at(later).expect("sampled");
        assert_eq!(sampler.processes_at, first_split);
    }

    #[test]
    fn first_sample_waits_out_the_priming_interval() {
        let mut sampler = SystemSampler::new();
        let primed_at = sampler.primed_at;
        sampler.sample().expect("linux is supported");
        assert!(primed_at.elapsed() >= sysinfo::MINIMUM_CPU_UPDATE_INTERVAL);
    }

    #[test]
    fn an_unsupported_platform_reports_instead_of_inventing_numbers() {
        let mut sampler = SystemSampler {
            system: Err("unsupported".into()),
            ..SystemSampler::new()
        };
        assert_eq!(
            sampler.sample(),
            Err(SampleError::Unavailable("unsupported".into()))
        );
    }
}
