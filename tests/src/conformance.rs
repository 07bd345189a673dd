//! Remote workers, seen from a real page (tests/fixtures/conformance): the same worker
//! programs through a native Worker and through the page's Worker (placed on the broker) must
//! give the page identical observations; page code must not be able to impersonate the
//! extension; a hostile worker ends with a typed error in the page; a worker whose broker goes
//! away moves to the page without the page noticing. Every claim is checked against evidence
//! from the broker too (which workers it really started and fed).

use std::time::Duration;

use foresight_broker::BrokerEvent;
use foresight_shared::protocol::broker::EngineKind;
use serde_json::{Value, json};

use crate::Error;
use crate::browser::{BrowserKind, Tab};
use crate::scenario::{Rig, RigOptions};

pub const PAGE: &str = "conformance/index.html";
const HEAVY: &str = "conformance/heavy.js";
const DEADLINE: Duration = Duration::from_secs(60);

/// A rig in `kind` set up as `options` says, with the conformance page [`open`]; a failure
/// to open the page carries the rig's logs.
pub async fn start(kind: BrowserKind, options: RigOptions) -> Result<(Rig, Tab), Error> {
    let mut rig = Rig::start_with(kind, options).await?;
    match open(&mut rig).await {
        Ok(tab) => Ok((rig, tab)),
        Err(e) => Err(rig.context(e)),
    }
}

/// Opens the conformance page and waits until the broker has granted its lease, so that the
/// page's workers are placed remotely.
pub async fn open(rig: &mut Rig) -> Result<Tab, Error> {
    let page_url = rig.site.url(PAGE);
    let mark = rig.broker.events().len();
    let tab = rig.browser.open(&page_url).await?;
    rig.broker
        .wait_for("a lease for the conformance page", mark, DEADLINE, |e| {
            matches!(e, BrokerEvent::LeaseGranted { purpose, .. } if *purpose == page_url)
                .then_some(())
        })
        .await?;
    Ok(tab)
}

/// The script URLs of the workers the broker started since event `since`.
pub fn started_urls(rig: &Rig, since: usize) -> Vec<String> {
    started(rig, since)
        .into_iter()
        .map(|(url, _)| url)
        .collect()
}

/// The workers the broker started since event `since`, with the engine each ran on.
fn started(rig: &Rig, since: usize) -> Vec<(String, EngineKind)> {
    rig.broker.events()[since..]
        .iter()
        .filter_map(|e| match e {
            BrokerEvent::WorkerStarted {
                script_url, engine, ..
            } => Some((script_url.clone(), *engine)),
            _ => None,
        })
        .collect()
}

/// Runs program `name` through a native Worker and then through the page's Worker: what each
/// observed, and the workers the broker started (with their engines) during the page's run.
pub async fn run_both(
    rig: &Rig,
    tab: &Tab,
    name: &str,
) -> Result<(Value, Value, Vec<(String, EngineKind)>), Error> {
    let native = rig
        .browser
        .eval(tab, &format!("runProgram({name:?}, 'native')"))
        .await?;
    let mark = rig.broker.events().len();
    let page = rig
        .browser
        .eval(tab, &format!("runProgram({name:?}, 'page')"))
        .await?;
    Ok((native, page, started(rig, mark)))
}

/// The ids of the workers the broker started since event `since` whose data did not go
/// through a tab's data channel (relayed by the extension's background instead).
pub fn relayed_workers(rig: &Rig, since: usize) -> Vec<String> {
    let events = &rig.broker.events()[since..];
    let bound: Vec<&String> = events
        .iter()
        .filter_map(|e| match e {
            BrokerEvent::WorkerBound { worker_id, .. } => Some(worker_id),
            _ => None,
        })
        .collect();
    events
        .iter()
        .filter_map(|e| match e {
            BrokerEvent::WorkerStarted { worker_id, .. } if !bound.contains(&worker_id) => {
                Some(worker_id.clone())
            }
            _ => None,
        })
        .collect()
}

