//! The real native host in a scenario: installed with its own `install` command into the
//! scenario's browser profile (never the user's), and observed through the audit log it
//! writes when `FORESIGHT_HOST_LOG` is set (one JSON line per message in and out).

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
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

/// Where a scenario installs the host and, for Chromium, which profile the browser runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `--browser chromium` (or `firefox`) into the scenario's own browser profile.
    Profile,
    /// `--browser chrome --home <scenario>/home`, exactly as for a Chrome user, and Chromium
    /// started with Chrome's default profile folder (`$HOME/.config/google-chrome`). Chrome
    /// reads user-level host manifests from `<its user data dir>/NativeMessagingHosts`, and
    /// branded Chrome cannot be installed here (Debian ships only Chromium), so this is how
    /// the tests show that a Chrome install is found.
    ChromeDefault,
}

/// The home folder a [`Layout::ChromeDefault`] scenario installs into.
pub fn chrome_home(dir: &Path) -> PathBuf {
    dir.join("home")
}

/// Chrome's default user data dir under [`chrome_home`].
pub fn chrome_profile(dir: &Path) -> PathBuf {
    chrome_home(dir).join(".config/google-chrome")
}

/// Runs `foresight-host install` for `kind` laid out as `layout`, targeting the scenario
/// directory `dir`.
pub fn install(
    artifacts: &Artifacts,
    kind: BrowserKind,
    layout: Layout,
    dir: &Path,
) -> Result<(), Error> {
    let mut cmd = Command::new(artifacts.host_binary());
    cmd.arg("install");
    match (kind, layout) {
        (BrowserKind::Chromium, Layout::ChromeDefault) => {
            cmd.args(["--browser", "chrome", "--home"])
                .arg(chrome_home(dir));
        }
        (BrowserKind::Chromium, Layout::Profile) => {
            cmd.args(["--browser", "chromium", "--chrome-user-data-dir"])
                .arg(chromium::user_data_dir(dir));
        }
        (BrowserKind::Firefox, _) => {
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
    /// What has been parsed so far. The log only grows, so each read parses only what was
    /// appended: re-parsing the whole log every 50 ms (plan requests carry whole estimates)
    /// made the test process itself a CPU load on the machine whose contention tests measure.
    seen: Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    /// Bytes of the file consumed, up to the end of the last complete line.
    bytes: u64,
    entries: Vec<Value>,
}

impl HostLog {
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            seen: Mutex::new(Seen::default()),
        }
    }

    /// Runs `f` over all entries written so far (possibly by several host processes, in
    /// order), after reading what was appended since the last call.
    fn with_entries<T>(&self, f: impl FnOnce(&[Value]) -> T) -> T {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let mut fresh = Vec::new();
        if let Ok(mut file) = std::fs::File::open(&self.path)
            && file.seek(SeekFrom::Start(seen.bytes)).is_ok()
        {
            let _ = file.read_to_end(&mut fresh);
        }
        // Only complete lines: the host may be in the middle of writing the last one.
        if let Some(end) = fresh.iter().rposition(|&b| b == b'\n') {
            let complete = &fresh[..=end];
            seen.bytes += complete.len() as u64;
            let parsed: Vec<Value> = complete
                .split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
                .filter_map(|l| serde_json::from_slice(l).ok())
                .collect();
            seen.entries.extend(parsed);
        }
        f(&seen.entries)
    }

    /// All entries written so far (possibly by several host processes, in order).
    pub fn entries(&self) -> Vec<Value> {
        self.with_entries(<[Value]>::to_vec)
    }

    /// How many entries have been written so far: a mark for [`HostLog::wait_for`].
    pub fn len(&self) -> usize {
        self.with_entries(<[Value]>::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The newest entry satisfying `pred`, if any.
    pub fn last(&self, pred: impl Fn(&Value) -> bool) -> Option<Value> {
        self.with_entries(|entries| entries.iter().rev().find(|v| pred(v)).cloned())
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
            let found = self.with_entries(|entries| {
                entries
                    .iter()
                    .enumerate()
                    .skip(skip)
                    .find(|(_, v)| pred(v))
                    .map(|(i, v)| (i, v.clone()))
            });
            if let Some(found) = found {
                return Ok(found);
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
