//! The extension's estimator glue in real headless Chromium with the built extension:
//!
//! * it recovers from a trap: after the module's stack overflows (the failure deeply nested
//!   page code once caused inside swc, which leaves the instance broken for good),
//!   `extension/src/estimator.js` re-instantiates the module and the next estimate is the
//!   same as before the trap;
//! * the background calibrates the device on start-up and keeps the factor in extension
//!   storage, where the settings the estimator is called with pick it up;
//! * the planner compiled into the extension (the fallback when no native host answers)
//!   accounts for the browser's other tabs as the host's planner does.
//!
//! Chromium only: the extension's own pages are where its modules can be imported directly,
//! and WebDriver BiDi cannot open `moz-extension://` pages in Firefox.

use foresight_shared::ids::CHROME_EXTENSION_ID;
use foresight_tests::artifacts::Artifacts;
use foresight_tests::browser::{Browser, BrowserKind, LaunchOptions, Tab};
use serde_json::Value;

const PROBE: &str = r#"(async () => {
  const est = await import(new URL("estimator.js", location.href).href);
  const glue = await import(new URL("wasm/foresight_wasm.js", location.href).href);
  const sources = {
    url: "http://127.0.0.1/p.html",
    html_bytes: 100,
    scripts: [{
      url: null,
      kind: "classic",
      source: "let x = 0; for (let i = 0; i < 1e6; i++) { x = x + i; }\n" +
        "document.getElementById('go').onclick = () => { x = 0; };",
      bytes: 110,
    }],
    handlers: [],
    stylesheets: [],
  };
  const before = await est.estimatePage(sources, 1e6);
  let trap = "";
  try { glue.debug_overflow_stack(); } catch (e) { trap = `${e.constructor.name}: ${e.message}`; }
  let broken = "";
  try { glue.estimate(JSON.stringify(sources), [], 1e6); } catch (e) { broken = `${e.constructor.name}: ${e.message}`; }
  const after = await est.estimatePage(sources, 1e6);
  const again = await est.estimatePage(sources, 1e6);
  // Bad input to the raw glue is an error that names it, and the instance keeps serving.
  let mismatch = "";
  try { glue.estimate(JSON.stringify(sources), ["a", "b"], 1e6); } catch (e) { mismatch = e.message; }
  const afterBadInput = await est.estimatePage(sources, 1e6);
  return {
    mismatch,
    afterBadInput: afterBadInput.paths[0].cpu_ms.p50,
    before: before.paths[0].cpu_ms.p50,
    after: after.paths[0].cpu_ms.p50,
    again: again.paths[0].cpu_ms.p50,
    warnings: after.warnings,
    target: after.paths[1] && after.paths[1].target,
    trap,
    broken,
    health: est.estimatorHealth(),
  };
})()"#;

/// Chromium with the built extension, and its popup page open (an extension page, where the
/// extension's modules can be imported), in `dir`.
async fn extension_page(dir: &std::path::Path) -> (Browser, Tab) {
    let artifacts = Artifacts::locate().expect("artifacts (run `cargo xtask test`)");
    let browser = Browser::launch(
        BrowserKind::Chromium,
        LaunchOptions {
            artifacts: &artifacts,
            dir,
            env: vec![],
            headless: true,
            chromium_profile: None,
        },
    )
    .await
    .expect("Chromium starts with the extension");
    let tab = browser
        .open(&format!(
            "chrome-extension://{CHROME_EXTENSION_ID}/popup.html"
        ))
        .await
        .expect("the extension's popup page opens");
    (browser, tab)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_reinstantiates_the_estimator_after_a_trap() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (browser, tab) = extension_page(dir.path()).await;
    let r: Value = browser.eval(&tab, PROBE).await.expect("the probe runs");
    eprintln!("{r:#}");
    // The module really trapped and was left broken: the raw glue call fails too.
    assert!(!r["trap"].as_str().unwrap_or("").is_empty(), "{r}");
    assert!(!r["broken"].as_str().unwrap_or("").is_empty(), "{r}");
    // estimator.js reset it once and carried on with a full estimate, not the by-size
    // fallback, and the instance stays healthy.
    assert_eq!(r["health"]["resets"], 1, "{r}");
    assert_eq!(r["before"], r["after"], "{r}");
    assert_eq!(r["after"], r["again"], "{r}");
    assert_eq!(r["warnings"], serde_json::json!([]), "{r}");
    assert_eq!(r["target"], "#go", "{r}");
    assert!(
        r["mismatch"]
            .as_str()
            .unwrap_or("")
            .contains("2 script texts for 1 scripts"),
        "{r}"
    );
    assert_eq!(r["afterBadInput"], r["before"], "{r}");
    assert_eq!(r["health"]["resets"], 1, "bad input is not a trap: {r}");
}

