//! Tests of applying PD commands: ids, placement, rejections that change
//! nothing, worker lifecycle, KV compare-and-set.

use super::*;
use crate::model::{Hnsw, Metric};

fn register(state: &mut PdState, name: &str, zone: &str, index: u64) -> WorkerId {
    match register_as(state, name, zone, DataDir::Unreported, index) {
        PdResponse::Worker(id) => id,
        other => panic!("register {name}: {other:?}"),
    }
}

fn register_as(
    state: &mut PdState,
    name: &str,
    zone: &str,
    data_dir: DataDir,
    index: u64,
) -> PdResponse {
    state.apply(
        PdCommand::RegisterWorker {
            name: name.into(),
            addr: format!("127.0.0.1:{}", 7500 + index),
            zone: zone.into(),
            now_ms: 1,
            data_dir,
        },
        index,
    )
}

fn rejection(response: PdResponse) -> String {
    match response {
        PdResponse::Rejected(e) => e.to_string(),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

fn spec(name: &str, shards: u32, rf: u32) -> CollectionSpec {
    CollectionSpec {
        name: name.into(),
        dimension: 8,
        metric: Metric::L2,
        shards,
        replication_factor: rf,
        hnsw: Hnsw::default(),
    }
}

fn create(state: &mut PdState, spec: CollectionSpec) -> PdResponse {
    state.apply(PdCommand::CreateCollection { spec, now_ms: 2 }, 100)
}

fn three_workers() -> PdState {
    let mut state = PdState::default();
    for (i, name) in ["w0", "w1", "w2"].iter().enumerate() {
        register(&mut state, name, "", i as u64 + 1);
    }
    state
}

#[test]
fn re_registering_a_name_keeps_its_id() {
    let mut state = PdState::default();
    let a = register(&mut state, "a", "", 1);
    let b = register(&mut state, "b", "", 2);
    assert_ne!(a, b);
    assert_eq!(register(&mut state, "a", "z", 3), a);
    assert_eq!(state.workers[&a].zone, "z");
}

#[test]
fn a_worker_with_a_wiped_data_dir_rejoins_under_a_new_id() {
    let mut state = three_workers();
    let PdResponse::Collection(_) = create(&mut state, spec("c", 2, 3)) else {
        panic!("expected a collection");
    };
    let old = state.worker_by_name("w0").expect("w0").id;
    // A restart with its data keeps the id.
    assert_eq!(
        register_as(&mut state, "w0", "", DataDir::Holds(old), 10),
        PdResponse::Worker(old)
    );
    // With its data gone it is a new incarnation: a new id (a new Raft node
    // id), and the old one is removed so its replicas count as lost.
    let PdResponse::Worker(new) = register_as(&mut state, "w0", "", DataDir::Fresh, 11) else {
        panic!("a fresh registration is accepted");
    };
    assert_ne!(new, old);
    assert_eq!(state.workers[&old].state, WorkerState::Removed);
    assert_eq!(state.workers[&new].state, WorkerState::Up);
    assert_eq!(state.worker_by_name("w0").map(|w| w.id), Some(new));
    assert!(
        state.shards_on(old).count() > 0,
        "the lost replicas stay in the placement for the scheduler to repair"
    );
    // The old incarnation's data directory may not come back.
    let replaced = rejection(register_as(&mut state, "w0", "", DataDir::Holds(old), 12));
    assert!(replaced.contains("replaced by worker"), "{replaced}");
    assert_eq!(state.workers[&old].state, WorkerState::Removed);
    // Older workers that report nothing keep the name's current id.
    assert_eq!(
        register_as(&mut state, "w0", "", DataDir::Unreported, 13),
        PdResponse::Worker(new)
    );
}

#[test]
fn a_data_dir_of_an_unknown_or_other_worker_is_refused() {
    let mut state = three_workers();
    let w1 = state.worker_by_name("w1").expect("w1").id;
    let other = rejection(register_as(&mut state, "w0", "", DataDir::Holds(w1), 10));
    assert!(other.contains("\"w1\""), "{other}");
    let unknown = rejection(register_as(
        &mut state,
        "w0",
        "",
        DataDir::Holds(WorkerId(9_999)),
        11,
    ));
    assert!(unknown.contains("does not know"), "{unknown}");
}

#[test]
fn create_collection_places_every_shard_on_distinct_workers() {
    let mut state = three_workers();
    let PdResponse::Collection(record) = create(&mut state, spec("c", 6, 3)) else {
        panic!("expected a collection");
    };
    assert_eq!(record.shard_ids.len(), 6);
    let ranges: Vec<_> = record
        .shard_ids
        .iter()
        .map(|id| {
            let shard = &state.shards[id];
            assert_eq!(shard.replicas.len(), 3);
            assert_eq!(shard.epoch, 1);
            vectron_routing::HashRange {
                start: shard.range_start,
                end: shard.range_end,
            }
        })
        .collect();
    vectron_routing::ShardMap::new(ranges).expect("shards tile the hash space");
    // Shard ids and the collection id never collide with worker ids.
    let mut ids: Vec<u64> = state.workers.keys().map(|w| w.0).collect();
    ids.push(record.id.0);
    ids.extend(record.shard_ids.iter().map(|s| s.0));
    let count = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), count);
}

