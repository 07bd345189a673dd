//! The real `foresight-host` binary in serve mode, driven over real native-messaging frames the
//! way a browser drives it, with the real contention sampler.

mod common;

use common::Host;
use foresight_shared::limits::HOST_TO_BROWSER_MAX_FRAME;
use foresight_shared::protocol::demand::{
    ComponentDemand, ComponentKind, PageDemand, PathDemand, PathKind,
};
use foresight_shared::protocol::host::{HostReply, HostRequest};
use foresight_shared::protocol::plan::{
    BrokerTerms, ContentionSnapshot, ContentionSource, PlanSource, Policy, ResourceAmounts, Target,
};
use foresight_shared::protocol::{ErrorCode, PROTOCOL_VERSION, Quantiles};
use serde_json::Value;

fn hello() -> HostRequest {
    HostRequest::Hello {
        protocol_version: PROTOCOL_VERSION,
        client: "foresight-tests chrome".into(),
    }
}

fn demand(worker_id: &str, worker_cpu_ms: f64) -> PageDemand {
    PageDemand {
        url: "http://127.0.0.1:8080/index.html".into(),
        paths: vec![PathDemand {
            name: "load".into(),
            kind: PathKind::Load,
            probability: 1.0,
            cpu_ms: Quantiles {
                p10: 4.0,
                p50: 9.0,
                p90: 21.0,
            },
            memory_bytes: Quantiles::exact(2e6),
            network_bytes: Quantiles::exact(48_000.0),
            event: None,
            target: None,
            curve: Default::default(),
        }],
        components: vec![ComponentDemand {
            id: worker_id.into(),
            kind: ComponentKind::Worker,
            url: Some("http://127.0.0.1:8080/worker.js".into()),
            source_known: true,
            cpu_ms: Quantiles {
                p10: worker_cpu_ms / 2.0,
                p50: worker_cpu_ms,
                p90: worker_cpu_ms * 2.0,
            },
            memory_bytes: Quantiles::exact(8e6),
            offloadable: true,
        }],
        ..Default::default()
    }
}

fn broker() -> BrokerTerms {
    BrokerTerms {
        available: true,
        rtt_ms: 0.8,
        capacity: ResourceAmounts {
            cpu_millicores: 2000,
            memory_bytes: 1 << 30,
            bandwidth_bytes_per_s: 0,
        },
        speed_factor: None,
        bandwidth_bytes_per_s: 0,
        startup_ms: None,
        engines: Vec::new(),
    }
}

fn assert_plausible(c: &ContentionSnapshot) {
    assert_eq!(c.source, ContentionSource::NativeHost);
    assert!(c.logical_cpus >= 1, "{c:?}");
    assert!((0.0..=1.0).contains(&c.cpu_usage), "{c:?}");
    assert!(
        c.available_cpu_millicores <= u64::from(c.logical_cpus) * 1000,
        "{c:?}"
    );
    assert!(c.total_memory_bytes > 0, "{c:?}");
    assert!(c.available_memory_bytes <= c.total_memory_bytes, "{c:?}");
    assert!(c.taken_at_ms > 1_600_000_000_000, "{c:?}");
    if cfg!(target_os = "linux") {
        assert!(c.load_average_1m.is_some(), "{c:?}");
    }
}

fn expect_error(reply: HostReply, want: ErrorCode, want_id: Option<u64>) -> String {
    match reply {
        HostReply::Error {
            request_id,
            code,
            message,
        } => {
            assert_eq!(code, want, "{message}");
            assert_eq!(request_id, want_id, "{message}");
            message
        }
        other => panic!("expected error {want:?}, got {other:?}"),
    }
}

#[test]
fn hello_round_trip_then_clean_exit_on_disconnect() {
    let mut host = Host::start_chrome_style(None);
    host.send(&hello());
    assert_eq!(
        host.recv(),
        HostReply::Hello {
            protocol_version: PROTOCOL_VERSION,
            host: format!("foresight-host/{}", env!("CARGO_PKG_VERSION")),
            broker_url: None,
        }
    );
    let done = host.finish();
    assert!(done.status.success(), "{:?} {}", done.status, done.stderr);
}

#[test]
fn hello_announces_the_configured_broker() {
    let origin = format!(
        "chrome-extension://{}/",
        foresight_shared::ids::CHROME_EXTENSION_ID
    );
    let mut host = Host::start_with_env(
        &[origin.as_str()],
        None,
        &[("FORESIGHT_BROKER_URL", "ws://127.0.0.1:9")],
    );
    host.send(&hello());
    match host.recv() {
        HostReply::Hello { broker_url, .. } => {
            assert_eq!(broker_url.as_deref(), Some("ws://127.0.0.1:9"))
        }
        other => panic!("expected hello, got {other:?}"),
    }
    assert!(host.finish().status.success());
}

