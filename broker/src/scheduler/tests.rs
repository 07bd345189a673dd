//! The engine's rules, one scenario each; the property test is in `props.rs`.

use super::*;

const GIB: u64 = 1024 * 1024 * 1024;

fn r(cpu: u64, mem: u64) -> ResourceAmounts {
    ResourceAmounts {
        cpu_millicores: cpu,
        memory_bytes: mem,
        bandwidth_bytes_per_s: 0,
    }
}

fn config(capacity: ResourceAmounts) -> SchedulerConfig {
    SchedulerConfig {
        capacity,
        ceiling: None,
        max_ttl_ms: 60_000,
        revoke_grace_ms: 0,
        max_wait_ms: 30_000,
        max_queue: 100,
        max_queued_per_client: 20,
    }
}

fn req(request_id: u64, resources: ResourceAmounts) -> LeaseRequest {
    LeaseRequest {
        request_id,
        resources,
        min_resources: None,
        ttl_ms: 10_000,
        priority: 0,
        max_wait_ms: 0,
        purpose: String::new(),
    }
}

fn waiting(request_id: u64, resources: ResourceAmounts) -> LeaseRequest {
    LeaseRequest {
        max_wait_ms: 10_000,
        ..req(request_id, resources)
    }
}

/// Runs `op`, checks the invariants, returns what it said.
fn step(s: &mut Scheduler, op: impl FnOnce(&mut Scheduler, &mut Vec<Notice>)) -> Vec<Notice> {
    let mut out = Vec::new();
    op(s, &mut out);
    if let Err(e) = s.check() {
        panic!("invariant broken: {e}\n{s:#?}");
    }
    out
}

fn granted(notices: &[Notice], client: ClientId) -> Vec<Lease> {
    notices
        .iter()
        .filter(|n| n.client == client)
        .filter_map(|n| match &n.kind {
            NoticeKind::Granted { lease, .. } => Some(lease.clone()),
            _ => None,
        })
        .collect()
}

fn only(notices: &[Notice]) -> &NoticeKind {
    assert_eq!(notices.len(), 1, "{notices:#?}");
    &notices[0].kind
}

#[test]
fn drf_paper_case_a_gets_three_tasks_and_b_two() {
    // Ghodsi et al. 2011, section 4: <9 CPU, 18 GB>; A's tasks need <1 CPU, 4 GB>, B's
    // <3 CPU, 1 GB>. DRF gives A three tasks and B two, equalising dominant shares at 2/3.
    let mut s = Scheduler::new(config(r(9000, 18 * GIB)));
    let (a, b, blocker) = (1, 2, 3);
    let held = step(&mut s, |s, o| {
        s.request(blocker, req(0, r(9000, 18 * GIB)), 0, o)
    });
    let blocker_lease = granted(&held, blocker)[0].lease_id;
    // Both keep asking, A first, while the pool is full.
    for i in 0..10 {
        step(&mut s, |s, o| {
            s.request(a, waiting(i, r(1000, 4 * GIB)), 1, o)
        });
        step(&mut s, |s, o| {
            s.request(b, waiting(100 + i, r(3000, GIB)), 1, o)
        });
    }
    let freed = step(&mut s, |s, o| {
        assert!(s.release(blocker, blocker_lease, 2, o));
    });
    assert_eq!(granted(&freed, a).len(), 3, "{freed:#?}");
    assert_eq!(granted(&freed, b).len(), 2, "{freed:#?}");
    assert_eq!(s.granted(), r(9000, 14 * GIB));
}

