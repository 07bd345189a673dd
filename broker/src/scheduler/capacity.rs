//! The pool's size and who may use how much of it: capacity changes, the shutdown drain,
//! and accounts with quotas.

use std::cmp::Reverse;

use foresight_shared::protocol::broker::{DenyReason, LeaseId, RevokeCause};
use foresight_shared::protocol::plan::ResourceAmounts;

use super::queue::cover;
use super::{ClientId, EndReason, Held, Notice, Scheduler, deny, describe};

impl Scheduler {
    /// Puts `client` (before it holds anything) in `account`, whose leases together may
    /// hold at most `quota` and whose fair share counts `weight` times a lone client's.
    pub fn join_account(
        &mut self,
        client: ClientId,
        account: u64,
        quota: Option<ResourceAmounts>,
        weight: u64,
    ) {
        let a = self.accounts.entry(account).or_default();
        a.quota = quota;
        a.weight = weight.max(1);
        self.books.entry(client).or_default().account = Some(account);
    }

    /// What `client`'s account may still be granted; `None` without an account.
    pub(super) fn room(&self, client: ClientId) -> Option<ResourceAmounts> {
        let account = self.books.get(&client)?.account?;
        let a = self.accounts.get(&account)?;
        Some(a.quota?.saturating_sub(&a.usage))
    }

    pub(super) fn quota_denial(&self, client: ClientId, want: &ResourceAmounts) -> Option<String> {
        let room = self.room(client)?;
        (!want.fits_within(&room)).then(|| {
            format!(
                "requested {} but your quota has only {} left; release leases or ask for less",
                describe(want),
                describe(&room)
            )
        })
    }

    /// Changes the pool. New grants see the new size at once. Leases that no longer fit are
    /// revoked lowest priority and newest first (those already being revoked count first):
    /// at once when `grace_ms` is 0, otherwise with that much notice, the pool shrinking when
    /// they have ended. Queued requests that can never fit now are denied; growth serves the
    /// queue.
    pub fn set_capacity(
        &mut self,
        capacity: ResourceAmounts,
        grace_ms: u64,
        now_ms: u64,
        out: &mut Vec<Notice>,
    ) {
        self.advance(now_ms, out);
        if grace_ms == 0 || self.granted.fits_within(&capacity) {
            self.config.capacity = capacity;
            self.shrink_to = None;
        } else {
            self.shrink_to = Some(capacity);
        }
        if !self.granted.fits_within(&capacity) {
            let over = self.granted.saturating_sub(&capacity);
            let mut candidates: Vec<&Held> = self.leases.values().collect();
            candidates
                .sort_by_key(|h| (h.revoking.is_none(), h.priority, Reverse(h.lease.lease_id)));
            let victims = cover(&over, candidates.into_iter()).unwrap_or_default();
            for lease_id in victims {
                if grace_ms == 0 {
                    let reason = EndReason::Revoked(RevokeCause::CapacityReduced);
                    self.end(lease_id, Some(reason), out);
                } else if self
                    .leases
                    .get(&lease_id)
                    .is_some_and(|h| h.revoking.is_none())
                {
                    self.revoke(
                        lease_id,
                        RevokeCause::CapacityReduced,
                        grace_ms,
                        now_ms,
                        out,
                    );
                }
            }
        }
        let ceiling = self.ceiling();
        let infeasible: Vec<u64> = self
            .queue
            .values()
            .filter(|w| !w.want().fits_within(&ceiling))
            .map(|w| w.seq)
            .collect();
        for seq in infeasible {
            if let Some(w) = self.dequeue(seq) {
                let message = format!(
                    "the pool shrank to {}, less than the {} requested",
                    describe(&ceiling),
                    describe(&w.want())
                );
                deny(
                    out,
                    w.client,
                    w.request.request_id,
                    DenyReason::Infeasible,
                    message,
                );
            }
        }
        self.dispatch(now_ms, out);
    }

    /// Shutdown: grant nothing more, deny everything queued, and revoke every lease with
    /// `grace_ms` of notice so clients can finish or move their work.
    pub fn drain(&mut self, grace_ms: u64, now_ms: u64, out: &mut Vec<Notice>) {
        self.advance(now_ms, out);
        self.draining = true;
        let queued: Vec<u64> = self.queue.keys().copied().collect();
        for seq in queued {
            if let Some(w) = self.dequeue(seq) {
                deny(
                    out,
                    w.client,
                    w.request.request_id,
                    DenyReason::ShuttingDown,
                    "the broker is shutting down".into(),
                );
            }
        }
        let mut ids: Vec<LeaseId> = self.leases.keys().copied().collect();
        ids.sort_unstable();
        for lease_id in ids {
            self.revoke(lease_id, RevokeCause::ShuttingDown, grace_ms, now_ms, out);
        }
    }
}
