//! The capacity pool and its lease table.
//!
//! Pure bookkeeping: no I/O and no clock (callers pass `now_ms`, milliseconds since the Unix
//! epoch), so every rule is unit-tested here. The invariant, checked after every change in
//! debug builds and asserted by the tests: the sum of all live leases never exceeds the
//! capacity. Requests are answered at once; there is no queue (a request that does not fit
//! now is denied with `insufficient_capacity`, one that can never fit with `infeasible`).

use std::collections::BTreeMap;

use foresight_shared::protocol::broker::{DenyReason, Lease, LeaseId};
use foresight_shared::protocol::plan::ResourceAmounts;

/// Why a lease request was refused, in words for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub reason: DenyReason,
    pub message: String,
}

/// Why a renewal failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RenewError {
    /// No live lease with that id belongs to the caller.
    NotFound,
    /// The requested TTL is not acceptable; the lease keeps its old deadline.
    InvalidTtl(String),
}

#[derive(Debug, Clone)]
struct Entry {
    owner: u64,
    lease: Lease,
}

/// The pool: total capacity, what is granted, and who holds what.
#[derive(Debug)]
pub struct LeasePool {
    capacity: ResourceAmounts,
    max_ttl_ms: u64,
    granted: ResourceAmounts,
    leases: BTreeMap<LeaseId, Entry>,
    next_lease_id: LeaseId,
    next_epoch: u64,
}

impl LeasePool {
    pub fn new(capacity: ResourceAmounts, max_ttl_ms: u64) -> Self {
        Self {
            capacity,
            max_ttl_ms,
            granted: ResourceAmounts::default(),
            leases: BTreeMap::new(),
            next_lease_id: 1,
            next_epoch: 1,
        }
    }

    pub fn capacity(&self) -> ResourceAmounts {
        self.capacity
    }

    /// The sum of all live leases.
    pub fn granted(&self) -> ResourceAmounts {
        self.granted
    }

    pub fn available(&self) -> ResourceAmounts {
        self.capacity.saturating_sub(&self.granted)
    }

    pub fn len(&self) -> usize {
        self.leases.len()
    }

    pub fn is_empty(&self) -> bool {
        self.leases.is_empty()
    }

    /// Grants `resources` for `ttl_ms` to `owner`, or says why not.
    pub fn grant(
        &mut self,
        owner: u64,
        resources: ResourceAmounts,
        ttl_ms: u64,
        now_ms: u64,
    ) -> Result<Lease, Denial> {
        let invalid = |message: String| Denial {
            reason: DenyReason::InvalidRequest,
            message,
        };
        check_ttl(ttl_ms, self.max_ttl_ms).map_err(invalid)?;
        if resources.is_zero() {
            return Err(invalid("the requested resources are all zero".to_string()));
        }
        if !resources.fits_within(&self.capacity) {
            return Err(Denial {
                reason: DenyReason::Infeasible,
                message: format!(
                    "requested {} exceeds the pool's total capacity of {}",
                    describe(&resources),
                    describe(&self.capacity)
                ),
            });
        }
        let available = self.available();
        if !resources.fits_within(&available) {
            return Err(Denial {
                reason: DenyReason::InsufficientCapacity,
                message: format!(
                    "requested {} but only {} is free now; retry later or ask for less",
                    describe(&resources),
                    describe(&available)
                ),
            });
        }
        let lease = Lease {
            lease_id: self.next_lease_id,
            resources,
            ttl_ms,
            expires_at_ms: now_ms.saturating_add(ttl_ms),
            epoch: self.next_epoch,
        };
        self.next_lease_id += 1;
        self.next_epoch += 1;
        self.granted = self.granted.saturating_add(&resources);
        self.leases.insert(
            lease.lease_id,
            Entry {
                owner,
                lease: lease.clone(),
            },
        );
        self.debug_check();
        Ok(lease)
    }

    /// Moves the deadline of `owner`'s lease to `now_ms + ttl_ms`; returns the new deadline.
    /// A lease past its deadline cannot be renewed: it is as good as expired.
    pub fn renew(
        &mut self,
        owner: u64,
        lease_id: LeaseId,
        ttl_ms: u64,
        now_ms: u64,
    ) -> Result<u64, RenewError> {
        let max_ttl_ms = self.max_ttl_ms;
        let entry = match self.leases.get_mut(&lease_id) {
            Some(entry) if entry.owner == owner && entry.lease.expires_at_ms > now_ms => entry,
            _ => return Err(RenewError::NotFound),
        };
        check_ttl(ttl_ms, max_ttl_ms).map_err(RenewError::InvalidTtl)?;
        entry.lease.ttl_ms = ttl_ms;
        entry.lease.expires_at_ms = now_ms.saturating_add(ttl_ms);
        Ok(entry.lease.expires_at_ms)
    }