#[test]
fn priority_comes_first_then_the_smaller_share() {
    let mut s = Scheduler::new(config(r(4000, 4 * GIB)));
    let mut blocker = req(0, r(4000, GIB));
    blocker.priority = 5;
    let blocker = granted(&step(&mut s, |s, o| s.request(9, blocker, 0, o)), 9)[0].lease_id;
    // Client 1 already holds a quarter of the memory; clients 2 and 3 hold nothing.
    step(&mut s, |s, o| s.request(1, req(1, r(0, GIB)), 0, o));
    step(&mut s, |s, o| s.request(1, waiting(2, r(2000, GIB)), 0, o));
    let out = step(&mut s, |s, o| s.request(2, waiting(3, r(2000, GIB)), 0, o));
    assert!(
        matches!(only(&out), NoticeKind::Queued { position: 1, .. }),
        "{out:#?}"
    );
    let mut urgent = waiting(4, r(2000, GIB));
    urgent.priority = 1;
    // Ahead of everyone; it cannot preempt the priority-5 blocker, and revoking client 1's
    // memory-only lease would not give it CPU, so nobody is revoked.
    let out = step(&mut s, |s, o| s.request(3, urgent, 0, o));
    assert!(
        matches!(only(&out), NoticeKind::Queued { position: 1, .. }),
        "{out:#?}"
    );
    let out = step(&mut s, |s, o| assert!(s.release(9, blocker, 1, o)));
    assert_eq!(granted(&out, 3).len(), 1, "{out:#?}");
    assert_eq!(granted(&out, 2).len(), 1, "{out:#?}");
    assert!(granted(&out, 1).is_empty(), "{out:#?}");
}

