//! The state machine of a shard replica: applies each committed entry as one
//! RocksDB write batch (not fsynced: see [`ShardStore::write_applied`] for
//! why the Raft log's fsync covers it), then stores its vectors in the HNSW index
//! (searchable at once; upkeep builds them into the graph), holding the
//! index's write lock across both so a reader that holds its read lock sees
//! index and rows of the same entry; answers a repeated client request from
//! its dedup table instead of applying it again; rebuilds the index from
//! RocksDB on open; builds and installs snapshots of the shard's points and
//! request table. Does disk I/O.

use std::collections::HashMap;
use std::io::Cursor;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    BasicNode, Entry, EntryPayload, LogId, OptionalSend, RaftSnapshotBuilder, SnapshotMeta,
    StorageError, StorageIOError, StoredMembership,
};
use prost::Message;
use rocksdb::WriteBatch;
use vectron_proto::common::v1 as common;
use vectron_proto::worker::v1::Point;

use super::ShardTypeConfig;
use super::command::{PointRecord, RequestId, ShardCommand, ShardProposal, ShardResponse};
use super::dedup::{DedupTable, Recorded};
use super::row_ids::{RowIds, RowTable};
use crate::distance::Metric;
use crate::filter::PayloadFilter;
use crate::index::disk::IndexDir;
use crate::index::{HnswParams, ShardIndex};
use crate::maintenance::{self, BUILD_CHUNK, HARD_MAX_UNBUILT, MAX_UNBUILT};
use crate::storage::{ShardStore, StoredPoint};

const META_APPLIED: &str = "applied";
const META_MEMBERSHIP: &str = "membership";
const META_SNAPSHOT_META: &str = "snapshot_meta";
/// The data of the latest snapshot, in chunks named `snapshot_data/00000000`,
/// `…/00000001`, …: RocksDB cannot hold a value of 4 GiB or more, and large
/// values strain its memtables and compactions.
const META_SNAPSHOT_CHUNKS: &str = "snapshot_data/";
/// Where snapshot data was kept as one value by earlier versions.
const META_SNAPSHOT_DATA_WHOLE: &str = "snapshot_data";
/// Largest stored snapshot chunk.
const SNAPSHOT_CHUNK_BYTES: usize = 32 * 1024 * 1024;

/// Points per command are limited so rows `log_index << 16 | position` are
/// unique.
pub const MAX_POINTS_PER_COMMAND: usize = 1 << 16;

/// One point of a snapshot, keeping its row.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SnapshotPoint {
    /// Internal row.
    #[prost(uint64, tag = "1")]
    pub row: u64,
    /// Id, vector and payload.
    #[prost(message, optional, tag = "2")]
    pub point: Option<Point>,
}

/// One remembered client request of a snapshot.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SnapshotRequest {
    /// The request id, 16 bytes.
    #[prost(bytes = "vec", tag = "1")]
    pub id: Vec<u8>,
    /// The log index that applied it.
    #[prost(uint64, tag = "2")]
    pub log_index: u64,
    /// Its answer, JSON.
    #[prost(bytes = "vec", tag = "3")]
    pub response_json: Vec<u8>,
}

/// The data of a shard snapshot.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SnapshotData {
    /// Every point of the shard.
    #[prost(message, repeated, tag = "1")]
    pub points: Vec<SnapshotPoint>,
    /// The shard's dedup table.
    #[prost(message, repeated, tag = "2")]
    pub requests: Vec<SnapshotRequest>,
}

fn io_read(e: impl std::error::Error + 'static) -> StorageError<u64> {
    StorageIOError::read_state_machine(&e).into()
}

fn io_write(e: impl std::error::Error + 'static) -> StorageError<u64> {
    StorageIOError::write_state_machine(&e).into()
}

/// The state machine of one shard replica.
pub struct ShardStateMachine {
    store: ShardStore,
    index: Arc<RwLock<ShardIndex>>,
    /// The id of each row the index holds (changed under the index's write
    /// lock).
    row_ids: Arc<RowIds>,
    /// Points the index loaded from dumps when the shard was opened.
    loaded_from_disk: usize,
    applied: Option<LogId<u64>>,
    membership: StoredMembership<u64, BasicNode>,
    requests: DedupTable,
}

