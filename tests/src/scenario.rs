//! The walking skeleton's whole data flow, as one scenario both the end-to-end tests and the
//! demo run: a page with a Web Worker is loaded in a real browser with the real extension;
//! the estimator, the native host, the broker and the orchestrator each do their part; every
//! claim is checked against evidence from the part itself (the host's audit log, the broker's
//! events, the page's own result).

use std::time::Duration;

use foresight_broker::{BrokerEvent, LeaseEndCause};
use foresight_shared::protocol::broker::EngineKind;
use serde_json::Value;

use crate::Error;
use crate::artifacts::Artifacts;
use crate::broker::LocalBroker;
use crate::browser::{Browser, BrowserKind, LaunchOptions, Tab};
use crate::host::{self, HostLog};
use crate::http::StaticServer;

/// The fixture page and its worker, under tests/fixtures.
pub const PAGE: &str = "worker-page/index.html";
pub const WORKER: &str = "worker-page/worker.js";

/// Generous, because a loaded 2-core CI machine is slow; these are deadlines, not sleeps.
const DEADLINE: Duration = Duration::from_secs(60);

/// What the fixture's worker computes (tests/fixtures/worker-page/worker.js), computed here
/// independently so the page's answer can be checked.
pub fn expected_acc() -> u64 {
    let mut acc: u64 = 0;
    for i in 0..60_000_000u64 {
        acc = (acc + i * i) % 1_000_003;
    }
    acc
}

/// One browser with the extension, the host installed into its profile, a broker and the
/// fixture site, all in a throwaway directory.
pub struct Rig {
    pub kind: BrowserKind,
    pub artifacts: Artifacts,
    pub site: StaticServer,
    pub broker: LocalBroker,
    /// The engine the broker runs the page's workers on.
    pub engine: EngineKind,
    pub host_log: HostLog,
    pub browser: Browser,
    // Dropped last: the browser must be gone before its profile is deleted.
    pub dir: tempfile::TempDir,
}

/// How a rig is set up.
#[derive(Debug, Clone)]
pub struct RigOptions {
    pub headless: bool,
    /// Artifacts found elsewhere (the benchmarks use release builds); `None` locates the
    /// usual ones.
    pub artifacts: Option<Artifacts>,
    /// Whether the native host names the rig's broker to the extension (through
    /// `FORESIGHT_BROKER_URL`). Without it the extension uses its settings or the default.
    pub announce_broker: bool,
    /// Where the host is installed and which profile Chromium uses.
    pub layout: host::Layout,
    /// The engine the broker runs workers on: QuickJS (the default) or V8 in Node.
    pub engine: EngineKind,
    /// A broker the host names to the extension instead of the rig's own (the benchmarks
    /// run the real broker binary on other CPUs). The rig's broker still runs, unused.
    pub broker_url: Option<String>,
    /// The rig's broker accepts at most this many connections at once (`None`: its
    /// default). At 1, a tab's data channel is refused and its workers' data is relayed.
    pub broker_connections: Option<usize>,
}

impl Default for RigOptions {
    fn default() -> Self {
        Self {
            headless: true,
            artifacts: None,
            announce_broker: true,
            layout: host::Layout::Profile,
            engine: EngineKind::Quickjs,
            broker_url: None,
            broker_connections: None,
        }
    }
}

impl Rig {
    pub async fn start(kind: BrowserKind, headless: bool) -> Result<Self, Error> {
        Self::start_with(
            kind,
            RigOptions {
                headless,
                ..RigOptions::default()
            },
        )
        .await
    }

    pub async fn start_with(kind: BrowserKind, options: RigOptions) -> Result<Self, Error> {
        let headless = options.headless;
        let artifacts = match options.artifacts {
            Some(artifacts) => artifacts,
            None => Artifacts::locate()?,
        };
        let dir = tempfile::Builder::new()
            .prefix(&format!("foresight-{}-", kind.name()))
            .tempdir()?;
        let site = StaticServer::start(Artifacts::fixtures_dir()).await?;
        let broker =
            LocalBroker::start(&artifacts, options.engine, options.broker_connections).await?;
        host::install(&artifacts, kind, options.layout, dir.path())?;
        let host_log = HostLog::new(dir.path().join("host-audit.jsonl"));
        // The browser passes its environment to the native host it starts; the host tells
        // the extension which broker to use, exactly as a user's configured host would.
        let mut env = vec![(
            host::ENV_HOST_LOG.to_string(),
            host_log.path.display().to_string(),
        )];
        if options.announce_broker {
            let url = options.broker_url.clone().unwrap_or_else(|| broker.url());
            env.push((host::ENV_BROKER_URL.to_string(), url));
        }
        let browser = Browser::launch(
            kind,
            LaunchOptions {
                artifacts: &artifacts,
                dir: dir.path(),
                env,
                headless,
                chromium_profile: (options.layout == host::Layout::ChromeDefault)
                    .then(|| host::chrome_profile(dir.path())),
            },
        )
        .await?;
        Ok(Self {
            kind,
            artifacts,
            site,
            broker,
            engine: options.engine,
            host_log,
            browser,
            dir,
        })
    }

