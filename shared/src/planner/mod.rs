//! The Predictive Execution Planner: a pure, deterministic function from a page's predicted
//! demand, the machine's contention (and its forecast), the browser's other tabs, the user's
//! policy and the broker's terms to a [`Plan`].
//!
//! How it decides, per page:
//!
//! 1. **The local threshold** (the seed's rule). The page may use `local_share` of the idle
//!    CPU (the worse of now and the forecast, less what other tabs are predicted to add) and
//!    of the available memory. The load path and every component run together at load time;
//!    each path's CPU demand at the policy quantile becomes a rate over `horizon_ms`.
//! 2. **Completion times.** For each offloadable component the planner estimates when it
//!    would finish here (its CPU time at the core share the scheduler would give it among
//!    everything runnable, see [`model::Machine::thread_speed`]) and on the broker (start-up,
//!    a round trip, transfer and serialization of its script and data, and its CPU time at
//!    the broker's speed factor, see [`model::Remote::completion_ms`]).
//! 3. **Placement**, a greedy stand-in for MAUI's integer program that runs in O(n log n):
//!    a component whose remote run would finish later than `1 + offload_slack` times its
//!    local run stays local (the broker is *slower*). Otherwise it goes remote when that is
//!    faster, or when it is heavy (at least `offload_min_cpu_ms`); then, while the page's
//!    local demand still exceeds the threshold, the remaining candidates go remote cheapest
//!    first (added completion time per millicore freed), and likewise for memory. The
//!    broker's announced capacity bounds what is leased.
//! 4. **Degrading**: with no broker, an unavailable one, offloading off, or a broker slower
//!    for every component, everything stays local and the reasons say why.
//!
//! The output says what to reserve locally per path (CPU rate, memory, bandwidth, at the
//! policy quantile), what to lease, where each component runs with both completion
//! estimates, and why, in words the popup shows.

pub mod engines;
pub mod model;
#[cfg(test)]
mod tests;

use std::cmp::Ordering;

use crate::protocol::broker::EngineKind;
use crate::protocol::demand::PageDemand;
use crate::protocol::plan::{
    BrokerTerms, ContentionSnapshot, OffloadMode, PathPlan, Placement, Plan, PlanSource, Policy,
    RemoteRequest, ResourceAmounts, TabLoad, Target,
};
use engines::{Offer, quickest_first};
use model::{Machine, Remote, path_profile, sane, transfer_bytes};

/// Memory a remote executor needs beyond the script's own allocations (engine, runtime).
pub const REMOTE_ENGINE_OVERHEAD_BYTES: u64 = 32 * 1024 * 1024;

/// CPU leased per remote component: a worker is one thread and may use a whole core.
pub const REMOTE_CPU_PER_COMPONENT: u64 = 1000;

/// Shortest lease the planner asks for, so a lease outlives a page's first interactions.
pub const MIN_LEASE_TTL_MS: u64 = 60_000;

/// Longest lease the planner asks for; longer work renews.
pub const MAX_LEASE_TTL_MS: u64 = 600_000;

/// How much slower than the local browser the remote engine is assumed to run when sizing a
/// lease's TTL for a broker that did not announce its speed. QuickJS measured 7-36x slower
/// than V8 (../shared/PLATFORM.md); 20 sits in the middle. A TTL too long costs nothing (the
/// lease is released with the page); one too short kills the work.
pub const REMOTE_SLOWDOWN: f64 = 20.0;

/// Everything the planner looks at.
#[derive(Debug, Clone, Copy)]
pub struct PlanInput<'a> {
    pub demand: &'a PageDemand,
    pub contention: &'a ContentionSnapshot,
    pub policy: &'a Policy,
    pub broker: Option<&'a BrokerTerms>,
    /// The browser's other tabs; empty when unknown.
    pub tabs: &'a [TabLoad],
    pub source: PlanSource,
}

/// Why a component is where it is, before capacity is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// Cannot run remotely, or no usable broker.
    Fixed,
    /// The broker would finish it later than this machine (beyond the slack).
    Slower,
    /// The broker finishes it sooner.
    Faster,
    /// Heavy enough that the policy prefers it off this machine.
    Heavy,
    /// Remote only if the local threshold needs room.
    Neutral,
}

/// One component while it is being placed.
struct Candidate {
    index: usize,
    cpu_ms: f64,
    rate: f64,
    memory: f64,
    bytes: f64,
    local_ms: f64,
    /// On the offer it runs on (or the quickest, while it is local).
    remote_ms: Option<f64>,
    /// Completion time on each offer (empty without a usable broker).
    times: Vec<f64>,
    /// The offer it runs on, once remote.
    offer: Option<usize>,
    class: Class,
    target: Target,
    reason: String,
}

