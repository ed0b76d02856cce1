//! The commands replicated through the PD Raft log and their results. Each is
//! encoded as JSON inside the log entry: PD metadata is small and a readable
//! log helps when debugging. Commands carry the leader's clock, so applying
//! them is deterministic on every node. No I/O.

use serde::{Deserialize, Serialize};
use vectron_ids::WorkerId;
use vectron_raft::PayloadCodec;

use crate::error::PdError;
use crate::model::{CollectionRecord, CollectionSpec, MoveReason, Step, WorkerState};
use vectron_ids::ShardId;

/// A state change proposed to the PD Raft group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PdCommand {
    /// Register (or re-register) a worker by name.
    RegisterWorker {
        /// Worker name.
        name: String,
        /// Advertised address.
        addr: String,
        /// Failure zone.
        zone: String,
        /// Leader clock.
        now_ms: i64,
        /// What the worker found in its data directory; entries written
        /// before workers reported it decode as [`DataDir::Unreported`].
        #[serde(default)]
        data_dir: DataDir,
    },
    /// Liveness changes observed by the leader.
    SetWorkersLiveness {
        /// Workers now Down.
        down: Vec<WorkerId>,
        /// Workers heartbeating again.
        up: Vec<WorkerId>,
        /// Leader clock.
        now_ms: i64,
    },
    /// Ask to move every replica off a worker.
    DrainWorker {
        /// Worker name.
        name: String,
    },
    /// Cancel a drain: the worker may receive replicas again.
    UndrainWorker {
        /// Worker name.
        name: String,
    },
    /// Forget a drained or Down worker.
    RemoveWorker {
        /// Worker name.
        name: String,
    },
    /// Create a collection and place its shards.
    CreateCollection {
        /// Validated spec.
        spec: CollectionSpec,
        /// Leader clock.
        now_ms: i64,
    },
    /// Drop a collection and its shards.
    DropCollection {
        /// Collection name.
        name: String,
    },
    /// Allocate a block of ids.
    AllocIds {
        /// How many.
        count: u32,
    },
    /// Write a KV pair, optionally only if its version matches.
    KvPut {
        /// Key.
        key: Vec<u8>,
        /// Value.
        value: Vec<u8>,
        /// Required current version (0 = must not exist).
        expected_version: Option<u64>,
    },
    /// Delete a KV pair.
    KvDelete {
        /// Key.
        key: Vec<u8>,
    },
    /// Start a replica move (the scheduler's decision). Adding a replica
    /// places it on the target as a learner and bumps the shard epoch.
    StartMove {
        /// The shard.
        shard: ShardId,
        /// Worker that gains a replica.
        add: Option<WorkerId>,
        /// Worker that loses its replica.
        remove: Option<WorkerId>,
        /// Worker that should lead afterwards.
        transfer_leader_to: Option<WorkerId>,
        /// Why.
        reason: MoveReason,
        /// Leader clock.
        now_ms: i64,
    },
    /// The move's step `from` is complete: go to the next one, or finish
    /// the move after its last. Ignored unless the move is at `from`.
    AdvanceMove {
        /// Move id.
        id: u64,
        /// The step that completed.
        from: Step,
        /// Leader clock.
        now_ms: i64,
    },
    /// Roll the move back from step `from` (before its replica was
    /// promoted): the learner leaves the placement again.
    AbortMove {
        /// Move id.
        id: u64,
        /// The step that failed.
        from: Step,
    },
}

/// What a registering worker found in its data directory. A worker id is
/// also the node id of every Raft replica the worker hosts, so a worker whose
/// data (and with it its Raft votes and logs) is gone must not come back
/// under its old id: it could vote twice in one term and lose a committed
/// entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum DataDir {
    /// Not reported (older workers): the name alone decides, and a known name
    /// keeps its id.
    #[default]
    Unreported,
    /// A new or wiped directory: the worker joins as a new incarnation with a
    /// new id, and earlier incarnations of its name are removed, so their
    /// replicas count as lost and are re-created.
    Fresh,
    /// The directory of this worker id: a restart.
    Holds(WorkerId),
}

/// The result of applying a command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum PdResponse {
    /// Applied; nothing to return (also the result of blank/membership entries).
    #[default]
    Done,
    /// A worker id.
    Worker(WorkerId),
    /// A worker's new state.
    WorkerState(WorkerState),
    /// The created collection.
    Collection(Box<CollectionRecord>),
    /// An allocated id block.
    Ids {
        /// First id.
        first: u64,
        /// Count.
        count: u32,
    },
    /// The version a KV write produced.
    KvVersion(u64),
    /// Whether a KV delete removed something.
    KvDeleted(bool),
    /// The id of a started move.
    MoveStarted(u64),
    /// The command was rejected and changed nothing.
    Rejected(PdError),
}

impl PayloadCodec for PdCommand {
    fn encode_payload(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("PD commands always serialise")
    }

    fn decode_payload(bytes: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    }
}
