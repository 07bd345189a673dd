//! End-to-end: plans react to real load. The light-worker fixture is planned in real Chromium
//! with the real host and broker; then a CPU hog and a memory hog start beside the browser (a
//! separate process, `foresight-hog`), the host's contention updates show them, and the same
//! page's plan must move the worker remote; when they stop, the plan must come back.
//!
//! Robust to a machine that is already busy (CI shares its cores): the hog is sized to at
//! least triple what already competes for the CPUs; "back" means back to the placement the
//! page had before the hogs (or local, if the machine has meanwhile become quieter); and the planner's local estimate for the worker must rise at
//! least by half under the hogs and fall as much after. Every wait has a deadline and waits
//! on evidence (the host's audit log, the plans themselves), never on time alone.

use std::process::Stdio;
use std::time::Duration;

use foresight_tests::Error;
use foresight_tests::browser::BrowserKind;
use foresight_tests::scenario::Rig;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const PAGE: &str = "light-worker/index.html";
const WORKER: &str = "light-worker/worker.js";
const DEADLINE: Duration = Duration::from_secs(90);
const HOG_MIB: u64 = 2048;

/// The hog: enough spinning threads to at least triple what competes for the CPUs already
/// (a shared machine may be busy before the test starts), niced so the browser under test
/// keeps making progress.
async fn start_hog(runnable_before: f64) -> Result<Child, Error> {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let threads = (4 * cores).max((2.0 * runnable_before).ceil() as usize + 2);
    eprintln!("starting a hog of {threads} threads and {HOG_MIB} MiB");
    let mut child = Command::new(env!("CARGO_BIN_EXE_foresight-hog"))
        .args(["--cpu-threads", &threads.to_string()])
        .args(["--memory-mib", &HOG_MIB.to_string(), "--nice", "10"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| Error::Setup("hog stdout".into()))?;
    let mut lines = BufReader::new(stdout).lines();
    match tokio::time::timeout(DEADLINE, lines.next_line()).await {
        Ok(Ok(Some(line))) if line == "ready" => Ok(child),
        other => Err(Error::Setup(format!("the hog did not start: {other:?}"))),
    }
}

/// The plan the host made for the page's next load, with the worker's placement.
async fn plan_for_page(
    rig: &Rig,
    page_url: &str,
    worker_url: &str,
) -> Result<(Value, Value), Error> {
    let mark = rig.host_log.len();
    let tab = rig.browser.open(page_url).await?;
    // The request carries the browser's other tabs (at least the blank one it started with).
    let (_, request) = rig
        .host_log
        .wait_for("a plan request for the page", mark, DEADLINE, |e| {
            e["dir"] == "in" && e["msg"]["type"] == "plan" && e["msg"]["demand"]["url"] == page_url
        })
        .await?;
    let tabs = request["msg"]["tabs"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if tabs.is_empty()
        || tabs
            .iter()
            .any(|t| !t["tab_id"].is_i64() || !t["active"].is_boolean())
    {
        return Err(Error::Setup(format!(
            "the plan request did not describe the other tabs: {}",
            request["msg"]["tabs"]
        )));
    }
    let (_, reply) = rig
        .host_log
        .wait_for("a plan for the page", mark, DEADLINE, |e| {
            e["dir"] == "out" && e["msg"]["type"] == "plan" && e["msg"]["plan"]["url"] == page_url
        })
        .await?;
    // The page must get its answer wherever the worker ran.
    let result = rig.browser.eval(&tab, "window.fixtureDone").await?;
    if result["acc"].as_u64().is_none() {
        return Err(Error::Setup(format!("the page got no answer: {result}")));
    }
    rig.browser.close(&tab).await?;
    let c = &reply["msg"]["contention"];
    eprintln!(
        "  planned against {} idle millicores (forecast {}), {} runnable tasks, CPU pressure {}",
        c["available_cpu_millicores"],
        c["forecast"]["available_cpu_millicores"],
        c["runnable_tasks"],
        c["pressure"]["cpu_some_avg10"]
    );
    let plan = reply["msg"]["plan"].clone();
    let placement = plan["placements"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["url"] == worker_url))
        .cloned()
        .ok_or_else(|| Error::Setup(format!("no placement for {worker_url}: {plan}")))?;
    Ok((plan, placement))
}

/// Loads the page until its plan satisfies `wanted`, or fails at the deadline. The machine
/// is shared: a plan is a reading of a noisy system, so the condition is waited for, not
/// assumed of the first load.
async fn plan_until(
    rig: &Rig,
    page_url: &str,
    worker_url: &str,
    what: &str,
    wanted: impl Fn(&Value, &Value) -> bool,
) -> Result<(Value, Value), Error> {
    let end = std::time::Instant::now() + DEADLINE;
    loop {
        let (plan, placement) = plan_for_page(rig, page_url, worker_url).await?;
        if wanted(&plan, &placement) {
            return Ok((plan, placement));
        }
        if std::time::Instant::now() > end {
            return Err(Error::Timeout(format!(
                "{what}; the last plan placed the worker: {placement}"
            )));
        }
    }
}

/// The most recent contention the host reported, from any message that carries one.
fn latest_contention(rig: &Rig) -> Option<Value> {
    rig.host_log
        .last(|e| e["dir"] == "out" && e["msg"]["contention"].is_object())
        .map(|e| e["msg"]["contention"].clone())
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

async fn plans_follow_the_load(rig: &mut Rig) -> Result<(), Error> {
    let page_url = rig.site.url(PAGE);
    let worker_url = rig.site.url(WORKER);

    // Estimates change once the device is calibrated: compare plans only after that.
    rig.wait_for_calibration().await?;
    // Before: whatever this machine is doing right now.
    let (_, before) = plan_for_page(rig, &page_url, &worker_url).await?;
    let baseline = latest_contention(rig)
        .ok_or_else(|| Error::Setup("the host reported no contention".into()))?;
    eprintln!(
        "before: worker {} ({}); {} idle millicores, {:.1} GiB available",
        before["target"],
        before["reason"],
        baseline["available_cpu_millicores"],
        num(&baseline["available_memory_bytes"]) / f64::from(1u32 << 30)
    );

    // The hogs start; the host must see both.
    let mark = rig.host_log.len();
    let runnable_before = num(&baseline["runnable_tasks"]);
    let mut hog = start_hog(runnable_before).await?;
    let hog_bytes = (HOG_MIB << 20) as f64;
    let memory_before = num(&baseline["available_memory_bytes"]);
    let (_, seen) = rig
        .host_log
        .wait_for("contention updates showing the hogs", mark, DEADLINE, |e| {
            let c = &e["msg"]["contention"];
            e["msg"]["type"] == "contention_changed"
                && num(&c["runnable_tasks"]) >= runnable_before + 4.0
                && num(&c["available_memory_bytes"]) <= memory_before - hog_bytes / 2.0
        })
        .await?;
    eprintln!(
        "hogs seen: {} ({} runnable tasks, {} idle millicores, {:.1} GiB available)",
        seen["msg"]["reasons"],
        seen["msg"]["contention"]["runnable_tasks"],
        seen["msg"]["contention"]["available_cpu_millicores"],
        num(&seen["msg"]["contention"]["available_memory_bytes"]) / f64::from(1u32 << 30)
    );
    let before_ms = num(&before["local_ms"]);
    let (_, during) = plan_until(
        rig,
        &page_url,
        &worker_url,
        "under the hogs the worker never went remote with a local estimate 1.5x higher",
        |plan, p| {
            p["target"] == "remote"
                && !plan["remote"].is_null()
                && num(&p["local_ms"]) >= 1.5 * before_ms
        },
    )
    .await?;
    eprintln!("during: worker {} ({})", during["target"], during["reason"]);

    // The hogs stop (their stdin closes); the host must see the machine come back.
    drop(hog.stdin.take());
    tokio::time::timeout(DEADLINE, hog.wait())
        .await
        .map_err(|_| Error::Timeout("the hog did not exit".into()))??;
    let mark = rig.host_log.len();
    let runnable_during = num(&seen["msg"]["contention"]["runnable_tasks"]);
    rig.host_log
        .wait_for("contention updates after the hogs", mark, DEADLINE, |e| {
            let c = &e["msg"]["contention"];
            e["msg"]["type"] == "contention_changed"
                && num(&c["runnable_tasks"]) < (runnable_before + runnable_during) / 2.0
                && num(&c["available_memory_bytes"]) >= memory_before - hog_bytes / 4.0
        })
        .await?;
    let during_ms = num(&during["local_ms"]);
    let (_, after) = plan_until(
        rig,
        &page_url,
        &worker_url,
        "after the hogs the plan never came back (to its placement from before, or local)",
        |_, p| {
            (p["target"] == before["target"] || p["target"] == "local")
                && num(&p["local_ms"]) * 1.5 <= during_ms
        },
    )
    .await?;
    eprintln!("after: worker {} ({})", after["target"], after["reason"]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plans_move_work_remote_under_load_and_back_when_it_ends() {
    let mut rig = match Rig::start(BrowserKind::Chromium, true).await {
        Ok(rig) => rig,
        Err(e) => panic!("chromium could not be set up: {e}"),
    };
    if let Err(e) = plans_follow_the_load(&mut rig).await {
        panic!("{}", rig.context(e));
    }
}
