//! The PD Raft state machine: applies committed commands to an in-memory
//! [`PdState`] and keeps the latest snapshot in RocksDB (column family
//! `pd_snapshot`, written with sync). On restart the state is the snapshot's,
//! and openraft re-applies the committed log after it. Does disk I/O.

use std::io::Cursor;
use std::sync::{Arc, RwLock, RwLockReadGuard};

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    BasicNode, Entry, EntryPayload, LogId, RaftSnapshotBuilder, SnapshotMeta, StorageError,
    StorageIOError, StoredMembership,
};
use rocksdb::DB;
use serde::{Deserialize, Serialize};
use vectron_raft::log_store::sync_write_options;

use crate::command::PdResponse;
use crate::model::PdState;
use crate::types::PdTypeConfig;

/// Column family holding the current PD snapshot.
pub const CF_PD_SNAPSHOT: &str = "pd_snapshot";
const SNAPSHOT_KEY: &[u8] = b"current";

/// The state machine contents: state plus what Raft needs to resume.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Applied {
    /// The PD metadata.
    pub state: PdState,
    /// Last log id applied.
    pub last_applied: Option<LogId<u64>>,
    /// Last membership applied.
    pub membership: StoredMembership<u64, BasicNode>,
}

#[derive(Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta<u64, BasicNode>,
    data: Vec<u8>,
}

/// Read access to the applied state, shared with the gRPC service.
#[derive(Debug, Clone, Default)]
pub struct SharedState(Arc<RwLock<Applied>>);

impl SharedState {
    /// Locks the state for reading.
    pub fn read(&self) -> RwLockReadGuard<'_, Applied> {
        self.0.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Applied> {
        self.0.write().unwrap_or_else(|p| p.into_inner())
    }
}

/// openraft's view of the PD state machine.
pub struct PdStateMachine {
    db: Arc<DB>,
    shared: SharedState,
    snapshots_built: u64,
}

impl PdStateMachine {
    /// Opens the state machine, starting from the stored snapshot if any.
    pub fn open(db: Arc<DB>) -> Result<Self, StorageError<u64>> {
        let shared = SharedState::default();
        let machine = Self {
            db,
            shared,
            snapshots_built: 0,
        };
        if let Some(stored) = machine.read_stored()? {
            let applied: Applied = serde_json::from_slice(&stored.data)
                .map_err(|e| StorageIOError::read_snapshot(None, &e))?;
            *machine.shared.write() = applied;
        }
        Ok(machine)
    }

    /// A handle for reading the applied state.
    pub fn shared(&self) -> SharedState {
        self.shared.clone()
    }

    fn cf(&self) -> &rocksdb::ColumnFamily {
        self.db
            .cf_handle(CF_PD_SNAPSHOT)
            .expect("the PD node opens the pd_snapshot column family")
    }

    fn read_stored(&self) -> Result<Option<StoredSnapshot>, StorageError<u64>> {
        let bytes = self
            .db
            .get_cf(self.cf(), SNAPSHOT_KEY)
            .map_err(|e| StorageIOError::read_snapshot(None, &e))?;
        bytes
            .map(|b| {
                serde_json::from_slice(&b)
                    .map_err(|e| StorageIOError::read_snapshot(None, &e).into())
            })
            .transpose()
    }

    fn store(&self, stored: &StoredSnapshot) -> Result<(), StorageError<u64>> {
        let bytes =
            serde_json::to_vec(stored).map_err(|e| StorageIOError::write_snapshot(None, &e))?;
        let mut batch = rocksdb::WriteBatch::default();
        batch.put_cf(self.cf(), SNAPSHOT_KEY, bytes);
        self.db
            .write_opt(batch, &sync_write_options())
            .map_err(|e| StorageIOError::write_snapshot(None, &e).into())
    }
}

impl RaftSnapshotBuilder<PdTypeConfig> for PdStateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<PdTypeConfig>, StorageError<u64>> {
        let (data, last_applied, membership) = {
            let applied = self.shared.read();
            let data = serde_json::to_vec(&*applied)
                .map_err(|e| StorageIOError::read_state_machine(&e))?;
            (data, applied.last_applied, applied.membership.clone())
        };
        self.snapshots_built += 1;
        let snapshot_id = match last_applied {
            Some(id) => format!(
                "{}-{}-{}",
                id.leader_id.term, id.index, self.snapshots_built
            ),
            None => format!("empty-{}", self.snapshots_built),
        };
        let meta = SnapshotMeta {
            last_log_id: last_applied,
            last_membership: membership,
            snapshot_id,
        };
        let stored = StoredSnapshot { meta, data };
        vectron_raft::crash_point!("pd::snapshot::build");
        self.store(&stored)?;
        Ok(Snapshot {
            meta: stored.meta,
            snapshot: Box::new(Cursor::new(stored.data)),
        })
    }
}

impl RaftStateMachine<PdTypeConfig> for PdStateMachine {
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<u64>>, StoredMembership<u64, BasicNode>), StorageError<u64>> {
        let applied = self.shared.read();
        Ok((applied.last_applied, applied.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<PdResponse>, StorageError<u64>>
    where
        I: IntoIterator<Item = Entry<PdTypeConfig>> + openraft::OptionalSend,
        I::IntoIter: openraft::OptionalSend,
    {
        vectron_raft::crash_point!("pd::apply");
        let mut applied = self.shared.write();
        let mut responses = Vec::new();
        for entry in entries {
            applied.last_applied = Some(entry.log_id);
            let response = match entry.payload {
                EntryPayload::Blank => PdResponse::Done,
                EntryPayload::Normal(command) => applied.state.apply(command, entry.log_id.index),
                EntryPayload::Membership(membership) => {
                    applied.membership = StoredMembership::new(Some(entry.log_id), membership);
                    PdResponse::Done
                }
            };
            responses.push(response);
        }
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        Self {
            db: self.db.clone(),
            shared: self.shared.clone(),
            snapshots_built: self.snapshots_built,
        }
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<u64>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<u64, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<u64>> {
        let data = snapshot.into_inner();
        let mut incoming: Applied = serde_json::from_slice(&data)
            .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), &e))?;
        // The metadata is authoritative for what the snapshot covers.
        incoming.last_applied = meta.last_log_id;
        incoming.membership = meta.last_membership.clone();
        let data = serde_json::to_vec(&incoming)
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &e))?;
        self.store(&StoredSnapshot {
            meta: meta.clone(),
            data,
        })?;
        // Stored, not yet in memory.
        vectron_raft::crash_point!("pd::snapshot::install");
        *self.shared.write() = incoming;
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<PdTypeConfig>>, StorageError<u64>> {
        Ok(self.read_stored()?.map(|stored| Snapshot {
            meta: stored.meta,
            snapshot: Box::new(Cursor::new(stored.data)),
        }))
    }
}