impl ShardStateMachine {
    /// Opens the shard's state: its index is loaded from the dumps in
    /// `dumps` where they cover the stored points and built for the rest
    /// (all of it when the dumps are missing or unusable).
    pub fn open(
        store: ShardStore,
        metric: Metric,
        params: HnswParams,
        dumps: &IndexDir,
    ) -> Result<Self, StorageError<u64>> {
        let applied = store
            .meta(META_APPLIED)
            .map_err(io_read)?
            .map(|b| serde_json::from_slice(&b).map_err(io_read))
            .transpose()?;
        let membership = store
            .meta(META_MEMBERSHIP)
            .map_err(io_read)?
            .map(|b| serde_json::from_slice(&b).map_err(io_read))
            .transpose()?
            .unwrap_or_default();
        let requests = DedupTable::load(&store).map_err(io_read)?;
        let started = Instant::now();
        let mut rows = Vec::new();
        let stored: Vec<(u64, Vec<f32>)> = store
            .points()
            .map_err(io_read)?
            .into_iter()
            .map(|p| {
                rows.push((p.row, p.point.id.unwrap_or_default(), p.payload));
                (p.row, p.point.vector)
            })
            .collect();
        let points = stored.len();
        let loaded = blocking(|| dumps.load(metric, params)).unwrap_or_else(|e| {
            tracing::warn!(shard = store.shard_id(), error = %e, "index dumps unusable; rebuilding the index from storage");
            if let Err(e) = dumps.remove() {
                tracing::warn!(shard = store.shard_id(), error = %e, "cannot remove index dumps");
            }
            Vec::new()
        });
        let (index, loaded_from_disk) =
            blocking(|| ShardIndex::restore(metric, params, loaded, stored));
        if points > 0 {
            tracing::info!(
                shard = store.shard_id(),
                points,
                loaded_from_disk,
                built = points - loaded_from_disk,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "index ready"
            );
        }
        Ok(Self {
            store,
            index: Arc::new(RwLock::new(index)),
            row_ids: Arc::new(RowIds::from_rows(
                rows.iter()
                    .map(|(row, id, payload)| (*row, id.clone(), payload.as_slice())),
            )),
            loaded_from_disk,
            applied,
            membership,
            requests,
        })
    }

    /// Client requests remembered for deduplication.
    pub fn remembered_requests(&self) -> usize {
        self.requests.len()
    }

    /// Points the index loaded from dumps (rather than built) on open.
    pub fn loaded_from_disk(&self) -> usize {
        self.loaded_from_disk
    }

    /// The shard's index, shared with the search path.
    pub fn index(&self) -> Arc<RwLock<ShardIndex>> {
        self.index.clone()
    }

    /// The id of each row the index holds, shared with the search path.
    pub fn row_ids(&self) -> Arc<RowIds> {
        self.row_ids.clone()
    }

