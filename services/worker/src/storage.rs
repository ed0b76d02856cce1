//! The worker's RocksDB layout for shard data. One RocksDB per worker; every
//! key starts with the 8-byte big-endian shard id, so a shard can be read,
//! snapshotted and dropped on its own. Column families:
//!
//! | CF | key | value |
//! |---|---|---|
//! | `ids` | shard, canonical point id | row (u64 BE) |
//! | `points` | shard, row | `worker.v1.Point` without payload (id, vector) |
//! | `payloads` | shard, row | payload JSON (absent when empty) |
//! | `shard_meta` | shard, name | applied log id, membership, snapshot |
//!
//! plus `raft_log` / `raft_meta` from `vectron-raft`. Rows are assigned by the
//! state machine from the log index, identically on every replica.
//!
//! A shard's store is retired when its replica is destroyed: the deletion of
//! its keys is its last write, and any write after it fails. openraft's
//! state-machine task outlives `Raft::shutdown` and drains the entries
//! already handed to it, so without this a destroyed replica's late applies
//! would land on top of the deletion — and a replica opened there again
//! would claim an applied index whose earlier points are gone. Does disk
//! I/O.

use std::sync::Arc;

use prost::Message;
use rocksdb::{
    ColumnFamily, DB, Direction, IteratorMode, ReadOptions, SnapshotWithThreadMode, WriteBatch,
};
use vectron_proto::worker::v1::Point;

/// A shard metadata entry: (name without its prefix, value).
pub type MetaEntry = (Vec<u8>, Vec<u8>);

/// Column family mapping canonical ids to rows.
pub const CF_IDS: &str = "ids";
/// Column family of point ids and vectors by row.
pub const CF_POINTS: &str = "points";
/// Column family of payloads by row.
pub const CF_PAYLOADS: &str = "payloads";
/// Column family of per-shard metadata.
pub const CF_SHARD_META: &str = "shard_meta";
/// Every column family the worker opens besides the Raft ones.
pub const DATA_CFS: &[&str] = &[CF_IDS, CF_POINTS, CF_PAYLOADS, CF_SHARD_META];

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// RocksDB failed.
    #[error("rocksdb: {0}")]
    Rocks(#[from] rocksdb::Error),
    /// Stored bytes do not decode.
    #[error("corrupt {what} for shard {shard}: {reason}")]
    Corrupt {
        /// What was read.
        what: &'static str,
        /// The shard.
        shard: u64,
        /// Decoder message.
        reason: String,
    },
    /// The shard's replica was destroyed; nothing more is written.
    #[error("shard {0} is retired: its replica was destroyed")]
    Retired(u64),
}

/// A stored point: row, id + vector record, payload JSON (empty when none).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredPoint {
    /// Internal row.
    pub row: u64,
    /// Id and vector (payload_json left empty).
    pub point: Point,
    /// Payload JSON bytes; empty when the point has none.
    pub payload: Vec<u8>,
}

/// Access to one shard's keys in the worker's RocksDB.
#[derive(Clone)]
pub struct ShardStore {
    db: Arc<DB>,
    shard: u64,
    /// Whether the store is retired; writes hold the read lock, retiring
    /// takes the write lock, so it waits for the writes under way.
    retired: Arc<std::sync::RwLock<bool>>,
    /// Stored points (id and vector) decoded by reads through this store.
    points_decoded: Arc<std::sync::atomic::AtomicU64>,
}

fn prefixed(shard: u64, rest: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(8 + rest.len());
    key.extend_from_slice(&shard.to_be_bytes());
    key.extend_from_slice(rest);
    key
}

impl ShardStore {
    /// The keys of `shard` in `db` (opened with [`DATA_CFS`]).
    pub fn new(db: Arc<DB>, shard: u64) -> Self {
        Self {
            db,
            shard,
            retired: Arc::default(),
            points_decoded: Arc::default(),
        }
    }

    /// The shard this store reads and writes.
    pub fn shard_id(&self) -> u64 {
        self.shard
    }

    /// The shared database.
    pub fn db(&self) -> &Arc<DB> {
        &self.db
    }

