//! Data channels (`data_channel_v1`) through real websockets: a worker spawned by one
//! connection with another connection's `channel_id` takes its data through that channel,
//! both ways and in order, while control stays with its owner; unknown and foreign channel
//! ids are refused with typed errors; a closing channel ends its workers and tells their
//! owner; the channel obeys the same limits as any connection.

mod common;

use common::{Broker, Client, DEADLINE, MIB};
use foresight_broker::{BrokerEvent, Limits};
use foresight_shared::protocol::broker::{
    WorkerExitReason, decode_worker_frame, encode_worker_frame,
};
use foresight_shared::sclone::{self, CloneValue};
use futures_util::SinkExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// Echoes each message with its sequence number, logs `{i: 0}`, closes on "bye".
const ECHO: &str = "let n = 0;
onmessage = (e) => {
  if (e.data === 'bye') { close(); return; }
  if (e.data && e.data.i === 0) console.log('first ' + JSON.stringify(e.data));
  postMessage([n++, e.data]);
};";

/// The owner: a structured-clone client, as the extension's background is.
async fn owner(broker: &Broker) -> Client {
    let mut c = broker.connect().await;
    let hello = c
        .request(
            json!({"type": "hello", "protocol_version": 1, "client": "owner",
                        "features": ["structured_clone_v1", "data_channel_v1"]}),
        )
        .await;
    assert_eq!(hello["type"], "hello", "{hello}");
    assert!(hello.get("channel_id").is_none(), "{hello}");
    c
}

/// The handshake to the data-channel URL, as a content script makes it: with its page's
/// Origin.
fn channel_request(broker: &Broker) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    let mut request = format!("ws://{}/?role=data_channel", broker.addr)
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "origin",
        "https://some-page.example".parse().expect("header"),
    );
    request
}

/// Connects to the data-channel URL as a content script would.
async fn connect_channel_url(broker: &Broker) -> Client {
    let request = channel_request(broker);
    let (ws, _) = tokio::time::timeout(DEADLINE, tokio_tungstenite::connect_async(request))
        .await
        .expect("answered in time")
        .expect("a page origin may open a data channel");
    Client { ws }
}

/// A data channel and its id.
async fn channel(broker: &Broker) -> (Client, String) {
    let mut c = connect_channel_url(broker).await;
    let hello = c
        .request(
            json!({"type": "hello", "protocol_version": 1, "client": "tab",
                        "features": ["structured_clone_v1", "data_channel_v1"],
                        "role": "data_channel"}),
        )
        .await;
    assert_eq!(hello["type"], "hello", "{hello}");
    let id = hello["channel_id"]
        .as_str()
        .expect("a channel id")
        .to_string();
    assert!(id.len() >= 32, "unguessable: {id}");
    (c, id)
}

async fn spawn_bound(owner: &mut Client, lease: u64, worker_id: &str, channel_id: &str) {
    owner
        .send(json!({
            "type": "worker_spawn",
            "lease_id": lease,
            "worker_id": worker_id,
            "script_url": format!("https://example.test/{worker_id}.js"),
            "source": ECHO,
            "channel_id": channel_id,
        }))
        .await;
}

async fn send_data(c: &mut Client, worker_id: &str, value: &Value) {
    c.send_data(worker_id, &sclone::encode_json(value)).await;
}

/// What a channel or client receives next: a text message, or a data frame's worker id and
/// message (as JSON).
#[derive(Debug, PartialEq)]
enum Got {
    Text(Value),
    Data(String, Value),
}

async fn next(c: &mut Client) -> Got {
    loop {
        match c.frame().await {
            Message::Text(text) => return Got::Text(serde_json::from_str(text.as_str()).unwrap()),
            Message::Binary(bytes) => {
                let (id, payload) = decode_worker_frame(&bytes).expect("a worker frame");
                let value: CloneValue = sclone::decode(payload).expect("valid bytes");
                return Got::Data(id.to_string(), value.to_json().expect("JSON-able"));
            }
            _ => {}
        }
    }
}