    fn write_index(&self) -> std::sync::RwLockWriteGuard<'_, ShardIndex> {
        self.index.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Stages `command` into `batch`; returns the result and the index changes
    /// to make once the batch is durable.
    fn stage(
        &self,
        batch: &mut WriteBatch,
        overlay: &mut HashMap<String, Option<u64>>,
        command: ShardCommand,
        log_index: u64,
    ) -> Result<(ShardResponse, Vec<IndexChange>), StorageError<u64>> {
        let mut changes = Vec::new();
        let row_of = |overlay: &HashMap<String, Option<u64>>, id: &str| match overlay.get(id) {
            Some(row) => Ok(*row),
            None => self.store.row_of(id).map_err(io_read),
        };
        match command {
            ShardCommand::Upsert { points } => {
                if points.len() > MAX_POINTS_PER_COMMAND {
                    return Ok((
                        ShardResponse::Rejected(format!(
                            "at most {MAX_POINTS_PER_COMMAND} points per command"
                        )),
                        changes,
                    ));
                }
                let count = points.len() as u64;
                for (
                    position,
                    PointRecord {
                        id,
                        vector,
                        payload,
                    },
                ) in points.into_iter().enumerate()
                {
                    let canonical = id.canonical();
                    if let Some(old) = row_of(overlay, &canonical)? {
                        self.store.delete_point(batch, &canonical, old);
                        changes.push(IndexChange::Delete(old));
                    }
                    let row = (log_index << 16) | position as u64;
                    let wire_id = crate::point_id::to_pb(&id);
                    let indexed_payload = payload.clone();
                    let stored = StoredPoint {
                        row,
                        point: Point {
                            id: Some(wire_id.clone()),
                            vector: vector.clone(),
                            payload_json: Vec::new(),
                        },
                        payload,
                    };
                    self.store.put_point(batch, &canonical, &stored);
                    overlay.insert(canonical, Some(row));
                    changes.push(IndexChange::Upsert(row, vector, wire_id, indexed_payload));
                }
                Ok((ShardResponse::Upserted(count), changes))
            }
            ShardCommand::Delete { ids } => {
                let mut deleted = 0;
                for id in ids {
                    let canonical = id.canonical();
                    if let Some(row) = row_of(overlay, &canonical)? {
                        self.store.delete_point(batch, &canonical, row);
                        overlay.insert(canonical, None);
                        changes.push(IndexChange::Delete(row));
                        deleted += 1;
                    }
                }
                Ok((ShardResponse::Deleted(deleted), changes))
            }
            ShardCommand::DeleteByFilter { filter } => {
                let decoded = vectron_proto::common::v1::Filter::decode(filter.as_slice())
                    .map_err(|e| e.to_string())
                    .and_then(|f| {
                        PayloadFilter::from_proto(&f, "filter").map_err(|e| e.to_string())
                    });
                let filter = match decoded {
                    Ok(filter) => filter,
                    Err(reason) => return Ok((ShardResponse::Rejected(reason), changes)),
                };
                // Stream ids and payloads only; collect just the matches.
                let view = self.store.view();
                let mut matches: Vec<(String, u64)> = Vec::new();
                view.scan_ids(None, |canonical, row| {
                    if overlay
                        .get(canonical)
                        .is_some_and(|assigned| *assigned != Some(row))
                    {
                        return Ok(true);
                    }
                    if super::read::payload_matches(&filter, &view.payload(row)?) {
                        matches.push((canonical.to_owned(), row));
                    }
                    Ok(true)
                })
                .map_err(io_read)?;
                drop(view);
                let deleted = matches.len() as u64;
                for (canonical, row) in matches {
                    self.store.delete_point(batch, &canonical, row);
                    overlay.insert(canonical, None);
                    changes.push(IndexChange::Delete(row));
                }
                Ok((ShardResponse::Deleted(deleted), changes))
            }
        }
    }

    fn snapshot_data(&self) -> Result<Vec<u8>, StorageError<u64>> {
        let points = self
            .store
            .points()
            .map_err(io_read)?
            .into_iter()
            .map(|stored| SnapshotPoint {
                row: stored.row,
                point: Some(Point {
                    payload_json: stored.payload,
                    ..stored.point
                }),
            })
            .collect();
        let requests = self
            .requests
            .entries()
            .into_iter()
            .map(|(id, recorded)| {
                Ok(SnapshotRequest {
                    id: id.to_wire(),
                    log_index: recorded.log_index,
                    response_json: serde_json::to_vec(&recorded.response).map_err(io_write)?,
                })
            })
            .collect::<Result<_, StorageError<u64>>>()?;
        Ok(SnapshotData { points, requests }.encode_to_vec())
    }
}

/// Runs CPU- or fsync-heavy work (a synced write batch, HNSW inserts) without
/// stalling the other tasks on this tokio worker thread — Raft heartbeats of
/// every group share the runtime, and starving them causes elections.
fn blocking<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}

