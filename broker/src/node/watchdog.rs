//! The CPU watchdog of a Node child, in the broker: V8 has no interrupt the broker could
//! ask for from outside, so a script that loops is stopped by killing its process once its
//! CPU clock (all threads, read with `clock_getcpuclockid`) passes the lease's budget.
//!
//! The watchdog sleeps for the budget that is left divided by the cores the child could use
//! at once (a process's CPU time can run faster than the wall clock), at least a millisecond,
//! so it stops a loop within about a millisecond of its budget while costing nothing between
//! checks.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// CPU time of process `pid` so far (every thread), if it is still there.
pub fn process_cpu(pid: i32) -> Option<Duration> {
    let mut clock: libc::clockid_t = 0;
    // SAFETY: `clock` is a valid out-pointer.
    if unsafe { libc::clock_getcpuclockid(pid, &mut clock) } != 0 {
        return None;
    }
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        return None;
    }
    Some(Duration::new(
        ts.tv_sec.max(0) as u64,
        ts.tv_nsec.clamp(0, 999_999_999) as u32,
    ))
}

/// What the watchdog found, for the supervisor.
#[derive(Debug, Default)]
pub struct Verdict {
    /// The budget ran out and the process was killed.
    pub exceeded: AtomicBool,
    /// CPU used since arming, ms (kept up to date at each check).
    pub used_ms: AtomicU64,
    /// The child's CPU clock when armed, ns (`u64::MAX` until then).
    pub base_ns: AtomicU64,
}

impl Verdict {
    pub fn new() -> Self {
        Self {
            base_ns: AtomicU64::new(u64::MAX),
            ..Self::default()
        }
    }

    /// CPU the child has used since it was armed, ms, read now (the process may be a zombie
    /// not yet reaped: its clock still reads).
    pub fn used_now(&self, pid: i32) -> Option<u64> {
        let base = self.base_ns.load(Ordering::Acquire);
        if base == u64::MAX {
            return None;
        }
        let now = u64::try_from(process_cpu(pid)?.as_nanos()).unwrap_or(u64::MAX);
        Some(now.saturating_sub(base) / 1_000_000)
    }
}

/// Watches `pid` from now on: kills it once it has used `budget` of CPU beyond what it had
/// used when armed. Ends when the process is gone.
pub async fn watch(pid: i32, budget: Duration, verdict: Arc<Verdict>) {
    let Some(base) = process_cpu(pid) else {
        return;
    };
    verdict.base_ns.store(
        u64::try_from(base.as_nanos()).unwrap_or(u64::MAX - 1),
        Ordering::Release,
    );
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
    loop {
        let Some(now) = process_cpu(pid) else {
            return;
        };
        let used = now.saturating_sub(base);
        verdict.used_ms.store(
            u64::try_from(used.as_millis()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        if used >= budget {
            verdict.exceeded.store(true, Ordering::SeqCst);
            // SAFETY: kill has no memory effects; the supervisor still holds the child
            // unreaped, so the pid cannot have been reused.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            return;
        }
        let left = (budget - used) / cores;
        tokio::time::sleep(left.max(Duration::from_millis(1))).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process_clock() {
        let a = process_cpu(std::process::id() as i32).expect("own clock");
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_add(i * i);
        }
        std::hint::black_box(x);
        let b = process_cpu(std::process::id() as i32).expect("own clock");
        assert!(b > a);
        assert!(process_cpu(-5).is_none());
    }
}