    /// Ends `owner`'s lease and frees its resources.
    pub fn release(&mut self, owner: u64, lease_id: LeaseId) -> Option<Lease> {
        match self.leases.get(&lease_id) {
            Some(entry) if entry.owner == owner => {}
            _ => return None,
        }
        let entry = self.leases.remove(&lease_id)?;
        self.granted = self.granted.saturating_sub(&entry.lease.resources);
        self.debug_check();
        Some(entry.lease)
    }

    /// `owner`'s live lease with this id.
    pub fn get(&self, owner: u64, lease_id: LeaseId) -> Option<&Lease> {
        self.leases
            .get(&lease_id)
            .filter(|entry| entry.owner == owner)
            .map(|entry| &entry.lease)
    }

    /// Ends and returns `owner`'s leases whose deadline is at or before `now_ms`.
    pub fn expire_due(&mut self, owner: u64, now_ms: u64) -> Vec<Lease> {
        let due: Vec<LeaseId> = self
            .leases
            .values()
            .filter(|e| e.owner == owner && e.lease.expires_at_ms <= now_ms)
            .map(|e| e.lease.lease_id)
            .collect();
        due.into_iter()
            .filter_map(|id| self.release(owner, id))
            .collect()
    }

    /// Ends and returns all of `owner`'s leases.
    pub fn release_all(&mut self, owner: u64) -> Vec<Lease> {
        let ids: Vec<LeaseId> = self
            .leases
            .values()
            .filter(|e| e.owner == owner)
            .map(|e| e.lease.lease_id)
            .collect();
        ids.into_iter()
            .filter_map(|id| self.release(owner, id))
            .collect()
    }

    /// The earliest deadline among `owner`'s leases.
    pub fn next_expiry(&self, owner: u64) -> Option<u64> {
        self.leases
            .values()
            .filter(|e| e.owner == owner)
            .map(|e| e.lease.expires_at_ms)
            .min()
    }

    /// Recomputes the granted total from the table and checks it against the capacity.
    pub fn invariant_holds(&self) -> bool {
        let sum = self
            .leases
            .values()
            .fold(ResourceAmounts::default(), |acc, e| {
                acc.saturating_add(&e.lease.resources)
            });
        sum == self.granted && sum.fits_within(&self.capacity)
    }

    fn debug_check(&self) {
        debug_assert!(
            self.invariant_holds(),
            "lease pool over-committed: {self:?}"
        );
    }
}

/// The TTL rule, for new leases and renewals alike. A TTL is never silently changed: a
/// request outside the rule is refused with the reason.
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

