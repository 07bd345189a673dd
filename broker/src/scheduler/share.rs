//! Dominant Resource Fairness: who is served next within a priority class.
//!
//! A client's dominant share is its largest share of any one resource of the pool (Ghodsi et
//! al., "Dominant Resource Fairness", NSDI 2011), divided by the client's weight. Within a
//! priority class the queue serves the client with the smallest weighted dominant share
//! first, so a client with nothing is served before one holding much.
//!
//! Shares are compared exactly (cross-multiplied in `u128`): the paper's case ends in a tie
//! (6/9 against 12/18) that floating point may break either way.

use std::cmp::Ordering;

use foresight_shared::protocol::plan::ResourceAmounts;

/// `num / den`, compared exactly where `u128` allows.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Share {
    num: u128,
    den: u128,
}

impl Share {
    const ZERO: Share = Share { num: 0, den: 1 };

    /// The dominant share of `usage` in a pool of `capacity`, divided by `weight`.
    pub(crate) fn weighted(
        usage: &ResourceAmounts,
        capacity: &ResourceAmounts,
        weight: u64,
    ) -> Self {
        let dims = [
            (usage.cpu_millicores, capacity.cpu_millicores),
            (usage.memory_bytes, capacity.memory_bytes),
            (usage.bandwidth_bytes_per_s, capacity.bandwidth_bytes_per_s),
        ];
        let dominant = dims
            .iter()
            // A resource the pool does not have cannot be held, so it cannot dominate.
            .filter(|(_, cap)| *cap > 0)
            .map(|&(used, cap)| Share {
                num: u128::from(used),
                den: u128::from(cap),
            })
            .max_by(Share::compare)
            .unwrap_or(Share::ZERO);
        Share {
            num: dominant.num,
            den: dominant.den.saturating_mul(u128::from(weight.max(1))),
        }
    }

    fn compare(&self, other: &Share) -> Ordering {
        match (
            self.num.checked_mul(other.den),
            other.num.checked_mul(self.den),
        ) {
            (Some(a), Some(b)) => a.cmp(&b),
            // Beyond any real pool; close enough.
            _ => (self.num as f64 / self.den as f64)
                .total_cmp(&(other.num as f64 / other.den as f64)),
        }
    }
}

impl PartialEq for Share {
    fn eq(&self, other: &Self) -> bool {
        self.compare(other) == Ordering::Equal
    }
}

impl Eq for Share {}

impl PartialOrd for Share {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Share {
    fn cmp(&self, other: &Self) -> Ordering {
        self.compare(other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(cpu: u64, mem: u64) -> ResourceAmounts {
        ResourceAmounts {
            cpu_millicores: cpu,
            memory_bytes: mem,
            bandwidth_bytes_per_s: 0,
        }
    }

    #[test]
    fn dominant_share_is_the_largest_fraction_and_ties_are_exact() {
        let pool = r(9, 18);
        let a = Share::weighted(&r(3, 12), &pool, 1); // 12/18
        let b = Share::weighted(&r(6, 2), &pool, 1); // 6/9
        assert_eq!(a, b);
        assert!(Share::weighted(&r(1, 4), &pool, 1) < Share::weighted(&r(3, 1), &pool, 1));
        assert_eq!(Share::weighted(&r(0, 0), &pool, 1), Share::ZERO);
    }

    #[test]
    fn weight_divides_the_share() {
        let pool = r(10, 10);
        let heavy_but_weighty = Share::weighted(&r(5, 0), &pool, 10); // 0.05
        let light = Share::weighted(&r(1, 0), &pool, 1); // 0.1
        assert!(heavy_but_weighty < light);
    }
}
