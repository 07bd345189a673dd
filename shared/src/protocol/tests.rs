//! Round-trip tests for every message, the unknown-type fallback, and the check that keeps
//! `docs/PROTOCOL.md` in step with the types.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::broker::{ClientMessage, ServerMessage};
use super::examples;
use super::executor::{FromExecutor, ToExecutor};
use super::host::{HostReply, HostRequest};

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(msgs: &[T]) {
    for m in msgs {
        let text = serde_json::to_string(m).unwrap();
        let back: T = serde_json::from_str(&text).unwrap();
        assert_eq!(&back, m, "round trip of {text}");
    }
}

#[test]
fn every_message_round_trips() {
    round_trip(&examples::host_requests());
    round_trip(&examples::host_replies());
    round_trip(&examples::client_messages());
    round_trip(&examples::server_messages());
    round_trip(&examples::to_executor());
    round_trip(&examples::from_executor());
}

/// Adding a variant breaks these matches at compile time; the assertions then fail until the
/// new variant has an example (and so a place in docs/PROTOCOL.md).
#[test]
fn examples_cover_every_variant() {
    fn covered<T>(msgs: &[T], index: impl Fn(&T) -> usize, count: usize) {
        let mut seen = vec![false; count];
        for m in msgs {
            seen[index(m)] = true;
        }
        assert!(
            seen.iter().all(|s| *s),
            "variants without an example: {seen:?}"
        );
    }
    covered(
        &examples::host_requests(),
        |m| match m {
            HostRequest::Hello { .. } => 0,
            HostRequest::Plan { .. } => 1,
            HostRequest::Contention { .. } => 2,
            HostRequest::WatchContention { .. } => 3,
            HostRequest::Unknown => 4,
        },
        5,
    );
    covered(
        &examples::host_replies(),
        |m| match m {
            HostReply::Hello { .. } => 0,
            HostReply::Plan { .. } => 1,
            HostReply::Contention { .. } => 2,
            HostReply::ContentionChanged { .. } => 3,
            HostReply::Chunk { .. } => 4,
            HostReply::Error { .. } => 5,
            HostReply::Unknown => 6,
        },
        7,
    );
    covered(
        &examples::client_messages(),
        |m| match m {
            ClientMessage::Hello { .. } => 0,
            ClientMessage::LeaseRequest { .. } => 1,
            ClientMessage::LeaseRenew { .. } => 2,
            ClientMessage::LeaseRelease { .. } => 3,
            ClientMessage::WorkerSpawn { .. } => 4,
            ClientMessage::WorkerMessage { .. } => 5,
            ClientMessage::WorkerTerminate { .. } => 6,
            ClientMessage::Unknown => 7,
        },
        8,
    );
    covered(
        &examples::server_messages(),
        |m| match m {
            ServerMessage::Hello { .. } => 0,
            ServerMessage::LeaseGranted { .. } => 1,
            ServerMessage::LeaseDenied { .. } => 2,
            ServerMessage::LeaseRenewed { .. } => 3,
            ServerMessage::LeaseReleased { .. } => 4,
            ServerMessage::LeaseEnded { .. } => 5,
            ServerMessage::WorkerStarted { .. } => 6,
            ServerMessage::WorkerMessage { .. } => 7,
            ServerMessage::WorkerError { .. } => 8,
            ServerMessage::WorkerExited { .. } => 9,
            ServerMessage::Error { .. } => 10,
            ServerMessage::Unknown => 11,
            ServerMessage::LeaseQueued { .. } => 12,
            ServerMessage::LeaseRevoking { .. } => 13,
            ServerMessage::WorkerConsole { .. } => 14,
            ServerMessage::WorkerBound { .. } => 15,
        },
        16,
    );
    covered(
        &examples::to_executor(),
        |m| match m {
            ToExecutor::Start { .. } => 0,
            ToExecutor::Terminate => 1,
            ToExecutor::Unknown => 2,
        },
        3,
    );
    covered(
        &examples::from_executor(),
        |m| match m {
            FromExecutor::Started => 0,
            FromExecutor::Error { .. } => 1,
            FromExecutor::Console { .. } => 2,
            FromExecutor::Exited { .. } => 3,
            FromExecutor::Unknown => 4,
            FromExecutor::Ready => 5,
        },
        6,
    );
}

