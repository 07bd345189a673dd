//! One client: the protocol state machine of channel 2 (`docs/PROTOCOL.md`).
//!
//! A connection is one task. It waits on four things at once: the client's next frame, the
//! output of its workers, its outbox of lease notices, and the server's shutdown. It answers
//! every request in order, and it never gives up on a client over a bad message: invalid
//! JSON, an invalid or unknown message, a message before `hello` or a binary frame it cannot
//! read each get a typed `error` and the connection keeps serving.
//!
//! Worker messages are relayed as bytes: a binary frame from the client becomes a data frame
//! on the executor's pipe and back, without decoding the structured-clone payload (the
//! executor decodes it inside the sandbox). Only a client that did not name
//! `structured_clone_v1` in its `hello` gets its worker data converted, from and to JSON
//! (`foresight_shared::sclone`). Only a protocol version mismatch and an over-long message
//! (which the websocket layer cannot skip) close it.
//!
//! Lease state lives in the shared engine ([`crate::scheduler`]), which other clients'
//! requests and the timer change too (a queued grant, a preemption, an expiry). What other
//! tasks cause arrives through this client's outbox; what its own requests cause is handed
//! back together with whatever was already in the outbox, taken under the engine's lock
//! (`leases.rs`). Either way the client hears everything in the engine's order: the answer
//! to a request before anything that follows it, `lease_ended` before any answer that
//! depends on it. Delivering `lease_ended` (or `lease_released`) kills the lease's workers
//! first: after it no output of theirs reaches the client (fencing).
//!
//! When the connection ends for any reason, its leases are released and its executor
//! processes killed and reaped before the task finishes. A client that stops reading is
//! dropped after [`SEND_TIMEOUT`], so it cannot hold leases long past their deadline.
//!
//! A connection may instead be a data channel (`channel.rs`): it carries only the data of
//! workers other connections bound to it, while those workers stay in their owner's task.

pub(crate) mod channel;
mod leases;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use foresight_shared::limits::{BROKER_MAX_MESSAGE, WORKER_MAX_MESSAGE};

use crate::admission::{self, RateLimiter};
use foresight_shared::protocol::broker::{
    ClientMessage, ConnectionRole, EngineKind, FEATURE_DATA_CHANNEL, FEATURE_STRUCTURED_CLONE,
    LeaseId, ScriptSource, ServerMessage, WorkerExitReason, decode_worker_frame,
    encode_worker_frame,
};
use foresight_shared::protocol::executor::ExecutorLimits;
use foresight_shared::protocol::{ErrorCode, PROTOCOL_VERSION};
use foresight_shared::sclone;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message};

use crate::BROKER_NAME;
use crate::events::BrokerEvent;
use crate::executor::quickjs::MIN_HEAP_BYTES;
use crate::scheduler::{LeaseRequest, NoticeKind};
use crate::server::Shared;
use crate::workers::{self, QueueError, WorkerEvent, WorkerHandle, WorkerOutput, WorkerSpec};

/// A client that has not finished the websocket handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the goodbye (lease_ended, close handshake) may take before the socket is dropped.
const FAREWELL_TIMEOUT: Duration = Duration::from_secs(3);

/// Longest a single send to the client may take. A client that stops reading would otherwise
/// stall its connection task, and with it the expiry of its leases: past this it is dropped
/// and everything it held is released.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// How much the websocket layer reads at once. tungstenite zero-fills this much of its
/// buffer before every read (its default of 128 KiB made memset a third of the broker's
/// CPU time under load); protocol messages are small, and a large one takes more reads.
const READ_BUFFER_BYTES: usize = 8 * 1024;

/// JavaScript stack per worker.
const WORKER_STACK_BYTES: u64 = 1024 * 1024;

/// Live workers one lease may have at a time: each is a process.
pub(crate) const MAX_WORKERS_PER_LEASE: usize = 16;

/// Worker output waiting for the connection; a full queue holds the workers back.
const WORKER_EVENT_QUEUE: usize = 256;

type WsResult<T> = Result<T, tungstenite::Error>;

/// The client's byte stream: TCP, or TLS over TCP for `wss`.
trait AsyncIo: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> AsyncIo for T {}
type Io = Box<dyn AsyncIo>;

