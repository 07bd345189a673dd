//! The serve loop: read native-messaging frames from the browser, answer each with one frame.
//!
//! [`Session`] holds what lives for one browser connection (the contention sampler and the
//! audit log). [`Session::serve`] is generic over `Read`/`Write` so that tests can drive it in
//! memory; [`serve_stdio`] runs it on the process's stdin and stdout.
//!
//! The loop is hardened against whatever arrives: every frame gets exactly one reply (an
//! `error` if need be) except a truncated final frame, after which there is nobody left to
//! answer. Nothing but frames is ever written to the output, and no frame is larger than the
//! browser accepts: a reply that would be is replaced by `error`/`too_large`. Diagnostics go to
//! stderr, which the browser forwards to its own log.

use std::io::{self, BufWriter, Read, Write};

use foresight_shared::framing::{FrameError, FrameReader, write_message};
use foresight_shared::limits::{BROWSER_TO_HOST_MAX_FRAME, HOST_TO_BROWSER_MAX_FRAME};
use foresight_shared::planner::{self, PlanInput};
use foresight_shared::protocol::host::{HostReply, HostRequest};
use foresight_shared::protocol::plan::PlanSource;
use foresight_shared::protocol::{ErrorCode, PROTOCOL_VERSION};
use serde_json::Value;

use crate::audit_log::AuditLog;
use crate::contention::{Sampler, SystemSampler};

/// How this host introduces itself in `hello`.
pub const HOST_ID: &str = concat!("foresight-host/", env!("CARGO_PKG_VERSION"));

/// How a serve loop ended without an I/O error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServeEnd {
    /// The input ended between frames: the browser closed the port.
    Disconnected,
    /// The input ended inside a frame; the description says where.
    Truncated(String),
}

/// Reading from or writing to the browser failed; the connection is unusable.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("reading from the browser failed: {0}")]
    Read(io::Error),
    #[error("writing to the browser failed: {0}")]
    Write(io::Error),
}

/// The environment variable naming the broker this host tells the extension about.
pub const ENV_BROKER_URL: &str = "FORESIGHT_BROKER_URL";

/// One browser connection's state.
pub struct Session<S> {
    sampler: S,
    audit: AuditLog,
    broker_url: Option<String>,
}

impl<S: Sampler> Session<S> {
    pub fn new(sampler: S, audit: AuditLog) -> Self {
        Self {
            sampler,
            audit,
            broker_url: None,
        }
    }

    /// The broker URL announced in `hello`, for extensions the user has not configured.
    pub fn with_broker_url(mut self, url: Option<String>) -> Self {
        self.broker_url = url.filter(|u| !u.is_empty());
        self
    }

    /// Serves frames from `input` until it ends, answering each on `output`.
    pub fn serve<R: Read, W: Write>(
        &mut self,
        input: R,
        mut output: W,
    ) -> Result<ServeEnd, ServeError> {
        let mut reader = FrameReader::new(input, BROWSER_TO_HOST_MAX_FRAME);
        loop {
            let reply = match reader.read_frame() {
                Ok(Some(payload)) => self.handle_frame(&payload),
                Ok(None) => return Ok(ServeEnd::Disconnected),
                Err(FrameError::TooLarge { len, max }) => {
                    let message = format!(
                        "a frame of {len} bytes exceeds the {max}-byte limit and was skipped"
                    );
                    self.audit.incoming_error(&message);
                    error(None, ErrorCode::TooLarge, message)
                }
                Err(e @ FrameError::Truncated { .. }) => {
                    let message = e.to_string();
                    self.audit.incoming_error(&message);
                    return Ok(ServeEnd::Truncated(message));
                }
                Err(FrameError::Io(e)) => return Err(ServeError::Read(e)),
                // The reader hands out raw payloads and never parses them; answered all the
                // same, should that change.
                Err(e @ FrameError::InvalidJson(_)) => {
                    let message = e.to_string();
                    self.audit.incoming_error(&message);
                    error(None, ErrorCode::InvalidJson, message)
                }
            };
            self.send(&mut output, reply)?;
        }
    }

