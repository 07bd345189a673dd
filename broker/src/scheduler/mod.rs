//! The lease engine: the pool, its leases, the queue, fair share, preemption and fencing.
//!
//! Pure bookkeeping: no I/O, no clock, no threads. Every operation takes `now_ms` (the
//! broker's clock, milliseconds since the Unix epoch) and appends what it decided to a
//! `Vec<Notice>`, each addressed to one client, in the order the client must hear them. The
//! server delivers them; the tests read them.
//!
//! The rules (ARCHITECTURE.md states them as invariants):
//!
//! * **Never over-commit.** The sum of all leases, including those being revoked, never
//!   exceeds the capacity. [`Scheduler::check`] recomputes everything and says what is wrong;
//!   a property test runs it after every step of random operation sequences.
//! * **Always an answer.** A request is granted, denied or — only when it allows waiting with
//!   `max_wait_ms` — queued; a queued request is granted or denied within its wait. A request
//!   that can never fit (more than the whole pool) is denied at once.
//! * **Fair order.** Queued requests are served by priority, then by Dominant Resource
//!   Fairness among clients ([`share`]), then oldest first. Priority is strict between
//!   classes rather than a DRF weight because preemption obeys priority: were a priority-9
//!   request ranked behind a priority-0 client with a smaller share, the broker would grant
//!   the latter and revoke it at once for the former. Priority thus weighs infinitely;
//!   weighted DRF decides within a class, the weights being the accounts' (hosted tokens),
//!   1 for a client without one.
//!   The best-ranked request that does not fit blocks those behind it (no backfilling), so a
//!   large request is never starved by a stream of small ones. A new request that would jump
//!   the line waits like the rest.
//! * **Preemption with notice.** When the best-ranked request cannot fit, leases of strictly
//!   lower priority are revoked (lowest priority first, newest first) — but only if that makes
//!   it fit. A revoked lease gets `Revoking` with a deadline `revoke_grace_ms` away (or ends at
//!   once when the grace is 0) and keeps its resources until then, so nothing over-commits.
//!   A request that does not wait cannot preempt with a grace period.
//! * **TTLs are never changed silently.** A TTL outside `1..=max_ttl_ms` is refused with the
//!   reason, for grants and renewals alike.
//! * **Fencing.** Every grant carries an epoch larger than any before it.
//! * **Accounts.** Clients may belong to an account (a hosted broker's token). Its leases
//!   together never exceed its quota: a request that would is denied (`quota_exceeded`), at
//!   once or when it reaches the head of the queue; a partial grant is cut to the quota. DRF
//!   then counts the account's holdings, divided by its weight, for all its connections, so
//!   opening more connections buys no larger share.
//! * **Capacity changes** take effect for new grants at once. Leases that no longer fit are
//!   revoked (`capacity_reduced`) lowest priority and newest first: at once when the grace is
//!   0 (the resources are gone), otherwise with notice, the pool itself shrinking when they
//!   have ended — so the invariant holds against the pool that really exists meanwhile.
//!   With autoscaling ([`scaling`]) a request is infeasible only beyond the largest pool.

mod capacity;
mod check;
mod estimate;
#[cfg(test)]
mod props;
mod queue;
pub mod scaling;
pub(crate) mod share;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use foresight_shared::protocol::broker::{DenyReason, Lease, LeaseId, RevokeCause};
use foresight_shared::protocol::plan::ResourceAmounts;

/// Every client's DRF weight, until hosted mode gives tokens their own.
const CLIENT_WEIGHT: u64 = 1;

/// Identifies a connection; the server assigns them.
pub type ClientId = u64;

/// Limits of the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchedulerConfig {
    pub capacity: ResourceAmounts,
    /// The largest the pool may grow (autoscaling); requests beyond it are infeasible.
    /// `None`: the pool is what it is.
    pub ceiling: Option<ResourceAmounts>,
    /// The longest TTL granted or renewed.
    pub max_ttl_ms: u64,
    /// Notice given before a preempted lease ends (0: it ends at once).
    pub revoke_grace_ms: u64,
    /// The longest `max_wait_ms` a request may ask for.
    pub max_wait_ms: u64,
    /// Queued requests, all clients together.
    pub max_queue: usize,
    /// Queued requests of one client.
    pub max_queued_per_client: usize,
}

