//! One HNSW segment: a [`Graph`] over the vectors inserted into it, the
//! prepared vectors themselves (contiguous, for the walk, exact scans and
//! rebuilds), the external key of each offset and a deleted bitmap. The
//! graph never unlinks a node, so a deleted offset stays in the graph and is
//! skipped by the search. A segment is appendable until sealed; a sealed segment's graph
//! never changes again, so it can be dumped or rebuilt without holding the
//! index lock.
//!
//! The builder grows the graph; searches walk a [`FrozenGraph`] copy of its
//! first offsets and scan the newer ones exactly. Points reach a segment in
//! one of two ways: [`Segment::insert`]/[`Segment::insert_many`] build them
//! into the graph at once (bulk loads, rebuilds), while [`Segment::append`]
//! (the write path) only stores them — they are searchable at once through
//! the exact scan — and a builder adds them to the graph later without the
//! index lock ([`Segment::build_plan`], [`SegmentBuild::run`],
//! [`Segment::install_built`]). So `frozen ≤ built ≤ len` offsets, always.
//! Sealing and loading take a fresh copy at once; inserts leave it to upkeep
//! ([`Segment::freeze_plan`]), or take one themselves once the unfrozen
//! tail reaches [`MAX_UNFROZEN`]. No I/O.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::frozen::FrozenGraph;
pub use super::graph::Graph;
use super::quantized::{self, CodeStore, CodedQuery, CodedWalk, Codes};
use super::vectors::VectorStore;
use super::walk::{self, ExactWalk, WalkDistance, WalkRows};
use crate::distance::{self, Metric};

/// The most points a segment scans exactly beside its frozen copy before an
/// insert takes a new copy itself.
pub const MAX_UNFROZEN: usize = 16_384;

/// HNSW build parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HnswParams {
    /// Links per node (2..=256).
    pub m: usize,
    /// Build-time candidate list size.
    pub ef_construction: usize,
}

/// The order the graph and the walk put points in for `metric`: squared l2,
/// or the negated dot product (cosine vectors are unit length).
pub fn walk_distance(metric: Metric) -> WalkDistance {
    match metric {
        Metric::L2 => WalkDistance::SquaredL2,
        Metric::Cosine | Metric::Dot => WalkDistance::NegatedDot,
    }
}

/// A name for a new segment, unique on this worker across restarts (it names
/// the segment's dump directory).
pub fn next_segment_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    // First use seeds the counter from the clock; later uses count up.
    let _ = NEXT.compare_exchange(0, seed, Ordering::Relaxed, Ordering::Relaxed);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A segment of one shard's index.
pub struct Segment {
    id: u64,
    metric: Metric,
    params: HnswParams,
    graph: Arc<Graph>,
    /// Offsets below this are in the graph.
    built: usize,
    sealed: bool,
    /// Points the last dump of this segment held (0: never dumped).
    dumped_len: usize,
    /// Prepared vectors by offset (unit length for cosine, raw otherwise).
    vectors: VectorStore,
    /// The same vectors as 8-bit codes, which the walk measures.
    codes: CodeStore,
    /// The searchable copy of the graph's first offsets.
    frozen: Option<FrozenGraph>,
    keys: Vec<u64>,
    deleted: Vec<bool>,
    live: usize,
    /// Dot only: the norm bound behind the distance shift; points above it
    /// do not fit this segment.
    max_norm: f32,
}

impl Segment {
    /// An empty segment. For dot, `max_norm` bounds the norms it accepts.
    pub fn new(metric: Metric, params: HnswParams, max_norm: f32) -> Self {
        let id = next_segment_id();
        let graph = Graph::new(walk_distance(metric), params, id);
        Self {
            id,
            metric,
            params,
            graph: Arc::new(graph),
            built: 0,
            sealed: false,
            dumped_len: 0,
            vectors: VectorStore::new(),
            codes: CodeStore::new(),
            frozen: None,
            keys: Vec::new(),
            deleted: Vec::new(),
            live: 0,
            max_norm,
        }
    }

    /// A segment around a graph loaded from disk. `keys[o]` is the key at
    /// offset `o`; every offset starts deleted with no vector until
    /// [`Segment::revive`] gives it its stored vector.
    pub fn from_loaded(
        id: u64,
        metric: Metric,
        params: HnswParams,
        graph: Graph,
        keys: Vec<u64>,
        max_norm: f32,
        sealed: bool,
    ) -> Self {
        let n = keys.len();
        let mut segment = Self {
            id,
            metric,
            params,
            graph: Arc::new(graph),
            built: n,
            sealed,
            dumped_len: n,
            vectors: VectorStore::with_empty_rows(n),
            codes: CodeStore::with_empty_rows(n),
            frozen: None,
            keys,
            deleted: vec![true; n],
            live: 0,
            max_norm,
        };
        segment.freeze();
        segment
    }

