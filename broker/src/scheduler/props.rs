//! The capacity invariant under random operation sequences: after every step of every
//! sequence, [`Scheduler::check`] must pass (nothing over-committed, every total and index
//! consistent), epochs must only increase, and every request must have been answered or be
//! waiting within its deadline.

use std::collections::HashMap;

use proptest::prelude::*;

use super::*;

#[derive(Debug, Clone)]
enum Op {
    Request {
        client: u64,
        cpu: u64,
        mem: u64,
        partial: bool,
        ttl: u64,
        priority: u8,
        wait: u64,
    },
    Renew {
        client: u64,
        pick: usize,
        ttl: u64,
    },
    Release {
        client: u64,
        pick: usize,
    },
    Disconnect {
        client: u64,
    },
    Keepalive {
        client: u64,
    },
    Capacity {
        cpu: u64,
        mem: u64,
        notice: bool,
    },
    Advance {
        by: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (0..6u64, 0..1500u64, 0..1500u64, any::<bool>(), 1..400u64, 0..4u8, prop_oneof![Just(0u64), 1..300u64])
            .prop_map(|(client, cpu, mem, partial, ttl, priority, wait)| Op::Request {
                client, cpu, mem, partial, ttl, priority, wait,
            }),
        2 => (0..6u64, any::<usize>(), 0..500u64).prop_map(|(client, pick, ttl)| Op::Renew { client, pick, ttl }),
        2 => (0..6u64, any::<usize>()).prop_map(|(client, pick)| Op::Release { client, pick }),
        1 => (0..6u64).prop_map(|client| Op::Disconnect { client }),
        1 => (0..6u64).prop_map(|client| Op::Keepalive { client }),
        1 => (500..3000u64, 500..3000u64, any::<bool>())
            .prop_map(|(cpu, mem, notice)| Op::Capacity { cpu, mem, notice }),
        3 => (0..200u64).prop_map(|by| Op::Advance { by }),
    ]
}

fn r(cpu: u64, mem: u64) -> ResourceAmounts {
    ResourceAmounts {
        cpu_millicores: cpu,
        memory_bytes: mem,
        bandwidth_bytes_per_s: 0,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn never_over_commits_and_always_answers(grace in prop_oneof![Just(0u64), 1..100u64],
                                             scaling in any::<bool>(),
                                             ops in proptest::collection::vec(op(), 1..200)) {
        let mut s = Scheduler::new(SchedulerConfig {
            capacity: r(2000, 2000),
            ceiling: scaling.then(|| r(3000, 3000)),
            max_ttl_ms: 300,
            revoke_grace_ms: grace,
            max_wait_ms: 250,
            max_queue: 12,
            max_queued_per_client: 4,
        });
        // Half the clients share a quota, as one hosted token would.
        for client in 0..3 {
            s.join_account(client, 1, Some(r(1200, 1200)), 2);
        }
        let mut now = 0u64;
        let mut next_request = 0u64;
        let mut last_epoch = 0u64;
        // request id -> (client, answer deadline) for requests not yet answered for good.
        let mut open: HashMap<u64, (u64, u64)> = HashMap::new();
        for op in ops {
            let mut out = Vec::new();
            match op {
                Op::Request { client, cpu, mem, partial, ttl, priority, wait } => {
                    next_request += 1;
                    open.insert(next_request, (client, now + wait));
                    s.request(client, LeaseRequest {
                        request_id: next_request,
                        resources: r(cpu, mem),
                        min_resources: partial.then(|| r(cpu / 2, mem / 2)),
                        ttl_ms: ttl,
                        priority,
                        max_wait_ms: wait,
                        purpose: String::new(),
                    }, now, &mut out);
                }
                Op::Renew { client, pick, ttl } => {
                    let ids: Vec<LeaseId> = s.books.get(&client).map(|b| b.leases.iter().copied().collect()).unwrap_or_default();
                    if !ids.is_empty() {
                        let _ = s.renew(client, ids[pick % ids.len()], ttl, now, &mut out);
                    }
                }
                Op::Release { client, pick } => {
                    let ids: Vec<LeaseId> = s.books.get(&client).map(|b| b.leases.iter().copied().collect()).unwrap_or_default();
                    if !ids.is_empty() {
                        prop_assert!(s.release(client, ids[pick % ids.len()], now, &mut out));
                    }
                }
                Op::Disconnect { client } => {
                    open.retain(|_, (c, _)| *c != client);
                    s.disconnect(client, now, &mut out);
                }
                Op::Keepalive { client } => s.renew_all(client, now, &mut out),
                Op::Capacity { cpu, mem, notice } => {
                    s.set_capacity(r(cpu, mem), if notice { 50 } else { 0 }, now, &mut out);
                }
                Op::Advance { by } => {
                    now += by;
                    s.advance(now, &mut out);
                }
            }
            if let Err(e) = s.check() {
                return Err(TestCaseError::fail(format!("after {out:?}: {e}")));
            }
            for n in &out {
                match &n.kind {
                    NoticeKind::Granted { request_id, lease, .. } => {
                        prop_assert!(lease.epoch > last_epoch);
                        last_epoch = lease.epoch;
                        prop_assert!(open.remove(request_id).is_some(), "answered twice");
                    }
                    NoticeKind::Denied { request_id, .. } => {
                        prop_assert!(open.remove(request_id).is_some(), "answered twice");
                    }
                    _ => {}
                }
            }
            // Nothing waits past its deadline: `advance` to a deadline answers it.
            for (id, (_, deadline)) in &open {
                prop_assert!(*deadline > now, "request {id} still open at {now}, deadline {deadline}");
            }
        }
    }
}
