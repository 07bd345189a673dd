//! One client: the protocol state machine of channel 2 (`docs/PROTOCOL.md`).
//!
//! A connection is one task. It waits on four things at once: the client's next frame, the
//! output of its workers, its outbox of lease notices, and the server's shutdown. It answers
//! every request in order, and it never gives up on a client over a bad message: invalid
//! JSON, an invalid or unknown message, a message before `hello` or a binary frame it cannot
//! read each get a typed `error` and the connection keeps serving.
//!
//! Worker messages are relayed as bytes (`relay.rs`: spawns, data, terminations and the
//! workers' output): a binary frame from the client becomes a data frame
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
mod relay;

use relay::Script;

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
    /// connection ends, with everything else; if it is still being started then, as soon as
    /// it exists).
    spare: Option<workers::SpareStart>,
    workers: HashMap<String, WorkerHandle>,
    worker_tx: mpsc::Sender<WorkerEvent>,
    next_serial: u64,
    /// Each executor's task (its input and its supervisor): joined before the connection
    /// ends, so every process has been reaped by then.
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
}
