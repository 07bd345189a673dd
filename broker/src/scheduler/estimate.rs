//! The estimated wait sent with `lease_queued`.
//!
//! A simulation of the queue as things stand: leases end at their deadlines (or revocation
//! ends) and nobody renews, releases early, arrives or preempts; requests ahead are served in
//! today's fair order as room appears, holding what they get for their TTL. That is an
//! honest guess, not a promise — early releases make it shorter, renewals longer. The
//! request's own `max_wait_ms` is the bound the client can rely on.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use foresight_shared::protocol::plan::ResourceAmounts;

use super::{Scheduler, Waiting, min_each};

/// Past this many queued requests the estimate is not worth its cost.
const MAX_SIMULATED_QUEUE: usize = 1024;

impl Scheduler {
    pub(super) fn estimate_wait(&self, seq: u64, now_ms: u64) -> Option<u64> {
        if self.queue.len() > MAX_SIMULATED_QUEUE {
            return None;
        }
        let capacity = self.config.capacity;
        let mut order: Vec<&Waiting> = self.queue.values().collect();
        order.sort_by_cached_key(|w| (self.rank(w, &capacity), w.seq));
        let mut free = self.free();
        // (when, index into `amounts`): resources coming back.
        let mut amounts: Vec<ResourceAmounts> = Vec::with_capacity(self.leases.len());
        let mut returns = BinaryHeap::with_capacity(self.leases.len());
        for held in self.leases.values() {
            returns.push(Reverse((held.due_ms, amounts.len())));
            amounts.push(held.lease.resources);
        }
        let mut t = now_ms;
        let mut next = 0;
        loop {
            while let Some(w) = order.get(next) {
                if !w.want().fits_within(&free) {
                    break;
                }
                let got = match w.request.min_resources {
                    Some(_) => min_each(&w.request.resources, &free),
                    None => w.request.resources,
                };
                if w.seq == seq {
                    return Some(t.saturating_sub(now_ms));
                }
                free = free.saturating_sub(&got);
                returns.push(Reverse((t.saturating_add(w.request.ttl_ms), amounts.len())));
                amounts.push(got);
                next += 1;
            }
            let Reverse((when, index)) = returns.pop()?;
            t = t.max(when);
            free = free.saturating_add(&amounts[index]);
        }
    }
}