async fn next_text(c: &mut Client) -> Value {
    match next(c).await {
        Got::Text(v) => v,
        other => panic!("expected a text message, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_data_goes_through_the_channel_in_order_and_control_stays_with_the_owner() {
    let mut broker = Broker::start().await;
    let mut owner = owner(&broker).await;
    let (mut tab, channel_id) = channel(&broker).await;
    let lease = owner.lease(1000, 32 * MIB, 30_000).await;
    spawn_bound(&mut owner, lease, "w1", &channel_id).await;
    // The channel hears the binding before anything of the worker's.
    assert_eq!(
        next_text(&mut tab).await,
        json!({"type": "worker_bound", "worker_id": "w1"})
    );
    let bound = broker
        .event("worker bound", |e| {
            matches!(e, BrokerEvent::WorkerBound { .. })
        })
        .await;
    let BrokerEvent::WorkerBound { worker_id, .. } = bound else {
        unreachable!()
    };
    assert_eq!(worker_id, "w1");
    assert_eq!(owner.expect("worker_started").await["worker_id"], "w1");

    // Sent back to back, answered in order, all through the channel.
    const N: i64 = 50;
    for i in 0..N {
        send_data(&mut tab, "w1", &json!({"i": i})).await;
    }
    let mut answers = Vec::new();
    let mut console = Vec::new();
    while answers.len() < N as usize {
        match next(&mut tab).await {
            Got::Data(id, value) => {
                assert_eq!(id, "w1");
                answers.push(value);
            }
            Got::Text(v) if v["type"] == "worker_console" => console.push(v),
            Got::Text(v) => panic!("unexpected {v}"),
        }
    }
    let expected: Vec<Value> = (0..N).map(|i| json!([i, {"i": i}])).collect();
    assert_eq!(answers, expected);
    assert_eq!(console.len(), 1, "{console:?}");
    assert_eq!(console[0]["text"], "first {\"i\":0}", "{console:?}");

    // The owner may not feed a bound worker: one ordered source of input.
    send_data(&mut owner, "w1", &json!("from the owner")).await;
    let refused = next_text(&mut owner).await;
    assert_eq!(refused["code"], "bad_state", "{refused}");

    // The worker's end: on the channel after its last output, and to the owner with its CPU.
    send_data(&mut tab, "w1", &json!("bye")).await;
    let end = next_text(&mut tab).await;
    assert_eq!(end["type"], "worker_exited", "{end}");
    assert_eq!(end["reason"], "closed", "{end}");
    let end = owner.expect("worker_exited").await;
    assert_eq!(end["reason"], "closed", "{end}");
    assert!(end["cpu_ms"].is_u64(), "{end}");
    // Unbound now: data for it is refused.
    send_data(&mut tab, "w1", &json!(1)).await;
    assert_eq!(next_text(&mut tab).await["code"], "not_found");

    // A channel is for data only.
    let refused = tab
        .request(json!({"type": "lease_request", "request_id": 7,
                        "resources": {"cpu_millicores": 100, "memory_bytes": MIB},
                        "ttl_ms": 1000}))
        .await;
    assert_eq!(refused["code"], "bad_state", "{refused}");
    assert_eq!(refused["request_id"], 7, "{refused}");
    drop(owner);
    drop(tab);
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_foreign_channels_are_refused() {
    let broker = Broker::start().await;
    let mut owner = owner(&broker).await;
    let lease = owner.lease(1000, 32 * MIB, 30_000).await;

    // An id no channel has: a typed refusal, then the worker's end so the client moves it.
    spawn_bound(
        &mut owner,
        lease,
        "w0",
        "c-00000000000000000000000000000000",
    )
    .await;
    let refused = owner.expect("error").await;
    assert_eq!(refused["code"], "not_found", "{refused}");
    assert_eq!(
        owner.expect("worker_exited").await,
        json!({"type": "worker_exited", "worker_id": "w0", "reason": "channel_closed"})
    );

    // Another channel's worker: not this channel's to feed.
    let (mut mine, mine_id) = channel(&broker).await;
    let (mut other, _) = channel(&broker).await;
    spawn_bound(&mut owner, lease, "w1", &mine_id).await;
    assert_eq!(next_text(&mut mine).await["type"], "worker_bound");
    send_data(&mut other, "w1", &json!("hijack")).await;
    let refused = next_text(&mut other).await;
    assert_eq!(refused["code"], "not_found", "{refused}");
    send_data(&mut mine, "w1", &json!("mine")).await;
    assert_eq!(
        next(&mut mine).await,
        Got::Data("w1".into(), json!([0, "mine"]))
    );

    // The data-channel URL (open to page origins) serves nothing but data channels.
    let mut page = connect_channel_url(&broker).await;
    let refused = page
        .request(json!({"type": "hello", "protocol_version": 1, "client": "page"}))
        .await;
    assert_eq!(refused["code"], "forbidden", "{refused}");
    page.closed().await;

    drop((owner, mine, other));
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closing_channel_ends_its_workers_and_the_owner_hears_it() {
    let mut broker = Broker::start().await;
    let mut owner = owner(&broker).await;
    let lease = owner.lease(1000, 32 * MIB, 30_000).await;
    let (mut tab, channel_id) = channel(&broker).await;
    spawn_bound(&mut owner, lease, "w1", &channel_id).await;
    assert_eq!(next_text(&mut tab).await["type"], "worker_bound");
    assert_eq!(owner.expect("worker_started").await["worker_id"], "w1");
    tab.ws.close(None).await.expect("close");
    drop(tab);
    let end = owner.expect("worker_exited").await;
    assert_eq!(end["worker_id"], "w1", "{end}");
    assert_eq!(end["reason"], "channel_closed", "{end}");
    // Really gone: the executor process was reaped.
    broker
        .event("the executor reaped", |e| {
            matches!(e, BrokerEvent::WorkerExited { worker_id, reason }
                if worker_id == "w1" && *reason == WorkerExitReason::ChannelClosed)
        })
        .await;

    // A lease's end reaches the channel too, after the worker's output.
    let (mut tab, channel_id) = channel(&broker).await;
    spawn_bound(&mut owner, lease, "w2", &channel_id).await;
    assert_eq!(next_text(&mut tab).await["type"], "worker_bound");
    assert_eq!(owner.expect("worker_started").await["worker_id"], "w2");
    send_data(&mut tab, "w2", &json!("x")).await;
    assert_eq!(
        next(&mut tab).await,
        Got::Data("w2".into(), json!([0, "x"]))
    );
    owner
        .send(json!({"type": "lease_release", "lease_id": lease}))
        .await;
    let end = next_text(&mut tab).await;
    assert_eq!(
        end,
        json!({"type": "worker_exited", "worker_id": "w2", "reason": "lease_ended"})
    );
    drop((owner, tab));
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_has_the_same_limits() {
    let mut config = common::test_config();
    config.limits = Limits {
        max_connections: 8,
        max_message_bytes: 64 * 1024,
        messages_per_s: 1,
        message_burst: 4,
    };
    let broker = Broker::with_config(config).await;
    let mut owner = owner(&broker).await;
    let lease = owner.lease(1000, 32 * MIB, 30_000).await;
    let (mut tab, channel_id) = channel(&broker).await;
    spawn_bound(&mut owner, lease, "w1", &channel_id).await;
    assert_eq!(next_text(&mut tab).await["type"], "worker_bound");
    // hello took one of four: three frames pass, the fourth is refused by the rate limit.
    for i in 0..4 {
        send_data(&mut tab, "w1", &json!(i)).await;
    }
    let mut got = Vec::new();
    while got.len() < 4 {
        got.push(next(&mut tab).await);
    }
    let data: Vec<&Got> = got.iter().filter(|g| matches!(g, Got::Data(..))).collect();
    assert_eq!(
        data,
        [
            &Got::Data("w1".into(), json!([0, 0])),
            &Got::Data("w1".into(), json!([1, 1])),
            &Got::Data("w1".into(), json!([2, 2])),
        ]
    );
    assert!(
        got.iter()
            .any(|g| matches!(g, Got::Text(v) if v["code"] == "limit_exceeded")),
        "{got:?}"
    );
    // Over the size limit: refused with it, and the channel closes (its workers end).
    let big = Message::binary(encode_worker_frame("w1", &vec![0u8; 100 * 1024]));
    tokio::time::timeout(DEADLINE, tab.ws.send(big))
        .await
        .expect("send in time")
        .expect("send");
    let too_large = next_text(&mut tab).await;
    assert_eq!(too_large["code"], "too_large", "{too_large}");
    tab.closed().await;
    assert_eq!(owner.expect("worker_started").await["worker_id"], "w1");
    let end = owner.expect("worker_exited").await;
    assert_eq!(end["reason"], "channel_closed", "{end}");
    drop(owner);
    broker.stop().await;
}

/// Any page can open the data-channel URL, so channels have a cap of their own (half the
/// connection limit): a page that opens channels until it is refused has not kept the
/// extension's own connection out, and a channel closed frees its seat.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_cannot_fill_the_broker_with_channels() {
    let mut config = common::test_config();
    config.limits.max_connections = 6;
    let broker = Broker::with_config(config).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(channel(&broker).await);
    }
    let refused = tokio::time::timeout(
        DEADLINE,
        tokio_tungstenite::connect_async(channel_request(&broker)),
    )
    .await
    .expect("answered in time");
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 503, "{response:?}");
        }
        other => panic!("a fourth channel of six connections was not refused: {other:?}"),
    }
    // The extension's own connection still gets in and leases.
    let mut own = owner(&broker).await;
    own.lease(100, 16 * MIB, 30_000).await;
    // A closed channel gives its seat back.
    let (closed, _) = held.pop().expect("a channel");
    drop(closed);
    let reopened = async {
        loop {
            if tokio_tungstenite::connect_async(channel_request(&broker))
                .await
                .is_ok()
            {
                return;
            }
            // The server notices the close on its own schedule: ask again.
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(DEADLINE, reopened)
        .await
        .expect("the freed seat takes a new channel");
    drop(held);
    broker.stop().await;
}

/// A spawn the broker refuses (here: a stale epoch) ends with `worker_exited` `refused` for
/// its owner and for the data channel it named, whose side holds the page's messages for it
/// until it hears the worker's end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_spawn_ends_on_the_channel_too() {
    let broker = Broker::start().await;
    let mut owner = owner(&broker).await;
    let granted = owner.lease_request(1, 500, 16 * MIB, 30_000).await;
    let lease = granted["lease"]["lease_id"].as_u64().expect("lease id");
    let epoch = granted["lease"]["epoch"].as_u64().expect("epoch");
    let (mut tab, channel_id) = channel(&broker).await;
    owner
        .send(json!({
            "type": "worker_spawn", "lease_id": lease, "worker_id": "w1",
            "script_url": "https://example.test/w.js", "source": ECHO,
            "epoch": epoch - 1, "channel_id": channel_id,
        }))
        .await;
    assert_eq!(owner.expect("error").await["code"], "bad_state");
    let ended = owner.expect("worker_exited").await;
    assert_eq!(ended["worker_id"], "w1", "{ended}");
    assert_eq!(ended["reason"], "refused", "{ended}");
    let told = next_text(&mut tab).await;
    assert_eq!(told["type"], "worker_exited", "{told}");
    assert_eq!(told["worker_id"], "w1", "{told}");
    assert_eq!(told["reason"], "refused", "{told}");
    broker.stop().await;
}
