//! Proposals replicated through a shard's Raft log and their results: a
//! command plus the id of the client request that proposed it, so a retried
//! request is applied at most once. Points arrive validated (dimension, finite
//! floats, id and payload limits); applying a command is deterministic on every
//! replica. Their log encoding is `codec`'s. No I/O.

use serde::{Deserialize, Serialize};
use vectron_ids::PointId;

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

/// Names one client write request. A retry of the request carries the same
/// id; the shard applies each id at most once and answers a repeat with the
/// first answer (see `dedup`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RequestId(pub u128);

impl RequestId {
    /// Length of a request id on the wire.
    pub const WIRE_BYTES: usize = 16;

    /// Reads a wire request id: empty means none; anything but 16 bytes is
    /// refused.
    pub fn from_wire(bytes: &[u8]) -> Result<Option<Self>, String> {
        if bytes.is_empty() {
            return Ok(None);
        }
        let raw: [u8; Self::WIRE_BYTES] = bytes.try_into().map_err(|_| {
            format!(
                "must be {} bytes (or empty), got {}",
                Self::WIRE_BYTES,
                bytes.len()
            )
        })?;
        Ok(Some(Self(u128::from_be_bytes(raw))))
    }

    /// The wire form.
    pub fn to_wire(self) -> Vec<u8> {
        self.0.to_be_bytes().to_vec()
    }
}

/// What a shard's Raft log carries: a command and the request that proposed
/// it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardProposal {
    /// The proposing request, when the caller named it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<RequestId>,
    /// The change.
    pub command: ShardCommand,
}

impl From<ShardCommand> for ShardProposal {
    fn from(command: ShardCommand) -> Self {
        Self {
            request: None,
            command,
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_request_ids_are_sixteen_bytes_or_none() {
        assert_eq!(RequestId::from_wire(&[]), Ok(None));
        let id = RequestId(0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10);
        assert_eq!(RequestId::from_wire(&id.to_wire()), Ok(Some(id)));
        assert!(RequestId::from_wire(&[1, 2, 3]).is_err());
    }
}
