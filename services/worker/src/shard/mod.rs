//! One shard replica: its Raft type configuration, the commands replicated
//! through its log, and the state machine that applies them to RocksDB and
//! the HNSW index.

pub mod command;
pub mod state_machine;

use std::io::Cursor;

use command::{ShardCommand, ShardResponse};

openraft::declare_raft_types!(
    /// The Raft types of a shard group.
    pub ShardTypeConfig:
        D = ShardCommand,
        R = ShardResponse,
        NodeId = u64,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<ShardTypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);