/// What the broker has left while components are placed, and what the user's cap on the
/// remote share of the page's CPU still allows.
struct Lease {
    remote: Remote,
    offers: Vec<Offer>,
    /// Components placed on each offer.
    used: Vec<u32>,
    cpu: u64,
    memory: u64,
    /// CPU time (ms) that may still go remote under `Policy::max_remote_share`.
    share_left_ms: f64,
}

/// Why a component could not be added to the lease.
enum Refusal {
    /// The broker's announced capacity is used up.
    Capacity,
    /// The user's maximum remote share is reached.
    Share,
}

impl Lease {
    fn has_worker_room(&self, offer: usize) -> bool {
        let max = self.offers[offer].max_workers;
        max == 0 || self.used[offer] < max
    }

    /// Takes room for one component, if the broker's announced capacity and the user's cap
    /// allow it.
    fn take(&mut self, memory: f64, cpu_ms: f64) -> Result<(), Refusal> {
        if cpu_ms > self.share_left_ms {
            return Err(Refusal::Share);
        }
        let memory = memory.ceil() as u64 + REMOTE_ENGINE_OVERHEAD_BYTES;
        let cpu = self.cpu + REMOTE_CPU_PER_COMPONENT;
        let mem = self.memory.saturating_add(memory);
        let fits = (self.remote.cpu_capacity == 0 || cpu <= self.remote.cpu_capacity)
            && (self.remote.memory_capacity == 0 || mem <= self.remote.memory_capacity);
        if !fits {
            return Err(Refusal::Capacity);
        }
        self.cpu = cpu;
        self.memory = mem;
        self.share_left_ms -= cpu_ms;
        Ok(())
    }
}

