//! The gateway's own request and answer types for point operations, shared by
//! the REST and gRPC front ends so both run the same code and return the same
//! ids and scores. Collections and cluster answers reuse the public protobuf
//! messages. No I/O.

use serde_json::{Map, Value};
use vectron_ids::PointId;
use vectron_proto::common::v1::{Consistency, Filter};

/// A point to upsert.
#[derive(Debug, Clone, PartialEq)]
pub struct NewPoint {
    /// Its id.
    pub id: PointId,
    /// Its vector.
    pub vector: Vec<f32>,
    /// Its payload object, if any.
    pub payload: Option<Map<String, Value>>,
}

/// A point read back.
#[derive(Debug, Clone, PartialEq)]
pub struct PointOut {
    /// Its id.
    pub id: PointId,
    /// Its vector, when requested.
    pub vector: Option<Vec<f32>>,
    /// Its payload, when requested and present.
    pub payload: Option<Value>,
}

/// One search hit.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// The point's id.
    pub id: PointId,
    /// Similarity (cosine, dot) or squared distance (l2).
    pub score: f32,
    /// The payload, when requested and present.
    pub payload: Option<Value>,
    /// The vector, when requested.
    pub vector: Option<Vec<f32>>,
}

/// A vector search.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchQuery {
    /// The query vector.
    pub vector: Vec<f32>,
    /// How many hits to return.
    pub top_k: u32,
    /// Payload filter applied inside the traversal.
    pub filter: Option<Filter>,
    /// Candidate list size; `None` for the collection's default.
    pub ef: Option<u32>,
    /// Return payloads.
    pub with_payload: bool,
    /// Return vectors.
    pub with_vector: bool,
    /// Read consistency.
    pub consistency: Consistency,
}

/// A read of points by id.
#[derive(Debug, Clone, PartialEq)]
pub struct GetQuery {
    /// The ids; missing ones are omitted from the answer.
    pub ids: Vec<PointId>,
    /// Return vectors.
    pub with_vector: bool,
    /// Return payloads.
    pub with_payload: bool,
    /// Read consistency.
    pub consistency: Consistency,
}

/// Which points a delete removes.
#[derive(Debug, Clone, PartialEq)]
pub enum DeleteSelector {
    /// These ids.
    Ids(Vec<PointId>),
    /// Every point matching the filter.
    Filter(Filter),
}

/// A page of a scroll through a collection.
#[derive(Debug, Clone, PartialEq)]
pub struct ScrollQuery {
    /// Most points to return.
    pub limit: u32,
    /// Cursor from the previous page.
    pub cursor: Option<String>,
    /// Payload filter.
    pub filter: Option<Filter>,
    /// Return payloads.
    pub with_payload: bool,
    /// Return vectors.
    pub with_vector: bool,
    /// Read consistency.
    pub consistency: Consistency,
}

/// One page of a scroll.
#[derive(Debug, Clone, PartialEq)]
pub struct ScrollPage {
    /// The points, in shard then id order.
    pub points: Vec<PointOut>,
    /// The cursor for the next page; `None` at the end.
    pub next_cursor: Option<String>,
}

/// The REST API's documented defaults (docs/gateway.md).
pub mod defaults {
    /// `top_k` of a search.
    pub const TOP_K: u32 = 10;
    /// `limit` of a scroll.
    pub const SCROLL_LIMIT: u32 = 100;
    /// Shards of a new collection.
    pub const SHARDS: u32 = 1;
    /// Replication factor of a new collection.
    pub const REPLICATION_FACTOR: u32 = 1;
    /// HNSW `m`.
    pub const HNSW_M: u32 = 16;
    /// HNSW `ef_construction`.
    pub const HNSW_EF_CONSTRUCTION: u32 = 200;
}