    /// Marks a loaded offset live again with its (prepared) stored vector.
    pub fn revive(&mut self, offset: usize, prepared: Vec<f32>) {
        if self.deleted.get(offset) == Some(&true) {
            self.deleted[offset] = false;
            self.vectors.set(offset, &prepared);
            self.codes.set(offset, &prepared);
            self.live += 1;
        }
    }

    /// This segment's name (unique on the worker).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The metric the graph was built for.
    pub fn metric(&self) -> Metric {
        self.metric
    }

    /// The HNSW build parameters.
    pub fn params(&self) -> HnswParams {
        self.params
    }

    /// The dot norm bound (1 for other metrics).
    pub fn max_norm(&self) -> f32 {
        self.max_norm
    }

    /// The graph, shared so a sealed segment can be dumped without the index
    /// lock.
    pub fn graph(&self) -> Arc<Graph> {
        self.graph.clone()
    }

    /// The key of every offset, deleted or not.
    pub fn keys(&self) -> &[u64] {
        &self.keys
    }

    /// Whether the segment takes no more inserts.
    pub fn is_sealed(&self) -> bool {
        self.sealed
    }

    /// Stops inserts into this segment. Its searchable copy is refreshed by
    /// upkeep, not here: sealing happens under the index's write lock, and a
    /// copy of a large graph would hold up every search.
    pub fn seal(&mut self) {
        self.sealed = true;
    }

    /// Points stored but not yet in the graph (scanned exactly until a
    /// builder adds them).
    pub fn unbuilt(&self) -> usize {
        self.len() - self.built
    }

    /// Points in the graph (offsets `0..built`).
    pub fn built(&self) -> usize {
        self.built
    }

    /// Points newer than the searchable graph copy (scanned exactly).
    pub fn unfrozen(&self) -> usize {
        self.len() - self.frozen.as_ref().map_or(0, FrozenGraph::len)
    }

    /// Bytes of the searchable graph copy.
    pub fn frozen_bytes(&self) -> usize {
        self.frozen.as_ref().map_or(0, FrozenGraph::memory_bytes)
    }

    /// Copies the whole graph for searching, now.
    fn freeze(&mut self) {
        let copy = FreezePlan {
            segment: self.id,
            graph: self.graph.clone(),
            len: self.built,
        }
        .copy();
        self.install_frozen(copy);
    }

    /// What a copy of the graph as it is now needs, to take it without the
    /// index lock; `None` when the copy is up to date.
    pub fn freeze_plan(&self) -> Option<FreezePlan> {
        let frozen = self.frozen.as_ref().map_or(0, FrozenGraph::len);
        (self.built > frozen).then(|| FreezePlan {
            segment: self.id,
            graph: self.graph.clone(),
            len: self.built,
        })
    }

    /// The next at most `max_points` stored points not yet in the graph,
    /// copied out so they can be built without the index lock; `None` when
    /// the graph holds every point.
    pub fn build_plan(&self, max_points: usize) -> Option<SegmentBuild> {
        let end = self.len().min(self.built + max_points.max(1));
        (end > self.built).then(|| SegmentBuild {
            segment: self.id,
            graph: self.graph.clone(),
            first: self.built,
            vectors: (self.built..end)
                .map(|o| self.vectors.get(o).to_vec())
                .collect(),
        })
    }

    /// Records a build made from [`Segment::build_plan`]; returns whether it
    /// continued this segment's graph (a build of a replaced segment, or one
    /// that overlaps another, is ignored).
    pub fn install_built(&mut self, built: BuiltRange) -> bool {
        if built.segment != self.id || built.first != self.built || built.end > self.len() {
            return false;
        }
        self.built = built.end;
        true
    }

    /// Installs a copy taken from [`Segment::freeze_plan`] if it is of this
    /// segment and newer than the current one; returns whether it was.
    pub fn install_frozen(&mut self, copy: FrozenCopy) -> bool {
        let Some(graph) = copy.graph else {
            return false;
        };
        let current = self.frozen.as_ref().map_or(0, FrozenGraph::len);
        if copy.segment != self.id || graph.len() <= current || graph.len() > self.built {
            return false;
        }
        self.frozen = Some(graph);
        true
    }

    /// Points the last dump held (0: never dumped).
    pub fn dumped_len(&self) -> usize {
        self.dumped_len
    }

    /// Records that a dump of the first `len` points exists.
    pub fn set_dumped_len(&mut self, len: usize) {
        self.dumped_len = len;
    }

