//! The harness shared by the integration tests: a real [`Server`] on 127.0.0.1:0 driven
//! through the library, real executor processes (this package's binary), and a real
//! websocket client. Every wait has a deadline; nothing sleeps to synchronise.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use foresight_broker::node::{NodeBackend, NodeMode, NodeSettings};
use foresight_shared::protocol::broker::{EngineKind, encode_worker_frame};

use foresight_broker::{BrokerConfig, BrokerEvent, ExecutorCommand, Server, ServerHandle};
use foresight_shared::protocol::plan::ResourceAmounts;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::{broadcast, oneshot};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Generous: the suite must pass on a loaded 2-core machine. Passing tests never wait this
/// long; failing ones fail with a message instead of hanging.
pub const DEADLINE: Duration = Duration::from_secs(10);

pub const MIB: u64 = 1024 * 1024;

pub fn executor() -> ExecutorCommand {
    ExecutorCommand {
        program: env!("CARGO_BIN_EXE_foresight-broker").into(),
        args: vec!["executor".into()],
    }
}

/// The Node backend on this host, with every isolation layer required: a test that needs it
/// fails (never skips) when node or a layer is missing, saying which.
pub fn node_backend(pool_size: usize) -> Arc<NodeBackend> {
    let settings = NodeSettings {
        mode: NodeMode::On,
        pool_size,
        ..NodeSettings::default()
    };
    match NodeBackend::detect(settings, Path::new(env!("CARGO_BIN_EXE_foresight-broker"))) {
        Ok((Some(backend), _)) => backend,
        Ok((None, detection)) => panic!("Node backend off: {:?}", detection.problem),
        Err(e) => panic!("{e}"),
    }
}

/// The test broker with the Node backend, and Node as the default engine.
pub fn node_config(pool_size: usize) -> BrokerConfig {
    BrokerConfig {
        node: Some(node_backend(pool_size)),
        default_engine: EngineKind::Node,
        ..test_config()
    }
}

pub fn resources(cpu_millicores: u64, memory_bytes: u64) -> ResourceAmounts {
    ResourceAmounts {
        cpu_millicores,
        memory_bytes,
        bandwidth_bytes_per_s: 0,
    }
}

/// The tests' broker: a 2000-millicore, 256 MiB pool, 60 s leases at most, preemption
/// at once, half a second of notice on shutdown.
pub fn test_config() -> BrokerConfig {
    BrokerConfig {
        max_ttl_ms: 60_000,
        revoke_grace_ms: 0,
        shutdown_grace_ms: 500,
        ..BrokerConfig::new(resources(2000, 256 * MIB), executor())
    }
}

pub struct Broker {
    pub addr: SocketAddr,
    pub events: broadcast::Receiver<BrokerEvent>,
    pub handle: ServerHandle,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl Broker {
    /// A broker with a 2000-millicore, 256 MiB pool.
    pub async fn start() -> Self {
        Self::with_capacity(resources(2000, 256 * MIB)).await
    }

    pub async fn with_capacity(capacity: ResourceAmounts) -> Self {
        Self::with_config(BrokerConfig {
            capacity,
            ..test_config()
        })
        .await
    }

    pub async fn with_config(config: BrokerConfig) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let server = Server::new(config);
        let events = server.subscribe();
        let handle = server.handle();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run(listener, async {
            let _ = rx.await;
        }));
        Self {
            addr,
            events,
            handle,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    pub async fn connect(&self) -> Client {
        let url = format!("ws://{}", self.addr);
        let (ws, _) = tokio::time::timeout(DEADLINE, tokio_tungstenite::connect_async(url))
            .await
            .expect("connect in time")
            .expect("connect");
        Client { ws }
    }

    /// A client that has said hello.
    pub async fn client(&self) -> Client {
        let mut c = self.connect().await;
        let hello = c.hello().await;
        assert_eq!(hello["type"], "hello", "{hello}");
        c
    }

    /// The next event matching `pred`, skipping others.
    pub async fn event(&mut self, what: &str, pred: impl Fn(&BrokerEvent) -> bool) -> BrokerEvent {
        let wait = async {
            loop {
                match self.events.recv().await {
                    Ok(event) if pred(&event) => return event,
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        panic!("event stream lagged by {n} while waiting for {what}")
                    }
                    Err(broadcast::error::RecvError::Closed) => {
                        panic!("event stream closed while waiting for {what}")
                    }
                }
            }
        };
        tokio::time::timeout(DEADLINE, wait)
            .await
            .unwrap_or_else(|_| panic!("no {what} event within {DEADLINE:?}"))
    }

    /// Shuts the broker down and waits for `run` to return. Drop idle clients first: the
    /// broker gives each open connection a moment to answer its close frame.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(DEADLINE, task)
                .await
                .expect("shutdown in time")
                .expect("server task")
                .expect("server run");
        }
    }
}

