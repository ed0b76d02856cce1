use std::collections::BTreeSet;

use vectron_ids::{ShardId, WorkerId};

use super::*;
use crate::model::WorkerState;

fn w(id: u64) -> WorkerId {
    WorkerId(id)
}

fn cluster(workers: &[(u64, &str)], shards: usize, rf: usize) -> ClusterView {
    let mut view = ClusterView::default();
    for (id, zone) in workers {
        view.workers.insert(
            w(*id),
            WorkerView {
                zone: (*zone).to_owned(),
                state: WorkerState::Up,
                may_return: false,
            },
        );
    }
    let ids: Vec<WorkerId> = view.workers.keys().copied().collect();
    for s in 0..shards {
        let voters: Vec<WorkerId> = (0..rf).map(|r| ids[(s + r) % ids.len()]).collect();
        view.shards.push(ShardView {
            id: ShardId(100 + s as u64),
            replication_factor: rf,
            leader: Some(voters[0]),
            voters,
        });
    }
    view
}

/// Plans and applies moves until the planner has nothing left to do.
fn settle(mut view: ClusterView, limits: ScheduleLimits) -> (ClusterView, usize) {
    let mut moves = 0;
    for _ in 0..500 {
        let planned = plan(&view, &[], limits);
        if planned.is_empty() {
            return (view, moves);
        }
        for m in &planned {
            view.apply(m);
        }
        moves += planned.len();
    }
    panic!("the scheduler did not settle: {view:?}");
}

fn spread(counts: &std::collections::BTreeMap<WorkerId, usize>) -> usize {
    counts.values().max().copied().unwrap_or(0) - counts.values().min().copied().unwrap_or(0)
}

fn assert_fully_replicated(view: &ClusterView) {
    for shard in &view.shards {
        let distinct: BTreeSet<_> = shard.voters.iter().collect();
        assert_eq!(
            distinct.len(),
            shard.voters.len(),
            "duplicate voters: {shard:?}"
        );
        assert_eq!(shard.voters.len(), shard.replication_factor, "{shard:?}");
        let leader = shard.leader.expect("a leader");
        assert!(
            shard.voters.contains(&leader),
            "leader outside the voters: {shard:?}"
        );
    }
}

#[test]
fn steps_run_in_order_and_only_those_needed() {
    let full = Move {
        shard: ShardId(1),
        add: Some(w(2)),
        remove: Some(w(1)),
        transfer_leader_to: Some(w(2)),
        reason: MoveReason::Drain,
    };
    let names: Vec<&str> = full.steps().iter().map(|s| s.name()).collect();
    assert_eq!(
        names,
        [
            "add_learner",
            "catch_up",
            "promote",
            "transfer_leader",
            "remove_old"
        ]
    );
    let transfer = Move {
        add: None,
        remove: None,
        ..full
    };
    assert_eq!(transfer.steps(), [Step::TransferLeader]);
}

#[test]
fn a_new_worker_receives_replicas_and_leaders_until_balanced() {
    let mut view = cluster(&[(1, ""), (2, ""), (3, "")], 6, 3);
    view.workers.insert(
        w(4),
        WorkerView {
            zone: String::new(),
            state: WorkerState::Up,
            may_return: false,
        },
    );
    assert_eq!(view.replica_counts()[&w(4)], 0);
    let (settled, moves) = settle(view, ScheduleLimits::default());
    assert!(moves > 0);
    assert_fully_replicated(&settled);
    assert!(
        spread(&settled.replica_counts()) <= 1,
        "{:?}",
        settled.replica_counts()
    );
    assert!(
        spread(&settled.leader_counts()) <= 1,
        "{:?}",
        settled.leader_counts()
    );
    assert!(settled.replica_counts()[&w(4)] >= 4);
}

#[test]
fn a_draining_worker_ends_empty_and_leads_nothing() {
    let mut view = cluster(&[(1, ""), (2, ""), (3, ""), (4, "")], 6, 3);
    view.workers.get_mut(&w(2)).expect("w2").state = WorkerState::Draining;
    let (settled, _) = settle(view, ScheduleLimits::default());
    assert_fully_replicated(&settled);
    for shard in &settled.shards {
        assert!(!shard.voters.contains(&w(2)), "{shard:?}");
        assert_ne!(shard.leader, Some(w(2)));
    }
}

#[test]
fn replicas_on_a_down_worker_are_recreated_elsewhere() {
    let mut view = cluster(&[(1, ""), (2, ""), (3, ""), (4, "")], 6, 3);
    view.workers.get_mut(&w(1)).expect("w1").state = WorkerState::Down;
    // Raft elects new leaders among the live replicas.
    for shard in &mut view.shards {
        if shard.leader == Some(w(1)) {
            shard.leader = shard.voters.iter().copied().find(|v| *v != w(1));
        }
    }
    let first = plan(&view, &[], ScheduleLimits::default());
    assert!(
        first.iter().all(|m| m.reason == MoveReason::Repair),
        "{first:?}"
    );
    let (settled, _) = settle(view, ScheduleLimits::default());
    assert_fully_replicated(&settled);
    assert!(settled.shards.iter().all(|s| !s.voters.contains(&w(1))));
}

