use vectron_ids::{ShardId, WorkerId};

use crate::command::{DataDir, PdCommand, PdResponse};
use crate::model::{
    CollectionSpec, Hnsw, Metric, MoveReason, PdState, ReplicaKind, Step, WorkerState,
};

fn w(id: u64) -> WorkerId {
    WorkerId(id)
}

/// Four Up workers and one collection of one shard on the first three.
fn state() -> (PdState, ShardId) {
    let mut state = PdState::default();
    for name in ["a", "b", "c"] {
        state.apply(
            PdCommand::RegisterWorker {
                name: name.into(),
                addr: "127.0.0.1:1".into(),
                zone: String::new(),
                now_ms: 0,
                data_dir: DataDir::Fresh,
            },
            1,
        );
    }
    state.apply(
        PdCommand::CreateCollection {
            spec: CollectionSpec {
                name: "c".into(),
                dimension: 2,
                metric: Metric::L2,
                shards: 1,
                replication_factor: 3,
                hnsw: Hnsw::default(),
            },
            now_ms: 0,
        },
        2,
    );
    state.apply(
        PdCommand::RegisterWorker {
            name: "d".into(),
            addr: "127.0.0.1:1".into(),
            zone: String::new(),
            now_ms: 0,
            data_dir: DataDir::Fresh,
        },
        3,
    );
    let shard = *state.shards.keys().next().expect("one shard");
    (state, shard)
}

fn worker(state: &PdState, name: &str) -> WorkerId {
    state.worker_by_name(name).expect("worker").id
}

fn start(state: &mut PdState, shard: ShardId, add: WorkerId, remove: WorkerId) -> u64 {
    match state.apply(
        PdCommand::StartMove {
            shard,
            add: Some(add),
            remove: Some(remove),
            transfer_leader_to: None,
            reason: MoveReason::BalanceReplicas,
            now_ms: 10,
        },
        4,
    ) {
        PdResponse::MoveStarted(id) => id,
        other => panic!("move not started: {other:?}"),
    }
}

fn advance(state: &mut PdState, id: u64, from: Step) -> PdResponse {
    state.apply(
        PdCommand::AdvanceMove {
            id,
            from,
            now_ms: 20,
        },
        5,
    )
}

fn kinds(state: &PdState, shard: ShardId) -> Vec<(WorkerId, ReplicaKind)> {
    state.shards[&shard]
        .replicas
        .iter()
        .map(|r| (r.worker, r.kind))
        .collect()
}

#[test]
fn a_move_adds_a_learner_promotes_it_and_drops_the_old_replica() {
    let (mut state, shard) = state();
    let (a, d) = (worker(&state, "a"), worker(&state, "d"));
    let epoch = state.shards[&shard].epoch;
    let id = start(&mut state, shard, d, a);
    assert!(kinds(&state, shard).contains(&(d, ReplicaKind::Learner)));
    assert_eq!(state.shards[&shard].epoch, epoch + 1);
    assert_eq!(state.moves[&id].step, Step::AddLearner);

    assert_eq!(advance(&mut state, id, Step::AddLearner), PdResponse::Done);
    assert_eq!(state.moves[&id].step, Step::CatchUp);
    assert_eq!(state.moves[&id].step_started_ms, 20);
    advance(&mut state, id, Step::CatchUp);
    advance(&mut state, id, Step::Promote);
    assert!(kinds(&state, shard).contains(&(d, ReplicaKind::Voter)));
    assert_eq!(state.moves[&id].step, Step::RemoveOld);
    advance(&mut state, id, Step::RemoveOld);
    assert!(state.moves.is_empty());
    let replicas = kinds(&state, shard);
    assert_eq!(replicas.len(), 3);
    assert!(!replicas.iter().any(|(w, _)| *w == a));
    assert_eq!(state.shards[&shard].epoch, epoch + 3);
}

