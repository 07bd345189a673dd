//! Ground truth: what a page really costs when it loads in headless Chromium (no extension),
//! measured over CDP. Each run uses a fresh browser context (empty cache, fresh JS heap), waits
//! for the load event and for the page's scheduled work to drain, then reads
//! `Performance.getMetrics` (ScriptDuration, TaskDuration, JSHeapUsedSize, plus the array
//! buffers' backing stores from `Runtime.getHeapUsage`) and sums the bytes of every
//! `Network.loadingFinished` of that page.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::process::Command;

use crate::Error;
use crate::browser::BrowserProcess;
use crate::rpc::RpcClient;

/// One page load's measurements.
#[derive(Debug, Clone, Copy, Default)]
pub struct Measured {
    pub script_ms: f64,
    pub task_ms: f64,
    pub heap_bytes: f64,
    pub network_bytes: f64,
}

pub struct Chromium {
    rpc: RpcClient,
    _process: BrowserProcess,
}

const DEADLINE: Duration = Duration::from_secs(120);

/// Resolves once the document is complete and `window.__pending` (the corpus prelude's count
/// of scheduled work) is zero: a condition checked by the page itself, with the deadline on
/// our side.
const SETTLED: &str = r#"new Promise((resolve) => {
  const check = () => (document.readyState === "complete" && !(window.__pending > 0))
    ? resolve(true) : setTimeout(check, 5);
  check();
})"#;

impl Chromium {
    pub async fn launch(chromium: &Path, dir: &Path) -> Result<Self, Error> {
        let mut cmd = Command::new(chromium);
        cmd.args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--remote-debugging-port=0",
        ])
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .arg("about:blank");
        let (process, url) = BrowserProcess::spawn(
            cmd,
            dir.join("chromium.log"),
            "DevTools listening on",
            Duration::from_secs(60),
        )
        .await?;
        let rpc = RpcClient::connect(&url).await?;
        Ok(Chromium {
            rpc,
            _process: process,
        })
    }

    async fn call(
        &self,
        method: &str,
        params: Value,
        session: Option<&str>,
    ) -> Result<Value, Error> {
        let extra = match session {
            Some(s) => json!({ "sessionId": s }),
            None => json!({}),
        };
        self.rpc.call(method, params, extra).await
    }

    /// Loads `url` once in a fresh browser context and measures it.
    pub async fn measure(&self, url: &str) -> Result<Measured, Error> {
        let context = self
            .call("Target.createBrowserContext", json!({}), None)
            .await?;
        let context_id = context["browserContextId"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let target = self
            .call(
                "Target.createTarget",
                json!({ "url": "about:blank", "browserContextId": context_id }),
                None,
            )
            .await?;
        let target_id = target["targetId"].as_str().unwrap_or("").to_string();
        let attached = self
            .call(
                "Target.attachToTarget",
                json!({ "targetId": target_id, "flatten": true }),
                None,
            )
            .await?;
        let session = attached["sessionId"].as_str().unwrap_or("").to_string();
        let s = Some(session.as_str());
        let mut events = self.rpc.events();
        self.call("Page.enable", json!({}), s).await?;
        self.call("Network.enable", json!({}), s).await?;
        self.call(
            "Network.setCacheDisabled",
            json!({ "cacheDisabled": true }),
            s,
        )
        .await?;
        self.call(
            "Performance.enable",
            json!({ "timeDomain": "threadTicks" }),
            s,
        )
        .await?;
        self.call("Page.navigate", json!({ "url": url }), s).await?;
        let network = tokio::time::timeout(DEADLINE, async {
            let mut bytes = 0.0;
            loop {
                match events.recv().await {
                    Ok(e) if e["sessionId"].as_str() == Some(session.as_str()) => {
                        match e["method"].as_str() {
                            Some("Network.loadingFinished") => {
                                bytes += e["params"]["encodedDataLength"].as_f64().unwrap_or(0.0);
                            }
                            Some("Page.loadEventFired") => return Ok(bytes),
                            _ => {}
                        }
                    }
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(_) => return Err(Error::Browser("browser connection closed".into())),
                }
            }
        })
        .await
        .map_err(|_| Error::Timeout(format!("{url} did not load")))??;
        let settled = self
            .call(
                "Runtime.evaluate",
                json!({ "expression": SETTLED, "awaitPromise": true, "returnByValue": true }),
                s,
            )
            .await?;
        if settled["result"]["value"] != json!(true) {
            return Err(Error::Browser(format!("{url} did not settle: {settled}")));
        }
        let metrics = self.call("Performance.getMetrics", json!({}), s).await?;
        let metric = |name: &str| {
            metrics["metrics"]
                .as_array()
                .and_then(|m| m.iter().find(|x| x["name"] == name))
                .and_then(|x| x["value"].as_f64())
                .unwrap_or(0.0)
        };
        // Typed arrays keep their bytes outside the JS heap, in backing stores that
        // JSHeapUsedSize leaves out but the page holds all the same.
        let usage = self.call("Runtime.getHeapUsage", json!({}), s).await?;
        let backing = usage["backingStorageSize"].as_f64().unwrap_or(0.0);
        let measured = Measured {
            script_ms: metric("ScriptDuration") * 1e3,
            task_ms: metric("TaskDuration") * 1e3,
            heap_bytes: metric("JSHeapUsedSize") + backing,
            network_bytes: network,
        };
        self.call("Target.closeTarget", json!({ "targetId": target_id }), None)
            .await?;
        self.call(
            "Target.disposeBrowserContext",
            json!({ "browserContextId": context_id }),
            None,
        )
        .await?;
        Ok(measured)
    }
}