/// Keeps a snapshot in `shard_meta`: metadata as JSON, data as raw bytes in
/// chunks of [`SNAPSHOT_CHUNK_BYTES`], replacing the previous snapshot in the
/// same batch.
fn save_snapshot(
    store: &ShardStore,
    meta: &SnapshotMeta<u64, BasicNode>,
    data: &[u8],
) -> Result<(), StorageError<u64>> {
    save_snapshot_in_chunks(store, meta, data, SNAPSHOT_CHUNK_BYTES)
}

fn save_snapshot_in_chunks(
    store: &ShardStore,
    meta: &SnapshotMeta<u64, BasicNode>,
    data: &[u8],
    chunk_bytes: usize,
) -> Result<(), StorageError<u64>> {
    let mut batch = WriteBatch::default();
    let meta = serde_json::to_vec(meta).map_err(io_write)?;
    store.put_meta(&mut batch, META_SNAPSHOT_META, &meta);
    store.delete_meta(&mut batch, META_SNAPSHOT_DATA_WHOLE.as_bytes());
    store.delete_meta_with_prefix(&mut batch, META_SNAPSHOT_CHUNKS.as_bytes());
    // At least one chunk, so an empty snapshot is still found.
    let chunks = data
        .chunks(chunk_bytes.max(1))
        .chain(data.is_empty().then_some(data));
    for (i, chunk) in chunks.enumerate() {
        store.put_meta(&mut batch, format!("{META_SNAPSHOT_CHUNKS}{i:08}"), chunk);
    }
    blocking(|| store.write(batch)).map_err(io_write)
}

/// A stored snapshot: its metadata (JSON) and its data.
type StoredSnapshotBytes = (Vec<u8>, Vec<u8>);

/// The stored snapshot: its metadata and its data put back together.
fn load_snapshot(store: &ShardStore) -> Result<Option<StoredSnapshotBytes>, StorageError<u64>> {
    let Some(meta) = store.meta(META_SNAPSHOT_META).map_err(io_read)? else {
        return Ok(None);
    };
    let chunks = store
        .meta_with_prefix(META_SNAPSHOT_CHUNKS.as_bytes())
        .map_err(io_read)?;
    if chunks.is_empty() {
        return Ok(store
            .meta(META_SNAPSHOT_DATA_WHOLE)
            .map_err(io_read)?
            .map(|data| (meta, data)));
    }
    let mut data = Vec::with_capacity(chunks.iter().map(|(_, c)| c.len()).sum());
    for (_, chunk) in chunks {
        data.extend_from_slice(&chunk);
    }
    Ok(Some((meta, data)))
}

/// An index update to make after the write batch is durable.
enum IndexChange {
    /// Row, vector, the point's id and payload JSON (for [`RowIds`]).
    Upsert(u64, Vec<f32>, common::PointId, Vec<u8>),
    Delete(u64),
}

/// Makes one entry's changes to the in-memory rows, in order.
fn apply_to_ids(rows: &mut RowTable, changes: &[IndexChange]) {
    for change in changes {
        match change {
            IndexChange::Upsert(row, _, id, payload) => rows.insert((*row, id.clone(), payload)),
            IndexChange::Delete(row) => rows.remove(*row),
        }
    }
}

/// Makes one entry's index changes in order: each run of consecutive upserts
/// is stored at once (searchable by exact scan; upkeep builds it into the
/// graph), each delete on its own.
fn apply_to_index(index: &mut ShardIndex, changes: Vec<IndexChange>) {
    let mut run: Vec<(u64, Vec<f32>)> = Vec::new();
    for change in changes {
        match change {
            IndexChange::Upsert(row, vector, _, _) => run.push((row, vector)),
            IndexChange::Delete(row) => {
                index.append_upserts(std::mem::take(&mut run));
                index.delete(row);
            }
        }
    }
    index.append_upserts(run);
}

/// Builds a snapshot from points read when the builder was made, so it is a
/// consistent view even while later entries are applied.
pub struct ShardSnapshotBuilder {
    machine_store: ShardStore,
    /// The points, or the error reading them (never an empty stand-in, which
    /// would wipe a follower that installs it).
    data: Option<Result<Vec<u8>, StorageError<u64>>>,
    meta: SnapshotMeta<u64, BasicNode>,
}

