//! The Node (V8) executor backend, broker side: finding node, checking at start-up which
//! isolation layers this host provides ([`Detection`], what `foresight-broker doctor` prints),
//! and a pool of pre-started, confined, single-use children ([`NodeBackend::take`]).
//!
//! A child is the launcher (`foresight-broker node-sandbox`, see `crate::executor::node`)
//! that confines itself and becomes node, running `runner.js`. The pool keeps a few of them
//! booted (the worker's world built, `ready` received) so a worker starts by writing its
//! `start` frame: about a millisecond instead of the ~40 ms of a cold node. A child runs one
//! worker and is killed with its whole cgroup at the end of it; nothing is ever reused across
//! leases.
//!
//! The broker enables the backend only when every layer it detects is present, unless the
//! operator accepts the weaker setup (`node.accept_weaker_sandbox`); a missing layer is then
//! logged, shown by `doctor` and in the metrics. Without node, or disabled, QuickJS serves
//! every worker as before.

pub mod cgroup;
pub mod doctor;
mod pool;
pub(crate) mod watchdog;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};

use foresight_shared::framing::encode_frame;
use foresight_shared::limits::EXECUTOR_MAX_FRAME;
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::executor::node::{Layer, node_files};
use cgroup::{Cgroups, ChildCgroup};

pub use pool::NodeChild;
pub use watchdog::process_cpu;

/// The oldest node whose V8 and APIs the runner relies on.
pub const MIN_NODE_MAJOR: u32 = 20;

/// Memory a Node child needs beyond the lease's: node, V8's heaps at rest and the runner
/// (measured: about 41 MB resident when idle). The cgroup limit is the lease's memory plus
/// this, so a lease's memory means the same to the script on both engines.
pub const NODE_BASE_MEMORY: u64 = 96 * 1024 * 1024;

/// The cgroup memory limit of a child waiting in the pool.
const IDLE_MEMORY: u64 = 256 * 1024 * 1024;

/// Processes and threads a child may have (node starts about a dozen threads).
const MAX_PIDS: u64 = 64;

/// The runner, with the files it loads.
const RUNNER: &str = include_str!("../executor/node/runner.js");
const PRELUDE: &str = include_str!("../executor/prelude.js");
const CODEC: &str = include_str!("../../../extension/src/clone-codec.js");

/// What node runs (`-e`): read the boot frame from stdin, then hand over to the runner.
///
/// The runner, codec and prelude are compiled eagerly (`--no-lazy` while they load): V8
/// otherwise compiles each function at its first call, and the first calls are on the path
/// from `start` to `started`, while the client waits (about 0.3 ms of the ~1.3 ms a booted
/// child took to start a worker). The worker's own script is compiled lazily, as a browser
/// would: eager compilation of a large library costs more than it saves.
const BOOTSTRAP: &str = "'use strict';const fs=require('fs');const v8=require('v8');\
function r(n){const b=Buffer.alloc(n);let o=0;while(o<n){let k;try{k=fs.readSync(0,b,o,n-o,null)}\
catch(e){if(e.code==='EAGAIN')continue;throw e}if(k===0)process.exit(0);o+=k}return b}\
const n=r(4).readUInt32LE(0);const boot=JSON.parse(r(n).toString('utf8'));\
v8.setFlagsFromString('--no-lazy');\
require('vm').runInThisContext(boot.runner,{filename:'foresight:node-runner.js'})(require,boot);\
v8.setFlagsFromString('--lazy');";

/// Whether and how to run workers on Node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NodeMode {
    /// Never.
    Off,
    /// When node is found and every isolation layer is present (the default).
    #[default]
    Auto,
    /// Always: refuse to start without node or with a missing layer (unless accepted).
    On,
}

