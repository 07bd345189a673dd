//! The calibration anchor the planner relies on: a worker that runs ~100-200 ms in V8 must
//! come out between 100 ms and 2 s at p50, and a trivial worker well below 100 ms.

mod common;

use common::{PAGE, page, run, script};
use foresight_shared::protocol::demand::ScriptKind;

const HEAVY: &str = r#"
onmessage = (e) => {
  const n = e.data.n;          // unknown at analysis time
  let acc = 0;
  for (let i = 0; i < 20000000; i++) { acc = (acc + i * i) % 1000003; }
  postMessage({ acc, n });
};
"#;

const TRIVIAL: &str = "onmessage = e => postMessage(e.data * 2)";

const MAIN: &str = r#"
const w = new Worker('heavy.js');
w.postMessage({ n: 5 });
const t = new Worker(new URL('trivial.js', import.meta.url), { type: 'module' });
"#;

fn worker_page(
    heavy: Option<&str>,
    trivial: Option<&str>,
) -> foresight_shared::protocol::demand::PageSources {
    let mut scripts = vec![script(
        ScriptKind::Module,
        Some("http://127.0.0.1:8080/app/js/main.js"),
        MAIN,
    )];
    if let Some(src) = heavy {
        scripts.push(script(
            ScriptKind::Worker,
            Some("http://127.0.0.1:8080/app/heavy.js"),
            src,
        ));
    }
    if let Some(src) = trivial {
        scripts.push(script(
            ScriptKind::Worker,
            Some("http://127.0.0.1:8080/app/js/trivial.js"),
            src,
        ));
    }
    let mut p = page(scripts);
    p.url = PAGE.to_string();
    p
}

#[test]
fn heavy_worker_lands_between_100_ms_and_2_s() {
    let d = run(&worker_page(Some(HEAVY), Some(TRIVIAL)));
    assert!(d.warnings.is_empty(), "{:?}", d.warnings);
    assert_eq!(d.components.len(), 2);
    let heavy = &d.components[0];
    assert_eq!(heavy.id, "worker-0");
    assert_eq!(
        heavy.url.as_deref(),
        Some("http://127.0.0.1:8080/app/heavy.js")
    );
    assert!(heavy.source_known);
    assert!(heavy.offloadable);
    assert!(
        heavy.cpu_ms.p50 > 100.0 && heavy.cpu_ms.p50 < 2_000.0,
        "heavy worker p50 {:?}",
        heavy.cpu_ms
    );
    let trivial = &d.components[1];
    assert_eq!(trivial.id, "worker-1");
    // `new URL(..., import.meta.url)` resolves against the module's own URL.
    assert_eq!(
        trivial.url.as_deref(),
        Some("http://127.0.0.1:8080/app/js/trivial.js")
    );
    assert!(trivial.source_known);
    assert!(
        trivial.cpu_ms.p90 < 20.0,
        "trivial worker {:?}",
        trivial.cpu_ms
    );
    // Worker code is not main-thread work.
    let load = &d.paths[0];
    assert!(load.cpu_ms.p90 < 50.0, "load path {:?}", load.cpu_ms);
}

#[test]
fn unknown_worker_source_is_flagged_for_fetching() {
    let d = run(&worker_page(None, None));
    assert_eq!(d.components.len(), 2);
    for c in &d.components {
        assert!(!c.source_known);
        assert!(c.url.is_some());
    }
    // The extension fetches the URLs and asks again: the second estimate prices them.
    let again = run(&worker_page(Some(HEAVY), None));
    assert!(again.components[0].source_known);
    assert!(!again.components[1].source_known);
    assert_eq!(again.components[0].url, d.components[0].url);
}
