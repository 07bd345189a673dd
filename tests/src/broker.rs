//! The real broker in a scenario: the `foresight-broker` library serving on an ephemeral
//! loopback port, running workers in executor processes of the real `foresight-broker`
//! binary, with every event it emits recorded as broker-side evidence.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use foresight_broker::node::{NodeBackend, NodeMode, NodeSettings};
use foresight_broker::{BrokerConfig, BrokerEvent, ExecutorCommand, Server};
use foresight_shared::protocol::broker::EngineKind;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::Error;
use crate::artifacts::Artifacts;

pub struct LocalBroker {
    pub addr: SocketAddr,
    history: Arc<Mutex<Vec<BrokerEvent>>>,
    changed: watch::Receiver<usize>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
}

impl LocalBroker {
    /// A broker whose default engine is `engine`. With [`EngineKind::Node`] the Node backend
    /// is on with every isolation layer required (a host without one fails the test, saying
    /// which), and engines are not calibrated, so the extension leaves the choice to the
    /// broker's default: every worker runs on Node.
    /// `max_connections`, when given, limits the connections it accepts at once.
    pub async fn start(
        artifacts: &Artifacts,
        engine: EngineKind,
        max_connections: Option<usize>,
    ) -> Result<Self, Error> {
        let executor = ExecutorCommand {
            program: artifacts.broker_binary(),
            args: vec!["executor".into()],
        };
        let mut config = BrokerConfig::detect(executor);
        if let Some(max) = max_connections {
            config.limits.max_connections = max;
        }
        if engine == EngineKind::Node {
            let settings = NodeSettings {
                mode: NodeMode::On,
                ..NodeSettings::default()
            };
            let (node, _) = NodeBackend::detect(settings, &artifacts.broker_binary())
                .map_err(|e| Error::Setup(format!("the Node backend: {e}")))?;
            config.node = node;
            config.default_engine = EngineKind::Node;
        }
        let server = Server::new(config);
        let mut events = server.subscribe();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
        let server = tokio::spawn(server.run(listener, async {
            let _ = shutdown_rx.await;
        }));

        let history: Arc<Mutex<Vec<BrokerEvent>>> = Arc::default();
        let (changed_tx, changed) = watch::channel(0usize);
        let recorder = history.clone();
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(event) => {
                        let len = recorder
                            .lock()
                            .map(|mut h| {
                                h.push(event);
                                h.len()
                            })
                            .unwrap_or(0);
                        let _ = changed_tx.send(len);
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(_) => break,
                }
            }
        });
        Ok(Self {
            addr,
            history,
            changed,
            shutdown: Some(shutdown_tx),
            server: Some(server),
        })
    }

    pub fn url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// Every event so far.
    pub fn events(&self) -> Vec<BrokerEvent> {
        self.history.lock().map(|h| h.clone()).unwrap_or_default()
    }

    /// Waits for the first event (at or after index `skip`) for which `pick` returns
    /// `Some`, and returns that value with the event's index.
    pub async fn wait_for<T>(
        &mut self,
        what: &str,
        skip: usize,
        deadline: Duration,
        mut pick: impl FnMut(&BrokerEvent) -> Option<T>,
    ) -> Result<(usize, T), Error> {
        let search = async {
            loop {
                let found = self.history.lock().ok().and_then(|h| {
                    h.iter()
                        .enumerate()
                        .skip(skip)
                        .find_map(|(i, e)| pick(e).map(|t| (i, t)))
                });
                if let Some(found) = found {
                    return Ok(found);
                }
                if self.changed.changed().await.is_err() {
                    return Err(Error::Setup("the broker's event stream ended".into()));
                }
            }
        };
        tokio::time::timeout(deadline, search)
            .await
            .map_err(|_| Error::Timeout(format!("the broker never reported {what}")))?
    }

    /// Graceful shutdown: clients are told, the listener closes.
    pub async fn stop(&mut self) -> Result<(), Error> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            tokio::time::timeout(Duration::from_secs(20), server)
                .await
                .map_err(|_| Error::Timeout("the broker did not shut down".into()))?
                .map_err(|e| Error::Setup(format!("broker task failed: {e}")))??;
        }
        Ok(())
    }
}
