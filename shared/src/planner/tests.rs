//! The planner's behaviour: the seed's threshold rule, completion-time placement with its
//! RTT/bandwidth/speed trade-offs, degrading to all-local, capacity, memory, other tabs, the
//! forecast, and determinism.

use super::*;
use crate::protocol::Quantiles;
use crate::protocol::demand::{ComponentDemand, ComponentKind, PathDemand, PathKind};
use crate::protocol::plan::{ContentionForecast, ContentionSource, ProcessGroupUsage};

fn component(id: &str, cpu_ms: f64, memory: f64) -> ComponentDemand {
    ComponentDemand {
        id: id.into(),
        kind: ComponentKind::Worker,
        url: Some(format!("http://127.0.0.1/{id}.js")),
        source_known: true,
        cpu_ms: Quantiles::exact(cpu_ms),
        memory_bytes: Quantiles::exact(memory),
        offloadable: true,
    }
}

fn page(components: Vec<ComponentDemand>) -> PageDemand {
    PageDemand {
        url: "http://127.0.0.1/page".into(),
        paths: vec![
            PathDemand {
                name: "load".into(),
                kind: PathKind::Load,
                probability: 1.0,
                cpu_ms: Quantiles::exact(20.0),
                memory_bytes: Quantiles::exact(1e6),
                network_bytes: Quantiles::exact(5e4),
                event: None,
                target: None,
                curve: Default::default(),
            },
            PathDemand {
                name: "click button#go".into(),
                kind: PathKind::Interaction,
                probability: 0.5,
                cpu_ms: Quantiles {
                    p10: 1.0,
                    p50: 4.0,
                    p90: 8.0,
                },
                memory_bytes: Quantiles::exact(2e5),
                network_bytes: Quantiles::exact(0.0),
                event: Some("click".into()),
                target: Some("button#go".into()),
                curve: Default::default(),
            },
        ],
        components,
        ..Default::default()
    }
}

/// A worker whose p90 is twice `cpu_ms`, as in the skeleton's tests.
fn demand(worker_cpu_ms: f64) -> PageDemand {
    let mut c = component("worker-0", worker_cpu_ms, 4e6);
    c.cpu_ms = Quantiles {
        p10: worker_cpu_ms / 2.0,
        p50: worker_cpu_ms,
        p90: worker_cpu_ms * 2.0,
    };
    page(vec![c])
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
        ..Default::default()
    }
}

/// Four cores run flat out by eight threads of something else.
fn hogged() -> ContentionSnapshot {
    ContentionSnapshot {
        runnable_tasks: Some(8.0),
        ..contention(0)
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
        speed_factor: None,
        bandwidth_bytes_per_s: 0,
        startup_ms: None,
        engines: Vec::new(),
    }
}

/// A nearby broker that starts components quickly: only the threshold decides.
fn near_broker() -> BrokerTerms {
    BrokerTerms {
        rtt_ms: 0.1,
        startup_ms: Some(5.0),
        bandwidth_bytes_per_s: 100_000_000,
        ..broker()
    }
}

fn run(d: &PageDemand, c: &ContentionSnapshot, p: &Policy, b: Option<&BrokerTerms>) -> Plan {
    run_with_tabs(d, c, p, b, &[])
}

fn run_with_tabs(
    d: &PageDemand,
    c: &ContentionSnapshot,
    p: &Policy,
    b: Option<&BrokerTerms>,
    tabs: &[TabLoad],
) -> Plan {
    plan(PlanInput {
        demand: d,
        contention: c,
        policy: p,
        broker: b,
        tabs,
        source: PlanSource::NativeHost,
    })
}

fn remote_ids(p: &Plan) -> Vec<&str> {
    p.placements
        .iter()
        .filter(|p| p.target == Target::Remote)
        .map(|p| p.component_id.as_str())
        .collect()
}

fn all_local(p: &Plan) -> bool {
    p.remote.is_none() && p.placements.iter().all(|p| p.target == Target::Local)
}

