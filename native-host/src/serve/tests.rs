//! The serve loop's behaviour in memory: replies in order, typed errors for every kind of bad
//! input, chunked replies, contention watches, and the end of a session.

use super::*;
use crate::contention::{FixedSampler, SampleError};
use foresight_shared::framing::encode_frame;
use foresight_shared::protocol::Quantiles;
use foresight_shared::protocol::demand::{
    ComponentDemand, ComponentKind, PageDemand, PathDemand, PathKind,
};
use foresight_shared::protocol::plan::{
    BrokerTerms, ContentionSnapshot, ContentionSource, Policy, ResourceAmounts, Target,
};
use std::sync::mpsc;

fn snapshot() -> ContentionSnapshot {
    ContentionSnapshot {
        source: ContentionSource::NativeHost,
        taken_at_ms: 1,
        logical_cpus: 2,
        cpu_usage: 0.25,
        available_cpu_millicores: 1500,
        total_memory_bytes: 8 << 30,
        available_memory_bytes: 4 << 30,
        load_average_1m: Some(0.5),
        ..Default::default()
    }
}

fn session() -> Session<FixedSampler> {
    Session::new(FixedSampler(snapshot()), AuditLog::disabled())
}

fn demand(component_id: &str, worker_cpu_ms: f64) -> PageDemand {
    PageDemand {
        url: "http://127.0.0.1/page".into(),
        paths: vec![PathDemand {
            name: "load".into(),
            kind: PathKind::Load,
            probability: 1.0,
            cpu_ms: Quantiles::exact(10.0),
            memory_bytes: Quantiles::exact(1e6),
            network_bytes: Quantiles::exact(1e4),
            event: None,
            target: None,
            curve: Default::default(),
        }],
        components: vec![ComponentDemand {
            id: component_id.into(),
            kind: ComponentKind::Worker,
            url: Some("http://127.0.0.1/w.js".into()),
            source_known: true,
            cpu_ms: Quantiles::exact(worker_cpu_ms),
            memory_bytes: Quantiles::exact(1e6),
            offloadable: true,
        }],
        ..Default::default()
    }
}