/// Plans one page. Pure and deterministic: the same input gives the same plan.
pub fn plan(input: PlanInput<'_>) -> Plan {
    let PlanInput {
        demand,
        contention,
        policy,
        broker,
        tabs,
        source,
    } = input;
    let q = sane(policy.quantile).min(1.0);
    let horizon_ms = if policy.horizon_ms.is_finite() && policy.horizon_ms > 0.0 {
        policy.horizon_ms
    } else {
        1000.0
    };
    let rate = |cpu_ms: f64| sane(cpu_ms) / horizon_ms * 1000.0;
    let slack = sane(policy.offload_slack);
    let machine = Machine::new(contention, policy, tabs, horizon_ms);
    let mut reasons = Vec::new();

    let load = demand.paths.first();
    let load_profile = load.map(|p| path_profile(p, q, horizon_ms));
    let load_total = load_profile.map_or(0.0, |p| p.total_ms);
    let load_peak = load_profile.map_or(0.0, |p| p.peak_millicores);
    let load_memory = load.map_or(0.0, |p| sane(p.memory_bytes.at(q)));

    let (remote, why_not) = usable_broker(policy, broker);
    if let Some(why) = why_not {
        reasons.push(why.to_string());
    }
    let offers: Vec<Offer> = match (remote, broker) {
        (Some(_), Some(b)) => engines::offers(b),
        _ => Vec::new(),
    };

    // Every component starts out local: the page's threads then compete for the CPUs.
    let main_thread = (load_peak / 1000.0).min(1.0);
    let speed = machine.thread_speed(demand.components.len() as f64 + main_thread);
    let mut candidates: Vec<Candidate> = demand
        .components
        .iter()
        .enumerate()
        .map(|(index, c)| {
            let cpu_ms = sane(c.cpu_ms.at(q));
            let memory = sane(c.memory_bytes.at(q));
            let bytes = transfer_bytes(memory);
            let local_ms = cpu_ms / speed;
            let times: Vec<f64> = if c.offloadable {
                offers
                    .iter()
                    .map(|o| o.remote.completion_ms(cpu_ms, bytes))
                    .collect()
            } else {
                Vec::new()
            };
            let remote_ms = quickest_first(&times).first().map(|&i| times[i]);
            let class = match remote_ms {
                None => Class::Fixed,
                Some(t) if t > local_ms * (1.0 + slack) => Class::Slower,
                Some(t) if t < local_ms => Class::Faster,
                Some(_) if cpu_ms >= policy.offload_min_cpu_ms => Class::Heavy,
                Some(_) => Class::Neutral,
            };
            Candidate {
                index,
                cpu_ms,
                rate: rate(cpu_ms),
                memory,
                bytes,
                local_ms,
                remote_ms,
                times,
                offer: None,
                class,
                target: Target::Local,
                reason: String::new(),
            }
        })
        .collect();

    // The user's cap applies to the page's whole predicted CPU: load path and components.
    let page_cpu_ms = load.map_or(0.0, |p| sane(p.cpu_ms.at(q)))
        + candidates.iter().map(|c| c.cpu_ms).sum::<f64>();
    let max_share = if policy.max_remote_share.is_finite() {
        policy.max_remote_share.clamp(0.0, 1.0)
    } else {
        1.0
    };
    let mut lease = remote.map(|remote| Lease {
        remote,
        used: vec![0; offers.len()],
        offers: offers.clone(),
        cpu: 0,
        memory: 0,
        // A little headroom so a cap of 100% never refuses on rounding.
        share_left_ms: page_cpu_ms * max_share * (1.0 + 1e-9),
    });

    // Faster and heavy components first, biggest gain first.
    let mut order: Vec<usize> = (0..candidates.len())
        .filter(|&i| matches!(candidates[i].class, Class::Faster | Class::Heavy))
        .collect();
    order.sort_by(|&a, &b| {
        let gain = |c: &Candidate| c.local_ms - c.remote_ms.unwrap_or(f64::INFINITY);
        gain(&candidates[b])
            .total_cmp(&gain(&candidates[a]))
            .then_with(|| by_id(demand, &candidates[a], &candidates[b]))
    });
    for i in order {
        let c = &mut candidates[i];
        let why = if c.class == Class::Faster {
            "finishes sooner remotely".to_string()
        } else {
            format!(
                "predicted {:.0} ms CPU, at least the {:.0} ms offload threshold",
                c.cpu_ms, policy.offload_min_cpu_ms
            )
        };
        place_remote(c, lease.as_mut(), why, slack);
    }

    // The seed's rule: demand above the local threshold goes remote, cheapest first.
    let local_rate = |cs: &[Candidate]| -> f64 {
        load_peak
            + cs.iter()
                .filter(|c| c.target == Target::Local)
                .map(|c| c.rate)
                .sum::<f64>()
    };
    let local_memory = |cs: &[Candidate]| -> f64 {
        load_memory
            + cs.iter()
                .filter(|c| c.target == Target::Local)
                .map(|c| c.memory)
                .sum::<f64>()
    };
    let mut excess = local_rate(&candidates) - machine.capacity_millicores;
    let mut neutral: Vec<usize> = (0..candidates.len())
        .filter(|&i| candidates[i].class == Class::Neutral)
        .collect();
    if excess > 0.0 && !neutral.is_empty() {
        neutral.sort_by(|&a, &b| {
            let cost = |c: &Candidate| {
                (c.remote_ms.unwrap_or(f64::INFINITY) - c.local_ms) / c.rate.max(1e-9)
            };
            cost(&candidates[a])
                .total_cmp(&cost(&candidates[b]))
                .then_with(|| candidates[b].rate.total_cmp(&candidates[a].rate))
                .then_with(|| by_id(demand, &candidates[a], &candidates[b]))
        });
        for &i in &neutral {
            if excess <= 0.0 {
                break;
            }
            let c = &mut candidates[i];
            let why = format!("demand exceeds the local share by {excess:.0} millicores",);
            if place_remote(c, lease.as_mut(), why, slack) {
                excess -= c.rate;
            }
        }
    }
    let mut memory_excess = local_memory(&candidates) - machine.memory_capacity;
    if memory_excess > 0.0 {
        neutral.retain(|&i| candidates[i].target == Target::Local);
        neutral.sort_by(|&a, &b| {
            candidates[b]
                .memory
                .total_cmp(&candidates[a].memory)
                .then_with(|| by_id(demand, &candidates[a], &candidates[b]))
        });
        for &i in &neutral {
            if memory_excess <= 0.0 {
                break;
            }
            let c = &mut candidates[i];
            let why = format!(
                "memory exceeds the local share by {:.0} MiB",
                memory_excess / MIB
            );
            if place_remote(c, lease.as_mut(), why, slack) {
                memory_excess -= c.memory;
            }
        }
    }

    // Everything still undecided stays here; say why.
    let mut slower = 0usize;
    let mut offloadable = 0usize;
    for c in &mut candidates {
        if c.remote_ms.is_some() {
            offloadable += 1;
        }
        if !c.reason.is_empty() {
            continue;
        }
        c.reason = match c.class {
            Class::Fixed if !demand.components[c.index].offloadable => {
                "needs the page, cannot run remotely".to_string()
            }
            Class::Fixed => "no usable broker".to_string(),
            Class::Slower => {
                slower += 1;
                format!(
                    "the broker would finish later ({:.0} ms there, {:.0} ms here)",
                    c.remote_ms.unwrap_or(0.0),
                    c.local_ms
                )
            }
            _ => "fits in the local share".to_string(),
        };
    }

    reasons.insert(
        0,
        capacity_reason(&machine, contention, demand, q, load_total, &candidates),
    );
    if offloadable > 0 && slower == offloadable {
        reasons.push(
            "the broker is slower than this machine for every component: everything runs locally"
                .to_string(),
        );
    }
    let final_local_rate = local_rate(&candidates);
    if final_local_rate > machine.capacity_millicores {
        reasons.push(format!(
            "local demand of {final_local_rate:.0} millicores exceeds the local share of {:.0}; the page may be slow",
            machine.capacity_millicores
        ));
    }

    // Reservations, per path; the components run with the load path.
    let remote_components: Vec<&Candidate> = candidates
        .iter()
        .filter(|c| c.target == Target::Remote)
        .collect();
    let remote_resources = lease.as_ref().and_then(|l| {
        // Bandwidth is only asked of a broker that schedules it (announces a capacity for
        // it): one that does not would find any amount over its zero and refuse the lease.
        let bandwidth = if l.remote.bandwidth_capacity > 0 {
            (remote_components.iter().map(|c| c.bytes).sum::<f64>() / horizon_ms * 1000.0).ceil()
                as u64
        } else {
            0
        };
        (!remote_components.is_empty()).then_some(ResourceAmounts {
            cpu_millicores: l.cpu,
            memory_bytes: l.memory,
            bandwidth_bytes_per_s: bandwidth,
        })
    });
    let mut paths = Vec::with_capacity(demand.paths.len());
    for (i, p) in demand.paths.iter().enumerate() {
        let profile = path_profile(p, q, horizon_ms);
        let (cpu, memory) = if i == 0 {
            (final_local_rate, local_memory(&candidates))
        } else {
            (profile.peak_millicores, sane(p.memory_bytes.at(q)))
        };
        paths.push(PathPlan {
            name: p.name.clone(),
            local: ResourceAmounts {
                cpu_millicores: cpu.ceil() as u64,
                memory_bytes: memory.ceil() as u64,
                bandwidth_bytes_per_s: rate(p.network_bytes.at(q)).ceil() as u64,
            },
            remote: if i == 0 { remote_resources } else { None },
            remote_components: if i == 0 {
                remote_components
                    .iter()
                    .map(|c| demand.components[c.index].id.clone())
                    .collect()
            } else {
                Vec::new()
            },
        });
    }
    let local = paths
        .iter()
        .fold(ResourceAmounts::default(), |acc, p| ResourceAmounts {
            cpu_millicores: acc.cpu_millicores.max(p.local.cpu_millicores),
            memory_bytes: acc.memory_bytes.max(p.local.memory_bytes),
            bandwidth_bytes_per_s: acc.bandwidth_bytes_per_s.max(p.local.bandwidth_bytes_per_s),
        });

    let remote = remote_resources.map(|resources| {
        // Long enough for the slowest engine in use.
        let ttl_factor = remote_components
            .iter()
            .map(|c| {
                c.offer
                    .and_then(|i| offers.get(i))
                    .and_then(|o| o.remote.speed_factor)
                    .unwrap_or(REMOTE_SLOWDOWN)
            })
            .fold(0.0, f64::max);
        let remote_cpu_ms: f64 = remote_components.iter().map(|c| c.cpu_ms).sum();
        let ttl_ms = ((remote_cpu_ms * ttl_factor * 2.0).ceil() as u64)
            .clamp(MIN_LEASE_TTL_MS, MAX_LEASE_TTL_MS);
        reasons.push(format!(
            "lease {} millicores and {} MiB for {} s",
            resources.cpu_millicores,
            resources.memory_bytes / (1024 * 1024),
            ttl_ms / 1000
        ));
        RemoteRequest {
            resources,
            ttl_ms,
            priority: policy.priority.min(9),
        }
    });

    // When the page's predicted work is done: its slowest thread, at the final thread count.
    let local_threads = candidates
        .iter()
        .filter(|c| c.target == Target::Local)
        .count() as f64
        + main_thread;
    let final_speed = machine.thread_speed(local_threads);
    let expected = candidates
        .iter()
        .map(|c| match c.target {
            Target::Remote => c.remote_ms.unwrap_or(0.0),
            _ => c.cpu_ms / final_speed,
        })
        .fold(load_total / final_speed, f64::max);
    reasons.push(format!("expected to finish in {expected:.0} ms"));

    let placements = candidates
        .into_iter()
        .map(|c| {
            let component = &demand.components[c.index];
            Placement {
                component_id: component.id.clone(),
                url: component.url.clone(),
                target: c.target,
                reason: c.reason,
                local_ms: Some(round1(c.local_ms)),
                remote_ms: c.remote_ms.map(round1),
                engine: c.offer.and_then(|i| offers.get(i)).and_then(|o| o.engine),
            }
        })
        .collect();

    Plan {
        url: demand.url.clone(),
        source,
        local,
        remote,
        placements,
        reasons,
        paths,
        expected_completion_ms: Some(round1(expected)),
    }
}

