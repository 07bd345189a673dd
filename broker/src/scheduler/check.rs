//! [`Scheduler::check`]: every total and index recomputed from the tables.

use std::collections::HashMap;

use foresight_shared::protocol::plan::ResourceAmounts;

use super::{ClientId, Scheduler, describe};

impl Scheduler {
    // --- Checking -------------------------------------------------------------------------

    /// Recomputes every total and index from the tables; `Err` says what disagrees. The
    /// capacity invariant is the first check.
    pub fn check(&self) -> Result<(), String> {
        let mut sum = ResourceAmounts::default();
        let mut revoking = ResourceAmounts::default();
        let mut usage: HashMap<ClientId, ResourceAmounts> = HashMap::new();
        for (id, h) in &self.leases {
            sum = sum.saturating_add(&h.lease.resources);
            if h.revoking.is_some() {
                revoking = revoking.saturating_add(&h.lease.resources);
            }
            let u = usage.entry(h.owner).or_default();
            *u = u.saturating_add(&h.lease.resources);
            if !self.due.contains(&(h.due_ms, *id)) {
                return Err(format!("lease {id} has no due entry"));
            }
            if h.due_ms > h.lease.expires_at_ms {
                return Err(format!("lease {id} is due after its deadline"));
            }
            if h.lease.epoch > self.last_epoch {
                return Err(format!("lease {id} has an epoch from the future"));
            }
        }
        if !sum.fits_within(&self.config.capacity) {
            return Err(format!(
                "over-committed: {} granted of {}",
                describe(&sum),
                describe(&self.config.capacity)
            ));
        }
        if sum != self.granted || revoking != self.revoking {
            return Err(format!(
                "totals drifted: granted {:?} (table {sum:?}), revoking {:?} (table {revoking:?})",
                self.granted, self.revoking
            ));
        }
        if self.due.len() != self.leases.len() {
            return Err("stale due entries".into());
        }
        for (client, book) in &self.books {
            if book.usage != usage.get(client).copied().unwrap_or_default() {
                return Err(format!("client {client}'s usage drifted"));
            }
            if book
                .leases
                .iter()
                .any(|id| self.lease(*client, *id).is_none())
            {
                return Err(format!("client {client} lists a lease it does not hold"));
            }
            if book.queued.iter().any(|s| !self.queue.contains_key(s)) {
                return Err(format!(
                    "client {client} lists a request that is not queued"
                ));
            }
        }
        let mut account_usage: HashMap<u64, ResourceAmounts> = HashMap::new();
        for book in self.books.values() {
            if let Some(account) = book.account {
                let u = account_usage.entry(account).or_default();
                *u = u.saturating_add(&book.usage);
            }
        }
        for (id, account) in &self.accounts {
            if account.usage != account_usage.get(id).copied().unwrap_or_default() {
                return Err(format!("account {id}'s usage drifted"));
            }
            if account
                .quota
                .is_some_and(|q| !account.usage.fits_within(&q))
            {
                return Err(format!("account {id} is over its quota"));
            }
        }
        if self.queue_deadlines.len() != self.queue.len()
            || self
                .queue
                .values()
                .any(|w| !self.queue_deadlines.contains(&(w.deadline_ms, w.seq)))
        {
            return Err("queue deadlines drifted".into());
        }
        Ok(())
    }
}
