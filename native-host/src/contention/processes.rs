//! "This browser" versus "everything else": the process tree the host was started from, so
//! the planner can tell what other applications take from what the browser's own pages do.
//!
//! A browser starts its native host from its main process. That process, and any ancestor
//! running the same program (a wrapper or launcher that re-executes itself), is the root; the
//! browser is the root and all its descendants (renderers, GPU and utility processes, the
//! zygote's children). Pure: it works on a list of processes, so it is tested on made-up trees.

use std::collections::HashMap;

use foresight_shared::protocol::plan::ProcessGroupUsage;

/// What the grouping needs to know about one process.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcInfo {
    pub pid: u32,
    pub parent: Option<u32>,
    pub name: String,
    /// Percent of one core, as sysinfo reports it (may exceed 100).
    pub cpu_percent: f32,
    pub memory_bytes: u64,
}

/// The browser's root process for a host running as `host_pid`, if its parent is known.
pub fn browser_root(procs: &[ProcInfo], host_pid: u32) -> Option<u32> {
    let by_pid: HashMap<u32, &ProcInfo> = procs.iter().map(|p| (p.pid, p)).collect();
    let mut root = by_pid.get(&by_pid.get(&host_pid)?.parent?)?;
    // Bounded: a corrupt or cyclic table must not loop forever.
    for _ in 0..64 {
        match root.parent.and_then(|pp| by_pid.get(&pp)) {
            Some(parent) if parent.name == root.name && parent.pid != root.pid => root = parent,
            _ => break,
        }
    }
    Some(root.pid)
}

/// Sums the browser tree under `root` and everything else.
pub fn group(procs: &[ProcInfo], root: Option<u32>) -> (ProcessGroupUsage, ProcessGroupUsage) {
    let mut children: HashMap<u32, Vec<usize>> = HashMap::new();
    for (i, p) in procs.iter().enumerate() {
        if let Some(parent) = p.parent {
            children.entry(parent).or_default().push(i);
        }
    }
    let mut in_browser = vec![false; procs.len()];
    if let Some(root) = root {
        let mut stack: Vec<usize> = procs
            .iter()
            .enumerate()
            .filter(|(_, p)| p.pid == root)
            .map(|(i, _)| i)
            .collect();
        while let Some(i) = stack.pop() {
            if in_browser[i] {
                continue;
            }
            in_browser[i] = true;
            if let Some(kids) = children.get(&procs[i].pid) {
                stack.extend(kids.iter().copied().filter(|&k| !in_browser[k]));
            }
        }
    }
    let mut browser = ProcessGroupUsage::default();
    let mut others = ProcessGroupUsage::default();
    for (p, &mine) in procs.iter().zip(&in_browser) {
        let g = if mine { &mut browser } else { &mut others };
        g.processes += 1;
        let cpu = f64::from(p.cpu_percent) * 10.0;
        if cpu.is_finite() && cpu > 0.0 {
            g.cpu_millicores += cpu.round() as u64;
        }
        g.memory_bytes = g.memory_bytes.saturating_add(p.memory_bytes);
    }
    (browser, others)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pid: u32, parent: u32, name: &str, cpu: f32, mem: u64) -> ProcInfo {
        ProcInfo {
            pid,
            parent: Some(parent),
            name: name.into(),
            cpu_percent: cpu,
            memory_bytes: mem,
        }
    }

    fn tree() -> Vec<ProcInfo> {
        vec![
            p(1, 0, "init", 0.0, 10),
            p(50, 1, "bash", 1.0, 100),
            p(100, 50, "chromium", 2.0, 1000), // launcher, re-executed as the browser
            p(101, 100, "chromium", 30.0, 5000), // browser main process
            p(102, 101, "chromium", 50.0, 7000), // renderer
            p(103, 101, "foresight-host", 0.5, 300),
            p(104, 102, "chromium", 10.0, 2000), // a renderer's child
            p(200, 1, "rustc", 190.0, 900_000),
        ]
    }

    #[test]
    fn the_root_is_the_topmost_process_of_the_same_program() {
        assert_eq!(browser_root(&tree(), 103), Some(100));
        assert_eq!(browser_root(&tree(), 999), None);
        // Run from a shell, the "browser" is the shell alone.
        let mut t = tree();
        t.push(p(300, 50, "foresight-host", 0.0, 1));
        assert_eq!(browser_root(&t, 300), Some(50));
    }

    #[test]
    fn groups_split_the_machine() {
        let (browser, others) = group(&tree(), Some(100));
        assert_eq!(browser.processes, 5);
        assert_eq!(browser.cpu_millicores, 20 + 300 + 500 + 5 + 100);
        assert_eq!(browser.memory_bytes, 1000 + 5000 + 7000 + 300 + 2000);
        assert_eq!(others.processes, 3);
        assert_eq!(others.cpu_millicores, 10 + 1900);
        let (nobody, everyone) = group(&tree(), None);
        assert_eq!(nobody.processes, 0);
        assert_eq!(everyone.processes, 8);
    }

    #[test]
    fn a_cycle_in_the_table_terminates() {
        let t = vec![
            p(1, 2, "x", 0.0, 0),
            p(2, 1, "x", 0.0, 0),
            p(3, 1, "h", 0.0, 0),
        ];
        assert!(browser_root(&t, 3).is_some());
        let (b, o) = group(&t, Some(1));
        assert_eq!(b.processes + o.processes, 3);
    }
}