/// Installs the host for Firefox into a temporary home; returns the home and the manifest.
fn firefox_install(extra: &[&str]) -> (tempfile::TempDir, String) {
    let home = tempfile::tempdir().expect("tempdir");
    let home_arg = home.path().to_str().expect("utf-8").to_string();
    let mut args = vec![
        "install",
        "--browser",
        "firefox",
        "--home",
        home_arg.as_str(),
    ];
    args.extend_from_slice(extra);
    let out = std::process::Command::new(common::HOST_BIN)
        .args(&args)
        .output()
        .expect("run install");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let manifest = home
        .path()
        .join(".mozilla/native-messaging-hosts/dev.foresight.host.json");
    (home, manifest.display().to_string())
}

#[test]
fn firefox_argv_with_the_installed_manifest_serves() {
    let (_home, manifest) = firefox_install(&[]);
    let mut host = Host::start(
        &[
            manifest.as_str(),
            foresight_shared::ids::FIREFOX_EXTENSION_ID,
        ],
        None,
    );
    host.send(&hello());
    assert!(matches!(host.recv(), HostReply::Hello { .. }));
    assert!(host.finish().status.success());
}

#[test]
fn callers_install_did_not_allow_are_refused_with_forbidden() {
    // Another Firefox extension, naming the real manifest.
    let (_home, manifest) = firefox_install(&[]);
    let mut host = Host::start(&[manifest.as_str(), "other@example.com"], None);
    let message = expect_error(host.recv(), ErrorCode::Forbidden, None);
    assert!(message.contains("other@example.com"), "{message}");
    let done = host.finish();
    assert!(!done.status.success());
    assert!(done.stderr.contains("refusing"), "{}", done.stderr);

    // A manifest that is not there.
    let mut host = Host::start(
        &[
            "/nonexistent/dev.foresight.host.json",
            foresight_shared::ids::FIREFOX_EXTENSION_ID,
        ],
        None,
    );
    expect_error(host.recv(), ErrorCode::Forbidden, None);
    assert!(!host.finish().status.success());

    // A Chrome extension that is not Foresight's (no manifest allows it).
    let mut host = Host::start(
        &["chrome-extension://abcdefghijklmnopabcdefghijklmnop/"],
        None,
    );
    let message = expect_error(host.recv(), ErrorCode::Forbidden, None);
    assert!(
        message.contains("abcdefghijklmnopabcdefghijklmnop"),
        "{message}"
    );
    assert!(!host.finish().status.success());

    // Arguments no browser passes.
    let mut host = Host::start(&["--please"], None);
    expect_error(host.recv(), ErrorCode::Forbidden, None);
    assert!(!host.finish().status.success());
}

#[test]
fn an_extension_id_given_at_install_is_the_one_let_in() {
    let (_home, manifest) = firefox_install(&["--extension-id", "dev-build@example.org"]);
    let mut host = Host::start(&[manifest.as_str(), "dev-build@example.org"], None);
    host.send(&hello());
    assert!(matches!(host.recv(), HostReply::Hello { .. }));
    assert!(host.finish().status.success());
    let mut host = Host::start(
        &[
            manifest.as_str(),
            foresight_shared::ids::FIREFOX_EXTENSION_ID,
        ],
        None,
    );
    expect_error(host.recv(), ErrorCode::Forbidden, None);
    assert!(!host.finish().status.success());
}

#[test]
fn plans_follow_the_planner_against_real_contention() {
    let mut host = Host::start_chrome_style(None);
    host.send(&hello());
    assert!(matches!(host.recv(), HostReply::Hello { .. }));

    // A worker predicted at seconds of CPU goes remote whenever a broker is there.
    host.send(&HostRequest::Plan {
        request_id: 7,
        demand: demand("worker-0", 1800.0),
        policy: Policy::default(),
        broker: Some(broker()),
        tabs: vec![],
    });
    let first_contention = match host.recv() {
        HostReply::Plan {
            request_id: 7,
            plan,
            contention,
        } => {
            assert_plausible(&contention);
            assert_eq!(plan.source, PlanSource::NativeHost);
            assert_eq!(plan.url, "http://127.0.0.1:8080/index.html");
            assert_eq!(plan.placements.len(), 1);
            assert_eq!(plan.placements[0].component_id, "worker-0");
            assert_eq!(plan.placements[0].target, Target::Remote);
            let remote = plan.remote.expect("a lease is requested");
            assert_eq!(remote.resources.cpu_millicores, 1000);
            assert!(!plan.reasons.is_empty());
            contention
        }
        other => panic!("expected plan 7, got {other:?}"),
    };

    // The same page without a broker stays local.
    host.send(&HostRequest::Plan {
        request_id: 8,
        demand: demand("worker-0", 1800.0),
        policy: Policy::default(),
        broker: None,
        tabs: vec![],
    });
    match host.recv() {
        HostReply::Plan {
            request_id: 8,
            plan,
            contention,
        } => {
            assert_plausible(&contention);
            assert!(contention.taken_at_ms >= first_contention.taken_at_ms);
            assert!(plan.remote.is_none());
            assert!(plan.placements.iter().all(|p| p.target == Target::Local));
        }
        other => panic!("expected plan 8, got {other:?}"),
    }

    // Policy and broker are optional on the wire.
    let minimal = serde_json::json!({
        "type": "plan",
        "request_id": 9,
        "demand": demand("worker-0", 1.0),
    });
    host.send_payload(minimal.to_string().as_bytes());
    match host.recv() {
        HostReply::Plan {
            request_id: 9,
            plan,
            ..
        } => assert!(plan.remote.is_none()),
        other => panic!("expected plan 9, got {other:?}"),
    }
    assert!(host.finish().status.success());
}