    /// Adds the browser's log location to an error, so a failure can be diagnosed.
    pub fn context(&self, e: Error) -> Error {
        Error::Setup(format!(
            "{e}\n  browser log: {}\n  host audit log: {}",
            self.browser.log_path().display(),
            self.host_log.path.display()
        ))
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        // FORESIGHT_KEEP_RIG=1 keeps each rig's profile, browser log and host audit log for a
        // post-mortem.
        if std::env::var_os("FORESIGHT_KEEP_RIG").is_some() {
            self.dir.disable_cleanup(true);
            eprintln!("rig kept in {}", self.dir.path().display());
        }
    }
}

impl Rig {
    /// Waits until the extension's background has measured this device and stored the
    /// factor: estimates made before that use the default, so a test that compares estimates
    /// over time must start after it.
    pub async fn wait_for_calibration(&self) -> Result<(), Error> {
        let page = self
            .browser
            .open_extension_page(
                "options.html",
                "document.readyState === 'complete'",
                DEADLINE,
            )
            .await?;
        self.browser
            .wait_for(
                &page,
                "(async api => !!(await api.storage.local.get('calibration')).calibration)\
                 (globalThis.browser ?? globalThis.chrome)",
                DEADLINE,
            )
            .await?;
        self.browser.close(&page).await
    }
}

/// Receives the seven steps of the data flow as they are observed.
pub type Report<'a> = &'a mut dyn FnMut(u8, &str, String);

/// What the remote run observed.
#[derive(Debug)]
pub struct RemoteRun {
    pub demand: Value,
    pub plan: Value,
    pub lease_id: u64,
    pub worker_id: String,
    pub executor_pid: u32,
    pub page_result: Value,
}

fn summarize_demand(demand: &Value) -> String {
    let load = &demand["paths"][0];
    let mut s = format!(
        "graph of {} nodes / {} edges from {} scripts; load path CPU p50 {:.1} ms (p90 {:.1})",
        demand["graph"]["nodes"],
        demand["graph"]["edges"],
        demand["graph"]["scripts"],
        load["cpu_ms"]["p50"].as_f64().unwrap_or(0.0),
        load["cpu_ms"]["p90"].as_f64().unwrap_or(0.0),
    );
    for c in demand["components"].as_array().into_iter().flatten() {
        s.push_str(&format!(
            "; {} {} CPU p50 {:.0} ms (p10 {:.0}, p90 {:.0})",
            c["id"].as_str().unwrap_or("?"),
            c["url"].as_str().unwrap_or("?"),
            c["cpu_ms"]["p50"].as_f64().unwrap_or(0.0),
            c["cpu_ms"]["p10"].as_f64().unwrap_or(0.0),
            c["cpu_ms"]["p90"].as_f64().unwrap_or(0.0),
        ));
    }
    s
}

fn summarize_contention(c: &Value) -> String {
    format!(
        "{} CPUs, {:.0}% busy, {} idle millicores, {:.1} GiB of {:.1} GiB memory available (measured by {})",
        c["logical_cpus"],
        c["cpu_usage"].as_f64().unwrap_or(0.0) * 100.0,
        c["available_cpu_millicores"],
        c["available_memory_bytes"].as_f64().unwrap_or(0.0) / f64::from(1u32 << 30),
        c["total_memory_bytes"].as_f64().unwrap_or(0.0) / f64::from(1u32 << 30),
        c["source"].as_str().unwrap_or("?"),
    )
}

fn summarize_plan(plan: &Value) -> String {
    let mut s = format!(
        "reserve {} millicores locally; ",
        plan["local"]["cpu_millicores"]
    );
    match plan["remote"].as_object() {
        Some(r) => s.push_str(&format!(
            "lease {} millicores, {} MiB for {} s",
            r["resources"]["cpu_millicores"],
            r["resources"]["memory_bytes"].as_u64().unwrap_or(0) >> 20,
            r["ttl_ms"].as_u64().unwrap_or(0) / 1000
        )),
        None => s.push_str("nothing remote"),
    }
    for p in plan["placements"].as_array().into_iter().flatten() {
        s.push_str(&format!(
            "; {} -> {} ({})",
            p["component_id"].as_str().unwrap_or("?"),
            p["target"].as_str().unwrap_or("?"),
            p["reason"].as_str().unwrap_or("")
        ));
    }
    s
}

