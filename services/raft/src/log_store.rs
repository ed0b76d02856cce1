//! A Raft log store for one group inside a shared RocksDB: entries in the
//! `raft_log` column family and vote / committed / purged markers in
//! `raft_meta`, every key prefixed by the group id so groups never see each
//! other's keys and a group can be dropped on its own. Entries, votes,
//! truncations and purges are synced (fsync of the WAL) before openraft is
//! told they are durable; the committed marker is a replay hint written
//! without an fsync of its own. One fsync per appended batch of entries is
//! the only one a write pays for: state machines sharing the DB may write
//! without sync, because RocksDB recovers a prefix of its write-ahead log.
//! Does disk I/O.

use std::fmt::Debug;
use std::marker::PhantomData;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{Entry, LogId, OptionalSend, RaftLogReader, StorageError, StorageIOError, Vote};
use prost::Message;
use rocksdb::{ColumnFamily, DB, Direction, IteratorMode, WriteBatch, WriteOptions};
use vectron_proto::raft::v1 as pb;

use crate::GroupConfig;
use crate::convert::{
    entry_from_pb, entry_to_pb, log_id_from_pb, log_id_to_pb, vote_from_pb, vote_to_pb,
};

/// Column family holding log entries, keyed by group id and log index.
pub const CF_RAFT_LOG: &str = "raft_log";
/// Column family holding vote, committed and purged markers, keyed by group id.
pub const CF_RAFT_META: &str = "raft_meta";

const META_VOTE: &[u8] = b"vote";
const META_COMMITTED: &[u8] = b"committed";
const META_PURGED: &[u8] = b"purged";

fn log_key(group: u64, index: u64) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&group.to_be_bytes());
    key[8..].copy_from_slice(&index.to_be_bytes());
    key
}

fn meta_key(group: u64, name: &[u8]) -> Vec<u8> {
    let mut key = group.to_be_bytes().to_vec();
    key.extend_from_slice(name);
    key
}

fn index_of_log_key(key: &[u8]) -> Option<u64> {
    key.get(8..16)
        .and_then(|bytes| bytes.try_into().ok())
        .map(u64::from_be_bytes)
}

/// Write options for everything Raft relies on being durable.
pub fn sync_write_options() -> WriteOptions {
    let mut options = WriteOptions::default();
    options.set_sync(true);
    options
}

/// The log of one Raft group.
pub struct RocksLogStore<C> {
    db: Arc<DB>,
    group: u64,
    _config: PhantomData<C>,
}

impl<C> Clone for RocksLogStore<C> {
    fn clone(&self) -> Self {
        Self {
            db: self.db.clone(),
            group: self.group,
            _config: PhantomData,
        }
    }
}

impl<C> Debug for RocksLogStore<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksLogStore")
            .field("group", &self.group)
            .finish()
    }
}

impl<C: GroupConfig> RocksLogStore<C> {
    /// The log of `group` in `db`, which must have the [`CF_RAFT_LOG`] and
    /// [`CF_RAFT_META`] column families (see [`crate::open_db`]).
    pub fn new(db: Arc<DB>, group: u64) -> Self {
        Self {
            db,
            group,
            _config: PhantomData,
        }
    }

    fn cf_log(&self) -> &ColumnFamily {
        self.db
            .cf_handle(CF_RAFT_LOG)
            .expect("open_db creates the raft_log column family")
    }

    fn cf_meta(&self) -> &ColumnFamily {
        self.db
            .cf_handle(CF_RAFT_META)
            .expect("open_db creates the raft_meta column family")
    }

    fn read_meta_log_id(&self, name: &[u8]) -> Result<Option<LogId<u64>>, StorageError<u64>> {
        let bytes = self
            .db
            .get_cf(self.cf_meta(), meta_key(self.group, name))
            .map_err(|e| StorageIOError::read(&e))?;
        bytes
            .map(|bytes| {
                pb::LogId::decode(bytes.as_slice())
                    .map(|id| log_id_from_pb(&id))
                    .map_err(|e| StorageIOError::read(&e).into())
            })
            .transpose()
    }

    fn write_batch(&self, batch: WriteBatch) -> Result<(), rocksdb::Error> {
        self.db.write_opt(batch, &sync_write_options())
    }

    fn last_log_id(&self) -> Result<Option<LogId<u64>>, StorageError<u64>> {
        let upper = log_key(self.group, u64::MAX);
        let mut iter = self.db.iterator_cf(
            self.cf_log(),
            IteratorMode::From(&upper, Direction::Reverse),
        );
        match iter.next() {
            Some(Ok((key, value))) if key.starts_with(&self.group.to_be_bytes()) => {
                let entry =
                    pb::Entry::decode(value.as_ref()).map_err(|e| StorageIOError::read_logs(&e))?;
                Ok(entry.log_id.as_ref().map(log_id_from_pb))
            }
            Some(Err(e)) => Err(StorageIOError::read_logs(&e).into()),
            _ => Ok(None),
        }
    }

    /// Deletes every key of this group (log and markers), synced.
    pub fn destroy(&self) -> Result<(), rocksdb::Error> {
        let mut batch = WriteBatch::default();
        self.stage_destroy(&mut batch);
        self.write_batch(batch)
    }

