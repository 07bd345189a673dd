//! The hostile suite: scripts that try to take the broker's CPU, memory or stack, or to reach
//! its files, network or host, each under a small lease. Every one must be stopped within
//! twice its limit with a typed reason (or fail harmlessly in the worker), while a
//! well-behaved tenant on another connection keeps its round-trip latency within 2x of its
//! unloaded value (the median over the cases; each single case within 4x, since the machine
//! may be shared and one burst of unrelated load must not decide).
//!
//! The suite runs against both engines: QuickJS (in-engine limits plus the process sandbox)
//! and Node (V8 in a confined child, stopped from outside by the broker's CPU watchdog and the
//! cgroup's memory limit). V8 cannot catch its own out-of-memory, so the bomb that swallows
//! allocation errors ends as `memory_limit` there, where QuickJS lets it spin to `cpu_limit`.
//!
//! One test, run in sequence: the timings mean something only if the hostile workers do not
//! compete with each other for the machine's two cores.

mod common;

use std::time::{Duration, Instant};

use common::{Broker, Client, MIB};
use serde_json::{Value, json};

/// 100 millicores for 5 s: a 500 ms CPU budget per worker.
const CPU_MILLICORES: u64 = 100;
const TTL_MS: u64 = 5_000;
const BUDGET: Duration = Duration::from_millis(CPU_MILLICORES * TTL_MS / 1000);
const HEAP: u64 = 16 * MIB;

/// However loaded the machine, a hostile worker is gone by then.
const WALL_BACKSTOP: Duration = Duration::from_secs(20);

/// Round trips of the well-behaved tenant per measurement.
const ROUND_TRIPS: usize = 40;

async fn round_trip_p50(c: &mut Client) -> Duration {
    let mut times = Vec::with_capacity(ROUND_TRIPS);
    for i in 0..ROUND_TRIPS {
        let began = Instant::now();
        c.post("good", json!(i)).await;
        let m = c.expect("worker_message").await;
        times.push(began.elapsed());
        assert_eq!(m["data"], json!(i));
    }
    times.sort();
    times[times.len() / 2]
}