/// Loads the fixture page with the broker up: the worker must run on the broker, the page
/// must get the right answer, and closing the tab must release the lease.
pub async fn remote_run(rig: &mut Rig, report: Report<'_>) -> Result<RemoteRun, Error> {
    let page_url = rig.site.url(PAGE);
    let worker_url = rig.site.url(WORKER);
    let log_mark = rig.host_log.len();
    let event_mark = rig.broker.events().len();

    let tab = rig.browser.open(&page_url).await?;
    report(
        1,
        "page loaded",
        format!("{page_url} in {}", rig.kind.name()),
    );

    // 2. The estimator's output reaches the host inside the plan request.
    let (_, request) = rig
        .host_log
        .wait_for("a plan request for the page", log_mark, DEADLINE, |e| {
            e["dir"] == "in" && e["msg"]["type"] == "plan" && e["msg"]["demand"]["url"] == page_url
        })
        .await?;
    let demand = request["msg"]["demand"].clone();
    let worker = demand["components"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["url"] == worker_url))
        .ok_or_else(|| Error::Setup(format!("the estimate has no component for {worker_url}")))?;
    if worker["source_known"] != true || demand["graph"]["scripts"].as_u64().unwrap_or(0) == 0 {
        return Err(Error::Setup(format!("sources were not captured: {demand}")));
    }
    report(2, "estimated", summarize_demand(&demand));
    if request["msg"]["broker"]["available"] != true {
        return Err(Error::Setup(format!(
            "the extension did not reach the broker before planning: {}",
            request["msg"]["broker"]
        )));
    }

    // 3. The host's plan, against contention it measured.
    let (_, reply) = rig
        .host_log
        .wait_for("a plan reply", log_mark, DEADLINE, |e| {
            e["dir"] == "out" && e["msg"]["type"] == "plan" && e["msg"]["plan"]["url"] == page_url
        })
        .await?;
    let plan = reply["msg"]["plan"].clone();
    report(
        3,
        "contention and plan (native host)",
        format!(
            "{}\n      {}",
            summarize_contention(&reply["msg"]["contention"]),
            summarize_plan(&plan)
        ),
    );
    let placed_remote = plan["placements"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|p| p["url"] == worker_url && p["target"] == "remote");
    if !placed_remote || plan["source"] != "native_host" {
        return Err(Error::Setup(format!(
            "the host did not place the worker remotely: {plan}"
        )));
    }

    // 4-5. The lease, as the broker granted it.
    let (_, lease) = rig
        .broker
        .wait_for("a lease for the page", event_mark, DEADLINE, |e| match e {
            BrokerEvent::LeaseGranted { lease, purpose, .. } if *purpose == page_url => {
                Some(lease.clone())
            }
            _ => None,
        })
        .await?;
    let asked = &plan["remote"];
    report(
        4,
        "lease requested",
        format!(
            "lease_request for {} millicores, {} MiB, TTL {} s, priority {}, for {page_url}",
            asked["resources"]["cpu_millicores"],
            asked["resources"]["memory_bytes"].as_u64().unwrap_or(0) >> 20,
            asked["ttl_ms"].as_u64().unwrap_or(0) / 1000,
            asked["priority"]
        ),
    );
    report(
        5,
        "lease granted (broker)",
        format!(
            "lease #{} of {} millicores and {} MiB for {} s, fencing epoch {}",
            lease.lease_id,
            lease.resources.cpu_millicores,
            lease.resources.memory_bytes >> 20,
            lease.ttl_ms / 1000,
            lease.epoch
        ),
    );

    // 6. The worker ran on the broker, and the page got its answer.
    let (_, (worker_id, executor_pid)) = rig
        .broker
        .wait_for("the worker starting", event_mark, DEADLINE, |e| match e {
            BrokerEvent::WorkerStarted {
                lease_id,
                worker_id,
                script_url,
                executor_pid,
                ..
            } if *lease_id == lease.lease_id && *script_url == worker_url => {
                Some((worker_id.clone(), *executor_pid))
            }
            _ => None,
        })
        .await?;
    let page_result = rig.browser.eval(&tab, "window.fixtureDone").await?;
    let expected = expected_acc();
    if page_result["acc"].as_u64() != Some(expected) {
        return Err(Error::Setup(format!(
            "the page got {page_result}, expected acc = {expected}"
        )));
    }
    let wid = worker_id.clone();
    let (_, remote_data) = rig
        .broker
        .wait_for(
            "the worker's result",
            event_mark,
            DEADLINE,
            move |e| match e {
                BrokerEvent::WorkerMessageOut { worker_id, data } if *worker_id == wid => {
                    Some(data.clone())
                }
                _ => None,
            },
        )
        .await?;
    if remote_data["acc"].as_u64() != Some(expected) {
        return Err(Error::Setup(format!(
            "the broker relayed {remote_data}, expected acc = {expected}"
        )));
    }
    report(
        6,
        "worker ran on the broker",
        format!(
            "worker {worker_id} in executor process {executor_pid}; the page received {page_result}"
        ),
    );

    // 7. The page goes away: the lease is released, not left to expire.
    rig.browser.close(&tab).await?;
    let lease_id = lease.lease_id;
    rig.broker
        .wait_for("the lease released", event_mark, DEADLINE, |e| match e {
            BrokerEvent::LeaseEnded {
                lease_id: id,
                cause,
                ..
            } if *id == lease_id => Some(*cause),
            _ => None,
        })
        .await
        .and_then(|(_, cause)| match cause {
            LeaseEndCause::Released => Ok(()),
            other => Err(Error::Setup(format!(
                "lease {lease_id} ended by {other:?}, not released by the extension"
            ))),
        })?;
    report(
        7,
        "tab closed: lease released",
        format!("lease #{lease_id} released by the orchestrator"),
    );

    Ok(RemoteRun {
        demand,
        plan,
        lease_id,
        worker_id,
        executor_pid,
        page_result,
    })
}

