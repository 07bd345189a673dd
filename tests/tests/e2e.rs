//! End-to-end: the whole data flow in real headless Chromium and Firefox ESR, with the built
//! extension, the real native host installed into the test's own profile, and a real broker
//! on an ephemeral loopback port. See `foresight_tests::scenario` for what each step checks.

use foresight_tests::browser::BrowserKind;
use foresight_tests::scenario::{self, Rig};

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