    fn cf(&self, name: &str) -> &ColumnFamily {
        self.db
            .cf_handle(name)
            .unwrap_or_else(|| panic!("the worker opens the {name} column family"))
    }

    fn corrupt(&self, what: &'static str, reason: impl ToString) -> StorageError {
        StorageError::Corrupt {
            what,
            shard: self.shard,
            reason: reason.to_string(),
        }
    }

    /// How many stored points (ids with their vectors) reads through this
    /// store have decoded so far: shows whether a read touched only what
    /// it answers (a scroll page, not the whole shard).
    pub fn points_decoded(&self) -> u64 {
        self.points_decoded
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A consistent read view of the shard: every read through it sees the
    /// store as it was when the view was taken, whatever is written after.
    pub fn view(&self) -> ShardView<'_> {
        ShardView {
            store: self,
            snapshot: Some(self.db.snapshot()),
        }
    }

    fn latest(&self) -> ShardView<'_> {
        ShardView {
            store: self,
            snapshot: None,
        }
    }

    /// The row of a canonical id (latest state; use [`ShardStore::view`]
    /// when several reads must agree).
    pub fn row_of(&self, canonical_id: &str) -> Result<Option<u64>, StorageError> {
        self.latest().row_of(canonical_id)
    }

    /// The point stored at `row` (latest state).
    pub fn point(&self, row: u64) -> Result<Option<StoredPoint>, StorageError> {
        self.latest().point_with(row, true)
    }

    /// The point stored at `row`, its payload read only if `with_payload`
    /// (left empty otherwise; latest state).
    pub fn point_with(
        &self,
        row: u64,
        with_payload: bool,
    ) -> Result<Option<StoredPoint>, StorageError> {
        self.latest().point_with(row, with_payload)
    }

    /// The payload JSON of `row` (empty when none; latest state).
    pub fn payload(&self, row: u64) -> Result<Vec<u8>, StorageError> {
        self.latest().payload(row)
    }

    /// Adds writes of a point to `batch`.
    pub fn put_point(&self, batch: &mut WriteBatch, canonical_id: &str, stored: &StoredPoint) {
        let row_key = prefixed(self.shard, &stored.row.to_be_bytes());
        batch.put_cf(
            self.cf(CF_IDS),
            prefixed(self.shard, canonical_id.as_bytes()),
            stored.row.to_be_bytes(),
        );
        batch.put_cf(self.cf(CF_POINTS), &row_key, stored.point.encode_to_vec());
        if stored.payload.is_empty() {
            batch.delete_cf(self.cf(CF_PAYLOADS), &row_key);
        } else {
            batch.put_cf(self.cf(CF_PAYLOADS), &row_key, &stored.payload);
        }
    }

    /// Adds the removal of a point to `batch`.
    pub fn delete_point(&self, batch: &mut WriteBatch, canonical_id: &str, row: u64) {
        let row_key = prefixed(self.shard, &row.to_be_bytes());
        batch.delete_cf(
            self.cf(CF_IDS),
            prefixed(self.shard, canonical_id.as_bytes()),
        );
        batch.delete_cf(self.cf(CF_POINTS), &row_key);
        batch.delete_cf(self.cf(CF_PAYLOADS), row_key);
    }

    /// Every stored point of the shard, in row order, read from one
    /// consistent view.
    pub fn points(&self) -> Result<Vec<StoredPoint>, StorageError> {
        self.view().points()
    }

    /// A metadata value.
    pub fn meta(&self, name: &str) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.db.get_cf(
            self.cf(CF_SHARD_META),
            prefixed(self.shard, name.as_bytes()),
        )?)
    }

    /// Every metadata entry whose name starts with `prefix`, as (name
    /// without the prefix, value), in name order.
    pub fn meta_with_prefix(&self, prefix: &[u8]) -> Result<Vec<MetaEntry>, StorageError> {
        let start = prefixed(self.shard, prefix);
        let mut entries = Vec::new();
        let iter = self.db.iterator_cf(
            self.cf(CF_SHARD_META),
            IteratorMode::From(&start, Direction::Forward),
        );
        for item in iter {
            let (key, value) = item?;
            let Some(name) = key.strip_prefix(start.as_slice()) else {
                break;
            };
            entries.push((name.to_vec(), value.to_vec()));
        }
        Ok(entries)
    }

    /// Adds the removal of a metadata value to `batch`.
    pub fn delete_meta(&self, batch: &mut WriteBatch, name: &[u8]) {
        batch.delete_cf(self.cf(CF_SHARD_META), prefixed(self.shard, name));
    }

    /// Adds the removal of every metadata value whose name starts with
    /// `prefix` to `batch` (a range delete: nothing is read).
    pub fn delete_meta_with_prefix(&self, batch: &mut WriteBatch, prefix: &[u8]) {
        let start = prefixed(self.shard, prefix);
        let mut end = start.clone();
        // The first key after every key with this prefix: strip trailing 0xff
        // bytes and increment the last (the shard prefix bounds the range
        // when the name prefix is all 0xff or empty).
        while end.last() == Some(&0xff) && end.len() > 8 {
            end.pop();
        }
        if end.len() > 8 {
            if let Some(last) = end.last_mut() {
                *last += 1;
            }
        } else {
            end = prefixed(self.shard.wrapping_add(1), &[]);
        }
        batch.delete_range_cf(self.cf(CF_SHARD_META), start, end);
    }

    /// Adds a metadata write to `batch`.
    pub fn put_meta(&self, batch: &mut WriteBatch, name: impl AsRef<[u8]>, value: &[u8]) {
        batch.put_cf(
            self.cf(CF_SHARD_META),
            prefixed(self.shard, name.as_ref()),
            value,
        );
    }

    /// Adds the removal of every data key of the shard to `batch` (the Raft
    /// log is the log store's to drop).
    pub fn delete_all(&self, batch: &mut WriteBatch) {
        let start = prefixed(self.shard, &[]);
        let end = prefixed(self.shard.wrapping_add(1), &[]);
        for cf in DATA_CFS {
            batch.delete_range_cf(self.cf(cf), &start, &end);
        }
    }

    /// Writes `batch` durably (synced); fails once the store is retired.
    pub fn write(&self, batch: WriteBatch) -> Result<(), StorageError> {
        let retired = self.retired.read().unwrap_or_else(|p| p.into_inner());
        if *retired {
            return Err(StorageError::Retired(self.shard));
        }
        self.write_synced(batch)
    }

    /// Writes the result of applying committed log entries, without an
    /// fsync of its own; fails once the store is retired. It shares the
    /// RocksDB write-ahead log with the Raft log, which recovers a prefix of
    /// itself: the write is durable once any later synced write (the next
    /// log append) is, and if a crash loses it, it lost the applied log id
    /// written with it too, so the entries are applied again from the
    /// (synced) Raft log on restart.
    pub fn write_applied(&self, batch: WriteBatch) -> Result<(), StorageError> {
        let retired = self.retired.read().unwrap_or_else(|p| p.into_inner());
        if *retired {
            return Err(StorageError::Retired(self.shard));
        }
        Ok(self.db.write(batch)?)
    }

    /// Retires the store (and every clone of it): waits for the writes
    /// under way, writes `batch` (the deletion of the shard's keys) as the
    /// last one, and makes every later [`write`](Self::write) fail.
    pub fn retire(&self, batch: WriteBatch) -> Result<(), StorageError> {
        let mut retired = self.retired.write().unwrap_or_else(|p| p.into_inner());
        *retired = true;
        self.write_synced(batch)
    }

    fn write_synced(&self, batch: WriteBatch) -> Result<(), StorageError> {
        Ok(self
            .db
            .write_opt(batch, &vectron_raft::log_store::sync_write_options())?)
    }
}

