//! Process-level confinement of an executor, the backstop behind the engine's own limits.
//!
//! In two steps, because some of it must happen while the process is still single-threaded
//! and some only once the limits are known:
//!
//! 1. [`harden_early`], first thing in `main`: `PR_SET_NO_NEW_PRIVS` (no privilege gain
//!    through exec, a precondition for any later seccomp filter) and a fresh, empty network
//!    namespace (`unshare(CLONE_NEWNET)`, which needs root or CAP_SYS_ADMIN; without them an
//!    unprivileged user namespace is tried; if both fail it is logged and the worker runs
//!    anyway, since the engine exposes no network API in the first place).
//! 2. [`apply_limits`], after the `start` message: `RLIMIT_AS` (heap budget plus
//!    [`ADDRESS_SPACE_HEADROOM`] for the binary, stacks and allocator arenas), `RLIMIT_CPU`
//!    (budget plus [`CPU_GRACE_SECS`]; SIGXCPU at the soft limit, SIGKILL one second later),
//!    and no core dumps, file writes, new file descriptors or new processes.
//!
//! Not enforced here: a seccomp syscall filter, a separate user id, a mount namespace or
//! chroot. An attacker who escapes QuickJS runs with the broker's user and filesystem view.

use foresight_shared::protocol::executor::ExecutorLimits;

/// Address space an executor needs beyond its JavaScript heap: the binary, libc, thread
/// stacks and allocator slack (an idle executor maps about 14 MB; generous on purpose, since
/// running out here looks like a crash rather than a clean `memory_limit`).
pub const ADDRESS_SPACE_HEADROOM: u64 = 256 * 1024 * 1024;

/// CPU seconds granted beyond the budget before the kernel steps in; the engine's own check
/// normally ends the worker first, with a clean `cpu_limit`.
pub const CPU_GRACE_SECS: u64 = 2;

/// Step 1. `Err` when the process cannot be made safe enough to run page code at all;
/// `Ok` carries notes on what was not possible.
#[cfg(target_os = "linux")]
pub fn harden_early() -> Result<Vec<String>, String> {
    let mut notes = Vec::new();
    // One malloc arena for all threads: glibc would reserve 64 MiB of address space for each
    // helper thread's own arena, out of the RLIMIT_AS headroom (measured on an idle executor:
    // 145 MB of mappings with per-thread arenas, 14 MB with one).
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only tunes the allocator; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
    // SAFETY: plain prctl/unshare calls with constant arguments; no memory is shared.
    unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return Err(format!(
                "prctl(PR_SET_NO_NEW_PRIVS) failed: {}",
                std::io::Error::last_os_error()
            ));
        }
        if libc::unshare(libc::CLONE_NEWNET) != 0 {
            let privileged = std::io::Error::last_os_error();
            if libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNET) != 0 {
                notes.push(format!(
                    "no network namespace (unshare: {privileged}; as an unprivileged user \
                     namespace: {}); the worker shares the host's network namespace",
                    std::io::Error::last_os_error()
                ));
            }
        }
    }
    Ok(notes)
}

#[cfg(not(target_os = "linux"))]
pub fn harden_early() -> Result<Vec<String>, String> {
    Ok(vec![
        "no process sandbox on this operating system; only the engine's limits apply".into(),
    ])
}

/// Step 2. Returns notes on the limits that could not be set.
#[cfg(target_os = "linux")]
pub fn apply_limits(limits: &ExecutorLimits) -> Vec<String> {
    #[cfg(target_env = "gnu")]
    type Resource = libc::__rlimit_resource_t;
    #[cfg(not(target_env = "gnu"))]
    type Resource = libc::c_int;

    let cpu_secs = limits.cpu_ms.div_ceil(1000).saturating_add(CPU_GRACE_SECS);
    let wanted: [(&str, Resource, u64, u64); 6] = [
        (
            "RLIMIT_AS",
            libc::RLIMIT_AS,
            limits.memory_bytes.saturating_add(ADDRESS_SPACE_HEADROOM),
            limits.memory_bytes.saturating_add(ADDRESS_SPACE_HEADROOM),
        ),
        (
            "RLIMIT_CPU",
            libc::RLIMIT_CPU,
            cpu_secs,
            cpu_secs.saturating_add(1),
        ),
        // SIGXCPU and aborts would otherwise write a core file the size of the heap.
        ("RLIMIT_CORE", libc::RLIMIT_CORE, 0, 0),
        ("RLIMIT_FSIZE", libc::RLIMIT_FSIZE, 0, 0),
        // The pipes to the broker are already open; nothing else ever is.
        ("RLIMIT_NOFILE", libc::RLIMIT_NOFILE, 0, 0),
        // Threads count too: the input and watchdog threads exist by now, no other is ever
        // started.
        ("RLIMIT_NPROC", libc::RLIMIT_NPROC, 0, 0),
    ];
    let mut notes = Vec::new();
    for (name, resource, soft, hard) in wanted {
        let limit = libc::rlimit {
            rlim_cur: soft as libc::rlim_t,
            rlim_max: hard as libc::rlim_t,
        };
        // SAFETY: `limit` is a valid rlimit for the duration of the call.
        if unsafe { libc::setrlimit(resource, &limit) } != 0 {
            notes.push(format!(
                "setrlimit({name}) failed: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    notes
}

#[cfg(not(target_os = "linux"))]
pub fn apply_limits(_limits: &ExecutorLimits) -> Vec<String> {
    Vec::new()
}
