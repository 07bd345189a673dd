//! Worker data as structured-clone bytes in binary frames (feature `structured_clone_v1`),
//! the JSON bridge for clients without it, importScripts sources and console forwarding.

mod common;

use common::{Broker, Client, MIB};
use foresight_shared::protocol::broker::decode_worker_frame;
use foresight_shared::sclone::{self, CloneValue};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

async fn binary_client(broker: &Broker) -> Client {
    let mut c = broker.connect().await;
    let hello = c
        .request(
            json!({"type": "hello", "protocol_version": 1, "client": "test",
                        "features": ["structured_clone_v1"]}),
        )
        .await;
    assert_eq!(
        hello["features"],
        json!(["structured_clone_v1", "data_channel_v1"]),
        "{hello}"
    );
    c
}

/// The next binary frame: the worker id and its decoded message.
async fn recv_data(c: &mut Client) -> (String, CloneValue) {
    loop {
        match c.frame().await {
            Message::Binary(bytes) => {
                let (id, payload) = decode_worker_frame(&bytes).expect("a worker frame");
                return (
                    id.to_string(),
                    sclone::decode(payload).expect("valid bytes"),
                );
            }
            Message::Text(text) => {
                let v: Value = serde_json::from_str(text.as_str()).unwrap();
                assert!(v["type"] == "worker_started", "unexpected {v}");
            }
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_frames_carry_what_json_cannot() {
    let broker = Broker::start().await;
    let mut c = binary_client(&broker).await;
    let lease = c.lease(1000, 32 * MIB, 30_000).await;
    let source = r#"
        onmessage = (e) => {
            const m = new Map([[1n, new Set([-0, NaN])]]);
            postMessage({ got: e.data, m, u: undefined, when: new Date(7), bytes: new Uint8Array([1, 2]) });
        };
    "#;
    c.spawn_worker(lease, "w", source).await;
    c.send_data("w", &sclone::encode_json(&json!({"n": 21})))
        .await;
    let (id, value) = recv_data(&mut c).await;
    assert_eq!(id, "w");
    let CloneValue::Object(fields) = value else {
        panic!("{value:?}")
    };
    let get = |k: &str| {
        fields
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(
        get("got").unwrap().to_json().unwrap(),
        json!({"n": 21}),
        "the page's message arrived"
    );
    assert!(matches!(get("u"), Some(CloneValue::Undefined)));
    assert_eq!(get("when"), Some(CloneValue::Date(7.0)));
    let Some(CloneValue::Map(entries)) = get("m") else {
        panic!("no Map: {fields:?}")
    };
    assert!(
        matches!(&entries[0].0, CloneValue::BigInt { negative: false, magnitude_le } if magnitude_le == &[1])
    );
    let Some(CloneValue::View { kind, length, .. }) = get("bytes") else {
        panic!("no Uint8Array: {fields:?}")
    };
    assert_eq!((kind, length), ("Uint8Array", 2));
    drop(c);
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_clients_get_json_or_a_typed_error_and_the_console() {
    let broker = Broker::start().await;
    let mut c = broker.client().await;
    let lease = c.lease(1000, 32 * MIB, 30_000).await;
    let source = r#"
        onmessage = (e) => {
            console.warn('seen', e.data.n, { deep: [1] });
            postMessage({ twice: e.data.n * 2, when: new Date(0), skip: undefined });
            postMessage(10n);
            postMessage('still here');
        };
    "#;
    c.started_worker(lease, "w", source).await;
    c.post("w", json!({"n": 21})).await;
    assert_eq!(
        c.expect("worker_console").await,
        json!({"type": "worker_console", "worker_id": "w", "level": "warn", "text": "seen 21 {\"deep\":[1]}"})
    );
    assert_eq!(
        c.expect("worker_message").await["data"],
        json!({"twice": 42, "when": "1970-01-01T00:00:00.000Z"})
    );
    let error = c.expect("error").await;
    assert_eq!(error["code"], "unsupported", "{error}");
    assert!(
        error["message"].as_str().unwrap().contains("BigInt"),
        "{error}"
    );
    assert_eq!(c.expect("worker_message").await["data"], "still here");
    drop(c);
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_scripts_gets_the_sources_supplied_with_the_spawn() {
    let broker = Broker::start().await;
    let mut c = broker.client().await;
    let lease = c.lease(1000, 32 * MIB, 30_000).await;
    c.send(json!({
        "type": "worker_spawn",
        "lease_id": lease,
        "worker_id": "w",
        "name": "calc",
        "script_url": "https://example.test/app/w.js",
        "source": "importScripts('lib.js'); try { importScripts('other.js'); } catch (e) { postMessage(e.name); } postMessage([double(21), self.name]);",
        "imports": [{"url": "https://example.test/app/lib.js", "source": "function double(x) { return 2 * x; }"}],
    }))
    .await;
    c.expect("worker_started").await;
    assert_eq!(c.expect("worker_message").await["data"], "NetworkError");
    assert_eq!(
        c.expect("worker_message").await["data"],
        json!([42, "calc"])
    );
    drop(c);
    broker.stop().await;
}
