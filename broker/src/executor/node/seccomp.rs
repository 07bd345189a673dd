//! The seccomp filter of a Node child: a deny list (Node and V8 need far more system calls than
//! QuickJS, so the QuickJS executor's allow-most-but-files filter does not fit; files are
//! Landlock's job here).
//!
//! Denied with `EPERM`: every `socket` and `socketpair` (unix sockets too: only seccomp stops
//! a host socket such as a container runtime's, which Landlock's TCP rule does not cover),
//! `clone` without `CLONE_THREAD` (a new process; threads stay allowed), `fork`/`vfork`,
//! `ptrace` and cross-process memory access, mounts, namespaces, changing user or group ids,
//! kernel modules, BPF, perf, keyrings, `userfaultfd`, signals to any process but this one
//! (`kill` of this pid or its own group, `tgkill` of its own threads), pidfds, and the
//! terminal-injecting `ioctl(TIOCSTI)`. `clone3` and `io_uring_*` get `ENOSYS`, so glibc falls
//! back to `clone` (where the flags can be checked: clone3 passes them in memory, out of
//! seccomp's reach) and libuv to plain system calls (io_uring operations such as
//! `IORING_OP_SOCKET` would bypass this filter). Another architecture's system calls kill the
//! process.
//!
//! `execve` stays allowed: the filter is installed before the launcher executes node, and
//! Landlock lets the child execute only node and its loader again, inside the same sandbox.

use libc::sock_filter;

use crate::executor::bpf::{ARG0, ARG1, answer_each, jump, prologue, stmt};

const TIOCSTI: u32 = 0x5412;

fn denied() -> Vec<libc::c_long> {
    use libc::*;
    let mut list = vec![
        SYS_socket,
        SYS_socketpair,
        SYS_ptrace,
        SYS_process_vm_readv,
        SYS_process_vm_writev,
        SYS_mount,
        SYS_umount2,
        SYS_pivot_root,
        SYS_chroot,
        SYS_unshare,
        SYS_setns,
        SYS_fsopen,
        SYS_fsconfig,
        SYS_fsmount,
        SYS_fspick,
        SYS_move_mount,
        SYS_open_tree,
        SYS_mount_setattr,
        SYS_setuid,
        SYS_setgid,
        SYS_setreuid,
        SYS_setregid,
        SYS_setresuid,
        SYS_setresgid,
        SYS_setgroups,
        SYS_setfsuid,
        SYS_setfsgid,
        SYS_capset,
        SYS_init_module,
        SYS_finit_module,
        SYS_delete_module,
        SYS_kexec_load,
        SYS_kexec_file_load,
        SYS_bpf,
        SYS_perf_event_open,
        SYS_userfaultfd,
        SYS_keyctl,
        SYS_add_key,
        SYS_request_key,
        SYS_quotactl,
        SYS_acct,
        SYS_swapon,
        SYS_swapoff,
        SYS_reboot,
        SYS_sethostname,
        SYS_setdomainname,
        SYS_settimeofday,
        SYS_clock_settime,
        SYS_clock_adjtime,
        SYS_adjtimex,
        SYS_syslog,
        SYS_name_to_handle_at,
        SYS_open_by_handle_at,
        SYS_pidfd_open,
        SYS_pidfd_send_signal,
        SYS_pidfd_getfd,
        SYS_tkill,
        SYS_rt_sigqueueinfo,
        SYS_rt_tgsigqueueinfo,
    ];
    #[cfg(target_arch = "x86_64")]
    list.extend([SYS_fork, SYS_vfork, SYS_iopl, SYS_ioperm]);
    list
}

fn enosys() -> [libc::c_long; 4] {
    [
        libc::SYS_clone3,
        libc::SYS_io_uring_setup,
        libc::SYS_io_uring_enter,
        libc::SYS_io_uring_register,
    ]
}

