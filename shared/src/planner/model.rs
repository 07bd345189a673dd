//! The planner's cost model: how fast this machine will run the page's threads under the
//! measured contention, how long a component takes on the broker (start-up, round trip,
//! transfer and serialization included), and a path's CPU demand as a rate.
//!
//! Everything here is a small closed-form estimate, because the planner runs on every page
//! load (and in wasm) and must stay well under a millisecond for a thousand components. The
//! constants are assumptions, named so they can be revisited when the estimator or the broker
//! starts measuring what they stand for.

use crate::protocol::demand::PathDemand;
use crate::protocol::plan::{BrokerTerms, ContentionSnapshot, Policy, TabLoad};

/// Bytes a remote component costs to ship before it can start: its script. The demand does
/// not carry script sizes yet; worker scripts are typically tens of KiB.
pub const SCRIPT_BYTES_ESTIMATE: f64 = 32.0 * 1024.0;

/// Share of a component's peak memory assumed to cross the wire as messages (its input and
/// output data). The estimator does not predict message sizes; a worker's data is usually
/// what its memory holds.
pub const MESSAGE_SHARE_OF_MEMORY: f64 = 0.1;

/// Bytes per ms that all serialization steps together manage (structured clone in the page,
/// JSON in the extension, parsing in the broker and the executor), about 50 MB/s.
pub const SERIALIZE_BYTES_PER_MS: f64 = 50_000.0;

/// Throughput assumed to an unmeasured broker: 100 Mbit/s.
pub const DEFAULT_BANDWIDTH_BYTES_PER_S: f64 = 12_500_000.0;

/// Start-up assumed for an unmeasured broker: spawning an executor process and its engine.
pub const DEFAULT_STARTUP_MS: f64 = 15.0;

/// How much a background tab's predicted demand counts: browsers throttle background timers
/// heavily, so a hidden tab uses a small part of what it would in front.
pub const BACKGROUND_TAB_WEIGHT: f64 = 0.1;

/// A number from outside, made safe to compute with: finite and not negative.
pub fn sane(x: f64) -> f64 {
    if x.is_finite() { x.max(0.0) } else { 0.0 }
}

/// A path's CPU demand over time, reduced to what the planner reasons with.
///
/// [`path_profile`] is the one place that reads a path's demand curve: the rest of the planner
/// only sees the total and the peak rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuProfile {
    /// CPU time, ms.
    pub total_ms: f64,
    /// The highest rate over any bucket, millicores.
    pub peak_millicores: f64,
}

impl CpuProfile {
    /// `total_ms` spread evenly over `horizon_ms`.
    pub fn from_total(total_ms: f64, horizon_ms: f64) -> Self {
        let total_ms = sane(total_ms);
        Self {
            total_ms,
            peak_millicores: total_ms / horizon_ms * 1000.0,
        }
    }

    /// Buckets of `(duration_ms, cpu_ms)`. A zero-length bucket adds to the total but has
    /// no rate; the peak may exceed 1000 millicores when several threads share a bucket.
    pub fn from_buckets(buckets: impl IntoIterator<Item = (f64, f64)>) -> Self {
        let mut total_ms = 0.0;
        let mut peak = 0.0f64;
        for (duration_ms, cpu_ms) in buckets {
            let (duration_ms, cpu_ms) = (sane(duration_ms), sane(cpu_ms));
            total_ms += cpu_ms;
            if duration_ms > 0.0 {
                peak = peak.max(cpu_ms / duration_ms * 1000.0);
            }
        }
        Self {
            total_ms,
            peak_millicores: peak,
        }
    }
}

/// The CPU profile of `path` at quantile `q`.
///
/// With a demand curve, the peak is the busiest window of `horizon_ms` along the curve, so a
/// long path is no longer squeezed into one horizon; the curve is scaled to the path's own
/// total at `q`, because the quantile of a sum is not the sum of the buckets' quantiles.
/// Without a curve, the total is spread evenly over the horizon.
pub fn path_profile(path: &PathDemand, q: f64, horizon_ms: f64) -> CpuProfile {
    let total_ms = sane(path.cpu_ms.at(q));
    let curve = &path.curve;
    let usable = |v: f64| v.is_finite() && v > 0.0;
    if !usable(curve.bucket_ms) || curve.buckets.is_empty() || !usable(horizon_ms) {
        return CpuProfile::from_total(total_ms, horizon_ms);
    }
    let cpu: Vec<f64> = curve.buckets.iter().map(|b| sane(b.cpu_ms.at(q))).collect();
    let curve_total: f64 = cpu.iter().sum();
    if !usable(curve_total) {
        return CpuProfile::from_total(total_ms, horizon_ms);
    }
    let per_window = ((horizon_ms / curve.bucket_ms).ceil() as usize).max(1);
    let mut busiest = 0.0f64;
    let mut in_window = 0.0;
    for (i, c) in cpu.iter().enumerate() {
        in_window += c;
        if i >= per_window {
            in_window -= cpu[i - per_window];
        }
        busiest = busiest.max(in_window);
    }
    let window_ms = per_window as f64 * curve.bucket_ms;
    CpuProfile {
        total_ms,
        peak_millicores: busiest * (total_ms / curve_total) / window_ms * 1000.0,
    }
}