impl RaftSnapshotBuilder<ShardTypeConfig> for ShardSnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<ShardTypeConfig>, StorageError<u64>> {
        let data = self.data.take().unwrap_or_else(|| {
            Err(io_read(std::io::Error::other(
                "snapshot builder used twice",
            )))
        })?;
        vectron_raft::crash_point!("worker::snapshot::build");
        save_snapshot(&self.machine_store, &self.meta, &data)?;
        Ok(Snapshot {
            meta: self.meta.clone(),
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<ShardTypeConfig> for ShardStateMachine {
    type SnapshotBuilder = ShardSnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<u64>>, StoredMembership<u64, BasicNode>), StorageError<u64>> {
        Ok((self.applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<ShardResponse>, StorageError<u64>>
    where
        I: IntoIterator<Item = Entry<ShardTypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        // One durable batch per entry: a later entry (say a delete by filter)
        // must see what an earlier one wrote, and each entry's data lands
        // together with its applied log id.
        let mut responses = Vec::new();
        for entry in entries {
            let mut batch = WriteBatch::default();
            let mut overlay = HashMap::new();
            let mut changes = Vec::new();
            self.applied = Some(entry.log_id);
            let response = match entry.payload {
                EntryPayload::Blank => ShardResponse::Done,
                EntryPayload::Normal(ShardProposal {
                    request: Some(id), ..
                }) if self.requests.answer(id).is_some() => {
                    // A retry of a request that already committed: answer as
                    // the first time, change nothing.
                    self.requests.answer(id).cloned().unwrap_or_default()
                }
                EntryPayload::Normal(ShardProposal { request, command }) => {
                    // Staging reads the store (a delete by filter walks the
                    // whole shard): off the runtime's async threads.
                    let (response, staged) = blocking(|| {
                        self.stage(&mut batch, &mut overlay, command, entry.log_id.index)
                    })?;
                    changes = staged;
                    if let Some(id) = request {
                        self.requests.record(
                            &self.store,
                            &mut batch,
                            id,
                            entry.log_id.index,
                            response.clone(),
                        );
                    }
                    response
                }
                EntryPayload::Membership(membership) => {
                    self.membership = StoredMembership::new(Some(entry.log_id), membership);
                    ShardResponse::Done
                }
            };
            let applied = serde_json::to_vec(&self.applied).map_err(io_write)?;
            let membership = serde_json::to_vec(&self.membership).map_err(io_write)?;
            self.store.put_meta(&mut batch, META_APPLIED, &applied);
            self.store
                .put_meta(&mut batch, META_MEMBERSHIP, &membership);
            vectron_raft::crash_point!("worker::apply::before_write");
            blocking(|| -> Result<(), StorageError<u64>> {
                // Searches scan unbuilt points exactly: past a bound, build
                // them before storing more (no index lock held meanwhile).
                let unbuilt = self
                    .index
                    .read()
                    .unwrap_or_else(|p| p.into_inner())
                    .unbuilt();
                if unbuilt >= HARD_MAX_UNBUILT {
                    maintenance::build_pending(&self.index, BUILD_CHUNK, MAX_UNBUILT);
                }
                // Rows and index change under one write lock: searches hold
                // the read lock while they read rows (see `read`).
                let mut index = self.write_index();
                self.store.write_applied(batch).map_err(io_write)?;
                // Rows durable, index not yet updated.
                vectron_raft::crash_point!("worker::apply::before_index");
                apply_to_ids(&mut self.row_ids.write(), &changes);
                apply_to_index(&mut index, changes);
                Ok(())
            })?;
            responses.push(response);
        }
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        let data = Some(blocking(|| self.snapshot_data()));
        let snapshot_id = match self.applied {
            Some(id) => format!(
                "{}-{}-{}",
                id.leader_id.term, id.leader_id.node_id, id.index
            ),
            None => "empty".to_owned(),
        };
        ShardSnapshotBuilder {
            machine_store: self.store.clone(),
            data,
            meta: SnapshotMeta {
                last_log_id: self.applied,
                last_membership: self.membership.clone(),
                snapshot_id,
            },
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
        let bytes = snapshot.into_inner();
        let data = blocking(|| SnapshotData::decode(bytes.as_slice()))
            .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), &e))?;
        let mut batch = WriteBatch::default();
        self.store.delete_all(&mut batch);
        let mut vectors = Vec::with_capacity(data.points.len());
        let mut ids = Vec::with_capacity(data.points.len());
        for snapshot_point in data.points {
            let mut point = snapshot_point.point.unwrap_or_default();
            let canonical = crate::point_id::canonical(point.id.as_ref());
            let payload = std::mem::take(&mut point.payload_json);
            vectors.push((snapshot_point.row, point.vector.clone()));
            ids.push((
                snapshot_point.row,
                point.id.clone().unwrap_or_default(),
                payload.clone(),
            ));
            let stored = StoredPoint {
                row: snapshot_point.row,
                point,
                payload,
            };
            self.store.put_point(&mut batch, &canonical, &stored);
        }
        let requests =
            data.requests
                .into_iter()
                .map(|r| {
                    let id = RequestId::from_wire(&r.id).ok().flatten().ok_or_else(|| {
                        io_read(std::io::Error::other("bad request id in snapshot"))
                    })?;
                    let response = serde_json::from_slice(&r.response_json).map_err(io_read)?;
                    Ok((
                        id,
                        Recorded {
                            log_index: r.log_index,
                            response,
                        },
                    ))
                })
                .collect::<Result<Vec<_>, StorageError<u64>>>()?;
        self.requests.replace(&self.store, &mut batch, requests);
        self.applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        let applied = serde_json::to_vec(&self.applied).map_err(io_write)?;
        let membership = serde_json::to_vec(&self.membership).map_err(io_write)?;
        self.store.put_meta(&mut batch, META_APPLIED, &applied);
        self.store
            .put_meta(&mut batch, META_MEMBERSHIP, &membership);
        blocking(|| self.store.write(batch)).map_err(io_write)?;
        // Points and applied id durable, the snapshot itself not yet kept.
        vectron_raft::crash_point!("worker::snapshot::install");
        save_snapshot(&self.store, meta, &bytes)?;
        tracing::info!(
            shard = self.store.shard_id(),
            points = vectors.len(),
            snapshot = %meta.snapshot_id,
            "installed a snapshot from the leader"
        );
        // Build the new index beside the old one (searches go on meanwhile),
        // then swap.
        let (metric, params) = {
            let index = self.index.read().unwrap_or_else(|p| p.into_inner());
            (index.metric(), index.params())
        };
        let fresh = blocking(|| {
            let mut fresh = ShardIndex::new(metric, params);
            fresh.bulk_upsert(vectors);
            fresh
        });
        let mut index = self.write_index();
        *index = fresh;
        self.row_ids.replace(
            ids.iter()
                .map(|(row, id, payload)| (*row, id.clone(), payload.as_slice())),
        );
        drop(index);
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<ShardTypeConfig>>, StorageError<u64>> {
        let Some((meta, data)) = blocking(|| load_snapshot(&self.store))? else {
            return Ok(None);
        };
        Ok(Some(Snapshot {
            meta: serde_json::from_slice(&meta).map_err(io_read)?,
            snapshot: Box::new(Cursor::new(data)),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire_id(n: u64) -> common::PointId {
        crate::point_id::to_pb(&vectron_ids::PointId::Num(n))
    }

    fn vector(seed: u64) -> Vec<f32> {
        (0..8)
            .map(|i| ((seed * 31 + i) % 17) as f32 - 8.0)
            .collect()
    }

    #[test]
    fn index_changes_keep_their_order_across_batched_runs() {
        let params = HnswParams {
            m: 8,
            ef_construction: 32,
        };
        let mut index = ShardIndex::new(Metric::L2, params);
        // A long run (batched), a delete of a point of that run, a short run
        // that re-adds it under a new row, and a delete of a row never added.
        let mut changes: Vec<IndexChange> = (0..100)
            .map(|row| IndexChange::Upsert(row, vector(row), wire_id(row), Vec::new()))
            .collect();
        changes.push(IndexChange::Delete(7));
        changes.push(IndexChange::Upsert(
            1_000,
            vector(7),
            wire_id(7),
            br#"{"tag": 7}"#.to_vec(),
        ));
        changes.push(IndexChange::Delete(99));
        changes.push(IndexChange::Delete(5_000));
        let mut rows = RowTable::default();
        apply_to_ids(&mut rows, &changes);
        apply_to_index(&mut index, changes);
        index.freeze_all();
        assert_eq!(index.len(), 99);
        let ids = &rows.ids;
        assert_eq!(ids.len(), 99, "the ids follow the same changes");
        assert_eq!(rows.payloads.len(), 99, "so do the payloads");
        assert_eq!(ids.get(&1_000), Some(&wire_id(7)));
        assert!(!ids.contains_key(&7) && !ids.contains_key(&99));
        let hits = index.search(&vector(7), 100, 200, None);
        let rows: Vec<u64> = hits.iter().map(|(row, _)| *row).collect();
        assert!(rows.contains(&1_000), "the re-added row is found");
        assert!(!rows.contains(&7), "the deleted row is gone");
        assert!(!rows.contains(&99), "the deleted row is gone");
    }
}

#[cfg(test)]
mod snapshot_storage_tests {
    use super::*;

    fn store() -> (tempfile::TempDir, ShardStore) {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = vectron_raft::open_db(dir.path(), crate::storage::DATA_CFS).expect("db");
        (dir, ShardStore::new(db, 3))
    }

    fn meta(id: &str) -> SnapshotMeta<u64, BasicNode> {
        SnapshotMeta {
            last_log_id: None,
            last_membership: StoredMembership::default(),
            snapshot_id: id.into(),
        }
    }

    #[test]
    fn a_snapshot_is_kept_in_chunks_and_read_back_whole() {
        let (_dir, store) = store();
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        save_snapshot_in_chunks(&store, &meta("a"), &data, 1_000).expect("save");
        let chunks = store
            .meta_with_prefix(META_SNAPSHOT_CHUNKS.as_bytes())
            .expect("chunks");
        assert_eq!(chunks.len(), 10);
        assert!(chunks.iter().all(|(_, c)| c.len() <= 1_000));
        let (stored_meta, stored) = load_snapshot(&store).expect("load").expect("a snapshot");
        assert_eq!(stored, data);
        let stored_meta: SnapshotMeta<u64, BasicNode> =
            serde_json::from_slice(&stored_meta).expect("meta");
        assert_eq!(stored_meta.snapshot_id, "a");

        // An empty snapshot is still a snapshot.
        save_snapshot_in_chunks(&store, &meta("empty"), &[], 1_000).expect("save");
        let (_, stored) = load_snapshot(&store).expect("load").expect("a snapshot");
        assert!(stored.is_empty());

        // A smaller snapshot replaces every chunk of the larger one.
        save_snapshot_in_chunks(&store, &meta("b"), &data[..1_500], 1_000).expect("save");
        let (_, stored) = load_snapshot(&store).expect("load").expect("a snapshot");
        assert_eq!(stored, &data[..1_500]);
    }

    #[test]
    fn a_snapshot_kept_whole_by_an_earlier_version_is_still_read() {
        let (_dir, store) = store();
        let mut batch = WriteBatch::default();
        let meta_json = serde_json::to_vec(&meta("old")).expect("json");
        store.put_meta(&mut batch, META_SNAPSHOT_META, &meta_json);
        store.put_meta(&mut batch, META_SNAPSHOT_DATA_WHOLE, b"whole");
        store.write(batch).expect("write");
        let (_, data) = load_snapshot(&store).expect("load").expect("a snapshot");
        assert_eq!(data, b"whole");
        // Saving anew drops the whole value.
        save_snapshot_in_chunks(&store, &meta("new"), b"chunked", 4).expect("save");
        assert_eq!(store.meta(META_SNAPSHOT_DATA_WHOLE).expect("meta"), None);
        let (_, data) = load_snapshot(&store).expect("load").expect("a snapshot");
        assert_eq!(data, b"chunked");
    }
}
