//! [`Server`]: accepts websocket clients on a listener it is given and shuts down gracefully
//! when the future it is given completes (the mini-redis shape: the binary, the tests and the
//! demo each bring their own listener and shutdown signal).
//!
//! The lease engine ([`crate::scheduler`]) sits behind one mutex, held only for an operation
//! and never across an `.await`. What an operation decides is delivered while the lock is
//! still held: an event per notice, and the notice itself into its client's outbox (an
//! unbounded channel each connection drains in order). Delivering under the lock is what
//! keeps every client's notices in the engine's order, whichever task caused them. A timer
//! task sleeps until the engine's next deadline (an expiry, the end of a revocation, a
//! queued request's wait) and advances it.
//!
//! Shutdown: stop accepting; revoke every lease with `shutdown_grace_ms` of notice
//! (`lease_revoking`, queued requests denied, nothing granted any more); once every lease
//! is released or ended, or the notice ran out, tell every connection to end its remaining
//! leases with `lease_ended{shutting_down}`, kill its workers and close; wait for them all.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use foresight_shared::protocol::broker::RevokeCause;
use foresight_shared::protocol::plan::ResourceAmounts;
use tokio::net::TcpListener;
use tokio::sync::{Notify, broadcast, mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::admission::Seats;
use crate::config::BrokerConfig;
use crate::connection;
use crate::events::{BrokerEvent, Events, LeaseEndCause};
use crate::metrics::Counters;
use crate::scheduler::scaling::Autoscaler;
use crate::scheduler::{ClientId, EndReason, Notice, NoticeKind, Scheduler};

/// Pause after a failed `accept` (e.g. out of file descriptors) before trying again, so the
/// loop does not spin while the condition lasts.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The broker's clock: milliseconds since the Unix epoch, read once at start and advanced by
/// tokio's monotonic clock, so lease deadlines do not jump with the wall clock (and tests
/// can pause time).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    wall_ms: u64,
    start: Instant,
}

impl Clock {
    fn new() -> Self {
        let wall_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Self {
            wall_ms,
            start: Instant::now(),
        }
    }

    pub(crate) fn now_ms(&self) -> u64 {
        let elapsed = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.wall_ms.saturating_add(elapsed)
    }

    fn instant_at(&self, ms: u64) -> Instant {
        self.start + Duration::from_millis(ms.saturating_sub(self.wall_ms))
    }
}

struct Core {
    scheduler: Scheduler,
    /// Sizes the pool with demand, when configured.
    autoscaler: Option<Autoscaler>,
    outboxes: HashMap<ClientId, mpsc::UnboundedSender<NoticeKind>>,
    /// The deadline the timer task sleeps until.
    armed: Option<u64>,
    /// Reused for every operation's notices.
    scratch: Vec<Notice>,
}

/// What every connection of one server shares.
pub(crate) struct Shared {
    pub(crate) config: BrokerConfig,
    pub(crate) events: Events,
    pub(crate) clock: Clock,
    core: Mutex<Core>,
    /// Wakes the timer task: the engine's next deadline moved earlier.
    timer: Notify,
    /// Wakes shutdown: the last lease is gone.
    drained: Notify,
    /// Open connections per access token.
    pub(crate) seats: Seats,
    pub(crate) counters: Counters,
    /// The engines' calibration, for `hello`.
    pub(crate) engine_table: crate::engines::EngineTable,
    /// The open data channels, by id.
    pub(crate) channels: connection::channel::Registry,
    /// Connections made on the data-channel URL, open now (capped: `admission::max_channels`).
    pub(crate) open_channels: std::sync::atomic::AtomicUsize,
}