#[test]
fn a_page_without_workers_is_explained_without_negative_zeros() {
    let mut d = demand(10.0);
    d.components.clear();
    let p = run(&d, &contention(4000), &Policy::default(), Some(&broker()));
    assert!(
        p.reasons.iter().all(|r| !r.contains("-0")),
        "{:#?}",
        p.reasons
    );
    assert!(
        p.reasons[0].contains("0 components 0 ms"),
        "{:#?}",
        p.reasons
    );
}

#[test]
fn light_worker_on_idle_machine_stays_local() {
    let p = run(
        &demand(10.0),
        &contention(4000),
        &Policy::default(),
        Some(&broker()),
    );
    assert!(all_local(&p), "{p:#?}");
    assert!(
        p.placements[0]
            .reason
            .starts_with("the broker would finish later")
    );
    // Both estimates are shown: here 20 ms at full speed, remotely start-up and transfer more.
    assert_eq!(p.placements[0].local_ms, Some(20.0));
    assert!(p.placements[0].remote_ms.unwrap() > 20.0);
}

#[test]
fn threshold_rule_sends_the_demand_above_the_local_share_remote() {
    // Three 60 ms workers and a 20 ms load path: 200 millicores over 1 s. Four idle cores
    // run each at full speed here, so only the threshold can move them.
    let d = page(
        (0..3)
            .map(|i| component(&format!("w{i}"), 60.0, 1e5))
            .collect(),
    );
    let tight = Policy {
        local_share: 0.025, // 100 of 4000 idle millicores
        ..Policy::default()
    };
    let p = run(&d, &contention(4000), &tight, Some(&near_broker()));
    // 100 millicores too many: two 60 ms workers go, in id order (equal cost).
    assert_eq!(remote_ids(&p), vec!["w0", "w1"], "{p:#?}");
    assert!(
        p.placements[0]
            .reason
            .starts_with("demand exceeds the local share by 100 millicores"),
        "{}",
        p.placements[0].reason
    );
    assert_eq!(p.placements[2].reason, "fits in the local share");
    // Per path: the load path keeps its own demand plus the local worker.
    assert_eq!(p.paths.len(), 2);
    assert_eq!(p.paths[0].local.cpu_millicores, 80);
    assert_eq!(p.paths[0].remote_components, vec!["w0", "w1"]);
    let leased = p.paths[0].remote.expect("the load path leases");
    assert_eq!(leased.cpu_millicores, 2 * REMOTE_CPU_PER_COMPONENT);
    assert_eq!(p.remote.as_ref().unwrap().resources, leased);
    assert_eq!(p.paths[1].name, "click button#go");
    assert_eq!(p.paths[1].local.cpu_millicores, 8);
    assert!(p.paths[1].remote.is_none());

    // The same page with the default share fits.
    let roomy = run(
        &d,
        &contention(4000),
        &Policy::default(),
        Some(&near_broker()),
    );
    assert!(all_local(&roomy), "{roomy:#?}");
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
    let remote = p.remote.expect("a lease is requested");
    assert_eq!(remote.resources.cpu_millicores, 1000);
    assert!(remote.resources.memory_bytes >= REMOTE_ENGINE_OVERHEAD_BYTES);
    assert!(remote.ttl_ms >= MIN_LEASE_TTL_MS);
    // This broker does not schedule bandwidth, so none is asked (it would refuse any).
    assert_eq!(remote.resources.bandwidth_bytes_per_s, 0);
    let scheduling = BrokerTerms {
        capacity: ResourceAmounts {
            bandwidth_bytes_per_s: 100_000_000,
            ..broker().capacity
        },
        ..broker()
    };
    let p = run(
        &demand(2000.0),
        &contention(64_000),
        &Policy::default(),
        Some(&scheduling),
    );
    let asked = p.remote.expect("a lease").resources;
    assert!(asked.bandwidth_bytes_per_s > 0);
    assert!(asked.fits_within(&scheduling.capacity));
}

#[test]
fn contention_pushes_a_light_worker_remote() {
    // 40 ms of work: local on an idle machine, remote when eight threads share four cores.
    let d = page(vec![component("w", 40.0, 1e5)]);
    let idle = run(&d, &contention(4000), &Policy::default(), Some(&broker()));
    assert!(all_local(&idle), "{idle:#?}");
    let busy = run(&d, &hogged(), &Policy::default(), Some(&broker()));
    assert_eq!(remote_ids(&busy), vec!["w"], "{busy:#?}");
    assert!(busy.placements[0].local_ms.unwrap() > busy.placements[0].remote_ms.unwrap());
}

