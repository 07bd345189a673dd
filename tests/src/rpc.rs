//! A JSON command/event client over a websocket, speaking the shape that Chrome DevTools
//! Protocol and WebDriver BiDi share: commands `{id, method, params}` answered by a message
//! with the same `id`, and events `{method, params}` in between. One implementation drives
//! both browsers, so no heavy browser-automation crate is needed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

use crate::Error;

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>>;

/// How long any single command may take before the test fails with a clear error.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(90);

pub struct RpcClient {
    outgoing: mpsc::UnboundedSender<String>,
    pending: Pending,
    events: broadcast::Sender<Value>,
    next_id: AtomicU64,
}

impl RpcClient {
    pub async fn connect(url: &str) -> Result<Self, Error> {
        let (socket, _) = tokio_tungstenite::connect_async(url)
            .await
            .map_err(|e| Error::Browser(format!("cannot connect to {url}: {e}")))?;
        let (mut sink, mut stream) = socket.split();
        let (outgoing, mut rx) = mpsc::unbounded_channel::<String>();
        let pending: Pending = Arc::default();
        let (events, _) = broadcast::channel(4096);

        tokio::spawn(async move {
            while let Some(text) = rx.recv().await {
                if sink.send(Message::text(text)).await.is_err() {
                    break;
                }
            }
        });
        let reader_pending = pending.clone();
        let reader_events = events.clone();
        tokio::spawn(async move {
            while let Some(Ok(message)) = stream.next().await {
                let Message::Text(text) = message else {
                    continue;
                };
                let Ok(value) = serde_json::from_str::<Value>(text.as_str()) else {
                    continue;
                };
                let is_reply = value.get("id").and_then(Value::as_u64).filter(|_| {
                    // BiDi events have "type":"event"; CDP events have no id at all.
                    value.get("type").and_then(Value::as_str) != Some("event")
                });
                match is_reply {
                    Some(id) => {
                        let waiter = reader_pending.lock().ok().and_then(|mut p| p.remove(&id));
                        if let Some(waiter) = waiter {
                            let _ = waiter.send(value);
                        }
                    }
                    None => {
                        let _ = reader_events.send(value);
                    }
                }
            }
            // The browser went away: fail every waiting command at once.
            if let Ok(mut p) = reader_pending.lock() {
                p.clear();
            }
        });
        Ok(Self {
            outgoing,
            pending,
            events,
            next_id: AtomicU64::new(1),
        })
    }

    /// Subscribes to events; subscribe before sending the command that triggers them.
    pub fn events(&self) -> broadcast::Receiver<Value> {
        self.events.subscribe()
    }

    /// Sends a command and returns its `result`, or the protocol's error as `Err`.
    /// `extra` fields (e.g. CDP's `sessionId`) are merged into the command.
    pub async fn call(&self, method: &str, params: Value, extra: Value) -> Result<Value, Error> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut command = json!({"id": id, "method": method, "params": params});
        if let (Some(cmd), Some(extra)) = (command.as_object_mut(), extra.as_object()) {
            for (k, v) in extra {
                cmd.insert(k.clone(), v.clone());
            }
        }
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .map_err(|_| Error::Browser("rpc state poisoned".into()))?
            .insert(id, tx);
        self.outgoing
            .send(command.to_string())
            .map_err(|_| Error::Browser(format!("{method}: connection closed")))?;
        let reply = tokio::time::timeout(COMMAND_TIMEOUT, rx)
            .await
            .map_err(|_| Error::Timeout(format!("{method} did not answer")))?
            .map_err(|_| Error::Browser(format!("{method}: browser connection closed")))?;
        if let Some(error) = reply.get("error") {
            let message = reply
                .get("message")
                .or_else(|| error.get("message"))
                .cloned()
                .unwrap_or(Value::Null);
            return Err(Error::Browser(format!(
                "{method} failed: {error} {message}"
            )));
        }
        Ok(reply.get("result").cloned().unwrap_or(Value::Null))
    }
}