    /// Whether a (prepared) vector fits this segment.
    pub fn accepts(&self, prepared: &[f32]) -> bool {
        self.metric != Metric::Dot || distance::dot(prepared, prepared).sqrt() <= self.max_norm
    }

    /// Stores a prepared vector under `key` without adding it to the graph
    /// (it is scanned exactly until a builder does); returns its offset.
    pub fn append(&mut self, key: u64, prepared: &[f32]) -> usize {
        let offset = self.vectors.len();
        self.push(key, prepared);
        offset
    }

    /// Whether every stored point is in the graph, so [`Segment::insert`]
    /// may add the next one directly.
    fn fully_built(&self) -> bool {
        self.built == self.len()
    }

    /// Appends a prepared vector under `key` and builds it into the graph
    /// now; returns its offset. Behind a pending build, it is only stored
    /// (the builder adds it in order).
    pub fn insert(&mut self, key: u64, prepared: Vec<f32>) -> usize {
        if !self.fully_built() {
            return self.append(key, &prepared);
        }
        let offset = self.vectors.len();
        self.graph.insert_batch(&[&prepared]);
        self.push(key, &prepared);
        self.built = self.len();
        if self.unfrozen() >= MAX_UNFROZEN {
            self.freeze();
        }
        offset
    }

    /// Appends many prepared vectors, building the graph on all cores;
    /// returns the first offset (the rest follow in order).
    pub fn insert_many(&mut self, points: Vec<(u64, Vec<f32>)>) -> usize {
        let first = self.vectors.len();
        if !self.fully_built() {
            for (key, prepared) in points {
                self.push(key, &prepared);
            }
            return first;
        }
        {
            let batch: Vec<&[f32]> = points.iter().map(|(_, v)| v.as_slice()).collect();
            self.graph.insert_batch(&batch);
        }
        for (key, prepared) in points {
            self.push(key, &prepared);
        }
        self.built = self.len();
        if self.unfrozen() >= MAX_UNFROZEN {
            self.freeze();
        }
        first
    }

    fn push(&mut self, key: u64, prepared: &[f32]) {
        self.vectors.push(prepared);
        self.codes.push(prepared);
        self.keys.push(key);
        self.deleted.push(false);
        self.live += 1;
    }

    /// The prepared vector at a live offset (empty for a deleted one).
    pub fn live_vector(&self, offset: usize) -> &[f32] {
        if self.is_live(offset) {
            self.vectors.get(offset)
        } else {
            &[]
        }
    }

    /// Whether the walk measures this segment's rows on 8-bit codes.
    pub fn is_coded(&self) -> bool {
        self.codes.is_coded()
    }

    /// The walk distance from a coded query to the codes at `offset` (only
    /// meaningful when [`Segment::is_coded`]).
    #[inline]
    pub fn coded_distance(
        &self,
        distance: WalkDistance,
        kernels: &distance::kernels::Kernels,
        query: Codes<'_>,
        offset: usize,
    ) -> f32 {
        quantized::distance(distance, kernels, query, self.codes.get(offset))
    }

    /// Asks the CPU to start loading the codes at `offset`.
    #[inline]
    pub fn prefetch_codes(&self, offset: usize) {
        self.codes.prefetch(offset as u32);
    }

    /// Whether `offset` holds a live point.
    pub fn is_live(&self, offset: usize) -> bool {
        self.deleted.get(offset) == Some(&false)
    }

    /// Marks an offset deleted; returns whether it was live.
    pub fn delete(&mut self, offset: usize) -> bool {
        match self.deleted.get_mut(offset) {
            Some(flag) if !*flag => {
                *flag = true;
                self.live -= 1;
                true
            }
            _ => false,
        }
    }

    /// Points inserted, deleted or not.
    pub fn len(&self) -> usize {
        self.vectors.len()
    }

    /// Whether nothing was ever inserted.
    pub fn is_empty(&self) -> bool {
        self.vectors.is_empty()
    }

    /// Live points.
    pub fn live(&self) -> usize {
        self.live
    }

    /// Fraction of inserted points that are deleted.
    pub fn deleted_fraction(&self) -> f64 {
        if self.vectors.is_empty() {
            0.0
        } else {
            1.0 - self.live as f64 / self.vectors.len() as f64
        }
    }

    /// The key and prepared vector of every live offset.
    pub fn live_points(&self) -> impl Iterator<Item = (u64, &[f32])> {
        self.live_offsets()
            .map(|o| (self.keys[o], self.vectors.get(o)))
    }

    /// Every live offset.
    pub fn live_offsets(&self) -> impl Iterator<Item = usize> {
        (0..self.vectors.len()).filter(|&o| !self.deleted[o])
    }

