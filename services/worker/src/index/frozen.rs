//! A read-only copy of an hnsw_rs graph in a compact layout made for
//! searching: neighbour lists as `u32` offsets in fixed-stride arrays (one
//! for layer 0, one for the few nodes of the upper layers), and the entry
//! point. hnsw_rs keeps building the graph (and its dumps stay the on-disk
//! format); searches walk this copy instead, with no locks, reference counts
//! or allocations per visited node.
//!
//! A copy covers the first `len` offsets of its segment. It can be taken
//! while hnsw_rs goes on inserting: links to offsets at or past `len` are
//! dropped, so the copy is a consistent graph over its prefix, and the
//! segment scans the newer points exactly until it takes the next copy.

use hnsw_rs::anndists::dist::Distance;
use hnsw_rs::prelude::Hnsw;

/// Marks a node with no upper-layer links.
const NO_UPPER: u32 = u32::MAX;

/// The compact graph over offsets `0..len`.
#[derive(Debug, Clone)]
pub struct FrozenGraph {
    len: usize,
    entry: u32,
    top_level: usize,
    /// `1 + ` the most links a node has on layer 0.
    base_stride: usize,
    /// Per node: link count, then the links, padded to `base_stride`.
    base: Vec<u32>,
    /// `1 + ` the most links a node has on any upper layer.
    upper_stride: usize,
    /// Per node: where its layer-1 list starts in `upper` (its layer-2 list
    /// follows, and so on), or [`NO_UPPER`].
    upper_start: Vec<u32>,
    upper: Vec<u32>,
}

impl FrozenGraph {
    /// Offsets covered: `0..len`.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the copy covers no node.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Where every search starts.
    pub fn entry(&self) -> u32 {
        self.entry
    }

    /// The entry point's layer (0 for a flat graph).
    pub fn top_level(&self) -> usize {
        self.top_level
    }

    /// The links of `node` on layer 0.
    #[inline]
    pub fn base_links(&self, node: u32) -> &[u32] {
        let start = node as usize * self.base_stride;
        let count = self.base[start] as usize;
        &self.base[start + 1..start + 1 + count]
    }

    /// The links of `node` on `level` (>= 1); empty if the node is not on it.
    #[inline]
    pub fn upper_links(&self, node: u32, level: usize) -> &[u32] {
        let first = self.upper_start[node as usize];
        if first == NO_UPPER || level == 0 {
            return &[];
        }
        let start = first as usize + (level - 1) * self.upper_stride;
        match self.upper.get(start) {
            Some(&count) => &self.upper[start + 1..start + 1 + count as usize],
            None => &[],
        }
    }

    /// Bytes this copy holds.
    pub fn memory_bytes(&self) -> usize {
        (self.base.len() + self.upper_start.len() + self.upper.len()) * std::mem::size_of::<u32>()
    }