/// A request for a lease, as the engine sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRequest {
    pub request_id: u64,
    pub resources: ResourceAmounts,
    /// Accept anything between this and `resources`.
    pub min_resources: Option<ResourceAmounts>,
    pub ttl_ms: u64,
    /// 0 (lowest) to 9; larger values count as 9.
    pub priority: u8,
    /// 0: answer at once.
    pub max_wait_ms: u64,
    pub purpose: String,
}

/// Why a lease ended without its owner releasing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    Expired,
    Revoked(RevokeCause),
    /// Its connection went away; nobody is told.
    Disconnected,
}

/// Something a client must hear, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoticeKind {
    Granted {
        request_id: u64,
        lease: Lease,
        purpose: String,
    },
    Queued {
        request_id: u64,
        position: u64,
        estimated_wait_ms: Option<u64>,
    },
    Denied {
        request_id: u64,
        reason: DenyReason,
        message: String,
    },
    Renewed {
        lease_id: LeaseId,
        expires_at_ms: u64,
    },
    Released {
        lease_id: LeaseId,
    },
    Revoking {
        lease_id: LeaseId,
        cause: RevokeCause,
        ends_at_ms: u64,
    },
    Ended {
        lease_id: LeaseId,
        reason: EndReason,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub client: ClientId,
    pub kind: NoticeKind,
}

/// Why a renewal was refused; the lease keeps its deadline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RenewError {
    /// No live lease with that id belongs to the caller.
    NotFound,
    /// The lease is being revoked and ends at this time regardless.
    Revoking { ends_at_ms: u64 },
    /// The requested TTL is outside the broker's rule.
    InvalidTtl(String),
}

#[derive(Debug, Clone)]
struct Held {
    owner: ClientId,
    lease: Lease,
    priority: u8,
    /// When it leaves the pool: its deadline, or the end of its revocation.
    due_ms: u64,
    revoking: Option<RevokeCause>,
}

#[derive(Debug, Clone)]
struct Waiting {
    seq: u64,
    client: ClientId,
    request: LeaseRequest,
    deadline_ms: u64,
    since_ms: u64,
}

impl Waiting {
    /// The least this request accepts.
    fn want(&self) -> ResourceAmounts {
        self.request.min_resources.unwrap_or(self.request.resources)
    }
}

#[derive(Debug, Default, Clone)]
struct Book {
    usage: ResourceAmounts,
    leases: BTreeSet<LeaseId>,
    queued: BTreeSet<u64>,
    account: Option<u64>,
}

/// Clients that share a quota and a fair share (one hosted token).
#[derive(Debug, Default, Clone)]
struct Account {
    quota: Option<ResourceAmounts>,
    weight: u64,
    usage: ResourceAmounts,
}

/// The engine. See the module documentation for its rules.
#[derive(Debug)]
pub struct Scheduler {
    config: SchedulerConfig,
    /// Granted to leases, including those being revoked.
    granted: ResourceAmounts,
    /// Granted to leases being revoked: free once their grace ends.
    revoking: ResourceAmounts,
    leases: HashMap<LeaseId, Held>,
    /// `(due_ms, lease)` for every lease.
    due: BTreeSet<(u64, LeaseId)>,
    queue: BTreeMap<u64, Waiting>,
    /// `(deadline_ms, seq)` for every queued request.
    queue_deadlines: BTreeSet<(u64, u64)>,
    books: HashMap<ClientId, Book>,
    accounts: HashMap<u64, Account>,
    next_lease_id: LeaseId,
    last_epoch: u64,
    next_seq: u64,
    draining: bool,
    /// A smaller pool announced with notice: new grants already see it; the pool shrinks to
    /// it once the leases revoked for it have ended.
    shrink_to: Option<ResourceAmounts>,
}

impl Scheduler {
    pub fn new(config: SchedulerConfig) -> Self {
        Self {
            config,
            granted: ResourceAmounts::default(),
            revoking: ResourceAmounts::default(),
            leases: HashMap::new(),
            due: BTreeSet::new(),
            queue: BTreeMap::new(),
            queue_deadlines: BTreeSet::new(),
            books: HashMap::new(),
            accounts: HashMap::new(),
            next_lease_id: 1,
            last_epoch: 0,
            next_seq: 1,
            draining: false,
            shrink_to: None,
        }
    }