/// This machine as the page will find it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Machine {
    pub cores: f64,
    /// Idle CPU, millicores: the worse of now and the forecast, capped by CPU pressure.
    pub idle_millicores: f64,
    /// Threads competing for the CPUs besides the page's own.
    pub busy_threads: f64,
    /// What other tabs are predicted to add on top of what the browser already uses.
    pub tabs_millicores: f64,
    /// The page's share of the idle CPU after other tabs: the seed's local threshold.
    pub capacity_millicores: f64,
    /// Available memory: the worse of now and the forecast.
    pub available_memory: f64,
    /// The page's share of it.
    pub memory_capacity: f64,
}

impl Machine {
    pub fn new(c: &ContentionSnapshot, policy: &Policy, tabs: &[TabLoad], horizon_ms: f64) -> Self {
        let cores = f64::from(c.logical_cpus.max(1));
        let full = cores * 1000.0;
        let mut idle = sane(c.available_cpu_millicores as f64).min(full);
        let mut available_memory = sane(c.available_memory_bytes as f64);
        if let Some(f) = &c.forecast {
            idle = idle.min(sane(f.available_cpu_millicores as f64));
            available_memory = available_memory.min(sane(f.available_memory_bytes as f64));
        }
        if let Some(some) = c.pressure.and_then(|p| p.cpu_some_avg10) {
            // Stalls mean the idle figure is optimistic: something was always waiting.
            idle = idle.min(full * (1.0 - sane(some).min(100.0) / 100.0));
        }
        let busy_cores = (full - idle) / 1000.0;
        let busy_threads = match c.runnable_tasks {
            Some(r) => busy_cores.max(sane(r)),
            None => busy_cores,
        };
        let predicted_tabs: f64 = tabs
            .iter()
            .map(|t| tab_weight(t) * sane(t.predicted_cpu_ms) / horizon_ms * 1000.0)
            .sum();
        // What the browser already burns is in the measurement; only the rest is still to come.
        let browser_now = c.browser.map_or(0.0, |b| b.cpu_millicores as f64);
        let tabs_millicores = (predicted_tabs - browser_now).max(0.0);
        let share = sane(policy.local_share).min(1.0);
        Self {
            cores,
            idle_millicores: idle,
            busy_threads,
            tabs_millicores,
            capacity_millicores: (idle * share - tabs_millicores).max(0.0),
            available_memory,
            memory_capacity: available_memory * share,
        }
    }

    /// The fraction of a core each of `threads` page threads gets: all of it while idle cores
    /// suffice, else a fair share among everything runnable (the scheduler's view).
    pub fn thread_speed(&self, threads: f64) -> f64 {
        let threads = threads.max(1.0);
        let from_idle = self.idle_millicores / 1000.0 / threads;
        let fair = self.cores / (self.busy_threads + threads);
        from_idle.max(fair).clamp(0.01, 1.0)
    }
}

fn tab_weight(t: &TabLoad) -> f64 {
    if t.discarded {
        0.0
    } else if t.visible || t.active || t.audible {
        1.0
    } else {
        BACKGROUND_TAB_WEIGHT
    }
}

/// The broker as the planner prices it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Remote {
    pub rtt_ms: f64,
    pub bytes_per_ms: f64,
    /// `None` when the broker did not say; placement then assumes parity.
    pub speed_factor: Option<f64>,
    pub startup_ms: f64,
    /// Zero: capacity not announced, so not a constraint.
    pub cpu_capacity: u64,
    pub memory_capacity: u64,
    /// Zero: the broker does not schedule bandwidth.
    pub bandwidth_capacity: u64,
}

impl Remote {
    pub fn new(b: &BrokerTerms) -> Self {
        let bandwidth = match sane(b.bandwidth_bytes_per_s as f64) {
            0.0 => DEFAULT_BANDWIDTH_BYTES_PER_S,
            bw => bw,
        };
        Self {
            rtt_ms: sane(b.rtt_ms),
            bytes_per_ms: bandwidth / 1000.0,
            speed_factor: b.speed_factor.map(sane).filter(|s| *s > 0.0),
            startup_ms: b.startup_ms.map_or(DEFAULT_STARTUP_MS, sane),
            cpu_capacity: b.capacity.cpu_millicores,
            memory_capacity: b.capacity.memory_bytes,
            bandwidth_capacity: b.capacity.bandwidth_bytes_per_s,
        }
    }

    pub fn speed(&self) -> f64 {
        self.speed_factor.unwrap_or(1.0)
    }

