//! Learning on the device, in real headless Chromium and Firefox with the built extension: a
//! page whose load the estimator cannot price (a busy loop bounded by the clock, so its trip
//! count is unknown to the syntax) is loaded, the content script reports the long task it
//! observed (Chromium's long-task timing; in Firefox, which has none, the late ticks of a
//! timer probe), the background keeps it in extension storage for the page's origin and
//! script set, and after the background has been restarted (everything it held in memory
//! gone), the same page loads again with its predicted load CPU moved towards what was
//! observed, and the popup says so.

use std::time::Duration;

use foresight_tests::artifacts::Artifacts;
use foresight_tests::browser::{Browser, BrowserKind, LaunchOptions};
use foresight_tests::http::StaticServer;
use serde_json::Value;

/// An extension page is ready when it sees the extension API.
const READY: &str = "(globalThis.browser ?? globalThis.chrome)?.runtime?.id";

/// The busy loop's length: one long task of this many ms, whatever the machine.
const BUSY_MS: f64 = 400.0;

fn page() -> String {
    format!(
        "<!DOCTYPE html><html><head><title>learn</title></head><body><p id=\"out\"></p>\n<script>\nlet spins = 0;\nconst end = Date.now() + {BUSY_MS};\nwhile (Date.now() < end) {{ spins++; }}\ndocument.getElementById('out').textContent = String(spins);\n</script></body></html>"
    )
}

/// From an extension page: the popup state of the tab showing `url`, once its analysis is
/// planned and (with `corrected`) carries a learned load-CPU correction.
fn planned(url: &str, corrected: bool) -> String {
    format!(
        r#"(async () => {{
  const api = globalThis.browser ?? globalThis.chrome;
  // By URL, not a match pattern: Firefox's patterns take no port.
  const tab = (await api.tabs.query({{}})).find((t) => t.url === {url:?});
  if (!tab) return null;
  const state = await api.runtime.sendMessage({{ kind: "popup-state", tabId: tab.id }});
  const t = state?.tab;
  if (!t || t.phase !== "planned" || !t.demand) return null;
  const learned = t.learning?.applied?.["load:cpu"] ?? null;
  if ({corrected} && !learned) return null;
  return {{ tabId: tab.id, cpu: t.demand.paths[0].cpu_ms, learned, origin: t.learning?.origin }};
}})()"#
    )
}

/// The stored load-CPU lesson for `origin`, once there is one.
fn stored(origin: &str) -> String {
    format!(
        r#"(async () => {{
  const api = globalThis.browser ?? globalThis.chrome;
  const store = (await api.storage.local.get("learning")).learning;
  const o = store?.origins?.[{origin:?}];
  const lesson = o && Object.values(o.pages).map((p) => p.keys["load:cpu"]).find(Boolean);
  return lesson ?? null;
}})()"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_corrects_a_page_it_has_seen_by_what_it_observed() {
    corrects_a_page_it_has_seen_by_what_it_observed(BrowserKind::Chromium).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firefox_corrects_a_page_it_has_seen_by_what_it_observed() {
    corrects_a_page_it_has_seen_by_what_it_observed(BrowserKind::Firefox).await;
}

