//! Remote workers end to end: real executor processes behind a real broker.

mod common;

use std::time::Instant;

use common::{Broker, DEADLINE, MIB, resources};
use foresight_broker::{BrokerConfig, BrokerEvent, ExecutorCommand};
use foresight_shared::protocol::broker::WorkerExitReason;
use serde_json::json;

/// Whether a process with this pid still exists (a zombie counts as existing).
fn process_exists(pid: u32) -> bool {
    // SAFETY: signal 0 only checks for existence and permission.
    unsafe { libc::kill(pid as libc::pid_t, 0) == 0 }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_round_trip_in_order_with_timers_and_promises() {
    let mut broker = Broker::start().await;
    let mut c = broker.client().await;
    let lease = c.lease(1000, 32 * MIB, 30_000).await;
    let source = r#"
        postMessage('top level ran');
        onmessage = async (e) => {
            if (e.data === 'later') {
                setTimeout(() => postMessage('timer fired'), 20);
                return;
            }
            await Promise.resolve();
            postMessage(e.data * 2);
        };
    "#;
    c.spawn_worker(lease, "echo", source).await;
    let started = c.expect("worker_started").await;
    assert_eq!(started["worker_id"], "echo");
    let pid = match broker
        .event("WorkerStarted", |e| {
            matches!(e, BrokerEvent::WorkerStarted { .. })
        })
        .await
    {
        BrokerEvent::WorkerStarted {
            executor_pid,
            lease_id,
            script_url,
            ..
        } => {
            assert_eq!(lease_id, lease);
            assert_eq!(script_url, "https://example.test/echo.js");
            executor_pid
        }
        _ => unreachable!(),
    };
    assert_ne!(
        pid,
        std::process::id(),
        "page code never runs in the broker"
    );
    assert_eq!(
        c.expect("worker_message").await["data"],
        json!("top level ran")
    );
    for i in 0..20 {
        c.post("echo", json!(i)).await;
    }
    c.post("echo", json!("later")).await;
    for i in 0..20 {
        let m = c.expect("worker_message").await;
        assert_eq!(
            m,
            json!({"type": "worker_message", "worker_id": "echo", "data": i * 2})
        );
    }
    assert_eq!(c.expect("worker_message").await["data"], "timer fired");
    broker
        .event(
            "WorkerMessageIn",
            |e| matches!(e, BrokerEvent::WorkerMessageIn { data, .. } if data == "later"),
        )
        .await;

    // terminate: reported at once, and the process is really gone.
    c.send(json!({"type": "worker_terminate", "worker_id": "echo"}))
        .await;
    assert_eq!(
        c.exited().await,
        json!({"type": "worker_exited", "worker_id": "echo", "reason": "terminated"})
    );
    broker
        .event("WorkerExited", |e| {
            matches!(
                e,
                BrokerEvent::WorkerExited {
                    reason: WorkerExitReason::Terminated,
                    ..
                }
            )
        })
        .await;
    assert!(!process_exists(pid), "executor {pid} still exists");
    let gone = c
        .request(json!({"type": "worker_message", "worker_id": "echo", "data": 1}))
        .await;
    assert_eq!(gone["code"], "not_found");
    drop(c);
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_loop_is_stopped_at_its_cpu_budget_and_others_are_served() {
    let broker = Broker::start().await;
    let mut c = broker.client().await;
    // 50 millicores for 10 s: a 500 ms CPU budget.
    let lease = c.lease(50, 16 * MIB, 10_000).await;
    let began = Instant::now();
    c.spawn_worker(lease, "spin", "while (true) {}").await;

    // Meanwhile another client is answered promptly.
    let mut other = broker.client().await;
    let answered = Instant::now();
    other.lease(100, MIB, 1000).await;
    let latency = answered.elapsed();

    let exited = c.exited().await;
    assert_eq!(
        exited,
        json!({"type": "worker_exited", "worker_id": "spin", "reason": "cpu_limit"})
    );
    eprintln!(
        "cpu_limit after {:?}; another client's lease answered in {latency:?}",
        began.elapsed()
    );
    assert!(latency < DEADLINE / 4, "other client waited {latency:?}");
    drop((c, other));
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bomb_that_swallows_its_own_out_of_memory_errors_is_stopped_near_its_budget() {
    // Between two of QuickJS's interrupt checks this spends seconds collecting garbage; the
    // executor's watchdog ends it shortly after the 500 ms budget instead.
    let broker = Broker::start().await;
    let mut c = broker.client().await;
    let lease = c.lease(50, 16 * MIB, 10_000).await;
    let began = Instant::now();
    c.spawn_worker(
        lease,
        "stubborn",
        "const a = []; for (;;) { try { a.push(new Array(1e5).fill(1)); } catch (e) {} }",
    )
    .await;
    assert_eq!(
        c.exited().await,
        json!({"type": "worker_exited", "worker_id": "stubborn", "reason": "cpu_limit"})
    );
    eprintln!("OOM-swallowing loop stopped after {:?}", began.elapsed());
    drop(c);
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_bomb_is_stopped_without_harming_the_broker() {
    let broker = Broker::start().await;
    let mut c = broker.client().await;
    let lease = c.lease(1000, 16 * MIB, 30_000).await;
    c.spawn_worker(
        lease,
        "bomb",
        "const hoard = []; while (true) hoard.push(new Array(1e5).fill(Math.random()));",
    )
    .await;
    let exited = c.exited().await;
    let reason = exited["reason"].as_str().unwrap();
    assert!(reason == "memory_limit" || reason == "crashed", "{exited}");
    assert_eq!(
        reason, "memory_limit",
        "QuickJS's own limit should catch it first"
    );
    // The broker is fine and the lease still usable.
    c.started_worker(lease, "after", "postMessage('alive')")
        .await;
    assert_eq!(c.expect("worker_message").await["data"], "alive");
    drop(c);
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uncaught_errors_are_reported_and_the_worker_lives_on() {
    let broker = Broker::start().await;
    let mut c = broker.client().await;
    let lease = c.lease(1000, 16 * MIB, 30_000).await;
    let source = "onmessage = (e) => {\n  if (e.data === 'throw') throw new Error('boom');\n  postMessage('ok');\n};";
    c.started_worker(lease, "w", source).await;
    c.post("w", json!("throw")).await;
    let error = c.expect("worker_error").await;
    assert_eq!(error["worker_id"], "w");
    assert_eq!(error["message"], "Uncaught Error: boom");
    assert_eq!(error["filename"], "https://example.test/w.js");
    assert_eq!(error["lineno"], 2);
    c.post("w", json!("again")).await;
    assert_eq!(c.expect("worker_message").await["data"], "ok");

    // A syntax error at the top level is an error event too; the worker still starts.
    c.spawn_worker(lease, "broken", "this is not javascript")
        .await;
    assert_eq!(c.expect("worker_started").await["worker_id"], "broken");
    let error = c.expect("worker_error").await;
    assert!(
        error["message"].as_str().unwrap().contains("SyntaxError"),
        "{error}"
    );
    drop(c);
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_end_kills_its_workers() {
    let mut broker = Broker::start().await;
    let mut c = broker.client().await;
    let released = c.lease(500, 16 * MIB, 30_000).await;
    c.started_worker(released, "a", "onmessage = () => {}")
        .await;
    c.started_worker(released, "b", "setInterval(() => {}, 1000)")
        .await;
    c.send(json!({"type": "lease_release", "lease_id": released}))
        .await;
    for id in ["a", "b"] {
        assert_eq!(
            c.exited().await,
            json!({"type": "worker_exited", "worker_id": id, "reason": "lease_ended"})
        );
    }
    assert_eq!(c.expect("lease_released").await["lease_id"], released);
    for _ in 0..2 {
        broker
            .event("WorkerExited{LeaseEnded}", |e| {
                matches!(
                    e,
                    BrokerEvent::WorkerExited {
                        reason: WorkerExitReason::LeaseEnded,
                        ..
                    }
                )
            })
            .await;
    }

    // The same for expiry: a busy worker is stopped by the lease's wall clock. The lease is
    // cut short only once the worker runs, so a slow executor start cannot race the expiry.
    let expiring = c.lease(1000, 16 * MIB, 30_000).await;
    c.spawn_worker(expiring, "busy", "postMessage('go'); for (;;) {}")
        .await;
    c.expect("worker_started").await;
    c.expect("worker_message").await;
    let renewed = c
        .request(json!({"type": "lease_renew", "lease_id": expiring, "ttl_ms": 1}))
        .await;
    assert_eq!(renewed["type"], "lease_renewed", "{renewed}");
    assert_eq!(
        c.exited().await,
        json!({"type": "worker_exited", "worker_id": "busy", "reason": "lease_ended"})
    );
    assert_eq!(
        c.expect("lease_ended").await,
        json!({"type": "lease_ended", "lease_id": expiring, "reason": "expired"})
    );
    drop(c);
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_duplicates_and_disconnect() {
    let mut broker = Broker::start().await;
    let mut c = broker.client().await;
    let lease = c.lease(1000, 16 * MIB, 30_000).await;
    c.started_worker(
        lease,
        "w",
        "onmessage = (e) => { postMessage(e.data); close(); }",
    )
    .await;
    let duplicate = c
        .request(json!({"type": "worker_spawn", "lease_id": lease, "worker_id": "w", "script_url": "u", "source": ""}))
        .await;
    assert_eq!(duplicate["code"], "bad_state", "{duplicate}");
    c.post("w", json!("last words")).await;
    assert_eq!(c.expect("worker_message").await["data"], "last words");
    assert_eq!(
        c.exited().await,
        json!({"type": "worker_exited", "worker_id": "w", "reason": "closed"})
    );
    // The id is free again once the worker is gone.
    c.started_worker(lease, "w", "onmessage = () => {}").await;
    drop(c);
    broker
        .event(
            "WorkerExited on disconnect",
            |e| matches!(e, BrokerEvent::WorkerExited { worker_id, .. } if worker_id == "w"),
        )
        .await;
    broker
        .event("ClientDisconnected", |e| {
            matches!(e, BrokerEvent::ClientDisconnected { .. })
        })
        .await;
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executor_failures_are_reported_and_the_broker_keeps_serving() {
    // An "executor" that dies at once, without a word.
    let broker = Broker::with_config(BrokerConfig {
        capacity: resources(1000, 64 * MIB),
        executor: ExecutorCommand {
            program: "/bin/sh".into(),
            args: vec!["-c".into(), "exit 3".into()],
        },
        max_ttl_ms: 60_000,
        ..common::test_config()
    })
    .await;
    let mut c = broker.client().await;
    let lease = c.lease(500, 16 * MIB, 30_000).await;
    c.spawn_worker(lease, "x", "").await;
    assert_eq!(
        c.exited().await,
        json!({"type": "worker_exited", "worker_id": "x", "reason": "crashed"})
    );
    assert_eq!(c.lease_request(2, 1, 1, 10).await["type"], "lease_granted");
    drop(c);
    broker.stop().await;

    // One that cannot be started at all.
    let broker = Broker::with_config(BrokerConfig {
        capacity: resources(1000, 64 * MIB),
        executor: ExecutorCommand {
            program: "/nonexistent/executor".into(),
            args: vec![],
        },
        max_ttl_ms: 60_000,
        ..common::test_config()
    })
    .await;
    let mut c = broker.client().await;
    let lease = c.lease(500, 16 * MIB, 30_000).await;
    c.spawn_worker(lease, "x", "").await;
    let error = c.expect("error").await;
    assert_eq!(error["code"], "internal", "{error}");
    drop(c);
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executor_startup_time() {
    // Not a limit, a measurement (printed with --nocapture): spawn -> worker_started.
    let broker = Broker::start().await;
    let mut c = broker.client().await;
    let lease = c.lease(1000, 32 * MIB, 30_000).await;
    let mut times = Vec::new();
    for i in 0..5 {
        let began = Instant::now();
        c.started_worker(
            lease,
            &format!("w{i}"),
            "onmessage = e => postMessage(e.data)",
        )
        .await;
        c.post(&format!("w{i}"), json!(i)).await;
        c.expect("worker_message").await;
        times.push(began.elapsed());
    }
    eprintln!("spawn -> started -> first echo: {times:?}");
    drop(c);
    broker.stop().await;
}

/// The processes whose parent is this test process (the in-process broker's executors).
fn child_pids() -> Vec<u32> {
    let me = std::process::id();
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // The command name may hold spaces; the parent pid is the second field after it.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(me) {
            pids.push(pid);
        }
    }
    pids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connections_next_worker_starts_in_a_spare_executor() {
    let mut broker = Broker::start().await;
    let mut c = broker.client().await;
    let lease = c.lease(1000, 32 * MIB, 30_000).await;
    c.started_worker(lease, "first", "onmessage = (e) => postMessage(e.data)")
        .await;
    // The spare is started right after the first worker is announced (off the connection's
    // task); the broker says when its process exists.
    let spare_pid = match broker
        .event("SpareExecutorStarted", |e| {
            matches!(e, BrokerEvent::SpareExecutorStarted { .. })
        })
        .await
    {
        BrokerEvent::SpareExecutorStarted { executor_pid } => executor_pid,
        _ => unreachable!(),
    };
    assert!(
        child_pids().contains(&spare_pid),
        "the spare {spare_pid} is this broker's child"
    );
    c.started_worker(lease, "second", "onmessage = (e) => postMessage(e.data)")
        .await;
    let second_pid = match broker
        .event(
            "WorkerStarted second",
            |e| matches!(e, BrokerEvent::WorkerStarted { worker_id, .. } if worker_id == "second"),
        )
        .await
    {
        BrokerEvent::WorkerStarted { executor_pid, .. } => executor_pid,
        _ => unreachable!(),
    };
    assert_eq!(
        second_pid, spare_pid,
        "worker 2 ran in {second_pid}, not in the spare started before it"
    );
    c.post("second", json!("hi")).await;
    assert_eq!(c.expect("worker_message").await["data"], "hi");
    drop(c);
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executors_run_confined() {
    let mut broker = Broker::start().await;
    let mut c = broker.client().await;
    let lease = c.lease(1000, 32 * MIB, 30_000).await;
    c.started_worker(lease, "w", "onmessage = (e) => postMessage(e.data)")
        .await;
    // A round trip: the worker has run page code, so every layer is in place.
    c.post("w", json!(1)).await;
    c.expect("worker_message").await;
    let pid = match broker
        .event("WorkerStarted", |e| {
            matches!(e, BrokerEvent::WorkerStarted { .. })
        })
        .await
    {
        BrokerEvent::WorkerStarted { executor_pid, .. } => executor_pid,
        _ => unreachable!(),
    };
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("executor status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name).map(str::trim))
            .unwrap_or("?")
            .to_string()
    };
    assert_eq!(field("NoNewPrivs:"), "1", "{status}");
    assert_eq!(
        field("Seccomp:"),
        "2",
        "a seccomp filter is in force: {status}"
    );
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits");
    let open_files = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("a Max open files line");
    assert!(
        open_files.split_whitespace().nth(3) == Some("0"),
        "{open_files}"
    );
    // A worker the client terminates still has its usage reported, measured by the broker.
    c.send(json!({"type": "worker_terminate", "worker_id": "w"}))
        .await;
    let exited = c.expect("worker_exited").await;
    assert_eq!(exited["reason"], "terminated", "{exited}");
    assert!(exited["cpu_ms"].as_u64().is_some(), "{exited}");
    drop(c);
    broker.stop().await;
}
