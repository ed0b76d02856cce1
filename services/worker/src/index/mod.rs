//! The vector index of one shard: a list of HNSW segments (the last one takes
//! inserts), a map from point key to its current location, and search that
//! merges segments, skips deleted offsets, applies the payload filter inside
//! the graph traversal and falls back to exact search when a selective filter
//! leaves the graph short of `k` hits. Updates are delete + insert. The index
//! is derived state: the shard can always rebuild it from storage. No I/O.

pub mod segment;

use std::collections::HashMap;

pub use segment::HnswParams;
use segment::Segment;

use crate::distance::{self, Metric};
use crate::exact;

/// Dot segments accept points up to this multiple of their first point's
/// norm. A tight bound keeps the MIPS reduction's extra component small, which
/// keeps the graph navigable; points beyond it start a new segment.
const DOT_NORM_HEADROOM: f32 = 1.2;

/// Points per segment before a new appendable segment is started.
pub const DEFAULT_SEGMENT_CAPACITY: usize = 100_000;

/// The index of one shard.
pub struct ShardIndex {
    metric: Metric,
    params: HnswParams,
    segment_capacity: usize,
    segments: Vec<Segment>,
    locations: HashMap<u64, (usize, usize)>,
}

impl ShardIndex {
    /// An empty index.
    pub fn new(metric: Metric, params: HnswParams) -> Self {
        Self::with_segment_capacity(metric, params, DEFAULT_SEGMENT_CAPACITY)
    }

    /// An empty index whose segments hold at most `segment_capacity` points.
    pub fn with_segment_capacity(
        metric: Metric,
        params: HnswParams,
        segment_capacity: usize,
    ) -> Self {
        Self {
            metric,
            params,
            segment_capacity: segment_capacity.max(1),
            segments: Vec::new(),
            locations: HashMap::new(),
        }
    }

    /// The metric the index scores with.
    pub fn metric(&self) -> Metric {
        self.metric
    }

    /// The HNSW build parameters.
    pub fn params(&self) -> HnswParams {
        self.params
    }

    /// Live points.
    pub fn len(&self) -> usize {
        self.locations.len()
    }

    /// Whether no point is live.
    pub fn is_empty(&self) -> bool {
        self.locations.is_empty()
    }

    /// Number of segments.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    fn new_segment(&self, first: &[f32]) -> Segment {
        // For dot, leave headroom so similar-sized points share the segment.
        let norm = distance::dot(first, first).sqrt();
        let max_norm = if norm > 0.0 {
            norm * DOT_NORM_HEADROOM
        } else {
            1.0
        };
        Segment::new(self.metric, self.params, self.segment_capacity, max_norm)
    }

    /// Inserts or replaces the vector of `key`. The vector must already be
    /// validated (dimension, finite components).
    pub fn upsert(&mut self, key: u64, vector: &[f32]) {
        self.delete(key);
        let prepared = self.metric.prepare(vector);
        let fits = self
            .segments
            .last()
            .is_some_and(|s| s.len() < self.segment_capacity && s.accepts(&prepared));
        if !fits {
            let segment = self.new_segment(&prepared);
            self.segments.push(segment);
        }
        let position = self.segments.len() - 1;
        let offset = self.segments[position].insert(key, prepared);
        self.locations.insert(key, (position, offset));
    }

    /// Removes `key`; returns whether it was present.
    pub fn delete(&mut self, key: u64) -> bool {
        match self.locations.remove(&key) {
            Some((segment, offset)) => self.segments[segment].delete(offset),
            None => false,
        }
    }

    /// The `k` best live points for `query` among those `accept` lets
    /// through, as (key, score) best first. `ef` is the search breadth.
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        accept: Option<&dyn Fn(u64) -> bool>,
    ) -> Vec<(u64, f32)> {
        let query = self.metric.prepare(query);
        let accept_all = |_: u64| true;
        let accept: &dyn Fn(u64) -> bool = accept.unwrap_or(&accept_all);
        let mut hits: Vec<(u64, f32)> = self
            .segments
            .iter()
            .flat_map(|s| s.search(&query, k, ef, accept))
            .collect();
        hits.sort_by(|a, b| self.metric.compare(a.1, b.1));
        hits.truncate(k);
        if hits.len() < k.min(self.len()) {
            // A selective filter starved the graph search: the matching points
            // are few, so score them all.
            let matching = self
                .segments
                .iter()
                .flat_map(|s| s.live_points())
                .filter(|(key, _)| accept(*key));
            hits = exact::top_k(self.metric, &query, matching, k);
        }
        hits
    }

    /// Exact top-k over every live point (the recall baseline).
    pub fn exact_search(
        &self,
        query: &[f32],
        k: usize,
        accept: Option<&dyn Fn(u64) -> bool>,
    ) -> Vec<(u64, f32)> {
        let query = self.metric.prepare(query);
        let points = self
            .segments
            .iter()
            .flat_map(|s| s.live_points())
            .filter(|(key, _)| accept.is_none_or(|f| f(*key)));
        exact::top_k(self.metric, &query, points, k)
    }

    /// Rebuilds every segment whose deleted fraction exceeds `threshold` from
    /// its live points; returns how many were rebuilt.
    pub fn optimize(&mut self, threshold: f64) -> usize {
        let stale: Vec<usize> = (0..self.segments.len())
            .filter(|&i| self.segments[i].deleted_fraction() > threshold)
            .collect();
        for &position in &stale {
            let live: Vec<(u64, Vec<f32>)> = self.segments[position]
                .live_points()
                .map(|(key, v)| (key, v.to_vec()))
                .collect();
            let max_norm = live
                .iter()
                .map(|(_, v)| distance::dot(v, v).sqrt())
                .fold(0.0f32, f32::max)
                .max(f32::MIN_POSITIVE);
            let mut rebuilt = Segment::new(self.metric, self.params, live.len(), max_norm);
            for (key, prepared) in live {
                let offset = rebuilt.insert(key, prepared);
                self.locations.insert(key, (position, offset));
            }
            self.segments[position] = rebuilt;
        }
        stale.len()
    }
}

#[cfg(test)]
mod tests;
