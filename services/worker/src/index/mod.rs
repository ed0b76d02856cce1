//! The vector index of one shard: a list of HNSW segments (the last one takes
//! inserts), a map from point key to its current location, and search that
//! merges segments, skips deleted offsets, applies the payload filter inside
//! the graph traversal and falls back to exact search when a selective filter
//! leaves the graph short of `k` hits. Updates are delete + insert. The index
//! is derived state: the shard can always rebuild it from storage.
//!
//! Segments fill up and are sealed; a sealed segment whose deleted fraction
//! passes a threshold is rebuilt in three steps so the index lock is held only
//! briefly: [`ShardIndex::plan_rebuild`] copies its live points,
//! [`RebuildPlan::build`] builds the new graph with no lock held, and
//! [`ShardIndex::install_rebuilt`] swaps it in, dropping any point deleted or
//! updated meanwhile.
//!
//! The write path ([`ShardIndex::append_upserts`]) only stores points: they
//! are searchable at once by exact scan, and a builder adds them to the
//! graphs in the background in the same three steps ([`ShardIndex::build_plan`],
//! [`SegmentBuild::run`] with no lock, [`ShardIndex::install_built`]). One
//! builder at a time: it holds the index's [`ShardIndex::build_gate`], as
//! does anything that must see a graph standing still (a dump). No I/O;
//! `disk` dumps and loads segments.

pub mod disk;
pub mod frozen;
pub mod graph;
mod graph_file;
pub mod plan;
pub mod quantized;
pub mod segment;
pub mod vectors;
mod walk;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub use segment::HnswParams;
pub use segment::Segment;
pub use segment::{BuiltRange, SegmentBuild};

use crate::distance::{self, Metric};
use crate::exact;

/// Coded filtered scans measure again on f32 this many candidates per
/// result asked for...
pub const SHORTLIST_PER_K: usize = 4;

