//! Data channels (`data_channel_v1`, docs/PROTOCOL.md): a worker's data through a second
//! connection, closer to its page, while its control stays with the connection that owns it.
//!
//! The extension's background holds the broker connection that leases and spawns; a tab's
//! content script opens a data channel, and the background names the channel's id in
//! `worker_spawn`. Page <-> worker messages then skip the background (two hops through the
//! browser process each way).
//!
//! The worker still lives in its owner's task: its executor, its supervisor and its output
//! queue are the owner's, so leases, fencing, limits and kills work as for any worker. What
//! changes is where its output goes and where its input may come from:
//!
//! * The [`Registry`] (in the server's shared state) maps each open channel's id to its
//!   outbound queue and the workers bound to it (each with its executor's input).
//! * The owner pushes the worker's output into the channel's queue, in order: `worker_bound`
//!   first, then data frames, `worker_console`, `worker_error`, and `worker_exited` (which
//!   the owner also gets, for its bookkeeping). The channel's task sends what it dequeues.
//! * The channel posts page -> worker frames straight to the executor's input, under the
//!   channel connection's own rate and size limits; the owner refuses them for a bound
//!   worker, so the worker's input has exactly one ordered source.
//! * When the channel closes, each bound worker's owner is told
//!   ([`WorkerOutput::ChannelClosed`]): it kills the worker and reports `worker_exited` with
//!   `channel_closed`, which a client treats like a crash (the worker moves to the page).
//!
//! A channel id is 128 random bits: only the connection that opened the channel and whoever
//! it told can bind to it. A data channel carries no leases and spawns no workers.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use foresight_shared::protocol::ErrorCode;
use foresight_shared::protocol::broker::{ServerMessage, WorkerExitReason, decode_worker_frame};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use super::{Connection, SEND_TIMEOUT, WsResult};
use crate::events::BrokerEvent;
use crate::workers::{WorkerEvent, WorkerInput, WorkerOutput};

/// Messages waiting for a channel's socket; a full queue holds the owners' workers back, as
/// a slow socket holds back its own connection's.
const CHANNEL_QUEUE: usize = 256;

/// A worker bound to a channel, as the channel sees it.
struct Bound {
    owner_client: u64,
    /// The owner's worker-output queue: where the channel's end is reported.
    owner: mpsc::Sender<WorkerEvent>,
    serial: u64,
    input: WorkerInput,
}

struct Entry {
    client_id: u64,
    out: mpsc::Sender<Message>,
    workers: HashMap<String, Bound>,
}

/// The open data channels of one server, by id.
#[derive(Default)]
pub(crate) struct Registry {
    channels: Mutex<HashMap<String, Entry>>,
}

/// Why a worker could not be bound to a channel.
pub(crate) enum BindError {
    /// No open channel has that id.
    Unknown,
    /// The channel already carries a worker with that id (from another owner).
    Taken,
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        // Every operation leaves the map consistent before anything can panic.
        self.channels.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Opens a channel for connection `client_id`: its id and the receiving end of its queue.
    fn open(&self, client_id: u64) -> std::io::Result<(String, mpsc::Receiver<Message>)> {
        let (out, rx) = mpsc::channel(CHANNEL_QUEUE);
        let mut channels = self.lock();
        loop {
            let id = random_id()?;
            if channels.contains_key(&id) {
                continue;
            }
            channels.insert(
                id.clone(),
                Entry {
                    client_id,
                    out: out.clone(),
                    workers: HashMap::new(),
                },
            );
            return Ok((id, rx));
        }
    }

    /// Whether a channel with this id is open.
    pub(crate) fn contains(&self, channel_id: &str) -> bool {
        self.lock().contains_key(channel_id)
    }

