//! Debian's Firefox ESR, driven over its built-in WebDriver BiDi (no geckodriver), with the
//! built extension installed as a temporary add-on. Firefox looks for native host manifests
//! only under `$HOME/.mozilla/native-messaging-hosts`, so the browser runs with HOME set to a
//! directory of the scenario's own. The extension gets a fixed moz-extension:// UUID and
//! BiDi runs with system access, so tests can open the extension's own pages (popup,
//! options), which BiDi otherwise refuses to navigate to.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::process::Command;

use crate::Error;
use crate::browser::{BrowserProcess, ConsoleEvents, LaunchOptions, Tab};
use crate::rpc::RpcClient;

/// The fixed moz-extension:// host of the extension in test profiles, so its pages have a
/// known URL (pref `extensions.webextensions.uuids`).
pub const EXTENSION_UUID: &str = "7f9d2c1e-4b3a-4e8f-9a61-0c5d8e2f4b17";

pub struct Firefox {
    pub(crate) process: BrowserProcess,
    rpc: RpcClient,
}

/// The HOME Firefox runs with inside a scenario's directory; the host is installed into it.
pub fn home_dir(dir: &std::path::Path) -> std::path::PathBuf {
    dir.join("firefox-home")
}

/// Preferences that keep a test profile from reaching out to Mozilla's services (this
/// machine has no internet; unanswered requests make start-up slow and flaky).
fn prefs(refusing_port: u16) -> String {
    let mut p = vec![
        ("browser.startup.page", "0".to_string()),
        (
            "extensions.webextensions.uuids",
            format!(
                "\"{{\\\"{}\\\":\\\"{EXTENSION_UUID}\\\"}}\"",
                foresight_shared::ids::FIREFOX_EXTENSION_ID
            ),
        ),
        ("browser.shell.checkDefaultBrowser", "false".into()),
        ("browser.aboutwelcome.enabled", "false".into()),
        ("network.proxy.type", "1".into()),
        ("network.proxy.http", "\"127.0.0.1\"".into()),
        ("network.proxy.http_port", refusing_port.to_string()),
        ("network.proxy.ssl", "\"127.0.0.1\"".into()),
        ("network.proxy.ssl_port", refusing_port.to_string()),
        (
            "network.proxy.no_proxies_on",
            "\"127.0.0.1,localhost\"".into(),
        ),
        ("network.trr.mode", "5".into()),
        ("network.captive-portal-service.enabled", "false".into()),
        ("network.connectivity-service.enabled", "false".into()),
        ("app.update.enabled", "false".into()),
        ("app.normandy.enabled", "false".into()),
        ("extensions.update.enabled", "false".into()),
        ("extensions.systemAddon.update.enabled", "false".into()),
        ("extensions.getAddons.cache.enabled", "false".into()),
        ("browser.safebrowsing.malware.enabled", "false".into()),
        ("browser.safebrowsing.phishing.enabled", "false".into()),
        ("browser.safebrowsing.downloads.enabled", "false".into()),
        ("browser.safebrowsing.blockedURIs.enabled", "false".into()),
        ("datareporting.healthreport.uploadEnabled", "false".into()),
        ("datareporting.policy.dataSubmissionEnabled", "false".into()),
        ("toolkit.telemetry.enabled", "false".into()),
        (
            "services.settings.server",
            format!("\"http://127.0.0.1:{refusing_port}/\""),
        ),
    ];
    p.sort();
    p.iter()
        .map(|(k, v)| format!("user_pref(\"{k}\", {v});\n"))
        .collect()
}

