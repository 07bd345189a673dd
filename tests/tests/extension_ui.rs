//! The extension as a person uses it, in real headless Chromium and Firefox: the options page
//! (settings that persist across a background restart and take effect, per-site offloading
//! rules honoured at the broker) and the popup (the prediction chart, the plan and the lease
//! for a fixture page). Screenshots of both pages are saved under
//! `target/foresight/screenshots/` for people to look at.

use std::time::Duration;

use foresight_broker::BrokerEvent;
use foresight_tests::Error;
use foresight_tests::browser::{BrowserKind, Tab};
use foresight_tests::scenario::{self, Rig, RigOptions};
use serde_json::json;

const DEADLINE: Duration = Duration::from_secs(60);
const OPTIONS_READY: &str = "document.documentElement.dataset.ready === 'true'";

async fn rig(kind: BrowserKind, announce_broker: bool) -> Rig {
    match Rig::start_with(
        kind,
        RigOptions {
            headless: true,
            announce_broker,
        },
    )
    .await
    {
        Ok(rig) => rig,
        Err(e) => panic!("{} could not be set up: {e}", kind.name()),
    }
}

/// Fills the options form like a person would (field by field), saves it, and returns the
/// tab with the options page still open.
async fn save_options(rig: &Rig, fields: serde_json::Value) -> Result<Tab, Error> {
    let tab = rig
        .browser
        .open(&rig.browser.extension_url("options.html"))
        .await?;
    rig.browser
        .wait_for(
            &tab,
            "document.documentElement.dataset.ready === 'true'",
            DEADLINE,
        )
        .await?;
    let fill = format!(
        "(() => {{
            const fields = {fields};
            for (const [id, value] of Object.entries(fields)) {{
                const el = document.getElementById(id);
                if (el.type === 'checkbox') el.checked = value; else el.value = value;
                el.dispatchEvent(new Event('input', {{ bubbles: true }}));
            }}
            document.getElementById('form').requestSubmit();
            return true;
        }})()"
    );
    rig.browser.eval(&tab, &fill).await?;
    let saved = rig
        .browser
        .wait_for(
            &tab,
            "document.getElementById('saved').textContent",
            DEADLINE,
        )
        .await?;
    if saved != "Saved." {
        return Err(Error::Setup(format!(
            "the options page did not save: {saved}"
        )));
    }
    Ok(tab)
}

async fn page_result(rig: &Rig) -> Result<(Tab, serde_json::Value), Error> {
    let tab = rig.browser.open(&rig.site.url(scenario::PAGE)).await?;
    let result = rig.browser.eval(&tab, "window.fixtureDone").await?;
    if result["acc"].as_u64() != Some(scenario::expected_acc()) {
        return Err(Error::Setup(format!("the page computed {result}")));
    }
    Ok((tab, result))
}

fn worker_started(events: &[BrokerEvent]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, BrokerEvent::WorkerStarted { .. }))
        .count()
}

/// The broker URL set in the options page is what the background uses, also after the
/// background has been stopped and started again.
async fn settings_survive_a_background_restart(kind: BrowserKind) -> Result<(), Error> {
    // The host does not name the broker: only the user's setting can lead the extension to it.
    let mut rig = rig(kind, false).await;
    let options = save_options(&rig, json!({"brokerUrl": rig.broker.url()})).await?;
    rig.browser.close(&options).await?;
    rig.browser.restart_background().await?;
    // The reloaded options page shows the stored value...
    let reopened = rig
        .browser
        .open_extension_page("options.html", OPTIONS_READY, DEADLINE)
        .await?;
    let shown = rig
        .browser
        .eval(&reopened, "document.getElementById('brokerUrl').value")
        .await?;
    assert_eq!(
        shown,
        json!(rig.broker.url()),
        "the broker URL did not persist"
    );

    // ...and the new background uses it: the page's worker runs on that broker.
    let (_, result) = page_result(&rig).await?;
    let page_url = rig.site.url(scenario::PAGE);
    rig.broker
        .wait_for(
            "a lease from the restarted background",
            0,
            DEADLINE,
            |e| match e {
                BrokerEvent::LeaseGranted { purpose, .. } if *purpose == page_url => Some(()),
                _ => None,
            },
        )
        .await?;
    assert!(
        worker_started(&rig.broker.events()) >= 1,
        "no remote worker: {result}"
    );
    Ok(())
}

