//! Timing helpers: repeated samples, percentiles and throughput, with a warm-up so that
//! first-call effects (page faults, lazy initialisation) do not count.

use std::time::{Duration, Instant};

/// Runs `f` `warmup` times unmeasured, then `samples` times, returning each duration.
pub fn samples(warmup: usize, samples: usize, mut f: impl FnMut()) -> Vec<Duration> {
    for _ in 0..warmup {
        f();
    }
    (0..samples)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect()
}

/// The `p`-th percentile (0-100) of `durations`, in microseconds.
pub fn percentile_us(durations: &[Duration], p: f64) -> f64 {
    if durations.is_empty() {
        return 0.0;
    }
    let mut sorted: Vec<f64> = durations.iter().map(|d| d.as_secs_f64() * 1e6).collect();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Megabytes per second for `bytes` processed in the median sample.
pub fn median_mb_per_s(bytes: usize, durations: &[Duration]) -> f64 {
    let median_s = percentile_us(durations, 50.0) / 1e6;
    if median_s <= 0.0 {
        return 0.0;
    }
    bytes as f64 / 1e6 / median_s
}
