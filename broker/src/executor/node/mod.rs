//! The Node (V8) executor backend, as seen from inside the child: the confinement the launcher
//! applies before it executes node, and the JavaScript that node runs (`runner.js`, which
//! loads the same `prelude.js` and `clone-codec.js` as QuickJS).
//!
//! `foresight-broker node-sandbox [options] -- <node arguments>` is the launcher
//! ([`launch`]). It is started by the broker (`crate::node`) with an empty environment and
//! stdin/stdout piped, and, still single-threaded, in this order:
//!
//! 1. joins the child's cgroups (memory, pids, cpu) by writing itself into them;
//! 2. starts a session of its own and unshares a network and an IPC namespace (as root), or
//!    a user namespace with them (otherwise), so the child has no network interface but an
//!    unconfigured loopback and no System V IPC shared with anyone;
//! 3. as root, drops to `nobody` (uid/gid 65534, no supplementary groups, no capabilities);
//! 4. sets `PR_SET_NO_NEW_PRIVS` and rlimits (no core files, no file writes, few fds);
//! 5. restricts itself with Landlock ([`landlock`]): read-only access to the files node
//!    needs, TCP denied, signals and abstract sockets scoped;
//! 6. installs the seccomp filter ([`seccomp`]);
//! 7. closes every other descriptor and executes node with an empty environment.
//!
//! Each step is a [`Layer`]. A layer named with `--require` that cannot be applied ends the
//! launcher with [`EXIT_LAYER_MISSING`] and a line on stderr, so a child never runs weaker
//! than the broker announced. With `--probe` the launcher applies every layer it can and,
//! instead of executing node, tries what a hostile script would (open a file, a socket, a
//! process, a signal to its parent) and prints one line per layer: what `doctor` shows.
//!
//! What is not done here, because a process cannot do it to itself: the CPU watchdog on the
//! child's CPU clock and killing the whole cgroup at lease end, both in the broker.

pub mod landlock;
pub mod seccomp;

use std::ffi::{CString, OsString};
use std::io::Write;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The launcher could not apply a layer it was told to require.
pub const EXIT_LAYER_MISSING: u8 = 4;

/// The unprivileged user a root broker's children run as.
const NOBODY: libc::uid_t = 65534;

/// Descriptors a child may hold: node opens a few dozen (epoll, eventfds, pipes, libraries).
const MAX_FDS: u64 = 128;

/// One isolation layer of a Node child.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Layer {
    /// node starts with no environment variables (no secrets of the broker's).
    EmptyEnvironment,
    /// An unprivileged user namespace (needed for the network namespace when not root).
    UserNamespace,
    /// A network namespace of its own: no interface but a loopback that is down.
    NetworkNamespace,
    /// Root's children run as `nobody`, without capabilities.
    Unprivileged,
    /// Landlock: only node, its libraries, ld.so.cache and openssl.cnf, read-only.
    LandlockFiles,
    /// Landlock ABI >= 4: no TCP bind or connect.
    LandlockTcp,
    /// Landlock ABI >= 6: no signals or abstract unix sockets outside the child's own domain.
    LandlockScope,
    /// The seccomp filter: no sockets, processes, ptrace, mounts or namespaces.
    Seccomp,
    /// cgroup memory limit (an over-limit child is killed by the kernel).
    CgroupMemory,
    /// cgroup pids limit (a fork bomb stops at it even without seccomp).
    CgroupPids,
    /// cgroup CPU limit (at most one core per child, weighted by its lease).
    CgroupCpu,
    /// The broker's watchdog on the child's CPU clock.
    CpuWatchdog,
}

impl Layer {
    pub const ALL: [Layer; 12] = [
        Layer::EmptyEnvironment,
        Layer::UserNamespace,
        Layer::NetworkNamespace,
        Layer::Unprivileged,
        Layer::LandlockFiles,
        Layer::LandlockTcp,
        Layer::LandlockScope,
        Layer::Seccomp,
        Layer::CgroupMemory,
        Layer::CgroupPids,
        Layer::CgroupCpu,
        Layer::CpuWatchdog,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Layer::EmptyEnvironment => "empty-environment",
            Layer::UserNamespace => "user-namespace",
            Layer::NetworkNamespace => "network-namespace",
            Layer::Unprivileged => "unprivileged-user",
            Layer::LandlockFiles => "landlock-files",
            Layer::LandlockTcp => "landlock-tcp",
            Layer::LandlockScope => "landlock-scope",
            Layer::Seccomp => "seccomp",
            Layer::CgroupMemory => "cgroup-memory",
            Layer::CgroupPids => "cgroup-pids",
            Layer::CgroupCpu => "cgroup-cpu",
            Layer::CpuWatchdog => "cpu-watchdog",
        }
    }

    pub fn from_name(name: &str) -> Option<Layer> {
        Layer::ALL.into_iter().find(|l| l.name() == name)
    }

    /// Whether the layer is the launcher's to apply (the others are the broker's).
    pub fn in_launcher(self) -> bool {
        !matches!(
            self,
            Layer::CgroupMemory | Layer::CgroupPids | Layer::CgroupCpu | Layer::CpuWatchdog
        )
    }
}