const MIB: f64 = 1024.0 * 1024.0;

/// Tenths of a millisecond are plenty, and keep the JSON short.
fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// The broker to plan with, or why there is none.
fn usable_broker(
    policy: &Policy,
    broker: Option<&BrokerTerms>,
) -> (Option<Remote>, Option<&'static str>) {
    match (policy.offload, broker) {
        (OffloadMode::Never, _) => (
            None,
            Some("offloading is turned off: everything runs locally"),
        ),
        (OffloadMode::Unknown, _) => (
            None,
            Some("unknown offload setting: everything runs locally"),
        ),
        (_, None) => (
            None,
            Some("no broker is reachable: everything runs locally"),
        ),
        (_, Some(b)) if !b.available => (
            None,
            Some("the broker is not available: everything runs locally"),
        ),
        (OffloadMode::Auto, Some(b)) => (Some(Remote::new(b)), None),
    }
}

/// Moves `c` remote, on the quickest engine that has a worker free and would not finish
/// later than here (beyond `slack`), if the lease has room; records why either way. Returns
/// whether it moved.
fn place_remote(c: &mut Candidate, lease: Option<&mut Lease>, why: String, slack: f64) -> bool {
    let Some(lease) = lease else {
        return false;
    };
    let quick_enough = |i: &usize| c.times[*i] <= c.local_ms * (1.0 + slack);
    let Some(offer) = quickest_first(&c.times)
        .into_iter()
        .filter(quick_enough)
        .find(|&i| lease.has_worker_room(i))
    else {
        c.reason = "every broker engine quick enough for it runs its most workers".to_string();
        return false;
    };
    match lease.take(c.memory, c.cpu_ms) {
        Ok(()) => {
            lease.used[offer] += 1;
            c.target = Target::Remote;
            c.offer = Some(offer);
            c.remote_ms = Some(c.times[offer]);
            let on = match lease.offers[offer].engine {
                Some(engine) => format!(" on {}", engine_name(engine)),
                None => String::new(),
            };
            c.reason = format!(
                "{why} ({:.0} ms remotely{on}, {:.0} ms here)",
                c.times[offer], c.local_ms
            );
            true
        }
        Err(Refusal::Capacity) => {
            c.reason = "the broker has no capacity left for it".to_string();
            false
        }
        Err(Refusal::Share) => {
            c.reason = "your maximum remote share of this page's work is reached".to_string();
            false
        }
    }
}