    /// Adds the deletion of every key of this group (log and markers) to
    /// `batch`, for a caller that removes the group's other keys in the same
    /// atomic write.
    pub fn stage_destroy(&self, batch: &mut WriteBatch) {
        batch.delete_range_cf(
            self.cf_log(),
            log_key(self.group, 0),
            log_key(self.group.wrapping_add(1), 0),
        );
        for name in [META_VOTE, META_COMMITTED, META_PURGED] {
            batch.delete_cf(self.cf_meta(), meta_key(self.group, name));
        }
    }
}

impl<C: GroupConfig> RaftLogReader<C> for RocksLogStore<C> {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<C>>, StorageError<u64>> {
        let start = match range.start_bound() {
            Bound::Included(i) => *i,
            Bound::Excluded(i) => i.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let start_key = log_key(self.group, start);
        let iter = self.db.iterator_cf(
            self.cf_log(),
            IteratorMode::From(&start_key, Direction::Forward),
        );
        let mut entries = Vec::new();
        for item in iter {
            let (key, value) = item.map_err(|e| StorageIOError::read_logs(&e))?;
            if !key.starts_with(&self.group.to_be_bytes()) {
                break;
            }
            let Some(index) = index_of_log_key(&key) else {
                break;
            };
            if !range.contains(&index) {
                break;
            }
            let entry =
                pb::Entry::decode(value.as_ref()).map_err(|e| StorageIOError::read_logs(&e))?;
            entries.push(entry_from_pb(&entry).map_err(|e| StorageIOError::read_logs(&e))?);
        }
        Ok(entries)
    }
}

impl<C: GroupConfig> RaftLogStorage<C> for RocksLogStore<C> {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<C>, StorageError<u64>> {
        let last_purged_log_id = self.read_meta_log_id(META_PURGED)?;
        let last_log_id = self.last_log_id()?.or(last_purged_log_id);
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<u64>) -> Result<(), StorageError<u64>> {
        let mut batch = WriteBatch::default();
        batch.put_cf(
            self.cf_meta(),
            meta_key(self.group, META_VOTE),
            vote_to_pb(vote).encode_to_vec(),
        );
        let written = self
            .write_batch(batch)
            .map_err(|e| StorageIOError::write_vote(&e).into());
        // Durable, not yet acted on.
        crate::crash_point!("raft::log::save_vote");
        written
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<u64>>, StorageError<u64>> {
        let bytes = self
            .db
            .get_cf(self.cf_meta(), meta_key(self.group, META_VOTE))
            .map_err(|e| StorageIOError::read_vote(&e))?;
        bytes
            .map(|bytes| {
                pb::Vote::decode(bytes.as_slice())
                    .map(|v| vote_from_pb(&v))
                    .map_err(|e| StorageIOError::read_vote(&e).into())
            })
            .transpose()
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<u64>>,
    ) -> Result<(), StorageError<u64>> {
        let mut batch = WriteBatch::default();
        let key = meta_key(self.group, META_COMMITTED);
        match committed {
            Some(log_id) => {
                batch.put_cf(self.cf_meta(), key, log_id_to_pb(&log_id).encode_to_vec())
            }
            None => batch.delete_cf(self.cf_meta(), key),
        }
        // No fsync: the committed id is a hint for replay after a restart.
        // Losing it loses nothing (the leader commits the entries again),
        // and the next synced write makes it durable anyway.
        self.db
            .write(batch)
            .map_err(|e| StorageIOError::write(&e).into())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<u64>>, StorageError<u64>> {
        self.read_meta_log_id(META_COMMITTED)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<C>,
    ) -> Result<(), StorageError<u64>>
    where
        I: IntoIterator<Item = Entry<C>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = WriteBatch::default();
        for entry in entries {
            batch.put_cf(
                self.cf_log(),
                log_key(self.group, entry.log_id.index),
                entry_to_pb(&entry).encode_to_vec(),
            );
        }
        crate::crash_point!("raft::log::before_append_sync");
        let result = self.write_batch(batch);
        // Durable, not yet reported to Raft (so not yet acknowledged).
        crate::crash_point!("raft::log::after_append_sync");
        let io_result = result
            .as_ref()
            .map(|_| ())
            .map_err(|e| std::io::Error::other(e.to_string()));
        callback.log_io_completed(io_result);
        result.map_err(|e| StorageIOError::write_logs(&e).into())
    }

    async fn truncate(&mut self, log_id: LogId<u64>) -> Result<(), StorageError<u64>> {
        crate::crash_point!("raft::log::truncate");
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(
            self.cf_log(),
            log_key(self.group, log_id.index),
            log_key(self.group.wrapping_add(1), 0),
        );
        self.write_batch(batch)
            .map_err(|e| StorageIOError::write_logs(&e).into())
    }

    async fn purge(&mut self, log_id: LogId<u64>) -> Result<(), StorageError<u64>> {
        crate::crash_point!("raft::log::purge");
        let mut batch = WriteBatch::default();
        batch.put_cf(
            self.cf_meta(),
            meta_key(self.group, META_PURGED),
            log_id_to_pb(&log_id).encode_to_vec(),
        );
        batch.delete_range_cf(
            self.cf_log(),
            log_key(self.group, 0),
            log_key(self.group, log_id.index.saturating_add(1)),
        );
        self.write_batch(batch)
            .map_err(|e| StorageIOError::write_logs(&e).into())
    }
}