    /// Decodes one frame's payload and answers it.
    pub fn handle_frame(&mut self, payload: &[u8]) -> HostReply {
        match serde_json::from_slice::<HostRequest>(payload) {
            Ok(HostRequest::Unknown) => {
                self.audit.incoming(&HostRequest::Unknown);
                // A newer client's request: say which type, and echo its id so the client can
                // match the refusal to what it sent.
                let value = serde_json::from_slice::<Value>(payload).unwrap_or_default();
                let message = match value.get("type").and_then(Value::as_str) {
                    Some(t) => {
                        let t: String = t.chars().take(64).collect();
                        format!("message type {t:?} is not supported by {HOST_ID}")
                    }
                    None => format!("message type not supported by {HOST_ID}"),
                };
                error(request_id_in(&value), ErrorCode::Unsupported, message)
            }
            Ok(request) => {
                self.audit.incoming(&request);
                self.handle_request(request)
            }
            Err(request_error) => {
                // Only failures take this second parse, to tell bad JSON from a bad message and
                // to recover the request id the reply should echo.
                let reply = match serde_json::from_slice::<Value>(payload) {
                    Err(json_error) => error(
                        None,
                        ErrorCode::InvalidJson,
                        format!("frame is not valid JSON: {json_error}"),
                    ),
                    Ok(value) => error(
                        request_id_in(&value),
                        ErrorCode::InvalidMessage,
                        format!("not a valid request: {request_error}"),
                    ),
                };
                if let HostReply::Error { message, .. } = &reply {
                    self.audit.incoming_error(message);
                }
                reply
            }
        }
    }

    /// Answers one decoded request.
    pub fn handle_request(&mut self, request: HostRequest) -> HostReply {
        match request {
            HostRequest::Hello {
                protocol_version, ..
            } if protocol_version == PROTOCOL_VERSION => HostReply::Hello {
                protocol_version: PROTOCOL_VERSION,
                host: HOST_ID.to_string(),
                broker_url: self.broker_url.clone(),
            },
            HostRequest::Hello {
                protocol_version, ..
            } => error(
                None,
                ErrorCode::VersionMismatch,
                format!(
                    "{HOST_ID} speaks protocol version {PROTOCOL_VERSION}, the client speaks {protocol_version}"
                ),
            ),
            HostRequest::Plan {
                request_id,
                demand,
                policy,
                broker,
            } => match self.sampler.sample() {
                Ok(contention) => {
                    let plan = planner::plan(PlanInput {
                        demand: &demand,
                        contention: &contention,
                        policy: &policy,
                        broker: broker.as_ref(),
                        source: PlanSource::NativeHost,
                    });
                    HostReply::Plan {
                        request_id,
                        plan,
                        contention,
                    }
                }
                Err(e) => error(Some(request_id), ErrorCode::Internal, e.to_string()),
            },
            HostRequest::Contention { request_id } => match self.sampler.sample() {
                Ok(contention) => HostReply::Contention {
                    request_id,
                    contention,
                },
                Err(e) => error(Some(request_id), ErrorCode::Internal, e.to_string()),
            },
            HostRequest::Unknown => error(
                None,
                ErrorCode::Unsupported,
                format!("message type not supported by {HOST_ID}"),
            ),
        }
    }