/// Reads of one shard, either of the latest state or of a RocksDB snapshot
/// (see [`ShardStore::view`]).
pub struct ShardView<'a> {
    store: &'a ShardStore,
    snapshot: Option<SnapshotWithThreadMode<'a, DB>>,
}

impl ShardView<'_> {
    fn options(&self) -> ReadOptions {
        let mut options = ReadOptions::default();
        if let Some(snapshot) = &self.snapshot {
            options.set_snapshot(snapshot);
        }
        options
    }

    fn get(&self, cf: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self
            .store
            .db
            .get_cf_opt(self.store.cf(cf), key, &self.options())?)
    }

    /// The row of a canonical id.
    pub fn row_of(&self, canonical_id: &str) -> Result<Option<u64>, StorageError> {
        let bytes = self.get(CF_IDS, &prefixed(self.store.shard, canonical_id.as_bytes()))?;
        bytes
            .map(|b| {
                <[u8; 8]>::try_from(b.as_slice())
                    .map(u64::from_be_bytes)
                    .map_err(|_| self.store.corrupt("row", "not 8 bytes"))
            })
            .transpose()
    }

    /// The point stored at `row`, its payload read only if `with_payload`
    /// (left empty otherwise).
    pub fn point_with(
        &self,
        row: u64,
        with_payload: bool,
    ) -> Result<Option<StoredPoint>, StorageError> {
        let key = prefixed(self.store.shard, &row.to_be_bytes());
        let Some(bytes) = self.get(CF_POINTS, &key)? else {
            return Ok(None);
        };
        let point = Point::decode(bytes.as_slice()).map_err(|e| self.store.corrupt("point", e))?;
        self.store
            .points_decoded
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let payload = if with_payload {
            self.get(CF_PAYLOADS, &key)?.unwrap_or_default()
        } else {
            Vec::new()
        };
        Ok(Some(StoredPoint {
            row,
            point,
            payload,
        }))
    }

    /// The payload JSON of `row` (empty when none).
    pub fn payload(&self, row: u64) -> Result<Vec<u8>, StorageError> {
        let key = prefixed(self.store.shard, &row.to_be_bytes());
        Ok(self.get(CF_PAYLOADS, &key)?.unwrap_or_default())
    }

    /// Walks the shard's points in canonical-id order, starting after
    /// `after` (from the first when `None`), calling `visit(canonical id,
    /// row)` until it returns `false`. Streams: nothing is loaded beyond the
    /// current key, so a scan's memory does not grow with the shard.
    pub fn scan_ids(
        &self,
        after: Option<&str>,
        mut visit: impl FnMut(&str, u64) -> Result<bool, StorageError>,
    ) -> Result<(), StorageError> {
        let shard = self.store.shard;
        let start = prefixed(shard, after.unwrap_or_default().as_bytes());
        let iter = self.store.db.iterator_cf_opt(
            self.store.cf(CF_IDS),
            self.options(),
            IteratorMode::From(&start, Direction::Forward),
        );
        for item in iter {
            let (key, value) = item?;
            let Some(id) = key.strip_prefix(&shard.to_be_bytes()) else {
                break;
            };
            if after.is_some() && key.as_ref() == start.as_slice() {
                continue;
            }
            let id = std::str::from_utf8(id).map_err(|e| self.store.corrupt("point id", e))?;
            let row = <[u8; 8]>::try_from(value.as_ref())
                .map(u64::from_be_bytes)
                .map_err(|_| self.store.corrupt("row", "not 8 bytes"))?;
            if !visit(id, row)? {
                break;
            }
        }
        Ok(())
    }

    /// Every stored point of the shard, in row order.
    pub fn points(&self) -> Result<Vec<StoredPoint>, StorageError> {
        let shard = self.store.shard;
        let start = prefixed(shard, &[]);
        let mut points = Vec::new();
        let iter = self.store.db.iterator_cf_opt(
            self.store.cf(CF_POINTS),
            self.options(),
            IteratorMode::From(&start, Direction::Forward),
        );
        for item in iter {
            let (key, value) = item?;
            if !key.starts_with(&shard.to_be_bytes()) {
                break;
            }
            let row = key
                .get(8..16)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map(u64::from_be_bytes)
                .ok_or_else(|| self.store.corrupt("row key", "not 16 bytes"))?;
            let point =
                Point::decode(value.as_ref()).map_err(|e| self.store.corrupt("point", e))?;
            let payload = self.payload(row)?;
            points.push(StoredPoint {
                row,
                point,
                payload,
            });
        }
        Ok(points)
    }
}