impl Firefox {
    pub async fn launch(options: LaunchOptions<'_>) -> Result<Self, Error> {
        let profile = options.dir.join("firefox-profile");
        let home = home_dir(options.dir);
        std::fs::create_dir_all(&profile)?;
        std::fs::create_dir_all(&home)?;
        // A port nothing listens on: connections to it are refused at once.
        let refusing_port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0")?;
            l.local_addr()?.port()
        };
        std::fs::write(profile.join("user.js"), prefs(refusing_port))?;
        let mut cmd = Command::new(&options.artifacts.firefox);
        if options.headless {
            cmd.arg("--headless");
        }
        cmd.args([
            "--no-remote",
            "--remote-allow-system-access",
            "--remote-debugging-port",
            "0",
            "--profile",
        ])
        .arg(&profile)
        .arg("about:blank")
        .env("HOME", &home)
        .envs(options.env.iter().map(|(k, v)| (k, v)));
        let (process, url) = BrowserProcess::spawn(
            cmd,
            options.dir.join("firefox.log"),
            "WebDriver BiDi listening on",
            Duration::from_secs(60),
        )
        .await?;
        let rpc = RpcClient::connect(&format!("{url}/session")).await?;
        rpc.call("session.new", json!({"capabilities": {}}), json!({}))
            .await?;
        let extension = options.artifacts.extension("firefox");
        rpc.call(
            "webExtension.install",
            json!({"extensionData": {"type": "path", "path": extension}}),
            json!({}),
        )
        .await?;
        Ok(Self { process, rpc })
    }

    pub async fn open(&self, url: &str) -> Result<Tab, Error> {
        let created = self
            .rpc
            .call("browsingContext.create", json!({"type": "tab"}), json!({}))
            .await?;
        let context = created["context"]
            .as_str()
            .ok_or_else(|| Error::Browser(format!("no context in {created}")))?
            .to_string();
        let navigated = self
            .rpc
            .call(
                "browsingContext.navigate",
                json!({"context": context, "url": url, "wait": "complete"}),
                json!({}),
            )
            .await;
        if let Err(e) = navigated {
            // Do not leave the empty tab behind.
            let _ = self
                .rpc
                .call(
                    "browsingContext.close",
                    json!({"context": context}),
                    json!({}),
                )
                .await;
            return Err(e);
        }
        Ok(Tab {
            id: context,
            session: None,
        })
    }

    pub async fn eval(&self, tab: &Tab, expression: &str) -> Result<Value, Error> {
        let result = self
            .rpc
            .call(
                "script.evaluate",
                json!({
                    "expression": expression,
                    "target": {"context": tab.id},
                    "awaitPromise": true,
                    "resultOwnership": "none",
                }),
                json!({}),
            )
            .await?;
        if result["type"] == "exception" {
            return Err(Error::Browser(format!(
                "page threw: {}",
                result["exceptionDetails"]["text"]
            )));
        }
        // Callers stringify their result (see `Browser::eval_json`), so a string comes back.
        Ok(match &result["result"] {
            v if v["type"] == "string" => v["value"].clone(),
            v if v["type"] == "undefined" || v["type"] == "null" => Value::Null,
            other => other.clone(),
        })
    }

    /// A PNG of the page, base64-encoded.
    pub async fn screenshot(&self, tab: &Tab) -> Result<String, Error> {
        let shot = self
            .rpc
            .call(
                "browsingContext.captureScreenshot",
                json!({"context": tab.id}),
                json!({}),
            )
            .await?;
        shot["data"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| Error::Browser(format!("screenshot without data: {shot}")))
    }

    /// Console calls in `tab` from now on, as `(level, text)`.
    pub async fn console(&self, tab: &Tab) -> Result<ConsoleEvents, Error> {
        let events = self.rpc.events();
        self.rpc
            .call(
                "session.subscribe",
                json!({"events": ["log.entryAdded"], "contexts": [tab.id]}),
                json!({}),
            )
            .await?;
        let context = tab.id.clone();
        Ok(ConsoleEvents {
            events,
            pick: Box::new(move |e: &Value| {
                let p = &e["params"];
                if e["method"] != "log.entryAdded" || p["source"]["context"] != context.as_str() {
                    return None;
                }
                Some((
                    p["level"].as_str().unwrap_or("log").to_string(),
                    p["text"].as_str().unwrap_or_default().to_string(),
                ))
            }),
        })
    }

    pub async fn close(&self, tab: &Tab) -> Result<(), Error> {
        self.rpc
            .call(
                "browsingContext.close",
                json!({"context": tab.id}),
                json!({}),
            )
            .await
            .map(|_| ())
    }
}
