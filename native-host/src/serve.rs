//! The serve loop: read native-messaging frames from the browser, answer each with one reply,
//! and push contention updates while the extension watches.
//!
//! [`Session`] holds what lives for one browser connection (the contention sampler, the audit
//! log, the watch). [`Session::serve`] is generic over `Read`/`Write` so that tests can drive it
//! in memory; [`serve_stdio`] runs it on the process's stdin and stdout.
//!
//! A reader thread turns the input into frames and hands them over a bounded channel; the loop
//! itself owns the output, so replies and unsolicited updates never interleave. While a watch
//! is on, the loop waits for the next frame only until the next sampling tick.
//!
//! The loop is hardened against whatever arrives: every frame gets exactly one reply (an
//! `error` if need be) except a truncated final frame, after which there is nobody left to
//! answer. Nothing but frames is ever written to the output, and no frame is larger than the
//! browser accepts: a larger reply goes out as `chunk` messages the extension joins, and one
//! beyond [`MAX_CHUNKED_REPLY`] is replaced by `error`/`too_large`. Diagnostics go to stderr,
//! which the browser forwards to its own log.

use std::io::{self, BufWriter, Read, Write};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::time::Instant;

use foresight_shared::framing::{FrameError, FrameReader, write_message};
use foresight_shared::limits::{BROWSER_TO_HOST_MAX_FRAME, HOST_TO_BROWSER_MAX_FRAME};
use foresight_shared::planner::{self, PlanInput};
use foresight_shared::protocol::host::{HostReply, HostRequest};
use foresight_shared::protocol::plan::{ContentionSnapshot, PlanSource};
use foresight_shared::protocol::{ErrorCode, PROTOCOL_VERSION};
use serde_json::Value;

use crate::audit_log::AuditLog;
use crate::contention::{Sampler, SystemSampler};
use crate::watch::{self, WatchSpec};

/// Largest reply sent at all, in chunks; beyond it the client gets `too_large`.
pub const MAX_CHUNKED_REPLY: usize = 64 * 1024 * 1024;

/// Bytes of reply JSON per chunk. JSON-escaping at most doubles them inside the chunk's
/// `data` string, which keeps every chunk frame under the browser's 1 MiB.
pub const CHUNK_BYTES: usize = 480 * 1024;

/// What the reader thread hands the loop: a frame, the end, or why reading failed.
type Incoming = Result<Option<Vec<u8>>, FrameError>;

/// An active `watch_contention`.
struct Watch {
    spec: WatchSpec,
    /// The snapshot last sent, by reply or update: changes are measured from it.
    last_sent: ContentionSnapshot,
    next_tick: Instant,
}

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
    watch: Option<Watch>,
    max_reply: usize,
}

impl<S: Sampler> Session<S> {
    pub fn new(sampler: S, audit: AuditLog) -> Self {
        Self {
            sampler,
            audit,
            broker_url: None,
            watch: None,
            max_reply: MAX_CHUNKED_REPLY,
        }
    }

    /// Caps chunked replies below [`MAX_CHUNKED_REPLY`] (tests use it to stay small).
    pub fn with_max_reply(mut self, bytes: usize) -> Self {
        self.max_reply = bytes.min(MAX_CHUNKED_REPLY);
        self
    }

    /// The broker URL announced in `hello`, for extensions the user has not configured.
    pub fn with_broker_url(mut self, url: Option<String>) -> Self {
        self.broker_url = url.filter(|u| !u.is_empty());
        self
    }

    /// Serves frames from `input` until it ends, answering each on `output`.
    pub fn serve<R: Read + Send, W: Write>(
        &mut self,
        input: R,
        output: W,
    ) -> Result<ServeEnd, ServeError> {
        std::thread::scope(|scope| {
            let (tx, rx) = mpsc::sync_channel(READ_AHEAD);
            scope.spawn(move || read_frames(input, tx));
            self.run(rx, output)
        })
    }

