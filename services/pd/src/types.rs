//! The openraft type configuration of the PD Raft group. No I/O.

use std::io::Cursor;

use crate::command::{PdCommand, PdResponse};

openraft::declare_raft_types!(
    /// PD's Raft types: JSON commands, u64 node ids, in-memory snapshots.
    pub PdTypeConfig:
        D = PdCommand,
        R = PdResponse,
        NodeId = u64,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<PdTypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// A PD Raft handle.
pub type PdRaft = openraft::Raft<PdTypeConfig>;
