//! Contention sensing: how busy this machine is right now, as a
//! [`ContentionSnapshot`] the planner can use.
//!
//! The serve loop only sees the [`Sampler`] trait, so it can be tested against a
//! [`FixedSampler`]; the host itself runs a [`SystemSampler`] over `sysinfo`.
//!
//! CPU usage is a difference between two readings of the kernel's counters, so the system
//! sampler takes its first reading when it is created and never reads the counters more often
//! than [`sysinfo::MINIMUM_CPU_UPDATE_INTERVAL`]: a request that arrives sooner gets the
//! previous snapshot (with its original `taken_at_ms`), which is both cheaper and more accurate
//! than a delta over a few milliseconds.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use foresight_shared::protocol::plan::{ContentionSnapshot, ContentionSource};
use sysinfo::{CpuRefreshKind, MemoryRefreshKind, System};

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

/// Samples the operating system through `sysinfo`, refreshing only CPU usage and memory.
pub struct SystemSampler {
    /// The reason, when `sysinfo` does not support this platform; every sample then fails.
    system: Result<System, String>,
    /// When the counters were first read; the first real sample must be at least
    /// `MINIMUM_CPU_UPDATE_INTERVAL` later to have a meaningful CPU delta.
    primed_at: Instant,
    last: Option<(Instant, ContentionSnapshot)>,
}

impl SystemSampler {
    /// Creates the sampler and takes the first (priming) reading of the CPU counters.
    pub fn new() -> Self {
        let system = System::new().map_err(|e| e.to_string()).map(|mut system| {
            refresh(&mut system);
            system
        });
        Self {
            system,
            primed_at: Instant::now(),
            last: None,
        }
    }

    fn sample_at(&mut self, now: Instant) -> Result<ContentionSnapshot, SampleError> {
        let system = match &mut self.system {
            Ok(system) => system,
            Err(reason) => return Err(SampleError::Unavailable(reason.clone())),
        };
        match &self.last {
            Some((refreshed_at, snapshot))
                if now.saturating_duration_since(*refreshed_at)
                    < sysinfo::MINIMUM_CPU_UPDATE_INTERVAL =>
            {
                return Ok(snapshot.clone());
            }
            Some(_) => {}
            None => {
                // Only the very first sample can be too close to the priming reading; waiting
                // out the rest of the interval (at most 200 ms, once per process) is what makes
                // its CPU figure a measurement rather than the average since boot.
                let since_prime = now.saturating_duration_since(self.primed_at);
                let wait = sysinfo::MINIMUM_CPU_UPDATE_INTERVAL.saturating_sub(since_prime);
                if wait > Duration::ZERO {
                    std::thread::sleep(wait);
                }
            }
        }
        refresh(system);
        let snapshot = snapshot_of(system, unix_ms_now());
        // Measured from the actual refresh, which may be later than `now` after the wait.
        self.last = Some((now.max(Instant::now()), snapshot.clone()));
        Ok(snapshot)
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

fn refresh(system: &mut System) {
    system.refresh_cpu_specifics(CpuRefreshKind::nothing().with_usage());
    system.refresh_memory_specifics(MemoryRefreshKind::nothing().with_ram());
}

fn snapshot_of(system: &System, taken_at_ms: u64) -> ContentionSnapshot {
    let logical_cpus = match system.cpus().len() {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let logical_cpus = u32::try_from(logical_cpus).unwrap_or(u32::MAX);
    let cpu_usage = usage_fraction(system.global_cpu_usage());
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
        ..Default::default()
    }
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
            primed_at: Instant::now(),
            last: None,
        };
        assert_eq!(
            sampler.sample(),
            Err(SampleError::Unavailable("unsupported".into()))
        );
    }
}