pub struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Client {
    pub async fn send(&mut self, message: Value) {
        self.send_text(&message.to_string()).await;
    }

    pub async fn send_text(&mut self, text: &str) {
        tokio::time::timeout(DEADLINE, self.ws.send(Message::text(text)))
            .await
            .expect("send in time")
            .expect("send");
    }

    /// Sends `payload` (structured-clone bytes) to worker `worker_id` in a binary frame.
    pub async fn send_data(&mut self, worker_id: &str, payload: &[u8]) {
        let frame = encode_worker_frame(worker_id, payload);
        tokio::time::timeout(DEADLINE, self.ws.send(Message::binary(frame)))
            .await
            .expect("send in time")
            .expect("send");
    }

    /// The next websocket frame from the broker, whatever its kind.
    pub async fn frame(&mut self) -> Message {
        tokio::time::timeout(DEADLINE, self.ws.next())
            .await
            .unwrap_or_else(|_| panic!("no frame within {DEADLINE:?}"))
            .expect("connection open")
            .expect("websocket ok")
    }

    /// The next message from the broker, as JSON.
    pub async fn recv(&mut self) -> Value {
        loop {
            match self.frame().await {
                Message::Text(text) => {
                    return serde_json::from_str(text.as_str()).expect("broker sends JSON");
                }
                Message::Ping(_) | Message::Pong(_) => {}
                other => panic!("unexpected frame {other:?}"),
            }
        }
    }

    /// The next `worker_exited`, with the CPU time it reports (natural ends only) taken out,
    /// so it can be compared whole; the CPU time must be plausible when present.
    pub async fn exited(&mut self) -> Value {
        let mut m = self.expect("worker_exited").await;
        if let Some(cpu) = m.as_object_mut().and_then(|o| o.remove("cpu_ms")) {
            assert!(cpu.as_u64().is_some(), "cpu_ms {cpu}");
        }
        m
    }

    /// The next message, which must be of type `ty`.
    pub async fn expect(&mut self, ty: &str) -> Value {
        let message = self.recv().await;
        assert_eq!(message["type"], ty, "expected {ty}, got {message}");
        message
    }

    pub async fn request(&mut self, message: Value) -> Value {
        self.send(message).await;
        self.recv().await
    }

    pub async fn hello(&mut self) -> Value {
        self.request(json!({"type": "hello", "protocol_version": 1, "client": "test"}))
            .await
    }

    /// Asks for a lease and returns the answer (granted or denied).
    pub async fn lease_request(
        &mut self,
        request_id: u64,
        cpu: u64,
        memory: u64,
        ttl_ms: u64,
    ) -> Value {
        let answer = self
            .request(json!({
                "type": "lease_request",
                "request_id": request_id,
                "resources": {"cpu_millicores": cpu, "memory_bytes": memory},
                "ttl_ms": ttl_ms,
                "purpose": "test",
            }))
            .await;
        assert_eq!(answer["request_id"], request_id, "{answer}");
        answer
    }

    /// A granted lease's id.
    pub async fn lease(&mut self, cpu: u64, memory: u64, ttl_ms: u64) -> u64 {
        let answer = self.lease_request(1, cpu, memory, ttl_ms).await;
        assert_eq!(answer["type"], "lease_granted", "{answer}");
        answer["lease"]["lease_id"].as_u64().expect("lease id")
    }

    pub async fn spawn_worker(&mut self, lease_id: u64, worker_id: &str, source: &str) {
        self.send(json!({
            "type": "worker_spawn",
            "lease_id": lease_id,
            "worker_id": worker_id,
            "script_url": format!("https://example.test/{worker_id}.js"),
            "source": source,
        }))
        .await;
    }

    /// Spawns a worker and waits for `worker_started`.
    pub async fn started_worker(&mut self, lease_id: u64, worker_id: &str, source: &str) {
        self.spawn_worker(lease_id, worker_id, source).await;
        let started = self.expect("worker_started").await;
        assert_eq!(started["worker_id"], worker_id);
    }

    pub async fn post(&mut self, worker_id: &str, data: Value) {
        self.send(json!({"type": "worker_message", "worker_id": worker_id, "data": data}))
            .await;
    }

    /// Waits for the broker to close the connection, completing the close handshake.
    pub async fn closed(&mut self) {
        let wait = async {
            // Reading on after the close frame sends our reply; the stream then ends.
            while let Some(Ok(_)) = self.ws.next().await {}
        };
        tokio::time::timeout(DEADLINE, wait)
            .await
            .expect("connection closed in time");
    }
}

/// One HTTP/1.1 GET on a fresh connection: the status line and the body.
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> (String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .await
            .expect("write");
        let mut text = String::new();
        s.read_to_string(&mut text).await.expect("read");
        text
    };
    let text = tokio::time::timeout(DEADLINE, exchange)
        .await
        .expect("answered");
    let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
    (
        head.lines().next().unwrap_or_default().to_string(),
        body.to_string(),
    )
}