fn engine_name(engine: EngineKind) -> &'static str {
    match engine {
        EngineKind::Quickjs => "QuickJS",
        EngineKind::Node => "V8 (Node)",
        EngineKind::Unknown => "an unknown engine",
    }
}

fn by_id(demand: &PageDemand, a: &Candidate, b: &Candidate) -> Ordering {
    demand.components[a.index]
        .id
        .cmp(&demand.components[b.index].id)
        .then(a.index.cmp(&b.index))
}

/// The first reason: what the page needs against what it may use, and from where.
fn capacity_reason(
    machine: &Machine,
    contention: &ContentionSnapshot,
    demand: &PageDemand,
    q: f64,
    load_ms: f64,
    candidates: &[Candidate],
) -> String {
    // Folded from +0.0: an empty f64 `sum()` is -0.0, which would print as "-0 ms".
    let components_ms = candidates.iter().fold(0.0, |sum, c| sum + c.cpu_ms);
    let mut s = format!(
        "load path needs {load_ms:.0} ms CPU and {} components {components_ms:.0} ms (p{:.0}); this page may use {:.0} of {:.0} idle millicores",
        demand.components.len(),
        q * 100.0,
        machine.capacity_millicores,
        machine.idle_millicores,
    );
    if let Some(f) = &contention.forecast {
        s.push_str(&format!(
            " (idle now {}, forecast {} in {} s)",
            contention.available_cpu_millicores,
            f.available_cpu_millicores,
            f.horizon_ms / 1000
        ));
    }
    if machine.tabs_millicores > 0.0 {
        s.push_str(&format!(
            "; other tabs are expected to need {:.0} millicores more",
            machine.tabs_millicores
        ));
    }
    s
}