impl Shared {
    fn core(&self) -> MutexGuard<'_, Core> {
        // Every engine operation keeps the tables consistent before anything can panic.
        self.core.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A client's outbox: the notices meant for it, in order.
    pub(crate) fn register(&self, client: ClientId) -> mpsc::UnboundedReceiver<NoticeKind> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.core().outboxes.insert(client, tx);
        rx
    }

    /// The client is gone: drop its queued requests, end its leases (events only).
    pub(crate) fn disconnect(&self, client: ClientId) {
        self.core().outboxes.remove(&client);
        self.schedule(|s, now, out| s.disconnect(client, now, out));
    }

    /// Runs an engine operation at the current time and delivers what it decided.
    pub(crate) fn schedule<T>(
        &self,
        op: impl FnOnce(&mut Scheduler, u64, &mut Vec<Notice>) -> T,
    ) -> T {
        self.run(None, op)
    }

    /// [`Shared::schedule`] on behalf of `client`, whose notices — those already in its
    /// outbox, then this operation's — are handed back in `mine` instead of going through
    /// its outbox. Taking the outbox's contents under the lock keeps the engine's order;
    /// skipping the channel spares the connection a wake-up per request.
    pub(crate) fn schedule_for<T>(
        &self,
        client: ClientId,
        outbox: &mut mpsc::UnboundedReceiver<NoticeKind>,
        mine: &mut Vec<NoticeKind>,
        op: impl FnOnce(&mut Scheduler, u64, &mut Vec<Notice>) -> T,
    ) -> T {
        self.run(Some((client, outbox, mine)), op)
    }

    fn run<T>(
        &self,
        mut caller: Option<(
            ClientId,
            &mut mpsc::UnboundedReceiver<NoticeKind>,
            &mut Vec<NoticeKind>,
        )>,
        op: impl FnOnce(&mut Scheduler, u64, &mut Vec<Notice>) -> T,
    ) -> T {
        let now = self.clock.now_ms();
        let mut core = self.core();
        if let Some((_, outbox, mine)) = caller.as_mut() {
            while let Ok(earlier) = outbox.try_recv() {
                mine.push(earlier);
            }
        }
        let mut out = std::mem::take(&mut core.scratch);
        let result = op(&mut core.scheduler, now, &mut out);
        let resized = self.autoscale(&mut core, now, &mut out);
        for notice in out.drain(..) {
            self.emit(&notice);
            match caller.as_mut() {
                Some((client, _, mine)) if *client == notice.client => mine.push(notice.kind),
                _ => {
                    if let Some(outbox) = core.outboxes.get(&notice.client) {
                        // An error means the connection is on its way out.
                        let _ = outbox.send(notice.kind);
                    }
                }
            }
        }
        core.scratch = out;
        if let Some(capacity) = resized {
            self.events.emit(BrokerEvent::PoolResized { capacity });
        }
        let next = Self::next_deadline(&core);
        // Against the pool that exists: during a shrink with notice it is still the old one.
        debug_assert!(
            core.scheduler
                .granted()
                .fits_within(&core.scheduler.config().capacity),
            "over-committed"
        );
        if let Some(next) = next
            && core.armed.is_none_or(|armed| next < armed)
        {
            core.armed = Some(next);
            self.timer.notify_one();
        }
        if core.scheduler.is_draining() && core.scheduler.lease_count() == 0 {
            self.drained.notify_one();
        }
        result
    }

    /// Lets the autoscaler resize the pool after an operation; returns the new size.
    fn autoscale(
        &self,
        core: &mut Core,
        now: u64,
        out: &mut Vec<Notice>,
    ) -> Option<ResourceAmounts> {
        let Core {
            scheduler,
            autoscaler,
            ..
        } = core;
        let autoscaler = autoscaler.as_mut()?;
        let queued = scheduler.queue_len();
        let waiting = if queued > 0 {
            scheduler.queued_demand()
        } else {
            ResourceAmounts::default()
        };
        let capacity = autoscaler.decide(&scheduler.granted(), &waiting, queued, now)?;
        scheduler.set_capacity(capacity, self.config.revoke_grace_ms, now, out);
        Some(capacity)
    }

    /// The earliest time the timer has something to do.
    fn next_deadline(core: &Core) -> Option<u64> {
        let engine = core.scheduler.next_deadline();
        let scaling = core.autoscaler.as_ref().and_then(Autoscaler::next_check);
        match (engine, scaling) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn emit(&self, notice: &Notice) {
        self.counters.count(&notice.kind);
        if !self.events.wanted() {
            return;
        }
        let client_id = notice.client;
        let event = match &notice.kind {
            NoticeKind::Granted { lease, purpose, .. } => BrokerEvent::LeaseGranted {
                client_id,
                lease: lease.clone(),
                purpose: purpose.clone(),
            },
            NoticeKind::Denied {
                reason, message, ..
            } => BrokerEvent::LeaseDenied {
                client_id,
                reason: *reason,
                message: message.clone(),
            },
            NoticeKind::Queued {
                request_id,
                position,
                ..
            } => BrokerEvent::LeaseQueued {
                client_id,
                request_id: *request_id,
                position: *position,
            },
            NoticeKind::Revoking {
                lease_id,
                cause,
                ends_at_ms,
            } => BrokerEvent::LeaseRevoking {
                client_id,
                lease_id: *lease_id,
                cause: *cause,
                ends_at_ms: *ends_at_ms,
            },
            NoticeKind::Released { lease_id } => BrokerEvent::LeaseEnded {
                client_id,
                lease_id: *lease_id,
                cause: LeaseEndCause::Released,
            },
            NoticeKind::Ended { lease_id, reason } => BrokerEvent::LeaseEnded {
                client_id,
                lease_id: *lease_id,
                cause: match reason {
                    EndReason::Expired => LeaseEndCause::Expired,
                    EndReason::Disconnected => LeaseEndCause::Disconnected,
                    EndReason::Revoked(RevokeCause::ShuttingDown) => LeaseEndCause::ShuttingDown,
                    EndReason::Revoked(_) => LeaseEndCause::Revoked,
                },
            },
            NoticeKind::Renewed { .. } => return,
        };
        self.events.emit(event);
    }

    /// Advances the engine whenever its next deadline comes, until `stop`.
    async fn run_timer(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        loop {
            let next = {
                let mut core = self.core();
                core.armed = Self::next_deadline(&core);
                core.armed
            };
            let sleep = async {
                match next {
                    Some(ms) => tokio::time::sleep_until(self.clock.instant_at(ms)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = sleep => self.schedule(|s, now, out| s.advance(now, out)),
                () = self.timer.notified() => {}
                _ = stop.changed() => return,
            }
        }
    }
}

/// A snapshot of the pool, for tests, benchmarks and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolStats {
    pub capacity: ResourceAmounts,
    pub granted: ResourceAmounts,
    pub leases: usize,
    pub queued: usize,
}

/// Control of a running server from outside its connections: the pool's size, its state.
#[derive(Clone)]
pub struct ServerHandle {
    shared: Arc<Shared>,
}

impl ServerHandle {
    /// Resizes the pool (for a fixed pool; an autoscaler overrides it at its next
    /// decision). New grants see the new size at once; leases that no longer fit get
    /// `revoke_grace_ms` of notice (`lease_revoking`, then `lease_ended{revoked}`), or end
    /// at once when that is 0; queued requests that can never fit now are denied.
    pub fn set_capacity(&self, capacity: ResourceAmounts) {
        let grace = self.shared.config.revoke_grace_ms;
        self.shared
            .schedule(|s, now, out| s.set_capacity(capacity, grace, now, out));
        self.shared
            .events
            .emit(BrokerEvent::PoolResized { capacity });
    }

    pub fn stats(&self) -> PoolStats {
        self.shared.schedule(|s, now, out| {
            s.advance(now, out);
            PoolStats {
                capacity: s.capacity(),
                granted: s.granted(),
                leases: s.lease_count(),
                queued: s.queue_len(),
            }
        })
    }

    /// Open client connections (those that finished the handshake).
    pub fn connections(&self) -> usize {
        self.shared.core().outboxes.len()
    }

    pub(crate) fn counters(&self) -> &Counters {
        &self.shared.counters
    }

    /// The Node backend, when enabled.
    pub fn node(&self) -> Option<std::sync::Arc<crate::node::NodeBackend>> {
        self.shared.config.node.clone()
    }

    /// Serves Prometheus metrics (`GET /metrics`) on `listener` until `shutdown` completes.
    pub async fn serve_metrics(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        crate::metrics::serve(self, listener, shutdown).await
    }

    /// Recomputes the engine's totals and indexes; `Err` says what disagrees.
    pub fn check(&self) -> Result<(), String> {
        self.shared.schedule(|s, _, _| s.check())
    }
}

/// The broker: a lease engine and the clients using it.
pub struct Server {
    shared: Arc<Shared>,
}

impl Server {
    pub fn new(config: BrokerConfig) -> Self {
        let scheduler = Scheduler::new(config.scheduler());
        let autoscaler = config.scaling.clone().map(Autoscaler::new);
        Self {
            shared: Arc::new(Shared {
                config,
                events: Events::new(),
                clock: Clock::new(),
                core: Mutex::new(Core {
                    scheduler,
                    autoscaler,
                    outboxes: HashMap::new(),
                    armed: None,
                    scratch: Vec::new(),
                }),
                timer: Notify::new(),
                drained: Notify::new(),
                seats: Seats::default(),
                counters: Counters::default(),
                engine_table: Default::default(),
                channels: Default::default(),
                open_channels: Default::default(),
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

    /// A handle that outlives [`Server::run`]'s borrow: resize the pool, read its state.
    pub fn handle(&self) -> ServerHandle {
        ServerHandle {
            shared: self.shared.clone(),
        }
    }

    /// Serves clients from `listener` until `shutdown` completes, then drains and ends every
    /// lease, worker and connection and returns.
    pub async fn run(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        let (stop, _) = watch::channel(false);
        let (stop_timer, _) = watch::channel(false);
        let timer = tokio::spawn(self.shared.clone().run_timer(stop_timer.subscribe()));
        if let Some(node) = &self.shared.config.node {
            node.start_pool();
        }
        let calibration = self
            .shared
            .config
            .calibrate
            .then(|| tokio::spawn(crate::engines::calibrate(self.shared.clone())));
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
                        // Past the limit it is still accepted, to be refused with a 503.
                        let busy =
                            connections.len() >= self.shared.config.limits.max_connections;
                        let task = connection::serve(
                            self.shared.clone(),
                            stream,
                            peer,
                            client_id,
                            busy,
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
        self.drain(&mut connections, &mut clients).await;
        tracing::info!("shutting down: ending {} connection(s)", connections.len());
        let _ = stop.send(true);
        while let Some(joined) = connections.join_next_with_id().await {
            self.reap(joined, &mut clients);
        }
        let _ = stop_timer.send(true);
        let _ = timer.await;
        if let Some(calibration) = calibration {
            calibration.abort();
            let _ = calibration.await;
        }
        if let Some(node) = &self.shared.config.node {
            node.drain().await;
        }
        Ok(())
    }

    /// Revokes every lease with notice and waits until they are all gone or the notice has
    /// run out, still reaping connections that leave meanwhile.
    async fn drain(
        &self,
        connections: &mut JoinSet<()>,
        clients: &mut HashMap<tokio::task::Id, u64>,
    ) {
        let grace = self.shared.config.shutdown_grace_ms;
        let leases = self.shared.schedule(|s, now, out| {
            s.drain(grace, now, out);
            s.lease_count()
        });
        if leases == 0 {
            return;
        }
        tracing::info!("draining {leases} lease(s) for up to {grace} ms");
        let deadline = tokio::time::sleep(Duration::from_millis(grace));
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                () = &mut deadline => return,
                () = self.shared.drained.notified() => {
                    if self.shared.schedule(|s, _, _| s.lease_count()) == 0 {
                        return;
                    }
                }
                Some(joined) = connections.join_next_with_id(), if !connections.is_empty() => {
                    self.reap(joined, clients);
                }
            }
        }
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
            self.shared.disconnect(client_id);
            self.shared
                .events
                .emit(BrokerEvent::ClientDisconnected { client_id });
        }
    }
}

#[cfg(test)]
mod tests {
    //! The timer's wiring, on tokio's paused clock: deadlines fire exactly when due, not
    //! before, with no real waiting.

    use super::*;
    use crate::config::ExecutorCommand;
    use crate::scheduler::LeaseRequest;

    fn shared() -> Arc<Shared> {
        let mut config = BrokerConfig::new(
            ResourceAmounts {
                cpu_millicores: 1000,
                memory_bytes: 1 << 30,
                bandwidth_bytes_per_s: 0,
            },
            ExecutorCommand {
                program: "unused".into(),
                args: vec![],
            },
        );
        config.max_ttl_ms = 120_000;
        Server::new(config).handle().shared
    }

    fn request(request_id: u64, ttl_ms: u64, max_wait_ms: u64) -> LeaseRequest {
        LeaseRequest {
            request_id,
            resources: ResourceAmounts {
                cpu_millicores: 1000,
                memory_bytes: 1,
                bandwidth_bytes_per_s: 0,
            },
            min_resources: None,
            ttl_ms,
            priority: 0,
            max_wait_ms,
            purpose: String::new(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn leases_expire_when_due_and_renewals_move_the_deadline() {
        let shared = shared();
        let (stop, stop_rx) = watch::channel(false);
        let timer = tokio::spawn(shared.clone().run_timer(stop_rx));
        let mut outbox = shared.register(1);
        let start = Instant::now();
        shared.schedule(|s, now, out| s.request(1, request(1, 30_000, 0), now, out));
        let Some(NoticeKind::Granted { lease, .. }) = outbox.recv().await else {
            panic!("not granted");
        };
        // Twenty seconds in, renew for thirty more: it must not expire at thirty.
        tokio::time::sleep(Duration::from_secs(20)).await;
        let renewed = shared.schedule(|s, now, out| s.renew(1, lease.lease_id, 30_000, now, out));
        assert_eq!(renewed, Ok(()));
        assert!(matches!(
            outbox.recv().await,
            Some(NoticeKind::Renewed { .. })
        ));
        let ended = outbox.recv().await;
        assert_eq!(
            ended,
            Some(NoticeKind::Ended {
                lease_id: lease.lease_id,
                reason: EndReason::Expired
            })
        );
        assert_eq!(start.elapsed(), Duration::from_secs(50));

        // A queued request that nobody makes room for is denied when its wait ends.
        let mut other = shared.register(2);
        shared.schedule(|s, now, out| s.request(1, request(2, 60_000, 0), now, out));
        shared.schedule(|s, now, out| s.request(2, request(3, 1_000, 5_000), now, out));
        let queued_at = Instant::now();
        assert!(matches!(
            outbox.recv().await,
            Some(NoticeKind::Granted { .. })
        ));
        assert!(matches!(
            other.recv().await,
            Some(NoticeKind::Queued { .. })
        ));
        let denied = other.recv().await;
        assert!(
            matches!(denied, Some(NoticeKind::Denied { request_id: 3, .. })),
            "{denied:?}"
        );
        assert_eq!(queued_at.elapsed(), Duration::from_secs(5));
        let _ = stop.send(true);
        timer.await.unwrap();
    }
}