fn broker() -> BrokerTerms {
    BrokerTerms {
        available: true,
        rtt_ms: 1.0,
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

fn frame_of(value: &impl serde::Serialize) -> Vec<u8> {
    encode_frame(
        &serde_json::to_vec(value).expect("json"),
        BROWSER_TO_HOST_MAX_FRAME,
    )
    .expect("frame")
}

/// Runs a session over `input` and returns how it ended and every reply it wrote, checking
/// that the output is nothing but well-formed frames.
fn run(session: &mut Session<impl Sampler>, input: &[u8]) -> (ServeEnd, Vec<HostReply>) {
    let mut output = Vec::new();
    let end = session.serve(input, &mut output).expect("in-memory I/O");
    let mut reader = FrameReader::new(&output[..], HOST_TO_BROWSER_MAX_FRAME);
    let mut replies = Vec::new();
    while let Some(frame) = reader.read_frame().expect("output is whole frames") {
        replies.push(serde_json::from_slice(&frame).expect("output frames are replies"));
    }
    (end, replies)
}

fn assert_error(reply: &HostReply, want_code: ErrorCode, want_id: Option<u64>) {
    match reply {
        HostReply::Error {
            request_id, code, ..
        } => {
            assert_eq!(*code, want_code, "{reply:?}");
            assert_eq!(*request_id, want_id, "{reply:?}");
        }
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn answers_hello_plan_and_contention_in_order() {
    let mut input = frame_of(&HostRequest::Hello {
        protocol_version: PROTOCOL_VERSION,
        client: "test".into(),
    });
    input.extend(frame_of(&HostRequest::Plan {
        request_id: 1,
        demand: demand("worker-0", 5000.0),
        policy: Policy::default(),
        broker: Some(broker()),
        tabs: vec![],
    }));
    input.extend(frame_of(&HostRequest::Plan {
        request_id: 2,
        demand: demand("worker-0", 5000.0),
        policy: Policy::default(),
        broker: None,
        tabs: vec![],
    }));
    input.extend(frame_of(&HostRequest::Contention { request_id: 3 }));
    let (end, replies) = run(&mut session(), &input);
    assert_eq!(end, ServeEnd::Disconnected);
    assert_eq!(replies.len(), 4);
    assert_eq!(
        replies[0],
        HostReply::Hello {
            protocol_version: PROTOCOL_VERSION,
            host: HOST_ID.into(),
            broker_url: None,
        }
    );
    match &replies[1] {
        HostReply::Plan {
            request_id: 1,
            plan,
            contention,
        } => {
            assert_eq!(plan.source, PlanSource::NativeHost);
            assert_eq!(plan.placements[0].target, Target::Remote);
            assert!(plan.remote.is_some());
            assert_eq!(*contention, snapshot());
        }
        other => panic!("expected plan 1, got {other:?}"),
    }
    match &replies[2] {
        HostReply::Plan {
            request_id: 2,
            plan,
            ..
        } => {
            assert!(plan.placements.iter().all(|p| p.target == Target::Local));
            assert!(plan.remote.is_none());
        }
        other => panic!("expected plan 2, got {other:?}"),
    }
    assert_eq!(
        replies[3],
        HostReply::Contention {
            request_id: 3,
            contention: snapshot()
        }
    );
}

#[test]
fn bad_frames_get_typed_errors_and_serving_continues() {
    let mut input = encode_frame(b"{not json", 100).expect("frame");
    input.extend(encode_frame(br#"{"type":"plan","request_id":42,"demand":7}"#, 100).unwrap());
    input.extend(encode_frame(br#"{"type":"contention","request_id":-1}"#, 100).unwrap());
    input.extend(encode_frame(br#"{"type":"teleport","request_id":5}"#, 100).unwrap());
    input.extend(encode_frame(br#"[1,2,3]"#, 100).unwrap());
    input.extend(encode_frame(&[0xff, 0xfe], 100).unwrap());
    input.extend(
        encode_frame(
            br#"{"type":"hello","protocol_version":2,"client":"x"}"#,
            100,
        )
        .unwrap(),
    );
    input.extend(frame_of(&HostRequest::Contention { request_id: 9 }));
    let (end, replies) = run(&mut session(), &input);
    assert_eq!(end, ServeEnd::Disconnected);
    assert_eq!(replies.len(), 8);
    assert_error(&replies[0], ErrorCode::InvalidJson, None);
    assert_error(&replies[1], ErrorCode::InvalidMessage, Some(42));
    assert_error(&replies[2], ErrorCode::InvalidMessage, None);
    assert_error(&replies[3], ErrorCode::Unsupported, Some(5));
    if let HostReply::Error { message, .. } = &replies[3] {
        assert!(message.contains("teleport"), "{message}");
    }
    assert_error(&replies[4], ErrorCode::InvalidMessage, None);
    assert_error(&replies[5], ErrorCode::InvalidJson, None);
    assert_error(&replies[6], ErrorCode::VersionMismatch, None);
    assert!(matches!(
        replies[7],
        HostReply::Contention { request_id: 9, .. }
    ));
}

#[test]
fn hostile_payloads_get_small_errors_and_no_crash() {
    let long = "\u{e9}".repeat(1 << 20);
    let wrong_type = serde_json::json!({"type": "plan", "request_id": 5, "demand": long});
    let mut input = frame_of(&wrong_type);
    input.extend(encode_frame(&[b'['; 100_000], BROWSER_TO_HOST_MAX_FRAME).unwrap());
    let mut nested = br#"{"type":"plan","request_id":6,"demand":"#.to_vec();
    nested.extend([b'{'; 50_000].iter().chain(b"\"a\":1"));
    nested.extend([b'}'; 50_001]);
    input.extend(encode_frame(&nested, BROWSER_TO_HOST_MAX_FRAME).unwrap());
    input.extend(encode_frame(b"", BROWSER_TO_HOST_MAX_FRAME).unwrap());
    let (end, replies) = run(&mut session(), &input);
    assert_eq!(end, ServeEnd::Disconnected);
    assert_eq!(replies.len(), 4);
    assert_error(&replies[0], ErrorCode::InvalidMessage, Some(5));
    assert_error(&replies[1], ErrorCode::InvalidJson, None);
    assert_error(&replies[2], ErrorCode::InvalidJson, None);
    assert_error(&replies[3], ErrorCode::InvalidJson, None);
    for reply in &replies {
        if let HostReply::Error { message, .. } = reply {
            assert!(message.len() <= MAX_ERROR_MESSAGE + 3, "{}", message.len());
        }
    }
}

#[test]
fn oversized_frame_is_refused_then_skipped() {
    let declared = BROWSER_TO_HOST_MAX_FRAME + 1;
    let mut input = u32::try_from(declared).unwrap().to_ne_bytes().to_vec();
    input.resize(4 + declared, b'x');
    input.extend(frame_of(&HostRequest::Contention { request_id: 1 }));
    let (end, replies) = run(&mut session(), &input);
    assert_eq!(end, ServeEnd::Disconnected);
    assert_eq!(replies.len(), 2);
    assert_error(&replies[0], ErrorCode::TooLarge, None);
    assert!(matches!(
        replies[1],
        HostReply::Contention { request_id: 1, .. }
    ));
}

#[test]
fn truncated_final_frame_ends_the_session_without_a_reply() {
    let mut input = frame_of(&HostRequest::Contention { request_id: 1 });
    input.extend(100u32.to_ne_bytes());
    input.extend(b"{\"type\":");
    let (end, replies) = run(&mut session(), &input);
    assert!(matches!(end, ServeEnd::Truncated(_)), "{end:?}");
    assert_eq!(replies.len(), 1);
}

/// Joins `chunk` replies into the reply they carry.
fn join_chunks(replies: &[HostReply]) -> HostReply {
    let mut json = String::new();
    for (i, reply) in replies.iter().enumerate() {
        match reply {
            HostReply::Chunk {
                index, count, data, ..
            } => {
                assert_eq!(*index as usize, i);
                assert_eq!(*count as usize, replies.len());
                json.push_str(data);
            }
            other => panic!("expected a chunk, got {other:?}"),
        }
    }
    serde_json::from_str(&json).expect("the chunks join into a reply")
}

#[test]
fn a_reply_over_the_browser_limit_is_sent_in_chunks() {
    // Quotes and non-ASCII in the id: escaping and character boundaries both matter.
    let huge_id = "w\"\u{e9}".repeat(HOST_TO_BROWSER_MAX_FRAME / 2);
    let input = frame_of(&HostRequest::Plan {
        request_id: 77,
        demand: demand(&huge_id, 1.0),
        policy: Policy::default(),
        broker: None,
        tabs: vec![],
    });
    let (_, replies) = run(&mut session(), &input);
    assert!(replies.len() >= 3, "{}", replies.len());
    assert!(replies.iter().all(|r| matches!(
        r,
        HostReply::Chunk {
            request_id: Some(77),
            ..
        }
    )));
    match join_chunks(&replies) {
        HostReply::Plan {
            request_id: 77,
            plan,
            ..
        } => assert_eq!(plan.placements[0].component_id, huge_id),
        other => panic!("expected plan 77, got {other:?}"),
    }
}

#[test]
fn a_reply_beyond_the_chunked_limit_becomes_too_large() {
    let huge_id = "w".repeat(3 * HOST_TO_BROWSER_MAX_FRAME);
    let input = frame_of(&HostRequest::Plan {
        request_id: 78,
        demand: demand(&huge_id, 1.0),
        policy: Policy::default(),
        broker: None,
        tabs: vec![],
    });
    let mut session = session().with_max_reply(2 * HOST_TO_BROWSER_MAX_FRAME);
    let (_, replies) = run(&mut session, &input);
    assert_eq!(replies.len(), 1);
    assert_error(&replies[0], ErrorCode::TooLarge, Some(78));
}

#[test]
fn pieces_are_cut_at_character_boundaries() {
    assert_eq!(split_at_char_boundaries("abcdef", 4), vec!["abcd", "ef"]);
    assert_eq!(
        split_at_char_boundaries("\u{e9}\u{e9}", 3),
        vec!["\u{e9}", "\u{e9}"]
    );
    assert_eq!(split_at_char_boundaries("\u{1f600}", 2), vec!["\u{1f600}"]);
    assert!(split_at_char_boundaries("", 4).is_empty());
}

/// Input that stays open until the test drops its sender, as a browser's pipe does.
struct PipeIn {
    rx: mpsc::Receiver<Vec<u8>>,
    buf: Vec<u8>,
    at: usize,
}

impl Read for PipeIn {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.at == self.buf.len() {
            match self.rx.recv() {
                Ok(bytes) => {
                    self.buf = bytes;
                    self.at = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len() - self.at);
        out[..n].copy_from_slice(&self.buf[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

struct PipeOut(mpsc::Sender<Vec<u8>>);

impl Write for PipeOut {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let _ = self.0.send(bytes.to_vec());
        Ok(bytes.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Idle CPU the test sets while the session runs.
struct DialSampler(std::sync::Arc<std::sync::atomic::AtomicU64>);

impl Sampler for DialSampler {
    fn sample(&mut self) -> Result<ContentionSnapshot, SampleError> {
        Ok(ContentionSnapshot {
            available_cpu_millicores: self.0.load(std::sync::atomic::Ordering::SeqCst),
            ..snapshot()
        })
    }
}

#[test]
fn a_watch_pushes_material_changes_and_stops_when_asked() {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;
    let idle = std::sync::Arc::new(AtomicU64::new(1500));
    let (in_tx, in_rx) = mpsc::channel();
    let (out_tx, out_rx) = mpsc::channel::<Vec<u8>>();
    let dial = DialSampler(idle.clone());
    let server = std::thread::spawn(move || {
        let mut session = Session::new(dial, AuditLog::disabled());
        let input = PipeIn {
            rx: in_rx,
            buf: Vec::new(),
            at: 0,
        };
        session.serve(input, PipeOut(out_tx))
    });
    let mut decoder = foresight_shared::framing::FrameDecoder::new(HOST_TO_BROWSER_MAX_FRAME);
    let mut next = move || -> HostReply {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(frame) = decoder.next_frame() {
                return serde_json::from_slice(&frame.expect("frame")).expect("reply");
            }
            let left = deadline.saturating_duration_since(Instant::now());
            decoder.push(&out_rx.recv_timeout(left).expect("a reply in time"));
        }
    };
    let watch = |enabled| {
        frame_of(&HostRequest::WatchContention {
            request_id: if enabled { 1 } else { 3 },
            enabled,
            min_interval_ms: Some(200),
            cpu_change_millicores: Some(500),
            memory_change_bytes: None,
        })
    };
    in_tx.send(watch(true)).unwrap();
    assert!(matches!(
        next(),
        HostReply::Contention { request_id: 1, .. }
    ));
    // A small wobble is not news; a CPU hog starting is.
    idle.store(1300, Ordering::SeqCst);
    idle.store(200, Ordering::SeqCst);
    match next() {
        HostReply::ContentionChanged {
            contention,
            reasons,
        } => {
            assert_eq!(contention.available_cpu_millicores, 200);
            assert_eq!(reasons, vec!["idle CPU fell from 1500 to 200 millicores"]);
        }
        other => panic!("expected an update, got {other:?}"),
    }
    // Requests are still answered while watching.
    in_tx
        .send(frame_of(&HostRequest::Contention { request_id: 2 }))
        .unwrap();
    assert!(matches!(
        next(),
        HostReply::Contention { request_id: 2, .. }
    ));
    idle.store(1900, Ordering::SeqCst);
    assert!(matches!(next(), HostReply::ContentionChanged { .. }));
    in_tx.send(watch(false)).unwrap();
    assert!(matches!(
        next(),
        HostReply::Contention { request_id: 3, .. }
    ));
    drop(in_tx);
    let end = server.join().expect("no panic").expect("in-memory I/O");
    assert_eq!(end, ServeEnd::Disconnected);
}

struct BrokenSampler;
impl Sampler for BrokenSampler {
    fn sample(&mut self) -> Result<ContentionSnapshot, SampleError> {
        Err(SampleError::Unavailable("no counters".into()))
    }
}

#[test]
fn a_failing_sampler_is_an_internal_error_for_that_request() {
    let mut session = Session::new(BrokenSampler, AuditLog::disabled());
    let mut input = frame_of(&HostRequest::Contention { request_id: 4 });
    input.extend(frame_of(&HostRequest::Hello {
        protocol_version: PROTOCOL_VERSION,
        client: "t".into(),
    }));
    let (_, replies) = run(&mut session, &input);
    assert_error(&replies[0], ErrorCode::Internal, Some(4));
    assert!(matches!(replies[1], HostReply::Hello { .. }));
}

struct FailingWriter;
impl Write for FailingWriter {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::Error::from(io::ErrorKind::BrokenPipe))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_closed_output_ends_the_session_with_a_write_error() {
    let input = frame_of(&HostRequest::Contention { request_id: 1 });
    let result = session().serve(&input[..], FailingWriter);
    assert!(matches!(result, Err(ServeError::Write(_))), "{result:?}");
}
