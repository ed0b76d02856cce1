//! One HNSW segment: an hnsw_rs graph over the vectors inserted into it, the
//! prepared vectors themselves (for exact fallback and rebuilds), the external
//! key of each offset and a deleted bitmap. hnsw_rs cannot delete, so a deleted
//! offset stays in the graph and is skipped by the search filter. No I/O.

use hnsw_rs::prelude::Hnsw;

use crate::distance::{self, Metric, ShiftedDotDistance, SquaredL2Distance, UnitCosineDistance};

/// HNSW build parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HnswParams {
    /// Links per node (2..=256).
    pub m: usize,
    /// Build-time candidate list size.
    pub ef_construction: usize,
}

/// Most graph layers; hnsw_rs caps it at 16.
const MAX_LAYERS: usize = 16;

/// The graph, typed by the distance it was built with.
enum Graph {
    Cosine(Hnsw<'static, f32, UnitCosineDistance>),
    L2(Hnsw<'static, f32, SquaredL2Distance>),
    Dot(Hnsw<'static, f32, ShiftedDotDistance>),
}

/// A segment of one shard's index.
pub struct Segment {
    metric: Metric,
    graph: Graph,
    /// Prepared vectors by offset (unit length for cosine, raw otherwise).
    vectors: Vec<Vec<f32>>,
    keys: Vec<u64>,
    deleted: Vec<bool>,
    live: usize,
    /// Dot only: the norm bound behind the distance shift; points above it
    /// do not fit this segment.
    max_norm: f32,
}

impl Segment {
    /// An empty segment expecting about `capacity` points. For dot, `max_norm`
    /// bounds the norms it accepts.
    pub fn new(metric: Metric, params: HnswParams, capacity: usize, max_norm: f32) -> Self {
        let capacity = capacity.max(1024);
        let graph = match metric {
            Metric::Cosine => Graph::Cosine(Hnsw::new(
                params.m,
                capacity,
                MAX_LAYERS,
                params.ef_construction,
                UnitCosineDistance,
            )),
            Metric::L2 => Graph::L2(Hnsw::new(
                params.m,
                capacity,
                MAX_LAYERS,
                params.ef_construction,
                SquaredL2Distance,
            )),
            Metric::Dot => Graph::Dot(Hnsw::new(
                params.m,
                capacity,
                MAX_LAYERS,
                params.ef_construction,
                ShiftedDotDistance {
                    c: max_norm * max_norm,
                },
            )),
        };
        Self {
            metric,
            graph,
            vectors: Vec::new(),
            keys: Vec::new(),
            deleted: Vec::new(),
            live: 0,
            max_norm,
        }
    }

    /// Whether a (prepared) vector fits this segment.
    pub fn accepts(&self, prepared: &[f32]) -> bool {
        self.metric != Metric::Dot || distance::dot(prepared, prepared).sqrt() <= self.max_norm
    }

    /// Appends a prepared vector under `key`; returns its offset.
    pub fn insert(&mut self, key: u64, prepared: Vec<f32>) -> usize {
        let offset = self.vectors.len();
        match &self.graph {
            Graph::Cosine(h) => h.insert_slice((&prepared, offset)),
            Graph::L2(h) => h.insert_slice((&prepared, offset)),
            Graph::Dot(h) => h.insert_slice((&prepared, offset)),
        }
        self.vectors.push(prepared);
        self.keys.push(key);
        self.deleted.push(false);
        self.live += 1;
        offset
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
        (0..self.vectors.len())
            .filter(|&o| !self.deleted[o])
            .map(|o| (self.keys[o], self.vectors[o].as_slice()))
    }

    /// Approximate top `k` live points for a prepared query among those
    /// `accept` lets through (by key), as (key, API score), best first. May
    /// return fewer than `k` when the filter is selective.
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        accept: &dyn Fn(u64) -> bool,
    ) -> Vec<(u64, f32)> {
        if k == 0 || self.live == 0 {
            return Vec::new();
        }
        let ef = ef.max(k);
        let filter = |offset: &usize| !self.deleted[*offset] && accept(self.keys[*offset]);
        let neighbours = match &self.graph {
            Graph::Cosine(h) => h.search_filter(query, k, ef, Some(&filter)),
            Graph::L2(h) => h.search_filter(query, k, ef, Some(&filter)),
            Graph::Dot(h) => h.search_filter(
                &distance::scaled_to(query, self.max_norm),
                k,
                ef,
                Some(&filter),
            ),
        };
        let mut hits: Vec<(u64, f32)> = neighbours
            .into_iter()
            .filter(|n| filter(&n.d_id))
            .map(|n| {
                (
                    self.keys[n.d_id],
                    self.metric.score(query, &self.vectors[n.d_id]),
                )
            })
            .collect();
        hits.sort_by(|a, b| self.metric.compare(a.1, b.1));
        hits
    }
}