#[test]
fn a_stale_advance_is_rejected_and_changes_nothing() {
    let (mut state, shard) = state();
    let (a, d) = (worker(&state, "a"), worker(&state, "d"));
    let id = start(&mut state, shard, d, a);
    let before = state.clone();
    // A repeated verdict from a PD leader that did not see the first one.
    let reply = advance(&mut state, id, Step::Promote);
    assert!(matches!(reply, PdResponse::Rejected(_)), "{reply:?}");
    assert_eq!(state, before);
}

#[test]
fn an_aborted_move_takes_the_learner_out_again() {
    let (mut state, shard) = state();
    let (a, d) = (worker(&state, "a"), worker(&state, "d"));
    let before = kinds(&state, shard);
    let id = start(&mut state, shard, d, a);
    advance(&mut state, id, Step::AddLearner);
    let reply = state.apply(
        PdCommand::AbortMove {
            id,
            from: Step::CatchUp,
        },
        6,
    );
    assert_eq!(reply, PdResponse::Done);
    assert!(state.moves.is_empty());
    assert_eq!(kinds(&state, shard), before);
}

#[test]
fn a_move_past_promotion_cannot_be_rolled_back() {
    let (mut state, shard) = state();
    let (a, d) = (worker(&state, "a"), worker(&state, "d"));
    let id = start(&mut state, shard, d, a);
    for step in [Step::AddLearner, Step::CatchUp, Step::Promote] {
        advance(&mut state, id, step);
    }
    let reply = state.apply(
        PdCommand::AbortMove {
            id,
            from: Step::RemoveOld,
        },
        6,
    );
    assert!(matches!(reply, PdResponse::Rejected(_)), "{reply:?}");
    assert_eq!(state.moves[&id].step, Step::RemoveOld);
}

#[test]
fn moves_are_refused_on_busy_shards_and_unfit_targets() {
    let (mut state, shard) = state();
    let (a, b, d) = (
        worker(&state, "a"),
        worker(&state, "b"),
        worker(&state, "d"),
    );
    let refused = |state: &mut PdState, add: WorkerId, remove: WorkerId| {
        let reply = state.apply(
            PdCommand::StartMove {
                shard,
                add: Some(add),
                remove: Some(remove),
                transfer_leader_to: None,
                reason: MoveReason::BalanceReplicas,
                now_ms: 0,
            },
            9,
        );
        matches!(reply, PdResponse::Rejected(_))
    };
    assert!(refused(&mut state, b, a), "b already holds the shard");
    assert!(refused(&mut state, d, w(999)), "999 holds no replica");
    state.workers.get_mut(&d).expect("d").state = WorkerState::Draining;
    assert!(refused(&mut state, d, a), "a draining worker takes none");
    state.workers.get_mut(&d).expect("d").state = WorkerState::Up;
    start(&mut state, shard, d, a);
    assert!(refused(&mut state, d, b), "one move per shard");
}

#[test]
fn dropping_a_collection_drops_its_moves() {
    let (mut state, shard) = state();
    let (a, d) = (worker(&state, "a"), worker(&state, "d"));
    start(&mut state, shard, d, a);
    state.apply(PdCommand::DropCollection { name: "c".into() }, 7);
    assert!(state.moves.is_empty());
}

#[test]
fn down_since_is_set_when_marked_down_and_cleared_when_back() {
    let (mut state, _) = state();
    let a = worker(&state, "a");
    state.apply(
        PdCommand::SetWorkersLiveness {
            down: vec![a],
            up: Vec::new(),
            now_ms: 500,
        },
        8,
    );
    assert_eq!(state.workers[&a].down_since_ms, Some(500));
    state.apply(
        PdCommand::SetWorkersLiveness {
            down: Vec::new(),
            up: vec![a],
            now_ms: 900,
        },
        9,
    );
    assert_eq!(state.workers[&a].down_since_ms, None);
    assert_eq!(state.workers[&a].state, WorkerState::Up);
}