#[test]
fn rtt_and_bandwidth_decide_whether_transfer_pays() {
    // 150 ms of work on 50 MB of data, on a hogged machine (about 0.4 of a core each).
    let d = page(vec![component("data", 150.0, 50e6)]);
    let fast_link = BrokerTerms {
        bandwidth_bytes_per_s: 1_000_000_000,
        ..broker()
    };
    let p = run(&d, &hogged(), &Policy::default(), Some(&fast_link));
    assert_eq!(remote_ids(&p), vec!["data"], "{p:#?}");

    let slow_link = BrokerTerms {
        rtt_ms: 200.0,
        bandwidth_bytes_per_s: 1_000_000,
        ..broker()
    };
    let p = run(&d, &hogged(), &Policy::default(), Some(&slow_link));
    assert!(all_local(&p), "{p:#?}");
    assert!(
        p.placements[0].reason.contains("would finish later"),
        "{p:#?}"
    );

    // Little data but a long round trip: a short task is not worth it, a long one is.
    let far = BrokerTerms {
        rtt_ms: 300.0,
        ..broker()
    };
    let short = page(vec![component("short", 20.0, 1e4)]);
    assert!(all_local(&run(
        &short,
        &hogged(),
        &Policy::default(),
        Some(&far)
    )));
    let long = page(vec![component("long", 500.0, 1e4)]);
    assert_eq!(
        remote_ids(&run(&long, &hogged(), &Policy::default(), Some(&far))),
        vec!["long"]
    );
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
        assert!(all_local(&p), "{p:#?}");
        assert!(p.placements[0].remote_ms.is_none());
        assert!(
            p.reasons
                .iter()
                .any(|r| r.contains("everything runs locally"))
        );
        assert!(p.paths[0].remote.is_none());
    }
}

#[test]
fn a_slower_broker_gets_nothing() {
    // QuickJS-like: twenty times slower. A 2 s worker would take 40 s there.
    let slow = BrokerTerms {
        speed_factor: Some(20.0),
        ..broker()
    };
    let d = page(vec![
        component("heavy", 2000.0, 1e6),
        component("light", 30.0, 1e5),
    ]);
    for c in [contention(4000), hogged()] {
        let p = run(&d, &c, &Policy::default(), Some(&slow));
        assert!(all_local(&p), "{p:#?}");
        assert!(
            p.reasons
                .iter()
                .any(|r| r.contains("slower than this machine for every component")),
            "{:?}",
            p.reasons
        );
    }
    // Slightly slower than here is within the slack, and the heavy worker still goes.
    let a_bit_slower = BrokerTerms {
        speed_factor: Some(1.1),
        ..broker()
    };
    let p = run(
        &d,
        &contention(4000),
        &Policy::default(),
        Some(&a_bit_slower),
    );
    assert_eq!(remote_ids(&p), vec!["heavy"]);
}

#[test]
fn a_faster_broker_takes_what_it_finishes_sooner() {
    let fast = BrokerTerms {
        speed_factor: Some(0.25),
        ..near_broker()
    };
    // 80 ms is under the heavy threshold and fits locally, but finishes in ~30 ms remotely.
    let d = page(vec![component("w", 80.0, 1e5)]);
    let p = run(&d, &contention(4000), &Policy::default(), Some(&fast));
    assert_eq!(remote_ids(&p), vec!["w"]);
    assert!(
        p.placements[0]
            .reason
            .starts_with("finishes sooner remotely")
    );
    // A known speed sizes the TTL; the floor still applies.
    assert_eq!(p.remote.unwrap().ttl_ms, MIN_LEASE_TTL_MS);
}

