//! End-to-end: the whole data flow in real headless Chromium and Firefox ESR, with the built
//! extension, the real native host installed into the test's own profile, and a real broker
//! on an ephemeral loopback port. See `foresight_tests::scenario` for what each step checks.

use foresight_shared::protocol::broker::EngineKind;
use foresight_tests::browser::BrowserKind;
use foresight_tests::conformance;
use foresight_tests::host::Layout;
use foresight_tests::scenario::{self, Rig, RigOptions};

async fn whole_data_flow(kind: BrowserKind) {
    let mut rig = match Rig::start(kind, true).await {
        Ok(rig) => rig,
        Err(e) => panic!("{} could not be set up: {e}", kind.name()),
    };
    let mut steps = Vec::new();
    let mut report = |n: u8, title: &str, detail: String| {
        eprintln!("[{}] {n}. {title}: {detail}", kind.name());
        steps.push(n);
    };
    let remote = scenario::remote_run(&mut rig, &mut report).await;
    if let Err(e) = remote {
        panic!("remote run failed: {}", rig.context(e));
    }
    let local = scenario::local_fallback_run(&mut rig, &mut report).await;
    if let Err(e) = local {
        panic!("local fallback failed: {}", rig.context(e));
    }
    assert_eq!(steps, vec![1, 2, 3, 4, 5, 6, 7, 7]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_runs_the_whole_data_flow() {
    whole_data_flow(BrowserKind::Chromium).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firefox_runs_the_whole_data_flow() {
    whole_data_flow(BrowserKind::Firefox).await;
}

/// `foresight-host install --browser chrome` writes the manifest where Chrome looks for it:
/// Chromium started with Chrome's default profile folder (see [`Layout::ChromeDefault`])
/// finds the host, starts it, and the page gets a plan from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chrome_finds_the_host_installed_for_chrome() {
    let options = RigOptions {
        layout: Layout::ChromeDefault,
        ..RigOptions::default()
    };
    let rig = match Rig::start_with(BrowserKind::Chromium, options).await {
        Ok(rig) => rig,
        Err(e) => panic!("chromium could not be set up: {e}"),
    };
    let page_url = rig.site.url(scenario::PAGE);
    if let Err(e) = rig.browser.open(&page_url).await {
        panic!("the page did not load: {}", rig.context(e));
    }
    let planned = rig
        .host_log
        .wait_for(
            "the host's plan for the page",
            0,
            std::time::Duration::from_secs(60),
            |e| {
                e["dir"] == "out"
                    && e["msg"]["type"] == "plan"
                    && e["msg"]["plan"]["url"] == page_url
            },
        )
        .await;
    if let Err(e) = planned {
        panic!(
            "the host installed for Chrome was not used: {}",
            rig.context(e)
        );
    }
}

/// Remote workers from a page's point of view: conformance (the same programs locally and
/// remotely, identical observations), an impersonating page, a hostile worker, and a worker
/// moved to the page when the broker goes away mid-request.
async fn remote_workers_as_the_page_sees_them(kind: BrowserKind, engine: EngineKind) {
    let options = RigOptions {
        engine,
        ..RigOptions::default()
    };
    let (mut rig, tab) = match conformance::start(kind, options).await {
        Ok(started) => started,
        Err(e) => panic!(
            "{} with the conformance page could not be set up: {e}",
            kind.name()
        ),
    };
    let names = rig
        .browser
        .eval(&tab, "window.programNames")
        .await
        .expect("program names");
    let names: Vec<String> = serde_json::from_value(names).expect("a list of names");
    assert!(names.len() >= 14, "{names:?}");
    let mut failures = Vec::new();
    for name in &names {
        match conformance::program(&mut rig, &tab, name).await {
            Ok(seen) => eprintln!("[{}] conformance {name}: {seen}", kind.name()),
            Err(e) => failures.push(e.to_string()),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    if let Err(e) = conformance::terminated_before_placement(&mut rig, &tab).await {
        panic!("terminated before placement: {}", rig.context(e));
    }
    match conformance::console(&mut rig, &tab).await {
        Ok(seen) => eprintln!("[{}] console: {seen}", kind.name()),
        Err(e) => panic!("console: {}", rig.context(e)),
    }
    match conformance::impersonation(&mut rig, &tab).await {
        Ok(report) => eprintln!("[{}] impersonation: {report}", kind.name()),
        Err(e) => panic!("impersonation: {}", rig.context(e)),
    }
    match conformance::hostile(&mut rig, &tab).await {
        Ok(event) => eprintln!("[{}] hostile: {event}", kind.name()),
        Err(e) => panic!("hostile: {}", rig.context(e)),
    }
    match conformance::moved_after_a_crash(&mut rig, &tab).await {
        Ok(answers) => eprintln!("[{}] moved after a crash: {answers}", kind.name()),
        Err(e) => panic!("moved after a crash: {}", rig.context(e)),
    }
    match conformance::moved_while_working(&mut rig, &tab).await {
        Ok(answers) => eprintln!("[{}] moved: {answers}", kind.name()),
        Err(e) => panic!("moved while working: {}", rig.context(e)),
    }
    // The popup names the engine the broker ran the page's workers on.
    let engine = serde_json::to_value(engine).expect("an engine name");
    let condition =
        format!("s.tab?.placements?.some(p => p.target === 'remote' && p.engine === {engine})");
    let shown = async {
        let control = rig
            .browser
            .open_extension_page(
                "options.html",
                "document.readyState === 'complete'",
                std::time::Duration::from_secs(60),
            )
            .await?;
        let page_url = rig.site.url(conformance::PAGE);
        rig.wait_for_popup_state(
            &control,
            &page_url,
            &condition,
            std::time::Duration::from_secs(60),
        )
        .await
    };
    if let Err(e) = shown.await {
        panic!(
            "the popup does not name the engine {engine}: {}",
            rig.context(e)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_remote_workers_as_the_page_sees_them() {
    remote_workers_as_the_page_sees_them(BrowserKind::Chromium, EngineKind::Quickjs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firefox_remote_workers_as_the_page_sees_them() {
    remote_workers_as_the_page_sees_them(BrowserKind::Firefox, EngineKind::Quickjs).await;
}

/// The same suite with every remote worker on V8 in a confined Node child.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_remote_workers_on_node_as_the_page_sees_them() {
    remote_workers_as_the_page_sees_them(BrowserKind::Chromium, EngineKind::Node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firefox_remote_workers_on_node_as_the_page_sees_them() {
    remote_workers_as_the_page_sees_them(BrowserKind::Firefox, EngineKind::Node).await;
}

/// A tab whose data channel cannot be opened (the broker is at its connection limit: the
/// background's connection is its only one) still runs its workers remotely, relayed
/// through the background, with the same observations as a native Worker.
async fn relayed_when_no_channel_opens(kind: BrowserKind) {
    let options = RigOptions {
        broker_connections: Some(1),
        ..RigOptions::default()
    };
    let (mut rig, tab) = match conformance::start(kind, options).await {
        Ok(started) => started,
        Err(e) => panic!(
            "{} with the conformance page could not be set up: {e}",
            kind.name()
        ),
    };
    for name in ["compute", "ordering"] {
        match conformance::relayed(&mut rig, &tab, name).await {
            Ok(seen) => eprintln!("[{}] relayed {name}: {seen}", kind.name()),
            Err(e) => panic!("relayed {name}: {}", rig.context(e)),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_relays_when_no_data_channel_opens() {
    relayed_when_no_channel_opens(BrowserKind::Chromium).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firefox_relays_when_no_data_channel_opens() {
    relayed_when_no_channel_opens(BrowserKind::Firefox).await;
}
