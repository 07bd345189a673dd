//! Process-level confinement of an executor, the backstop behind the engine's own limits.
//!
//! In three steps, because some of it must happen while the process is still
//! single-threaded, some once its threads exist, and some only once the limits are known:
//!
//! 1. [`harden_early`], first thing in `main`: `PR_SET_NO_NEW_PRIVS` (no privilege gain
//!    through exec, a precondition for any later seccomp filter) and a fresh, empty network
//!    namespace (`unshare(CLONE_NEWNET)`, which needs root or CAP_SYS_ADMIN; without them an
//!    unprivileged user namespace is tried; if both fail it is logged and the worker runs
//!    anyway, since the engine exposes no network API in the first place).
//! 2. Once the worker's threads exist, while the executor waits for `start`:
//!    [`fix_limits`] (no core dumps, new file descriptors or new processes) and [`confine`],
//!    a seccomp filter for every thread of the process that refuses (EPERM) whatever
//!    reaches beyond the process: sockets, opening or changing files by path, stat-ing paths,
//!    running programs, new processes or threads, signals to other processes, ptrace,
//!    namespaces, mounts, kernel modules, BPF, ioctls (an inherited terminal cannot be fed
//!    keystrokes) and changing any rlimit. What the worker needs (memory, its pipes, clocks,
//!    futexes, getrandom, exiting) stays allowed. Another architecture's system calls kill
//!    the process.
//! 3. [`apply_limits`], run by the *broker* on the executor's pid (`prlimit`) before it sends
//!    `start`, the only time the limits are known: `RLIMIT_AS` (heap budget plus
//!    [`ADDRESS_SPACE_HEADROOM`] for the binary, stacks and allocator arenas), `RLIMIT_CPU`
//!    (budget plus [`CPU_GRACE_SECS`]; SIGXCPU at the soft limit, SIGKILL one second later)
//!    and no file writes.
//!
//! Setting the lease's limits from outside is what lets step 2's filter refuse rlimit
//! changes from the start. Set from inside, after `start`, they needed a second filter
//! stacked on the first to seal them, and attaching a filter (the kernel compiles it, makes
//! it executable and synchronises every thread) took 50-80 us of every worker's start on a
//! 2-vCPU VM, against a few microseconds for the broker's `prlimit` calls. The limits of
//! step 2 are the executor's own because, set from outside on a process just started, they
//! could break its start-up (the dynamic loader opens libraries; the threads are yet to
//! come). `RLIMIT_FSIZE` from outside may land while such a process writes a note to an
//! inherited stderr that is a file: step 1 ignores SIGXFSZ, so that the write fails (EFBIG)
//! rather than killing the process (the note is lost; the limit holds either way).
//!
//! Not enforced here: a separate user id, a mount namespace or chroot, Landlock. An attacker
//! who escapes QuickJS runs with the broker's user, but can open nothing and reach no one.

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
    // SAFETY: sets the disposition of one signal to SIG_IGN; no handler runs.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
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

#[cfg(all(target_os = "linux", target_env = "gnu"))]
type Resource = libc::__rlimit_resource_t;
#[cfg(all(target_os = "linux", not(target_env = "gnu")))]
type Resource = libc::c_int;