/// The filter for a process whose pid is `pid` (a pid survives `execve`, so the launcher
/// builds it for itself).
pub fn program(pid: u32) -> Vec<sock_filter> {
    use libc::{
        BPF_ABS, BPF_JEQ, BPF_JMP, BPF_JSET, BPF_K, BPF_LD, BPF_RET, BPF_W, CLONE_THREAD, ENOSYS,
        EPERM, SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO,
    };
    let eperm = SECCOMP_RET_ERRNO | EPERM as u32;
    let enosys_ret = SECCOMP_RET_ERRNO | ENOSYS as u32;
    let allow = SECCOMP_RET_ALLOW;
    let mut p = prologue(eperm);
    answer_each(&mut p, &denied(), eperm);
    answer_each(&mut p, &enosys(), enosys_ret);
    // Each block below: the system call's number, then its checks; a different call jumps
    // over the whole block (`jf` = the block's length).
    // clone: threads only.
    p.extend([
        jump(BPF_JMP | BPF_JEQ | BPF_K, libc::SYS_clone as u32, 0, 4),
        stmt(BPF_LD | BPF_W | BPF_ABS, ARG0),
        jump(BPF_JMP | BPF_JSET | BPF_K, CLONE_THREAD as u32, 0, 1),
        stmt(BPF_RET | BPF_K, allow),
        stmt(BPF_RET | BPF_K, eperm),
    ]);
    // kill: this process, or its own process group (it leads a session of its own).
    p.extend([
        jump(BPF_JMP | BPF_JEQ | BPF_K, libc::SYS_kill as u32, 0, 5),
        stmt(BPF_LD | BPF_W | BPF_ABS, ARG0),
        jump(BPF_JMP | BPF_JEQ | BPF_K, pid, 1, 0),
        jump(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1),
        stmt(BPF_RET | BPF_K, allow),
        stmt(BPF_RET | BPF_K, eperm),
    ]);
    // tgkill: this process's own threads.
    p.extend([
        jump(BPF_JMP | BPF_JEQ | BPF_K, libc::SYS_tgkill as u32, 0, 4),
        stmt(BPF_LD | BPF_W | BPF_ABS, ARG0),
        jump(BPF_JMP | BPF_JEQ | BPF_K, pid, 0, 1),
        stmt(BPF_RET | BPF_K, allow),
        stmt(BPF_RET | BPF_K, eperm),
    ]);
    // ioctl: anything but pushing input into a terminal (stderr may be one).
    p.extend([
        jump(BPF_JMP | BPF_JEQ | BPF_K, libc::SYS_ioctl as u32, 0, 4),
        stmt(BPF_LD | BPF_W | BPF_ABS, ARG1),
        jump(BPF_JMP | BPF_JEQ | BPF_K, TIOCSTI, 0, 1),
        stmt(BPF_RET | BPF_K, eperm),
        stmt(BPF_RET | BPF_K, allow),
    ]);
    p.push(stmt(BPF_RET | BPF_K, allow));
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    /// In a forked child: sockets, processes and signals to others are refused, clone3 says
    /// ENOSYS, and threads, pipes and signals to itself still work.
    #[test]
    fn the_filter_refuses_what_node_must_not_do() {
        let mut fds = [0; 2];
        // Built before fork (no allocation in the child); the pid is patched in there.
        const MARK: u32 = 0xdead_beef;
        let mut program = program(MARK);
        // SAFETY: the child only makes raw system calls on memory prepared before fork.
        unsafe {
            assert_eq!(libc::pipe(fds.as_mut_ptr()), 0);
            let child = libc::fork();
            assert!(child >= 0);
            if child == 0 {
                let own = libc::getpid() as u32;
                for insn in program.iter_mut().filter(|i| i.k == MARK) {
                    insn.k = own;
                }
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
                    let errno = || *libc::__errno_location();
                    if libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0) != -1
                        || errno() != libc::EPERM
                    {
                        return 20;
                    }
                    if libc::syscall(libc::SYS_clone, libc::SIGCHLD, 0, 0, 0, 0) != -1
                        || errno() != libc::EPERM
                    {
                        return 21;
                    }
                    if libc::syscall(libc::SYS_clone3, 0, 0) != -1 || errno() != libc::ENOSYS {
                        return 22;
                    }
                    if libc::kill(1, 0) != -1 || errno() != libc::EPERM {
                        return 23;
                    }
                    if libc::kill(own as i32, 0) != 0 {
                        return 30;
                    }
                    if libc::write(fds[1], b"ok".as_ptr().cast(), 2) != 2 {
                        return 31;
                    }
                    0
                })();
                libc::_exit(code);
            }
            let mut status = 0;
            assert_eq!(libc::waitpid(child, &mut status, 0), child);
            assert!(libc::WIFEXITED(status), "child died: {status:#x}");
            assert_eq!(libc::WEXITSTATUS(status), 0, "probe failed at a step");
            libc::close(fds[0]);
            libc::close(fds[1]);
        }
    }
}
