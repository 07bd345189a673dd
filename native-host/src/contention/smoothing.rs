//! Smoothing and a short-horizon forecast for the sampled figures: Holt's linear method
//! (an exponentially weighted level plus an exponentially weighted trend), with weights
//! derived from the time between samples so that irregular sampling (on-demand requests
//! between watch ticks) smooths the same as a steady 1 Hz.
//!
//! Pure: time comes in as seconds, so the behaviour is testable without clocks.

/// How quickly the level follows a change: after this long, ~63% of a step shows.
pub const LEVEL_TIME_CONSTANT_S: f64 = 1.5;

/// How quickly the trend follows; slower than the level so one noisy sample does not swing it.
pub const TREND_TIME_CONSTANT_S: f64 = 4.0;

/// A smoothed series with its trend.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Holt {
    state: Option<State>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct State {
    level: f64,
    /// Units per second.
    trend: f64,
    at_s: f64,
}

impl Holt {
    /// Adds the sample `value` taken at `at_s` seconds; non-finite samples are ignored.
    pub fn update(&mut self, value: f64, at_s: f64) {
        if !value.is_finite() || !at_s.is_finite() {
            return;
        }
        self.state = Some(match self.state {
            None => State {
                level: value,
                trend: 0.0,
                at_s,
            },
            Some(s) => {
                let dt = (at_s - s.at_s).max(1e-3);
                let alpha = 1.0 - (-dt / LEVEL_TIME_CONSTANT_S).exp();
                let beta = 1.0 - (-dt / TREND_TIME_CONSTANT_S).exp();
                let predicted = s.level + s.trend * dt;
                let level = alpha * value + (1.0 - alpha) * predicted;
                let trend = beta * (level - s.level) / dt + (1.0 - beta) * s.trend;
                State { level, trend, at_s }
            }
        });
    }

    /// The smoothed value, once there is one.
    pub fn level(&self) -> Option<f64> {
        self.state.map(|s| s.level)
    }

    /// Units per second.
    pub fn trend(&self) -> f64 {
        self.state.map_or(0.0, |s| s.trend)
    }

    /// The level `ahead_s` seconds after the last sample, following the trend.
    pub fn forecast(&self, ahead_s: f64) -> Option<f64> {
        self.state.map(|s| s.level + s.trend * ahead_s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_steady_series_stays_put_with_no_trend() {
        let mut h = Holt::default();
        assert_eq!(h.level(), None);
        for i in 0..10 {
            h.update(500.0, f64::from(i));
        }
        assert!((h.level().unwrap() - 500.0).abs() < 1e-9);
        assert!(h.trend().abs() < 1e-9);
        assert!((h.forecast(5.0).unwrap() - 500.0).abs() < 1e-9);
    }

    #[test]
    fn a_step_shows_within_seconds_and_the_forecast_leads_it() {
        let mut h = Holt::default();
        for i in 0..5 {
            h.update(2000.0, f64::from(i));
        }
        // A CPU hog starts: idle drops to zero.
        for i in 5..8 {
            h.update(0.0, f64::from(i));
        }
        let level = h.level().unwrap();
        assert!(level < 400.0, "{level}");
        assert!(h.trend() < 0.0);
        assert!(h.forecast(5.0).unwrap() < level);
    }

    #[test]
    fn a_long_gap_trusts_the_new_sample() {
        let mut h = Holt::default();
        h.update(100.0, 0.0);
        h.update(900.0, 60.0);
        assert!((h.level().unwrap() - 900.0).abs() < 1.0);
    }

    #[test]
    fn non_finite_samples_are_ignored() {
        let mut h = Holt::default();
        h.update(1.0, 0.0);
        h.update(f64::NAN, 1.0);
        h.update(f64::INFINITY, 2.0);
        assert_eq!(h.level(), Some(1.0));
    }
}