    /// The pool as new grants see it (a shrink under way already counts).
    pub fn capacity(&self) -> ResourceAmounts {
        match &self.shrink_to {
            Some(target) => min_each(&self.config.capacity, target),
            None => self.config.capacity,
        }
    }

    /// The largest pool a request may count on.
    pub fn ceiling(&self) -> ResourceAmounts {
        match self.config.ceiling {
            Some(ceiling) => ceiling,
            None => self.capacity(),
        }
    }

    /// The sum of what queued requests need at least.
    pub fn queued_demand(&self) -> ResourceAmounts {
        self.queue
            .values()
            .fold(ResourceAmounts::default(), |acc, w| {
                acc.saturating_add(&w.want())
            })
    }

    pub fn config(&self) -> &SchedulerConfig {
        &self.config
    }

    /// The sum of all live leases (including those being revoked).
    pub fn granted(&self) -> ResourceAmounts {
        self.granted
    }

    pub fn free(&self) -> ResourceAmounts {
        self.capacity().saturating_sub(&self.granted)
    }

    pub fn lease_count(&self) -> usize {
        self.leases.len()
    }

    pub fn queue_len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_draining(&self) -> bool {
        self.draining
    }

    /// `client`'s live lease with this id.
    pub fn lease(&self, client: ClientId, lease_id: LeaseId) -> Option<&Lease> {
        self.leases
            .get(&lease_id)
            .filter(|h| h.owner == client)
            .map(|h| &h.lease)
    }

    /// The number of live leases `client` holds.
    pub fn leases_of(&self, client: ClientId) -> usize {
        self.books.get(&client).map_or(0, |b| b.leases.len())
    }

