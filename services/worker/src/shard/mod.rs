//! One shard replica: its Raft type configuration, the commands replicated
//! through its log, the table that applies each client request once, the
//! state machine that applies them to RocksDB, the HNSW index and the
//! in-memory row ids, and the consistent reads served from them.

pub mod codec;
pub mod command;
pub mod dedup;
pub mod read;
pub mod row_ids;
pub mod state_machine;

use std::io::Cursor;

use command::{ShardProposal, ShardResponse};

openraft::declare_raft_types!(
    /// The Raft types of a shard group.
    pub ShardTypeConfig:
        D = ShardProposal,
        R = ShardResponse,
        NodeId = u64,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<ShardTypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);