#[test]
fn unknown_types_decode_to_unknown_not_an_error() {
    let future = r#"{"type":"teleport","destination":"mars","n":[1,2]}"#;
    assert_eq!(
        serde_json::from_str::<HostRequest>(future).unwrap(),
        HostRequest::Unknown
    );
    assert_eq!(
        serde_json::from_str::<ClientMessage>(future).unwrap(),
        ClientMessage::Unknown
    );
    assert_eq!(
        serde_json::from_str::<ServerMessage>(future).unwrap(),
        ServerMessage::Unknown
    );
    assert_eq!(
        serde_json::from_str::<ToExecutor>(future).unwrap(),
        ToExecutor::Unknown
    );
}

#[test]
fn known_type_with_bad_fields_is_an_error() {
    // A known type with a mistyped field is not "unknown": the receiver must say what is wrong.
    let bad = r#"{"type":"lease_request","request_id":"one","resources":{},"ttl_ms":5}"#;
    assert!(serde_json::from_str::<ClientMessage>(bad).is_err());
    assert!(serde_json::from_str::<ClientMessage>(r#"{"no_type":1}"#).is_err());
}

#[test]
fn version_one_skeleton_messages_still_decode() {
    // What the walking skeleton's extension and host sent, before tabs, broker speed,
    // contention detail and per-path plans existed.
    let request = r#"{"type":"plan","request_id":1,"demand":{"url":"u","paths":[]},
        "broker":{"available":true,"rtt_ms":1.0,"capacity":{"cpu_millicores":1,"memory_bytes":2}}}"#;
    match serde_json::from_str::<HostRequest>(request).unwrap() {
        HostRequest::Plan { broker, tabs, .. } => {
            let broker = broker.unwrap();
            assert_eq!(broker.speed_factor, None);
            assert_eq!(broker.bandwidth_bytes_per_s, 0);
            assert!(tabs.is_empty());
        }
        other => panic!("decoded as {other:?}"),
    }
    let reply = r#"{"type":"plan","request_id":1,
        "plan":{"url":"u","source":"native_host","local":{"cpu_millicores":1,"memory_bytes":2},
                "placements":[{"component_id":"w","target":"local","reason":"r"}],"reasons":[]},
        "contention":{"source":"native_host","taken_at_ms":1,"logical_cpus":2,"cpu_usage":0.5,
                      "available_cpu_millicores":1000,"total_memory_bytes":4,"available_memory_bytes":2}}"#;
    match serde_json::from_str::<HostReply>(reply).unwrap() {
        HostReply::Plan {
            plan, contention, ..
        } => {
            assert!(plan.paths.is_empty());
            assert_eq!(plan.placements[0].local_ms, None);
            assert!(contention.forecast.is_none() && contention.per_core_usage.is_empty());
        }
        other => panic!("decoded as {other:?}"),
    }
    let watch = r#"{"type":"watch_contention","request_id":3}"#;
    assert!(matches!(
        serde_json::from_str::<HostRequest>(watch).unwrap(),
        HostRequest::WatchContention {
            enabled: true,
            min_interval_ms: None,
            ..
        }
    ));
}