/// A site on the deny list never sends code or data to the broker: the broker sees not even
/// a connection, and the page still gets its answer from a local worker.
async fn a_denied_site_sends_nothing_to_the_broker(kind: BrowserKind) -> Result<(), Error> {
    let rig = rig(kind, true).await;
    save_options(&rig, json!({"offloadDeny": "127.0.0.1"})).await?;
    let page_url = rig.site.url(scenario::PAGE);
    page_result(&rig).await?;
    // The plan was made (and said why nothing is remote) before the page got its answer.
    let (_, request) = rig
        .host_log
        .wait_for("the plan request", 0, DEADLINE, |e| {
            e["dir"] == "in" && e["msg"]["type"] == "plan" && e["msg"]["demand"]["url"] == page_url
        })
        .await?;
    assert_eq!(request["msg"]["policy"]["offload"], "never");
    assert!(request["msg"]["broker"].is_null());
    let events = rig.broker.events();
    assert!(
        events.is_empty(),
        "the broker heard from a denied site: {events:?}"
    );
    Ok(())
}

/// The popup, opened for a fixture page whose worker runs remotely, shows the chart, the
/// plan with the worker placed remotely, and the lease with its time left.
async fn the_popup_shows_prediction_plan_and_lease(kind: BrowserKind) -> Result<(), Error> {
    let rig = rig(kind, true).await;
    let (_page, _) = page_result(&rig).await?;
    let page_url = rig.site.url(scenario::PAGE);
    let popup_url = format!(
        "{}?for={}",
        rig.browser.extension_url("popup.html"),
        encode(&page_url)
    );
    let popup = rig.browser.open(&popup_url).await?;
    let shown = rig
        .browser
        .wait_for(
            &popup,
            "(() => {
                const text = document.body.innerText;
                const ok = document.querySelector('#chart svg rect')
                    && /worker\\.js: remote/.test(text)
                    && /#\\d+: \\d+ s left/.test(text)
                    && /connected/.test(document.getElementById('host-status').textContent);
                return ok && text;
            })()",
            DEADLINE,
        )
        .await?;
    let text = shown.as_str().unwrap_or_default();
    assert!(text.contains("native host"), "plan source missing: {text}");
    let dir = rig.artifacts.screenshots_dir();
    rig.browser
        .screenshot(&popup, &dir.join(format!("{}-popup.png", kind.name())))
        .await?;
    let options = rig
        .browser
        .open(&rig.browser.extension_url("options.html"))
        .await?;
    rig.browser
        .wait_for(
            &options,
            "document.documentElement.dataset.ready === 'true'",
            DEADLINE,
        )
        .await?;
    rig.browser
        .screenshot(&options, &dir.join(format!("{}-options.png", kind.name())))
        .await?;
    Ok(())
}

/// Percent-encodes a URL for use as a query value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

macro_rules! in_both_browsers {
    ($($name:ident),* $(,)?) => {
        mod chromium {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Err(e) = super::$name(BrowserKind::Chromium).await {
                        panic!("{e}");
                    }
                }
            )*
        }
        mod firefox {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Err(e) = super::$name(BrowserKind::Firefox).await {
                        panic!("{e}");
                    }
                }
            )*
        }
    };
}

in_both_browsers!(
    settings_survive_a_background_restart,
    a_denied_site_sends_nothing_to_the_broker,
    the_popup_shows_prediction_plan_and_lease,
);