    /// Binds a worker of `owner_client` to the channel: its output goes there from now on.
    pub(crate) fn bind(
        &self,
        channel_id: &str,
        worker_id: &str,
        owner_client: u64,
        owner: mpsc::Sender<WorkerEvent>,
        serial: u64,
        input: WorkerInput,
    ) -> Result<(u64, Link), BindError> {
        let mut channels = self.lock();
        let entry = channels.get_mut(channel_id).ok_or(BindError::Unknown)?;
        if entry.workers.contains_key(worker_id) {
            return Err(BindError::Taken);
        }
        entry.workers.insert(
            worker_id.to_string(),
            Bound {
                owner_client,
                owner,
                serial,
                input,
            },
        );
        Ok((
            entry.client_id,
            Link {
                channel_id: channel_id.to_string(),
                out: entry.out.clone(),
            },
        ))
    }

    /// A link to the channel for a worker it never carried (its spawn was refused), so the
    /// channel's side hears of its end too.
    pub(crate) fn link(&self, channel_id: &str) -> Option<Link> {
        self.lock().get(channel_id).map(|entry| Link {
            channel_id: channel_id.to_string(),
            out: entry.out.clone(),
        })
    }

    /// The worker no longer sends or receives through the channel (it ended).
    pub(crate) fn unbind(&self, channel_id: &str, worker_id: &str, owner_client: u64) {
        if let Some(entry) = self.lock().get_mut(channel_id)
            && entry
                .workers
                .get(worker_id)
                .is_some_and(|b| b.owner_client == owner_client)
        {
            entry.workers.remove(worker_id);
        }
    }

    /// The input of a worker bound to this channel.
    fn input(&self, channel_id: &str, worker_id: &str) -> Option<WorkerInput> {
        self.lock()
            .get(channel_id)?
            .workers
            .get(worker_id)
            .map(|b| b.input.clone())
    }

    /// Closes the channel: the workers that were bound to it.
    fn close(&self, channel_id: &str) -> Vec<(String, Bound)> {
        self.lock()
            .remove(channel_id)
            .map(|e| e.workers.into_iter().collect())
            .unwrap_or_default()
    }
}

/// The owner's side of a bound worker: where its output goes.
pub(crate) struct Link {
    pub(crate) channel_id: String,
    out: mpsc::Sender<Message>,
}

impl Link {
    /// Queues a message for the channel, in order, waiting while its queue is full. An
    /// error means the channel is gone; its end reaches the owner as
    /// [`WorkerOutput::ChannelClosed`].
    pub(crate) async fn send(&self, message: Message) -> bool {
        matches!(
            tokio::time::timeout(SEND_TIMEOUT, self.out.send(message)).await,
            Ok(Ok(()))
        )
    }

    pub(crate) async fn send_json(&self, message: &ServerMessage) -> bool {
        match serde_json::to_string(message) {
            Ok(text) => self.send(Message::text(text)).await,
            Err(_) => false,
        }
    }

    /// [`Link::send_json`] from code that cannot wait: a task delivers it.
    pub(crate) fn send_later(self, message: ServerMessage) {
        tokio::spawn(async move {
            self.send_json(&message).await;
        });
    }
}

/// This connection's side when it is a data channel.
pub(crate) struct ChannelSide {
    pub(crate) id: String,
    pub(crate) rx: mpsc::Receiver<Message>,
}

/// The next message for a data channel's socket; never, for other connections.
pub(super) async fn next_out(side: &mut Option<ChannelSide>) -> Option<Message> {
    match side {
        Some(side) => side.rx.recv().await,
        None => std::future::pending().await,
    }
}

/// 128 random bits, hex, from the kernel's generator.
fn random_id() -> std::io::Result<String> {
    let mut bytes = [0u8; 16];
    let mut filled = 0;
    while filled < bytes.len() {
        // SAFETY: the pointer and length describe the unfilled rest of `bytes`.
        let n = unsafe {
            libc::getrandom(bytes[filled..].as_mut_ptr().cast(), bytes.len() - filled, 0)
        };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        filled += n as usize;
    }
    let mut id = String::with_capacity(2 + 32);
    id.push_str("c-");
    for b in bytes {
        id.push_str(&format!("{b:02x}"));
    }
    Ok(id)
}

