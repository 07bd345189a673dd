//! cgroups for Node children: one cgroup per child, under a subtree the broker owns, with a
//! memory, a pids and a CPU limit, killed as a whole at the end of the child's lease.
//!
//! cgroup v2 is the target: a delegated subtree (the broker's own cgroup, or a directory the
//! operator names with `node.cgroup`) where `memory`, `pids` and `cpu` can be enabled for
//! children. The broker creates `foresight-<pid>` there (moving itself into a leaf first
//! when its own cgroup must stay free of processes), each child gets `w<n>` under it, and a
//! lease's end writes `cgroup.kill`.
//!
//! Where the host mounts the v1 hierarchies instead (this is what some container hosts still
//! offer), the same layout is made in each of the `memory`, `pids` and `cpu` hierarchies,
//! under the broker's own cgroup in each, and a lease's end SIGKILLs every process listed in
//! the child's `cgroup.procs` until none is left (v1 has no `cgroup.kill`; the child cannot
//! fork, so nothing races the loop).
//!
//! Out-of-memory kills are read back from `memory.events` (v2) or `memory.oom_control` (v1),
//! so a child the kernel killed for memory is reported as `memory_limit`, not a crash.
//!
//! A broker that dies without shutting down leaves its (empty) subtree behind; the next
//! detection removes the subtrees of brokers whose pid is gone.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Which hierarchy the controllers live in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Version {
    V2,
    V1,
}

/// The broker's subtree: where each controller's child cgroups are made.
#[derive(Debug)]
pub struct Cgroups {
    pub version: Version,
    /// v2: one directory with every controller; v1: one per hierarchy.
    memory: Option<PathBuf>,
    pids: Option<PathBuf>,
    cpu: Option<PathBuf>,
    next: AtomicU64,
}

/// One child's cgroup(s).
#[derive(Debug)]
pub struct ChildCgroup {
    version: Version,
    memory: Option<PathBuf>,
    pids: Option<PathBuf>,
    cpu: Option<PathBuf>,
}

/// Where each mounted hierarchy is, from /proc/self/mountinfo: (fs type, super options,
/// root inside the hierarchy, mount point).
fn mounts() -> Vec<(String, String, String, PathBuf)> {
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let fields: Vec<&str> = left.split(' ').collect();
            let right: Vec<&str> = right.split(' ').collect();
            Some((
                right.first()?.to_string(),
                right.get(2).unwrap_or(&"").to_string(),
                fields.get(3)?.to_string(),
                PathBuf::from(fields.get(4)?),
            ))
        })
        .collect()
}

/// The directory of this process's cgroup in the hierarchy mounted at `mount` with `root`.
fn own_dir(mount: &Path, root: &str, path: &str) -> PathBuf {
    let rel = path
        .strip_prefix(root)
        .unwrap_or(path)
        .trim_start_matches('/');
    mount.join(rel)
}

impl Cgroups {
    /// Finds a usable hierarchy and makes the broker's subtree in it. `configured`: a
    /// delegated v2 directory the operator chose.
    pub fn detect(configured: Option<&Path>) -> Result<Self, String> {
        // Unique per detection: several brokers may live in one process (tests).
        static DETECTIONS: AtomicU64 = AtomicU64::new(0);
        let tag = format!(
            "foresight-{}-{}-{}",
            pid_namespace(),
            std::process::id(),
            DETECTIONS.fetch_add(1, Ordering::Relaxed)
        );
        if let Some(dir) = configured {
            return Self::v2_in(dir, &tag);
        }
        let own = fs::read_to_string("/proc/self/cgroup")
            .map_err(|e| format!("cannot read /proc/self/cgroup: {e}"))?;
        let mounts = mounts();
        // v2, when it has the controllers.
        if let Some(path) = own.lines().find_map(|l| l.strip_prefix("0::"))
            && let Some((_, _, root, mount)) = mounts.iter().find(|m| m.0 == "cgroup2")
        {
            let dir = own_dir(mount, root, path);
            let controllers =
                fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
            if ["memory", "pids", "cpu"]
                .iter()
                .all(|c| controllers.split_whitespace().any(|x| x == *c))
            {
                return Self::v2_in(&dir, &tag);
            }
        }
        // v1: one hierarchy per controller.
        let find = |controller: &str| -> Option<PathBuf> {
            let path = own.lines().find_map(|l| {
                let mut parts = l.splitn(3, ':');
                let _id = parts.next()?;
                let names = parts.next()?;
                let path = parts.next()?;
                names
                    .split(',')
                    .any(|n| n == controller)
                    .then(|| path.to_string())
            })?;
            let (_, _, root, mount) = mounts
                .iter()
                .find(|m| m.0 == "cgroup" && m.1.split(',').any(|o| o == controller))?;
            let parent = own_dir(mount, root, &path);
            remove_stale(&parent);
            let base = parent.join(&tag);
            fs::create_dir_all(&base).ok()?;
            Some(base)
        };
        let cgroups = Self {
            version: Version::V1,
            memory: find("memory"),
            pids: find("pids"),
            cpu: find("cpu"),
            next: AtomicU64::new(1),
        };
        if cgroups.memory.is_none() && cgroups.pids.is_none() && cgroups.cpu.is_none() {
            return Err("no cgroup hierarchy with memory, pids or cpu is writable here".into());
        }
        Ok(cgroups)
    }

