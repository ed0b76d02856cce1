//! Commands replicated through a shard's Raft log and their results. Points
//! arrive validated (dimension, finite floats, id and payload limits); applying
//! a command is deterministic on every replica. Encoded as JSON for now (see
//! the issue notes: a binary encoding is the obvious next step for vectors).
//! No I/O.

use serde::{Deserialize, Serialize};
use vectron_ids::PointId;
use vectron_raft::PayloadCodec;

/// A point to store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PointRecord {
    /// The id as the user gave it.
    pub id: PointId,
    /// The vector.
    pub vector: Vec<f32>,
    /// Payload JSON bytes; empty when none.
    pub payload: Vec<u8>,
}

/// A change to a shard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ShardCommand {
    /// Insert or replace points.
    Upsert {
        /// The points, at most 65,536 per command.
        points: Vec<PointRecord>,
    },
    /// Delete points by id.
    Delete {
        /// The ids.
        ids: Vec<PointId>,
    },
    /// Delete every point whose payload matches a filter.
    DeleteByFilter {
        /// `vectron.common.v1.Filter`, protobuf-encoded.
        filter: Vec<u8>,
    },
}

/// The result of applying a command.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ShardResponse {
    /// Nothing to report (blank and membership entries).
    #[default]
    Done,
    /// Points written.
    Upserted(u64),
    /// Points removed.
    Deleted(u64),
    /// The command could not be applied and changed nothing.
    Rejected(String),
}

impl PayloadCodec for ShardCommand {
    fn encode_payload(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("shard commands always serialise")
    }

    fn decode_payload(bytes: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    }
}
