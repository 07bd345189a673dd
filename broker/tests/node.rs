//! The Node (V8) backend through a real broker: the worker's world on V8 (the same prelude
//! and codec as QuickJS, plus WebAssembly), the pool's hand-off, the limits enforced from
//! outside (the CPU watchdog, the cgroup), and the end of a lease killing the child.

mod common;

use common::{Broker, MIB};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_worker_answers_with_the_worker_world() {
    let broker = Broker::with_config(common::node_config(1)).await;
    let mut c = broker.client().await;
    let lease = c.lease(1000, 64 * MIB, 60_000).await;
    let src = r#"
        const seen = {};
        for (const n of ['process', 'require', 'Buffer', 'fetch', 'global', 'setImmediate']) seen[n] = typeof globalThis[n];
        seen.wasm = typeof WebAssembly;
        onmessage = (e) => {
            setTimeout(() => postMessage({ echo: e.data, seen, text: new TextDecoder().decode(new TextEncoder().encode('héllo')), b64: btoa('hi') }), 1);
        };
    "#;
    c.started_worker(lease, "w", src).await;
    c.post("w", json!({"n": 21})).await;
    let m = c.expect("worker_message").await;
    assert_eq!(m["data"]["echo"], json!({"n": 21}), "{m}");
    assert_eq!(m["data"]["text"], "héllo", "{m}");
    assert_eq!(m["data"]["b64"], "aGk=", "{m}");
    assert_eq!(m["data"]["seen"]["wasm"], "object", "{m}");
    for n in [
        "process",
        "require",
        "Buffer",
        "fetch",
        "global",
        "setImmediate",
    ] {
        assert_eq!(m["data"]["seen"][n], "undefined", "{n}: {m}");
    }
    drop(c);
    broker.stop().await;
}
