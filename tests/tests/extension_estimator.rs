//! The wasm estimator recovers from a trap, in real headless Chromium with the built
//! extension: after the module's stack overflows (the failure deeply nested page code once
//! caused inside swc, which leaves the instance broken for good), `extension/src/estimator.js`
//! re-instantiates the module and the next estimate is the same as before the trap.
//!
//! Chromium only: the extension's own pages are where its modules can be imported directly,
//! and WebDriver BiDi cannot open `moz-extension://` pages in Firefox.

use foresight_shared::ids::CHROME_EXTENSION_ID;
use foresight_tests::artifacts::Artifacts;
use foresight_tests::browser::{Browser, BrowserKind, LaunchOptions};
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
  try { glue.estimate(JSON.stringify(sources), 1e6); } catch (e) { broken = `${e.constructor.name}: ${e.message}`; }
  const after = await est.estimatePage(sources, 1e6);
  const again = await est.estimatePage(sources, 1e6);
  return {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_reinstantiates_the_estimator_after_a_trap() {
    let artifacts = Artifacts::locate().expect("artifacts (run `cargo xtask test`)");
    let dir = tempfile::tempdir().expect("temporary directory");
    let browser = Browser::launch(
        BrowserKind::Chromium,
        LaunchOptions {
            artifacts: &artifacts,
            dir: dir.path(),
            env: vec![],
            headless: true,
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
}