#[test]
fn the_brokers_capacity_bounds_the_lease() {
    let small = BrokerTerms {
        capacity: ResourceAmounts {
            cpu_millicores: 2000,
            memory_bytes: 1 << 30,
            bandwidth_bytes_per_s: 0,
        },
        ..broker()
    };
    let d = page(
        (0..4)
            .map(|i| component(&format!("h{i}"), 1000.0, 1e6))
            .collect(),
    );
    let p = run(&d, &contention(4000), &Policy::default(), Some(&small));
    assert_eq!(remote_ids(&p).len(), 2, "{p:#?}");
    assert_eq!(p.remote.unwrap().resources.cpu_millicores, 2000);
    let refused: Vec<_> = p
        .placements
        .iter()
        .filter(|p| p.reason == "the broker has no capacity left for it")
        .collect();
    assert_eq!(refused.len(), 2);
}

#[test]
fn memory_above_the_local_share_goes_remote() {
    // Two light workers of 300 MB each with 1 GiB available: the share is 512 MiB.
    let d = page(vec![
        component("small", 30.0, 1e6),
        component("big-a", 30.0, 300e6),
        component("big-b", 30.0, 300e6),
    ]);
    let c = ContentionSnapshot {
        available_memory_bytes: 1 << 30,
        ..contention(4000)
    };
    let fast_link = BrokerTerms {
        bandwidth_bytes_per_s: 10_000_000_000,
        ..near_broker()
    };
    let generous = Policy {
        offload_slack: 100.0, // only memory decides here, not transfer time
        ..Policy::default()
    };
    let p = run(&d, &c, &generous, Some(&fast_link));
    assert_eq!(remote_ids(&p), vec!["big-a"], "{p:#?}");
    assert!(
        p.placements[1]
            .reason
            .starts_with("memory exceeds the local share")
    );
}

#[test]
fn other_tabs_and_the_forecast_shrink_the_local_share() {
    let d = page(
        (0..4)
            .map(|i| component(&format!("w{i}"), 60.0, 1e5))
            .collect(),
    );
    let c = contention(4000);
    let policy = Policy {
        local_share: 0.1, // 400 millicores: room for the load path and all four workers
        ..Policy::default()
    };
    assert!(all_local(&run(&d, &c, &policy, Some(&near_broker()))));

    // A visible tab predicted at 400 ms, of which the browser already burns 100: 300 less.
    let tabs = [
        TabLoad {
            tab_id: 3,
            active: true,
            visible: true,
            predicted_cpu_ms: 400.0,
            ..Default::default()
        },
        TabLoad {
            tab_id: 4,
            discarded: true,
            predicted_cpu_ms: 10_000.0,
            ..Default::default()
        },
    ];
    let with_browser = ContentionSnapshot {
        browser: Some(ProcessGroupUsage {
            processes: 5,
            cpu_millicores: 100,
            memory_bytes: 1 << 30,
        }),
        ..c.clone()
    };
    let p = run_with_tabs(&d, &with_browser, &policy, Some(&near_broker()), &tabs);
    // 100 millicores left for 260 of demand: three of the four workers go.
    assert_eq!(remote_ids(&p).len(), 3, "{p:#?}");
    assert!(p.reasons[0].contains("other tabs are expected to need 300 millicores more"));

    // Idle now, but the forecast says the machine is filling up: plan for the forecast,
    // under which the workers would also run slower here.
    let filling = ContentionSnapshot {
        forecast: Some(ContentionForecast {
            horizon_ms: 5000,
            available_cpu_millicores: 1500,
            available_memory_bytes: 4 << 30,
            cpu_trend_millicores_per_s: -400.0,
            memory_trend_bytes_per_s: 0.0,
        }),
        ..c
    };
    let p = run(&d, &filling, &policy, Some(&near_broker()));
    assert_eq!(remote_ids(&p).len(), 4, "{p:#?}");
    assert!(
        p.reasons[0].contains("forecast 1500 in 5 s"),
        "{}",
        p.reasons[0]
    );
    assert!(p.reasons[0].contains("this page may use 150 of 1500 idle"));
}