    /// Approximate top `k` live points for a prepared query among those
    /// `accept` lets through (by key; `None`: all), as (key, API score), best
    /// first. May return fewer than `k` when the filter is selective.
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        accept: Option<&dyn Fn(u64) -> bool>,
    ) -> Vec<(u64, f32)> {
        if k == 0 || self.live == 0 {
            return Vec::new();
        }
        let distance = walk_distance(self.metric);
        let wanted = |offset: usize| {
            !self.deleted[offset] && accept.is_none_or(|accept| accept(self.keys[offset]))
        };
        let checks_needed = accept.is_some() || self.live < self.len();
        let kernels = distance::kernels::active();
        let exact = |offset: usize| distance.eval(kernels, query, self.vectors.get(offset));
        let mut found: Vec<(u32, f32)> = match &self.frozen {
            Some(graph) if self.codes.is_coded() => {
                let query = CodedQuery::new(query);
                let rows = CodedWalk {
                    rows: &self.codes,
                    query: query.codes(),
                    distance,
                    kernels,
                };
                let candidates = walk_frozen(graph, &rows, ef.max(k), checks_needed, &wanted);
                // The walk ranked by coded distances; rank its candidates
                // again on the f32 vectors, so the order and the scores
                // returned are exact.
                let mut rescored: Vec<(u32, f32)> = candidates
                    .into_iter()
                    .map(|(node, _)| (node, exact(node as usize)))
                    .collect();
                rescored.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
                rescored
            }
            Some(graph) => {
                let rows = ExactWalk {
                    rows: &self.vectors,
                    query,
                    distance,
                    kernels,
                };
                walk_frozen(graph, &rows, ef.max(k), checks_needed, &wanted)
            }
            None => Vec::new(),
        };
        found.truncate(k);
        // The points newer than the copy, scanned exactly.
        let first_unfrozen = self.len() - self.unfrozen();
        for offset in first_unfrozen..self.len() {
            if wanted(offset) {
                found.push((offset as u32, exact(offset)));
            }
        }
        if first_unfrozen < self.len() {
            found.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
            found.truncate(k);
        }
        found
            .into_iter()
            .map(|(offset, d)| {
                let score = match distance {
                    WalkDistance::SquaredL2 => d,
                    WalkDistance::NegatedDot => -d,
                };
                (self.keys[offset as usize], score)
            })
            .collect()
    }
}

/// Walks a segment's frozen graph over `rows`, checking `wanted` on every
/// node only when `checks_needed`.
fn walk_frozen(
    graph: &FrozenGraph,
    rows: &impl WalkRows,
    ef: usize,
    checks_needed: bool,
    wanted: &impl Fn(usize) -> bool,
) -> Vec<(u32, f32)> {
    if checks_needed {
        walk::search(graph, rows, ef, Some(|node: u32| wanted(node as usize)))
    } else {
        walk::search(graph, rows, ef, None::<fn(u32) -> bool>)
    }
}

/// The graph of a segment and how much of it to copy for searching.
pub struct FreezePlan {
    segment: u64,
    graph: Arc<Graph>,
    len: usize,
}

impl FreezePlan {
    /// Copies the graph; needs no lock on the index (the builder may go on
    /// inserting meanwhile).
    pub fn copy(self) -> FrozenCopy {
        let graph = FrozenGraph::copy_of(&self.graph, self.len);
        FrozenCopy {
            segment: self.segment,
            graph,
        }
    }
}

/// A searchable copy of a segment's graph, waiting to be installed.
pub struct FrozenCopy {
    segment: u64,
    graph: Option<FrozenGraph>,
}

/// Stored points of a segment to add to its graph, copied out of the index.
pub struct SegmentBuild {
    segment: u64,
    graph: Arc<Graph>,
    first: usize,
    vectors: Vec<Vec<f32>>,
}

impl SegmentBuild {
    /// Points to build.
    pub fn len(&self) -> usize {
        self.vectors.len()
    }

    /// Whether there is nothing to build.
    pub fn is_empty(&self) -> bool {
        self.vectors.is_empty()
    }

    /// Adds the points to the graph on all cores; slow, and needs no lock on
    /// the index (searches walk the frozen copy, not the graph). Callers
    /// build one plan of a segment at a time (see the index's build gate).
    pub fn run(self) -> BuiltRange {
        let batch: Vec<&[f32]> = self.vectors.iter().map(Vec::as_slice).collect();
        self.graph.insert_batch(&batch);
        BuiltRange {
            segment: self.segment,
            first: self.first,
            end: self.first + self.vectors.len(),
        }
    }
}

/// Offsets `first..end` of a segment, now in its graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuiltRange {
    segment: u64,
    first: usize,
    end: usize,
}
