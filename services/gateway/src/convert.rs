//! Conversions between the worker and PD wire types and the gateway's own
//! types: point ids, payload bytes, collection states and worker states.
//! No I/O.

use serde_json::Value;
use vectron_ids::PointId;
use vectron_proto::common::v1 as common;
use vectron_proto::common::v1::point_id::Kind;
use vectron_proto::pd::v1 as pd;
use vectron_proto::v1 as api;
use vectron_proto::worker::v1 as worker;

use crate::model::{Hit, PointOut};

/// The wire form of an id.
pub fn id_to_wire(id: &PointId) -> common::PointId {
    common::PointId {
        kind: Some(match id {
            PointId::Num(n) => Kind::Num(*n),
            PointId::Str(s) => Kind::Str(s.clone()),
        }),
    }
}

/// The id a wire message carries; `None` when it carries none.
pub fn id_from_wire(id: Option<&common::PointId>) -> Option<PointId> {
    match id?.kind.as_ref()? {
        Kind::Num(n) => Some(PointId::Num(*n)),
        Kind::Str(s) => Some(PointId::Str(s.clone())),
    }
}

fn payload_of(bytes: &[u8]) -> Option<Value> {
    if bytes.is_empty() {
        return None;
    }
    serde_json::from_slice(bytes).ok()
}

/// A point as a worker returned it.
pub fn point_from_worker(point: worker::Point, with_vector: bool) -> Option<PointOut> {
    Some(PointOut {
        id: id_from_wire(point.id.as_ref())?,
        vector: with_vector.then_some(point.vector),
        payload: payload_of(&point.payload_json),
    })
}

/// A search hit as a worker returned it.
pub fn hit_from_worker(hit: worker::ScoredPoint, with_vector: bool) -> Option<Hit> {
    Some(Hit {
        id: id_from_wire(hit.id.as_ref())?,
        score: hit.score,
        payload: payload_of(&hit.payload_json),
        vector: with_vector.then_some(hit.vector),
    })
}

/// The public status of a PD collection state.
pub fn collection_status(state: pd::CollectionState) -> api::CollectionStatus {
    match state {
        pd::CollectionState::Creating | pd::CollectionState::Unspecified => {
            api::CollectionStatus::Creating
        }
        pd::CollectionState::Ready => api::CollectionStatus::Ready,
        pd::CollectionState::Degraded => api::CollectionStatus::Degraded,
    }
}

/// The public view of a PD collection (without point counts).
pub fn collection(collection: &pd::Collection) -> api::Collection {
    let spec = collection.spec.clone().unwrap_or_default();
    api::Collection {
        name: spec.name,
        dimension: spec.dimension,
        metric: spec.metric,
        shards: spec.shards,
        replication_factor: spec.replication_factor,
        hnsw: spec.hnsw,
        status: collection_status(collection.state()).into(),
        points: 0,
        shard_status: Vec::new(),
    }
}

/// The public state of a worker.
pub fn worker_state(state: pd::WorkerState) -> api::WorkerState {
    match state {
        pd::WorkerState::Up => api::WorkerState::Up,
        pd::WorkerState::Draining => api::WorkerState::Draining,
        pd::WorkerState::Down => api::WorkerState::Down,
        pd::WorkerState::Removed => api::WorkerState::Removed,
        pd::WorkerState::Unspecified => api::WorkerState::Unspecified,
    }
}

/// The public role of a PD member.
pub fn member_role(role: pd::MemberRole) -> api::MemberRole {
    match role {
        pd::MemberRole::Leader => api::MemberRole::Leader,
        pd::MemberRole::Follower => api::MemberRole::Follower,
        pd::MemberRole::Learner => api::MemberRole::Learner,
        pd::MemberRole::Unspecified => api::MemberRole::Unspecified,
    }
}