/// Spawns `source` and waits for the worker's end; returns the message that ended it and how
/// long after the spawn it came (executor start-up included). A script stuck in its top level
/// never reports `worker_started`, so that message is optional.
async fn run_hostile(c: &mut Client, lease: u64, id: &str, source: &str) -> (Value, Duration) {
    let began = Instant::now();
    c.spawn_worker(lease, id, source).await;
    loop {
        let m = c.recv().await;
        if m["type"] == "worker_exited" || m["type"] == "worker_error" {
            return (m, began.elapsed());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_workers_are_stopped_in_time_and_tenants_stay_served() {
    eprintln!("--- QuickJS ---");
    suite(Broker::start().await, Engine::QuickJs).await;
    eprintln!("--- Node ---");
    suite(
        Broker::with_config(common::node_config(2)).await,
        Engine::Node,
    )
    .await;
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Engine {
    QuickJs,
    Node,
}

async fn suite(broker: Broker, engine: Engine) {
    // The well-behaved tenant, unloaded.
    let mut good = broker.client().await;
    let good_lease = good.lease(500, 16 * MIB, 60_000).await;
    good.started_worker(
        good_lease,
        "good",
        "onmessage = (e) => postMessage(e.data);",
    )
    .await;
    round_trip_p50(&mut good).await; // warm-up
    let unloaded = round_trip_p50(&mut good).await;

    let cases: &[(&str, &str, &str)] = &[
        ("infinite-loop", "for (;;) {}", "cpu_limit"),
        (
            "swallowing-loop",
            "for (;;) { try { for (;;) {} } catch (e) {} }",
            "cpu_limit",
        ),
        (
            "throwing-loop",
            "for (;;) { try { throw new Error('x'); } catch (e) {} }",
            "cpu_limit",
        ),
        (
            "memory-bomb",
            "const a = []; for (;;) a.push(new Array(1e5).fill(Math.random()));",
            "memory_limit",
        ),
        (
            "oom-catching-bomb",
            "const a = []; for (;;) { try { a.push(new Array(1e5).fill(1)); } catch (e) {} }",
            if engine == Engine::Node {
                "memory_limit"
            } else {
                "cpu_limit"
            },
        ),
        (
            "recursion-in-a-loop",
            "function f() { return f() + 1; } for (;;) { try { f(); } catch (e) {} }",
            "cpu_limit",
        ),
        (
            "catastrophic-regex",
            "/^(a+)+$/.test('a'.repeat(64) + 'b');",
            "cpu_limit",
        ),
        (
            "timer-storm",
            "setInterval(() => { for (let i = 0; i < 1e6; i++); }, 0);",
            "cpu_limit",
        ),
    ];
    let mut hostile = broker.client().await;
    let mut failures = Vec::new();
    let mut ratios = Vec::new();
    for (id, source, reason) in cases {
        let lease = hostile.lease(CPU_MILLICORES, HEAP, TTL_MS).await;
        // The tenant keeps working while the hostile worker runs.
        let ((ended, elapsed), loaded) = tokio::join!(
            run_hostile(&mut hostile, lease, id, source),
            round_trip_p50(&mut good)
        );
        // The budget is CPU time: judged on the CPU time the executor used (the machine may
        // be shared, so the wall clock says little), with a wall-clock bound as a backstop.
        let cpu = ended["cpu_ms"].as_u64();
        eprintln!(
            "{id}: {} after {cpu:?} ms of CPU, {elapsed:?} of wall time (budget {BUDGET:?}); \
             tenant round trip p50 {loaded:?} (unloaded {unloaded:?})",
            ended["reason"]
        );
        let expected = json!({"type": "worker_exited", "worker_id": id, "reason": reason});
        let mut ended = ended;
        ended.as_object_mut().map(|o| o.remove("cpu_ms"));
        if ended != expected {
            failures.push(format!("{id}: expected {reason}, got {ended}"));
        }
        match cpu {
            Some(ms) if Duration::from_millis(ms) <= 2 * BUDGET => {}
            other => failures.push(format!(
                "{id}: used {other:?} ms of CPU, not within twice {BUDGET:?}"
            )),
        }
        if elapsed > WALL_BACKSTOP {
            failures.push(format!("{id}: took {elapsed:?} of wall time"));
        }
        ratios.push(loaded.as_secs_f64() / unloaded.as_secs_f64());
        // One case alone can catch a burst of unrelated load on a shared machine; the median
        // over all cases below is the 2x criterion.
        if loaded > 4 * unloaded {
            failures.push(format!(
                "{id}: the tenant's round trip went from {unloaded:?} to {loaded:?}"
            ));
        }
        hostile
            .send(json!({"type": "lease_release", "lease_id": lease}))
            .await;
        let answer = hostile.recv().await;
        if answer["type"] == "lease_ended" {
            // On a busy machine a case may outlast the lease's time to live (the budget is CPU
            // time; the wall clock is shared): the lease expired first, and the release then
            // finds no lease. Either way the next case starts from a clean slate.
            assert_eq!(answer["reason"], "expired", "{answer}");
            let refused = hostile.expect("error").await;
            assert_eq!(refused["code"], "not_found", "{refused}");
        } else {
            assert_eq!(answer["type"], "lease_released", "{answer}");
        }
    }

    ratios.sort_by(f64::total_cmp);
    let median = ratios[ratios.len() / 2];
    eprintln!("tenant round trip, loaded / unloaded: median {median:.2}, all {ratios:.2?}");
    if median > 2.0 {
        failures.push(format!(
            "the tenant's round trip grew {median:.2}x (median over the cases)"
        ));
    }

    // Plain deep recursion is an ordinary RangeError, typed, and the worker lives on.
    let lease = hostile.lease(CPU_MILLICORES, HEAP, TTL_MS).await;
    let (error, elapsed) = run_hostile(
        &mut hostile,
        lease,
        "recursion",
        "function f() { return f() + 1; } f();",
    )
    .await;
    assert_eq!(error["type"], "worker_error", "{error}");
    assert!(
        error["message"]
            .as_str()
            .unwrap_or("")
            .contains("RangeError"),
        "{error}"
    );
    assert!(elapsed < 2 * BUDGET, "{elapsed:?}");

    // Reaching out: no files, network, modules or host objects; importScripts only serves
    // what the client supplied.
    let probe = r#"
        const seen = {};
        for (const name of ['require', 'process', 'std', 'os', 'Deno', 'fetch', 'XMLHttpRequest',
                            'WebSocket', 'indexedDB', 'caches', 'Worker', 'SharedArrayBuffer',
                            'Atomics', 'WebAssembly']) {
            seen[name] = typeof globalThis[name];
        }
        for (const url of ['file:///etc/passwd', 'http://127.0.0.1:1/', '/proc/self/environ']) {
            try { importScripts(url); seen[url] = 'loaded'; } catch (e) { seen[url] = e.name; }
        }
        import('file:///etc/passwd').then(() => 'imported', (e) => String(e.name)).then((how) => {
            seen.dynamicImport = how;
            postMessage(seen);
        });
    "#;
    hostile.started_worker(lease, "reach-out", probe).await;
    let seen = hostile.expect("worker_message").await["data"].clone();
    eprintln!("reach-out probe: {seen}");
    let wasm = if engine == Engine::Node {
        "object"
    } else {
        "undefined"
    };
    assert_eq!(seen["WebAssembly"], wasm, "{seen}");
    for name in [
        "require",
        "process",
        "std",
        "os",
        "Deno",
        "fetch",
        "XMLHttpRequest",
        "WebSocket",
        "indexedDB",
        "caches",
        "Worker",
    ] {
        assert_eq!(seen[name], "undefined", "{name} is reachable: {seen}");
    }
    for url in [
        "file:///etc/passwd",
        "http://127.0.0.1:1/",
        "/proc/self/environ",
    ] {
        assert_eq!(seen[url], "NetworkError", "{url}: {seen}");
    }
    assert_ne!(seen["dynamicImport"], "imported", "{seen}");

    assert!(failures.is_empty(), "{}", failures.join("\n"));
    drop((good, hostile));
    broker.stop().await;
}