/// Sets each `(name, resource, soft, hard)` limit of process `pid` (0: this one). Returns
/// notes on the limits that could not be set.
#[cfg(target_os = "linux")]
fn set_limits(pid: libc::pid_t, wanted: &[(&str, Resource, u64, u64)]) -> Vec<String> {
    let mut notes = Vec::new();
    for &(name, resource, soft, hard) in wanted {
        let limit = libc::rlimit {
            rlim_cur: soft as libc::rlim_t,
            rlim_max: hard as libc::rlim_t,
        };
        // SAFETY: `limit` is a valid rlimit for the duration of the call; the old limit is
        // not asked for (null).
        if unsafe { libc::prlimit(pid, resource, &limit, std::ptr::null_mut()) } != 0 {
            notes.push(format!(
                "setting {name} failed: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    notes
}

/// Step 2, before [`confine`]: the limits that are the same for every worker. Returns notes
/// on the limits that could not be set.
#[cfg(target_os = "linux")]
pub fn fix_limits() -> Vec<String> {
    set_limits(
        0,
        &[
            // SIGXCPU and aborts would otherwise write a core file the size of the heap.
            ("RLIMIT_CORE", libc::RLIMIT_CORE, 0, 0),
            // The pipes to the broker are already open; nothing else ever is.
            ("RLIMIT_NOFILE", libc::RLIMIT_NOFILE, 0, 0),
            // Threads count too: the input and watchdog threads exist by now, no other is
            // ever started.
            ("RLIMIT_NPROC", libc::RLIMIT_NPROC, 0, 0),
        ],
    )
}

#[cfg(not(target_os = "linux"))]
pub fn fix_limits() -> Vec<String> {
    Vec::new()
}

/// Step 3, in the broker: sets the lease's `limits` on executor process `pid`, which waits
/// for its `start` (or is still starting up) and cannot change them itself: step 2's filter
/// refuses it. Returns notes on the limits that could not be set.
#[cfg(target_os = "linux")]
pub fn apply_limits(pid: u32, limits: &ExecutorLimits) -> Vec<String> {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return vec![format!("no rlimits set: pid {pid} out of range")];
    };
    let address_space = limits.memory_bytes.saturating_add(ADDRESS_SPACE_HEADROOM);
    let cpu_secs = limits.cpu_ms.div_ceil(1000).saturating_add(CPU_GRACE_SECS);
    set_limits(
        pid,
        &[
            ("RLIMIT_AS", libc::RLIMIT_AS, address_space, address_space),
            (
                "RLIMIT_CPU",
                libc::RLIMIT_CPU,
                cpu_secs,
                cpu_secs.saturating_add(1),
            ),
            ("RLIMIT_FSIZE", libc::RLIMIT_FSIZE, 0, 0),
        ],
    )
}

#[cfg(not(target_os = "linux"))]
pub fn apply_limits(_pid: u32, _limits: &ExecutorLimits) -> Vec<String> {
    Vec::new()
}

/// The system calls [`confine`] refuses, for this architecture.
#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
fn denied_syscalls() -> Vec<libc::c_long> {
    use libc::*;
    let mut denied = vec![
        // network
        SYS_socket,
        SYS_socketpair,
        SYS_connect,
        SYS_bind,
        SYS_listen,
        SYS_accept,
        SYS_accept4,
        // files by path
        SYS_openat,
        SYS_openat2,
        SYS_unlinkat,
        SYS_renameat,
        SYS_renameat2,
        SYS_mkdirat,
        SYS_symlinkat,
        SYS_linkat,
        SYS_fchmodat,
        SYS_fchownat,
        SYS_truncate,
        SYS_mknodat,
        SYS_utimensat,
        SYS_statx,
        SYS_newfstatat,
        SYS_faccessat,
        SYS_faccessat2,
        SYS_readlinkat,
        SYS_chdir,
        SYS_fchdir,
        SYS_chroot,
        SYS_pivot_root,
        SYS_mount,
        SYS_umount2,
        SYS_name_to_handle_at,
        SYS_open_by_handle_at,
        SYS_memfd_create,
        // programs, processes, other processes
        SYS_execve,
        SYS_execveat,
        SYS_clone,
        SYS_clone3,
        SYS_ptrace,
        SYS_process_vm_readv,
        SYS_process_vm_writev,
        SYS_kill,
        SYS_tkill,
        SYS_pidfd_open,
        SYS_pidfd_send_signal,
        SYS_pidfd_getfd,
        SYS_unshare,
        SYS_setns,
        // the kernel itself
        SYS_init_module,
        SYS_finit_module,
        SYS_delete_module,
        SYS_kexec_load,
        SYS_bpf,
        SYS_perf_event_open,
        SYS_userfaultfd,
        SYS_keyctl,
        SYS_add_key,
        SYS_request_key,
        SYS_ioctl,
        SYS_prlimit64,
        SYS_setrlimit,
        SYS_io_uring_setup,
        SYS_fanotify_init,
        SYS_inotify_init1,
        SYS_quotactl,
    ];
    #[cfg(target_arch = "x86_64")]
    denied.extend([
        SYS_open,
        SYS_creat,
        SYS_unlink,
        SYS_rename,
        SYS_mkdir,
        SYS_rmdir,
        SYS_symlink,
        SYS_link,
        SYS_chmod,
        SYS_chown,
        SYS_lchown,
        SYS_mknod,
        SYS_utime,
        SYS_utimes,
        SYS_stat,
        SYS_lstat,
        SYS_access,
        SYS_readlink,
        SYS_fork,
        SYS_vfork,
        SYS_inotify_init,
    ]);
    denied
}

/// Step 2: the seccomp filter described above, for all threads
/// (`SECCOMP_FILTER_FLAG_TSYNC`). Installed once the threads exist, while the executor waits
/// for `start` (a spare executor waits confined): the kernel's compilation of the filter, a
/// fifth of a millisecond, is then not on the way from `start` to the worker running. Needs
/// `PR_SET_NO_NEW_PRIVS`, which [`harden_early`] set.
#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
pub fn confine() -> Result<(), String> {
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() };
    let program = seccomp_program(pid as u32);
    install_filter(&program)
}

#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
pub fn confine() -> Result<(), String> {
    Err("no seccomp filter for this platform".into())
}

#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
fn seccomp_program(pid: u32) -> Vec<libc::sock_filter> {
    use super::bpf::{ARG0, answer_each, jump, prologue, stmt};
    use libc::{BPF_ABS, BPF_JEQ, BPF_JMP, BPF_K, BPF_LD, BPF_RET, BPF_W, EPERM};
    use libc::{SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO};
    let deny = SECCOMP_RET_ERRNO | (EPERM as u32);
    let mut p = prologue(deny);
    answer_each(&mut p, &denied_syscalls(), deny);
    // tgkill only to this process (abort() signals its own thread this way).
    p.extend([
        jump(BPF_JMP | BPF_JEQ | BPF_K, libc::SYS_tgkill as u32, 0, 3),
        stmt(BPF_LD | BPF_W | BPF_ABS, ARG0),
        jump(BPF_JMP | BPF_JEQ | BPF_K, pid, 1, 0),
        stmt(BPF_RET | BPF_K, deny),
        stmt(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    ]);
    p
}

#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
pub(crate) fn install_filter(program: &[libc::sock_filter]) -> Result<(), String> {
    let prog = libc::sock_fprog {
        len: u16::try_from(program.len()).map_err(|_| "seccomp program too long".to_string())?,
        filter: program.as_ptr().cast_mut(),
    };
    // SAFETY: `prog` points at `program`, which outlives the call; the kernel copies it.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            libc::SECCOMP_FILTER_FLAG_TSYNC,
            &prog as *const libc::sock_fprog,
        )
    };
    if rc != 0 {
        return Err(format!(
            "seccomp filter not installed: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

#[cfg(all(
    test,
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
mod tests {
    use super::*;

    /// An executor's limits, its own (step 2) and the broker's (step 3, from outside), on a
    /// forked child that sets its own, says so and waits to be killed.
    #[test]
    fn limits_are_set_inside_and_from_outside() {
        let mut fds = [0; 2];
        // SAFETY: plain system calls; the child only sets its limits (allocating nothing
        // unless one fails), writes to the pipe and waits until the parent kills it.
        let child = unsafe {
            assert_eq!(libc::pipe(fds.as_mut_ptr()), 0);
            let child = libc::fork();
            assert!(child >= 0, "fork failed");
            if child == 0 {
                let ok = u8::from(fix_limits().is_empty());
                libc::write(fds[1], [ok].as_ptr().cast(), 1);
                loop {
                    libc::pause();
                }
            }
            child
        };
        let mut ok = [0u8];
        // SAFETY: reads one byte into a buffer we own.
        let read = unsafe { libc::read(fds[0], ok.as_mut_ptr().cast(), 1) };
        let limits = ExecutorLimits {
            cpu_ms: 2_500,
            memory_bytes: 64 * 1024 * 1024,
            stack_bytes: 1024 * 1024,
        };
        let notes = apply_limits(child as u32, &limits);
        let table = std::fs::read_to_string(format!("/proc/{child}/limits"));
        // SAFETY: kills and reaps the child forked above; closes the pipe.
        unsafe {
            libc::kill(child, libc::SIGKILL);
            libc::waitpid(child, std::ptr::null_mut(), 0);
            libc::close(fds[0]);
            libc::close(fds[1]);
        }
        assert_eq!((read, ok), (1, [1]), "the child's own limits");
        assert!(notes.is_empty(), "{notes:?}");
        let table = table.unwrap();
        let row = |name: &str| -> Vec<String> {
            let line = table.lines().find(|l| l.starts_with(name)).unwrap();
            line[name.len()..]
                .split_whitespace()
                .take(2)
                .map(str::to_owned)
                .collect()
        };
        let address_space = (64 * 1024 * 1024 + ADDRESS_SPACE_HEADROOM).to_string();
        assert_eq!(
            row("Max address space"),
            [address_space.as_str(), address_space.as_str()]
        );
        // 2.5 s rounds up to 3, plus the grace; the hard limit one second later.
        assert_eq!(row("Max cpu time"), ["5", "6"]);
        for name in [
            "Max core file size",
            "Max file size",
            "Max open files",
            "Max processes",
        ] {
            assert_eq!(row(name), ["0", "0"], "{name}");
        }
    }

    /// In a forked child (the filter must not land on the test runner): the filter refuses
    /// sockets, files by path, programs, signals to others and changing rlimits, and allows
    /// pipes and memory.
    #[test]
    fn the_filter_refuses_the_outside_and_allows_the_worker() {
        // Built before fork: the child only makes raw system calls (no allocation).
        let mut program = seccomp_program(0);
        let pid_slot = program.len() - 3;
        let path = c"/etc/hostname";
        let mut fds = [0; 2];
        // SAFETY: plain system calls; the child touches only memory prepared before fork and
        // ends with _exit.
        unsafe {
            assert_eq!(libc::pipe(fds.as_mut_ptr()), 0);
            let child = libc::fork();
            assert!(child >= 0, "fork failed");
            if child == 0 {
                // Our own pid in the tgkill rule.
                let own = libc::getpid() as u32;
                program[pid_slot].k = own;
                let code = (|| {
                    if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                        return 10;
                    }
                    let prog = libc::sock_fprog {
                        len: program.len() as u16,
                        filter: program.as_ptr().cast_mut(),
                    };
                    if libc::syscall(
                        libc::SYS_seccomp,
                        libc::SECCOMP_SET_MODE_FILTER,
                        0,
                        &prog as *const libc::sock_fprog,
                    ) != 0
                    {
                        return 11;
                    }
                    let denied =
                        |rc: libc::c_long| rc == -1 && *libc::__errno_location() == libc::EPERM;
                    if !denied(libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) as libc::c_long) {
                        return 20;
                    }
                    if !denied(libc::open(path.as_ptr(), libc::O_RDONLY) as libc::c_long) {
                        return 21;
                    }
                    if !denied(libc::kill(1, 0) as libc::c_long) {
                        return 22;
                    }
                    if !denied(libc::unlink(path.as_ptr()) as libc::c_long) {
                        return 23;
                    }
                    if !denied(libc::syscall(libc::SYS_tgkill, 1, 1, 0)) {
                        return 24;
                    }
                    // What a worker needs still works.
                    if libc::write(fds[1], b"ok".as_ptr().cast(), 2) != 2 {
                        return 30;
                    }
                    if libc::syscall(libc::SYS_tgkill, own, own, 0) != 0 {
                        return 31;
                    }
                    let mut r = [0u8; 8];
                    if libc::getrandom(r.as_mut_ptr().cast(), r.len(), 0) != 8 {
                        return 32;
                    }
                    // The broker sets the rlimits; the worker can change none of them.
                    let none = libc::rlimit {
                        rlim_cur: 0,
                        rlim_max: 0,
                    };
                    if !denied(libc::setrlimit(libc::RLIMIT_CORE, &none) as libc::c_long) {
                        return 25;
                    }
                    if !denied(
                        libc::prlimit(0, libc::RLIMIT_CORE, &none, std::ptr::null_mut())
                            as libc::c_long,
                    ) {
                        return 26;
                    }
                    0
                })();
                libc::_exit(code);
            }
            let mut status = 0;
            assert_eq!(libc::waitpid(child, &mut status, 0), child);
            assert!(libc::WIFEXITED(status), "child died: {status:#x}");
            assert_eq!(
                libc::WEXITSTATUS(status),
                0,
                "probe failed at step {}",
                libc::WEXITSTATUS(status)
            );
            let mut buf = [0u8; 2];
            assert_eq!(libc::read(fds[0], buf.as_mut_ptr().cast(), 2), 2);
            libc::close(fds[0]);
            libc::close(fds[1]);
        }
    }
}
