//! The Predictive Execution Planner: a pure, deterministic function from a page's predicted
//! demand, the machine's contention, the user's policy and the broker's terms to a [`Plan`].
//!
//! The rule (the seed's threshold rule, per component):
//!
//! 1. The page may use `local_share` of the CPU that is idle right now.
//! 2. Each path's CPU demand at the policy quantile, spread over `horizon_ms`, is a rate in
//!    millicores; the load path and all components run together at load time.
//! 3. Offloadable components go remote, largest first, while the total exceeds the local
//!    share (demand above the local threshold goes remote), and any component predicted to
//!    need more than `offload_min_cpu_ms` goes remote regardless, since a broker that is
//!    there costs less than a jank-prone page.
//! 4. Without a usable broker, or with offloading off, everything stays local.
//!
//! The plan says what to reserve locally, what to lease, where each component runs, and why.

use crate::protocol::demand::{ComponentDemand, PageDemand};
use crate::protocol::plan::{
    BrokerTerms, ContentionSnapshot, OffloadMode, Placement, Plan, PlanSource, Policy,
    RemoteRequest, ResourceAmounts, Target,
};

/// Memory a remote executor needs beyond the script's own allocations (engine, runtime).
pub const REMOTE_ENGINE_OVERHEAD_BYTES: u64 = 32 * 1024 * 1024;

/// Shortest lease the planner asks for, so a lease outlives a page's first interactions.
pub const MIN_LEASE_TTL_MS: u64 = 60_000;

/// Longest lease the planner asks for; longer work renews.
pub const MAX_LEASE_TTL_MS: u64 = 600_000;

/// How much slower than the local browser the remote engine is assumed to run, for TTLs.
/// QuickJS measured 7-36x slower than V8 (../shared/PLATFORM.md); 20 sits in the middle.
pub const REMOTE_SLOWDOWN: f64 = 20.0;

/// Everything the planner looks at.
#[derive(Debug, Clone, Copy)]
pub struct PlanInput<'a> {
    pub demand: &'a PageDemand,
    pub contention: &'a ContentionSnapshot,
    pub policy: &'a Policy,
    pub broker: Option<&'a BrokerTerms>,
    pub source: PlanSource,
}

