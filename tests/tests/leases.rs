//! Leases as a page lives with them, in real headless Chromium and Firefox with the real
//! extension, host and broker, and another tenant of the broker (`LeaseClient`) beside them:
//!
//! 1. renewal: while the page has a remote worker, the extension renews its lease
//!    (`lease_renew`: browsers cannot send websocket pings), and the broker's new deadline
//!    reaches the popup;
//! 2. preemption: a tenant of higher priority takes the pool; the page's lease is revoked
//!    with notice, its running worker moves to the page without a lost or repeated answer,
//!    the tab is planned again (seen in the host's audit log), the next worker runs locally,
//!    and the popup says why;
//! 3. the queue: with the pool nearly full, a second page's lease request waits in the
//!    broker's queue and is granted when the first page's tab closes; its worker then runs
//!    on the broker. Before that, once the tenant has left room, the first page gets a lease
//!    back (a worker placed remotely asks for one by itself).

use std::time::Duration;

use foresight_broker::{BrokerEvent, LeaseEndCause};
use foresight_shared::protocol::plan::ResourceAmounts;
use foresight_tests::Error;
use foresight_tests::browser::{BrowserKind, Tab};
use foresight_tests::conformance;
use foresight_tests::lease_client::LeaseClient;
use foresight_tests::scenario::Rig;
use serde_json::json;

const DEADLINE: Duration = Duration::from_secs(60);
const OPTIONS_READY: &str = "document.readyState === 'complete'";

/// The lease the broker granted for `purpose`, at or after event `mark`.
async fn granted(
    rig: &mut Rig,
    purpose: &str,
    mark: usize,
) -> Result<(u64, foresight_shared::protocol::broker::Lease), Error> {
    let (_, found) = rig
        .broker
        .wait_for("a lease for the page", mark, DEADLINE, |e| match e {
            BrokerEvent::LeaseGranted {
                client_id,
                lease,
                purpose: p,
            } if p == purpose => Some((*client_id, lease.clone())),
            _ => None,
        })
        .await?;
    Ok(found)
}

/// Runs a conformance program through a native Worker and the page's Worker: the page must
/// observe the same, and the broker must start nothing (the page's Worker ran locally).
async fn local_run(rig: &mut Rig, tab: &Tab, name: &str) -> Result<(), Error> {
    let (native, page, started) = conformance::run_both(rig, tab, name).await?;
    if native != page || !started.is_empty() {
        return Err(Error::Setup(format!(
            "{name}: expected a local run with the native result {native}; the page saw {page} \
             and the broker started {started:?}"
        )));
    }
    Ok(())
}

