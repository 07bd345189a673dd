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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_show_the_isolation_layers_and_the_node_workers() {
    let broker = Broker::with_config(common::node_config(1)).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let metrics_addr = listener.local_addr().expect("address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let metrics = tokio::spawn(broker.handle.clone().serve_metrics(listener, async {
        let _ = stopped.await;
    }));
    let mut c = broker.client().await;
    let lease = c.lease(1000, 64 * MIB, 60_000).await;
    c.started_worker(
        lease,
        "w",
        "postMessage(new Array(1e5).fill(1).length); close();",
    )
    .await;
    assert_eq!(c.expect("worker_message").await["data"], 100_000);
    let exited = c.exited().await;
    assert_eq!(exited["reason"], "closed", "{exited}");

    let (status, body) = common::http_get(metrics_addr, "/metrics").await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    // The test host has every layer (`node_backend` requires them all): each reads 1.
    for layer in foresight_broker::executor::node::Layer::ALL {
        let line = format!(
            "foresight_broker_node_layer_active{{layer=\"{}\"}} 1",
            layer.name()
        );
        assert!(body.lines().any(|l| l == line), "no {line:?} in\n{body}");
    }
    assert!(
        body.lines().any(|l| l == "foresight_broker_node_workers 0"),
        "{body}"
    );
    let value = |name: &str| -> u64 {
        body.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in\n{body}"))
    };
    let started = value("foresight_broker_node_workers_started_total{from=\"pool\"}")
        + value("foresight_broker_node_workers_started_total{from=\"cold\"}");
    assert_eq!(started, 1, "{body}");
    // The finished child's cgroup said how much it charged (node's heaps; its binary's pages
    // are shared page cache, charged elsewhere): some MiB.
    assert!(
        value("foresight_broker_node_peak_memory_bytes") > MIB,
        "{body}"
    );
    assert_eq!(
        value("foresight_broker_node_kills_total{limit=\"cpu\"}"),
        0,
        "{body}"
    );
    let _ = stop.send(());
    metrics
        .await
        .expect("metrics task")
        .expect("metrics served");
    drop(c);
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_announces_both_engines_as_calibrated_at_start_up() {
    use foresight_broker::BrokerEvent;
    let mut broker = Broker::with_config(foresight_broker::BrokerConfig {
        calibrate: true,
        ..common::node_config(1)
    })
    .await;
    // Calibration runs QuickJS (the kernel, then a start in a spare executor, as a
    // connection's second worker gets) then Node, one after the other (60 s limit each).
    let mut quickjs_start_timed = false;
    let calibrated = async {
        loop {
            match broker.events.recv().await {
                Ok(BrokerEvent::WorkerExited { worker_id, reason })
                    if worker_id == "calibration-start-Quickjs" =>
                {
                    assert_eq!(format!("{reason:?}"), "Closed");
                    quickjs_start_timed = true;
                }
                Ok(BrokerEvent::WorkerExited { worker_id, reason })
                    if worker_id == "calibration-Node" =>
                {
                    return reason;
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("events: {e}"),
            }
        }
    };
    let reason = tokio::time::timeout(std::time::Duration::from_secs(120), calibrated)
        .await
        .expect("the Node calibration ended");
    assert_eq!(format!("{reason:?}"), "Closed");
    assert!(
        quickjs_start_timed,
        "QuickJS start-up was not timed in a spare executor"
    );
    let mut c = broker.connect().await;
    let hello = c.hello().await;
    let engines = hello["engines"].as_array().expect("engines in hello");
    let offer = |name: &str| -> &serde_json::Value {
        engines
            .iter()
            .find(|e| e["engine"] == name)
            .unwrap_or_else(|| panic!("no {name} in {hello}"))
    };
    let (quickjs, node) = (offer("quickjs"), offer("node"));
    let kernel = |e: &serde_json::Value| e["kernel_ms"].as_f64().expect("kernel_ms measured");
    let startup = |e: &serde_json::Value| e["startup_ms"].as_f64().expect("startup_ms measured");
    // V8 runs the kernel several times faster than QuickJS (about 40x measured here).
    assert!(kernel(node) * 3.0 < kernel(quickjs), "{hello}");
    // Start-up is spawn to a running script, not the kernel's time.
    assert!(startup(quickjs) < kernel(quickjs), "{hello}");
    assert!(startup(node) < 1000.0, "{hello}");
    assert_eq!(node["webassembly"], true, "{hello}");
    assert_eq!(node["max_workers"].as_u64(), Some(4 * cpus()), "{hello}");
    drop(c);
    broker.stop().await;
}

fn cpus() -> u64 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u64)
}
