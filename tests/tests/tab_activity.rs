//! Plans follow the browser's tabs, in real headless Chromium and Firefox with the real
//! extension and host: once a page is analysed, opening another tab and closing it each make
//! the extension plan the page again, for that reason (the popup's re-plans say so), and
//! the new plan's `tabs` input (seen in the host's audit log) counts the tabs open then.

use std::time::Duration;

use foresight_tests::browser::{BrowserKind, Tab};
use foresight_tests::scenario::Rig;
use serde_json::Value;

const DEADLINE: Duration = Duration::from_secs(60);

/// The index of the first plan request for `url` after log entry `mark` whose number of
/// other tabs satisfies `count`, and that number.
async fn plan_with_tabs(
    rig: &Rig,
    what: &str,
    url: &str,
    mark: usize,
    count: impl Fn(usize) -> bool,
) -> (usize, usize) {
    let tabs = |e: &Value| e["msg"]["tabs"].as_array().map(Vec::len);
    match rig
        .host_log
        .wait_for(what, mark, DEADLINE, |e| {
            e["dir"] == "in"
                && e["msg"]["type"] == "plan"
                && e["msg"]["demand"]["url"] == url
                && tabs(e).is_some_and(&count)
        })
        .await
    {
        Ok((index, entry)) => (index, tabs(&entry).unwrap_or(0)),
        Err(e) => panic!("{}", rig.context(e)),
    }
}

/// Waits until the popup lists a re-plan of the page, made at or after `since` (the
/// browser's clock), whose reason names `event`.
async fn replanned_for(rig: &Rig, control: &Tab, page: &str, since: f64, event: &str) {
    let condition =
        format!("(s.tab?.replans ?? []).some(r => r.at >= {since} && r.why.includes('{event}'))");
    if let Err(e) = rig
        .wait_for_popup_state(control, page, &condition, DEADLINE)
        .await
    {
        panic!("no re-plan for '{event}': {}", rig.context(e));
    }
}

async fn now(rig: &Rig, control: &Tab) -> f64 {
    match rig.browser.eval(control, "Date.now()").await {
        Ok(v) => v.as_f64().unwrap_or(0.0),
        Err(e) => panic!("{}", rig.context(e)),
    }
}

async fn plans_follow_the_tabs(kind: BrowserKind) {
    let rig = match Rig::start(kind, true).await {
        Ok(rig) => rig,
        Err(e) => panic!("{} could not be set up: {e}", kind.name()),
    };
    let page = rig.site.url("plain-page/index.html");
    if let Err(e) = rig.browser.open(&page).await {
        panic!("the page did not load: {}", rig.context(e));
    }
    let (at, first) = plan_with_tabs(&rig, "the page's first plan", &page, 0, |_| true).await;
    let control = match rig
        .browser
        .open_extension_page(
            "options.html",
            "document.readyState === 'complete'",
            DEADLINE,
        )
        .await
    {
        Ok(tab) => tab,
        Err(e) => panic!("the options page did not open: {}", rig.context(e)),
    };
    // The options page is a tab too: the page is planned again with it counted.
    let (at, before) = plan_with_tabs(
        &rig,
        "a plan counting the options page",
        &page,
        at + 1,
        |n| n == first + 1,
    )
    .await;

    let since = now(&rig, &control).await;
    let other = match rig
        .browser
        .open(&rig.site.url("plain-page/index.html?other"))
        .await
    {
        Ok(tab) => tab,
        Err(e) => panic!("the second tab did not open: {}", rig.context(e)),
    };
    replanned_for(&rig, &control, &page, since, "tab opened").await;
    let (at, with_other) = plan_with_tabs(
        &rig,
        "a plan of the page counting the new tab",
        &page,
        at + 1,
        |n| n == before + 1,
    )
    .await;

    let since = now(&rig, &control).await;
    if let Err(e) = rig.browser.close(&other).await {
        panic!("the second tab did not close: {}", rig.context(e));
    }
    replanned_for(&rig, &control, &page, since, "tab closed").await;
    let (_, after) = plan_with_tabs(
        &rig,
        "a plan of the page after the new tab closed",
        &page,
        at + 1,
        |n| n == before,
    )
    .await;
    eprintln!(
        "[{}] other tabs in the page's plans: {before}, then {with_other}, then {after}",
        kind.name()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_plans_follow_the_tabs() {
    plans_follow_the_tabs(BrowserKind::Chromium).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firefox_plans_follow_the_tabs() {
    plans_follow_the_tabs(BrowserKind::Firefox).await;
}
