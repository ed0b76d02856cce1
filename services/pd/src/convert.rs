//! Conversions from the PD model to `vectron.pd.v1` messages. No I/O.

use vectron_ids::WorkerId;
use vectron_proto::common::v1 as common;
use vectron_proto::pd::v1 as pb;

use crate::model::{
    CollectionRecord, Hnsw, Metric, MoveRecord, PdState, ReplicaKind, ShardRecord, WorkerRecord,
    WorkerState,
};

/// Model metric → wire.
pub fn metric(metric: Metric) -> common::Metric {
    match metric {
        Metric::Cosine => common::Metric::Cosine,
        Metric::L2 => common::Metric::L2,
        Metric::Dot => common::Metric::Dot,
    }
}

/// Model HNSW params → wire.
pub fn hnsw(hnsw: &Hnsw) -> common::HnswParams {
    common::HnswParams {
        m: hnsw.m,
        ef_construction: hnsw.ef_construction,
        ef_search: hnsw.ef_search,
    }
}

/// Model worker state → wire.
pub fn worker_state(state: WorkerState) -> pb::WorkerState {
    match state {
        WorkerState::Up => pb::WorkerState::Up,
        WorkerState::Draining => pb::WorkerState::Draining,
        WorkerState::Down => pb::WorkerState::Down,
        WorkerState::Removed => pb::WorkerState::Removed,
    }
}

/// A worker with its replica and leader counts.
pub fn worker(state: &PdState, worker: &WorkerRecord, leaders: u32) -> pb::Worker {
    let replicas = state.replica_count(worker.id) as u32;
    pb::Worker {
        id: worker.id.0,
        name: worker.name.clone(),
        addr: worker.addr.clone(),
        zone: worker.zone.clone(),
        state: worker_state(worker.state).into(),
        last_heartbeat_ms: worker.last_heartbeat_ms,
        replicas,
        leaders,
        drained: replicas == 0,
    }
}

/// A collection's metadata.
pub fn collection(record: &CollectionRecord) -> pb::Collection {
    pb::Collection {
        id: record.id.0,
        spec: Some(pb::CollectionSpec {
            name: record.spec.name.clone(),
            dimension: record.spec.dimension,
            metric: metric(record.spec.metric).into(),
            shards: record.spec.shards,
            replication_factor: record.spec.replication_factor,
            hnsw: Some(hnsw(&record.spec.hnsw)),
        }),
        state: pb::CollectionState::Ready.into(),
        created_at_ms: record.created_at_ms,
    }
}

/// A shard with its replicas' addresses; `leader` is the reported leader.
pub fn shard(state: &PdState, shard: &ShardRecord, leader: Option<u64>) -> pb::Shard {
    pb::Shard {
        shard_id: shard.id.0,
        collection: shard.collection.clone(),
        index: shard.index,
        range_start: shard.range_start,
        range_end: shard.range_end,
        epoch: shard.epoch,
        replicas: shard
            .replicas
            .iter()
            .map(|r| {
                let worker = state.workers.get(&r.worker);
                pb::Replica {
                    worker_id: r.worker.0,
                    worker_name: worker.map(|w| w.name.clone()).unwrap_or_default(),
                    addr: worker.map(|w| w.addr.clone()).unwrap_or_default(),
                    kind: match r.kind {
                        ReplicaKind::Voter => pb::ReplicaKind::Voter,
                        ReplicaKind::Learner => pb::ReplicaKind::Learner,
                    }
                    .into(),
                }
            })
            .collect(),
        leader_worker_id: leader.unwrap_or(0),
    }
}

/// A running move, workers named.
pub fn move_message(state: &PdState, m: &MoveRecord) -> pb::Move {
    let name = |w: Option<WorkerId>| {
        w.and_then(|w| state.workers.get(&w))
            .map(|w| w.name.clone())
            .unwrap_or_default()
    };
    pb::Move {
        move_id: m.id,
        shard_id: m.shard.0,
        collection: state
            .shards
            .get(&m.shard)
            .map(|s| s.collection.clone())
            .unwrap_or_default(),
        from: name(m.remove),
        to: name(m.add.or(m.transfer_leader_to)),
        step: m.step.name().to_owned(),
        reason: m.reason.name().to_owned(),
        started_at_ms: m.started_ms,
    }
}