#[test]
fn a_worker_down_within_the_timeout_is_waited_for() {
    let mut view = cluster(&[(1, ""), (2, ""), (3, ""), (4, "")], 6, 3);
    let down = view.workers.get_mut(&w(1)).expect("w1");
    down.state = WorkerState::Down;
    down.may_return = true;
    let waiting = plan(&view, &[], ScheduleLimits::default());
    assert!(waiting.is_empty(), "nothing moves yet: {waiting:?}");
    view.workers.get_mut(&w(1)).expect("w1").may_return = false;
    let repairing = plan(&view, &[], ScheduleLimits::default());
    assert!(
        !repairing.is_empty() && repairing.iter().all(|m| m.reason == MoveReason::Repair),
        "{repairing:?}"
    );
}

#[test]
fn repair_prefers_the_zone_the_shard_lacks() {
    let mut view = cluster(&[(1, "a"), (2, "b"), (3, "c"), (4, "a"), (5, "c")], 1, 3);
    // The shard is on 1 (a), 2 (b), 3 (c); worker 3 dies. Worker 5 is the
    // only other one in zone c; worker 4 is in a, which the shard has.
    view.shards[0].voters = vec![w(1), w(2), w(3)];
    view.workers.get_mut(&w(3)).expect("w3").state = WorkerState::Down;
    let planned = plan(&view, &[], ScheduleLimits::default());
    assert_eq!(planned[0].add, Some(w(5)), "{planned:?}");
    assert_eq!(planned[0].remove, Some(w(3)));
}

#[test]
fn limits_bound_moves_in_total_per_worker_and_per_shard() {
    let mut view = cluster(&[(1, ""), (2, ""), (3, "")], 12, 3);
    for id in 4..=6 {
        view.workers.insert(
            w(id),
            WorkerView {
                zone: String::new(),
                state: WorkerState::Up,
                may_return: false,
            },
        );
    }
    let limits = ScheduleLimits {
        max_moves: 3,
        max_moves_per_worker: 1,
        tolerance: 1,
    };
    let planned = plan(&view, &[], limits);
    assert!(!planned.is_empty() && planned.len() <= 3, "{planned:?}");
    let mut touched = BTreeSet::new();
    for m in &planned {
        for worker in m.workers() {
            assert!(
                touched.insert(worker),
                "worker {worker:?} in two moves: {planned:?}"
            );
        }
    }
    // A shard with a running move gets no second one.
    let again = plan(&view, &planned, ScheduleLimits::default());
    for m in &again {
        assert!(planned.iter().all(|p| p.shard != m.shard), "{again:?}");
    }
    // Deterministic.
    assert_eq!(plan(&view, &[], limits), planned);
}

#[test]
fn nothing_is_planned_that_would_break_the_replication_factor() {
    // Three workers, replication factor 3: a draining worker has nowhere to
    // send its replicas, so nothing moves (RemoveWorker must then refuse).
    let mut view = cluster(&[(1, ""), (2, ""), (3, "")], 3, 3);
    view.workers.get_mut(&w(3)).expect("w3").state = WorkerState::Draining;
    assert!(plan(&view, &[], ScheduleLimits::default()).is_empty());
}

#[test]
fn the_view_of_pd_state_leaves_removed_workers_and_learners_out() {
    use crate::model::{
        CollectionRecord, CollectionSpec, Hnsw, Metric, ReplicaKind, ReplicaRecord, ShardRecord,
        WorkerRecord,
    };
    let mut state = crate::model::PdState::default();
    for (id, worker_state) in [
        (1, WorkerState::Up),
        (2, WorkerState::Removed),
        (3, WorkerState::Up),
    ] {
        state.workers.insert(
            w(id),
            WorkerRecord {
                id: w(id),
                name: format!("w{id}"),
                addr: String::new(),
                zone: String::new(),
                state: worker_state,
                drain_requested: false,
                last_heartbeat_ms: 0,
                down_since_ms: None,
            },
        );
    }
    state.collections.insert(
        "c".into(),
        CollectionRecord {
            id: vectron_ids::CollectionId(1),
            spec: CollectionSpec {
                name: "c".into(),
                dimension: 2,
                metric: Metric::L2,
                shards: 1,
                replication_factor: 2,
                hnsw: Hnsw::default(),
            },
            shard_ids: vec![ShardId(9)],
            created_at_ms: 0,
        },
    );
    state.shards.insert(
        ShardId(9),
        ShardRecord {
            id: ShardId(9),
            collection: "c".into(),
            index: 0,
            range_start: 0,
            range_end: u64::MAX,
            epoch: 1,
            replicas: vec![
                ReplicaRecord {
                    worker: w(1),
                    kind: ReplicaKind::Voter,
                },
                ReplicaRecord {
                    worker: w(2),
                    kind: ReplicaKind::Voter,
                },
                ReplicaRecord {
                    worker: w(3),
                    kind: ReplicaKind::Learner,
                },
            ],
        },
    );
    let view = ClusterView::from_pd(&state, |_| Some(w(2)), 0, 1_000);
    assert_eq!(
        view.workers.keys().copied().collect::<Vec<_>>(),
        [w(1), w(3)]
    );
    let shard = &view.shards[0];
    assert_eq!(
        (shard.replication_factor, shard.voters.clone()),
        (2, vec![w(1), w(2)])
    );
    // The dead replica on the removed worker is replaced; worker 3 (already a
    // learner there) is not picked twice because it is not a voter yet, so
    // the planner adds it as the new voter.
    let planned = plan(&view, &[], ScheduleLimits::default());
    assert_eq!(planned.len(), 1, "{planned:?}");
    assert_eq!(
        (planned[0].add, planned[0].remove),
        (Some(w(3)), Some(w(2)))
    );
}