/// One program's comparison: `(name, observations)`, or an error naming the difference.
/// Its remote run must have taken the direct path (the tab's data channel).
pub async fn program(rig: &mut Rig, tab: &Tab, name: &str) -> Result<Value, Error> {
    let mark = rig.broker.events().len();
    let (native, page, started) = run_both(rig, tab, name).await?;
    let relayed = relayed_workers(rig, mark);
    if !relayed.is_empty() {
        return Err(Error::Setup(format!(
            "program {name}: workers {relayed:?} were relayed, not on the tab's data channel"
        )));
    }
    if native != page {
        return Err(Error::Setup(format!(
            "program {name}: the page observed different results\n  native Worker: {native}\n  page's Worker: {page}"
        )));
    }
    // The page's run must really have been remote, on the rig's engine.
    if started.is_empty() {
        return Err(Error::Setup(format!(
            "program {name}: expected it on the broker, which started nothing"
        )));
    }
    if let Some((url, engine)) = started.iter().find(|(_, e)| *e != rig.engine) {
        return Err(Error::Setup(format!(
            "program {name}: {url} ran on {engine:?}, expected {:?}",
            rig.engine
        )));
    }
    Ok(page)
}

/// The impersonation attempts in runner.js: the forged channel gets nothing and starts
/// nothing; patched prototypes see nothing and forge nothing.
pub async fn impersonation(rig: &mut Rig, tab: &Tab) -> Result<Value, Error> {
    let heavy = rig.site.url(HEAVY);
    let mark = rig.broker.events().len();
    let report = rig
        .browser
        .eval(tab, &format!("impersonate({heavy:?})"))
        .await?;
    let genuine = json!({"type": "message", "data": {"$": "Object", "n": 10, "fib": 55}});
    if report["answer"] != genuine {
        return Err(Error::Setup(format!(
            "a page that patched prototypes changed its worker's answer: {report}"
        )));
    }
    if report["forgedChannelAnswers"] != 0 || report["spied"] != json!([]) {
        return Err(Error::Setup(format!(
            "page code reached the extension's channel: {report}"
        )));
    }
    let started = started_urls(rig, mark);
    if started.contains(&heavy) {
        return Err(Error::Setup(format!(
            "a forged worker-create started a worker: {started:?}"
        )));
    }
    Ok(report)
}

/// A memory bomb on the broker: the page gets a typed error event.
pub async fn hostile(rig: &mut Rig, tab: &Tab) -> Result<Value, Error> {
    let event = rig.browser.eval(tab, "runHostile('bomb')").await?;
    let message = event["message"].as_str().unwrap_or_default();
    if event["type"] != "error" || !message.starts_with("RemoteWorkerError: memory_limit") {
        return Err(Error::Setup(format!(
            "the memory bomb did not end with a typed error: {event}"
        )));
    }
    Ok(event)
}

/// A request/response worker is working remotely when the remote side fails (`how`): the
/// page still gets that answer (computed again locally) and later ones, each exactly once.
async fn moved(rig: &mut Rig, tab: &Tab, key: &str, how: Failure) -> Result<Value, Error> {
    let mark = rig.broker.events().len();
    let first = rig
        .browser
        .eval(tab, &format!("startSlow({key:?})"))
        .await?;
    if first["data"]["remote"] != true {
        return Err(Error::Setup(format!(
            "the slow worker did not start remotely: {first}"
        )));
    }
    let slow_url = rig.site.url("conformance/w/slow.js");
    let (_, (worker_id, pid)) = rig
        .broker
        .wait_for("the slow worker's executor", mark, DEADLINE, |e| match e {
            BrokerEvent::WorkerStarted {
                worker_id,
                script_url,
                executor_pid,
                ..
            } if *script_url == slow_url => Some((worker_id.clone(), *executor_pid)),
            _ => None,
        })
        .await?;
    rig.browser
        .eval(tab, &format!("slowRequest({key:?}, 2, 3000)"))
        .await?;
    let wid = worker_id.clone();
    rig.broker
        .wait_for("the remote worker receiving request 2", mark, DEADLINE, |e| {
            matches!(e, BrokerEvent::WorkerMessageIn { worker_id, data } if *worker_id == wid && data["id"] == 2)
                .then_some(())
        })
        .await?;
    match how {
        Failure::ExecutorKilled => {
            // SAFETY: kill(2) on the executor this test's broker started; no memory involved.
            if unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) } != 0 {
                return Err(Error::Setup(format!("cannot kill executor {pid}")));
            }
        }
        Failure::BrokerStopped => rig.broker.stop().await?,
    }
    let second = rig
        .browser
        .eval(tab, &format!("slowAnswer({key:?})"))
        .await?;
    rig.browser
        .eval(tab, &format!("slowRequest({key:?}, 3, 1)"))
        .await?;
    let third = rig
        .browser
        .eval(tab, &format!("slowAnswer({key:?})"))
        .await?;
    let extra = rig
        .browser
        .eval(tab, &format!("slowAnswer({key:?}, 400)"))
        .await?;
    let want =
        |id: u64| json!({"type": "message", "data": {"$": "Object", "id": id, "remote": false}});
    if second != want(2) || third != want(3) || extra["type"] != "none" {
        return Err(Error::Setup(format!(
            "moving the worker lost or repeated answers: {second} {third} then {extra}"
        )));
    }
    Ok(json!([first, second, third]))
}