    /// Writes `reply` as one frame, or an error in its place if it cannot be sent as it is.
    fn send<W: Write>(&mut self, output: &mut W, reply: HostReply) -> Result<(), ServeError> {
        let reply = match write_message(output, &reply, HOST_TO_BROWSER_MAX_FRAME) {
            Ok(()) => reply,
            Err(FrameError::TooLarge { len, max }) => {
                // Chunking large replies is future work; until then the client learns why.
                let replacement = error(
                    request_id_of(&reply),
                    ErrorCode::TooLarge,
                    format!(
                        "the reply of {len} bytes exceeds the {max}-byte limit of a frame to the browser"
                    ),
                );
                self.write_small(output, replacement)?
            }
            Err(FrameError::InvalidJson(e)) => {
                let replacement = error(
                    request_id_of(&reply),
                    ErrorCode::Internal,
                    format!("the reply could not be serialized: {e}"),
                );
                self.write_small(output, replacement)?
            }
            Err(FrameError::Io(e)) => return Err(ServeError::Write(e)),
            Err(e @ FrameError::Truncated { .. }) => {
                return Err(ServeError::Write(io::Error::other(e.to_string())));
            }
        };
        self.audit.outgoing(&reply);
        Ok(())
    }

    /// Writes an error reply, which is always small enough; any failure is an I/O failure.
    fn write_small<W: Write>(
        &mut self,
        output: &mut W,
        reply: HostReply,
    ) -> Result<HostReply, ServeError> {
        match write_message(output, &reply, HOST_TO_BROWSER_MAX_FRAME) {
            Ok(()) => Ok(reply),
            Err(FrameError::Io(e)) => Err(ServeError::Write(e)),
            Err(e) => Err(ServeError::Write(io::Error::other(e.to_string()))),
        }
    }
}

/// Serves the browser on this process's stdin and stdout with the system sampler and the
/// audit log named by the environment. Returns when the browser disconnects.
pub fn serve_stdio() -> Result<ServeEnd, ServeError> {
    let mut session = Session::new(SystemSampler::new(), AuditLog::from_env())
        .with_broker_url(std::env::var(ENV_BROKER_URL).ok());
    let stdin = io::stdin().lock();
    // Each frame is handed to stdout's line writer in one piece (it flushes per frame anyway)
    // instead of being split at every 0x0A byte the length prefix or payload happens to hold.
    let stdout = BufWriter::with_capacity(64 * 1024, io::stdout().lock());
    session.serve(stdin, stdout)
}

/// Longest error text sent, in bytes. Decoding errors quote the offending input, which can be
/// megabytes; the reply must stay a small `invalid_message`, not turn into `too_large`.
pub const MAX_ERROR_MESSAGE: usize = 1024;

fn error(request_id: Option<u64>, code: ErrorCode, mut message: String) -> HostReply {
    if message.len() > MAX_ERROR_MESSAGE {
        let mut cut = MAX_ERROR_MESSAGE;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
        message.push_str("...");
    }
    HostReply::Error {
        request_id,
        code,
        message,
    }
}

fn request_id_of(reply: &HostReply) -> Option<u64> {
    match reply {
        HostReply::Plan { request_id, .. } | HostReply::Contention { request_id, .. } => {
            Some(*request_id)
        }
        HostReply::Error { request_id, .. } => *request_id,
        HostReply::Hello { .. } | HostReply::Unknown => None,
    }
}

/// The numeric `request_id` of a message that did not decode, if it has one.
fn request_id_in(value: &Value) -> Option<u64> {
    value.get("request_id").and_then(Value::as_u64)
}

#[cfg(test)]
mod tests {
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
        }));
        input.extend(frame_of(&HostRequest::Plan {
            request_id: 2,
            demand: demand("worker-0", 5000.0),
            policy: Policy::default(),
            broker: None,
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

    #[test]
    fn a_reply_over_the_browser_limit_becomes_too_large() {
        let huge_id = "w".repeat(HOST_TO_BROWSER_MAX_FRAME);
        let input = frame_of(&HostRequest::Plan {
            request_id: 77,
            demand: demand(&huge_id, 1.0),
            policy: Policy::default(),
            broker: None,
        });
        let (_, replies) = run(&mut session(), &input);
        assert_eq!(replies.len(), 1);
        assert_error(&replies[0], ErrorCode::TooLarge, Some(77));
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
}