/// Serves one client until it leaves or the server shuts down.
pub(crate) async fn serve(
    shared: Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    client_id: u64,
    busy: bool,
    mut shutdown: watch::Receiver<bool>,
) {
    shared
        .counters
        .connections
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    shared
        .events
        .emit(BrokerEvent::ClientConnected { client_id, peer });
    let max_message = max_message(&shared);
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_BYTES)
        .max_message_size(Some(max_message))
        .max_frame_size(Some(max_message));
    let channel_url = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let max_channels = admission::max_channels(shared.config.limits.max_connections);
    let check = admission::check_handshake(
        &shared.config.allowed_origins,
        busy,
        (&shared.open_channels, max_channels),
        channel_url.clone(),
    );
    let tls = shared.config.tls.clone();
    let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, async move {
        let io: Io = match tls {
            Some(tls) => Box::new(
                tokio_rustls::TlsAcceptor::from(tls)
                    .accept(stream)
                    .await
                    .map_err(tungstenite::Error::Io)?,
            ),
            None => Box::new(stream),
        };
        tokio_tungstenite::accept_hdr_async_with_config(io, check, Some(config)).await
    });
    let ws = tokio::select! {
        ws = handshake => match ws {
            Ok(Ok(ws)) => Some(ws),
            Ok(Err(e)) => {
                tracing::debug!(client_id, "websocket handshake failed: {e}");
                None
            }
            Err(_) => {
                tracing::debug!(client_id, "websocket handshake timed out");
                None
            }
        },
        _ = shutdown.changed() => None,
    };
    if let Some(ws) = ws {
        let channel_url = channel_url.load(std::sync::atomic::Ordering::Acquire);
        let _channel_seat =
            channel_url.then(|| admission::ChannelSeat::take(&shared.open_channels));
        let (worker_tx, worker_rx) = mpsc::channel(WORKER_EVENT_QUEUE);
        let connection = Connection {
            notices: shared.register(client_id),
            mine: Vec::new(),
            seat: None,
            rate: RateLimiter::new(
                shared.config.limits.messages_per_s,
                shared.config.limits.message_burst,
            ),
            shared: shared.clone(),
            client_id,
            ws,
            greeted: false,
            structured_clone: false,
            spare: None,
            workers: HashMap::new(),
            worker_tx,
            next_serial: 1,
            tasks: JoinSet::new(),
            channel_url,
            channel: None,
            bound: HashMap::new(),
        };
        connection.run(worker_rx, shutdown).await;
    }
    shared
        .events
        .emit(BrokerEvent::ClientDisconnected { client_id });
}

/// The longest message this broker accepts.
fn max_message(shared: &Shared) -> usize {
    shared
        .config
        .limits
        .max_message_bytes
        .min(BROKER_MAX_MESSAGE)
}

/// What to do after a message.
enum Flow {
    Continue,
    /// Say goodbye with this close frame and stop serving.
    Close(CloseCode, &'static str),
}

/// Why the serving loop stopped.
enum Stop {
    Shutdown,
    Close(CloseCode, &'static str),
    /// The client left or the socket failed: nobody to talk to.
    Gone,
}

struct Connection {
    shared: Arc<Shared>,
    /// What the lease engine tells this client, in order.
    notices: mpsc::UnboundedReceiver<NoticeKind>,
    /// Reused for the notices of this client's own operations.
    mine: Vec<NoticeKind>,
    client_id: u64,
    ws: WebSocketStream<Io>,
    greeted: bool,
    /// The client named [`FEATURE_STRUCTURED_CLONE`]: worker data travels in binary frames.
    structured_clone: bool,
    /// An executor process started ahead of this connection's next worker (killed when the
    /// connection ends, with everything else).
    spare: Option<workers::Spare>,
    workers: HashMap<String, WorkerHandle>,
    worker_tx: mpsc::Sender<WorkerEvent>,
    next_serial: u64,
    /// Executor input and supervisor tasks: joined before the connection ends, so every
    /// process has been reaped by then.
    tasks: JoinSet<()>,
    /// The token this connection authenticated with (it holds one of the token's seats).
    seat: Option<usize>,
    rate: Option<RateLimiter>,
    /// Connected through a data channel's URL (any Origin may): this connection may only be
    /// a data channel.
    channel_url: bool,
    /// This connection is a data channel: its id and the queue of what its workers' owners
    /// send through it.
    channel: Option<channel::ChannelSide>,
    /// This connection's workers whose data goes through a data channel.
    bound: HashMap<String, channel::Link>,
}

impl Connection {
    async fn run(
        mut self,
        mut worker_rx: mpsc::Receiver<WorkerEvent>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let stop = loop {
            if *shutdown.borrow() {
                break Stop::Shutdown;
            }
            tokio::select! {
                // A closed channel means the server is gone: shut down too.
                _ = shutdown.changed() => break Stop::Shutdown,
                Some(notice) = self.notices.recv() => {
                    if self.deliver(notice).await.is_err() {
                        break Stop::Gone;
                    }
                }
                Some(event) = worker_rx.recv() => {
                    if self.on_worker_event(event).await.is_err() {
                        break Stop::Gone;
                    }
                }
                Some(_) = self.tasks.join_next(), if !self.tasks.is_empty() => {}
                Some(message) = channel::next_out(&mut self.channel) => {
                    if self.send_queued(message).await.is_err() {
                        break Stop::Gone;
                    }
                }
                incoming = self.ws.next() => match incoming {
                    None => break Stop::Gone,
                    Some(Ok(message)) => match self.on_frame(message).await {
                        Ok(Flow::Continue) => {
                            if self.deliver_pending().await.is_err() {
                                break Stop::Gone;
                            }
                        }
                        Ok(Flow::Close(code, reason)) => break Stop::Close(code, reason),
                        Err(_) => break Stop::Gone,
                    },
                    Some(Err(tungstenite::Error::Capacity(e))) => {
                        // The rest of the message is still on the wire and the websocket
                        // layer cannot skip it: say why, then close.
                        let message = format!(
                            "message refused ({e}); the limit is {} bytes",
                            max_message(&self.shared)
                        );
                        let _ = self.send_error(ErrorCode::TooLarge, message, None).await;
                        break Stop::Close(CloseCode::Size, "message too large");
                    }
                    Some(Err(e)) => {
                        tracing::debug!(client_id = self.client_id, "websocket error: {e}");
                        break Stop::Gone;
                    }
                },
            }
        };
        match stop {
            Stop::Shutdown => {
                let farewell = self.farewell();
                if tokio::time::timeout(FAREWELL_TIMEOUT, farewell)
                    .await
                    .is_err()
                {
                    tracing::debug!(client_id = self.client_id, "farewell timed out");
                }
            }
            Stop::Close(code, reason) => {
                let _ = tokio::time::timeout(FAREWELL_TIMEOUT, self.close(code, reason)).await;
            }
            Stop::Gone => {}
        }
        self.close_channel().await;
        self.release_everything();
        if let Some(seat) = self.seat.take() {
            self.shared.seats.give_back(seat);
        }
        // Every executor process is reaped before the connection is over.
        drop(worker_rx);
        while self.tasks.join_next().await.is_some() {}
    }

