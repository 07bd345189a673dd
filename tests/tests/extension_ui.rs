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
            announce_broker,
            ..RigOptions::default()
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
    let options = save_options(
        &rig,
        json!({"brokerUrl": rig.broker.url(), "maxRemoteShare": "100", "priority": "7"}),
    )
    .await?;
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
    // The policy the user set went into the plan request.
    let (_, request) = rig
        .host_log
        .wait_for("the plan request", 0, DEADLINE, |e| {
            e["dir"] == "in" && e["msg"]["type"] == "plan" && e["msg"]["demand"]["url"] == page_url
        })
        .await?;
    assert_eq!(request["msg"]["policy"]["max_remote_share"], json!(1.0));
    assert_eq!(request["msg"]["policy"]["priority"], json!(7));
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
                    && document.querySelector('#curves svg polygon')
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
    let unlabelled = rig.browser.eval(&popup, UNLABELLED_CONTROLS).await?;
    assert_eq!(unlabelled, json!([]), "popup controls without a name");
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
    let unlabelled = rig.browser.eval(&options, UNLABELLED_CONTROLS).await?;
    assert_eq!(unlabelled, json!([]), "options controls without a name");
    rig.browser
        .screenshot(&options, &dir.join(format!("{}-options.png", kind.name())))
        .await?;
    // The same pages in the dark scheme, for people to check they stay readable.
    for (tab, name) in [(&popup, "popup"), (&options, "options")] {
        if rig.browser.set_dark_scheme(tab, true).await? {
            rig.browser
                .screenshot(tab, &dir.join(format!("{}-{name}-dark.png", kind.name())))
                .await?;
        }
    }
    Ok(())
}

/// With tab discarding turned on, a page predicted to need more memory than is free gets idle
/// background tabs discarded, but never a pinned tab or one with unsaved form input.
async fn discarding_spares_protected_tabs(kind: BrowserKind) -> Result<(), Error> {
    let rig = rig(kind, true).await;
    let options = save_options(
        &rig,
        json!({"discardTabs": true, "discardIdleMinutes": "0"}),
    )
    .await?;
    rig.browser.close(&options).await?;
    let idle_url = rig.site.url("plain-page/index.html");
    let pinned_url = rig.site.url("plain-page/index.html?pinned");
    let form_url = rig.site.url("form-page/index.html");
    rig.browser.open(&idle_url).await?;
    rig.browser.open(&pinned_url).await?;
    let form = rig.browser.open(&form_url).await?;
    // A person types a note and does not send it.
    rig.browser
        .eval(
            &form,
            "(() => { const n = document.getElementById('note'); n.focus(); n.value = 'draft';              n.dispatchEvent(new Event('input', { bubbles: true })); return true; })()",
        )
        .await?;
    let control = rig
        .browser
        .open_extension_page("options.html", OPTIONS_READY, DEADLINE)
        .await?;
    rig.browser
        .eval(
            &control,
            &format!(
                "(async api => {{ const [t] = (await api.tabs.query({{}})).filter(t => t.url === {pinned});                  await api.tabs.update(t.id, {{ pinned: true }}); return true; }})(globalThis.browser ?? globalThis.chrome)",
                pinned = serde_json::to_string(&pinned_url).unwrap_or_default()
            ),
        )
        .await?;

    // Extension pages are tabs too: close this one, or it would be an idle tab to discard.
    rig.browser.close(&control).await?;

    let hungry = rig
        .browser
        .open(&rig.site.url("memory-page/index.html"))
        .await?;
    let outcome = rig.browser.eval(&hungry, "window.fixtureDone").await?;
    assert_eq!(
        outcome,
        json!("RangeError"),
        "the page's own allocation should fail"
    );

    let state_of = |url: &str| {
        format!(
            "(async api => (await api.tabs.query({{}})).filter(t => t.url === {u}).map(t => t.discarded))(globalThis.browser ?? globalThis.chrome)",
            u = serde_json::to_string(url).unwrap_or_default()
        )
    };
    let idle_discarded = format!(
        "(async api => (await api.tabs.query({{}})).some(t => t.url === {u} && t.discarded))(globalThis.browser ?? globalThis.chrome)",
        u = serde_json::to_string(&idle_url).unwrap_or_default()
    );
    // The discard happens when the plan is made.
    let control = rig
        .browser
        .open_extension_page("options.html", OPTIONS_READY, DEADLINE)
        .await?;
    rig.browser
        .wait_for(&control, &idle_discarded, DEADLINE)
        .await?;
    assert_eq!(
        rig.browser.eval(&control, &state_of(&pinned_url)).await?,
        json!([false])
    );
    assert_eq!(
        rig.browser.eval(&control, &state_of(&form_url)).await?,
        json!([false])
    );
    Ok(())
}

/// Every form control on the page has an accessible name and is reachable with the keyboard
/// (no control is taken out of the tab order); returns the offenders, described.
const UNLABELLED_CONTROLS: &str = "[...document.querySelectorAll('input, select, textarea, button, a[href]')]
    .filter(el => {
        const named = el.labels?.length || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby')
            || (['BUTTON', 'A'].includes(el.tagName) && el.textContent.trim());
        return !named || el.tabIndex < 0;
    })
    .map(el => el.outerHTML.slice(0, 120))";

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
    discarding_spares_protected_tabs,
);