    /// When [`Scheduler::advance`] next has something to do.
    pub fn next_deadline(&self) -> Option<u64> {
        let lease = self.due.first().map(|(t, _)| *t);
        let queued = self.queue_deadlines.first().map(|(t, _)| *t);
        match (lease, queued) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    // --- Operations -----------------------------------------------------------------------

    /// Brings the engine to `now_ms`: leases past their deadline or revocation end, queued
    /// requests past their wait; then serves the queue. Every other operation starts with it.
    pub fn advance(&mut self, now_ms: u64, out: &mut Vec<Notice>) {
        let mut changed = false;
        while let Some(&(t, lease_id)) = self.due.first() {
            if t > now_ms {
                break;
            }
            let reason = match self.leases.get(&lease_id).and_then(|h| h.revoking) {
                Some(cause) => EndReason::Revoked(cause),
                None => EndReason::Expired,
            };
            self.end(lease_id, Some(reason), out);
            changed = true;
        }
        if changed {
            self.dispatch(now_ms, out);
        }
        let mut timed_out = false;
        while let Some(&(t, seq)) = self.queue_deadlines.first() {
            if t > now_ms {
                break;
            }
            if let Some(w) = self.dequeue(seq) {
                let waited = now_ms.saturating_sub(w.since_ms);
                let message = format!(
                    "no capacity for {} within the {} ms the request would wait (waited {waited} \
                     ms; {} is free now)",
                    describe(&w.want()),
                    w.request.max_wait_ms,
                    describe(&self.free())
                );
                deny(
                    out,
                    w.client,
                    w.request.request_id,
                    DenyReason::InsufficientCapacity,
                    message,
                );
            }
            timed_out = true;
        }
        if timed_out {
            // The request that timed out may have been blocking others.
            self.dispatch(now_ms, out);
        }
    }

    /// Answers a lease request: granted, denied, or (if it allows waiting) queued.
    pub fn request(
        &mut self,
        client: ClientId,
        mut request: LeaseRequest,
        now_ms: u64,
        out: &mut Vec<Notice>,
    ) {
        self.advance(now_ms, out);
        request.priority = request.priority.min(9);
        let request_id = request.request_id;
        if let Err((reason, message)) = self.validate(&request) {
            deny(out, client, request_id, reason, message);
            return;
        }
        let want = request.min_resources.unwrap_or(request.resources);
        if let Some(message) = self.quota_denial(client, &want) {
            deny(out, client, request_id, DenyReason::QuotaExceeded, message);
            return;
        }
        // The common case, cheaply: nobody waits and it fits.
        if self.queue.is_empty() && want.fits_within(&self.free()) {
            self.grant(client, request, now_ms, out);
            return;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let deadline_ms = now_ms.saturating_add(request.max_wait_ms);
        let max_wait_ms = request.max_wait_ms;
        self.queue.insert(
            seq,
            Waiting {
                seq,
                client,
                request,
                deadline_ms,
                since_ms: now_ms,
            },
        );
        self.queue_deadlines.insert((deadline_ms, seq));
        self.books.entry(client).or_default().queued.insert(seq);
        self.dispatch(now_ms, out);
        if !self.queue.contains_key(&seq) {
            return; // granted
        }
        let position = self.position(seq);
        let over_limit = self.queue.len() > self.config.max_queue
            || self
                .books
                .get(&client)
                .is_some_and(|b| b.queued.len() > self.config.max_queued_per_client);
        if max_wait_ms == 0 || over_limit {
            let free = self.free();
            let message = if max_wait_ms == 0 {
                format!(
                    "requested {} but only {} is free now ({} request(s) ahead); retry later, \
                     ask for less, or allow waiting with max_wait_ms",
                    describe(&want),
                    describe(&free),
                    position - 1
                )
            } else {
                "the broker's queue is full; retry later".to_string()
            };
            self.dequeue(seq);
            deny(
                out,
                client,
                request_id,
                DenyReason::InsufficientCapacity,
                message,
            );
            // Leaving may unblock those behind (it may have been the best-ranked).
            self.dispatch(now_ms, out);
            return;
        }
        let estimated_wait_ms = self.estimate_wait(seq, now_ms);
        out.push(Notice {
            client,
            kind: NoticeKind::Queued {
                request_id,
                position,
                estimated_wait_ms,
            },
        });
    }

    /// Keepalive: renews every lease of `client` that is not being revoked for its own TTL
    /// (as if `lease_renew` were sent with the same `ttl_ms`), telling it each new deadline.
    pub fn renew_all(&mut self, client: ClientId, now_ms: u64, out: &mut Vec<Notice>) {
        self.advance(now_ms, out);
        let leases: Vec<LeaseId> = self
            .books
            .get(&client)
            .map(|b| b.leases.iter().copied().collect())
            .unwrap_or_default();
        for lease_id in leases {
            let Some(held) = self.leases.get_mut(&lease_id) else {
                continue;
            };
            if held.revoking.is_some() {
                continue;
            }
            let expires_at_ms = now_ms.saturating_add(held.lease.ttl_ms);
            self.due.remove(&(held.due_ms, lease_id));
            held.due_ms = expires_at_ms;
            held.lease.expires_at_ms = expires_at_ms;
            self.due.insert((expires_at_ms, lease_id));
            out.push(Notice {
                client,
                kind: NoticeKind::Renewed {
                    lease_id,
                    expires_at_ms,
                },
            });
        }
    }

    /// Moves the deadline of `client`'s lease to `now_ms + ttl_ms`.
    pub fn renew(
        &mut self,
        client: ClientId,
        lease_id: LeaseId,
        ttl_ms: u64,
        now_ms: u64,
        out: &mut Vec<Notice>,
    ) -> Result<(), RenewError> {
        self.advance(now_ms, out);
        let max_ttl_ms = self.config.max_ttl_ms;
        let held = match self.leases.get_mut(&lease_id) {
            Some(h) if h.owner == client => h,
            _ => return Err(RenewError::NotFound),
        };
        if held.revoking.is_some() {
            return Err(RenewError::Revoking {
                ends_at_ms: held.due_ms,
            });
        }
        check_ttl(ttl_ms, max_ttl_ms).map_err(RenewError::InvalidTtl)?;
        let expires_at_ms = now_ms.saturating_add(ttl_ms);
        self.due.remove(&(held.due_ms, lease_id));
        held.due_ms = expires_at_ms;
        held.lease.ttl_ms = ttl_ms;
        held.lease.expires_at_ms = expires_at_ms;
        self.due.insert((expires_at_ms, lease_id));
        out.push(Notice {
            client,
            kind: NoticeKind::Renewed {
                lease_id,
                expires_at_ms,
            },
        });
        Ok(())
    }

    /// Ends `client`'s lease at its request. `false` if it holds no such lease.
    pub fn release(
        &mut self,
        client: ClientId,
        lease_id: LeaseId,
        now_ms: u64,
        out: &mut Vec<Notice>,
    ) -> bool {
        self.advance(now_ms, out);
        if self.lease(client, lease_id).is_none() {
            return false;
        }
        self.end(lease_id, None, out);
        self.dispatch(now_ms, out);
        true
    }

    /// The client is gone: its queued requests are dropped and its leases end
    /// ([`EndReason::Disconnected`]), which may serve others.
    pub fn disconnect(&mut self, client: ClientId, now_ms: u64, out: &mut Vec<Notice>) {
        self.advance(now_ms, out);
        if let Some(book) = self.books.get(&client) {
            let queued: Vec<u64> = book.queued.iter().copied().collect();
            let leases: Vec<LeaseId> = book.leases.iter().copied().collect();
            for seq in queued {
                self.dequeue(seq);
            }
            for lease_id in leases {
                self.end(lease_id, Some(EndReason::Disconnected), out);
            }
        }
        self.books.remove(&client);
        self.dispatch(now_ms, out);
    }

    /// Ends every lease of `client` at once with `reason` (shutdown's last step).
    pub fn end_all(&mut self, client: ClientId, reason: EndReason, out: &mut Vec<Notice>) {
        let leases: Vec<LeaseId> = self
            .books
            .get(&client)
            .map(|b| b.leases.iter().copied().collect())
            .unwrap_or_default();
        for lease_id in leases {
            self.end(lease_id, Some(reason), out);
        }
    }

    // --- Leases ---------------------------------------------------------------------------

    fn validate(&self, request: &LeaseRequest) -> Result<(), (DenyReason, String)> {
        let invalid = |m: String| (DenyReason::InvalidRequest, m);
        if self.draining {
            return Err((
                DenyReason::ShuttingDown,
                "the broker is shutting down".into(),
            ));
        }
        check_ttl(request.ttl_ms, self.config.max_ttl_ms).map_err(invalid)?;
        if request.resources.is_zero() {
            return Err(invalid("the requested resources are all zero".into()));
        }
        if let Some(min) = &request.min_resources {
            if min.is_zero() {
                return Err(invalid(
                    "min_resources are all zero; ask for at least something".into(),
                ));
            }
            if !min.fits_within(&request.resources) {
                return Err(invalid("min_resources exceed resources".into()));
            }
        }
        if request.max_wait_ms > self.config.max_wait_ms {
            return Err(invalid(format!(
                "max_wait_ms {} exceeds this broker's maximum of {} ms",
                request.max_wait_ms, self.config.max_wait_ms
            )));
        }
        let want = request.min_resources.unwrap_or(request.resources);
        let ceiling = self.ceiling();
        if !want.fits_within(&ceiling) {
            return Err((
                DenyReason::Infeasible,
                format!(
                    "requested {} exceeds the pool's total capacity of {}",
                    describe(&want),
                    describe(&ceiling)
                ),
            ));
        }
        Ok(())
    }

    /// Grants `request` (whose minimum fits what is free): as much of it as is free.
    fn grant(
        &mut self,
        client: ClientId,
        request: LeaseRequest,
        now_ms: u64,
        out: &mut Vec<Notice>,
    ) {
        let mut free = self.free();
        if let Some(room) = self.room(client) {
            free = min_each(&free, &room);
        }
        let resources = match request.min_resources {
            Some(_) => min_each(&request.resources, &free),
            None => request.resources,
        };
        self.last_epoch += 1;
        let lease = Lease {
            lease_id: self.next_lease_id,
            resources,
            ttl_ms: request.ttl_ms,
            expires_at_ms: now_ms.saturating_add(request.ttl_ms),
            epoch: self.last_epoch,
        };
        self.next_lease_id += 1;
        self.granted = self.granted.saturating_add(&resources);
        let book = self.books.entry(client).or_default();
        book.usage = book.usage.saturating_add(&resources);
        book.leases.insert(lease.lease_id);
        if let Some(account) = book.account.and_then(|a| self.accounts.get_mut(&a)) {
            account.usage = account.usage.saturating_add(&resources);
        }
        self.due.insert((lease.expires_at_ms, lease.lease_id));
        self.leases.insert(
            lease.lease_id,
            Held {
                owner: client,
                lease: lease.clone(),
                priority: request.priority,
                due_ms: lease.expires_at_ms,
                revoking: None,
            },
        );
        out.push(Notice {
            client,
            kind: NoticeKind::Granted {
                request_id: request.request_id,
                lease,
                purpose: request.purpose,
            },
        });
    }

    /// Starts taking a lease back: it ends `grace_ms` from now (or at its own deadline, if
    /// sooner), keeping its resources until then.
    fn revoke(
        &mut self,
        lease_id: LeaseId,
        cause: RevokeCause,
        grace_ms: u64,
        now_ms: u64,
        out: &mut Vec<Notice>,
    ) {
        if grace_ms == 0 {
            self.end(lease_id, Some(EndReason::Revoked(cause)), out);
            return;
        }
        let Some(held) = self.leases.get_mut(&lease_id) else {
            return;
        };
        let ends_at_ms = now_ms.saturating_add(grace_ms).min(held.due_ms);
        if held.revoking.is_none() {
            self.revoking = self.revoking.saturating_add(&held.lease.resources);
        }
        held.revoking = Some(cause);
        self.due.remove(&(held.due_ms, lease_id));
        held.due_ms = ends_at_ms;
        self.due.insert((ends_at_ms, lease_id));
        out.push(Notice {
            client: held.owner,
            kind: NoticeKind::Revoking {
                lease_id,
                cause,
                ends_at_ms,
            },
        });
    }

    /// Removes a lease from the pool; `None` means its owner released it.
    fn end(&mut self, lease_id: LeaseId, reason: Option<EndReason>, out: &mut Vec<Notice>) {
        let Some(held) = self.leases.remove(&lease_id) else {
            return;
        };
        let resources = held.lease.resources;
        self.due.remove(&(held.due_ms, lease_id));
        self.granted = self.granted.saturating_sub(&resources);
        if held.revoking.is_some() {
            self.revoking = self.revoking.saturating_sub(&resources);
        }
        if let Some(book) = self.books.get_mut(&held.owner) {
            book.usage = book.usage.saturating_sub(&resources);
            book.leases.remove(&lease_id);
            if let Some(account) = book.account.and_then(|a| self.accounts.get_mut(&a)) {
                account.usage = account.usage.saturating_sub(&resources);
            }
        }
        if let Some(target) = self.shrink_to
            && self.granted.fits_within(&target)
        {
            self.config.capacity = target;
            self.shrink_to = None;
        }
        let kind = match reason {
            None => NoticeKind::Released { lease_id },
            Some(reason) => NoticeKind::Ended { lease_id, reason },
        };
        out.push(Notice {
            client: held.owner,
            kind,
        });
    }
}

/// The TTL rule, for new leases and renewals alike: refused with the reason, never changed.
fn check_ttl(ttl_ms: u64, max_ttl_ms: u64) -> Result<(), String> {
    if ttl_ms == 0 {
        return Err("ttl_ms must be at least 1".to_string());
    }
    if ttl_ms > max_ttl_ms {
        return Err(format!(
            "ttl_ms {ttl_ms} exceeds this broker's maximum of {max_ttl_ms} ms; ask for at most \
             that and renew before it runs out"
        ));
    }
    Ok(())
}

fn deny(
    out: &mut Vec<Notice>,
    client: ClientId,
    request_id: u64,
    reason: DenyReason,
    message: String,
) {
    out.push(Notice {
        client,
        kind: NoticeKind::Denied {
            request_id,
            reason,
            message,
        },
    });
}

fn min_each(a: &ResourceAmounts, b: &ResourceAmounts) -> ResourceAmounts {
    ResourceAmounts {
        cpu_millicores: a.cpu_millicores.min(b.cpu_millicores),
        memory_bytes: a.memory_bytes.min(b.memory_bytes),
        bandwidth_bytes_per_s: a.bandwidth_bytes_per_s.min(b.bandwidth_bytes_per_s),
    }
}

pub(crate) fn describe(r: &ResourceAmounts) -> String {
    format!(
        "{} millicores, {} bytes of memory, {} B/s of bandwidth",
        r.cpu_millicores, r.memory_bytes, r.bandwidth_bytes_per_s
    )
}