async fn leases_as_the_page_sees_them(kind: BrowserKind) -> Result<(), Error> {
    let mut rig = Rig::start(kind, true).await?;
    let page_url = rig.site.url(conformance::PAGE);
    let mark = rig.broker.events().len();
    let tab = conformance::open(&mut rig).await?;
    let (extension, lease) = granted(&mut rig, &page_url, mark).await?;
    let control = rig
        .browser
        .open_extension_page("options.html", OPTIONS_READY, DEADLINE)
        .await?;

    // 1. Renewal, while a remote worker runs under the lease.
    let first = rig.browser.eval(&tab, "startSlow('kept')").await?;
    if first["data"]["remote"] != true {
        return Err(Error::Setup(format!(
            "the slow worker did not run remotely: {first}"
        )));
    }
    let before = rig
        .wait_for_popup_state(&control, &page_url, "s.tab?.lease", DEADLINE)
        .await?;
    let expires = before["tab"]["lease"]["expires_at_ms"]
        .as_u64()
        .ok_or_else(|| Error::Setup(format!("no lease deadline in {before}")))?;
    let renewed = rig
        .wait_for_popup_state(
            &control,
            &page_url,
            &format!(
                "s.tab?.lease?.lease_id === {} && s.tab.lease.expires_at_ms > {expires}",
                lease.lease_id
            ),
            Duration::from_secs(40),
        )
        .await?;
    eprintln!(
        "[{}] renewed: lease #{} now ends at {} (was {expires})",
        kind.name(),
        lease.lease_id,
        renewed["tab"]["lease"]["expires_at_ms"]
    );

    // 2. A tenant of higher priority wants the whole pool: the page's lease is revoked.
    let mut tenant = LeaseClient::connect(&rig.broker.url()).await?;
    let log_mark = rig.host_log.len();
    let event_mark = rig.broker.events().len();
    let taken = tenant.lease(tenant.capacity, 9, 10_000).await?;
    let tenant_lease = taken["lease"]["lease_id"]
        .as_u64()
        .ok_or_else(|| Error::Setup(format!("the tenant got no lease: {taken}")))?;
    let lease_id = lease.lease_id;
    rig.broker
        .wait_for("the page's lease revoked", event_mark, DEADLINE, |e| {
            matches!(e, BrokerEvent::LeaseEnded { lease_id: id, cause: LeaseEndCause::Revoked, .. } if *id == lease_id)
                .then_some(())
        })
        .await?;
    // The popup keeps why the tab was planned again (asked now: later contention changes may
    // push older re-plans out of the few it keeps).
    let replanned = rig
        .wait_for_popup_state(
            &control,
            &page_url,
            "(s.tab?.replans ?? []).some(r => r.why.includes('revoked (preempted)'))",
            DEADLINE,
        )
        .await?;
    let replans: Vec<String> = replanned["tab"]["replans"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["why"].as_str().map(str::to_owned))
        .collect();
    // The worker that was running moved to the page: the next answer comes from there, once.
    rig.browser.eval(&tab, "slowRequest('kept', 2, 1)").await?;
    let second = rig.browser.eval(&tab, "slowAnswer('kept')").await?;
    let extra = rig.browser.eval(&tab, "slowAnswer('kept', 400)").await?;
    if second != json!({"type": "message", "data": {"$": "Object", "id": 2, "remote": false}})
        || extra["type"] != "none"
    {
        return Err(Error::Setup(format!(
            "the revoked lease's worker did not move cleanly: {second} then {extra}"
        )));
    }
    // The tab is planned again, with the lease gone.
    rig.host_log
        .wait_for("a new plan for the page", log_mark, DEADLINE, |e| {
            e["dir"] == "in" && e["msg"]["type"] == "plan" && e["msg"]["demand"]["url"] == page_url
        })
        .await?;
    // The next worker runs in the page, and the popup says why.
    local_run(&mut rig, &tab, "compute").await?;
    let state = rig
        .wait_for_popup_state(
            &control,
            &page_url,
            "s.tab.placements.at(-1)?.target === 'local'",
            DEADLINE,
        )
        .await?;
    let last = &state["tab"]["placements"]
        .as_array()
        .and_then(|p| p.last().cloned())
        .unwrap_or_default();
    let reason = last["reason"].as_str().unwrap_or_default();
    if !reason.starts_with("no lease") {
        return Err(Error::Setup(format!(
            "the popup does not say why the worker ran locally: {last} after re-plans {replans:?}"
        )));
    }
    eprintln!(
        "[{}] preempted: next worker local ({reason}); re-plans {replans:?}",
        kind.name()
    );

    // 3. The tenant leaves room for one page's lease, not two.
    let mark = rig.broker.events().len();
    tenant.release(tenant_lease).await?;
    // With room again the page gets a lease back: its re-plan's request if that is still in
    // the queue, or else its next worker's own request. Either way that worker runs remotely.
    rig.wait_for_popup_state(
        &control,
        &page_url,
        "s.tab.lease || /lease denied|lease failed/.test(s.tab.leaseNote)",
        DEADLINE,
    )
    .await?;
    conformance::program(&mut rig, &tab, "compute").await?;
    let (_, lease) = granted(&mut rig, &page_url, mark).await?;
    let r = lease.resources;
    // The broker announced its whole pool in hello (it does not autoscale here).
    let free = tenant.capacity.saturating_sub(&r);
    // Leave half of what the page's lease holds free: a second page asking the same waits.
    let filler = ResourceAmounts {
        cpu_millicores: free.cpu_millicores.saturating_sub(r.cpu_millicores / 2),
        memory_bytes: free.memory_bytes.saturating_sub(r.memory_bytes / 2),
        bandwidth_bytes_per_s: 0,
    };
    if !filler.is_zero() {
        let held = tenant.lease(filler, 9, 0).await?;
        if held["type"] != "lease_granted" {
            return Err(Error::Setup(format!(
                "the tenant could not fill the pool: {held}"
            )));
        }
    }
    // The second page is the same page on another origin (`localhost`, the same server):
    // what the device learned from the first page's workers (on-device learning, per origin)
    // must not decide whether the second one offloads; it is planned from the estimate alone.
    let second_url = format!("{}?second", page_url.replacen("127.0.0.1", "localhost", 1));
    let mark = rig.broker.events().len();
    let second = rig.browser.open(&second_url).await?;
    rig.broker
        .wait_for("the second page's request queued", mark, DEADLINE, |e| {
            matches!(e, BrokerEvent::LeaseQueued { client_id, .. } if *client_id == extension)
                .then_some(())
        })
        .await?;
    let waiting = rig
        .wait_for_popup_state(
            &control,
            &second_url,
            "/waiting in the broker's queue/.test(s.tab?.leaseNote ?? '')",
            DEADLINE,
        )
        .await?;
    rig.browser.close(&tab).await?;
    let (_, queued_lease) = granted(&mut rig, &second_url, mark).await?;
    let mark = rig.broker.events().len();
    conformance::program(&mut rig, &second, "compute").await?;
    if conformance::started_urls(&rig, mark).is_empty() {
        return Err(Error::Setup(
            "the second page's worker did not run on the broker".into(),
        ));
    }
    eprintln!(
        "[{}] queued ({}) then granted lease #{} when the first tab closed",
        kind.name(),
        waiting["tab"]["leaseNote"],
        queued_lease.lease_id
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_leases_as_the_page_sees_them() {
    if let Err(e) = leases_as_the_page_sees_them(BrowserKind::Chromium).await {
        panic!("{e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firefox_leases_as_the_page_sees_them() {
    if let Err(e) = leases_as_the_page_sees_them(BrowserKind::Firefox).await {
        panic!("{e}");
    }
}