/// Resolves with the stored calibration as soon as the background has written it (at once if
/// it already has), or with null after the deadline: an event, not a sleep.
const STORED_CALIBRATION: &str = r#"(async () => {
  const api = globalThis.browser ?? globalThis.chrome;
  const read = async () => (await api.storage.local.get("calibration")).calibration ?? null;
  const stored = await read() ?? await new Promise((resolve) => {
    const deadline = setTimeout(() => resolve(null), 60000);
    api.storage.onChanged.addListener((changes) => {
      if (changes.calibration?.newValue) { clearTimeout(deadline); resolve(changes.calibration.newValue); }
    });
    read().then((c) => { if (c) { clearTimeout(deadline); resolve(c); } });
  });
  const settings = await (await import(new URL("settings.js", location.href).href)).loadSettings();
  const est = await import(new URL("estimator.js", location.href).href);
  const slow = await est.estimatePage({ url: "http://127.0.0.1/", html_bytes: 0, scripts: [{ url: null, kind: "classic", source: "for (let i = 0; i < 1e7; i++) {}", bytes: 32 }], handlers: [], stylesheets: [] }, stored.unitsPerMs / 2);
  const fast = await est.estimatePage({ url: "http://127.0.0.1/", html_bytes: 0, scripts: [{ url: null, kind: "classic", source: "for (let i = 0; i < 1e7; i++) {}", bytes: 32 }], handlers: [], stylesheets: [] }, stored.unitsPerMs);
  return { stored, settingsUnitsPerMs: settings.unitsPerMs, ratio: slow.paths[0].cpu_ms.p50 / fast.paths[0].cpu_ms.p50 };
})()"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_calibrates_the_device_and_keeps_the_factor() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (browser, tab) = extension_page(dir.path()).await;
    let r: Value = browser
        .eval(&tab, STORED_CALIBRATION)
        .await
        .expect("the probe runs");
    eprintln!("{r:#}");
    let units_per_ms = r["stored"]["unitsPerMs"]
        .as_f64()
        .expect("a stored calibration");
    assert!((1e4..1e9).contains(&units_per_ms), "{r}");
    assert!(r["stored"]["units"].as_f64().unwrap_or(0.0) > 4e7, "{r}");
    assert!(r["stored"]["medianMs"].as_f64().unwrap_or(0.0) > 0.0, "{r}");
    // The settings the orchestrator estimates with carry the measured factor.
    assert_eq!(r["settingsUnitsPerMs"].as_f64(), Some(units_per_ms), "{r}");
    // And the factor is what converts units to ms: half the speed, twice the time.
    let ratio = r["ratio"].as_f64().unwrap_or(0.0);
    assert!((ratio - 2.0).abs() < 1e-6, "{r}");
}

/// The fallback planner with and without a busy visible tab beside the page, with contention
/// as the browser measures it.
const FALLBACK_WITH_TABS: &str = r#"(async () => {
  const est = await import(new URL("estimator.js", location.href).href);
  const { browserContention } = await import(new URL("platform.js", location.href).href);
  const { loadSettings, policyFor } = await import(new URL("settings.js", location.href).href);
  const sources = { url: "http://127.0.0.1/p.html", html_bytes: 100, scripts: [{ url: null, kind: "classic", source: "let x = 0; for (let i = 0; i < 1e6; i++) { x = x + i; }", bytes: 60 }], handlers: [], stylesheets: [] };
  const demand = await est.estimatePage(sources, 1e6);
  const contention = await browserContention();
  const policy = policyFor(await loadSettings(), sources.url);
  const busy = [{ tab_id: 7, active: true, visible: true, audible: false, discarded: false, predicted_cpu_ms: 1e6, predicted_memory_bytes: 0 }];
  const alone = await est.fallbackPlan(demand, contention, policy, null);
  const beside = await est.fallbackPlan(demand, contention, policy, null, busy);
  return { alone: alone.reasons, beside: beside.reasons, source: beside.source ?? null };
})()"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_fallback_planner_sees_the_other_tabs() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (browser, tab) = extension_page(dir.path()).await;
    let r: Value = browser
        .eval(&tab, FALLBACK_WITH_TABS)
        .await
        .expect("the probe runs");
    eprintln!("{r:#}");
    let mentions_tabs = |key: &str| {
        r[key].as_array().into_iter().flatten().any(|reason| {
            reason
                .as_str()
                .unwrap_or("")
                .contains("other tabs are expected to need")
        })
    };
    assert_eq!(r["source"], "extension_fallback", "{r}");
    assert!(!mentions_tabs("alone"), "{r}");
    assert!(mentions_tabs("beside"), "{r}");
}
