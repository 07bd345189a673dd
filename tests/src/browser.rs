//! One interface over both browsers, so every end-to-end scenario is written once and run in
//! Chromium and Firefox alike. Also the process plumbing both launchers share: a process
//! group killed on drop, stderr saved to a log file (and searched for the automation
//! endpoint the browser announces).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::oneshot;

use crate::Error;
use crate::artifacts::Artifacts;
use crate::chromium::Chromium;
use crate::firefox::Firefox;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrowserKind {
    Chromium,
    Firefox,
}

impl BrowserKind {
    pub fn name(self) -> &'static str {
        match self {
            BrowserKind::Chromium => "chromium",
            BrowserKind::Firefox => "firefox",
        }
    }
}

/// What a scenario needs to start a browser.
pub struct LaunchOptions<'a> {
    pub artifacts: &'a Artifacts,
    /// A fresh directory the browser may use for its profile and home.
    pub dir: &'a Path,
    /// Extra environment for the browser (inherited by the native host it starts).
    pub env: Vec<(String, String)>,
    pub headless: bool,
    /// Chromium's `--user-data-dir` when not the usual one inside `dir`
    /// ([`crate::chromium::user_data_dir`]); Firefox ignores it.
    pub chromium_profile: Option<PathBuf>,
}

/// A page the browser has open.
#[derive(Debug, Clone)]
pub struct Tab {
    pub(crate) id: String,
    /// CDP session for Chromium; unused for Firefox.
    pub(crate) session: Option<String>,
}

pub enum Browser {
    Chromium(Chromium),
    Firefox(Firefox),
}

impl Browser {
    pub async fn launch(kind: BrowserKind, options: LaunchOptions<'_>) -> Result<Self, Error> {
        Ok(match kind {
            BrowserKind::Chromium => Browser::Chromium(Chromium::launch(options).await?),
            BrowserKind::Firefox => Browser::Firefox(Firefox::launch(options).await?),
        })
    }

    /// Opens `url` in a new tab and waits until it has loaded.
    pub async fn open(&self, url: &str) -> Result<Tab, Error> {
        match self {
            Browser::Chromium(b) => b.open(url).await,
            Browser::Firefox(b) => b.open(url).await,
        }
    }

    /// Evaluates `expression` in the page (awaiting it if it is a promise) and returns its
    /// JSON value.
    pub async fn eval(&self, tab: &Tab, expression: &str) -> Result<Value, Error> {
        // Both protocols return JSON text the same way, whatever the value's type.
        let wrapped = format!("(async () => JSON.stringify(await ({expression})))()");
        let raw = match self {
            Browser::Chromium(b) => b.eval(tab, &wrapped).await?,
            Browser::Firefox(b) => b.eval(tab, &wrapped).await?,
        };
        match raw {
            Value::String(text) => serde_json::from_str(&text)
                .map_err(|e| Error::Browser(format!("page returned invalid JSON ({e}): {text}"))),
            Value::Null => Ok(Value::Null),
            other => Err(Error::Browser(format!(
                "unexpected evaluation result {other}"
            ))),
        }
    }

