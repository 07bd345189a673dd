//! Contention updates the extension subscribed to (`watch_contention`): how often to sample
//! and what counts as a material change. Pure, so the thresholds are tested without a clock.

use std::time::Duration;

use foresight_shared::protocol::plan::ContentionSnapshot;

/// Sampling period while a watch is on, unless the watch asks for a longer one.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);

/// A change of idle CPU worth telling the extension about, by default: a quarter of a core.
pub const DEFAULT_CPU_CHANGE_MILLICORES: u64 = 250;

/// A change of available memory worth telling the extension about, by default.
pub const DEFAULT_MEMORY_CHANGE_BYTES: u64 = 256 * 1024 * 1024;

/// A change of runnable tasks worth telling, per logical CPU (at least one task): when every
/// CPU is busy, idle CPU stays near zero while the queue behind it grows or drains, and only
/// this figure says so. Without it, a machine coming back from overload could keep its last
/// update's long queue until something else moved.
pub const RUNNABLE_CHANGE_PER_CPU: f64 = 0.5;

/// What one watch asked for, with the host's defaults and floors applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchSpec {
    /// Time between samples, and so the least time between two updates.
    pub interval: Duration,
    pub cpu_change_millicores: u64,
    pub memory_change_bytes: u64,
}

impl WatchSpec {
    /// Never samples faster than sysinfo's minimum CPU interval, nor slower than a minute.
    pub fn new(
        min_interval_ms: Option<u64>,
        cpu_change_millicores: Option<u64>,
        memory_change_bytes: Option<u64>,
    ) -> Self {
        let interval = min_interval_ms
            .map_or(DEFAULT_INTERVAL, Duration::from_millis)
            .clamp(
                sysinfo::MINIMUM_CPU_UPDATE_INTERVAL,
                Duration::from_secs(60),
            );
        Self {
            interval,
            cpu_change_millicores: cpu_change_millicores
                .unwrap_or(DEFAULT_CPU_CHANGE_MILLICORES)
                .max(1),
            memory_change_bytes: memory_change_bytes
                .unwrap_or(DEFAULT_MEMORY_CHANGE_BYTES)
                .max(1),
        }
    }
}

/// What moved materially between the last update sent and `now`, in words; empty if nothing.
pub fn changes(
    last: &ContentionSnapshot,
    now: &ContentionSnapshot,
    spec: &WatchSpec,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut check =
        |what: &str, unit: &str, scale: f64, before: u64, after: u64, threshold: u64| {
            if before.abs_diff(after) >= threshold {
                let verb = if after < before { "fell" } else { "rose" };
                out.push(format!(
                    "{what} {verb} from {:.0} to {:.0} {unit}",
                    before as f64 / scale,
                    after as f64 / scale
                ));
            }
        };
    const MIB: f64 = 1024.0 * 1024.0;
    check(
        "idle CPU",
        "millicores",
        1.0,
        last.available_cpu_millicores,
        now.available_cpu_millicores,
        spec.cpu_change_millicores,
    );
    check(
        "available memory",
        "MiB",
        MIB,
        last.available_memory_bytes,
        now.available_memory_bytes,
        spec.memory_change_bytes,
    );
    if let (Some(a), Some(b)) = (&last.forecast, &now.forecast) {
        check(
            "forecast idle CPU",
            "millicores",
            1.0,
            a.available_cpu_millicores,
            b.available_cpu_millicores,
            spec.cpu_change_millicores,
        );
        check(
            "forecast available memory",
            "MiB",
            MIB,
            a.available_memory_bytes,
            b.available_memory_bytes,
            spec.memory_change_bytes,
        );
    }
    if let (Some(before), Some(after)) = (last.runnable_tasks, now.runnable_tasks) {
        let threshold = (RUNNABLE_CHANGE_PER_CPU * f64::from(now.logical_cpus)).max(1.0);
        if (after - before).abs() >= threshold {
            let verb = if after < before { "fell" } else { "rose" };
            out.push(format!(
                "runnable tasks {verb} from {before:.1} to {after:.1}"
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use foresight_shared::protocol::plan::ContentionForecast;

    fn snap(idle: u64, memory: u64) -> ContentionSnapshot {
        ContentionSnapshot {
            logical_cpus: 2,
            available_cpu_millicores: idle,
            available_memory_bytes: memory,
            total_memory_bytes: 8 << 30,
            ..Default::default()
        }
    }

    #[test]
    fn defaults_and_floors() {
        let spec = WatchSpec::new(None, None, None);
        assert_eq!(spec.interval, DEFAULT_INTERVAL);
        assert_eq!(spec.cpu_change_millicores, DEFAULT_CPU_CHANGE_MILLICORES);
        let eager = WatchSpec::new(Some(1), Some(0), Some(0));
        assert_eq!(eager.interval, sysinfo::MINIMUM_CPU_UPDATE_INTERVAL);
        assert_eq!(eager.cpu_change_millicores, 1);
        assert_eq!(
            WatchSpec::new(Some(u64::MAX), None, None).interval,
            Duration::from_secs(60)
        );
    }

    #[test]
    fn small_moves_are_quiet_and_large_ones_are_told() {
        let spec = WatchSpec::new(None, None, None);
        let gib = 1u64 << 30;
        assert!(changes(&snap(1800, 4 * gib), &snap(1700, 4 * gib - 1000), &spec).is_empty());
        let told = changes(&snap(1800, 4 * gib), &snap(200, 3 * gib), &spec);
        assert_eq!(
            told,
            vec![
                "idle CPU fell from 1800 to 200 millicores",
                "available memory fell from 4096 to 3072 MiB"
            ]
        );
        let mut before = snap(1000, gib);
        let mut after = snap(1000, gib);
        before.forecast = Some(ContentionForecast {
            available_cpu_millicores: 1000,
            ..Default::default()
        });
        after.forecast = Some(ContentionForecast {
            available_cpu_millicores: 1400,
            ..Default::default()
        });
        assert_eq!(
            changes(&before, &after, &spec),
            vec!["forecast idle CPU rose from 1000 to 1400 millicores"]
        );
    }

    #[test]
    fn a_draining_run_queue_is_told_while_idle_cpu_stays_put() {
        // Both CPUs busy throughout: idle CPU does not move, the queue behind them does.
        let spec = WatchSpec::new(None, None, None);
        let queue = |tasks: f64| ContentionSnapshot {
            runnable_tasks: Some(tasks),
            ..snap(0, 1 << 30)
        };
        assert!(changes(&queue(7.6), &queue(6.9), &spec).is_empty());
        assert_eq!(
            changes(&queue(7.6), &queue(4.2), &spec),
            vec!["runnable tasks fell from 7.6 to 4.2"]
        );
        // One task is nothing on 16 CPUs.
        let wide = |tasks: f64| ContentionSnapshot {
            logical_cpus: 16,
            ..queue(tasks)
        };
        assert!(changes(&wide(20.0), &wide(16.0), &spec).is_empty());
        assert_eq!(changes(&wide(20.0), &wide(11.0), &spec).len(), 1);
    }
}
