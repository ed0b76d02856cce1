//! Point reads of one shard that each see one consistent state of it, however
//! entries are applied meanwhile. Get resolves ids to rows and rows to points
//! in one RocksDB snapshot, so an update (which moves a point to a new row)
//! can never make an existing point read as missing. Search takes that
//! snapshot while it holds the index's read lock — the state machine changes
//! rows and index under the write lock — so the rows of every hit are the
//! rows the index returned, and payload filters read the same state. Does
//! disk I/O.

use std::sync::RwLock;

use vectron_ids::PointId;

use crate::filter::PayloadFilter;
use crate::index::ShardIndex;
use crate::storage::{ShardStore, StorageError, StoredPoint};

/// The stored points of `ids` that exist, in the order asked; payloads read
/// only when `with_payload`.
pub fn get_points(
    store: &ShardStore,
    ids: &[PointId],
    with_payload: bool,
) -> Result<Vec<StoredPoint>, StorageError> {
    let view = store.view();
    let mut points = Vec::with_capacity(ids.len());
    for id in ids {
        let Some(row) = view.row_of(&id.canonical())? else {
            continue;
        };
        if let Some(stored) = view.point_with(row, with_payload)? {
            points.push(stored);
        }
    }
    Ok(points)
}

/// A nearest-neighbour query of one shard.
pub struct ShardQuery<'a> {
    /// The query vector (dimension checked by the caller).
    pub vector: &'a [f32],
    /// Hits wanted.
    pub top_k: usize,
    /// Search breadth.
    pub ef: usize,
    /// Payload condition hits must meet.
    pub filter: Option<&'a PayloadFilter>,
    /// Whether hits carry their payload.
    pub with_payload: bool,
}

/// The `top_k` nearest stored points to the query with their scores, best
/// first.
pub fn search_points(
    index: &RwLock<ShardIndex>,
    store: &ShardStore,
    query: &ShardQuery<'_>,
) -> Result<Vec<(StoredPoint, f32)>, StorageError> {
    let (view, hits) = {
        let index = index.read().unwrap_or_else(|p| p.into_inner());
        let view = store.view();
        let accept = |row: u64| {
            query.filter.is_none_or(|f| {
                let payload = view.payload(row).unwrap_or_default();
                f.matches(&serde_json::from_slice(&payload).unwrap_or(serde_json::Value::Null))
            })
        };
        let accept: Option<&dyn Fn(u64) -> bool> = if query.filter.is_some() {
            Some(&accept)
        } else {
            None
        };
        let hits = index.search(query.vector, query.top_k, query.ef, accept);
        (view, hits)
    };
    let mut results = Vec::with_capacity(hits.len());
    for (row, score) in hits {
        if let Some(stored) = view.point_with(row, query.with_payload)? {
            results.push((stored, score));
        }
    }
    Ok(results)
}
