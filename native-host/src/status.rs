//! `foresight-host status`: what a person needs to see to know whether the host works here:
//! the machine's contention as the host measures it, and, per browser, whether that browser
//! will find this host (a manifest where it looks, naming this host and an executable that
//! exists, and which extensions it lets in).

use std::fmt::Write as _;
use std::path::Path;

use foresight_shared::protocol::plan::ContentionSnapshot;
use serde_json::Value;

use crate::contention::{Sampler, SystemSampler};
use crate::install::{Targets, manifest_dir, manifest_file_name};

/// What one browser will find.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// A usable manifest pointing at `exe`; `this_host` says whether that is this executable.
    Found {
        exe: String,
        this_host: bool,
        allowed: Vec<String>,
    },
    Missing,
    /// A manifest is there but the browser cannot use it.
    Broken(String),
}

/// What `browser`'s manifest at `path` amounts to.
pub fn inspect(path: &Path, this_exe: Option<&Path>) -> Finding {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Finding::Missing,
        Err(e) => return Finding::Broken(format!("unreadable: {e}")),
    };
    let Ok(value) = serde_json::from_str::<Value>(&text) else {
        return Finding::Broken("not JSON".into());
    };
    let Some(exe) = value["path"].as_str() else {
        return Finding::Broken("no \"path\"".into());
    };
    if !Path::new(exe).is_file() {
        return Finding::Broken(format!("its executable {exe} does not exist"));
    }
    let allowed = ["allowed_origins", "allowed_extensions"]
        .iter()
        .filter_map(|k| value[*k].as_array())
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    let this_host = this_exe.is_some_and(|me| std::fs::canonicalize(exe).is_ok_and(|p| p == me));
    Finding::Found {
        exe: exe.to_string(),
        this_host,
        allowed,
    }
}

/// The whole report, as text.
pub fn report(targets: &Targets, this_exe: Option<&Path>) -> String {
    let mut out = String::new();
    // Per-process CPU is a difference between two readings of the process table; one second
    // apart gives figures a person can read, at the cost of a second's wait.
    let mut sampler = SystemSampler::new().with_process_interval(std::time::Duration::ZERO);
    let _ = sampler.sample();
    std::thread::sleep(std::time::Duration::from_secs(1));
    match sampler.sample() {
        Ok(c) => out.push_str(&contention_text(&c)),
        Err(e) => {
            let _ = writeln!(out, "contention: {e}");
        }
    }
    out.push_str("browsers:\n");
    for &browser in &targets.browsers {
        let path = manifest_dir(
            browser,
            &targets.home,
            targets.chrome_user_data_dir.as_deref(),
            targets.platform,
        )
        .join(manifest_file_name());
        let line = match inspect(&path, this_exe) {
            Finding::Found {
                exe,
                this_host,
                allowed,
            } => format!(
                "will find {} ({}), allowing {}",
                exe,
                if this_host {
                    "this host"
                } else {
                    "another copy"
                },
                allowed.join(", ")
            ),
            Finding::Missing => "will not find the host: run `foresight-host install`".into(),
            Finding::Broken(why) => format!("has a broken manifest ({why}): reinstall"),
        };
        let _ = writeln!(out, "  {browser}: {line}\n    manifest {}", path.display());
    }
    out
}

fn contention_text(c: &ContentionSnapshot) -> String {
    const GIB: f64 = (1u64 << 30) as f64;
    let mut out = format!(
        "contention ({} logical CPUs):\n  CPU {:.0}% busy, {} idle millicores",
        c.logical_cpus,
        c.cpu_usage * 100.0,
        c.available_cpu_millicores
    );
    if let Some(f) = &c.forecast {
        let _ = write!(
            out,
            " (forecast {} in {} s)",
            f.available_cpu_millicores,
            f.horizon_ms / 1000
        );
    }
    let _ = write!(
        out,
        "\n  memory {:.1} of {:.1} GiB available, swap {:.1} of {:.1} GiB used",
        c.available_memory_bytes as f64 / GIB,
        c.total_memory_bytes as f64 / GIB,
        c.swap_used_bytes as f64 / GIB,
        c.swap_total_bytes as f64 / GIB
    );
    if let Some(l) = c.load_average_1m {
        let _ = write!(out, "\n  load average {l:.2}");
    }
    if let Some(r) = c.runnable_tasks {
        let _ = write!(out, ", {r:.0} tasks runnable");
    }
    if let Some(p) = &c.pressure {
        let v = |x: Option<f64>| x.map_or("-".to_string(), |x| format!("{x:.1}%"));
        let _ = write!(
            out,
            "\n  pressure (10 s): cpu {}, memory {}, io {}",
            v(p.cpu_some_avg10),
            v(p.memory_some_avg10),
            v(p.io_some_avg10)
        );
    }
    if let (Some(b), Some(o)) = (&c.browser, &c.others) {
        let _ = write!(
            out,
            "\n  this process tree: {} processes, {} millicores, {:.2} GiB; everything else: {} processes, {} millicores, {:.2} GiB",
            b.processes,
            b.cpu_millicores,
            b.memory_bytes as f64 / GIB,
            o.processes,
            o.cpu_millicores,
            o.memory_bytes as f64 / GIB
        );
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::install::{AllowedCallers, Browser, Platform, install};

    #[test]
    fn findings_for_missing_installed_and_broken_manifests() {
        let home = tempfile::tempdir().expect("tempdir");
        let exe = std::env::current_exe().expect("exe");
        let exe = std::fs::canonicalize(exe).expect("canonical");
        let targets = Targets {
            browsers: Browser::ALL.to_vec(),
            home: home.path().to_path_buf(),
            chrome_user_data_dir: None,
            platform: Platform::Linux,
        };
        let before = report(&targets, Some(&exe));
        assert!(before.contains("contention ("), "{before}");
        assert_eq!(
            before.matches("will not find the host").count(),
            3,
            "{before}"
        );

        install(&targets, &exe, &AllowedCallers::default()).expect("install");
        let after = report(&targets, Some(&exe));
        assert_eq!(after.matches("(this host)").count(), 3, "{after}");
        assert!(after.contains(foresight_shared::ids::FIREFOX_EXTENSION_ID));

        let firefox = manifest_dir(Browser::Firefox, home.path(), None, Platform::Linux)
            .join(manifest_file_name());
        std::fs::write(&firefox, "{").expect("write");
        assert_eq!(
            inspect(&firefox, Some(&exe)),
            Finding::Broken("not JSON".into())
        );
        std::fs::write(&firefox, r#"{"path":"/nonexistent/host"}"#).expect("write");
        assert!(matches!(inspect(&firefox, Some(&exe)), Finding::Broken(_)));
    }
}
