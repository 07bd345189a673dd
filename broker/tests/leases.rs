//! The lease engine through a real websocket: the queue, preemption with notice, capacity
//! changes and fencing, as a client sees them.

mod common;

use common::{Broker, MIB, resources};
use foresight_broker::scheduler::scaling::ScalingConfig;
use foresight_broker::{BrokerEvent, LeaseEndCause};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_request_is_queued_then_granted_when_room_appears() {
    let broker = Broker::start().await;
    let mut a = broker.client().await;
    let mut b = broker.client().await;
    let held = a.lease(2000, MIB, 30_000).await;
    b.send(json!({
        "type": "lease_request", "request_id": 5, "ttl_ms": 30_000, "max_wait_ms": 10_000,
        "resources": {"cpu_millicores": 1500, "memory_bytes": MIB},
    }))
    .await;
    let queued = b.expect("lease_queued").await;
    assert_eq!(queued["request_id"], 5, "{queued}");
    assert_eq!(queued["position"], 1, "{queued}");
    // `a`'s lease runs 30 s: that is the honest estimate.
    let estimate = queued["estimated_wait_ms"].as_u64().expect("an estimate");
    assert!((25_000..=30_000).contains(&estimate), "{queued}");
    let released = a
        .request(json!({"type": "lease_release", "lease_id": held}))
        .await;
    assert_eq!(released["type"], "lease_released");
    let granted = b.expect("lease_granted").await;
    assert_eq!(granted["request_id"], 5, "{granted}");
    assert_eq!(granted["lease"]["resources"]["cpu_millicores"], 1500);
    drop((a, b));
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_request_is_denied_when_its_wait_runs_out() {
    let broker = Broker::start().await;
    let mut a = broker.client().await;
    let mut b = broker.client().await;
    a.lease(2000, MIB, 30_000).await;
    b.send(json!({
        "type": "lease_request", "request_id": 6, "ttl_ms": 30_000, "max_wait_ms": 200,
        "resources": {"cpu_millicores": 1, "memory_bytes": 1},
    }))
    .await;
    b.expect("lease_queued").await;
    let denied = b.expect("lease_denied").await;
    assert_eq!(denied["request_id"], 6, "{denied}");
    assert_eq!(denied["reason"], "insufficient_capacity", "{denied}");
    drop((a, b));
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn higher_priority_preempts_with_notice_and_the_workers_stop_with_the_lease() {
    let mut config = common::test_config();
    config.revoke_grace_ms = 300;
    let mut broker = Broker::with_config(config).await;
    let mut low = broker.client().await;
    let mut high = broker.client().await;
    let victim = low.lease(2000, 64 * MIB, 30_000).await;
    low.started_worker(victim, "w", "onmessage = (e) => postMessage(e.data)")
        .await;
    high.send(json!({
        "type": "lease_request", "request_id": 1, "ttl_ms": 30_000, "max_wait_ms": 5_000,
        "priority": 5, "resources": {"cpu_millicores": 1000, "memory_bytes": MIB},
    }))
    .await;
    let queued = high.expect("lease_queued").await;
    assert!(
        queued["estimated_wait_ms"].as_u64() <= Some(300),
        "{queued}"
    );
    let notice = low.expect("lease_revoking").await;
    assert_eq!(notice["lease_id"], victim);
    assert_eq!(notice["cause"], "preempted");
    // During the notice the lease still works and cannot be renewed.
    low.post("w", json!("still here")).await;
    assert_eq!(low.expect("worker_message").await["data"], "still here");
    let renew = low
        .request(json!({"type": "lease_renew", "lease_id": victim, "ttl_ms": 30_000}))
        .await;
    assert_eq!(renew["code"], "bad_state", "{renew}");
    // Then the worker is stopped, the lease ends, and the higher priority gets its grant.
    assert_eq!(
        low.expect("worker_exited").await,
        json!({"type": "worker_exited", "worker_id": "w", "reason": "lease_ended"})
    );
    assert_eq!(
        low.expect("lease_ended").await,
        json!({"type": "lease_ended", "lease_id": victim, "reason": "revoked"})
    );
    let granted = high.expect("lease_granted").await;
    assert_eq!(granted["request_id"], 1);
    broker
        .event("LeaseEnded{Revoked}", |e| {
            matches!(e, BrokerEvent::LeaseEnded { lease_id, cause: LeaseEndCause::Revoked, .. } if *lease_id == victim)
        })
        .await;
    drop((low, high));
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_smaller_pool_revokes_with_notice_and_a_partial_grant_takes_what_is_left() {
    let broker = Broker::start().await;
    let mut c = broker.client().await;
    let first = c.lease(1000, MIB, 30_000).await;
    let second = c.lease(1000, MIB, 30_000).await;
    broker.handle.set_capacity(resources(1200, 256 * MIB));
    assert_eq!(
        c.expect("lease_ended").await,
        json!({"type": "lease_ended", "lease_id": second, "reason": "revoked"})
    );
    let partial = c
        .request(json!({
            "type": "lease_request", "request_id": 3, "ttl_ms": 1_000,
            "resources": {"cpu_millicores": 1000, "memory_bytes": MIB},
            "min_resources": {"cpu_millicores": 100, "memory_bytes": MIB},
        }))
        .await;
    assert_eq!(partial["type"], "lease_granted", "{partial}");
    assert_eq!(partial["lease"]["resources"]["cpu_millicores"], 200);
    let stats = broker.handle.stats();
    assert_eq!(stats.leases, 2);
    assert_eq!(stats.granted, resources(1200, 2 * MIB));
    broker.handle.check().expect("consistent");
    let _ = first;
    drop(c);
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_with_a_stale_epoch_is_refused() {
    let broker = Broker::start().await;
    let mut c = broker.client().await;
    let granted = c.lease_request(1, 500, 16 * MIB, 30_000).await;
    let lease = granted["lease"]["lease_id"].as_u64().unwrap();
    let epoch = granted["lease"]["epoch"].as_u64().unwrap();
    c.send(json!({
        "type": "worker_spawn", "lease_id": lease, "worker_id": "old",
        "script_url": "https://example.test/old.js", "source": "", "epoch": epoch - 1,
    }))
    .await;
    let refused = c.expect("error").await;
    assert_eq!(refused["code"], "bad_state", "{refused}");
    assert!(
        refused["message"].as_str().unwrap().contains("stale"),
        "{refused}"
    );
    // The worker's end follows, so its owner runs it elsewhere instead of waiting.
    let ended = c.expect("worker_exited").await;
    assert_eq!(ended["worker_id"], "old", "{ended}");
    assert_eq!(ended["reason"], "refused", "{ended}");
    c.send(json!({
        "type": "worker_spawn", "lease_id": lease, "worker_id": "new",
        "script_url": "https://example.test/new.js", "source": "postMessage(1)", "epoch": epoch,
    }))
    .await;
    c.expect("worker_started").await;
    drop(c);
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_grows_under_queue_pressure_and_shrinks_when_idle() {
    let mut config = common::test_config();
    config.scaling = Some(ScalingConfig {
        unit: resources(1000, 64 * MIB),
        min_units: 1,
        max_units: 3,
        idle_ms: 200,
    });
    let mut broker = Broker::with_config(config).await;
    let mut c = broker.client().await;
    // Beyond today's pool but within the largest: it waits, and the pool grows at once.
    c.send(json!({
        "type": "lease_request", "request_id": 1, "ttl_ms": 30_000, "max_wait_ms": 5_000,
        "resources": {"cpu_millicores": 2500, "memory_bytes": MIB},
    }))
    .await;
    c.expect("lease_queued").await;
    let granted = c.expect("lease_granted").await;
    assert_eq!(granted["lease"]["resources"]["cpu_millicores"], 2500);
    assert_eq!(broker.handle.stats().capacity, resources(3000, 192 * MIB));
    // Beyond the largest pool: infeasible at once.
    let huge = c.lease_request(2, 3001, MIB, 1_000).await;
    assert_eq!(huge["reason"], "infeasible", "{huge}");
    // Released: the free units go back one idle period at a time, down to the minimum.
    let id = granted["lease"]["lease_id"].as_u64().unwrap();
    c.request(json!({"type": "lease_release", "lease_id": id}))
        .await;
    broker
        .event("the pool back at one unit", |e| {
            matches!(e, BrokerEvent::PoolResized { capacity } if *capacity == resources(1000, 64 * MIB))
        })
        .await;
    assert_eq!(broker.handle.stats().capacity, resources(1000, 64 * MIB));
    drop(c);
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_smaller_pool_with_a_grace_period_gives_notice_first() {
    let mut config = common::test_config();
    config.revoke_grace_ms = 200;
    let broker = Broker::with_config(config).await;
    let mut c = broker.client().await;
    let kept = c.lease(1000, MIB, 30_000).await;
    let cut = c.lease(1000, MIB, 30_000).await;
    broker.handle.set_capacity(resources(1000, 256 * MIB));
    let notice = c.expect("lease_revoking").await;
    assert_eq!(notice["lease_id"], cut, "{notice}");
    assert_eq!(notice["cause"], "capacity_reduced", "{notice}");
    assert_eq!(
        c.expect("lease_ended").await,
        json!({"type": "lease_ended", "lease_id": cut, "reason": "revoked"})
    );
    let stats = broker.handle.stats();
    assert_eq!(
        (stats.leases, stats.capacity),
        (1, resources(1000, 256 * MIB))
    );
    let _ = kept;
    drop(c);
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_ping_renews_the_connection_s_leases() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;

    let broker = Broker::start().await;
    let mut c = broker.client().await;
    let granted = c.lease_request(1, 100, MIB, 30_000).await;
    let id = granted["lease"]["lease_id"].as_u64().unwrap();
    let before = granted["lease"]["expires_at_ms"].as_u64().unwrap();
    c.ws.send(Message::Ping(vec![1, 2, 3].into()))
        .await
        .unwrap();
    let renewed = c.expect("lease_renewed").await;
    assert_eq!(renewed["lease_id"], id, "{renewed}");
    assert!(
        renewed["expires_at_ms"].as_u64().unwrap() >= before,
        "{renewed}"
    );
    drop(c);
    broker.stop().await;
}
