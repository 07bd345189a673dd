//! Debian's Chromium, driven over the Chrome DevTools Protocol, with the built extension
//! loaded unpacked and a fresh user-data directory (where the native host manifest goes).

use std::time::Duration;

use serde_json::{Value, json};
use tokio::process::Command;

use crate::Error;
use crate::browser::{BrowserProcess, ConsoleEvents, LaunchOptions, Tab};
use crate::rpc::RpcClient;

pub struct Chromium {
    pub(crate) process: BrowserProcess,
    rpc: RpcClient,
}

/// The user-data directory inside a scenario's directory; the host is installed into it.
pub fn user_data_dir(dir: &std::path::Path) -> std::path::PathBuf {
    dir.join("chromium-profile")
}

impl Chromium {
    pub async fn launch(options: LaunchOptions<'_>) -> Result<Self, Error> {
        let extension = options.artifacts.extension("chrome");
        let profile = options
            .chromium_profile
            .clone()
            .unwrap_or_else(|| user_data_dir(options.dir));
        std::fs::create_dir_all(&profile)?;
        let mut cmd = Command::new(&options.artifacts.chromium);
        if options.headless {
            cmd.arg("--headless=new");
        }
        cmd.args([
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--password-store=basic",
            "--remote-debugging-port=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--load-extension={}", extension.display()))
        .arg(format!(
            "--disable-extensions-except={}",
            extension.display()
        ))
        .arg("about:blank")
        .envs(options.env.iter().map(|(k, v)| (k, v)));
        let (process, url) = BrowserProcess::spawn(
            cmd,
            options.dir.join("chromium.log"),
            "DevTools listening on",
            Duration::from_secs(60),
        )
        .await?;
        let rpc = RpcClient::connect(&url).await?;
        Ok(Self { process, rpc })
    }

    pub async fn open(&self, url: &str) -> Result<Tab, Error> {
        let target = self
            .rpc
            .call(
                "Target.createTarget",
                json!({"url": "about:blank"}),
                json!({}),
            )
            .await?;
        let target_id = str_field(&target, "targetId")?;
        let attached = self
            .rpc
            .call(
                "Target.attachToTarget",
                json!({"targetId": target_id, "flatten": true}),
                json!({}),
            )
            .await?;
        let session = str_field(&attached, "sessionId")?;
        let tab = Tab {
            id: target_id,
            session: Some(session.clone()),
        };
        let mut events = self.rpc.events();
        self.rpc
            .call("Page.enable", json!({}), json!({"sessionId": session}))
            .await?;
        self.rpc
            .call(
                "Page.navigate",
                json!({"url": url}),
                json!({"sessionId": session}),
            )
            .await?;
        // Wait for this page's load event, not a sleep.
        tokio::time::timeout(Duration::from_secs(60), async {
            loop {
                match events.recv().await {
                    Ok(e)
                        if e["method"] == "Page.loadEventFired"
                            && e["sessionId"] == Value::String(session.clone()) =>
                    {
                        return Ok(());
                    }
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(_) => return Err(Error::Browser("browser connection closed".into())),
                }
            }
        })
        .await
        .map_err(|_| Error::Timeout(format!("{url} did not finish loading")))??;
        Ok(tab)
    }

    pub async fn eval(&self, tab: &Tab, expression: &str) -> Result<Value, Error> {
        let result = self
            .rpc
            .call(
                "Runtime.evaluate",
                json!({"expression": expression, "awaitPromise": true, "returnByValue": true}),
                json!({"sessionId": tab.session}),
            )
            .await?;
        if let Some(details) = result.get("exceptionDetails") {
            return Err(Error::Browser(format!(
                "page threw: {}",
                details["exception"]["description"]
                    .as_str()
                    .unwrap_or(&details.to_string())
            )));
        }
        Ok(result["result"]["value"].clone())
    }

    /// Terminates the extension's service worker, as Chrome does to an idle one.
    pub async fn stop_service_worker(&self) -> Result<(), Error> {
        let prefix = format!(
            "chrome-extension://{}/",
            foresight_shared::ids::CHROME_EXTENSION_ID
        );
        let targets = self
            .rpc
            .call("Target.getTargets", json!({}), json!({}))
            .await?;
        let worker = targets["targetInfos"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|t| {
                t["type"] == "service_worker"
                    && t["url"].as_str().is_some_and(|u| u.starts_with(&prefix))
            })
            .ok_or_else(|| {
                Error::Browser("the extension's service worker is not running".into())
            })?;
        self.rpc
            .call(
                "Target.closeTarget",
                json!({"targetId": worker["targetId"]}),
                json!({}),
            )
            .await
            .map(|_| ())
    }

    pub async fn set_dark_scheme(&self, tab: &Tab, dark: bool) -> Result<(), Error> {
        let value = if dark { "dark" } else { "light" };
        self.rpc
            .call(
                "Emulation.setEmulatedMedia",
                json!({"features": [{"name": "prefers-color-scheme", "value": value}]}),
                json!({"sessionId": tab.session}),
            )
            .await
            .map(|_| ())
    }

    /// A PNG of the page, base64-encoded.
    pub async fn screenshot(&self, tab: &Tab) -> Result<String, Error> {
        let shot = self
            .rpc
            .call(
                "Page.captureScreenshot",
                json!({"format": "png"}),
                json!({"sessionId": tab.session}),
            )
            .await?;
        str_field(&shot, "data")
    }

    /// Console calls in `tab` from now on, as `(level, text)`.
    pub async fn console(&self, tab: &Tab) -> Result<ConsoleEvents, Error> {
        let events = self.rpc.events();
        self.rpc
            .call(
                "Runtime.enable",
                json!({}),
                json!({"sessionId": tab.session}),
            )
            .await?;
        let session = tab.session.clone();
        Ok(ConsoleEvents {
            events,
            pick: Box::new(move |e: &Value| {
                if e["method"] != "Runtime.consoleAPICalled"
                    || e["sessionId"].as_str() != session.as_deref()
                {
                    return None;
                }
                let level = match e["params"]["type"].as_str() {
                    Some("warning") => "warn",
                    Some(other) => other,
                    None => "log",
                };
                let text = e["params"]["args"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|a| {
                        a["value"]
                            .as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| a["value"].to_string())
                    })
                    .collect::<Vec<_>>()
                    .join(" ");
                Some((level.to_string(), text))
            }),
        })
    }

    pub async fn close(&self, tab: &Tab) -> Result<(), Error> {
        self.rpc
            .call("Target.closeTarget", json!({"targetId": tab.id}), json!({}))
            .await
            .map(|_| ())
    }
}

fn str_field(v: &Value, name: &str) -> Result<String, Error> {
    v[name]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| Error::Browser(format!("CDP reply without {name}: {v}")))
}