    /// Waits until the JavaScript expression `condition` (or the promise it gives) is truthy
    /// in the page, and returns its value. The page re-evaluates it every 50 ms and gives up after `deadline`.
    pub async fn wait_for(
        &self,
        tab: &Tab,
        condition: &str,
        deadline: std::time::Duration,
    ) -> Result<Value, Error> {
        let ms = deadline.as_millis();
        let expression = format!(
            "new Promise((resolve, reject) => {{
                const start = Date.now();
                const check = async () => {{
                    let value;
                    try {{ value = await ({condition}); }} catch (e) {{ value = undefined; }}
                    if (value) return resolve(value);
                    if (Date.now() - start > {ms}) return reject(new Error('condition never held: ' + {quoted}));
                    setTimeout(check, 50);
                }};
                check();
            }})",
            quoted = serde_json::to_string(condition).unwrap_or_default()
        );
        self.eval(tab, &expression).await
    }

    /// Opens one of the extension's own pages and waits until `ready` (a JavaScript
    /// condition) holds in it. Right after the extension reloads, its pages are briefly
    /// unavailable, so a page that does not become ready soon is closed and opened again,
    /// until `deadline`.
    pub async fn open_extension_page(
        &self,
        path: &str,
        ready: &str,
        deadline: std::time::Duration,
    ) -> Result<Tab, Error> {
        let end = std::time::Instant::now() + deadline;
        let attempt = std::time::Duration::from_secs(5);
        loop {
            // Navigation itself fails while the add-on is being reloaded (Firefox answers
            // NS_ERROR_NOT_AVAILABLE); that is retried like a page that is not ready.
            // A navigation started while the add-on restarts can also hang: bound each try.
            let opened = tokio::time::timeout(attempt, self.open(&self.extension_url(path)))
                .await
                .unwrap_or_else(|_| Err(Error::Timeout(format!("opening {path}"))));
            let outcome = match opened {
                Ok(tab) => match self.wait_for(&tab, ready, attempt).await {
                    Ok(_) => return Ok(tab),
                    Err(e) => {
                        let _ = self.close(&tab).await;
                        e
                    }
                },
                Err(e) => e,
            };
            if std::time::Instant::now() >= end {
                return Err(Error::Timeout(format!(
                    "{path} never became ready: {outcome}"
                )));
            }
        }
    }

    /// Stops the extension's background the way the browser does when it reclaims it: Chrome's
    /// service worker is terminated (it starts again on the next event); Firefox's event page
    /// is restarted by reloading the add-on. Whatever the background held only in memory is
    /// gone afterwards; what it kept in extension storage must still be there.
    pub async fn restart_background(&self) -> Result<(), Error> {
        match self {
            Browser::Chromium(b) => b.stop_service_worker().await,
            Browser::Firefox(_) => {
                let tab = self
                    .open_extension_page(
                        "options.html",
                        "document.readyState === 'complete'",
                        std::time::Duration::from_secs(30),
                    )
                    .await?;
                // Reload after this evaluation returns: the page goes away with the add-on.
                self.eval(
                    &tab,
                    "(api => { setTimeout(() => api.runtime.reload(), 0); return true; })(globalThis.browser)",
                )
                .await
                .map(|_| ())
            }
        }
    }

    /// The URL of one of the extension's own pages, e.g. `options.html`.
    pub fn extension_url(&self, path: &str) -> String {
        match self {
            Browser::Chromium(_) => format!(
                "chrome-extension://{}/{path}",
                foresight_shared::ids::CHROME_EXTENSION_ID
            ),
            Browser::Firefox(_) => {
                format!("moz-extension://{}/{path}", crate::firefox::EXTENSION_UUID)
            }
        }
    }

    /// Makes `tab` render with `prefers-color-scheme: dark` (or back to light). Returns
    /// false where the browser's automation cannot do it: Firefox ESR 153's BiDi has no
    /// colour-scheme emulation yet.
    pub async fn set_dark_scheme(&self, tab: &Tab, dark: bool) -> Result<bool, Error> {
        match self {
            Browser::Chromium(b) => b.set_dark_scheme(tab, dark).await.map(|()| true),
            Browser::Firefox(_) => Ok(false),
        }
    }

    /// Saves a PNG of what `tab` shows to `path` (creating its folder).
    pub async fn screenshot(&self, tab: &Tab, path: &Path) -> Result<(), Error> {
        use base64::Engine;
        let data = match self {
            Browser::Chromium(b) => b.screenshot(tab).await?,
            Browser::Firefox(b) => b.screenshot(tab).await?,
        };
        let png = base64::engine::general_purpose::STANDARD
            .decode(data)
            .map_err(|e| Error::Browser(format!("screenshot is not base64: {e}")))?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, png)?;
        Ok(())
    }

    /// Starts watching `tab`'s console: what the page's scripts log from now on.
    pub async fn console(&self, tab: &Tab) -> Result<ConsoleEvents, Error> {
        match self {
            Browser::Chromium(b) => b.console(tab).await,
            Browser::Firefox(b) => b.console(tab).await,
        }
    }

    pub async fn close(&self, tab: &Tab) -> Result<(), Error> {
        match self {
            Browser::Chromium(b) => b.close(tab).await,
            Browser::Firefox(b) => b.close(tab).await,
        }
    }

    /// The browser's own log (stderr), for failure messages.
    pub fn log_path(&self) -> &Path {
        match self {
            Browser::Chromium(b) => b.process.log_path(),
            Browser::Firefox(b) => b.process.log_path(),
        }
    }
}