#[test]
fn requests_that_never_fit_are_denied_at_once() {
    let mut s = Scheduler::new(config(r(2000, GIB)));
    for (request, want) in [
        (waiting(1, r(2001, 1)), DenyReason::Infeasible),
        (req(2, r(0, 0)), DenyReason::InvalidRequest),
        (
            LeaseRequest {
                ttl_ms: 60_001,
                ..waiting(3, r(1, 1))
            },
            DenyReason::InvalidRequest,
        ),
        (
            LeaseRequest {
                max_wait_ms: 30_001,
                ..req(4, r(1, 1))
            },
            DenyReason::InvalidRequest,
        ),
        (
            LeaseRequest {
                min_resources: Some(r(3, 1)),
                ..req(5, r(2, 1))
            },
            DenyReason::InvalidRequest,
        ),
    ] {
        let out = step(&mut s, |s, o| s.request(1, request, 0, o));
        match only(&out) {
            NoticeKind::Denied {
                reason, message, ..
            } => {
                assert_eq!(*reason, want, "{message}");
                assert!(!message.is_empty());
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(s.queue_len(), 0);
}

#[test]
fn a_request_that_does_not_wait_is_answered_at_once() {
    let mut s = Scheduler::new(config(r(2000, GIB)));
    step(&mut s, |s, o| s.request(1, req(1, r(1500, GIB / 2)), 0, o));
    let out = step(&mut s, |s, o| s.request(2, req(2, r(1000, 1)), 0, o));
    assert!(matches!(
        only(&out),
        NoticeKind::Denied {
            reason: DenyReason::InsufficientCapacity,
            ..
        }
    ));
    assert_eq!(s.queue_len(), 0);
}

#[test]
fn a_queued_request_is_granted_when_room_appears_or_denied_when_its_wait_ends() {
    let mut s = Scheduler::new(config(r(2000, GIB)));
    let a = granted(
        &step(&mut s, |s, o| s.request(1, req(1, r(2000, 1)), 0, o)),
        1,
    )[0]
    .clone();
    let out = step(&mut s, |s, o| s.request(2, waiting(7, r(1000, 1)), 100, o));
    match only(&out) {
        NoticeKind::Queued {
            request_id,
            position,
            estimated_wait_ms,
        } => {
            assert_eq!((*request_id, *position), (7, 1));
            // Lease `a` runs to 10_000; the request came at 100.
            assert_eq!(*estimated_wait_ms, Some(9_900));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(s.next_deadline(), Some(a.expires_at_ms));
    // Expiry at 10_000 frees the pool: the queued request is served in the same step.
    let out = step(&mut s, |s, o| s.advance(10_000, o));
    assert_eq!(out.len(), 2, "{out:#?}");
    assert!(matches!(
        out[0].kind,
        NoticeKind::Ended {
            reason: EndReason::Expired,
            ..
        }
    ));
    assert_eq!(granted(&out, 2).len(), 1);

    // Nobody frees anything in time: the wait runs out with a denial, never silence.
    let impatient = LeaseRequest {
        max_wait_ms: 5_000,
        ..waiting(8, r(2000, 1))
    };
    let out = step(&mut s, |s, o| s.request(3, impatient, 10_000, o));
    assert!(matches!(only(&out), NoticeKind::Queued { .. }));
    assert_eq!(s.next_deadline(), Some(15_000));
    let out = step(&mut s, |s, o| s.advance(14_999, o));
    assert!(out.is_empty());
    let out = step(&mut s, |s, o| s.advance(15_000, o));
    match only(&out) {
        NoticeKind::Denied {
            request_id: 8,
            reason: DenyReason::InsufficientCapacity,
            message,
        } => assert!(message.contains("5000 ms"), "{message}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_best_ranked_request_blocks_the_line_so_big_requests_are_not_starved() {
    let mut s = Scheduler::new(config(r(2000, GIB)));
    let a = granted(
        &step(&mut s, |s, o| s.request(1, req(1, r(1000, 1)), 0, o)),
        1,
    )[0]
    .clone();
    step(&mut s, |s, o| s.request(2, waiting(2, r(2000, 1)), 0, o));
    // 1000 is free, but the big request is first in line: the small one waits behind it.
    let out = step(&mut s, |s, o| s.request(3, waiting(3, r(500, 1)), 0, o));
    assert!(
        matches!(only(&out), NoticeKind::Queued { position: 2, .. }),
        "{out:#?}"
    );
    let out = step(&mut s, |s, o| assert!(s.release(1, a.lease_id, 1, o)));
    assert_eq!(granted(&out, 2).len(), 1);
    assert!(granted(&out, 3).is_empty());
}

#[test]
fn partial_grants_take_what_is_free_down_to_the_minimum() {
    let mut s = Scheduler::new(config(r(2000, GIB)));
    step(&mut s, |s, o| s.request(1, req(1, r(1500, GIB / 4)), 0, o));
    let flexible = LeaseRequest {
        min_resources: Some(r(250, GIB / 4)),
        ..req(2, r(1000, GIB / 2))
    };
    let out = step(&mut s, |s, o| s.request(2, flexible.clone(), 0, o));
    assert_eq!(granted(&out, 2)[0].resources, r(500, GIB / 2));
    // Below the minimum: no partial grant.
    let out = step(&mut s, |s, o| s.request(3, flexible, 0, o));
    assert!(matches!(only(&out), NoticeKind::Denied { .. }));
    // A minimum within the pool makes an oversized request feasible.
    let big = LeaseRequest {
        min_resources: Some(r(1, 1)),
        ..req(4, r(99_000, 99 * GIB))
    };
    let mut fresh = Scheduler::new(config(r(2000, GIB)));
    let out = step(&mut fresh, |s, o| s.request(4, big, 0, o));
    assert_eq!(granted(&out, 4)[0].resources, r(2000, GIB));
}

#[test]
fn higher_priority_preempts_lower_with_notice_and_grace() {
    let mut cfg = config(r(2000, GIB));
    cfg.revoke_grace_ms = 500;
    let mut s = Scheduler::new(cfg);
    let low = granted(
        &step(&mut s, |s, o| s.request(1, req(1, r(1500, 1)), 0, o)),
        1,
    )[0]
    .clone();
    let mut mid = req(2, r(500, 1));
    mid.priority = 5;
    let mid = granted(&step(&mut s, |s, o| s.request(2, mid, 0, o)), 2)[0].clone();
    let mut high = waiting(3, r(1000, 1));
    high.priority = 5;
    let out = step(&mut s, |s, o| s.request(3, high, 1_000, o));
    // The priority-0 lease is revoked with notice; the equal-priority one is not touched.
    assert_eq!(out.len(), 2, "{out:#?}");
    assert_eq!(
        out[0],
        Notice {
            client: 1,
            kind: NoticeKind::Revoking {
                lease_id: low.lease_id,
                cause: RevokeCause::Preempted,
                ends_at_ms: 1_500
            }
        }
    );
    assert!(matches!(
        out[1].kind,
        NoticeKind::Queued {
            estimated_wait_ms: Some(500),
            ..
        }
    ));
    // Still held during the grace: no over-commit, and no renewal past it.
    assert_eq!(s.granted(), r(2000, 2));
    let mut ignored = Vec::new();
    assert_eq!(
        s.renew(1, low.lease_id, 10_000, 1_100, &mut ignored),
        Err(RenewError::Revoking { ends_at_ms: 1_500 })
    );
    let out = step(&mut s, |s, o| s.advance(1_500, o));
    assert!(matches!(
        out[0].kind,
        NoticeKind::Ended {
            reason: EndReason::Revoked(RevokeCause::Preempted),
            ..
        }
    ));
    let lease = granted(&out, 3)[0].clone();
    assert!(lease.epoch > mid.epoch && mid.epoch > low.epoch);
}

#[test]
fn preemption_only_when_it_makes_room_and_never_of_equal_priority() {
    let mut s = Scheduler::new(config(r(2000, GIB)));
    step(&mut s, |s, o| s.request(1, req(1, r(1000, 1)), 0, o));
    let mut same = req(2, r(1000, 1));
    same.priority = 3;
    step(&mut s, |s, o| s.request(2, same, 0, o));
    // Needs 2000: revoking the low lease alone frees 1000, not enough — nobody is revoked.
    let mut high = waiting(3, r(2000, 1));
    high.priority = 3;
    let out = step(&mut s, |s, o| s.request(3, high, 0, o));
    assert!(matches!(only(&out), NoticeKind::Queued { .. }), "{out:#?}");
    assert_eq!(s.lease_count(), 2);
    // With grace 0 a fitting preemption takes effect in the same step.
    let mut top = req(4, r(1000, 1));
    top.priority = 9;
    let out = step(&mut s, |s, o| s.request(4, top, 0, o));
    assert!(matches!(
        out[0].kind,
        NoticeKind::Ended {
            reason: EndReason::Revoked(RevokeCause::Preempted),
            ..
        }
    ));
    assert_eq!(out[0].client, 1, "the priority-0 lease goes first");
    assert_eq!(granted(&out, 4).len(), 1, "{out:#?}");
}

#[test]
fn renew_follows_the_ttl_rule_and_never_changes_it_silently() {
    let mut s = Scheduler::new(config(r(2000, GIB)));
    let a = granted(&step(&mut s, |s, o| s.request(1, req(1, r(1, 1)), 0, o)), 1)[0].clone();
    let out = step(&mut s, |s, o| s.renew(1, a.lease_id, 500, 50, o).unwrap());
    assert_eq!(
        only(&out),
        &NoticeKind::Renewed {
            lease_id: a.lease_id,
            expires_at_ms: 550
        }
    );
    assert_eq!(s.lease(1, a.lease_id).map(|l| l.ttl_ms), Some(500));
    let mut out = Vec::new();
    assert_eq!(
        s.renew(2, a.lease_id, 500, 50, &mut out),
        Err(RenewError::NotFound)
    );
    assert!(matches!(
        s.renew(1, a.lease_id, 0, 50, &mut out),
        Err(RenewError::InvalidTtl(_))
    ));
    assert!(matches!(
        s.renew(1, a.lease_id, 60_001, 50, &mut out),
        Err(RenewError::InvalidTtl(m)) if m.contains("60000")
    ));
    assert_eq!(s.lease(1, a.lease_id).map(|l| l.expires_at_ms), Some(550));
    // Past the deadline it is gone, and the client hears so first.
    let mut out = Vec::new();
    assert_eq!(
        s.renew(1, a.lease_id, 10, 550, &mut out),
        Err(RenewError::NotFound)
    );
    assert!(matches!(
        only(&out),
        NoticeKind::Ended {
            reason: EndReason::Expired,
            ..
        }
    ));
}

#[test]
fn release_is_owner_only_and_disconnect_serves_the_queue() {
    let mut s = Scheduler::new(config(r(2000, GIB)));
    let a = granted(
        &step(&mut s, |s, o| s.request(1, req(1, r(2000, 1)), 0, o)),
        1,
    )[0]
    .clone();
    let mut out = Vec::new();
    assert!(!s.release(2, a.lease_id, 0, &mut out));
    step(&mut s, |s, o| s.request(2, waiting(2, r(2000, 1)), 0, o));
    step(&mut s, |s, o| s.request(1, waiting(3, r(1, 1)), 0, o));
    let out = step(&mut s, |s, o| s.disconnect(1, 1, o));
    assert_eq!(
        out[0],
        Notice {
            client: 1,
            kind: NoticeKind::Ended {
                lease_id: a.lease_id,
                reason: EndReason::Disconnected
            }
        }
    );
    assert_eq!(granted(&out, 2).len(), 1);
    assert_eq!(s.queue_len(), 0, "the gone client's request left the queue");
}

#[test]
fn a_smaller_pool_revokes_what_no_longer_fits_at_once() {
    let mut s = Scheduler::new(config(r(4000, GIB)));
    let mut ids = Vec::new();
    for (client, priority) in [(1, 0u8), (2, 5), (3, 0)] {
        let mut q = req(client, r(1000, 1));
        q.priority = priority;
        ids.push(granted(&step(&mut s, |s, o| s.request(client, q, 0, o)), client)[0].lease_id);
    }
    step(&mut s, |s, o| s.request(4, waiting(9, r(4000, 1)), 0, o));
    let out = step(&mut s, |s, o| s.set_capacity(r(2000, GIB), 0, 5, o));
    // Newest of the lowest priority goes; the queued request can never fit now.
    assert_eq!(out.len(), 2, "{out:#?}");
    assert_eq!(
        out[0],
        Notice {
            client: 3,
            kind: NoticeKind::Ended {
                lease_id: ids[2],
                reason: EndReason::Revoked(RevokeCause::CapacityReduced)
            }
        }
    );
    assert!(matches!(
        out[1].kind,
        NoticeKind::Denied {
            reason: DenyReason::Infeasible,
            ..
        }
    ));
    // Growing serves the queue again.
    step(&mut s, |s, o| s.request(4, waiting(10, r(1000, 1)), 6, o));
    let out = step(&mut s, |s, o| s.set_capacity(r(3000, GIB), 0, 7, o));
    assert_eq!(granted(&out, 4).len(), 1);
}

#[test]
fn drain_denies_the_queue_revokes_with_notice_and_grants_nothing() {
    let mut s = Scheduler::new(config(r(2000, GIB)));
    let a = granted(
        &step(&mut s, |s, o| s.request(1, req(1, r(2000, 1)), 0, o)),
        1,
    )[0]
    .clone();
    step(&mut s, |s, o| s.request(2, waiting(2, r(1, 1)), 0, o));
    let out = step(&mut s, |s, o| s.drain(3_000, 100, o));
    assert!(matches!(
        out[0].kind,
        NoticeKind::Denied {
            reason: DenyReason::ShuttingDown,
            ..
        }
    ));
    assert_eq!(
        out[1].kind,
        NoticeKind::Revoking {
            lease_id: a.lease_id,
            cause: RevokeCause::ShuttingDown,
            ends_at_ms: 3_100
        }
    );
    let out = step(&mut s, |s, o| s.request(3, req(3, r(1, 1)), 200, o));
    assert!(matches!(
        only(&out),
        NoticeKind::Denied {
            reason: DenyReason::ShuttingDown,
            ..
        }
    ));
    // Released during the drain: freed, and still nothing is granted.
    let out = step(&mut s, |s, o| assert!(s.release(1, a.lease_id, 300, o)));
    assert_eq!(
        only(&out),
        &NoticeKind::Released {
            lease_id: a.lease_id
        }
    );
    assert_eq!(s.lease_count(), 0);
}

#[test]
fn the_queue_is_bounded() {
    let mut cfg = config(r(1000, GIB));
    cfg.max_queued_per_client = 2;
    let mut s = Scheduler::new(cfg);
    step(&mut s, |s, o| s.request(1, req(1, r(1000, 1)), 0, o));
    for id in 0..2 {
        let out = step(&mut s, |s, o| s.request(2, waiting(id, r(1000, 1)), 0, o));
        assert!(matches!(only(&out), NoticeKind::Queued { .. }));
    }
    let out = step(&mut s, |s, o| s.request(2, waiting(9, r(1000, 1)), 0, o));
    match only(&out) {
        NoticeKind::Denied { message, .. } => assert!(message.contains("queue is full")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn epochs_only_increase() {
    let mut s = Scheduler::new(config(r(1000, GIB)));
    let mut last = 0;
    for i in 0..50 {
        let out = step(&mut s, |s, o| s.request(i % 3, req(i, r(1000, 1)), i, o));
        let lease = granted(&out, i % 3)[0].clone();
        assert!(lease.epoch > last);
        last = lease.epoch;
        step(&mut s, |s, o| {
            assert!(s.release(i % 3, lease.lease_id, i, o))
        });
    }
}

#[test]
fn a_smaller_pool_with_notice_shrinks_when_the_revoked_leases_end() {
    let mut s = Scheduler::new(config(r(4000, GIB)));
    let a = granted(
        &step(&mut s, |s, o| s.request(1, req(1, r(2000, 1)), 0, o)),
        1,
    )[0]
    .clone();
    let b = granted(
        &step(&mut s, |s, o| s.request(2, req(2, r(2000, 1)), 0, o)),
        2,
    )[0]
    .clone();
    let out = step(&mut s, |s, o| s.set_capacity(r(2000, GIB), 300, 10, o));
    assert_eq!(
        out,
        vec![Notice {
            client: 2,
            kind: NoticeKind::Revoking {
                lease_id: b.lease_id,
                cause: RevokeCause::CapacityReduced,
                ends_at_ms: 310
            }
        }]
    );
    // New grants already see the smaller pool; the old one still holds both leases.
    assert_eq!(s.capacity(), r(2000, GIB));
    let out = step(&mut s, |s, o| s.request(3, req(3, r(1, 1)), 20, o));
    assert!(matches!(only(&out), NoticeKind::Denied { .. }));
    let out = step(&mut s, |s, o| s.advance(310, o));
    assert!(matches!(
        only(&out),
        NoticeKind::Ended {
            reason: EndReason::Revoked(RevokeCause::CapacityReduced),
            ..
        }
    ));
    assert_eq!(
        s.config().capacity,
        r(2000, GIB),
        "shrunk once the lease ended"
    );
    assert!(s.lease(1, a.lease_id).is_some());
}

#[test]
fn with_a_ceiling_a_request_beyond_today_s_pool_waits_instead_of_being_infeasible() {
    let mut cfg = config(r(1000, GIB));
    cfg.ceiling = Some(r(4000, 4 * GIB));
    let mut s = Scheduler::new(cfg);
    let out = step(&mut s, |s, o| s.request(1, waiting(1, r(3000, GIB)), 0, o));
    assert!(matches!(only(&out), NoticeKind::Queued { .. }));
    assert_eq!(s.queued_demand(), r(3000, GIB));
    let out = step(&mut s, |s, o| s.request(1, waiting(2, r(5000, GIB)), 0, o));
    assert!(matches!(
        only(&out),
        NoticeKind::Denied {
            reason: DenyReason::Infeasible,
            ..
        }
    ));
    let out = step(&mut s, |s, o| s.set_capacity(r(3000, 3 * GIB), 0, 1, o));
    assert_eq!(granted(&out, 1).len(), 1);
}

#[test]
fn an_account_never_holds_more_than_its_quota() {
    let mut s = Scheduler::new(config(r(4000, 4 * GIB)));
    // Two connections of one token share 1500 millicores.
    s.join_account(1, 7, Some(r(1500, GIB)), 1);
    s.join_account(2, 7, Some(r(1500, GIB)), 1);
    step(&mut s, |s, o| s.request(1, req(1, r(1000, 1)), 0, o));
    let out = step(&mut s, |s, o| s.request(2, req(2, r(1000, 1)), 0, o));
    assert!(matches!(
        only(&out),
        NoticeKind::Denied {
            reason: DenyReason::QuotaExceeded,
            ..
        }
    ));
    // A partial grant is cut to what the quota has left.
    let partial = LeaseRequest {
        min_resources: Some(r(100, 1)),
        ..req(3, r(1000, 1))
    };
    let out = step(&mut s, |s, o| s.request(2, partial, 0, o));
    assert_eq!(granted(&out, 2)[0].resources, r(500, 1));
    // Another client is not limited by it.
    let out = step(&mut s, |s, o| s.request(3, req(4, r(2000, 1)), 0, o));
    assert_eq!(granted(&out, 3).len(), 1);
    // More than the quota could ever allow: denied at once, never queued.
    let out = step(&mut s, |s, o| s.request(1, waiting(5, r(1600, 1)), 0, o));
    assert!(matches!(
        only(&out),
        NoticeKind::Denied {
            reason: DenyReason::QuotaExceeded,
            ..
        }
    ));
}

#[test]
fn keepalive_renews_every_lease_for_its_own_ttl_except_those_being_revoked() {
    let mut cfg = config(r(4000, GIB));
    cfg.revoke_grace_ms = 100;
    let mut s = Scheduler::new(cfg);
    let a = granted(
        &step(&mut s, |s, o| s.request(1, req(1, r(1000, 1)), 0, o)),
        1,
    )[0]
    .clone();
    let b = LeaseRequest {
        ttl_ms: 500,
        ..req(2, r(1000, 1))
    };
    let b = granted(&step(&mut s, |s, o| s.request(1, b, 0, o)), 1)[0].clone();
    let out = step(&mut s, |s, o| s.renew_all(1, 400, o));
    assert_eq!(
        out,
        vec![
            Notice {
                client: 1,
                kind: NoticeKind::Renewed {
                    lease_id: a.lease_id,
                    expires_at_ms: 10_400
                }
            },
            Notice {
                client: 1,
                kind: NoticeKind::Renewed {
                    lease_id: b.lease_id,
                    expires_at_ms: 900
                }
            },
        ]
    );
    assert_eq!(
        s.lease(1, b.lease_id).map(|l| l.ttl_ms),
        Some(500),
        "TTL unchanged"
    );
    step(&mut s, |s, o| s.set_capacity(r(1000, GIB), 100, 450, o));
    let out = step(&mut s, |s, o| s.renew_all(1, 460, o));
    assert_eq!(
        out.len(),
        1,
        "the lease being revoked is not renewed: {out:#?}"
    );
}

#[test]
fn an_account_s_weight_and_all_its_connections_count_in_its_share() {
    let mut s = Scheduler::new(config(r(4000, 4 * GIB)));
    // Token 1 (weight 1) uses two connections; token 2 has weight 3.
    s.join_account(1, 1, None, 1);
    s.join_account(2, 1, None, 1);
    s.join_account(3, 2, None, 3);
    let blocker = granted(
        &step(&mut s, |s, o| s.request(9, req(0, r(4000, 4 * GIB)), 0, o)),
        9,
    );
    step(&mut s, |s, o| s.request(1, waiting(1, r(1000, 1)), 1, o));
    step(&mut s, |s, o| s.request(2, waiting(2, r(1000, 1)), 1, o));
    step(&mut s, |s, o| s.request(3, waiting(3, r(1000, 1)), 1, o));
    step(&mut s, |s, o| s.request(3, waiting(4, r(1000, 1)), 1, o));
    let out = step(&mut s, |s, o| {
        assert!(s.release(9, blocker[0].lease_id, 2, o))
    });
    // Token 1 first (both at 0, it came first); then token 2 (0 < 1/4); then token 2 again
    // (1/4 / 3 < 1/4): token 1's second connection is not a newcomer with share 0.
    let order: Vec<u64> = out
        .iter()
        .filter_map(|n| match &n.kind {
            NoticeKind::Granted { request_id, .. } => Some(*request_id),
            _ => None,
        })
        .collect();
    assert_eq!(order, vec![1, 3, 4, 2], "{out:#?}");
}
