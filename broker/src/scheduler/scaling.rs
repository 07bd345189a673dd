//! The pool's size under demand: between a minimum and a maximum number of executor units.
//!
//! A unit is one executor's worth of resources (say one core and 512 MiB). The broker starts
//! with the minimum; when requests wait, it grows at once to as many units as what is granted
//! plus what waits needs (up to the maximum); when at least one unit has stood free with
//! nobody waiting for `idle_ms`, it gives one unit back, and another after each further
//! `idle_ms`. Shrinking only ever removes free units, so it revokes nothing by itself; the
//! engine's capacity change rules apply regardless.
//!
//! Pure, like the engine: the server asks [`Autoscaler::decide`] after every operation (so
//! queue pressure is answered at once) and on a tick (so idleness is noticed).

use foresight_shared::protocol::plan::ResourceAmounts;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScalingConfig {
    /// One executor's worth of resources.
    pub unit: ResourceAmounts,
    pub min_units: u64,
    pub max_units: u64,
    /// How long a unit must stand free before it is given back.
    pub idle_ms: u64,
}

impl ScalingConfig {
    pub fn pool(&self, units: u64) -> ResourceAmounts {
        ResourceAmounts {
            cpu_millicores: self.unit.cpu_millicores.saturating_mul(units),
            memory_bytes: self.unit.memory_bytes.saturating_mul(units),
            bandwidth_bytes_per_s: self.unit.bandwidth_bytes_per_s.saturating_mul(units),
        }
    }

    /// Units needed to hold `amount`, at least one per started unit of any resource.
    fn units_for(&self, amount: &ResourceAmounts) -> u64 {
        let dims = [
            (amount.cpu_millicores, self.unit.cpu_millicores),
            (amount.memory_bytes, self.unit.memory_bytes),
            (
                amount.bandwidth_bytes_per_s,
                self.unit.bandwidth_bytes_per_s,
            ),
        ];
        dims.iter()
            .map(|&(need, unit)| match (need, unit) {
                (0, _) => 0,
                (_, 0) => u64::MAX, // a resource no unit brings: never enough
                (need, unit) => need.div_ceil(unit),
            })
            .max()
            .unwrap_or(0)
    }
}

#[derive(Debug, Clone)]
pub struct Autoscaler {
    config: ScalingConfig,
    units: u64,
    /// Since when a whole unit has stood free with nobody waiting.
    idle_since: Option<u64>,
}

impl Autoscaler {
    pub fn new(mut config: ScalingConfig) -> Self {
        config.max_units = config.max_units.max(config.min_units).max(1);
        Self {
            units: config.min_units.max(1),
            config,
            idle_since: None,
        }
    }

    pub fn config(&self) -> &ScalingConfig {
        &self.config
    }

    pub fn units(&self) -> u64 {
        self.units
    }

    /// The pool for the current number of units.
    pub fn capacity(&self) -> ResourceAmounts {
        self.config.pool(self.units)
    }

    /// The largest pool: what a request may count on.
    pub fn ceiling(&self) -> ResourceAmounts {
        self.config.pool(self.config.max_units)
    }

    /// The new pool, when it should change: `granted` is what leases hold, `waiting` what
    /// queued requests need at least, `queued` how many there are.
    pub fn decide(
        &mut self,
        granted: &ResourceAmounts,
        waiting: &ResourceAmounts,
        queued: usize,
        now_ms: u64,
    ) -> Option<ResourceAmounts> {
        if queued > 0 {
            self.idle_since = None;
            let wanted = self
                .config
                .units_for(&granted.saturating_add(waiting))
                .clamp(self.config.min_units.max(1), self.config.max_units);
            if wanted > self.units {
                self.units = wanted;
                return Some(self.capacity());
            }
            return None;
        }
        let one_less = self.config.pool(self.units.saturating_sub(1));
        if self.units <= self.config.min_units.max(1) || !granted.fits_within(&one_less) {
            self.idle_since = None;
            return None;
        }
        let since = *self.idle_since.get_or_insert(now_ms);
        if now_ms.saturating_sub(since) < self.config.idle_ms {
            return None;
        }
        self.units -= 1;
        // The next unit must stand free for a whole period of its own.
        self.idle_since = Some(now_ms);
        Some(self.capacity())
    }

    /// When [`Autoscaler::decide`] may next shrink the pool, if it is waiting to.
    pub fn next_check(&self) -> Option<u64> {
        self.idle_since
            .map(|since| since.saturating_add(self.config.idle_ms))
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

    fn scaler() -> Autoscaler {
        Autoscaler::new(ScalingConfig {
            unit: r(1000, 512),
            min_units: 1,
            max_units: 4,
            idle_ms: 100,
        })
    }

    #[test]
    fn grows_at_once_under_queue_pressure_up_to_the_maximum() {
        let mut a = scaler();
        assert_eq!(a.capacity(), r(1000, 512));
        assert_eq!(a.ceiling(), r(4000, 2048));
        // 1000 held, 1500 waiting (and memory for two units): three units.
        assert_eq!(
            a.decide(&r(1000, 10), &r(1500, 600), 2, 0),
            Some(r(3000, 1536))
        );
        // More than the maximum can hold: the maximum.
        assert_eq!(
            a.decide(&r(3000, 0), &r(9000, 0), 1, 1),
            Some(r(4000, 2048))
        );
        assert_eq!(a.decide(&r(3000, 0), &r(9000, 0), 1, 2), None);
    }

    #[test]
    fn gives_back_one_free_unit_per_idle_period_down_to_the_minimum() {
        let mut a = scaler();
        a.decide(&r(0, 0), &r(4000, 0), 1, 0);
        assert_eq!(a.units(), 4);
        // 1500 still held: two units are needed, two may go, one per period.
        assert_eq!(a.decide(&r(1500, 0), &r(0, 0), 0, 10), None);
        assert_eq!(a.next_check(), Some(110));
        assert_eq!(a.decide(&r(1500, 0), &r(0, 0), 0, 109), None);
        assert_eq!(a.decide(&r(1500, 0), &r(0, 0), 0, 110), Some(r(3000, 1536)));
        assert_eq!(a.decide(&r(1500, 0), &r(0, 0), 0, 150), None);
        assert_eq!(a.decide(&r(1500, 0), &r(0, 0), 0, 210), Some(r(2000, 1024)));
        assert_eq!(
            a.decide(&r(1500, 0), &r(0, 0), 0, 999),
            None,
            "the rest is in use"
        );
        // Something waits: the idle clock starts over.
        assert_eq!(a.decide(&r(0, 0), &r(0, 1), 1, 1_000), None);
        assert_eq!(a.decide(&r(0, 0), &r(0, 0), 0, 1_001), None);
        assert_eq!(a.decide(&r(0, 0), &r(0, 0), 0, 1_101), Some(r(1000, 512)));
        assert_eq!(
            a.decide(&r(0, 0), &r(0, 0), 0, 9_999),
            None,
            "the minimum stays"
        );
    }
}