/// A tab's console calls, as the automation protocol reports them: `(level, text)` with the
/// level as the console method's name (`log`, `warn`, ...).
pub struct ConsoleEvents {
    pub(crate) events: tokio::sync::broadcast::Receiver<Value>,
    pub(crate) pick: ConsolePick,
}

/// Turns one automation event into a console call of the watched tab, if it is one.
pub(crate) type ConsolePick = Box<dyn Fn(&Value) -> Option<(String, String)> + Send>;

impl ConsoleEvents {
    /// Waits for the first console call for which `want` holds.
    pub async fn wait_for(
        &mut self,
        what: &str,
        deadline: Duration,
        want: impl Fn(&str, &str) -> bool,
    ) -> Result<(String, String), Error> {
        let search = async {
            loop {
                match self.events.recv().await {
                    Ok(e) => {
                        if let Some((level, text)) = (self.pick)(&e)
                            && want(&level, &text)
                        {
                            return Ok((level, text));
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(_) => return Err(Error::Browser("browser connection closed".into())),
                }
            }
        };
        tokio::time::timeout(deadline, search)
            .await
            .map_err(|_| Error::Timeout(format!("the page's console never showed {what}")))?
    }
}

/// A browser process in its own process group, killed with all its children on drop.
pub struct BrowserProcess {
    child: Child,
    log: PathBuf,
}

impl BrowserProcess {
    /// Starts `cmd` and waits for a stderr line containing `marker`, returning the rest of
    /// that line's first word after it (the automation websocket URL).
    pub async fn spawn(
        mut cmd: Command,
        log: PathBuf,
        marker: &'static str,
        deadline: Duration,
    ) -> Result<(Self, String), Error> {
        cmd.stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .map_err(|e| Error::Setup(format!("cannot start {:?}: {e}", cmd.as_std())))?;
        let stderr = child
            .stderr
            .take()
            .ok_or_else(|| Error::Setup("browser stderr not captured".into()))?;
        let (found_tx, found_rx) = oneshot::channel();
        let log_path = log.clone();
        // Keep draining stderr for the browser's whole life, or it blocks on a full pipe.
        tokio::spawn(async move {
            let mut file = tokio::fs::File::create(&log_path).await.ok();
            let mut lines = BufReader::new(stderr).lines();
            let mut found_tx = Some(found_tx);
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(f) = file.as_mut() {
                    let _ = f.write_all(format!("{line}\n").as_bytes()).await;
                }
                if let Some(rest) = line.split_once(marker).map(|(_, r)| r.trim().to_string())
                    && let Some(tx) = found_tx.take()
                {
                    let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_string());
                }
            }
        });
        let process = Self { child, log };
        let url = tokio::time::timeout(deadline, found_rx)
            .await
            .map_err(|_| {
                Error::Timeout(format!(
                    "browser did not announce its automation endpoint; see {}",
                    process.log.display()
                ))
            })?
            .map_err(|_| {
                Error::Setup(format!(
                    "browser exited during start-up; see {}",
                    process.log.display()
                ))
            })?;
        Ok((process, url))
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }
}

impl Drop for BrowserProcess {
    fn drop(&mut self) {
        if let Some(pid) = self.child.id() {
            // SAFETY: kill(2) on our own child's process group; no memory is involved.
            unsafe {
                libc::kill(-(pid as i32), libc::SIGKILL);
            }
        }
    }
}