#[test]
fn hostile_numbers_give_a_sane_plan() {
    let mut d = demand(f64::NAN);
    d.components[0].memory_bytes = Quantiles::exact(f64::INFINITY);
    d.paths[0].cpu_ms = Quantiles::exact(-5.0);
    let policy = Policy {
        quantile: f64::NAN,
        horizon_ms: -1.0,
        local_share: f64::INFINITY,
        offload_slack: f64::NAN,
        ..Policy::default()
    };
    let b = BrokerTerms {
        rtt_ms: f64::NAN,
        speed_factor: Some(-3.0),
        startup_ms: Some(f64::INFINITY),
        ..broker()
    };
    let p = run(&d, &contention(0), &policy, Some(&b));
    // A NaN would serialize as `null` and not come back: every number must be finite.
    let json = serde_json::to_string(&p).expect("a plan always serializes");
    let back: Plan = serde_json::from_str(&json).expect("and decodes");
    assert_eq!(back, p, "{json}");
    assert!(p.expected_completion_ms.is_some_and(f64::is_finite));
}

#[test]
fn is_deterministic() {
    let d = page(
        (0..50)
            .map(|i| component(&format!("w{}", i % 7), 10.0 * f64::from(i), 1e6))
            .collect(),
    );
    let b = broker();
    let a = run(&d, &hogged(), &Policy::default(), Some(&b));
    let again = run(&d, &hogged(), &Policy::default(), Some(&b));
    assert_eq!(a, again);
    assert_eq!(
        serde_json::to_string(&a).unwrap(),
        serde_json::to_string(&again).unwrap()
    );
}

#[test]
fn a_thousand_components_are_all_placed() {
    let d = page(
        (0..1000)
            .map(|i| component(&format!("w{i:04}"), f64::from(i % 97), 1e5))
            .collect(),
    );
    let p = run(&d, &hogged(), &Policy::default(), Some(&broker()));
    assert_eq!(p.placements.len(), 1000);
    // The broker's 4000 millicores hold four workers; the rest stay and say why.
    assert_eq!(remote_ids(&p).len(), 4);
}

#[test]
fn the_users_maximum_remote_share_caps_what_leaves_the_machine() {
    // Three heavy workers (300 ms each) on a hogged machine: all would go remote.
    let d = page(vec![
        component("worker-a", 300.0, 1e6),
        component("worker-b", 300.0, 1e6),
        component("worker-c", 300.0, 1e6),
    ]);
    let all = run(&d, &hogged(), &Policy::default(), Some(&near_broker()));
    assert_eq!(remote_ids(&all).len(), 3);

    // Half of the page's ~920 ms of CPU may go remote: one worker fits, a second would not.
    let half = Policy {
        max_remote_share: 0.5,
        ..Policy::default()
    };
    let capped = run(&d, &hogged(), &half, Some(&near_broker()));
    assert_eq!(remote_ids(&capped).len(), 1);
    let refused: Vec<&Placement> = capped
        .placements
        .iter()
        .filter(|p| p.target == Target::Local)
        .collect();
    assert!(
        refused
            .iter()
            .all(|p| p.reason.contains("maximum remote share")),
        "{refused:?}"
    );

    // A cap of zero keeps everything here, and the plan asks for no lease.
    let none = Policy {
        max_remote_share: 0.0,
        ..Policy::default()
    };
    let local = run(&d, &hogged(), &none, Some(&near_broker()));
    assert!(remote_ids(&local).is_empty());
    assert!(local.remote.is_none());
}

/// A broker with both engines: QuickJS starts at once but runs at half the browser's speed;
/// V8 in Node runs at the browser's speed but takes 20 ms to start, one worker at a time.
fn two_engine_broker() -> BrokerTerms {
    use crate::protocol::plan::EngineTerms;
    BrokerTerms {
        engines: vec![
            EngineTerms {
                engine: EngineKind::Quickjs,
                speed_factor: Some(2.0),
                startup_ms: Some(1.0),
                max_workers: 0,
            },
            EngineTerms {
                engine: EngineKind::Node,
                speed_factor: Some(1.0),
                startup_ms: Some(20.0),
                max_workers: 1,
            },
        ],
        ..near_broker()
    }
}

fn engine_of<'p>(p: &'p Plan, id: &str) -> &'p Placement {
    p.placements
        .iter()
        .find(|p| p.component_id == id)
        .unwrap_or_else(|| panic!("no placement for {id}: {p:#?}"))
}