async fn corrects_a_page_it_has_seen_by_what_it_observed(kind: BrowserKind) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let site = dir.path().join("site");
    std::fs::create_dir_all(&site).expect("site folder");
    std::fs::write(site.join("busy.html"), page()).expect("fixture page");
    let server = StaticServer::start(site).await.expect("static server");
    let url = server.url("busy.html");
    let origin = format!("http://{}", server.addr);

    let artifacts = Artifacts::locate().expect("artifacts (run `cargo xtask test`)");
    let browser = Browser::launch(
        kind,
        LaunchOptions {
            artifacts: &artifacts,
            dir: dir.path(),
            env: vec![],
            headless: true,
            chromium_profile: None,
        },
    )
    .await
    .expect("the browser starts with the extension");
    let control = browser
        .open_extension_page("popup.html", READY, Duration::from_secs(60))
        .await
        .expect("an extension page to watch from");
    let _page = browser.open(&url).await.expect("the busy page loads");

    let first: Value = match browser
        .wait_for(&control, &planned(&url, false), Duration::from_secs(60))
        .await
    {
        Ok(first) => first,
        Err(e) => {
            // What the background says about every tab, for the post-mortem.
            let tabs = browser
                .eval(
                    &control,
                    "(async api => Promise.all((await api.tabs.query({})).map(async (t) =>                      [t.url, (await api.runtime.sendMessage({ kind: 'popup-state', tabId: t.id }))?.tab?.phase])))                     (globalThis.browser ?? globalThis.chrome)",
                )
                .await;
            panic!("the first load was not estimated and planned: {e}\n  tabs: {tabs:?}");
        }
    };
    eprintln!("first: {first:#}");
    assert!(first["learned"].is_null(), "nothing learned yet: {first}");
    assert_eq!(first["origin"], origin.as_str(), "{first}");
    let before = first["cpu"]["p50"].as_f64().expect("a load CPU p50");
    // The premise: the estimator cannot see the clock-bounded loop's length.
    assert!(before < BUSY_MS / 4.0, "{first}");

    let lesson: Value = match browser
        .wait_for(&control, &stored(&origin), Duration::from_secs(60))
        .await
    {
        Ok(lesson) => lesson,
        Err(e) => {
            // What was stored instead, for the post-mortem.
            let store = browser
                .eval(
                    &control,
                    "(globalThis.browser ?? globalThis.chrome).storage.local.get('learning')",
                )
                .await;
            panic!("the page's long task was not reported and stored: {e}\n  store: {store:?}");
        }
    };
    eprintln!("stored: {lesson:#}");
    assert_eq!(lesson["n"], 1, "{lesson}");
    // What was observed, as the log-ratio against the raw prediction: at least the busy loop.
    let observed = before * lesson["mean"].as_f64().unwrap_or(0.0).exp();
    assert!(
        observed >= BUSY_MS * 0.9,
        "observed {observed} ms: {lesson}"
    );

    // The lesson must come from storage, not from the background's memory. (Firefox reloads
    // the add-on, closing its pages: watch from a new one.)
    browser
        .restart_background()
        .await
        .expect("the background restarts");
    let control = browser
        .open_extension_page("popup.html", READY, Duration::from_secs(60))
        .await
        .expect("an extension page to watch from, after the restart");
    let tab_id = first["tabId"].as_i64().expect("tab id");
    browser
        .eval(
            &control,
            &format!(
                "(globalThis.browser ?? globalThis.chrome).tabs.reload({tab_id}).then(() => true)"
            ),
        )
        .await
        .expect("the page reloads");
    let second: Value = browser
        .wait_for(&control, &planned(&url, true), Duration::from_secs(60))
        .await
        .expect("the second load is estimated with the learned correction");
    eprintln!("second: {second:#}");
    let after = second["cpu"]["p50"].as_f64().expect("a load CPU p50");
    assert_eq!(second["learned"]["exact"], true, "{second}");
    // Corrected: more than half of the way to what was observed, in log terms.
    let gap = |p: f64| (observed / p).ln().abs();
    assert!(
        gap(after) < 0.5 * gap(before),
        "{before} -> {after} against {observed}"
    );
    assert!(after > before * 5.0, "{before} -> {after}");

    // The popup shows what was learned for this page.
    let popup = browser
        .open(&format!(
            "{}?for={}",
            browser.extension_url("popup.html"),
            encode(&url)
        ))
        .await
        .expect("the popup opens for the page");
    let row: Value = browser
        .wait_for(
            &popup,
            "(() => { const t = document.getElementById('estimate')?.innerText ?? ''; return /Learned: load:cpu/.test(t) && t; })()",
            Duration::from_secs(30),
        )
        .await
        .expect("the popup lists the learned load-CPU correction");
    assert!(
        row.as_str().is_some_and(|t| t.contains("from 1 visit")),
        "{row}"
    );
}

/// Percent-encodes `s` for a query parameter.
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
