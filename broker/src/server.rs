//! [`Server`]: accepts websocket clients on a listener it is given and shuts down gracefully
//! when the future it is given completes (the mini-redis shape: the binary, the tests and the
//! demo each bring their own listener and shutdown signal).
//!
//! Shutdown: stop accepting, tell every connection (each ends its leases with
//! `lease_ended{shutting_down}`, kills its workers and closes), then wait for all of them.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinSet;

use crate::config::BrokerConfig;
use crate::connection;
use crate::events::{BrokerEvent, Events, LeaseEndCause};
use crate::leases::LeasePool;

/// Pause after a failed `accept` (e.g. out of file descriptors) before trying again, so the
/// loop does not spin while the condition lasts.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// What every connection of one server shares.
pub(crate) struct Shared {
    pub(crate) config: BrokerConfig,
    pub(crate) events: Events,
    pool: Mutex<LeasePool>,
}

impl Shared {
    /// The pool. Never held across an `.await`; a panic elsewhere does not make the table
    /// unusable (every mutation keeps it consistent before anything can panic).
    pub(crate) fn pool(&self) -> MutexGuard<'_, LeasePool> {
        self.pool.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The broker: a lease pool and the clients using it.
pub struct Server {
    shared: Arc<Shared>,
}

impl Server {
    pub fn new(config: BrokerConfig) -> Self {
        let pool = LeasePool::new(config.capacity, config.max_ttl_ms);
        Self {
            shared: Arc::new(Shared {
                config,
                events: Events::new(),
                pool: Mutex::new(pool),
            }),
        }
    }

    /// Broker-side events from now on. Subscribe before [`Server::run`] to see everything.
    pub fn subscribe(&self) -> broadcast::Receiver<BrokerEvent> {
        self.shared.events.subscribe()
    }

    pub fn config(&self) -> &BrokerConfig {
        &self.shared.config
    }

    /// Serves clients from `listener` until `shutdown` completes, then ends every lease,
    /// worker and connection and returns.
    pub async fn run(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        let (stop, _) = watch::channel(false);
        let mut connections = JoinSet::new();
        let mut clients = HashMap::new();
        let mut next_client_id = 1u64;
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let client_id = next_client_id;
                        next_client_id += 1;
                        // Small JSON messages, answered at once: do not wait to coalesce.
                        if let Err(e) = stream.set_nodelay(true) {
                            tracing::debug!("set_nodelay: {e}");
                        }
                        let task = connection::serve(
                            self.shared.clone(),
                            stream,
                            peer,
                            client_id,
                            stop.subscribe(),
                        );
                        clients.insert(connections.spawn(task).id(), client_id);
                    }
                    Err(e) => {
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                    }
                },
                Some(joined) = connections.join_next_with_id(), if !connections.is_empty() => {
                    self.reap(joined, &mut clients);
                }
            }
        }
        drop(listener);
        tracing::info!("shutting down: ending {} connection(s)", connections.len());
        let _ = stop.send(true);
        while let Some(joined) = connections.join_next_with_id().await {
            self.reap(joined, &mut clients);
        }
        Ok(())
    }

    /// Forgets a finished connection task. One that panicked may have left leases behind;
    /// they are released here so the pool does not shrink for good. (Its workers died with
    /// it: their processes are killed when their handles drop.)
    fn reap(
        &self,
        joined: Result<(tokio::task::Id, ()), tokio::task::JoinError>,
        clients: &mut HashMap<tokio::task::Id, u64>,
    ) {
        let (id, panicked) = match joined {
            Ok((id, ())) => (id, false),
            Err(e) => (e.id(), true),
        };
        let client_id = clients.remove(&id);
        if let (true, Some(client_id)) = (panicked, client_id) {
            tracing::error!(client_id, "connection task failed; releasing its leases");
            let leases = self.shared.pool().release_all(client_id);
            for lease in leases {
                self.shared.events.emit(BrokerEvent::LeaseEnded {
                    client_id,
                    lease_id: lease.lease_id,
                    cause: LeaseEndCause::Disconnected,
                });
            }
            self.shared
                .events
                .emit(BrokerEvent::ClientDisconnected { client_id });
        }
    }
}