    /// v2 in `dir`: enable the controllers for its children (moving this process into a leaf
    /// first if `dir` holds processes, as the no-internal-processes rule requires).
    fn v2_in(dir: &Path, tag: &str) -> Result<Self, String> {
        let enable = |d: &Path| fs::write(d.join("cgroup.subtree_control"), "+memory +pids +cpu");
        if enable(dir).is_err() {
            let leaf = dir.join("foresight-broker");
            fs::create_dir_all(&leaf)
                .and_then(|()| fs::write(leaf.join("cgroup.procs"), b"0"))
                .and_then(|()| enable(dir))
                .map_err(|e| format!("cannot delegate {}: {e}", dir.display()))?;
        }
        remove_stale(dir);
        let base = dir.join(tag);
        fs::create_dir_all(&base)
            .and_then(|()| enable(&base))
            .map_err(|e| format!("cannot make {}: {e}", base.display()))?;
        Ok(Self {
            version: Version::V2,
            memory: Some(base.clone()),
            pids: Some(base.clone()),
            cpu: Some(base),
            next: AtomicU64::new(1),
        })
    }

    pub fn has_memory(&self) -> bool {
        self.memory.is_some()
    }
    pub fn has_pids(&self) -> bool {
        self.pids.is_some()
    }
    pub fn has_cpu(&self) -> bool {
        self.cpu.is_some()
    }

    /// Where the subtree is, for `doctor`.
    pub fn describe(&self) -> String {
        let show = |p: &Option<PathBuf>| p.as_ref().map_or("-".into(), |p| p.display().to_string());
        match self.version {
            Version::V2 => format!("v2 at {}", show(&self.memory)),
            Version::V1 => format!(
                "v1: memory {}, pids {}, cpu {}",
                show(&self.memory),
                show(&self.pids),
                show(&self.cpu)
            ),
        }
    }

    /// A new, empty cgroup for one child, with its pids limit set.
    pub fn create(&self, max_pids: u64) -> io::Result<ChildCgroup> {
        let name = format!("w{}", self.next.fetch_add(1, Ordering::Relaxed));
        let make = |base: &Option<PathBuf>| -> io::Result<Option<PathBuf>> {
            match base {
                Some(base) => {
                    let dir = base.join(&name);
                    match fs::create_dir(&dir) {
                        Ok(()) => {}
                        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                        Err(e) => return Err(e),
                    }
                    Ok(Some(dir))
                }
                None => Ok(None),
            }
        };
        let child = match self.version {
            Version::V2 => {
                let dir = make(&self.memory)?;
                ChildCgroup {
                    version: Version::V2,
                    memory: dir.clone(),
                    pids: dir.clone(),
                    cpu: dir,
                }
            }
            Version::V1 => ChildCgroup {
                version: Version::V1,
                memory: make(&self.memory)?,
                pids: make(&self.pids)?,
                cpu: make(&self.cpu)?,
            },
        };
        if let Some(pids) = &child.pids {
            fs::write(pids.join("pids.max"), max_pids.to_string())?;
        }
        Ok(child)
    }
}