/// The operator's Node settings (`[node]` in the TOML file, `--node*` flags).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSettings {
    pub mode: NodeMode,
    /// The node binary; default: `node` on `PATH`.
    pub path: Option<PathBuf>,
    /// Run Node workers even when an isolation layer is missing on this host.
    pub accept_weaker_sandbox: bool,
    /// Children kept booted and waiting.
    pub pool_size: usize,
    /// Node workers at once, all clients together.
    pub max_workers: usize,
    /// A delegated cgroup v2 directory; default: found from /proc/self/cgroup.
    pub cgroup: Option<PathBuf>,
    /// V8's old-space ceiling, MiB (the cgroup limit is the real one).
    pub max_heap_mib: u64,
}

impl Default for NodeSettings {
    fn default() -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            mode: NodeMode::Auto,
            path: None,
            accept_weaker_sandbox: false,
            pool_size: 2,
            max_workers: cpus * 4,
            cgroup: None,
            max_heap_mib: 4096,
        }
    }
}

/// How one layer fares on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerStatus {
    pub layer: Layer,
    /// `applied`, `not-needed` or `missing`.
    pub status: String,
    pub detail: String,
}

impl LayerStatus {
    pub fn missing(&self) -> bool {
        self.status == "missing"
    }
}

/// What start-up found.
#[derive(Debug, Clone, Default)]
pub struct Detection {
    pub node: Option<PathBuf>,
    pub version: Option<String>,
    pub layers: Vec<LayerStatus>,
    /// Why the backend is off, when it is.
    pub problem: Option<String>,
}

/// The Node backend of a running broker.
pub struct NodeBackend {
    pub settings: NodeSettings,
    pub detection: Detection,
    node: PathBuf,
    launcher: PathBuf,
    read: Vec<PathBuf>,
    exec: Vec<PathBuf>,
    required: Vec<Layer>,
    cgroups: Cgroups,
    boot_frame: Vec<u8>,
    idle: Mutex<Vec<NodeChild>>,
    warming: AtomicUsize,
    /// Set by `drain`: no more children are booted.
    closed: AtomicBool,
    /// Notified whenever a booting child settles (for `drain`).
    settled: tokio::sync::Notify,
    /// Workers running now.
    pub(crate) live: AtomicUsize,
    /// Totals since start, for the metrics.
    pub(crate) started_warm: AtomicU64,
    pub(crate) started_cold: AtomicU64,
    pub(crate) cpu_kills: AtomicU64,
    pub(crate) oom_kills: AtomicU64,
    /// The largest peak memory of a finished child, bytes.
    pub(crate) peak_memory: AtomicU64,
}

impl std::fmt::Debug for NodeBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeBackend")
            .field("node", &self.node)
            .field("cgroups", &self.cgroups)
            .field("required", &self.required)
            .finish_non_exhaustive()
    }
}

/// `node` on `PATH`.
fn find_on_path() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("node"))
        .find(|p| p.is_file())
}

/// `node --version`, as `v20.20.2`.
fn node_version(node: &Path) -> Result<String, String> {
    let out = std::process::Command::new(node)
        .arg("--version")
        .env_clear()
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", node.display()))?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn major(version: &str) -> Option<u32> {
    version.strip_prefix('v')?.split('.').next()?.parse().ok()
}

impl NodeBackend {
    /// Finds node and checks every layer on this host. `Ok(None)`: the backend is off (mode
    /// `off`, or `auto` with node or a layer missing: the detection says why); `Err`: mode
    /// `on` and it cannot be enabled. `launcher` is this broker's own binary.
    pub fn detect(
        settings: NodeSettings,
        launcher: &Path,
    ) -> Result<(Option<Arc<NodeBackend>>, Detection), String> {
        let mut detection = Detection::default();
        if settings.mode == NodeMode::Off {
            detection.problem = Some("disabled by configuration".into());
            return Ok((None, detection));
        }
        let result = Self::try_detect(&settings, launcher, &mut detection);
        match result {
            Ok(backend) => Ok((Some(Arc::new(backend)), detection)),
            Err(problem) => {
                detection.problem = Some(problem.clone());
                if settings.mode == NodeMode::On {
                    Err(format!("the Node backend cannot be enabled: {problem}"))
                } else {
                    Ok((None, detection))
                }
            }
        }
    }