/// How the remote side goes away in [`moved`].
#[derive(Debug, Clone, Copy)]
enum Failure {
    ExecutorKilled,
    BrokerStopped,
}

/// The worker's executor dies mid-request.
pub async fn moved_after_a_crash(rig: &mut Rig, tab: &Tab) -> Result<Value, Error> {
    moved(rig, tab, "crash", Failure::ExecutorKilled).await
}

/// The broker goes away mid-request (it is stopped for good: run this last).
pub async fn moved_while_working(rig: &mut Rig, tab: &Tab) -> Result<Value, Error> {
    moved(rig, tab, "broker", Failure::BrokerStopped).await
}

/// A remote worker's `console.warn` shows in the page's own console.
pub async fn console(rig: &mut Rig, tab: &Tab) -> Result<Value, Error> {
    let mut console = rig.browser.console(tab).await?;
    let done = rig.browser.eval(tab, "runConsole()").await?;
    if done["data"] != "logged" {
        return Err(Error::Setup(format!("the console worker said {done}")));
    }
    let (level, text) = console
        .wait_for("the remote worker's warning", DEADLINE, |level, text| {
            text.contains("remote console") && level == "warn"
        })
        .await?;
    if text != "remote console 42 {\"n\":1}" {
        return Err(Error::Setup(format!("the console showed {level} {text:?}")));
    }
    Ok(json!([level, text]))
}

/// With no data channel to be had (the broker refuses the tab's connection), a program
/// still gives the page what a native Worker gives it, relayed through the background.
pub async fn relayed(rig: &mut Rig, tab: &Tab, name: &str) -> Result<Value, Error> {
    let mark = rig.broker.events().len();
    let (native, page, started) = run_both(rig, tab, name).await?;
    if native != page {
        return Err(Error::Setup(format!(
            "program {name} (relayed): native {native}, page {page}"
        )));
    }
    let relayed = relayed_workers(rig, mark);
    if started.is_empty() || relayed.len() != started.len() {
        return Err(Error::Setup(format!(
            "program {name}: expected every worker relayed on the broker, started {started:?}, \
             relayed {relayed:?}"
        )));
    }
    let opened = rig.broker.events()[mark..]
        .iter()
        .any(|e| matches!(e, BrokerEvent::DataChannelOpened { .. }));
    if opened {
        return Err(Error::Setup(
            "a data channel opened although the broker was at its connection limit".into(),
        ));
    }
    Ok(page)
}

/// A worker the page terminates before it is placed never starts on the broker (by the time
/// a later worker has answered, its placement has long been decided).
pub async fn terminated_before_placement(rig: &mut Rig, tab: &Tab) -> Result<Value, Error> {
    let mark = rig.broker.events().len();
    let later = rig.browser.eval(tab, "terminateEarly()").await?;
    let started = started_urls(rig, mark);
    if started.iter().any(|u| u.ends_with("?early")) || started.is_empty() {
        return Err(Error::Setup(format!(
            "expected only the later worker on the broker, it started {started:?}"
        )));
    }
    Ok(later)
}