fn describe(r: &ResourceAmounts) -> String {
    format!(
        "{} millicores, {} bytes of memory, {} B/s of bandwidth",
        r.cpu_millicores, r.memory_bytes, r.bandwidth_bytes_per_s
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    fn res(cpu: u64, mem_mib: u64) -> ResourceAmounts {
        ResourceAmounts {
            cpu_millicores: cpu,
            memory_bytes: mem_mib * MIB,
            bandwidth_bytes_per_s: 0,
        }
    }

    fn pool() -> LeasePool {
        LeasePool::new(res(2000, 1024), 60_000)
    }

    #[test]
    fn grants_until_full_then_denies_without_over_committing() {
        let mut p = pool();
        let a = p.grant(1, res(1500, 100), 1000, 0).unwrap();
        let denied = p.grant(2, res(1000, 100), 1000, 0).unwrap_err();
        assert_eq!(denied.reason, DenyReason::InsufficientCapacity);
        let b = p.grant(2, res(500, 924), 1000, 0).unwrap();
        assert_eq!(p.available(), res(0, 0));
        assert!(p.invariant_holds());
        assert_ne!(a.lease_id, b.lease_id);
        assert!(b.epoch > a.epoch);
        assert_eq!(
            p.grant(3, res(1, 0), 1000, 0).unwrap_err().reason,
            DenyReason::InsufficientCapacity
        );
    }

    #[test]
    fn invalid_and_infeasible_requests_say_why() {
        let mut p = pool();
        let zero_ttl = p.grant(1, res(1, 1), 0, 0).unwrap_err();
        assert_eq!(zero_ttl.reason, DenyReason::InvalidRequest);
        let long = p.grant(1, res(1, 1), 60_001, 0).unwrap_err();
        assert_eq!(long.reason, DenyReason::InvalidRequest);
        assert!(long.message.contains("60000"), "{}", long.message);
        let zero = p.grant(1, res(0, 0), 10, 0).unwrap_err();
        assert_eq!(zero.reason, DenyReason::InvalidRequest);
        let huge = p.grant(1, res(4000, 1), 10, 0).unwrap_err();
        assert_eq!(huge.reason, DenyReason::Infeasible);
        let bandwidth = ResourceAmounts {
            bandwidth_bytes_per_s: 1,
            ..res(1, 1)
        };
        assert_eq!(
            p.grant(1, bandwidth, 10, 0).unwrap_err().reason,
            DenyReason::Infeasible
        );
        assert!(p.is_empty());
    }

    #[test]
    fn expiry_frees_capacity_and_respects_owners() {
        let mut p = pool();
        let a = p.grant(1, res(2000, 1), 100, 1_000).unwrap();
        assert_eq!(a.expires_at_ms, 1_100);
        assert_eq!(p.next_expiry(1), Some(1_100));
        assert!(p.expire_due(1, 1_099).is_empty());
        assert!(p.expire_due(2, 5_000).is_empty(), "not owner 2's lease");
        assert_eq!(p.expire_due(1, 1_100), vec![a]);
        assert_eq!(p.granted(), res(0, 0));
        assert!(p.grant(2, res(2000, 1), 100, 1_100).is_ok());
    }

    #[test]
    fn renew_moves_the_deadline_with_the_same_rules() {
        let mut p = pool();
        let a = p.grant(1, res(1, 1), 100, 0).unwrap();
        assert_eq!(p.renew(1, a.lease_id, 500, 50), Ok(550));
        assert_eq!(p.get(1, a.lease_id).map(|l| l.ttl_ms), Some(500));
        assert_eq!(p.renew(2, a.lease_id, 500, 50), Err(RenewError::NotFound));
        assert!(matches!(
            p.renew(1, a.lease_id, 0, 50),
            Err(RenewError::InvalidTtl(_))
        ));
        assert!(matches!(
            p.renew(1, a.lease_id, 60_001, 50),
            Err(RenewError::InvalidTtl(m)) if m.contains("60000")
        ));
        assert_eq!(p.renew(1, a.lease_id, 10, 550), Err(RenewError::NotFound));
        assert_eq!(p.renew(1, 99, 10, 0), Err(RenewError::NotFound));
    }

    #[test]
    fn release_is_owner_only_and_release_all_empties() {
        let mut p = pool();
        let a = p.grant(1, res(100, 1), 100, 0).unwrap();
        let b = p.grant(1, res(100, 1), 100, 0).unwrap();
        let c = p.grant(2, res(100, 1), 100, 0).unwrap();
        assert_eq!(p.release(2, a.lease_id), None);
        assert_eq!(p.release(1, a.lease_id), Some(a.clone()));
        assert_eq!(p.release(1, a.lease_id), None);
        assert_eq!(p.release_all(1), vec![b]);
        assert_eq!(p.len(), 1);
        assert_eq!(p.granted(), c.resources);
        assert!(p.invariant_holds());
    }

    #[test]
    fn random_workload_never_over_commits() {
        // A small deterministic PRNG (xorshift): a varied workload, reproducible.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut p = pool();
        let mut live: Vec<(u64, LeaseId)> = Vec::new();
        let mut last_epoch = 0;
        for now in 0..5_000u64 {
            match next() % 4 {
                0 | 1 => {
                    let owner = next() % 5;
                    let r = res(next() % 1200, next() % 600);
                    if let Ok(lease) = p.grant(owner, r, 1 + next() % 300, now) {
                        assert!(lease.epoch > last_epoch);
                        last_epoch = lease.epoch;
                        live.push((owner, lease.lease_id));
                    }
                }
                2 if !live.is_empty() => {
                    let (owner, id) = live.swap_remove((next() as usize) % live.len());
                    p.release(owner, id);
                }
                _ => {
                    for owner in 0..5 {
                        p.expire_due(owner, now);
                    }
                }
            }
            assert!(p.invariant_holds(), "over-committed at step {now}");
        }
    }
}