    fn try_detect(
        settings: &NodeSettings,
        launcher: &Path,
        detection: &mut Detection,
    ) -> Result<NodeBackend, String> {
        let node = settings
            .path
            .clone()
            .or_else(find_on_path)
            .ok_or("no node binary found (set node.path or put node on PATH)")?;
        let node =
            std::fs::canonicalize(&node).map_err(|e| format!("node at {}: {e}", node.display()))?;
        detection.node = Some(node.clone());
        let version = node_version(&node)?;
        detection.version = Some(version.clone());
        match major(&version) {
            Some(m) if m >= MIN_NODE_MAJOR => {}
            _ => {
                return Err(format!(
                    "{} is node {version:?}; Node {MIN_NODE_MAJOR} or newer is needed",
                    node.display()
                ));
            }
        }
        let (read, exec) =
            node_files(&node).map_err(|e| format!("cannot list node's libraries: {e}"))?;
        let cgroups = Cgroups::detect(settings.cgroup.as_deref());
        let probe_cgroup = cgroups.as_ref().ok().and_then(|c| c.create(MAX_PIDS).ok());
        let mut layers = probe(launcher, &node, &read, &exec, probe_cgroup.as_ref())?;
        if let Some(c) = &probe_cgroup {
            c.remove();
        }
        let (mem, pids, cpu, where_) = match &cgroups {
            Ok(c) => (c.has_memory(), c.has_pids(), c.has_cpu(), c.describe()),
            Err(e) => (false, false, false, e.clone()),
        };
        for (layer, ok) in [
            (Layer::CgroupMemory, mem),
            (Layer::CgroupPids, pids),
            (Layer::CgroupCpu, cpu),
        ] {
            layers.push(LayerStatus {
                layer,
                status: if ok { "applied" } else { "missing" }.into(),
                detail: where_.clone(),
            });
        }
        let clock_ok = process_cpu(std::process::id() as i32).is_some();
        layers.push(LayerStatus {
            layer: Layer::CpuWatchdog,
            status: if clock_ok { "applied" } else { "missing" }.into(),
            detail: "the broker reads the child's CPU clock".into(),
        });
        layers.push(LayerStatus {
            layer: Layer::EmptyEnvironment,
            status: "applied".into(),
            detail: "execve with no variables".into(),
        });
        layers.sort_by_key(|l| l.layer);
        layers.dedup_by_key(|l| l.layer);
        detection.layers = layers.clone();
        let missing: Vec<String> = layers
            .iter()
            .filter(|l| l.missing())
            .map(|l| format!("{} ({})", l.layer.name(), l.detail))
            .collect();
        if !missing.is_empty() && !settings.accept_weaker_sandbox {
            return Err(format!(
                "isolation layers missing on this host: {}; set node.accept_weaker_sandbox \
                 (--node-accept-weaker-sandbox) to run Node workers without them",
                missing.join(", ")
            ));
        }
        let cgroups = cgroups.map_err(|e| format!("no cgroups: {e}"))?;
        let required = layers
            .iter()
            .filter(|l| l.status == "applied" && l.layer.in_launcher())
            .map(|l| l.layer)
            .collect();
        let boot = serde_json::json!({"runner": RUNNER, "codec": CODEC, "prelude": PRELUDE});
        let boot_frame = encode_frame(boot.to_string().as_bytes(), EXECUTOR_MAX_FRAME)
            .map_err(|e| format!("boot frame: {e}"))?;
        Ok(NodeBackend {
            settings: settings.clone(),
            detection: detection.clone(),
            node,
            launcher: launcher.to_path_buf(),
            read,
            exec,
            required,
            cgroups,
            boot_frame,
            idle: Mutex::new(Vec::new()),
            warming: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            settled: tokio::sync::Notify::new(),
            live: AtomicUsize::new(0),
            started_warm: AtomicU64::new(0),
            started_cold: AtomicU64::new(0),
            cpu_kills: AtomicU64::new(0),
            oom_kills: AtomicU64::new(0),
            peak_memory: AtomicU64::new(0),
        })
    }

