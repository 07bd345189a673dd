//! Another tenant of the scenario's broker: a plain websocket client of our own that holds
//! leases beside the extension's, so that tests can fill the pool (a second page's request
//! then waits in the queue) or preempt the page (a request of higher priority). It speaks
//! `docs/PROTOCOL.md` channel 2 as any other client would.

use std::time::Duration;

use foresight_shared::protocol::plan::ResourceAmounts;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::Error;

const ANSWER_DEADLINE: Duration = Duration::from_secs(30);

pub struct LeaseClient {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// The pool's capacity, as the broker announced it in `hello`.
    pub capacity: ResourceAmounts,
    next_request: u64,
}

impl LeaseClient {
    pub async fn connect(url: &str) -> Result<Self, Error> {
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .map_err(|e| Error::Setup(format!("cannot connect to the broker: {e}")))?;
        let mut client = Self {
            ws,
            capacity: ResourceAmounts::default(),
            next_request: 1,
        };
        client
            .send(
                json!({"type": "hello", "protocol_version": 1, "client": "foresight-tests tenant"}),
            )
            .await?;
        let hello = client.recv().await?;
        client.capacity = serde_json::from_value(hello["capacity"].clone())
            .map_err(|e| Error::Setup(format!("hello without a capacity ({e}): {hello}")))?;
        Ok(client)
    }

    /// Requests a lease and returns the final answer (`lease_granted` or `lease_denied`),
    /// waiting through `lease_queued` up to `max_wait_ms`.
    pub async fn lease(
        &mut self,
        resources: ResourceAmounts,
        priority: u8,
        max_wait_ms: u64,
    ) -> Result<Value, Error> {
        let request_id = self.next_request;
        self.next_request += 1;
        self.send(json!({
            "type": "lease_request",
            "request_id": request_id,
            "resources": resources,
            "ttl_ms": 120_000,
            "priority": priority,
            "purpose": "foresight-tests tenant",
            "max_wait_ms": max_wait_ms,
        }))
        .await?;
        loop {
            let answer = self.recv().await?;
            if answer["request_id"] != request_id {
                continue;
            }
            match answer["type"].as_str() {
                Some("lease_granted" | "lease_denied") => return Ok(answer),
                Some("lease_queued") => continue,
                _ => {
                    return Err(Error::Setup(format!(
                        "unexpected answer to a lease request: {answer}"
                    )));
                }
            }
        }
    }

    pub async fn release(&mut self, lease_id: u64) -> Result<(), Error> {
        self.send(json!({"type": "lease_release", "lease_id": lease_id}))
            .await
    }

    async fn send(&mut self, message: Value) -> Result<(), Error> {
        self.ws
            .send(Message::text(message.to_string()))
            .await
            .map_err(|e| Error::Setup(format!("broker connection: {e}")))
    }

    async fn recv(&mut self) -> Result<Value, Error> {
        loop {
            let frame = tokio::time::timeout(ANSWER_DEADLINE, self.ws.next())
                .await
                .map_err(|_| Error::Timeout("the broker did not answer the tenant".into()))?
                .ok_or_else(|| Error::Setup("the broker closed the tenant's connection".into()))?
                .map_err(|e| Error::Setup(format!("broker connection: {e}")))?;
            if let Message::Text(text) = frame {
                return serde_json::from_str(text.as_str())
                    .map_err(|e| Error::Setup(format!("broker sent invalid JSON: {e}")));
            }
        }
    }
}
