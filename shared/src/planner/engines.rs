//! The broker's engines as the planner prices them: one [`Offer`] per engine the broker
//! announced (QuickJS, Node...), each with its own speed factor, start-up and worker limit,
//! on top of the broker-wide round trip, bandwidth and capacity.
//!
//! A component's remote completion time is computed on every offer; it runs on the quickest
//! one that still has room. So a heavy component goes to the fast engine (its CPU time
//! dominates), and a tiny one where start-up is cheapest (start-up dominates). An older
//! broker that announces no engines is one offer with no engine named, priced as before.

use crate::protocol::broker::EngineKind;
use crate::protocol::plan::BrokerTerms;

use super::model::{Remote, sane};

/// One engine of the broker.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Offer {
    /// `None`: the broker named no engines (it picks its default).
    pub engine: Option<EngineKind>,
    pub remote: Remote,
    /// Workers at once on this engine (0: no limit of its own).
    pub max_workers: u32,
}

/// The offers of broker `b`: one per engine this planner knows, or a single unnamed one
/// (no engines announced, or none with a measured speed). An engine that did not measure its
/// speed or start-up takes the broker-wide figure.
pub fn offers(b: &BrokerTerms) -> Vec<Offer> {
    let base = Remote::new(b);
    let named: Vec<Offer> = b
        .engines
        .iter()
        .filter(|e| e.engine != EngineKind::Unknown)
        .map(|e| Offer {
            engine: Some(e.engine),
            remote: Remote {
                speed_factor: e
                    .speed_factor
                    .map(sane)
                    .filter(|s| *s > 0.0)
                    .or(base.speed_factor),
                startup_ms: e.startup_ms.map_or(base.startup_ms, sane),
                ..base
            },
            max_workers: e.max_workers,
        })
        .collect();
    // Engines are compared by their measured speed; with none measured (the broker is still
    // calibrating, or this browser is) a choice would be arbitrary: leave it to the broker's
    // default engine.
    let measured = b.engines.iter().any(|e| e.speed_factor.is_some());
    if named.is_empty() || !measured {
        vec![Offer {
            engine: None,
            remote: base,
            max_workers: 0,
        }]
    } else {
        named
    }
}

/// Offer indices by completion time `times[i]`, quickest first (ties: the broker's order).
pub fn quickest_first(times: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..times.len()).collect();
    order.sort_by(|&a, &b| times[a].total_cmp(&times[b]).then(a.cmp(&b)));
    order
}