#[test]
fn rejected_creates_change_nothing() {
    let mut state = three_workers();
    assert!(matches!(
        create(&mut state, spec("c", 2, 3)),
        PdResponse::Collection(_)
    ));
    let before = state.clone();
    match create(&mut state, spec("c", 1, 1)) {
        PdResponse::Rejected(PdError::AlreadyExists { name, .. }) => assert_eq!(name, "c"),
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    match create(&mut state, spec("d", 1, 4)) {
        PdResponse::Rejected(PdError::InvalidArgument { field, .. }) => {
            assert_eq!(field, "replication_factor")
        }
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
    match state.apply(
        PdCommand::DropCollection {
            name: "nope".into(),
        },
        101,
    ) {
        PdResponse::Rejected(PdError::NotFound { kind, .. }) => assert_eq!(kind, "collection"),
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert_eq!(state, before);
}

#[test]
fn draining_and_down_workers_get_no_new_replicas() {
    let mut state = three_workers();
    register(&mut state, "w3", "", 4);
    let w3 = state.worker_by_name("w3").expect("registered").id;
    assert_eq!(
        state.apply(PdCommand::DrainWorker { name: "w3".into() }, 5),
        PdResponse::WorkerState(WorkerState::Draining)
    );
    let PdResponse::Collection(record) = create(&mut state, spec("c", 8, 3)) else {
        panic!("expected a collection");
    };
    assert!(
        record
            .shard_ids
            .iter()
            .all(|id| state.shards[id].replicas.iter().all(|r| r.worker != w3))
    );
    // A drained worker with no replicas can be removed.
    assert_eq!(
        state.apply(PdCommand::RemoveWorker { name: "w3".into() }, 6),
        PdResponse::Done
    );
    assert_eq!(state.workers[&w3].state, WorkerState::Removed);
}

#[test]
fn remove_refuses_a_live_worker_with_replicas_but_accepts_a_down_one() {
    let mut state = three_workers();
    assert!(matches!(
        create(&mut state, spec("c", 1, 3)),
        PdResponse::Collection(_)
    ));
    let w0 = state.worker_by_name("w0").expect("registered").id;
    let before = state.clone();
    assert!(matches!(
        state.apply(PdCommand::RemoveWorker { name: "w0".into() }, 7),
        PdResponse::Rejected(PdError::FailedPrecondition(_))
    ));
    assert_eq!(state, before);
    state.apply(
        PdCommand::SetWorkersLiveness {
            down: vec![w0],
            up: vec![],
            now_ms: 9,
        },
        8,
    );
    assert_eq!(state.workers[&w0].state, WorkerState::Down);
    assert_eq!(
        state.apply(PdCommand::RemoveWorker { name: "w0".into() }, 9),
        PdResponse::Done
    );
}

#[test]
fn a_drained_worker_coming_back_stays_draining() {
    let mut state = three_workers();
    let w1 = state.worker_by_name("w1").expect("registered").id;
    state.apply(PdCommand::DrainWorker { name: "w1".into() }, 5);
    state.apply(
        PdCommand::SetWorkersLiveness {
            down: vec![w1],
            up: vec![],
            now_ms: 9,
        },
        6,
    );
    state.apply(
        PdCommand::SetWorkersLiveness {
            down: vec![],
            up: vec![w1],
            now_ms: 10,
        },
        7,
    );
    assert_eq!(state.workers[&w1].state, WorkerState::Draining);
}

#[test]
fn an_undrained_worker_takes_replicas_again_and_comes_back_up() {
    let mut state = three_workers();
    register(&mut state, "w3", "", 4);
    let w3 = state.worker_by_name("w3").expect("registered").id;
    state.apply(PdCommand::DrainWorker { name: "w3".into() }, 5);
    assert_eq!(
        state.apply(PdCommand::UndrainWorker { name: "w3".into() }, 6),
        PdResponse::WorkerState(WorkerState::Up)
    );
    // A Down worker whose drain was cancelled comes back Up, not Draining.
    state.apply(PdCommand::DrainWorker { name: "w3".into() }, 7);
    state.apply(
        PdCommand::SetWorkersLiveness {
            down: vec![w3],
            up: vec![],
            now_ms: 9,
        },
        8,
    );
    assert_eq!(
        state.apply(PdCommand::UndrainWorker { name: "w3".into() }, 9),
        PdResponse::WorkerState(WorkerState::Down)
    );
    state.apply(
        PdCommand::SetWorkersLiveness {
            down: vec![],
            up: vec![w3],
            now_ms: 10,
        },
        10,
    );
    assert_eq!(state.workers[&w3].state, WorkerState::Up);
    // New shards may land on it again: four workers, rf 3, eight shards.
    let PdResponse::Collection(record) = create(&mut state, spec("c", 8, 3)) else {
        panic!("expected a collection");
    };
    assert!(
        record
            .shard_ids
            .iter()
            .any(|id| state.shards[id].replicas.iter().any(|r| r.worker == w3))
    );
    assert!(matches!(
        state.apply(
            PdCommand::UndrainWorker {
                name: "nobody".into()
            },
            11
        ),
        PdResponse::Rejected(PdError::NotFound { .. })
    ));
}

#[test]
fn kv_compare_and_set() {
    let mut state = PdState::default();
    let put = |state: &mut PdState, expected: Option<u64>, index: u64| {
        state.apply(
            PdCommand::KvPut {
                key: b"k".to_vec(),
                value: index.to_string().into_bytes(),
                expected_version: expected,
            },
            index,
        )
    };
    assert_eq!(put(&mut state, Some(0), 10), PdResponse::KvVersion(10));
    assert_eq!(
        put(&mut state, Some(0), 11),
        PdResponse::Rejected(PdError::VersionConflict {
            expected: 0,
            actual: 10
        })
    );
    assert_eq!(put(&mut state, Some(10), 12), PdResponse::KvVersion(12));
    assert_eq!(put(&mut state, None, 13), PdResponse::KvVersion(13));
    assert_eq!(state.kv[b"k".as_slice()].value, b"13");
    assert_eq!(
        state.apply(PdCommand::KvDelete { key: b"k".to_vec() }, 14),
        PdResponse::KvDeleted(true)
    );
    assert_eq!(
        state.apply(PdCommand::KvDelete { key: b"k".to_vec() }, 15),
        PdResponse::KvDeleted(false)
    );
}
