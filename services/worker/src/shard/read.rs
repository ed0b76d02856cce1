//! Point reads of one shard that each see one consistent state of it, however
//! entries are applied meanwhile. A search that asks for neither vectors nor
//! payloads reads no rows at all: hit ids come from the in-memory
//! [`RowIds`], read under the same index lock. Get resolves ids to rows and rows to points
//! in one RocksDB snapshot, so an update (which moves a point to a new row)
//! can never make an existing point read as missing. Search takes that
//! snapshot while it holds the index's read lock — the state machine changes
//! rows and index under the write lock — so the rows of every hit are the
//! rows the index returned. A search filter is evaluated once into a set of
//! rows from the in-memory payload index (changed under the same lock), then
//! the matching points are scored exactly when few, or the graph walk lets
//! only them through ([`filtered_plan`]); a filter reaching past what is
//! indexed checks stored payloads in the same snapshot instead. Scroll
//! and filtered count stream the shard's ids in one snapshot and read only
//! the payloads (and, for a page, the points) they need, so their memory
//! stays bounded by the page whatever the shard's size. Does disk I/O;
//! callers run it off the async runtime.

use std::sync::RwLock;

use vectron_ids::PointId;

use vectron_proto::worker::v1::Point;

use super::row_ids::RowIds;
use crate::filter::PayloadFilter;
use crate::index::ShardIndex;
use crate::index::plan::{FilteredPlan, filtered_plan};
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

/// Whether a stored payload (JSON bytes, empty when none) meets `filter`;
/// a missing or unreadable payload reads as null.
pub fn payload_matches(filter: &PayloadFilter, payload: &[u8]) -> bool {
    let value = if payload.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(payload).unwrap_or(serde_json::Value::Null)
    };
    filter.matches(&value)
}

/// One page of a scroll: points in canonical-id order.
#[derive(Debug, Default)]
pub struct ScrollPage {
    /// (canonical id, point) of the page.
    pub points: Vec<(String, StoredPoint)>,
    /// The cursor of the next page: the last id of this one, when more
    /// points follow.
    pub next_after: Option<String>,
}

/// Up to `limit` points whose canonical id sorts after `after`, meeting
/// `filter`, in canonical-id order; with a cursor when more follow.
pub fn scroll_points(
    store: &ShardStore,
    after: Option<&str>,
    limit: usize,
    filter: Option<&PayloadFilter>,
    with_payload: bool,
) -> Result<ScrollPage, StorageError> {
    let view = store.view();
    let mut page: Vec<(String, u64)> = Vec::with_capacity(limit.min(1024) + 1);
    view.scan_ids(after, |id, row| {
        if let Some(filter) = filter
            && !payload_matches(filter, &view.payload(row)?)
        {
            return Ok(true);
        }
        page.push((id.to_owned(), row));
        Ok(page.len() <= limit)
    })?;
    let more = page.len() > limit;
    page.truncate(limit);
    let mut points = Vec::with_capacity(page.len());
    for (id, row) in page {
        if let Some(stored) = view.point_with(row, with_payload)? {
            points.push((id, stored));
        }
    }
    let next_after = if more {
        points.last().map(|(id, _)| id.clone())
    } else {
        None
    };
    Ok(ScrollPage { points, next_after })
}

/// How many points meet `filter`, counted in one snapshot.
pub fn count_matching(store: &ShardStore, filter: &PayloadFilter) -> Result<u64, StorageError> {
    let view = store.view();
    let mut count = 0u64;
    view.scan_ids(None, |_, row| {
        if payload_matches(filter, &view.payload(row)?) {
            count += 1;
        }
        Ok(true)
    })?;
    Ok(count)
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
    /// Whether hits carry their vector.
    pub with_vector: bool,
}

/// The `top_k` nearest stored points to the query with their scores, best
/// first. A hit's id comes from `ids`; its row is read from RocksDB only
/// when its vector or payload is asked for (the returned point then has an
/// empty vector, payload or both).
pub fn search_points(
    index: &RwLock<ShardIndex>,
    ids: &RowIds,
    store: &ShardStore,
    query: &ShardQuery<'_>,
) -> Result<Vec<(StoredPoint, f32)>, StorageError> {
    let reads_rows = query.with_payload || query.with_vector;
    let (view, hits) = {
        let index = index.read().unwrap_or_else(|p| p.into_inner());
        let view = reads_rows.then(|| store.view());
        let hits = match query.filter {
            None => index.search(query.vector, query.top_k, query.ef, None),
            Some(filter) => {
                let rows = ids.read();
                match rows.payloads.select(filter) {
                    Some(selection) => {
                        match filtered_plan(selection.count(), index.len(), query.ef) {
                            FilteredPlan::Exact => index.exact_among(
                                query.vector,
                                query.top_k,
                                rows.payloads.rows(&selection),
                            ),
                            FilteredPlan::Walk => {
                                let accept = |row: u64| rows.payloads.selects_row(&selection, row);
                                index.search(query.vector, query.top_k, query.ef, Some(&accept))
                            }
                        }
                    }
                    None => {
                        // Past what is indexed in memory: check stored payloads.
                        let payloads = store.view();
                        let accept = |row: u64| {
                            payload_matches(filter, &payloads.payload(row).unwrap_or_default())
                        };
                        index.search(query.vector, query.top_k, query.ef, Some(&accept))
                    }
                }
            }
        };
        if !reads_rows {
            // Under the index's read lock, the ids are those of these rows.
            let found = ids.ids_of(hits.iter().map(|(row, _)| *row));
            return Ok(hits
                .into_iter()
                .zip(found)
                .filter_map(|((row, score), id)| {
                    Some((
                        StoredPoint {
                            row,
                            point: Point {
                                id: Some(id?),
                                vector: Vec::new(),
                                payload_json: Vec::new(),
                            },
                            payload: Vec::new(),
                        },
                        score,
                    ))
                })
                .collect());
        }
        (view, hits)
    };
    let Some(view) = view else {
        return Ok(Vec::new());
    };
    let mut results = Vec::with_capacity(hits.len());
    for (row, score) in hits {
        if let Some(stored) = view.point_with(row, query.with_payload)? {
            results.push((stored, score));
        }
    }
    Ok(results)
}