    /// Completion time of `cpu_ms` of work shipping `bytes`: start-up, one round trip to
    /// spawn and answer, the bytes over the wire and through every (de)serialization, then the
    /// work at the broker's speed.
    pub fn completion_ms(&self, cpu_ms: f64, bytes: f64) -> f64 {
        self.startup_ms
            + self.rtt_ms
            + bytes / self.bytes_per_ms
            + bytes / SERIALIZE_BYTES_PER_MS
            + cpu_ms * self.speed()
    }
}

/// Bytes a component ships when it runs remotely.
pub fn transfer_bytes(memory_bytes: f64) -> f64 {
    SCRIPT_BYTES_ESTIMATE + sane(memory_bytes) * MESSAGE_SHARE_OF_MEMORY
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_from_a_total_and_from_buckets() {
        let flat = CpuProfile::from_total(300.0, 1000.0);
        assert_eq!(flat.total_ms, 300.0);
        assert_eq!(flat.peak_millicores, 300.0);
        // 50 ms in the first 100 ms is a 500-millicore burst, whatever the total.
        let bursty = CpuProfile::from_buckets([(100.0, 50.0), (900.0, 90.0), (0.0, 5.0)]);
        assert_eq!(bursty.total_ms, 145.0);
        assert_eq!(bursty.peak_millicores, 500.0);
        let hostile = CpuProfile::from_buckets([(f64::NAN, 1.0), (10.0, f64::INFINITY)]);
        assert_eq!(hostile.total_ms, 1.0);
        assert_eq!(hostile.peak_millicores, 0.0);
    }

    fn path_with_curve(bucket_ms: f64, cpu_per_bucket: &[f64]) -> PathDemand {
        use crate::protocol::Quantiles;
        use crate::protocol::demand::{CurveBucket, DemandCurve, PathKind};
        PathDemand {
            name: "load".into(),
            kind: PathKind::Load,
            probability: 1.0,
            cpu_ms: Quantiles::exact(cpu_per_bucket.iter().sum()),
            memory_bytes: Quantiles::exact(0.0),
            network_bytes: Quantiles::exact(0.0),
            event: None,
            target: None,
            curve: DemandCurve {
                bucket_ms,
                buckets: cpu_per_bucket
                    .iter()
                    .map(|c| CurveBucket {
                        cpu_ms: Quantiles::exact(*c),
                        memory_bytes: Quantiles::exact(0.0),
                        network_bytes: Quantiles::exact(0.0),
                    })
                    .collect(),
            },
        }
    }

    #[test]
    fn a_long_path_is_judged_by_its_busiest_horizon_not_squeezed_into_one() {
        // Ten seconds at half a core: 5 s of CPU, but never more than 500 millicores.
        let long = path_with_curve(1000.0, &[500.0; 10]);
        let profile = path_profile(&long, 0.5, 1000.0);
        assert_eq!(profile.total_ms, 5000.0);
        assert_eq!(profile.peak_millicores, 500.0);
        // Without the curve the same total would read as 5,000 millicores.
        let flat = PathDemand {
            curve: Default::default(),
            ..long
        };
        assert_eq!(path_profile(&flat, 0.5, 1000.0).peak_millicores, 5000.0);
        // A path shorter than the horizon reads as before: its total over the horizon.
        let short = path_with_curve(10.0, &[5.0, 0.0, 5.0]);
        assert_eq!(path_profile(&short, 0.5, 1000.0).peak_millicores, 10.0);
    }

    #[test]
    fn thread_speed_falls_with_competition() {
        let idle = Machine {
            cores: 2.0,
            idle_millicores: 2000.0,
            busy_threads: 0.0,
            tabs_millicores: 0.0,
            capacity_millicores: 1000.0,
            available_memory: 1e9,
            memory_capacity: 5e8,
        };
        assert_eq!(idle.thread_speed(1.0), 1.0);
        assert_eq!(idle.thread_speed(2.0), 1.0);
        assert!((idle.thread_speed(4.0) - 0.5).abs() < 1e-9);
        let hogged = Machine {
            idle_millicores: 0.0,
            busy_threads: 8.0,
            ..idle
        };
        assert!((hogged.thread_speed(1.0) - 2.0 / 9.0).abs() < 1e-9);
    }

    #[test]
    fn remote_time_adds_transfer_to_scaled_work() {
        let r = Remote {
            rtt_ms: 10.0,
            bytes_per_ms: 1000.0,
            speed_factor: Some(2.0),
            startup_ms: 5.0,
            cpu_capacity: 0,
            memory_capacity: 0,
            bandwidth_capacity: 0,
        };
        let t = r.completion_ms(100.0, 50_000.0);
        assert!((t - (5.0 + 10.0 + 50.0 + 1.0 + 200.0)).abs() < 1e-9, "{t}");
    }
}