#[test]
fn contention_request_reports_the_machine() {
    let mut host = Host::start_chrome_style(None);
    host.send(&HostRequest::Contention { request_id: 3 });
    match host.recv() {
        HostReply::Contention {
            request_id: 3,
            contention,
        } => assert_plausible(&contention),
        other => panic!("expected contention, got {other:?}"),
    }
    assert!(host.finish().status.success());
}

#[test]
fn invalid_json_then_a_valid_request_are_both_answered_in_order() {
    let mut host = Host::start_chrome_style(None);
    host.send_payload(b"{\"type\": \"hello\", oops");
    host.send(&hello());
    let message = expect_error(host.recv(), ErrorCode::InvalidJson, None);
    assert!(!message.is_empty());
    assert!(matches!(host.recv(), HostReply::Hello { .. }));
    assert!(host.finish().status.success());
}

#[test]
fn oversized_length_prefix_is_refused_and_the_next_request_served() {
    const DECLARED: usize = 100 * 1024 * 1024;
    let mut host = Host::start_chrome_style(None);
    host.send_raw(&u32::try_from(DECLARED).unwrap().to_ne_bytes());
    // The refusal comes as soon as the length is read, before the payload arrives.
    expect_error(host.recv(), ErrorCode::TooLarge, None);
    // The declared payload is then skipped as it streams in; the frame after it is served.
    let filler = vec![b' '; 1024 * 1024];
    for _ in 0..DECLARED / filler.len() {
        host.send_raw(&filler);
    }
    host.send(&HostRequest::Contention { request_id: 11 });
    assert!(matches!(
        host.recv(),
        HostReply::Contention { request_id: 11, .. }
    ));
    assert!(host.finish().status.success());
}