#[test]
fn later_fields_are_optional() {
    // A v1 peer may omit fields added with defaults; they must still decode.
    let minimal = r#"{"type":"plan","request_id":1,"demand":{"url":"u","paths":[]}}"#;
    match serde_json::from_str::<HostRequest>(minimal).unwrap() {
        HostRequest::Plan { policy, broker, .. } => {
            assert_eq!(policy, super::plan::Policy::default());
            assert!(broker.is_none());
        }
        other => panic!("decoded as {other:?}"),
    }
    // A lease request from a client that predates queueing and partial grants.
    let v1_lease = r#"{"type":"lease_request","request_id":1,"ttl_ms":5,
        "resources":{"cpu_millicores":1,"memory_bytes":1}}"#;
    match serde_json::from_str::<ClientMessage>(v1_lease).unwrap() {
        ClientMessage::LeaseRequest {
            min_resources,
            max_wait_ms,
            priority,
            ..
        } => {
            assert_eq!((min_resources, max_wait_ms, priority), (None, None, 0));
        }
        other => panic!("decoded as {other:?}"),
    }
}

#[test]
fn binary_worker_frames_round_trip_and_match_the_document() {
    use super::broker::{BinaryFrameError, decode_worker_frame, encode_worker_frame};
    // `postMessage(42)` to worker "w1": the bytes docs/PROTOCOL.md shows.
    let payload = crate::sclone::encode_json(&serde_json::json!(42));
    let frame = encode_worker_frame("w1", &payload);
    assert_eq!(frame, [0x01, 0x02, 0x00, b'w', b'1', 0x01, 0x04, 0x54]);
    assert_eq!(decode_worker_frame(&frame), Ok(("w1", &payload[..])));
    assert_eq!(decode_worker_frame(&[]), Err(BinaryFrameError::Empty));
    assert_eq!(
        decode_worker_frame(&[7, 0, 0]),
        Err(BinaryFrameError::UnknownKind(7))
    );
    assert_eq!(
        decode_worker_frame(&[1, 9, 0, b'w']),
        Err(BinaryFrameError::Truncated)
    );
    assert_eq!(
        decode_worker_frame(&[1, 1, 0, 0xff]),
        Err(BinaryFrameError::WorkerId)
    );
}

fn section<T: Serialize>(out: &mut String, title: &str, msgs: &[T]) {
    out.push_str(&format!("### {title}\n\n"));
    for m in msgs {
        let v = serde_json::to_value(m).unwrap();
        let ty = v["type"].as_str().unwrap_or("?").to_string();
        out.push_str(&format!(
            "#### `{ty}`\n\n```json\n{}\n```\n\n",
            serde_json::to_string_pretty(&v).unwrap()
        ));
    }
}

const BEGIN: &str = "<!-- BEGIN GENERATED EXAMPLES (cargo test -p foresight-shared) -->\n";
const END: &str = "<!-- END GENERATED EXAMPLES -->\n";

#[test]
fn protocol_document_matches_the_types() {
    let mut generated = String::new();
    section(
        &mut generated,
        "Extension -> native host: `HostRequest`",
        &examples::host_requests(),
    );
    section(
        &mut generated,
        "Native host -> extension: `HostReply`",
        &examples::host_replies(),
    );
    section(
        &mut generated,
        "Extension -> broker: `ClientMessage`",
        &examples::client_messages(),
    );
    section(
        &mut generated,
        "Broker -> extension: `ServerMessage`",
        &examples::server_messages(),
    );
    section(
        &mut generated,
        "Broker -> executor: `ToExecutor`",
        &examples::to_executor(),
    );
    section(
        &mut generated,
        "Executor -> broker: `FromExecutor`",
        &examples::from_executor(),
    );

    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/PROTOCOL.md");
    let doc = std::fs::read_to_string(&path).expect("docs/PROTOCOL.md exists");
    let (head, rest) = doc
        .split_once(BEGIN)
        .expect("docs/PROTOCOL.md has the BEGIN marker");
    let (current, tail) = rest
        .split_once(END)
        .expect("docs/PROTOCOL.md has the END marker");
    if current != generated {
        if std::env::var_os("FORESIGHT_BLESS").is_some() {
            std::fs::write(&path, format!("{head}{BEGIN}{generated}{END}{tail}")).unwrap();
        } else {
            panic!(
                "docs/PROTOCOL.md is out of date with the protocol types; \
                 run FORESIGHT_BLESS=1 cargo test -p foresight-shared and review the diff"
            );
        }
    }
}
