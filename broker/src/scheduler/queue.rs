//! The queue: fair order, head-of-line service and preemption for the best-ranked request.

use std::cmp::Reverse;

use foresight_shared::protocol::broker::{LeaseId, RevokeCause};
use foresight_shared::protocol::plan::ResourceAmounts;

use super::share::Share;
use super::{CLIENT_WEIGHT, DenyReason, Held, Notice, Scheduler, Waiting, deny};

impl Scheduler {
    /// Serves the queue in fair order until the best-ranked request does not fit.
    pub(super) fn dispatch(&mut self, now_ms: u64, out: &mut Vec<Notice>) {
        if self.draining {
            return;
        }
        while let Some(seq) = self.head() {
            let Some(head) = self.queue.get(&seq) else {
                break;
            };
            if head.want().fits_within(&self.free()) {
                let quota = self.quota_denial(head.client, &head.want());
                if let Some(w) = self.dequeue(seq) {
                    match quota {
                        // Its account took more meanwhile; waiting on would block the line.
                        Some(message) => deny(
                            out,
                            w.client,
                            w.request.request_id,
                            DenyReason::QuotaExceeded,
                            message,
                        ),
                        None => self.grant(w.client, w.request, now_ms, out),
                    }
                }
                continue;
            }
            if !self.preempt_for(seq, now_ms, out) {
                break;
            }
        }
    }

    /// The best-ranked queued request.
    pub(super) fn head(&self) -> Option<u64> {
        let capacity = self.config.capacity;
        self.queue
            .values()
            .map(|w| (self.rank(w, &capacity), w.seq))
            .min()
            .map(|(_, seq)| seq)
    }

    /// The queue's order: smaller is served first (ties go to the older `seq`).
    pub(super) fn rank(&self, w: &Waiting, capacity: &ResourceAmounts) -> (Reverse<u8>, Share) {
        let book = self.books.get(&w.client);
        let account = book
            .and_then(|b| b.account)
            .and_then(|a| self.accounts.get(&a));
        let (usage, weight) = match account {
            Some(a) => (a.usage, a.weight),
            None => (book.map(|b| b.usage).unwrap_or_default(), CLIENT_WEIGHT),
        };
        (
            Reverse(w.request.priority),
            Share::weighted(&usage, capacity, weight),
        )
    }

    /// 1 + the number of queued requests ranked ahead of `seq`.
    pub(super) fn position(&self, seq: u64) -> u64 {
        let capacity = self.config.capacity;
        let Some(me) = self.queue.get(&seq) else {
            return 0;
        };
        let mine = (self.rank(me, &capacity), seq);
        1 + self
            .queue
            .values()
            .filter(|w| (self.rank(w, &capacity), w.seq) < mine)
            .count() as u64
    }

    pub(super) fn dequeue(&mut self, seq: u64) -> Option<Waiting> {
        let w = self.queue.remove(&seq)?;
        self.queue_deadlines.remove(&(w.deadline_ms, seq));
        if let Some(book) = self.books.get_mut(&w.client) {
            book.queued.remove(&seq);
        }
        Some(w)
    }

    /// Revokes leases of lower priority so that the queued request `seq` fits once their
    /// grace ends. Returns whether resources were freed right now (grace 0), i.e. whether
    /// the queue is worth serving again.
    pub(super) fn preempt_for(&mut self, seq: u64, now_ms: u64, out: &mut Vec<Notice>) -> bool {
        let grace = self.config.revoke_grace_ms;
        let Some(w) = self.queue.get(&seq) else {
            return false;
        };
        if w.request.priority == 0 || (w.request.max_wait_ms == 0 && grace > 0) {
            return false;
        }
        let want = w.want();
        let priority = w.request.priority;
        // Freed once the revocations already under way end.
        let pending = self.free().saturating_add(&self.revoking);
        if want.fits_within(&pending) {
            return false;
        }
        let deficit = want.saturating_sub(&pending);
        let mut candidates: Vec<&Held> = self
            .leases
            .values()
            .filter(|h| h.revoking.is_none() && h.priority < priority)
            .collect();
        candidates.sort_by_key(|h| (h.priority, Reverse(h.lease.lease_id)));
        // All or nothing: revoking leases that still would not make room helps nobody.
        let Some(victims) = cover(&deficit, candidates.into_iter()) else {
            return false;
        };
        for lease_id in victims {
            self.revoke(lease_id, RevokeCause::Preempted, grace, now_ms, out);
        }
        grace == 0
    }
}

/// Picks leases, in the given order, that together cover `need` (skipping those that do not
/// help); `None` if all of them do not.
pub(super) fn cover<'a>(
    need: &ResourceAmounts,
    candidates: impl Iterator<Item = &'a Held>,
) -> Option<Vec<LeaseId>> {
    let mut left = *need;
    let mut chosen = Vec::new();
    for h in candidates {
        if left.is_zero() {
            break;
        }
        let r = &h.lease.resources;
        let helps = (left.cpu_millicores > 0 && r.cpu_millicores > 0)
            || (left.memory_bytes > 0 && r.memory_bytes > 0)
            || (left.bandwidth_bytes_per_s > 0 && r.bandwidth_bytes_per_s > 0);
        if helps {
            left = left.saturating_sub(r);
            chosen.push(h.lease.lease_id);
        }
    }
    left.is_zero().then_some(chosen)
}