/// What the launcher was told to do.
#[derive(Debug, Clone, Default)]
pub struct LaunchOptions {
    pub node: PathBuf,
    /// `cgroup.procs` files to write this process into.
    pub cgroup_procs: Vec<PathBuf>,
    /// Files node may read.
    pub read: Vec<PathBuf>,
    /// Files node may read and execute (node itself, the dynamic loader).
    pub exec: Vec<PathBuf>,
    pub require: Vec<Layer>,
    pub probe: bool,
    pub node_args: Vec<OsString>,
}

/// The outcome of one layer in this launcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Applied(String),
    /// Not needed here (a user namespace for a root broker), with why.
    NotNeeded(String),
    Missing(String),
}

fn note(text: &str) {
    eprintln!(
        "foresight-broker node-sandbox[{}]: {text}",
        std::process::id()
    );
}

fn errno() -> std::io::Error {
    std::io::Error::last_os_error()
}

/// Entry point of `foresight-broker node-sandbox`.
pub fn launch(options: LaunchOptions) -> ExitCode {
    let mut outcomes: Vec<(Layer, Outcome)> = Vec::new();
    let mut record = |layer: Layer, outcome: Outcome| outcomes.push((layer, outcome));

    // 1. cgroups, while still privileged enough to write there.
    for procs in &options.cgroup_procs {
        if let Err(e) = std::fs::write(procs, b"0") {
            note(&format!("cannot join {}: {e}", procs.display()));
            if !options.probe {
                return ExitCode::from(EXIT_LAYER_MISSING);
            }
        }
    }

    // 2. session and namespaces.
    // SAFETY: plain system calls with constant arguments on this single-threaded process.
    let root = unsafe { libc::geteuid() } == 0;
    unsafe {
        libc::setsid();
    }
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    if root {
        record(
            Layer::UserNamespace,
            Outcome::NotNeeded("the broker is root".into()),
        );
        // SAFETY: see above.
        if unsafe { libc::unshare(libc::CLONE_NEWNET | libc::CLONE_NEWIPC) } == 0 {
            record(Layer::NetworkNamespace, Outcome::Applied(String::new()));
        } else {
            record(
                Layer::NetworkNamespace,
                Outcome::Missing(format!("unshare: {}", errno())),
            );
        }
    } else {
        // SAFETY: see above.
        if unsafe { libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNET | libc::CLONE_NEWIPC) }
            == 0
        {
            // Keep our own ids inside, so files stay readable as before.
            let mapped = std::fs::write("/proc/self/setgroups", b"deny")
                .and_then(|()| std::fs::write("/proc/self/uid_map", format!("{uid} {uid} 1")))
                .and_then(|()| std::fs::write("/proc/self/gid_map", format!("{gid} {gid} 1")));
            match mapped {
                Ok(()) => record(Layer::UserNamespace, Outcome::Applied(String::new())),
                Err(e) => record(
                    Layer::UserNamespace,
                    Outcome::Missing(format!("id map: {e}")),
                ),
            }
            record(Layer::NetworkNamespace, Outcome::Applied(String::new()));
        } else {
            let e = errno();
            record(
                Layer::UserNamespace,
                Outcome::Missing(format!("unshare(CLONE_NEWUSER): {e}")),
            );
            record(
                Layer::NetworkNamespace,
                Outcome::Missing("needs root or a user namespace".into()),
            );
        }
    }

    // 3. privileges.
    if root {
        // SAFETY: see above; the order (groups, gid, uid) is the one that can succeed.
        let dropped = unsafe {
            libc::setgroups(0, std::ptr::null()) == 0
                && libc::setresgid(NOBODY, NOBODY, NOBODY) == 0
                && libc::setresuid(NOBODY, NOBODY, NOBODY) == 0
        };
        record(
            Layer::Unprivileged,
            if dropped {
                Outcome::Applied(format!("uid {NOBODY}"))
            } else {
                Outcome::Missing(format!("cannot drop to uid {NOBODY}: {}", errno()))
            },
        );
    } else {
        record(
            Layer::Unprivileged,
            Outcome::NotNeeded(format!("the broker runs as uid {uid}")),
        );
    }

    // 4. no new privileges, rlimits.
    // SAFETY: see above.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        note(&format!("PR_SET_NO_NEW_PRIVS: {}", errno()));
        return ExitCode::from(EXIT_LAYER_MISSING);
    }
    set_rlimits();

    // 5. Landlock.
    let mut grants: Vec<landlock::Grant<'_>> = options
        .read
        .iter()
        .map(|p| landlock::Grant {
            path: p,
            execute: false,
        })
        .collect();
    grants.push(landlock::Grant {
        path: &options.node,
        execute: true,
    });
    grants.extend(options.exec.iter().map(|p| landlock::Grant {
        path: p,
        execute: true,
    }));
    match landlock::restrict_self(&grants) {
        Ok(applied) => {
            record(
                Layer::LandlockFiles,
                Outcome::Applied(format!("ABI {}", applied.abi)),
            );
            record(
                Layer::LandlockTcp,
                if applied.tcp {
                    Outcome::Applied(String::new())
                } else {
                    Outcome::Missing(format!("ABI {} < {}", applied.abi, landlock::ABI_TCP))
                },
            );
            record(
                Layer::LandlockScope,
                if applied.scoped {
                    Outcome::Applied(String::new())
                } else {
                    Outcome::Missing(format!("ABI {} < {}", applied.abi, landlock::ABI_SCOPE))
                },
            );
        }
        Err(e) => {
            for layer in [
                Layer::LandlockFiles,
                Layer::LandlockTcp,
                Layer::LandlockScope,
            ] {
                record(layer, Outcome::Missing(e.clone()));
            }
        }
    }

    // 6. seccomp.
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() } as u32;
    record(
        Layer::Seccomp,
        match super::sandbox::install_filter(&seccomp::program(pid)) {
            Ok(()) => Outcome::Applied(String::new()),
            Err(e) => Outcome::Missing(e),
        },
    );
    record(Layer::EmptyEnvironment, Outcome::Applied(String::new()));

    if options.probe {
        return probe(&outcomes, &options);
    }
    for (layer, outcome) in &outcomes {
        if let Outcome::Missing(why) = outcome
            && options.require.contains(layer)
        {
            note(&format!(
                "required layer {} is missing: {why}",
                layer.name()
            ));
            return ExitCode::from(EXIT_LAYER_MISSING);
        }
    }

    // 7. close everything else and become node.
    // SAFETY: closes descriptors 3 and up of this process; std holds none we use later.
    unsafe {
        libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
    }
    let program = match CString::new(options.node.as_os_str().as_bytes()) {
        Ok(p) => p,
        Err(_) => return ExitCode::from(EXIT_LAYER_MISSING),
    };
    let mut argv: Vec<CString> = vec![program.clone()];
    for arg in options.node_args {
        match CString::new(arg.into_vec()) {
            Ok(a) => argv.push(a),
            Err(_) => return ExitCode::from(EXIT_LAYER_MISSING),
        }
    }
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let envp: [*const libc::c_char; 1] = [std::ptr::null()];
    // SAFETY: NUL-terminated argument and (empty) environment vectors that outlive the call.
    unsafe {
        libc::execve(program.as_ptr(), argv_ptrs.as_ptr(), envp.as_ptr());
    }
    note(&format!(
        "cannot execute {}: {}",
        options.node.display(),
        errno()
    ));
    ExitCode::from(EXIT_LAYER_MISSING)
}