/// ...and at least this many.
pub const SHORTLIST_MIN: usize = 64;

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
    locations: crate::RowMap<(usize, usize)>,
    /// Held by whoever adds stored points to a graph, or needs a graph to
    /// stand still.
    build_gate: Arc<Mutex<()>>,
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
            locations: crate::RowMap::default(),
            build_gate: Arc::new(Mutex::new(())),
        }
    }

    /// The gate one graph builder at a time holds (see the module docs).
    pub fn build_gate(&self) -> Arc<Mutex<()>> {
        self.build_gate.clone()
    }

    /// Points stored but not yet in a graph (scanned exactly meanwhile).
    pub fn unbuilt(&self) -> usize {
        self.segments.iter().map(Segment::unbuilt).sum()
    }

    /// Stores many vectors without building them into a graph: they are
    /// searchable at once (scanned exactly) and a builder adds them to the
    /// graph later. The vectors must already be validated.
    pub fn append_upserts(&mut self, points: Vec<(u64, Vec<f32>)>) {
        for (key, vector) in points {
            let prepared = self.metric.prepare(&vector);
            if !self.last_fits(&prepared, 0) {
                let segment = self.new_segment(&prepared);
                self.segments.push(segment);
            }
            let position = self.segments.len() - 1;
            let offset = self.segments[position].append(key, &prepared);
            self.relocate(key, position, offset);
            self.seal_if_full();
        }
    }

    /// The oldest segment's next at most `max_points` points to build into
    /// its graph, with the segment's position; `None` when every point is
    /// built. Hold the build gate from here until the build is installed.
    pub fn build_plan(&self, max_points: usize) -> Option<(usize, SegmentBuild)> {
        self.segments
            .iter()
            .enumerate()
            .find_map(|(position, s)| Some((position, s.build_plan(max_points)?)))
    }

    /// Records a build of the segment at `position`; returns whether it
    /// was still current (the segment may have been rebuilt or the index
    /// replaced meanwhile).
    pub fn install_built(&mut self, position: usize, built: BuiltRange) -> bool {
        self.segments
            .get_mut(position)
            .is_some_and(|s| s.install_built(built))
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

    /// The segments, oldest first.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The segment at `position`, to record a dump of it.
    pub fn segment_mut(&mut self, position: usize) -> Option<&mut Segment> {
        self.segments.get_mut(position)
    }

    /// Rebuilds an index from segments loaded from disk (every offset marked
    /// deleted) and the shard's stored points: a stored point found in a
    /// loaded segment is revived there, any other is inserted anew. Offsets
    /// no stored point claims stay deleted. Returns the index and how many
    /// points came from disk.
    pub fn restore(
        metric: Metric,
        params: HnswParams,
        mut loaded: Vec<Segment>,
        stored: impl IntoIterator<Item = (u64, Vec<f32>)>,
    ) -> (Self, usize) {
        let mut loaded_at: HashMap<u64, (usize, usize)> = HashMap::new();
        for (position, segment) in loaded.iter().enumerate() {
            for (offset, key) in segment.keys().iter().enumerate() {
                // A key in two dumps (never written so, but cheap to guard):
                // the later segment wins.
                loaded_at.insert(*key, (position, offset));
            }
        }
        let mut missing = Vec::new();
        let mut from_disk = 0;
        for (key, vector) in stored {
            match loaded_at.get(&key) {
                Some(&(position, offset)) => {
                    loaded[position].revive(offset, metric.prepare(&vector));
                    from_disk += 1;
                }
                None => missing.push((key, vector)),
            }
        }
        let mut index = Self::new(metric, params);
        for (position, segment) in loaded.iter().enumerate() {
            for offset in segment.live_offsets() {
                index
                    .locations
                    .insert(segment.keys()[offset], (position, offset));
            }
        }
        index.segments = loaded;
        index.bulk_upsert(missing);
        index.freeze_all();
        (index, from_disk)
    }

    fn new_segment(&self, first: &[f32]) -> Segment {
        // For dot, leave headroom so similar-sized points share the segment.
        let norm = distance::dot(first, first).sqrt();
        let max_norm = if norm > 0.0 {
            norm * DOT_NORM_HEADROOM
        } else {
            1.0
        };
        Segment::new(self.metric, self.params, max_norm)
    }

    /// Whether the last segment can take `prepared` (with `pending` more
    /// points already bound for it).
    fn last_fits(&self, prepared: &[f32], pending: usize) -> bool {
        self.segments.last().is_some_and(|s| {
            !s.is_sealed() && s.len() + pending < self.segment_capacity && s.accepts(prepared)
        })
    }

    /// Points `key` at its new place, retiring any older version.
    fn relocate(&mut self, key: u64, position: usize, offset: usize) {
        if let Some((old_position, old_offset)) = self.locations.insert(key, (position, offset)) {
            self.segments[old_position].delete(old_offset);
        }
    }

    /// Seals the last segment once it is full.
    fn seal_if_full(&mut self) {
        let capacity = self.segment_capacity;
        if let Some(last) = self.segments.last_mut()
            && last.len() >= capacity
        {
            last.seal();
        }
    }

    /// Inserts or replaces the vector of `key`. The vector must already be
    /// validated (dimension, finite components).
    pub fn upsert(&mut self, key: u64, vector: &[f32]) {
        let prepared = self.metric.prepare(vector);
        if !self.last_fits(&prepared, 0) {
            let segment = self.new_segment(&prepared);
            self.segments.push(segment);
        }
        let position = self.segments.len() - 1;
        let offset = self.segments[position].insert(key, prepared);
        self.relocate(key, position, offset);
        self.seal_if_full();
    }

    /// Inserts or replaces many vectors at once, building graphs on all
    /// cores (used when rebuilding an index rather than on the write path).
    pub fn bulk_upsert(&mut self, points: Vec<(u64, Vec<f32>)>) {
        let mut pending: Vec<(u64, Vec<f32>)> = Vec::new();
        for (key, vector) in points {
            let prepared = self.metric.prepare(&vector);
            if !self.last_fits(&prepared, pending.len()) {
                self.flush_bulk(std::mem::take(&mut pending));
                let segment = self.new_segment(&prepared);
                self.segments.push(segment);
            }
            pending.push((key, prepared));
        }
        self.flush_bulk(pending);
    }

    fn flush_bulk(&mut self, pending: Vec<(u64, Vec<f32>)>) {
        if pending.is_empty() {
            return;
        }
        let position = self.segments.len() - 1;
        let keys: Vec<u64> = pending.iter().map(|(key, _)| *key).collect();
        let first = self.segments[position].insert_many(pending);
        for (i, key) in keys.into_iter().enumerate() {
            self.relocate(key, position, first + i);
        }
        self.seal_if_full();
    }

    /// Brings every segment's searchable graph copy up to date now, holding
    /// the index for the whole copy (upkeep does it without the lock; see
    /// [`Segment::freeze_plan`]). Returns how many copies were refreshed.
    pub fn freeze_all(&mut self) -> usize {
        let mut refreshed = 0;
        for segment in &mut self.segments {
            if let Some(plan) = segment.freeze_plan()
                && segment.install_frozen(plan.copy())
            {
                refreshed += 1;
            }
        }
        refreshed
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
        let mut hits: Vec<(u64, f32)> = self
            .segments
            .iter()
            .flat_map(|s| s.search(&query, k, ef, accept))
            .collect();
        if self.segments.len() > 1 {
            hits.sort_by(|a, b| self.metric.compare(a.1, b.1));
        }
        hits.truncate(k);
        if hits.len() < k.min(self.len()) {
            // A selective filter starved the graph search: the matching points
            // are few, so score them all.
            let matching = self
                .segments
                .iter()
                .flat_map(|s| s.live_points())
                .filter(|(key, _)| accept.is_none_or(|accept| accept(*key)));
            hits = exact::top_k(self.metric, &query, matching, k);
        }
        hits
    }

    /// Top-k among the live points of `keys` (a filter's matching set),
    /// scored on every one of them; keys not held are skipped. Where the
    /// rows are coded, every point is ranked on its codes (a quarter of the
    /// memory traffic, rows prefetched ahead of the scan) and the best
    /// [`SHORTLIST_PER_K`] × k (at least [`SHORTLIST_MIN`]) are measured
    /// again on f32 vectors, so the order and scores returned are exact.
    pub fn exact_among(
        &self,
        query: &[f32],
        k: usize,
        keys: impl Iterator<Item = u64>,
    ) -> Vec<(u64, f32)> {
        let query = self.metric.prepare(query);
        let located: Vec<(u64, usize, usize)> = keys
            .filter_map(|key| {
                let &(position, offset) = self.locations.get(&key)?;
                self.segments[position]
                    .is_live(offset)
                    .then_some((key, position, offset))
            })
            .collect();
        let shortlist = k.saturating_mul(SHORTLIST_PER_K).max(SHORTLIST_MIN);
        let coded = self.segments.iter().all(Segment::is_coded);
        let chosen: Vec<(u64, usize, usize)> = if coded && located.len() > shortlist {
            self.coded_shortlist(&query, &located, shortlist)
        } else {
            located
        };
        let points = chosen
            .into_iter()
            .map(|(key, position, offset)| (key, self.segments[position].live_vector(offset)));
        exact::top_k(self.metric, &query, points, k)
    }

    /// The `shortlist` of `located` (key, segment, offset) closest to the
    /// prepared `query` by coded distance.
    fn coded_shortlist(
        &self,
        query: &[f32],
        located: &[(u64, usize, usize)],
        shortlist: usize,
    ) -> Vec<(u64, usize, usize)> {
        /// Rows requested from memory ahead of the one being measured.
        const AHEAD: usize = 8;
        let coded = quantized::CodedQuery::new(query);
        let kernels = distance::kernels::active();
        let distance = segment::walk_distance(self.metric);
        // Farthest on top; `node` is the position in `located`.
        let mut best: std::collections::BinaryHeap<walk::Candidate> =
            std::collections::BinaryHeap::with_capacity(shortlist + 1);
        for (i, &(_, position, offset)) in located.iter().enumerate() {
            if let Some(&(_, p, o)) = located.get(i + AHEAD) {
                self.segments[p].prefetch_codes(o);
            }
            let d =
                self.segments[position].coded_distance(distance, kernels, coded.codes(), offset);
            if best.len() < shortlist {
                best.push(walk::Candidate {
                    distance: d,
                    node: i as u32,
                });
            } else if best.peek().is_some_and(|worst| d < worst.distance) {
                best.pop();
                best.push(walk::Candidate {
                    distance: d,
                    node: i as u32,
                });
            }
        }
        best.into_iter().map(|c| located[c.node as usize]).collect()
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

    /// Picks the segment with the largest deleted fraction above `threshold`
    /// and copies its live points for a rebuild. An appendable segment is
    /// sealed first so the rebuild sees all of it.
    pub fn plan_rebuild(&mut self, threshold: f64) -> Option<RebuildPlan> {
        let position = (0..self.segments.len())
            .filter(|&i| self.segments[i].deleted_fraction() > threshold)
            .max_by(|&a, &b| {
                let fraction = |i: usize| self.segments[i].deleted_fraction();
                fraction(a).total_cmp(&fraction(b))
            })?;
        let segment = &mut self.segments[position];
        segment.seal();
        let live: Vec<(usize, u64, Vec<f32>)> = segment
            .live_offsets()
            .map(|o| (o, segment.keys()[o], segment.live_vector(o).to_vec()))
            .collect();
        Some(RebuildPlan {
            position,
            replaces: segment.id(),
            metric: self.metric,
            params: self.params,
            live,
        })
    }

    /// Swaps a rebuilt segment in for the one it replaces. Points deleted or
    /// updated since the plan was made are dropped from the new segment.
    /// Returns false (and changes nothing) if the index no longer holds the
    /// replaced segment, e.g. because a snapshot replaced the whole index.
    pub fn install_rebuilt(&mut self, rebuilt: RebuiltSegment) -> bool {
        let RebuiltSegment {
            position,
            replaces,
            mut segment,
            old_offsets,
        } = rebuilt;
        if self.segments.get(position).map(Segment::id) != Some(replaces) {
            return false;
        }
        for (new_offset, old_offset) in old_offsets.into_iter().enumerate() {
            let key = segment.keys()[new_offset];
            if self.locations.get(&key) == Some(&(position, old_offset)) {
                self.locations.insert(key, (position, new_offset));
            } else {
                segment.delete(new_offset);
            }
        }
        segment.seal();
        self.segments[position] = segment;
        true
    }

    /// Rebuilds, one after another, every segment whose deleted fraction
    /// exceeds `threshold`; returns how many were rebuilt.
    pub fn optimize(&mut self, threshold: f64) -> usize {
        let mut rebuilt = 0;
        while let Some(plan) = self.plan_rebuild(threshold) {
            if self.install_rebuilt(plan.build()) {
                rebuilt += 1;
            }
        }
        rebuilt
    }
}

/// The live points of a segment to rebuild, copied out of the index.
pub struct RebuildPlan {
    position: usize,
    replaces: u64,
    metric: Metric,
    params: HnswParams,
    /// (old offset, key, prepared vector)
    live: Vec<(usize, u64, Vec<f32>)>,
}

impl RebuildPlan {
    /// Points the new segment will hold.
    pub fn len(&self) -> usize {
        self.live.len()
    }

    /// Whether the segment to rebuild has no live point left.
    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    /// Builds the new segment's graph; slow, and needs no lock on the index.
    pub fn build(self) -> RebuiltSegment {
        let max_norm = self
            .live
            .iter()
            .map(|(_, _, v)| distance::dot(v, v).sqrt())
            .fold(0.0f32, f32::max)
            .max(f32::MIN_POSITIVE);
        let mut segment = Segment::new(self.metric, self.params, max_norm);
        let mut old_offsets = Vec::with_capacity(self.live.len());
        let points = self
            .live
            .into_iter()
            .map(|(old_offset, key, vector)| {
                old_offsets.push(old_offset);
                (key, vector)
            })
            .collect();
        segment.insert_many(points);
        RebuiltSegment {
            position: self.position,
            replaces: self.replaces,
            segment,
            old_offsets,
        }
    }
}

/// A rebuilt segment waiting to be swapped in.
pub struct RebuiltSegment {
    position: usize,
    replaces: u64,
    segment: Segment,
    /// The old offset of each new offset's point.
    old_offsets: Vec<usize>,
}

#[cfg(test)]
mod tests;