    /// The loop proper, over frames from a reader thread.
    fn run<W: Write>(
        &mut self,
        frames: Receiver<Incoming>,
        mut output: W,
    ) -> Result<ServeEnd, ServeError> {
        loop {
            // A steady stream of requests must not starve the watch of its ticks.
            if self
                .watch
                .as_ref()
                .is_some_and(|w| w.next_tick <= Instant::now())
            {
                self.tick(&mut output)?;
            }
            let incoming = match self.watch.as_ref().map(|w| w.next_tick) {
                None => frames.recv().ok(),
                Some(tick) => {
                    match frames.recv_timeout(tick.saturating_duration_since(Instant::now())) {
                        Ok(incoming) => Some(incoming),
                        Err(RecvTimeoutError::Timeout) => {
                            self.tick(&mut output)?;
                            continue;
                        }
                        Err(RecvTimeoutError::Disconnected) => None,
                    }
                }
            };
            // A reader that vanished without a word ended like a closed input.
            let Some(incoming) = incoming else {
                return Ok(ServeEnd::Disconnected);
            };
            let reply = match incoming {
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

    /// A watch tick: sample, and tell the extension if capacity moved materially.
    fn tick<W: Write>(&mut self, output: &mut W) -> Result<(), ServeError> {
        let Some(w) = &mut self.watch else {
            return Ok(());
        };
        w.next_tick = Instant::now() + w.spec.interval;
        // A failing sampler already told the extension so when it asked; stay quiet here.
        let Ok(now) = self.sampler.sample() else {
            return Ok(());
        };
        let reasons = watch::changes(&w.last_sent, &now, &w.spec);
        if reasons.is_empty() {
            return Ok(());
        }
        w.last_sent = now.clone();
        self.send(
            output,
            HostReply::ContentionChanged {
                contention: now,
                reasons,
            },
        )
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
                tabs,
            } => match self.sampler.sample() {
                Ok(contention) => {
                    let plan = planner::plan(PlanInput {
                        demand: &demand,
                        contention: &contention,
                        policy: &policy,
                        broker: broker.as_ref(),
                        tabs: &tabs,
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
            HostRequest::WatchContention {
                request_id,
                enabled,
                min_interval_ms,
                cpu_change_millicores,
                memory_change_bytes,
            } => match self.sampler.sample() {
                Ok(contention) => {
                    self.watch = enabled.then(|| {
                        let spec = WatchSpec::new(
                            min_interval_ms,
                            cpu_change_millicores,
                            memory_change_bytes,
                        );
                        Watch {
                            spec,
                            last_sent: contention.clone(),
                            next_tick: Instant::now() + spec.interval,
                        }
                    });
                    HostReply::Contention {
                        request_id,
                        contention,
                    }
                }
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
            Err(FrameError::TooLarge { .. }) => match serde_json::to_string(&reply) {
                Ok(json) if json.len() <= self.max_reply => {
                    self.write_chunks(output, request_id_of(&reply), &json)?;
                    reply
                }
                Ok(json) => {
                    let replacement = error(
                        request_id_of(&reply),
                        ErrorCode::TooLarge,
                        format!(
                            "the reply of {} bytes exceeds the {}-byte limit of a chunked reply",
                            json.len(),
                            self.max_reply
                        ),
                    );
                    self.write_small(output, replacement)?
                }
                Err(e) => {
                    let replacement = error(
                        request_id_of(&reply),
                        ErrorCode::Internal,
                        format!("the reply could not be serialized: {e}"),
                    );
                    self.write_small(output, replacement)?
                }
            },
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

    /// Writes `json` as consecutive `chunk` frames, cut at character boundaries.
    fn write_chunks<W: Write>(
        &mut self,
        output: &mut W,
        request_id: Option<u64>,
        json: &str,
    ) -> Result<(), ServeError> {
        let pieces = split_at_char_boundaries(json, CHUNK_BYTES);
        let count = u32::try_from(pieces.len()).unwrap_or(u32::MAX);
        for (index, data) in pieces.into_iter().enumerate() {
            let chunk = HostReply::Chunk {
                request_id,
                index: u32::try_from(index).unwrap_or(u32::MAX),
                count,
                data: data.to_string(),
            };
            match write_message(output, &chunk, HOST_TO_BROWSER_MAX_FRAME) {
                Ok(()) => {}
                Err(FrameError::Io(e)) => return Err(ServeError::Write(e)),
                // Cannot happen (escaping at most doubles a piece); a half-sent reply would
                // be worse than a lost one, so the stream is given up.
                Err(e) => return Err(ServeError::Write(io::Error::other(e.to_string()))),
            }
        }
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
    // Not a scoped thread: if writing fails first, the process must be able to exit while the
    // reader is still blocked on stdin.
    let (tx, rx) = mpsc::sync_channel(READ_AHEAD);
    std::thread::spawn(move || read_frames(io::stdin().lock(), tx));
    // Each frame is handed to stdout's line writer in one piece (it flushes per frame anyway)
    // instead of being split at every 0x0A byte the length prefix or payload happens to hold.
    let stdout = BufWriter::with_capacity(64 * 1024, io::stdout().lock());
    session.run(rx, stdout)
}

/// Frames read ahead of the loop: enough to keep the pipe flowing, few enough that a flood
/// of requests waits in the pipe (and the browser) rather than in this process's memory.
const READ_AHEAD: usize = 4;

/// Reads frames until the input ends or fails, handing each to the loop.
fn read_frames<R: Read>(input: R, frames: SyncSender<Incoming>) {
    let mut reader = FrameReader::new(input, BROWSER_TO_HOST_MAX_FRAME);
    loop {
        let incoming = reader.read_frame();
        let last = matches!(
            incoming,
            Ok(None) | Err(FrameError::Truncated { .. } | FrameError::Io(_))
        );
        if frames.send(incoming).is_err() || last {
            return;
        }
    }
}

/// Cuts `text` into pieces of at most `max` bytes (at least one character each).
fn split_at_char_boundaries(text: &str, max: usize) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let mut cut = max.min(rest.len());
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        if cut == 0 {
            cut = rest.chars().next().map_or(rest.len(), char::len_utf8);
        }
        let (piece, tail) = rest.split_at(cut);
        pieces.push(piece);
        rest = tail;
    }
    pieces
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
        HostReply::Error { request_id, .. } | HostReply::Chunk { request_id, .. } => *request_id,
        HostReply::Hello { .. } | HostReply::ContentionChanged { .. } | HostReply::Unknown => None,
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
}