impl Drop for Cgroups {
    fn drop(&mut self) {
        let mut dirs = vec![&self.memory, &self.pids, &self.cpu];
        dirs.dedup();
        for dir in dirs.into_iter().flatten() {
            // Children first; each is empty once its processes are gone.
            if let Ok(entries) = fs::read_dir(dir) {
                for entry in entries.flatten() {
                    if entry.path().is_dir() {
                        let _ = fs::remove_dir(entry.path());
                    }
                }
            }
            let _ = fs::remove_dir(dir);
        }
    }
}

/// This process's pid namespace (the inode of `/proc/self/ns/pid`; 0 if unknown). A
/// hierarchy may be shared by several containers, each with its own pids: a subtree is only
/// judged by brokers of the namespace that named it.
fn pid_namespace() -> u64 {
    fs::read_link("/proc/self/ns/pid")
        .ok()
        .and_then(|link| {
            let text = link.to_string_lossy().into_owned();
            text.strip_prefix("pid:[")?.strip_suffix(']')?.parse().ok()
        })
        .unwrap_or(0)
}

/// Removes the subtrees (`foresight-<pid namespace>-<pid>-<n>`) that brokers which are gone
/// left in `parent`: one killed, or a test process that exited before its broker shut down.
/// Only subtrees named in this pid namespace are judged; only empty cgroups can be removed,
/// so nothing that still runs is touched; a live process with the same pid keeps its subtree.
fn remove_stale(parent: &Path) {
    remove_stale_in(parent, pid_namespace());
}

fn remove_stale_in(parent: &Path, namespace: u64) {
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let mut parts = name
            .to_str()
            .and_then(|n| n.strip_prefix("foresight-"))
            .map(|rest| rest.split('-'))
            .into_iter()
            .flatten();
        let (Some(ns), Some(pid)) = (
            parts.next().and_then(|p| p.parse::<u64>().ok()),
            parts.next().and_then(|p| p.parse::<u32>().ok()),
        ) else {
            continue;
        };
        if ns != namespace || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let dir = entry.path();
        if let Ok(children) = fs::read_dir(&dir) {
            for child in children.flatten() {
                if child.path().is_dir() {
                    let _ = fs::remove_dir(child.path());
                }
            }
        }
        let _ = fs::remove_dir(&dir);
    }
}

fn read_counter(file: &Path, key: &str) -> Option<u64> {
    let text = fs::read_to_string(file).ok()?;
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok())?
    })
}

impl ChildCgroup {
    /// The `cgroup.procs` files the launcher writes itself into.
    pub fn procs_files(&self) -> Vec<PathBuf> {
        let mut dirs = vec![&self.memory, &self.pids, &self.cpu];
        dirs.dedup();
        dirs.into_iter()
            .flatten()
            .map(|d| d.join("cgroup.procs"))
            .collect()
    }

    /// Memory the child may use, all of it (heap, array buffers, code, stacks); beyond it the
    /// kernel kills the child. No swap.
    pub fn set_memory(&self, bytes: u64) -> io::Result<()> {
        let Some(dir) = &self.memory else {
            return Ok(());
        };
        match self.version {
            Version::V2 => {
                fs::write(dir.join("memory.max"), bytes.to_string())?;
                let _ = fs::write(dir.join("memory.swap.max"), "0");
            }
            Version::V1 => {
                // memsw must stay >= the limit: lift it, set the limit, then match it.
                let memsw = dir.join("memory.memsw.limit_in_bytes");
                let _ = fs::write(&memsw, "-1");
                fs::write(dir.join("memory.limit_in_bytes"), bytes.to_string())?;
                let _ = fs::write(&memsw, bytes.to_string());
            }
        }
        Ok(())
    }

    /// At most one core, and a share of contended CPU proportional to the lease's millicores.
    pub fn set_cpu(&self, millicores: u64) -> io::Result<()> {
        let Some(dir) = &self.cpu else {
            return Ok(());
        };
        let millicores = millicores.clamp(10, 1000);
        match self.version {
            Version::V2 => {
                fs::write(dir.join("cpu.max"), "100000 100000")?;
                fs::write(dir.join("cpu.weight"), (millicores / 10).max(1).to_string())?;
            }
            Version::V1 => {
                fs::write(dir.join("cpu.cfs_period_us"), "100000")?;
                fs::write(dir.join("cpu.cfs_quota_us"), "100000")?;
                fs::write(
                    dir.join("cpu.shares"),
                    (millicores * 1024 / 1000).max(2).to_string(),
                )?;
            }
        }
        Ok(())
    }