    /// Copies the part of `graph` over offsets `0..len` (hnsw_rs data ids
    /// are segment offsets). `None` when no such node is in the graph yet.
    pub fn copy_of<D: Distance<f32> + Send + Sync>(
        graph: &Hnsw<'static, f32, D>,
        len: usize,
    ) -> Option<Self> {
        // Take the node handles one layer at a time, then read each node's
        // links under its own lock only, so inserts are held up for no
        // longer than one layer's handle copy. Never through
        // `PointIndexation`'s own iterator: it takes the layer lock a second
        // time while holding it, which deadlocks against an insert queued
        // for that lock in between (parking_lot read locks are not
        // recursive).
        let layers = usize::from(graph.get_max_level_observed()) + 1;
        let indexation = graph.get_point_indexation();
        let mut points = Vec::new();
        for layer in 0..layers.min(graph.get_max_level()) {
            if indexation.get_layer_nb_point(layer) > 0 {
                points.extend(indexation.get_layer_iterator(layer));
            }
        }
        let mut levels = vec![None::<usize>; len];
        let mut links: Vec<Vec<Vec<u32>>> = vec![Vec::new(); len];
        let (mut base_most, mut upper_most) = (0usize, 0usize);
        for point in &points {
            let offset = point.get_origin_id();
            if offset >= len {
                continue;
            }
            let level = point.get_point_id().0 as usize;
            let layers: Vec<Vec<u32>> = point
                .get_neighborhood_id()
                .into_iter()
                .take(level + 1)
                .map(|layer| {
                    layer
                        .iter()
                        .map(|n| n.d_id)
                        .filter(|&id| id < len)
                        .map(|id| id as u32)
                        .collect()
                })
                .collect();
            base_most = base_most.max(layers.first().map_or(0, Vec::len));
            for layer in layers.iter().skip(1) {
                upper_most = upper_most.max(layer.len());
            }
            levels[offset] = Some(level);
            links[offset] = layers;
        }
        // The entry: the first node on the highest layer present.
        let (entry, top_level) = levels
            .iter()
            .enumerate()
            .filter_map(|(offset, level)| level.map(|l| (offset, l)))
            .fold(None::<(usize, usize)>, |best, (offset, level)| match best {
                Some((_, top)) if top >= level => best,
                _ => Some((offset, level)),
            })?;

        let base_stride = 1 + base_most;
        let upper_stride = 1 + upper_most;
        let mut base = vec![0u32; len * base_stride];
        let mut upper_start = vec![NO_UPPER; len];
        let mut upper = Vec::new();
        for (offset, layers) in links.into_iter().enumerate() {
            if let Some(layer0) = layers.first() {
                let start = offset * base_stride;
                base[start] = layer0.len() as u32;
                base[start + 1..start + 1 + layer0.len()].copy_from_slice(layer0);
            }
            if layers.len() > 1 {
                upper_start[offset] = upper.len() as u32;
                for layer in &layers[1..] {
                    upper.push(layer.len() as u32);
                    upper.extend_from_slice(layer);
                    upper.extend(std::iter::repeat_n(0, upper_stride - 1 - layer.len()));
                }
            }
        }
        Some(Self {
            len,
            entry: entry as u32,
            top_level,
            base_stride,
            base,
            upper_stride,
            upper_start,
            upper,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::mpsc;
    use std::time::Duration;

    use hnsw_rs::prelude::Hnsw;

    use super::FrozenGraph;
    use crate::distance::SquaredL2Distance;

    fn vector(i: usize) -> Vec<f32> {
        (0..8)
            .map(|d| ((i * 31 + d * 17) % 97) as f32 / 97.0)
            .collect()
    }

    /// Copies are taken while inserts run (upkeep does so without the index
    /// lock). hnsw_rs's own point iterator re-takes the layer lock it holds,
    /// which deadlocks once an insert queues for that lock in between; the
    /// copy must finish however the two interleave.
    #[test]
    fn copies_taken_during_inserts_finish() {
        let graph = Arc::new(Hnsw::<f32, SquaredL2Distance>::new(
            8,
            20_000,
            16,
            32,
            SquaredL2Distance,
        ));
        for i in 0..200 {
            graph.insert_slice((&vector(i), i));
        }
        let done = Arc::new(AtomicBool::new(false));
        let inserter = {
            let (graph, done) = (graph.clone(), done.clone());
            std::thread::spawn(move || {
                for i in 200..20_000 {
                    if done.load(Ordering::SeqCst) {
                        break;
                    }
                    graph.insert_slice((&vector(i), i));
                }
            })
        };
        let (sent, copies) = mpsc::channel();
        let copier = {
            let graph = graph.clone();
            std::thread::spawn(move || {
                for _ in 0..300 {
                    let len = graph.get_nb_point();
                    let copy = FrozenGraph::copy_of(&graph, len).expect("a non-empty graph");
                    if sent.send(copy.len()).is_err() {
                        break;
                    }
                }
            })
        };
        let mut taken = 0;
        let mut last = 0;
        while taken < 300 {
            match copies.recv_timeout(Duration::from_secs(60)) {
                Ok(len) => {
                    assert!(len >= last, "copies cover a growing prefix");
                    last = len;
                    taken += 1;
                }
                Err(e) => {
                    done.store(true, Ordering::SeqCst);
                    // A deadlocked copier never returns; leave it behind.
                    panic!("copy {taken} did not finish within 60 s ({e}): deadlocked");
                }
            }
        }
        done.store(true, Ordering::SeqCst);
        copier.join().expect("copier");
        inserter.join().expect("inserter");
    }
}
