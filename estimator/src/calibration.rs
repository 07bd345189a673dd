//! Calibration: how many of the estimator's work units this device runs per millisecond.
//!
//! The unit is the cost model's own (about one simple JS operation), so the honest way to
//! calibrate is to let the estimator price a small, loop-heavy kernel, run that same kernel
//! in the device's JS engine, and divide. The extension does it in the browser (its kernel
//! is a function in `extension/src/estimator.js`, priced from its own source text, so the
//! two cannot drift); the CLI runs [`KERNEL_JS`] in headless Chromium. This module is the
//! pure half: the kernel, its price, and the division.

use crate::{Calibration, cost};

/// A kernel with the operation mix the cost model counts (a counted loop, arithmetic,
/// typed-array reads and writes, a call), long enough (tens of ms) to time with a coarse clock.
/// `foresightKernel()` returns a number so the engine cannot drop the work.
pub const KERNEL_JS: &str = "function foresightKernel() {
  const N = 4000000;
  const a = new Float64Array(1024);
  let acc = 0;
  for (let i = 0; i < N; i++) {
    const j = i & 1023;
    a[j] = a[j] * 0.5 + i;
    acc = (acc + mix(a[j], i)) % 1000003;
  }
  return acc;
}
function mix(x, i) {
  return (x * 3 + i) | 0;
}";

/// Slowest and fastest devices a calibration may describe: outside this range a measurement
/// is broken (a clock of zero resolution, a suspended tab), not a device.
pub const MIN_UNITS_PER_MS: f64 = 1e4;
pub const MAX_UNITS_PER_MS: f64 = 1e9;

/// Work units the estimator predicts for one call of `entry` after `source` has been loaded
/// (the median: a kernel is written so that its cost is exact).
pub fn call_units(source: &str, entry: &str) -> f64 {
    call_units_weighted(source, entry, crate::Weights::default())
}

/// [`call_units`] with explicit unit weights (for the weight fit).
pub fn call_units_weighted(source: &str, entry: &str, weights: crate::Weights) -> f64 {
    let sources = crate::one_script_page("about:blank", format!("{source}\n{entry}();"));
    let a = crate::analyse_weighted(&sources, crate::Budget::default(), weights);
    let model = cost::CostModel::new(&a.collected, &a.resolution, &a.graph, 0);
    match a.collected.scripts.first() {
        Some(crate::ir::ScriptStatus::Parsed(top)) => model.body(*top).cpu.p50,
        _ => 0.0,
    }
}

/// The calibration from running `units` of work in `measured_ms`; `None` when the
/// measurement cannot be right.
pub fn from_measurement(units: f64, measured_ms: f64) -> Option<Calibration> {
    if !(units.is_finite() && units > 0.0 && measured_ms.is_finite() && measured_ms > 0.0) {
        return None;
    }
    let units_per_ms = units / measured_ms;
    (MIN_UNITS_PER_MS..=MAX_UNITS_PER_MS)
        .contains(&units_per_ms)
        .then_some(Calibration { units_per_ms })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Weights;

    #[test]
    fn the_kernel_is_priced_exactly_and_mostly_by_its_loop() {
        let units = call_units(KERNEL_JS, "foresightKernel");
        // 4 million iterations of a couple of dozen units each.
        assert!(units > 4e7 && units < 2e8, "{units}");
        // Twice the trips, twice the units at the hand-set weights: the loop dominates...
        let doubled = KERNEL_JS.replace("4000000", "8000000");
        let hand = |src: &str| call_units_weighted(src, "foresightKernel", Weights::hand_set());
        let ratio = hand(&doubled) / hand(KERNEL_JS);
        assert!((ratio - 2.0).abs() < 0.01, "{ratio}");
        // ...and with the fitted ones, whose warm-up makes the first trips dearer, still more
        // than one and a half times.
        let ratio = call_units(&doubled, "foresightKernel") / units;
        assert!(ratio > 1.5 && ratio <= 2.0 + 1e-9, "{ratio}");
        assert_eq!(call_units("syntax error (", "f"), 0.0);
    }

    #[test]
    fn measurements_outside_any_device_are_refused() {
        let c = from_measurement(1e8, 50.0).expect("2e6 units/ms");
        assert_eq!(c.units_per_ms, 2e6);
        assert!(from_measurement(1e8, 0.0).is_none());
        assert!(from_measurement(1e8, f64::NAN).is_none());
        assert!(from_measurement(1e8, 1e-6).is_none());
        assert!(from_measurement(0.0, 5.0).is_none());
    }
}