    /// Whether the kernel killed a process here for memory.
    pub fn oom_killed(&self) -> bool {
        let Some(dir) = &self.memory else {
            return false;
        };
        let count = match self.version {
            Version::V2 => read_counter(&dir.join("memory.events"), "oom_kill"),
            Version::V1 => read_counter(&dir.join("memory.oom_control"), "oom_kill"),
        };
        count.unwrap_or(0) > 0
    }

    /// The most memory the child used, bytes, when the kernel keeps it.
    pub fn peak_memory(&self) -> Option<u64> {
        let dir = self.memory.as_ref()?;
        let file = match self.version {
            Version::V2 => dir.join("memory.peak"),
            Version::V1 => dir.join("memory.max_usage_in_bytes"),
        };
        fs::read_to_string(file).ok()?.trim().parse().ok()
    }

    /// Memory in use now, bytes.
    pub fn current_memory(&self) -> Option<u64> {
        let dir = self.memory.as_ref()?;
        let file = match self.version {
            Version::V2 => dir.join("memory.current"),
            Version::V1 => dir.join("memory.usage_in_bytes"),
        };
        fs::read_to_string(file).ok()?.trim().parse().ok()
    }

    /// Kills every process in the cgroup.
    pub fn kill_all(&self) {
        if self.version == Version::V2
            && let Some(dir) = &self.pids
            && fs::write(dir.join("cgroup.kill"), "1").is_ok()
        {
            return;
        }
        for procs in self.procs_files() {
            // Bounded: a child cannot create processes, so one pass normally empties it.
            for _ in 0..16 {
                let pids: Vec<i32> = fs::read_to_string(&procs)
                    .unwrap_or_default()
                    .lines()
                    .filter_map(|l| l.trim().parse().ok())
                    .collect();
                if pids.is_empty() {
                    break;
                }
                for pid in pids {
                    // SAFETY: kill has no memory effects; the pid is one the kernel listed.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
        }
    }

    /// Removes the (empty) cgroup directories; call once the processes are reaped.
    pub fn remove(&self) {
        let mut dirs = vec![&self.memory, &self.pids, &self.cpu];
        dirs.dedup();
        for dir in dirs.into_iter().flatten() {
            let _ = fs::remove_dir(dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_directories_are_found_under_their_mount() {
        assert_eq!(
            own_dir(Path::new("/sys/fs/cgroup/memory"), "/", "/a/b"),
            PathBuf::from("/sys/fs/cgroup/memory/a/b")
        );
        // A cgroup namespace mounts its own root.
        assert_eq!(
            own_dir(Path::new("/sys/fs/cgroup"), "/a", "/a/b"),
            PathBuf::from("/sys/fs/cgroup/b")
        );
    }

    #[test]
    fn counters_are_read_by_key() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("memory.events");
        fs::write(&file, "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n").unwrap();
        assert_eq!(read_counter(&file, "oom_kill"), Some(1));
        assert_eq!(read_counter(&file, "missing"), None);
    }

    #[test]
    fn subtrees_of_gone_brokers_are_removed_and_live_ones_kept() {
        let parent = tempfile::tempdir().unwrap();
        // A process that has exited and been reaped: its pid names a gone broker.
        let mut gone = std::process::Command::new("true").spawn().unwrap();
        let gone_pid = gone.id();
        gone.wait().unwrap();
        let ns = pid_namespace();
        let stale = parent.path().join(format!("foresight-{ns}-{gone_pid}-0"));
        fs::create_dir_all(stale.join("w2")).unwrap();
        let live = parent
            .path()
            .join(format!("foresight-{ns}-{}-0", std::process::id()));
        fs::create_dir_all(live.join("w1")).unwrap();
        // Another container's broker: its pids are not ours to judge.
        let foreign = parent
            .path()
            .join(format!("foresight-{}-{gone_pid}-0", ns + 1));
        fs::create_dir_all(&foreign).unwrap();
        let other = parent.path().join("foresight-broker");
        fs::create_dir_all(&other).unwrap();
        remove_stale_in(parent.path(), ns);
        assert!(!stale.exists());
        assert!(live.join("w1").exists());
        assert!(foreign.exists());
        assert!(other.exists());
    }
}
