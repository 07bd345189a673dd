//! The broker's protocol and lease behaviour, through a real websocket.

mod common;

use common::{Broker, MIB};
use foresight_broker::{BrokerEvent, LeaseEndCause};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_reports_capacity_and_events_record_it() {
    let mut broker = Broker::start().await;
    let mut c = broker.connect().await;
    let hello = c.hello().await;
    assert_eq!(hello["type"], "hello");
    assert_eq!(hello["protocol_version"], 1);
    assert!(
        hello["broker"]
            .as_str()
            .unwrap()
            .starts_with("foresight-broker/")
    );
    assert_eq!(hello["capacity"]["cpu_millicores"], 2000);
    assert_eq!(hello["capacity"]["memory_bytes"], 256 * MIB);
    broker
        .event(
            "ClientHello",
            |e| matches!(e, BrokerEvent::ClientHello { client, .. } if client == "test"),
        )
        .await;
    drop(c);
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grant_renew_and_release() {
    let broker = Broker::start().await;
    let mut c = broker.client().await;
    let granted = c.lease_request(7, 500, 10 * MIB, 30_000).await;
    assert_eq!(granted["type"], "lease_granted", "{granted}");
    let lease = &granted["lease"];
    assert_eq!(lease["ttl_ms"], 30_000);
    assert_eq!(lease["resources"]["cpu_millicores"], 500);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let expires = lease["expires_at_ms"].as_u64().unwrap();
    assert!(expires > now && expires <= now + 30_000 + 1_000, "{lease}");
    let id = lease["lease_id"].as_u64().unwrap();

    let renewed = c
        .request(json!({"type": "lease_renew", "lease_id": id, "ttl_ms": 50_000}))
        .await;
    assert_eq!(renewed["type"], "lease_renewed", "{renewed}");
    assert!(renewed["expires_at_ms"].as_u64().unwrap() > expires);

    // A renewal past the maximum is refused with the reason, never silently shortened.
    let refused = c
        .request(json!({"type": "lease_renew", "lease_id": id, "ttl_ms": 60_001}))
        .await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert!(refused["message"].as_str().unwrap().contains("60000"));

    let released = c
        .request(json!({"type": "lease_release", "lease_id": id}))
        .await;
    assert_eq!(released, json!({"type": "lease_released", "lease_id": id}));
    let again = c
        .request(json!({"type": "lease_release", "lease_id": id}))
        .await;
    assert_eq!(again["code"], "not_found", "{again}");
    drop(c);
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_and_infeasible_requests_are_denied_at_once() {
    let broker = Broker::start().await;
    let mut c = broker.client().await;
    for (cpu, memory, ttl, reason) in [
        (100, MIB, 0, "invalid_request"),
        (100, MIB, 60_001, "invalid_request"),
        (0, 0, 1_000, "invalid_request"),
        (4000, MIB, 1_000, "infeasible"),
        (100, 512 * MIB, 1_000, "infeasible"),
    ] {
        let answer = c.lease_request(3, cpu, memory, ttl).await;
        assert_eq!(answer["type"], "lease_denied", "{answer}");
        assert_eq!(answer["reason"], reason, "{answer}");
        assert!(!answer["message"].as_str().unwrap().is_empty());
    }
    drop(c);
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_never_exceed_capacity() {
    let broker = Broker::start().await;
    let mut a = broker.client().await;
    let mut b = broker.client().await;
    let first = a.lease_request(1, 1500, 100 * MIB, 30_000).await;
    assert_eq!(first["type"], "lease_granted");
    let second = b.lease_request(2, 1000, 100 * MIB, 30_000).await;
    assert_eq!(second["type"], "lease_denied", "{second}");
    assert_eq!(second["reason"], "insufficient_capacity");
    let third = b.lease_request(3, 500, 156 * MIB, 30_000).await;
    assert_eq!(third["type"], "lease_granted", "{third}");
    assert!(third["lease"]["epoch"].as_u64() > first["lease"]["epoch"].as_u64());
    assert_ne!(third["lease"]["lease_id"], first["lease"]["lease_id"]);
    // The pool is exactly full now: not one more millicore.
    let fourth = a.lease_request(4, 1, 0, 30_000).await;
    assert_eq!(fourth["reason"], "insufficient_capacity", "{fourth}");

    // Someone else's lease is not found, not released.
    let id = first["lease"]["lease_id"].as_u64().unwrap();
    let foreign = b
        .request(json!({"type": "lease_release", "lease_id": id}))
        .await;
    assert_eq!(foreign["code"], "not_found", "{foreign}");
    drop((a, b));
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_lease_expires_and_frees_capacity() {
    let mut broker = Broker::start().await;
    let mut c = broker.client().await;
    let id = c.lease(2000, MIB, 200).await;
    let ended = c.expect("lease_ended").await;
    assert_eq!(
        ended,
        json!({"type": "lease_ended", "lease_id": id, "reason": "expired"})
    );
    broker
        .event("LeaseEnded{Expired}", |e| {
            matches!(e, BrokerEvent::LeaseEnded { lease_id, cause: LeaseEndCause::Expired, .. } if *lease_id == id)
        })
        .await;
    let renewed = c
        .request(json!({"type": "lease_renew", "lease_id": id, "ttl_ms": 1000}))
        .await;
    assert_eq!(renewed["code"], "not_found", "{renewed}");
    c.lease(2000, MIB, 30_000).await;
    drop(c);
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_releases_leases_for_others() {
    let mut broker = Broker::start().await;
    let mut a = broker.client().await;
    let id = a.lease(2000, 256 * MIB, 30_000).await;
    let mut b = broker.client().await;
    assert_eq!(
        b.lease_request(1, 1, 1, 30_000).await["reason"],
        "insufficient_capacity"
    );
    drop(a);
    broker
        .event("LeaseEnded{Disconnected}", |e| {
            matches!(e, BrokerEvent::LeaseEnded { lease_id, cause: LeaseEndCause::Disconnected, .. } if *lease_id == id)
        })
        .await;
    b.lease(2000, 256 * MIB, 30_000).await;
    drop(b);
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_typed_errors_and_the_connection_keeps_serving() {
    let broker = Broker::start().await;
    let mut c = broker.connect().await;

    let before = c
        .request(json!({"type": "lease_request", "request_id": 5, "resources": {"cpu_millicores": 1, "memory_bytes": 1}, "ttl_ms": 10}))
        .await;
    assert_eq!(before["type"], "error");
    assert_eq!(before["code"], "bad_state", "{before}");
    assert_eq!(before["request_id"], 5);

    c.send_text("{not json").await;
    assert_eq!(c.expect("error").await["code"], "invalid_json");

    c.send_text(r#"{"type": "lease_request", "request_id": 9, "ttl_ms": "soon"}"#)
        .await;
    let invalid = c.expect("error").await;
    assert_eq!(invalid["code"], "invalid_message", "{invalid}");
    assert_eq!(invalid["request_id"], 9);

    c.send_text(r#"[1, 2]"#).await;
    assert_eq!(c.expect("error").await["code"], "invalid_message");

    c.send_text(r#"{"type": "teleport"}"#).await;
    let unknown = c.expect("error").await;
    assert_eq!(unknown["code"], "unsupported", "{unknown}");

    c.ws.send_binary_for_test(vec![1u8, 2, 3]).await;
    assert_eq!(c.expect("error").await["code"], "bad_state");

    // Still serving: hello works now.
    assert_eq!(c.hello().await["type"], "hello");
    assert_eq!(c.hello().await["code"], "bad_state");
    // Binary frames that are not worker messages it can read: typed errors, still serving.
    for frame in [vec![7u8, 0, 0], vec![1u8, 9, 0, b'w'], vec![]] {
        c.ws.send_binary_for_test(frame).await;
        let error = c.expect("error").await;
        assert_eq!(error["code"], "invalid_message", "{error}");
    }
    c.ws.send_binary_for_test(vec![1u8, 4, 0, b'n', b'o', b'p', b'e', 1, 1])
        .await;
    assert_eq!(c.expect("error").await["code"], "not_found");
    let unknown_worker = c
        .request(json!({"type": "worker_message", "worker_id": "nope", "data": 1}))
        .await;
    assert_eq!(unknown_worker["code"], "not_found", "{unknown_worker}");
    let unknown_lease = c
        .request(json!({"type": "worker_spawn", "lease_id": 999, "worker_id": "w", "script_url": "u", "source": ""}))
        .await;
    assert_eq!(unknown_lease["code"], "not_found", "{unknown_lease}");
    drop(c);
    broker.stop().await;
}

trait SendBinary {
    async fn send_binary_for_test(&mut self, frame: Vec<u8>);
}

impl SendBinary
    for tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>
{
    async fn send_binary_for_test(&mut self, frame: Vec<u8>) {
        use futures_util::SinkExt;
        self.send(Message::binary(frame)).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_mismatch_is_refused_and_closed() {
    let broker = Broker::start().await;
    let mut c = broker.connect().await;
    let answer = c
        .request(json!({"type": "hello", "protocol_version": 99, "client": "future"}))
        .await;
    assert_eq!(answer["code"], "version_mismatch", "{answer}");
    c.closed().await;
    drop(c);
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_messages_are_refused() {
    let broker = Broker::start().await;
    let mut c = broker.client().await;
    let huge = format!(
        r#"{{"type":"worker_message","worker_id":"w","data":"{}"}}"#,
        "x".repeat(foresight_shared::limits::BROKER_MAX_MESSAGE)
    );
    // The broker may stop reading before the whole message is sent: the send may fail.
    use futures_util::SinkExt;
    let _ = c.ws.send(Message::text(huge)).await;
    let answer = c.recv().await;
    assert_eq!(answer["code"], "too_large", "{answer}");
    c.closed().await;
    // The broker itself is fine.
    let mut other = broker.client().await;
    other.lease(100, MIB, 1000).await;
    drop((c, other));
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_gives_notice_then_ends_leases_and_closes() {
    let broker = Broker::start().await;
    let mut c = broker.client().await;
    let id = c.lease(100, MIB, 30_000).await;
    let mut late = broker.client().await;
    let stopping = tokio::spawn(async move {
        let mut broker_events = broker.events.resubscribe();
        broker.stop().await;
        // Everything the broker emitted during shutdown is buffered.
        let mut causes = Vec::new();
        while let Ok(e) = broker_events.try_recv() {
            if let BrokerEvent::LeaseEnded { cause, .. } = e {
                causes.push(cause);
            }
        }
        causes
    });
    let notice = c.expect("lease_revoking").await;
    assert_eq!(notice["lease_id"], id, "{notice}");
    assert_eq!(notice["cause"], "shutting_down", "{notice}");
    // Draining: nothing more is granted.
    let refused = late.lease_request(9, 1, 1, 1_000).await;
    assert_eq!(refused["reason"], "shutting_down", "{refused}");
    // The client did not release it: it ends when the notice runs out.
    let ended = c.expect("lease_ended").await;
    assert_eq!(
        ended,
        json!({"type": "lease_ended", "lease_id": id, "reason": "shutting_down"})
    );
    c.closed().await;
    late.closed().await;
    let causes = tokio::time::timeout(common::DEADLINE, stopping)
        .await
        .unwrap()
        .unwrap();
    assert!(causes.contains(&LeaseEndCause::ShuttingDown), "{causes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_early_once_every_lease_is_released() {
    let mut cfg = common::test_config();
    cfg.shutdown_grace_ms = 60_000;
    let broker = Broker::with_config(cfg).await;
    let mut c = broker.client().await;
    let id = c.lease(100, MIB, 30_000).await;
    let stopping = tokio::spawn(broker.stop());
    c.expect("lease_revoking").await;
    let released = c
        .request(json!({"type": "lease_release", "lease_id": id}))
        .await;
    assert_eq!(released["type"], "lease_released", "{released}");
    // Well before the minute of notice: the broker closes once nothing is held.
    c.closed().await;
    tokio::time::timeout(common::DEADLINE, stopping)
        .await
        .expect("shutdown as soon as drained")
        .unwrap();
}
