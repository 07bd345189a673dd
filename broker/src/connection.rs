//! One client: the protocol state machine of channel 2 (`docs/PROTOCOL.md`).
//!
//! A connection is one task. It waits on four things at once: the client's next frame, the
//! output of its workers, the earliest deadline among its leases, and the server's shutdown.
//! It answers every request at once and in order, and it never gives up on a client over a
//! bad message: invalid JSON, an invalid or unknown message, a message before `hello` or a
//! binary frame it cannot read each get a typed `error` and the connection keeps serving.
//!
//! Worker messages are relayed as bytes: a binary frame from the client becomes a data frame
//! on the executor's pipe and back, without decoding the structured-clone payload (the
//! executor decodes it inside the sandbox). Only a client that did not name
//! `structured_clone_v1` in its `hello` gets its worker data converted, from and to JSON
//! (`foresight_shared::sclone`). Only a protocol
//! version mismatch and an over-long message (which the websocket layer cannot skip) close it.
//!
//! Leases are looked up in the shared pool, but only their owner changes them, so what this
//! task sees of its own leases cannot change under it. Before handling any message the
//! connection expires its due leases, so a client always hears `lease_ended` before an answer
//! that depends on it.
//!
//! When the connection ends for any reason, its leases are released and its executor
//! processes killed and reaped before the task finishes. A client that stops reading is
//! dropped after [`SEND_TIMEOUT`], so it cannot hold leases long past their deadline.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use foresight_shared::limits::{BROKER_MAX_MESSAGE, WORKER_MAX_MESSAGE};
use foresight_shared::protocol::broker::{
    ClientMessage, FEATURE_STRUCTURED_CLONE, LeaseEndReason, LeaseId, ScriptSource, ServerMessage,
    WorkerExitReason, decode_worker_frame, encode_worker_frame,
};
use foresight_shared::protocol::executor::ExecutorLimits;
use foresight_shared::protocol::plan::ResourceAmounts;
use foresight_shared::protocol::{ErrorCode, PROTOCOL_VERSION};
use foresight_shared::sclone;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message};

use crate::BROKER_NAME;
use crate::events::{BrokerEvent, LeaseEndCause};
use crate::executor::quickjs::MIN_HEAP_BYTES;
use crate::leases::RenewError;
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

/// JavaScript stack per worker.
const WORKER_STACK_BYTES: u64 = 1024 * 1024;

/// Live workers one lease may have at a time: each is a process.
pub(crate) const MAX_WORKERS_PER_LEASE: usize = 16;

/// Worker output waiting for the connection; a full queue holds the workers back.
const WORKER_EVENT_QUEUE: usize = 256;

type WsResult<T> = Result<T, tungstenite::Error>;

