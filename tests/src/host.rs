//! The real native host in a scenario: installed with its own `install` command into the
//! scenario's browser profile (never the user's), and observed through the audit log it
//! writes when `FORESIGHT_HOST_LOG` is set (one JSON line per message in and out).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::Error;
use crate::artifacts::Artifacts;
use crate::browser::BrowserKind;
use crate::{chromium, firefox};

/// The environment variable the host reads for its audit log path.
pub const ENV_HOST_LOG: &str = "FORESIGHT_HOST_LOG";
/// The environment variable the host reads for the broker it tells the extension about.
pub const ENV_BROKER_URL: &str = "FORESIGHT_BROKER_URL";

/// Runs `foresight-host install` for `kind`, targeting the scenario directory `dir`.
pub fn install(artifacts: &Artifacts, kind: BrowserKind, dir: &Path) -> Result<(), Error> {
    let mut cmd = Command::new(artifacts.host_binary());
    cmd.arg("install");
    match kind {
        BrowserKind::Chromium => {
            cmd.args(["--browser", "chromium", "--chrome-user-data-dir"])
                .arg(chromium::user_data_dir(dir));
        }
        BrowserKind::Firefox => {
            cmd.args(["--browser", "firefox", "--home"])
                .arg(firefox::home_dir(dir));
        }
    }
    let out = cmd.output()?;
    if !out.status.success() {
        return Err(Error::Setup(format!(
            "foresight-host install failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(())
}

/// The host's audit log: every frame the extension sent it and every reply.
pub struct HostLog {
    pub path: PathBuf,
}

impl HostLog {
    pub fn new(path: PathBuf) -> Self {
        Self { path }
    }

    /// All entries written so far (possibly by several host processes, in order).
    pub fn entries(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Waits until an entry after the first `skip` satisfies `pred`; returns it and its
    /// index. The log is a file another process appends to, so it is re-read at a short
    /// interval until the deadline.
    pub async fn wait_for(
        &self,
        what: &str,
        skip: usize,
        deadline: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Result<(usize, Value), Error> {
        let end = Instant::now() + deadline;
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        loop {
            tick.tick().await;
            if let Some((i, v)) = self
                .entries()
                .into_iter()
                .enumerate()
                .skip(skip)
                .find(|(_, v)| pred(v))
            {
                return Ok((i, v));
            }
            if Instant::now() > end {
                return Err(Error::Timeout(format!(
                    "the native host's log never showed {what} (log: {})",
                    self.path.display()
                )));
            }
        }
    }
}