/// With the broker stopped, the same page must still get the right answer, from a local
/// worker, with a plan that says why.
pub async fn local_fallback_run(rig: &mut Rig, report: Report<'_>) -> Result<Value, Error> {
    rig.broker.stop().await?;
    let page_url = rig.site.url(PAGE);
    let worker_url = rig.site.url(WORKER);
    let log_mark = rig.host_log.len();

    let tab = rig.browser.open(&page_url).await?;
    let (_, reply) = rig
        .host_log
        .wait_for("a plan reply without a broker", log_mark, DEADLINE, |e| {
            e["dir"] == "out" && e["msg"]["type"] == "plan" && e["msg"]["plan"]["url"] == page_url
        })
        .await?;
    let plan = reply["msg"]["plan"].clone();
    let all_local = plan["remote"].is_null()
        && plan["placements"]
            .as_array()
            .into_iter()
            .flatten()
            .all(|p| p["target"] == "local");
    if !all_local {
        return Err(Error::Setup(format!(
            "with the broker down the plan still offloads: {plan}"
        )));
    }
    let page_result = rig.browser.eval(&tab, "window.fixtureDone").await?;
    if page_result["acc"].as_u64() != Some(expected_acc()) {
        return Err(Error::Setup(format!(
            "the page got {page_result} from its local worker"
        )));
    }
    report(
        7,
        "broker unreachable: local fallback",
        format!(
            "{}; {worker_url} ran locally and the page received {page_result}",
            summarize_plan(&plan)
        ),
    );
    rig.browser.close(&tab).await?;
    Ok(page_result)
}

impl Rig {
    /// What the popup would show for the tab at `page_url` (the orchestrator's
    /// `popup-state`), asked from `control`, an extension page of the rig's browser.
    pub async fn popup_state(&self, control: &Tab, page_url: &str) -> Result<Value, Error> {
        self.browser
            .eval(control, &popup_state_expression(page_url, "true"))
            .await
    }

    /// Waits until `condition` (JavaScript over `s`, the tab's popup state) holds, and
    /// returns that state.
    pub async fn wait_for_popup_state(
        &self,
        control: &Tab,
        page_url: &str,
        condition: &str,
        deadline: Duration,
    ) -> Result<Value, Error> {
        self.browser
            .wait_for(
                control,
                &popup_state_expression(page_url, condition),
                deadline,
            )
            .await
    }
}

/// The popup state of the tab at `page_url` if `condition` holds of it (as `s`), else false.
fn popup_state_expression(page_url: &str, condition: &str) -> String {
    let url = serde_json::to_string(page_url).unwrap_or_default();
    format!(
        "(async api => {{
            const [t] = (await api.tabs.query({{}})).filter(t => t.url === {url});
            if (!t) return false;
            const s = await api.runtime.sendMessage({{ kind: 'popup-state', tabId: t.id }});
            return ({condition}) && s;
        }})(globalThis.browser ?? globalThis.chrome)"
    )
}