/// Milliseconds since the Unix epoch: lease deadlines are absolute, on the broker's clock.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Serves one client until it leaves or the server shuts down.
pub(crate) async fn serve(
    shared: Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    client_id: u64,
    mut shutdown: watch::Receiver<bool>,
) {
    shared
        .events
        .emit(BrokerEvent::ClientConnected { client_id, peer });
    let config = WebSocketConfig::default()
        .max_message_size(Some(BROKER_MAX_MESSAGE))
        .max_frame_size(Some(BROKER_MAX_MESSAGE));
    let handshake = tokio::time::timeout(
        HANDSHAKE_TIMEOUT,
        tokio_tungstenite::accept_async_with_config(stream, Some(config)),
    );
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
        let (worker_tx, worker_rx) = mpsc::channel(WORKER_EVENT_QUEUE);
        let connection = Connection {
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
        };
        connection.run(worker_rx, shutdown).await;
    }
    shared
        .events
        .emit(BrokerEvent::ClientDisconnected { client_id });
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
    client_id: u64,
    ws: WebSocketStream<TcpStream>,
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
            let deadline = self.next_deadline();
            tokio::select! {
                // A closed channel means the server is gone: shut down too.
                _ = shutdown.changed() => break Stop::Shutdown,
                () = sleep_until(deadline) => {
                    if self.expire_due().await.is_err() {
                        break Stop::Gone;
                    }
                }
                Some(event) = worker_rx.recv() => {
                    if self.on_worker_event(event).await.is_err() {
                        break Stop::Gone;
                    }
                }
                Some(_) = self.tasks.join_next(), if !self.tasks.is_empty() => {}
                incoming = self.ws.next() => match incoming {
                    None => break Stop::Gone,
                    Some(Ok(message)) => match self.on_frame(message).await {
                        Ok(Flow::Continue) => {}
                        Ok(Flow::Close(code, reason)) => break Stop::Close(code, reason),
                        Err(_) => break Stop::Gone,
                    },
                    Some(Err(tungstenite::Error::Capacity(e))) => {
                        // The rest of the message is still on the wire and the websocket
                        // layer cannot skip it: say why, then close.
                        let message = format!(
                            "message refused ({e}); the limit is {BROKER_MAX_MESSAGE} bytes"
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
        let cause = match stop {
            Stop::Shutdown => {
                let farewell = self.farewell();
                if tokio::time::timeout(FAREWELL_TIMEOUT, farewell)
                    .await
                    .is_err()
                {
                    tracing::debug!(client_id = self.client_id, "farewell timed out");
                }
                LeaseEndCause::ShuttingDown
            }
            Stop::Close(code, reason) => {
                let _ = tokio::time::timeout(FAREWELL_TIMEOUT, self.close(code, reason)).await;
                LeaseEndCause::Disconnected
            }
            Stop::Gone => LeaseEndCause::Disconnected,
        };
        self.release_everything(cause);
        // Every executor process is reaped before the connection is over.
        drop(worker_rx);
        while self.tasks.join_next().await.is_some() {}
    }

    fn next_deadline(&self) -> Option<Instant> {
        let expires_at = self.shared.pool().next_expiry(self.client_id)?;
        let wait = expires_at.saturating_sub(now_ms());
        Some(Instant::now() + Duration::from_millis(wait))
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
            Message::Text(text) => self.on_text(text.as_str()).await,
            Message::Binary(bytes) => {
                self.on_binary(&bytes).await?;
                Ok(Flow::Continue)
            }
            // Pings are answered and closes acknowledged by the websocket layer itself.
            Message::Ping(_) | Message::Pong(_) | Message::Close(_) | Message::Frame(_) => {
                Ok(Flow::Continue)
            }
        }
    }

    async fn on_text(&mut self, text: &str) -> WsResult<Flow> {
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
        let message: ClientMessage = match serde_json::from_value(value) {
            Ok(message) => message,
            Err(e) => {
                let what = type_name.map_or_else(|| "message".to_string(), |t| format!("{t:?}"));
                self.send_error(
                    ErrorCode::InvalidMessage,
                    format!("invalid {what}: {e}"),
                    request_id,
                )
                .await?;
                return Ok(Flow::Continue);
            }
        };
        self.expire_due().await?;

        if let ClientMessage::Unknown = message {
            let what = type_name.unwrap_or_default();
            self.send_error(
                ErrorCode::Unsupported,
                format!("message type {what:?} is not supported by {BROKER_NAME}"),
                request_id,
            )
            .await?;
            return Ok(Flow::Continue);
        }
        if !self.greeted {
            return match message {
                ClientMessage::Hello {
                    protocol_version,
                    client,
                    token: _,
                    features,
                } => self.on_hello(protocol_version, client, &features).await,
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
        match message {
            ClientMessage::Hello { .. } => {
                self.send_error(ErrorCode::BadState, "hello was already received", None)
                    .await?;
            }
            ClientMessage::LeaseRequest {
                request_id,
                resources,
                ttl_ms,
                priority: _,
                purpose,
            } => {
                self.on_lease_request(request_id, resources, ttl_ms, purpose)
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
                imports,
                name,
                module,
            } => {
                let script = Script {
                    script_url,
                    source,
                    imports,
                    name,
                    module,
                };
                self.on_worker_spawn(lease_id, worker_id, script).await?
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

    async fn on_hello(
        &mut self,
        protocol_version: u32,
        client: String,
        features: &[String],
    ) -> WsResult<Flow> {
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
        self.greeted = true;
        self.structured_clone = features.iter().any(|f| f == FEATURE_STRUCTURED_CLONE);
        self.shared.events.emit(BrokerEvent::ClientHello {
            client_id: self.client_id,
            client,
        });
        let capacity = self.shared.pool().capacity();
        self.send(ServerMessage::Hello {
            protocol_version: PROTOCOL_VERSION,
            broker: BROKER_NAME.to_string(),
            capacity,
            features: vec![FEATURE_STRUCTURED_CLONE.to_string()],
        })
        .await?;
        Ok(Flow::Continue)
    }

    // --- Leases ---------------------------------------------------------------------------

    async fn on_lease_request(
        &mut self,
        request_id: u64,
        resources: ResourceAmounts,
        ttl_ms: u64,
        purpose: String,
    ) -> WsResult<()> {
        let granted = self
            .shared
            .pool()
            .grant(self.client_id, resources, ttl_ms, now_ms());
        match granted {
            Ok(lease) => {
                self.shared.events.emit(BrokerEvent::LeaseGranted {
                    client_id: self.client_id,
                    lease: lease.clone(),
                    purpose,
                });
                self.send(ServerMessage::LeaseGranted { request_id, lease })
                    .await
            }
            Err(denial) => {
                self.shared.events.emit(BrokerEvent::LeaseDenied {
                    client_id: self.client_id,
                    reason: denial.reason,
                    message: denial.message.clone(),
                });
                self.send(ServerMessage::LeaseDenied {
                    request_id,
                    reason: denial.reason,
                    message: denial.message,
                })
                .await
            }
        }
    }

    async fn on_lease_renew(&mut self, lease_id: LeaseId, ttl_ms: u64) -> WsResult<()> {
        let renewed = self
            .shared
            .pool()
            .renew(self.client_id, lease_id, ttl_ms, now_ms());
        match renewed {
            Ok(expires_at_ms) => {
                self.send(ServerMessage::LeaseRenewed {
                    lease_id,
                    expires_at_ms,
                })
                .await
            }
            Err(RenewError::NotFound) => self.lease_not_found(lease_id).await,
            // The protocol has no typed refusal for renewals; the lease keeps its deadline.
            Err(RenewError::InvalidTtl(message)) => {
                self.send_error(
                    ErrorCode::InvalidMessage,
                    format!("lease {lease_id} not renewed: {message}"),
                    None,
                )
                .await
            }
        }
    }

    async fn on_lease_release(&mut self, lease_id: LeaseId) -> WsResult<()> {
        let released = self.shared.pool().release(self.client_id, lease_id);
        match released {
            Some(_) => {
                self.end_lease(
                    lease_id,
                    LeaseEndCause::Released,
                    ServerMessage::LeaseReleased { lease_id },
                )
                .await
            }
            None => self.lease_not_found(lease_id).await,
        }
    }

    async fn lease_not_found(&mut self, lease_id: LeaseId) -> WsResult<()> {
        self.send_error(
            ErrorCode::NotFound,
            format!("no live lease {lease_id} on this connection"),
            None,
        )
        .await
    }

    /// Ends the leases whose deadline has passed, telling the client.
    async fn expire_due(&mut self) -> WsResult<()> {
        let expired = self.shared.pool().expire_due(self.client_id, now_ms());
        for lease in expired {
            let lease_id = lease.lease_id;
            self.end_lease(
                lease_id,
                LeaseEndCause::Expired,
                ServerMessage::LeaseEnded {
                    lease_id,
                    reason: LeaseEndReason::Expired,
                },
            )
            .await?;
        }
        Ok(())
    }

    /// The rest of ending a lease already removed from the pool: kill its workers, then tell
    /// the client (`worker_exited` for each, then `announcement`).
    async fn end_lease(
        &mut self,
        lease_id: LeaseId,
        cause: LeaseEndCause,
        announcement: ServerMessage,
    ) -> WsResult<()> {
        let killed = self.kill_lease_workers(lease_id);
        self.shared.events.emit(BrokerEvent::LeaseEnded {
            client_id: self.client_id,
            lease_id,
            cause,
        });
        for worker_id in killed {
            self.send(ServerMessage::WorkerExited {
                worker_id,
                reason: WorkerExitReason::LeaseEnded,
                cpu_ms: None,
            })
            .await?;
        }
        self.send(announcement).await
    }

    fn kill_lease_workers(&mut self, lease_id: LeaseId) -> Vec<String> {
        let mut ids: Vec<String> = self
            .workers
            .iter()
            .filter(|(_, w)| w.lease_id == lease_id)
            .map(|(id, _)| id.clone())
            .collect();
        ids.sort();
        for id in &ids {
            if let Some(worker) = self.workers.remove(id) {
                worker.kill(WorkerExitReason::LeaseEnded);
            }
        }
        ids
    }

    /// Shutdown: every lease ends with `shutting_down`, then the websocket closes.
    async fn farewell(&mut self) -> WsResult<()> {
        let leases = self.shared.pool().release_all(self.client_id);
        for lease in leases {
            let lease_id = lease.lease_id;
            self.end_lease(
                lease_id,
                LeaseEndCause::ShuttingDown,
                ServerMessage::LeaseEnded {
                    lease_id,
                    reason: LeaseEndReason::ShuttingDown,
                },
            )
            .await?;
        }
        self.close(CloseCode::Away, "broker shutting down").await
    }

    /// Whatever is left when the connection ends: release the leases, kill the workers.
    fn release_everything(&mut self, cause: LeaseEndCause) {
        // Killed on drop.
        self.spare = None;
        let leases = self.shared.pool().release_all(self.client_id);
        for lease in leases {
            self.kill_lease_workers(lease.lease_id);
            self.shared.events.emit(BrokerEvent::LeaseEnded {
                client_id: self.client_id,
                lease_id: lease.lease_id,
                cause,
            });
        }
        for (_, worker) in self.workers.drain() {
            worker.kill(WorkerExitReason::LeaseEnded);
        }
    }

    // --- Workers --------------------------------------------------------------------------

    async fn on_worker_spawn(
        &mut self,
        lease_id: LeaseId,
        worker_id: String,
        script: Script,
    ) -> WsResult<()> {
        let lease = self.shared.pool().get(self.client_id, lease_id).cloned();
        let Some(lease) = lease else {
            return self.lease_not_found(lease_id).await;
        };
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
            return self
                .send_error(
                    ErrorCode::BadState,
                    format!(
                        "lease {lease_id} cannot run a worker: it needs some CPU and at least \
                         {MIN_HEAP_BYTES} bytes of memory"
                    ),
                    None,
                )
                .await;
        }
        let under_lease = self
            .workers
            .values()
            .filter(|w| w.lease_id == lease_id)
            .count();
        if under_lease >= MAX_WORKERS_PER_LEASE {
            return self
                .send_error(
                    ErrorCode::BadState,
                    format!(
                        "lease {lease_id} already runs {MAX_WORKERS_PER_LEASE} workers, the most \
                         one lease may"
                    ),
                    None,
                )
                .await;
        }
        // The lease's CPU share over its whole TTL is the worker's CPU-time budget; its
        // memory is the worker's heap.
        let limits = ExecutorLimits {
            cpu_ms: lease.ttl_ms.saturating_mul(lease.resources.cpu_millicores) / 1000,
            memory_bytes: lease.resources.memory_bytes,
            stack_bytes: WORKER_STACK_BYTES,
        };
        let serial = self.next_serial;
        self.next_serial += 1;
        let spec = WorkerSpec {
            worker_id: worker_id.clone(),
            lease_id,
            script_url: script.script_url,
            source: script.source,
            imports: script.imports,
            name: script.name,
            module: script.module,
            limits,
        };
        let spare = self.spare.take();
        let spawned = workers::spawn(
            &self.shared.config.executor,
            spare,
            spec,
            serial,
            self.worker_tx.clone(),
            self.shared.events.clone(),
            &mut self.tasks,
        );
        match spawned {
            Ok(handle) => {
                tracing::debug!(
                    client_id = self.client_id,
                    worker_id,
                    pid = handle.pid,
                    "executor spawned"
                );
                self.workers.insert(worker_id, handle);
                Ok(())
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
        self.expire_due().await?;
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
        if data.len() > WORKER_MAX_MESSAGE {
            return self
                .send_error(
                    ErrorCode::TooLarge,
                    format!(
                        "worker message of {} bytes exceeds the {WORKER_MAX_MESSAGE}-byte \
                         limit; not delivered",
                        data.len()
                    ),
                    None,
                )
                .await;
        }
        let queued = match self.workers.get(worker_id) {
            Some(worker) => worker.post(data),
            None => Err(QueueError::Gone),
        };
        match queued {
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
                self.send_error(
                    ErrorCode::BadState,
                    format!(
                        "worker {worker_id:?} is not keeping up ({pending} bytes waiting); \
                         message not delivered"
                    ),
                    None,
                )
                .await
            }
            Err(QueueError::Encode(e)) => {
                self.send_error(
                    ErrorCode::TooLarge,
                    format!("worker message not delivered: {e}"),
                    None,
                )
                .await
            }
        }
    }

    async fn on_worker_terminate(&mut self, worker_id: String) -> WsResult<()> {
        match self.workers.remove(&worker_id) {
            Some(worker) => {
                let cpu_ms = worker.cpu_ms();
                worker.kill(WorkerExitReason::Terminated);
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
            });
            self.send(ServerMessage::WorkerStarted {
                worker_id: worker_id.clone(),
            })
            .await?;
            // A connection that starts workers is likely to start more: have the next
            // executor process ready, sandboxed and waiting. Started only now, so that forking
            // it never delays the start of the worker that is being announced.
            if self.spare.is_none() {
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
                self.send_worker_data(worker_id, &data).await
            }
            WorkerOutput::Error { message, lineno } => {
                let filename = self.workers.get(&worker_id).map(|w| w.script_url.clone());
                self.send(ServerMessage::WorkerError {
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
                self.send(ServerMessage::WorkerConsole {
                    worker_id,
                    level,
                    text,
                })
                .await
            }
            WorkerOutput::Ended(reason, cpu_ms) => {
                self.workers.remove(&worker_id);
                self.send(ServerMessage::WorkerExited {
                    worker_id,
                    reason,
                    cpu_ms,
                })
                .await
            }
        }
    }
}

/// A worker script as the client sent it.
struct Script {
    script_url: String,
    source: String,
    imports: Vec<ScriptSource>,
    name: String,
    module: bool,
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
