//! Classic BPF for seccomp filters, shared by the two executors' filters (QuickJS's in
//! `sandbox.rs`, Node's in `node/seccomp.rs`): the instruction builders, the offsets into
//! `struct seccomp_data`, and the prologue every filter starts with.

use libc::{
    BPF_ABS, BPF_JEQ, BPF_JGE, BPF_JMP, BPF_K, BPF_LD, BPF_RET, BPF_W, SECCOMP_RET_KILL_PROCESS,
    sock_filter,
};

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7;

// struct seccomp_data: nr at 0, arch at 4, args[i] at 16 + 8 * i (low half, little-endian).
pub const NR: u32 = 0;
const ARCH: u32 = 4;
pub const ARG0: u32 = 16;
pub const ARG1: u32 = 24;

pub fn stmt(code: u32, k: u32) -> sock_filter {
    sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    }
}

pub fn jump(code: u32, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    }
}

/// Kills the process on another architecture's system calls, answers `x32` ones (another ABI
/// on x86_64, nr | 0x40000000) with `foreign`, and leaves the system call's number loaded.
pub fn prologue(foreign: u32) -> Vec<sock_filter> {
    let mut p = vec![
        stmt(BPF_LD | BPF_W | BPF_ABS, ARCH),
        jump(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH, 1, 0),
        stmt(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        stmt(BPF_LD | BPF_W | BPF_ABS, NR),
    ];
    #[cfg(target_arch = "x86_64")]
    p.extend([
        jump(BPF_JMP | BPF_JGE | BPF_K, 0x4000_0000, 0, 1),
        stmt(BPF_RET | BPF_K, foreign),
    ]);
    #[cfg(not(target_arch = "x86_64"))]
    let _ = foreign;
    p
}

/// Answers each system call in `nrs` with `ret` (the number must be loaded).
pub fn answer_each(p: &mut Vec<sock_filter>, nrs: &[libc::c_long], ret: u32) {
    for &nr in nrs {
        p.push(jump(BPF_JMP | BPF_JEQ | BPF_K, nr as u32, 0, 1));
        p.push(stmt(BPF_RET | BPF_K, ret));
    }
}