fn set_rlimits() {
    #[cfg(target_env = "gnu")]
    type Resource = libc::__rlimit_resource_t;
    #[cfg(not(target_env = "gnu"))]
    type Resource = libc::c_int;
    let limits: [(Resource, u64); 3] = [
        (libc::RLIMIT_CORE, 0),
        (libc::RLIMIT_FSIZE, 0),
        (libc::RLIMIT_NOFILE, MAX_FDS),
    ];
    for (resource, value) in limits {
        let limit = libc::rlimit {
            rlim_cur: value as libc::rlim_t,
            rlim_max: value as libc::rlim_t,
        };
        // SAFETY: a valid rlimit for the duration of the call.
        if unsafe { libc::setrlimit(resource, &limit) } != 0 {
            note(&format!("setrlimit: {}", errno()));
        }
    }
}

/// `--probe`: what each layer achieved, checked by trying what it should stop, one line per
/// layer on stdout: `<layer>\t<applied|not-needed|missing>\t<detail>`.
fn probe(outcomes: &[(Layer, Outcome)], options: &LaunchOptions) -> ExitCode {
    let mut lines = String::new();
    for layer in Layer::ALL.into_iter().filter(|l| l.in_launcher()) {
        let outcome = outcomes
            .iter()
            .find(|(l, _)| *l == layer)
            .map(|(_, o)| o.clone())
            .unwrap_or(Outcome::Missing("not attempted".into()));
        let (status, mut detail) = match outcome {
            Outcome::Applied(d) => ("applied", d),
            Outcome::NotNeeded(d) => ("not-needed", d),
            Outcome::Missing(d) => ("missing", d),
        };
        if status == "applied"
            && let Some(check) = check(layer, options)
        {
            if !detail.is_empty() {
                detail.push_str("; ");
            }
            detail.push_str(&check);
        }
        lines.push_str(&format!("{}\t{status}\t{detail}\n", layer.name()));
    }
    let mut out = std::io::stdout().lock();
    if out
        .write_all(lines.as_bytes())
        .and_then(|()| out.flush())
        .is_err()
    {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// What a hostile script would get, for the probe's report.
fn check(layer: Layer, options: &LaunchOptions) -> Option<String> {
    let outcome = |rc: libc::c_long| {
        if rc < 0 {
            format!("refused: {}", errno())
        } else {
            "NOT refused".to_string()
        }
    };
    // SAFETY: each probe is one system call on constant or local arguments.
    unsafe {
        match layer {
            Layer::LandlockFiles => {
                let rc = libc::open(c"/etc/passwd".as_ptr(), libc::O_RDONLY) as libc::c_long;
                let node_ok = CString::new(options.node.as_os_str().as_bytes())
                    .map(|p| libc::open(p.as_ptr(), libc::O_RDONLY) >= 0)
                    .unwrap_or(false);
                Some(format!(
                    "open /etc/passwd: {}; node readable: {node_ok}",
                    outcome(rc)
                ))
            }
            Layer::Seccomp => {
                let rc = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0) as libc::c_long;
                let fork = libc::syscall(libc::SYS_clone, libc::SIGCHLD, 0, 0, 0, 0);
                if fork == 0 {
                    libc::_exit(0);
                }
                Some(format!(
                    "unix socket: {}; fork: {}",
                    outcome(rc),
                    outcome(fork)
                ))
            }
            Layer::LandlockScope => {
                let rc = libc::kill(libc::getppid(), 0) as libc::c_long;
                Some(format!("signal to the broker: {}", outcome(rc)))
            }
            _ => None,
        }
    }
}

/// Files node needs to start, from `node` itself: the dynamic loader and the libraries it
/// would map (as `ldd` lists them, by asking the loader), `ld.so.cache` and OpenSSL's
/// configuration. Returns `(read, exec)`.
pub fn node_files(node: &Path) -> std::io::Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let output = std::process::Command::new(node)
        .env_clear()
        .env("LD_TRACE_LOADED_OBJECTS", "1")
        .stdin(std::process::Stdio::null())
        .output()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let mut read = Vec::new();
    let mut exec = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)"
        let (path, loader) = match line.split_once("=>") {
            Some((_, rest)) => (rest.trim(), false),
            None => (line, true),
        };
        let path = path.split(" (").next().unwrap_or("").trim();
        if !path.starts_with('/') {
            continue;
        }
        let path = PathBuf::from(path);
        for p in [path.clone(), std::fs::canonicalize(&path).unwrap_or(path)] {
            let list = if loader { &mut exec } else { &mut read };
            if !list.contains(&p) {
                list.push(p);
            }
        }
    }
    for candidate in [
        "/etc/ld.so.cache",
        "/etc/ssl/openssl.cnf",
        "/usr/lib/ssl/openssl.cnf",
        "/usr/local/ssl/openssl.cnf",
    ] {
        let p = PathBuf::from(candidate);
        if p.exists() {
            read.push(std::fs::canonicalize(&p).unwrap_or(p));
        }
    }
    Ok((read, exec))
}

/// `os` as a lossless command-line value.
pub fn arg(path: &Path) -> OsString {
    path.as_os_str().to_owned()
}