#[test]
fn a_known_type_with_bad_fields_is_invalid_message_with_its_request_id() {
    let mut host = Host::start_chrome_style(None);
    host.send_payload(br#"{"type":"plan","request_id":42,"demand":{"url":5}}"#);
    let message = expect_error(host.recv(), ErrorCode::InvalidMessage, Some(42));
    assert!(message.contains("invalid type"), "{message}");
    // Without a readable id, the error has none.
    host.send_payload(br#"{"type":"contention","request_id":"x"}"#);
    expect_error(host.recv(), ErrorCode::InvalidMessage, None);
    host.send_payload(br#"{"no_type":true}"#);
    expect_error(host.recv(), ErrorCode::InvalidMessage, None);
    assert!(host.finish().status.success());
}

#[test]
fn an_unknown_type_is_unsupported_and_serving_continues() {
    let mut host = Host::start_chrome_style(None);
    host.send_payload(br#"{"type":"lease_request","request_id":1}"#);
    let message = expect_error(host.recv(), ErrorCode::Unsupported, Some(1));
    assert!(message.contains("lease_request"), "{message}");
    host.send(&hello());
    assert!(matches!(host.recv(), HostReply::Hello { .. }));
    assert!(host.finish().status.success());
}

#[test]
fn a_different_protocol_version_is_refused() {
    let mut host = Host::start_chrome_style(None);
    host.send(&HostRequest::Hello {
        protocol_version: PROTOCOL_VERSION + 1,
        client: "from the future".into(),
    });
    let message = expect_error(host.recv(), ErrorCode::VersionMismatch, None);
    assert!(message.contains(&PROTOCOL_VERSION.to_string()), "{message}");
    assert!(host.finish().status.success());
}

#[test]
fn a_truncated_final_frame_ends_the_process_cleanly_without_garbage() {
    let mut host = Host::start_chrome_style(None);
    host.send(&hello());
    assert!(matches!(host.recv(), HostReply::Hello { .. }));
    let written_before = host.stdout.len();
    host.send_raw(&500u32.to_ne_bytes());
    host.send_raw(br#"{"type":"contention","req"#);
    let done = host.finish();
    assert!(done.status.success(), "{:?}", done.status);
    assert_eq!(
        done.stdout.len(),
        written_before,
        "nothing may follow the last whole reply"
    );
    assert!(done.stderr.contains("inside a frame"), "{}", done.stderr);
}

#[test]
fn a_reply_over_one_mebibyte_arrives_in_chunks_of_at_most_one_mebibyte() {
    let mut host = Host::start_chrome_style(None);
    // The placement echoes the component id, so a long enough id makes the plan too big.
    let id = "w".repeat(3 * HOST_TO_BROWSER_MAX_FRAME);
    host.send(&HostRequest::Plan {
        request_id: 5,
        demand: demand(&id, 10.0),
        policy: Policy::default(),
        broker: None,
        tabs: vec![],
    });
    // `recv` itself fails on any frame over the browser's limit.
    let mut json = String::new();
    let mut expected = None;
    loop {
        match host.recv() {
            HostReply::Chunk {
                request_id: Some(5),
                index,
                count,
                data,
            } => {
                assert_eq!(index, expected.map_or(0, |(i, _)| i + 1));
                json.push_str(&data);
                expected = Some((index, count));
                if index + 1 == count {
                    break;
                }
            }
            other => panic!("expected a chunk, got {other:?}"),
        }
    }
    assert!(
        expected.is_some_and(|(_, count)| count >= 4),
        "{expected:?}"
    );
    match serde_json::from_str::<HostReply>(&json).expect("the chunks join into a reply") {
        HostReply::Plan {
            request_id: 5,
            plan,
            ..
        } => assert_eq!(plan.placements[0].component_id, id),
        other => panic!("expected plan 5, got {other:?}"),
    }
    host.send(&HostRequest::Contention { request_id: 6 });
    assert!(matches!(
        host.recv(),
        HostReply::Contention { request_id: 6, .. }
    ));
    assert!(host.finish().status.success());
}

#[test]
fn a_watch_sends_a_first_snapshot_and_the_host_still_exits_on_disconnect() {
    let mut host = Host::start_chrome_style(None);
    host.send(&HostRequest::WatchContention {
        request_id: 1,
        enabled: true,
        min_interval_ms: Some(200),
        cpu_change_millicores: None,
        memory_change_bytes: None,
    });
    match host.recv() {
        HostReply::Contention {
            request_id: 1,
            contention,
        } => {
            assert_plausible(&contention);
            assert!(contention.forecast.is_some());
        }
        other => panic!("expected contention, got {other:?}"),
    }
    // Ticking every 200 ms must not keep the process alive once the browser is gone.
    let done = host.finish();
    assert!(done.status.success(), "{:?} {}", done.status, done.stderr);
}

#[test]
fn the_audit_log_records_every_message_in_and_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("host.jsonl");
    let mut host = Host::start_chrome_style(Some(&log));
    host.send(&hello());
    host.recv();
    host.send_payload(b"not json");
    host.recv();
    host.send(&HostRequest::Contention { request_id: 2 });
    host.recv();
    assert!(host.finish().status.success());

    let text = std::fs::read_to_string(&log).expect("audit log exists");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("each audit line is JSON"))
        .collect();
    let summary: Vec<(String, String)> = lines
        .iter()
        .map(|l| {
            let dir = l["dir"].as_str().unwrap_or_default().to_string();
            let what = if l.get("error").is_some() {
                "error".to_string()
            } else {
                l["msg"]["type"].as_str().unwrap_or_default().to_string()
            };
            (dir, what)
        })
        .collect();
    let expected: Vec<(String, String)> = [
        ("in", "hello"),
        ("out", "hello"),
        ("in", "error"),
        ("out", "error"),
        ("in", "contention"),
        ("out", "contention"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(summary, expected);
    assert!(lines.iter().all(|l| l["ts_ms"].as_u64().is_some()));
    assert_eq!(lines[3]["msg"]["code"], "invalid_json");
    assert_eq!(lines[5]["msg"]["request_id"], 2);
}

#[test]
fn many_requests_in_one_write_are_answered_in_order() {
    let mut host = Host::start_chrome_style(None);
    let mut burst = Vec::new();
    for id in 0..50u64 {
        let payload = serde_json::to_vec(&HostRequest::Contention { request_id: id }).unwrap();
        burst.extend(
            foresight_shared::framing::encode_frame(
                &payload,
                foresight_shared::limits::BROWSER_TO_HOST_MAX_FRAME,
            )
            .unwrap(),
        );
    }
    host.send_raw(&burst);
    for id in 0..50u64 {
        match host.recv() {
            HostReply::Contention { request_id, .. } => assert_eq!(request_id, id),
            other => panic!("expected contention {id}, got {other:?}"),
        }
    }
    let done = host.finish();
    assert_eq!(common::assert_all_frames_are_json(&done.stdout).len(), 50);
}