impl Connection {
    /// `hello` asked for the data-channel role: open the channel; its id goes in the reply.
    pub(super) fn open_channel(&mut self) -> std::io::Result<String> {
        let (id, rx) = self.shared.channels.open(self.client_id)?;
        self.shared.events.emit(BrokerEvent::DataChannelOpened {
            client_id: self.client_id,
        });
        self.channel = Some(ChannelSide { id: id.clone(), rx });
        Ok(id)
    }

    /// A message the channel's queue handed over: to the socket.
    pub(super) async fn send_queued(&mut self, message: Message) -> WsResult<()> {
        use futures_util::SinkExt;
        match tokio::time::timeout(SEND_TIMEOUT, self.ws.send(message)).await {
            Ok(sent) => sent,
            Err(_) => Err(tokio_tungstenite::tungstenite::Error::Io(
                std::io::Error::new(std::io::ErrorKind::TimedOut, "the client stopped reading"),
            )),
        }
    }

    /// A binary frame on a data channel: data for a worker bound to it, posted straight to
    /// the worker's executor.
    pub(super) async fn on_channel_binary(&mut self, frame: &[u8]) -> WsResult<()> {
        let (worker_id, data) = match decode_worker_frame(frame) {
            Ok(parts) => parts,
            Err(e) => {
                return self
                    .send_error(
                        ErrorCode::InvalidMessage,
                        format!("unreadable binary frame: {e}"),
                        None,
                    )
                    .await;
            }
        };
        let Some(channel_id) = self.channel.as_ref().map(|c| c.id.clone()) else {
            return Ok(());
        };
        let Some(input) = self.shared.channels.input(&channel_id, worker_id) else {
            let message = format!("no live worker {worker_id:?} is bound to this data channel");
            return self.send_error(ErrorCode::NotFound, message, None).await;
        };
        self.relay_to_worker(worker_id, data, Some(input)).await
    }

    /// The channel is closing: each bound worker's owner ends it and reports
    /// `channel_closed`.
    pub(super) async fn close_channel(&mut self) {
        let Some(ChannelSide { id, rx }) = self.channel.take() else {
            return;
        };
        // An owner waiting for room in the queue gives up at once (and so keeps draining its
        // workers' output, where the ends below go).
        drop(rx);
        for (worker_id, bound) in self.shared.channels.close(&id) {
            let event = WorkerEvent {
                serial: bound.serial,
                worker_id,
                output: WorkerOutput::ChannelClosed,
            };
            // An error means the owner is gone too, and its workers with it.
            let _ = tokio::time::timeout(SEND_TIMEOUT, bound.owner.send(event)).await;
        }
    }

    // --- The owner's side -----------------------------------------------------------------

    /// A spawn named a channel that is not open (or no longer): a typed refusal, then the
    /// worker's end, so the client moves it elsewhere.
    pub(super) async fn refuse_channel(
        &mut self,
        worker_id: String,
        channel_id: &str,
        why: &str,
    ) -> WsResult<()> {
        let message =
            format!("worker {worker_id:?} not started: data channel {channel_id:?} {why}");
        self.send_error(ErrorCode::NotFound, message, None).await?;
        self.send(ServerMessage::WorkerExited {
            worker_id,
            reason: WorkerExitReason::ChannelClosed,
            cpu_ms: None,
        })
        .await
    }

    /// The worker no longer uses its channel: the link, if it had one.
    pub(super) fn unbind(&mut self, worker_id: &str) -> Option<Link> {
        let link = self.bound.remove(worker_id)?;
        self.shared
            .channels
            .unbind(&link.channel_id, worker_id, self.client_id);
        Some(link)
    }

    /// Tells a bound worker's channel that it ended, without waiting (from code that cannot).
    pub(super) fn exited_to_channel_later(
        &mut self,
        worker_id: &str,
        reason: WorkerExitReason,
        cpu_ms: Option<u64>,
    ) {
        if let Some(link) = self.unbind(worker_id) {
            link.send_later(ServerMessage::WorkerExited {
                worker_id: worker_id.to_string(),
                reason,
                cpu_ms,
            });
        }
    }
}
