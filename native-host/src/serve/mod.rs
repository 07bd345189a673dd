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
mod tests;