#[test]
fn heavy_components_go_to_v8_and_tiny_ones_where_start_up_is_cheapest() {
    let d = page(vec![
        component("tiny", 3.0, 1e5),
        component("heavy-a", 3000.0, 1e5),
        component("heavy-b", 2000.0, 1e5),
    ]);
    let p = run(
        &d,
        &hogged(),
        &Policy::default(),
        Some(&two_engine_broker()),
    );
    assert_eq!(remote_ids(&p).len(), 3, "{p:#?}");
    // The biggest gain is placed first and takes Node's one worker.
    let a = engine_of(&p, "heavy-a");
    assert_eq!(a.engine, Some(EngineKind::Node), "{a:#?}");
    assert!(a.reason.contains("on V8 (Node)"), "{}", a.reason);
    // Node is full: the next heavy one still gains on QuickJS against a hogged machine.
    let b = engine_of(&p, "heavy-b");
    assert_eq!(b.engine, Some(EngineKind::Quickjs), "{b:#?}");
    assert!(b.remote_ms.unwrap() > 2.0 * 2000.0, "{b:#?}");
    // A few ms of work: Node's start-up would cost more than QuickJS's slower run.
    let tiny = engine_of(&p, "tiny");
    assert_eq!(tiny.engine, Some(EngineKind::Quickjs), "{tiny:#?}");
    assert!(tiny.remote_ms.unwrap() < 20.0, "{tiny:#?}");
    // The lease lives long enough for the slowest engine in use.
    assert!(p.remote.is_some());

    // With room on Node, both heavy ones run there.
    let mut roomy = two_engine_broker();
    roomy.engines[1].max_workers = 0;
    let p = run(&d, &hogged(), &Policy::default(), Some(&roomy));
    for id in ["heavy-a", "heavy-b"] {
        assert_eq!(engine_of(&p, id).engine, Some(EngineKind::Node), "{p:#?}");
    }
    assert_eq!(engine_of(&p, "tiny").engine, Some(EngineKind::Quickjs));
}

#[test]
fn a_full_fast_engine_leaves_work_local_when_the_slow_one_would_lose() {
    // An idle machine: heavy work is quicker here than on QuickJS at half speed.
    let d = page(vec![
        component("heavy-a", 3000.0, 1e5),
        component("heavy-b", 2000.0, 1e5),
    ]);
    let p = run(
        &d,
        &contention(4000),
        &Policy::default(),
        Some(&two_engine_broker()),
    );
    // Heavy work goes remote on an idle machine only because it is heavy: one takes Node's
    // worker (the two gain the same), the other would lose on QuickJS and stays here.
    let remote = remote_ids(&p);
    assert_eq!(remote.len(), 1, "{p:#?}");
    assert_eq!(engine_of(&p, remote[0]).engine, Some(EngineKind::Node));
    let other = p
        .placements
        .iter()
        .find(|x| x.target == Target::Local)
        .expect("one local");
    assert_eq!(other.engine, None);
    assert!(
        other.reason.contains("runs its most workers"),
        "{}",
        other.reason
    );
}

#[test]
fn a_broker_without_engines_or_with_unknown_ones_is_planned_as_before() {
    use crate::protocol::plan::EngineTerms;
    let d = demand(3000.0);
    let before = run(&d, &hogged(), &Policy::default(), Some(&near_broker()));
    assert_eq!(remote_ids(&before), vec!["worker-0"]);
    assert_eq!(before.placements[0].engine, None);
    let unknown = BrokerTerms {
        engines: vec![EngineTerms {
            engine: EngineKind::Unknown,
            speed_factor: Some(0.001),
            startup_ms: Some(0.0),
            max_workers: 1,
        }],
        ..near_broker()
    };
    assert_eq!(
        run(&d, &hogged(), &Policy::default(), Some(&unknown)),
        before
    );
    // Engines not measured yet cannot be compared: the broker's default engine decides.
    let mut unmeasured = two_engine_broker();
    for e in &mut unmeasured.engines {
        e.speed_factor = None;
    }
    let p = run(&d, &hogged(), &Policy::default(), Some(&unmeasured));
    assert_eq!(remote_ids(&p), vec!["worker-0"]);
    assert_eq!(p.placements[0].engine, None);
}