/// Plans one page. Pure and deterministic: the same input gives the same plan.
pub fn plan(input: PlanInput<'_>) -> Plan {
    let PlanInput {
        demand,
        contention,
        policy,
        broker,
        source,
    } = input;
    let q = policy.quantile.clamp(0.0, 1.0);
    let horizon_ms = if policy.horizon_ms.is_finite() && policy.horizon_ms > 0.0 {
        policy.horizon_ms
    } else {
        1000.0
    };
    let rate = |cpu_ms: f64| -> f64 { (cpu_ms.max(0.0) / horizon_ms) * 1000.0 };
    let mut reasons = Vec::new();

    let local_share = policy.local_share.clamp(0.0, 1.0);
    let local_capacity = contention.available_cpu_millicores as f64 * local_share;
    let load_cpu_ms = demand.paths.first().map_or(0.0, |p| p.cpu_ms.at(q));
    let load_memory = demand.paths.first().map_or(0.0, |p| p.memory_bytes.at(q));
    let load_network = demand.paths.first().map_or(0.0, |p| p.network_bytes.at(q));
    let components_rate: f64 = demand.components.iter().map(|c| rate(c.cpu_ms.at(q))).sum();
    let mut excess = rate(load_cpu_ms) + components_rate - local_capacity;
    reasons.push(format!(
        "load path needs {:.0} ms CPU and components {:.0} ms (p{:.0}); this page may use {:.0} of {} idle millicores",
        load_cpu_ms,
        demand.components.iter().map(|c| c.cpu_ms.at(q)).sum::<f64>(),
        q * 100.0,
        local_capacity,
        contention.available_cpu_millicores
    ));

    let broker_usable = match (policy.offload, broker) {
        (OffloadMode::Never, _) => {
            reasons.push("offloading is turned off: everything runs locally".into());
            false
        }
        (_, None) => {
            reasons.push("no broker is reachable: everything runs locally".into());
            false
        }
        (_, Some(b)) if !b.available => {
            reasons.push("the broker is not available: everything runs locally".into());
            false
        }
        (OffloadMode::Unknown, _) => {
            reasons.push("unknown offload setting: everything runs locally".into());
            false
        }
        (OffloadMode::Auto, Some(_)) => true,
    };

    // Largest first; ties broken by id so the plan is deterministic.
    let mut order: Vec<&ComponentDemand> = demand.components.iter().collect();
    order.sort_by(|a, b| {
        b.cpu_ms
            .at(q)
            .total_cmp(&a.cpu_ms.at(q))
            .then_with(|| a.id.cmp(&b.id))
    });

    let mut placements = Vec::with_capacity(order.len());
    let mut remote = ResourceAmounts::default();
    let mut remote_cpu_ms = 0.0f64;
    let mut local_components_rate = 0.0;
    let mut local_components_memory = 0.0;
    for c in order {
        let cpu_ms = c.cpu_ms.at(q);
        let (target, reason) = if !c.offloadable {
            (
                Target::Local,
                "needs the page, cannot run remotely".to_string(),
            )
        } else if !broker_usable {
            (Target::Local, "no usable broker".to_string())
        } else if cpu_ms >= policy.offload_min_cpu_ms {
            (
                Target::Remote,
                format!(
                    "predicted {cpu_ms:.0} ms CPU, at least the {:.0} ms offload threshold",
                    policy.offload_min_cpu_ms
                ),
            )
        } else if excess > 0.0 {
            (
                Target::Remote,
                format!("demand exceeds the local share by {excess:.0} millicores"),
            )
        } else {
            (Target::Local, "fits in the local share".to_string())
        };
        match target {
            Target::Remote => {
                excess -= rate(cpu_ms);
                // A worker is one thread: it can use at most one core.
                remote.cpu_millicores += 1000;
                remote.memory_bytes +=
                    c.memory_bytes.at(q).max(0.0).ceil() as u64 + REMOTE_ENGINE_OVERHEAD_BYTES;
                remote_cpu_ms += cpu_ms;
            }
            _ => {
                local_components_rate += rate(cpu_ms);
                local_components_memory += c.memory_bytes.at(q).max(0.0);
            }
        }
        placements.push(Placement {
            component_id: c.id.clone(),
            url: c.url.clone(),
            target,
            reason,
        });
    }

    let local_rate = rate(load_cpu_ms) + local_components_rate;
    let local = ResourceAmounts {
        cpu_millicores: local_rate.min(local_capacity).max(0.0).ceil() as u64,
        memory_bytes: (load_memory + local_components_memory).max(0.0).ceil() as u64,
        bandwidth_bytes_per_s: rate(load_network).ceil() as u64,
    };
    if local_rate > local_capacity {
        reasons.push(format!(
            "local demand of {local_rate:.0} millicores exceeds the local share; the page may be slow"
        ));
    }

    let remote = if remote.is_zero() {
        None
    } else {
        let ttl = (remote_cpu_ms * REMOTE_SLOWDOWN * 2.0).ceil() as u64;
        let ttl_ms = ttl.clamp(MIN_LEASE_TTL_MS, MAX_LEASE_TTL_MS);
        reasons.push(format!(
            "lease {} millicores and {} MiB for {} s",
            remote.cpu_millicores,
            remote.memory_bytes / (1024 * 1024),
            ttl_ms / 1000
        ));
        Some(RemoteRequest {
            resources: remote,
            ttl_ms,
            priority: policy.priority.min(9),
        })
    };

    Plan {
        url: demand.url.clone(),
        source,
        local,
        remote,
        placements,
        reasons,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Quantiles;
    use crate::protocol::demand::{ComponentKind, PathDemand, PathKind};
    use crate::protocol::plan::ContentionSource;

    fn demand(worker_cpu_ms: f64) -> PageDemand {
        PageDemand {
            url: "http://127.0.0.1/page".into(),
            paths: vec![PathDemand {
                name: "load".into(),
                kind: PathKind::Load,
                probability: 1.0,
                cpu_ms: Quantiles::exact(20.0),
                memory_bytes: Quantiles::exact(1e6),
                network_bytes: Quantiles::exact(5e4),
                event: None,
                target: None,
                curve: Default::default(),
            }],
            components: vec![ComponentDemand {
                id: "worker-0".into(),
                kind: ComponentKind::Worker,
                url: Some("http://127.0.0.1/w.js".into()),
                source_known: true,
                cpu_ms: Quantiles {
                    p10: worker_cpu_ms / 2.0,
                    p50: worker_cpu_ms,
                    p90: worker_cpu_ms * 2.0,
                },
                memory_bytes: Quantiles::exact(4e6),
                offloadable: true,
            }],
            ..Default::default()
        }
    }

    fn contention(idle_millicores: u64) -> ContentionSnapshot {
        ContentionSnapshot {
            source: ContentionSource::NativeHost,
            taken_at_ms: 0,
            logical_cpus: 4,
            cpu_usage: 1.0 - idle_millicores as f64 / 4000.0,
            available_cpu_millicores: idle_millicores,
            total_memory_bytes: 8 << 30,
            available_memory_bytes: 4 << 30,
            load_average_1m: None,
        }
    }

    fn broker() -> BrokerTerms {
        BrokerTerms {
            available: true,
            rtt_ms: 1.0,
            capacity: ResourceAmounts {
                cpu_millicores: 4000,
                memory_bytes: 4 << 30,
                bandwidth_bytes_per_s: 0,
            },
        }
    }

    fn run(d: &PageDemand, c: &ContentionSnapshot, p: &Policy, b: Option<&BrokerTerms>) -> Plan {
        plan(PlanInput {
            demand: d,
            contention: c,
            policy: p,
            broker: b,
            source: PlanSource::NativeHost,
        })
    }

    #[test]
    fn light_worker_on_idle_machine_stays_local() {
        let p = run(
            &demand(10.0),
            &contention(4000),
            &Policy::default(),
            Some(&broker()),
        );
        assert_eq!(p.placements[0].target, Target::Local);
        assert!(p.remote.is_none());
    }

    #[test]
    fn demand_above_local_threshold_goes_remote() {
        // 300 ms at p90 over 1 s = 300 millicores; idle 400 * 0.5 = 200 available.
        let p = run(
            &demand(150.0),
            &contention(400),
            &Policy::default(),
            Some(&broker()),
        );
        assert_eq!(p.placements[0].target, Target::Remote);
        let remote = p.remote.expect("a lease is requested");
        assert_eq!(remote.resources.cpu_millicores, 1000);
        assert!(remote.resources.memory_bytes >= REMOTE_ENGINE_OVERHEAD_BYTES);
        assert!(remote.ttl_ms >= MIN_LEASE_TTL_MS);
    }

    #[test]
    fn heavy_worker_goes_remote_even_on_an_idle_machine() {
        let p = run(
            &demand(2000.0),
            &contention(64_000),
            &Policy::default(),
            Some(&broker()),
        );
        assert_eq!(p.placements[0].target, Target::Remote);
    }

    #[test]
    fn degrades_to_all_local_without_broker_or_when_off() {
        let d = demand(5000.0);
        let c = contention(100);
        let no_broker = run(&d, &c, &Policy::default(), None);
        let off = run(
            &d,
            &c,
            &Policy {
                offload: OffloadMode::Never,
                ..Policy::default()
            },
            Some(&broker()),
        );
        let unavailable = run(
            &d,
            &c,
            &Policy::default(),
            Some(&BrokerTerms {
                available: false,
                ..broker()
            }),
        );
        for p in [no_broker, off, unavailable] {
            assert!(p.remote.is_none());
            assert!(p.placements.iter().all(|p| p.target == Target::Local));
            assert!(!p.reasons.is_empty());
        }
    }

    #[test]
    fn is_deterministic() {
        let d = demand(700.0);
        let c = contention(1000);
        let b = broker();
        let a = run(&d, &c, &Policy::default(), Some(&b));
        let again = run(&d, &c, &Policy::default(), Some(&b));
        assert_eq!(a, again);
    }
}