    // --- Sending --------------------------------------------------------------------------

    async fn send(&mut self, message: ServerMessage) -> WsResult<()> {
        match serde_json::to_string(&message) {
            Ok(text) => {
                match tokio::time::timeout(SEND_TIMEOUT, self.ws.send(Message::text(text))).await {
                    Ok(sent) => sent,
                    Err(_) => Err(tungstenite::Error::Io(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the client stopped reading",
                    ))),
                }
            }
            Err(e) => {
                tracing::error!("cannot serialize {message:?}: {e}");
                Ok(())
            }
        }
    }

    async fn send_error(
        &mut self,
        code: ErrorCode,
        message: impl Into<String>,
        request_id: Option<u64>,
    ) -> WsResult<()> {
        let message = message.into();
        tracing::debug!(client_id = self.client_id, ?code, "error: {message}");
        self.send(ServerMessage::Error {
            code,
            message,
            request_id,
        })
        .await
    }

    /// `postMessage` data from a worker: a binary frame for a structured-clone client, the
    /// `JSON.stringify` rendering for the others (or an error saying why there is none).
    async fn send_worker_data(&mut self, worker_id: String, data: &[u8]) -> WsResult<()> {
        if self.structured_clone {
            let frame = encode_worker_frame(&worker_id, data);
            return match tokio::time::timeout(SEND_TIMEOUT, self.ws.send(Message::binary(frame)))
                .await
            {
                Ok(sent) => sent,
                Err(_) => Err(tungstenite::Error::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the client stopped reading",
                ))),
            };
        }
        let rendered = sclone::decode(data)
            .map_err(|e| e.to_string())
            .and_then(|v| v.to_json().map_err(|e| e.to_string()));
        match rendered {
            Ok(data) => {
                self.send(ServerMessage::WorkerMessage { worker_id, data })
                    .await
            }
            Err(e) => {
                let message = format!(
                    "a message from worker {worker_id:?} was dropped: {e}; name \
                     {FEATURE_STRUCTURED_CLONE:?} in hello to receive it"
                );
                self.send_error(ErrorCode::Unsupported, message, None).await
            }
        }
    }

    async fn close(&mut self, code: CloseCode, reason: &'static str) -> WsResult<()> {
        self.ws
            .close(Some(CloseFrame {
                code,
                reason: reason.into(),
            }))
            .await?;
        // Read until the client answers the close, so it sees a clean close, not a reset.
        while let Some(Ok(_)) = self.ws.next().await {}
        Ok(())
    }

    // --- Incoming -------------------------------------------------------------------------

    async fn on_frame(&mut self, message: Message) -> WsResult<Flow> {
        match message {
            Message::Text(text) => {
                if !self.admit_message().await? {
                    return Ok(Flow::Continue);
                }
                self.on_text(text.as_str()).await
            }
            Message::Binary(bytes) => {
                if !self.admit_message().await? {
                    return Ok(Flow::Continue);
                }
                if self.channel.is_some() {
                    self.on_channel_binary(&bytes).await?;
                } else {
                    self.on_binary(&bytes).await?;
                }
                Ok(Flow::Continue)
            }
            // Keepalive: a websocket ping renews every lease of the connection for its own
            // TTL, each announced with `lease_renewed`. (The websocket layer answers the ping.)
            Message::Ping(_) if self.greeted => {
                let client = self.client_id;
                self.engine(|s, now, out| s.renew_all(client, now, out))
                    .await?;
                Ok(Flow::Continue)
            }
            // Closes are acknowledged by the websocket layer itself.
            Message::Ping(_) | Message::Pong(_) | Message::Close(_) | Message::Frame(_) => {
                Ok(Flow::Continue)
            }
        }
    }

    async fn on_text(&mut self, text: &str) -> WsResult<Flow> {
        // One typed parse on the hot path; the untyped one only to explain a failure.
        let message = match serde_json::from_str::<ClientMessage>(text) {
            Ok(ClientMessage::Unknown) => None,
            Ok(message) => Some(message),
            Err(_) => None,
        };
        let Some(message) = message else {
            return self.on_bad_text(text).await;
        };
        let request_id = match &message {
            ClientMessage::LeaseRequest { request_id, .. } => Some(*request_id),
            _ => None,
        };
        if !self.greeted {
            return match message {
                ClientMessage::Hello {
                    protocol_version,
                    client,
                    token,
                    features,
                    role,
                } => {
                    self.on_hello(protocol_version, client, token, &features, role)
                        .await
                }
                _ => {
                    self.send_error(
                        ErrorCode::BadState,
                        "the first message must be hello",
                        request_id,
                    )
                    .await?;
                    Ok(Flow::Continue)
                }
            };
        }
        if self.channel.is_some() {
            self.send_error(
                ErrorCode::BadState,
                "a data channel carries only binary frames for the workers bound to it",
                request_id,
            )
            .await?;
            return Ok(Flow::Continue);
        }
        match message {
            ClientMessage::Hello { .. } => {
                self.send_error(ErrorCode::BadState, "hello was already received", None)
                    .await?;
            }
            ClientMessage::LeaseRequest {
                request_id,
                resources,
                ttl_ms,
                priority,
                purpose,
                min_resources,
                max_wait_ms,
            } => {
                self.on_lease_request(LeaseRequest {
                    request_id,
                    resources,
                    min_resources,
                    ttl_ms,
                    priority,
                    max_wait_ms: max_wait_ms.unwrap_or(0),
                    purpose,
                })
                .await?
            }
            ClientMessage::LeaseRenew { lease_id, ttl_ms } => {
                self.on_lease_renew(lease_id, ttl_ms).await?
            }
            ClientMessage::LeaseRelease { lease_id } => self.on_lease_release(lease_id).await?,
            ClientMessage::WorkerSpawn {
                lease_id,
                worker_id,
                script_url,
                source,
                epoch,
                imports,
                name,
                module,
                engine,
                channel_id,
            } => {
                let script = Script {
                    script_url,
                    source,
                    imports,
                    name,
                    module,
                    engine,
                    channel_id,
                };
                self.on_worker_spawn(lease_id, worker_id, script, epoch)
                    .await?
            }
            ClientMessage::WorkerMessage { worker_id, data } => {
                // A JSON client's data becomes what JSON.parse would give, in the format the
                // executor reads.
                let bytes = sclone::encode_json(&data);
                self.on_worker_data(&worker_id, &bytes).await?
            }
            ClientMessage::WorkerTerminate { worker_id } => {
                self.on_worker_terminate(worker_id).await?
            }
            ClientMessage::Unknown => {}
        }
        Ok(Flow::Continue)
    }

    /// The per-connection message rate limit: `false`, after telling the client, when this
    /// message must not be served.
    async fn admit_message(&mut self) -> WsResult<bool> {
        if let Some(rate) = self.rate.as_mut()
            && !rate.admit(std::time::Instant::now())
        {
            self.shared
                .counters
                .refused_messages
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.send_error(
                ErrorCode::LimitExceeded,
                "too many messages per second on this connection; message not served",
                None,
            )
            .await?;
            return Ok(false);
        }
        Ok(true)
    }

    /// Says what is wrong with a message that did not parse as a known one.
    async fn on_bad_text(&mut self, text: &str) -> WsResult<Flow> {
        let value: serde_json::Value = match serde_json::from_str(text) {
            Ok(value) => value,
            Err(e) => {
                self.send_error(ErrorCode::InvalidJson, format!("not valid JSON: {e}"), None)
                    .await?;
                return Ok(Flow::Continue);
            }
        };
        let request_id = value.get("request_id").and_then(serde_json::Value::as_u64);
        let type_name = value
            .get("type")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned);
        match serde_json::from_value::<ClientMessage>(value) {
            Err(e) => {
                let what = type_name.map_or_else(|| "message".to_string(), |t| format!("{t:?}"));
                self.send_error(
                    ErrorCode::InvalidMessage,
                    format!("invalid {what}: {e}"),
                    request_id,
                )
                .await?;
            }
            Ok(_) => {
                let what = type_name.unwrap_or_default();
                self.send_error(
                    ErrorCode::Unsupported,
                    format!("message type {what:?} is not supported by {BROKER_NAME}"),
                    request_id,
                )
                .await?;
            }
        }
        Ok(Flow::Continue)
    }

    async fn on_hello(
        &mut self,
        protocol_version: u32,
        client: String,
        token: Option<String>,
        features: &[String],
        role: Option<ConnectionRole>,
    ) -> WsResult<Flow> {
        let role = role.unwrap_or(ConnectionRole::Client);
        if role == ConnectionRole::Unknown {
            self.send_error(
                ErrorCode::Unsupported,
                format!("{BROKER_NAME} knows no such connection role"),
                None,
            )
            .await?;
            return Ok(Flow::Close(CloseCode::Policy, "unknown role"));
        }
        if self.channel_url && role != ConnectionRole::DataChannel {
            self.send_error(
                ErrorCode::Forbidden,
                "a connection to the data-channel URL may only be a data channel",
                None,
            )
            .await?;
            return Ok(Flow::Close(CloseCode::Policy, "data channel only"));
        }
        if protocol_version != PROTOCOL_VERSION {
            self.send_error(
                ErrorCode::VersionMismatch,
                format!(
                    "{BROKER_NAME} speaks protocol version {PROTOCOL_VERSION}, not \
                     {protocol_version}"
                ),
                None,
            )
            .await?;
            return Ok(Flow::Close(
                CloseCode::Policy,
                "unsupported protocol version",
            ));
        }
        let tokens = &self.shared.config.tokens;
        if !tokens.is_empty() {
            let Some(index) = token.and_then(|t| admission::find_token(tokens, &t)) else {
                self.send_error(
                    ErrorCode::Unauthorized,
                    "this broker requires a valid access token in hello",
                    None,
                )
                .await?;
                return Ok(Flow::Close(CloseCode::Policy, "unauthorized"));
            };
            let token = &tokens[index];
            if !self.shared.seats.take(index, token.max_connections) {
                self.send_error(
                    ErrorCode::LimitExceeded,
                    format!(
                        "token {:?} already has its {} connection(s) open",
                        token.name,
                        token.max_connections.unwrap_or(0)
                    ),
                    None,
                )
                .await?;
                return Ok(Flow::Close(CloseCode::Policy, "too many connections"));
            }
            self.seat = Some(index);
            let (client, quota, weight) = (self.client_id, token.quota, token.weight);
            self.shared
                .schedule(|s, _, _| s.join_account(client, index as u64, quota, weight));
            tracing::debug!(
                client_id = self.client_id,
                token = token.name,
                "authenticated"
            );
        }
        let channel_id = if role == ConnectionRole::DataChannel {
            match self.open_channel() {
                Ok(id) => Some(id),
                Err(e) => {
                    tracing::error!("cannot open a data channel: {e}");
                    self.send_error(ErrorCode::Internal, format!("no data channel: {e}"), None)
                        .await?;
                    return Ok(Flow::Close(CloseCode::Error, "no data channel"));
                }
            }
        } else {
            None
        };
        self.greeted = true;
        // A data channel only ever carries binary frames.
        self.structured_clone =
            channel_id.is_some() || features.iter().any(|f| f == FEATURE_STRUCTURED_CLONE);
        self.shared.events.emit(BrokerEvent::ClientHello {
            client_id: self.client_id,
            client,
        });
        // The most it may grant: with autoscaling, the largest pool.
        let capacity = self.shared.schedule(|s, _, _| s.ceiling());
        self.send(ServerMessage::Hello {
            protocol_version: PROTOCOL_VERSION,
            broker: BROKER_NAME.to_string(),
            capacity,
            features: vec![
                FEATURE_STRUCTURED_CLONE.to_string(),
                FEATURE_DATA_CHANNEL.to_string(),
            ],
            engines: self.shared.engines(),
            channel_id,
        })
        .await?;
        Ok(Flow::Continue)
    }

    // --- Workers --------------------------------------------------------------------------

    async fn on_worker_spawn(
        &mut self,
        lease_id: LeaseId,
        worker_id: String,
        script: Script,
        epoch: Option<u64>,
    ) -> WsResult<()> {
        let client = self.client_id;
        // An ended lease is announced before the refusal that it explains.
        let lease = self
            .engine(|s, now, out| {
                s.advance(now, out);
                s.lease(client, lease_id).cloned()
            })
            .await?;
        let Some(lease) = lease else {
            self.lease_not_found(lease_id).await?;
            return self.spawn_refused(worker_id, &script).await;
        };
        if let Some(epoch) = epoch
            && epoch != lease.epoch
        {
            self.send_error(
                ErrorCode::BadState,
                format!(
                    "worker {worker_id:?} not started: epoch {epoch} is stale; lease \
                     {lease_id} has epoch {}",
                    lease.epoch
                ),
                None,
            )
            .await?;
            return self.spawn_refused(worker_id, &script).await;
        }
        if self.workers.contains_key(&worker_id) {
            return self
                .send_error(
                    ErrorCode::BadState,
                    format!("worker {worker_id:?} already exists on this connection"),
                    None,
                )
                .await;
        }
        if lease.resources.cpu_millicores == 0 || lease.resources.memory_bytes < MIN_HEAP_BYTES {
            self.send_error(
                ErrorCode::BadState,
                format!(
                    "lease {lease_id} cannot run a worker: it needs some CPU and at least \
                     {MIN_HEAP_BYTES} bytes of memory"
                ),
                None,
            )
            .await?;
            return self.spawn_refused(worker_id, &script).await;
        }
        let under_lease = self
            .workers
            .values()
            .filter(|w| w.lease_id == lease_id)
            .count();
        if under_lease >= MAX_WORKERS_PER_LEASE {
            self.send_error(
                ErrorCode::BadState,
                format!(
                    "lease {lease_id} already runs {MAX_WORKERS_PER_LEASE} workers, the most one \
                     lease may"
                ),
                None,
            )
            .await?;
            return self.spawn_refused(worker_id, &script).await;
        }
        if let Some(channel_id) = &script.channel_id
            && !self.shared.channels.contains(channel_id)
        {
            let channel_id = channel_id.clone();
            return self
                .refuse_channel(worker_id, &channel_id, "is not open")
                .await;
        }
        // The lease's CPU share over its whole TTL is the worker's CPU-time budget; its
        // memory is the worker's heap.
        let limits = ExecutorLimits {
            cpu_ms: lease.ttl_ms.saturating_mul(lease.resources.cpu_millicores) / 1000,
            memory_bytes: lease.resources.memory_bytes,
            stack_bytes: WORKER_STACK_BYTES,
        };
        let engine = script.engine.unwrap_or(self.shared.config.default_engine);
        let process = match (engine, &self.shared.config.node) {
            (EngineKind::Quickjs, _) => {
                workers::Process::quickjs(&self.shared.config.executor, self.spare.take())
            }
            (EngineKind::Node, Some(node)) => {
                let live = node.live.load(std::sync::atomic::Ordering::Acquire);
                if live >= node.settings.max_workers {
                    self.send_error(
                        ErrorCode::LimitExceeded,
                        format!(
                            "worker {worker_id:?} not started: the node engine already runs \
                             {live} workers, its most"
                        ),
                        None,
                    )
                    .await?;
                    return self.spawn_refused(worker_id, &script).await;
                }
                workers::Process::node(node)
            }
            (other, _) => {
                self.send_error(
                    ErrorCode::Unsupported,
                    format!(
                        "worker {worker_id:?} not started: engine {other:?} is not offered by \
                         this broker (see engines in its hello)"
                    ),
                    None,
                )
                .await?;
                return self.spawn_refused(worker_id, &script).await;
            }
        };
        let serial = self.next_serial;
        self.next_serial += 1;
        let channel_id = script.channel_id;
        let spec = WorkerSpec {
            worker_id: worker_id.clone(),
            lease_id,
            script_url: script.script_url,
            source: script.source,
            imports: script.imports,
            name: script.name,
            module: script.module,
            limits,
            cpu_millicores: lease.resources.cpu_millicores,
        };
        let spawned = process.and_then(|process| {
            workers::spawn(
                process,
                spec,
                serial,
                self.worker_tx.clone(),
                self.shared.events.clone(),
                &mut self.tasks,
            )
        });
        match spawned {
            Ok(handle) => {
                tracing::debug!(
                    client_id = self.client_id,
                    worker_id,
                    pid = handle.pid,
                    "executor spawned"
                );
                let Some(channel_id) = channel_id else {
                    self.workers.insert(worker_id, handle);
                    return Ok(());
                };
                let bound = self.shared.channels.bind(
                    &channel_id,
                    &worker_id,
                    self.client_id,
                    self.worker_tx.clone(),
                    serial,
                    handle.input(),
                );
                match bound {
                    Ok((channel_client_id, link)) => {
                        self.shared.events.emit(BrokerEvent::WorkerBound {
                            client_id: self.client_id,
                            channel_client_id,
                            worker_id: worker_id.clone(),
                        });
                        // Before any output of the worker: the channel may send it data.
                        let told = link
                            .send_json(&ServerMessage::WorkerBound {
                                worker_id: worker_id.clone(),
                            })
                            .await;
                        if !told {
                            tracing::debug!(worker_id, "data channel gone at bind");
                        }
                        self.workers.insert(worker_id.clone(), handle);
                        self.bound.insert(worker_id, link);
                        Ok(())
                    }
                    Err(e) => {
                        handle.kill(WorkerExitReason::ChannelClosed);
                        let why = match e {
                            channel::BindError::Unknown => "is not open",
                            channel::BindError::Taken => "already carries a worker of that id",
                        };
                        self.refuse_channel(worker_id, &channel_id, why).await
                    }
                }
            }
            Err(e) => {
                tracing::error!(
                    "cannot start executor {:?}: {e}",
                    self.shared.config.executor.program
                );
                self.send_error(
                    ErrorCode::Internal,
                    format!("worker {worker_id:?} could not be started: {e}"),
                    None,
                )
                .await
            }
        }
    }

    /// A binary frame: a worker message in structured-clone bytes.
    async fn on_binary(&mut self, frame: &[u8]) -> WsResult<()> {
        if !self.greeted {
            return self
                .send_error(ErrorCode::BadState, "the first message must be hello", None)
                .await;
        }
        match decode_worker_frame(frame) {
            Ok((worker_id, payload)) => {
                let worker_id = worker_id.to_string();
                self.on_worker_data(&worker_id, payload).await
            }
            Err(e) => {
                self.send_error(
                    ErrorCode::InvalidMessage,
                    format!("unreadable binary frame: {e}"),
                    None,
                )
                .await
            }
        }
    }

    /// `postMessage` from the page to a worker, as structured-clone bytes: relayed to its
    /// executor undecoded (the executor decodes it, inside the sandbox).
    async fn on_worker_data(&mut self, worker_id: &str, data: &[u8]) -> WsResult<()> {
        if !self.workers.contains_key(worker_id) {
            return self.worker_not_found(worker_id).await;
        }
        if self.bound.contains_key(worker_id) {
            // One ordered source of input per worker.
            return self
                .send_error(
                    ErrorCode::BadState,
                    format!(
                        "worker {worker_id:?} takes its data through its data channel; not \
                         delivered"
                    ),
                    None,
                )
                .await;
        }
        let input = self.workers.get(worker_id).map(WorkerHandle::input);
        self.relay_to_worker(worker_id, data, input).await
    }

    /// After the `error` refusing a `worker_spawn`: the worker's end, `refused`, so that its
    /// owner can run it elsewhere rather than wait for a start that will not come; and the
    /// same to the data channel it named, whose side may be holding the worker's messages.
    async fn spawn_refused(&mut self, worker_id: String, script: &Script) -> WsResult<()> {
        let exited = ServerMessage::WorkerExited {
            worker_id,
            reason: WorkerExitReason::Refused,
            cpu_ms: None,
        };
        if let Some(link) = script
            .channel_id
            .as_deref()
            .and_then(|id| self.shared.channels.link(id))
        {
            link.send_json(&exited).await;
        }
        self.send(exited).await
    }

    /// `postMessage` data for worker `worker_id` (from this connection or, for a worker bound
    /// to a data channel, from the channel): size-checked, queued to its executor's `input`
    /// (`None`: the worker has just ended, and its end is on the way), and announced to
    /// event listeners; a typed error to this connection when it cannot be delivered.
    async fn relay_to_worker(
        &mut self,
        worker_id: &str,
        data: &[u8],
        input: Option<workers::WorkerInput>,
    ) -> WsResult<()> {
        if data.len() > WORKER_MAX_MESSAGE {
            let message = format!(
                "worker message of {} bytes exceeds the {WORKER_MAX_MESSAGE}-byte limit; not \
                 delivered",
                data.len()
            );
            return self.send_error(ErrorCode::TooLarge, message, None).await;
        }
        match input.map_or(Err(QueueError::Gone), |input| input.post(data)) {
            Ok(()) => {
                if self.shared.events.wanted() {
                    self.shared.events.emit(BrokerEvent::WorkerMessageIn {
                        worker_id: worker_id.to_string(),
                        data: sclone::describe(data),
                    });
                }
                Ok(())
            }
            // Its end is already on the way to the client.
            Err(QueueError::Gone) => Ok(()),
            Err(QueueError::Full { pending }) => {
                let message = format!(
                    "worker {worker_id:?} is not keeping up ({pending} bytes waiting); message \
                     not delivered"
                );
                self.send_error(ErrorCode::BadState, message, None).await
            }
            Err(QueueError::Encode(e)) => {
                let message = format!("worker message not delivered: {e}");
                self.send_error(ErrorCode::TooLarge, message, None).await
            }
        }
    }

    async fn on_worker_terminate(&mut self, worker_id: String) -> WsResult<()> {
        match self.workers.remove(&worker_id) {
            Some(worker) => {
                let cpu_ms = worker.cpu_ms();
                worker.kill(WorkerExitReason::Terminated);
                if let Some(link) = self.unbind(&worker_id) {
                    link.send_json(&ServerMessage::WorkerExited {
                        worker_id: worker_id.clone(),
                        reason: WorkerExitReason::Terminated,
                        cpu_ms,
                    })
                    .await;
                }
                self.send(ServerMessage::WorkerExited {
                    worker_id,
                    reason: WorkerExitReason::Terminated,
                    cpu_ms,
                })
                .await
            }
            None => self.worker_not_found(&worker_id).await,
        }
    }

    async fn worker_not_found(&mut self, worker_id: &str) -> WsResult<()> {
        self.send_error(
            ErrorCode::NotFound,
            format!("no live worker {worker_id:?} on this connection"),
            None,
        )
        .await
    }

    async fn on_worker_event(&mut self, event: WorkerEvent) -> WsResult<()> {
        let WorkerEvent {
            serial,
            worker_id,
            output,
        } = event;
        let Some(worker) = self.workers.get_mut(&worker_id) else {
            // Killed at the connection's request: already reported.
            return Ok(());
        };
        if worker.serial != serial {
            return Ok(());
        }
        // The top level may post before it finishes: the client hears `worker_started`
        // before the worker's first output either way.
        let announce = !worker.announced
            && matches!(
                output,
                WorkerOutput::Started | WorkerOutput::Message(_) | WorkerOutput::Error { .. }
            );
        if announce {
            worker.announced = true;
            self.shared.events.emit(BrokerEvent::WorkerStarted {
                client_id: self.client_id,
                lease_id: worker.lease_id,
                worker_id: worker_id.clone(),
                script_url: worker.script_url.clone(),
                executor_pid: worker.pid,
                engine: worker.engine,
            });
            let engine = worker.engine;
            self.send(ServerMessage::WorkerStarted {
                worker_id: worker_id.clone(),
                engine: Some(engine),
            })
            .await?;
            // A connection that starts workers is likely to start more: have the next
            // executor process ready, sandboxed and waiting. Started only now, so that forking
            // it never delays the start of the worker that is being announced.
            if engine == EngineKind::Node
                && let Some(node) = &self.shared.config.node
            {
                node.refill();
            }
            if self.spare.is_none() && engine == EngineKind::Quickjs {
                match workers::Spare::start(&self.shared.config.executor) {
                    Ok(spare) => self.spare = Some(spare),
                    Err(e) => tracing::debug!("no spare executor: {e}"),
                }
            }
        }
        match output {
            WorkerOutput::Started => Ok(()),
            WorkerOutput::Message(data) => {
                if self.shared.events.wanted() {
                    self.shared.events.emit(BrokerEvent::WorkerMessageOut {
                        worker_id: worker_id.clone(),
                        data: sclone::describe(&data),
                    });
                }
                if let Some(link) = self.bound.get(&worker_id) {
                    link.send(Message::binary(encode_worker_frame(&worker_id, &data)))
                        .await;
                    return Ok(());
                }
                self.send_worker_data(worker_id, &data).await
            }
            WorkerOutput::Error { message, lineno } => {
                let filename = self.workers.get(&worker_id).map(|w| w.script_url.clone());
                self.send_output(ServerMessage::WorkerError {
                    worker_id,
                    message,
                    filename,
                    lineno,
                })
                .await
            }
            WorkerOutput::Console { level, text } => {
                tracing::debug!(
                    target: "foresight_broker::worker_console",
                    client_id = self.client_id,
                    worker_id,
                    ?level,
                    "{text}"
                );
                self.send_output(ServerMessage::WorkerConsole {
                    worker_id,
                    level,
                    text,
                })
                .await
            }
            WorkerOutput::Ended(reason, cpu_ms) => {
                self.workers.remove(&worker_id);
                let exited = ServerMessage::WorkerExited {
                    worker_id: worker_id.clone(),
                    reason,
                    cpu_ms,
                };
                // The channel hears its worker's end after its last output; the owner too,
                // for its bookkeeping.
                if let Some(link) = self.unbind(&worker_id) {
                    link.send_json(&exited).await;
                }
                self.send(exited).await
            }
            WorkerOutput::ChannelClosed => {
                self.unbind(&worker_id);
                let cpu_ms = self.workers.remove(&worker_id).and_then(|worker| {
                    let cpu_ms = worker.cpu_ms();
                    worker.kill(WorkerExitReason::ChannelClosed);
                    cpu_ms
                });
                self.send(ServerMessage::WorkerExited {
                    worker_id,
                    reason: WorkerExitReason::ChannelClosed,
                    cpu_ms,
                })
                .await
            }
        }
    }

    /// A worker's console line or error: to its data channel if it has one, else here.
    async fn send_output(&mut self, message: ServerMessage) -> WsResult<()> {
        let worker_id = match &message {
            ServerMessage::WorkerConsole { worker_id, .. }
            | ServerMessage::WorkerError { worker_id, .. } => worker_id,
            _ => return self.send(message).await,
        };
        if let Some(link) = self.bound.get(worker_id) {
            link.send_json(&message).await;
            return Ok(());
        }
        self.send(message).await
    }
}

/// A worker script as the client sent it.
struct Script {
    script_url: String,
    source: String,
    imports: Vec<ScriptSource>,
    name: String,
    module: bool,
    engine: Option<EngineKind>,
    /// The data channel the worker's data goes through, if any.
    channel_id: Option<String>,
}