    /// The layers this host lacks (empty when the sandbox is complete).
    pub fn missing_layers(&self) -> Vec<Layer> {
        self.detection
            .layers
            .iter()
            .filter(|l| l.missing())
            .map(|l| l.layer)
            .collect()
    }

    /// Starts a confined child: its cgroup made and joined, node started on the runner.
    /// The boot frame is the caller's to write ([`NodeBackend::boot_frame`]).
    fn launch(&self) -> std::io::Result<(Child, ChildStdin, ChildStdout, ChildCgroup)> {
        let args = [
            "--no-warnings".to_string(),
            "--experimental-vm-modules".to_string(),
            format!("--max-old-space-size={}", self.settings.max_heap_mib),
            "-e".to_string(),
            BOOTSTRAP.to_string(),
        ];
        self.launch_with(&args)
    }

    /// Starts node with `node_args` inside the complete sandbox of a child (cgroup, namespaces,
    /// Landlock, seccomp, empty environment), stdin and stdout piped: what the attack matrix
    /// runs its attacks in, with Node's whole API, as a script that escaped the worker's world.
    pub fn launch_with(
        &self,
        node_args: &[String],
    ) -> std::io::Result<(Child, ChildStdin, ChildStdout, ChildCgroup)> {
        let cgroup = self.cgroups.create(MAX_PIDS)?;
        cgroup.set_memory(IDLE_MEMORY)?;
        cgroup.set_cpu(1000)?;
        let mut command = Command::new(&self.launcher);
        command.arg("node-sandbox").arg("--node").arg(&self.node);
        for procs in cgroup.procs_files() {
            command.arg("--cgroup-procs").arg(procs);
        }
        for p in &self.read {
            command.arg("--read").arg(p);
        }
        for p in &self.exec {
            command.arg("--exec").arg(p);
        }
        if !self.required.is_empty() {
            let names: Vec<&str> = self.required.iter().map(|l| l.name()).collect();
            command.arg("--require").arg(names.join(","));
        }
        command
            .arg("--")
            .args(node_args)
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(e) => {
                cgroup.remove();
                return Err(e);
            }
        };
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            cgroup.kill_all();
            return Err(std::io::Error::other("node child started without pipes"));
        };
        Ok((child, stdin, stdout, cgroup))
    }

    /// The frame that boots a child's runner (its first input).
    pub fn boot_frame(&self) -> &[u8] {
        &self.boot_frame
    }

    /// Children waiting in the pool now.
    pub fn idle(&self) -> usize {
        self.idle.lock().map_or(0, |i| i.len())
    }
}

/// Runs the launcher in probe mode and reads its report.
fn probe(
    launcher: &Path,
    node: &Path,
    read: &[PathBuf],
    exec: &[PathBuf],
    cgroup: Option<&ChildCgroup>,
) -> Result<Vec<LayerStatus>, String> {
    let mut command = std::process::Command::new(launcher);
    command
        .arg("node-sandbox")
        .arg("--probe")
        .arg("--node")
        .arg(node);
    if let Some(c) = cgroup {
        for procs in c.procs_files() {
            command.arg("--cgroup-procs").arg(procs);
        }
    }
    for p in read {
        command.arg("--read").arg(p);
    }
    for p in exec {
        command.arg("--exec").arg(p);
    }
    let out = command
        .env_clear()
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run the sandbox probe {}: {e}", launcher.display()))?;
    if !out.status.success() {
        return Err(format!("the sandbox probe failed: {}", out.status));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text
        .lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, '\t');
            let layer = Layer::from_name(parts.next()?)?;
            Some(LayerStatus {
                layer,
                status: parts.next()?.to_string(),
                detail: parts.next().unwrap_or("").to_string(),
            })
        })
        .collect())
}
