//! A read-only copy of a segment's [`Graph`] in a compact layout made for
//! searching: neighbour lists as `u32` offsets in fixed-stride arrays (one
//! for layer 0, one for the few nodes of the upper layers), and the entry
//! point. The builder keeps growing the graph; searches walk this copy
//! instead, with no locks or allocations per visited node.
//!
//! A copy covers the first `len` offsets of its segment. It can be taken
//! while the builder goes on inserting: links to offsets at or past `len` are
//! dropped, so the copy is a consistent graph over its prefix, and the
//! segment scans the newer points exactly until it takes the next copy.

use super::graph::Graph;

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

    /// Copies the part of `graph` over offsets `0..len`. `None` when no such
    /// node is in the graph yet.
    pub fn copy_of(graph: &Graph, len: usize) -> Option<Self> {
        let len = len.min(graph.len());
        let mut links: Vec<Vec<Vec<u32>>> = vec![Vec::new(); len];
        let (mut base_most, mut upper_most) = (0usize, 0usize);
        let entry = graph.read_prefix(len, |offset, node| {
            base_most = base_most.max(node.links.first().map_or(0, Vec::len));
            for layer in node.links.iter().skip(1) {
                upper_most = upper_most.max(layer.len());
            }
            links[offset] = node.links.to_vec();
        })?;
        let (entry, top_level) = (entry.node as usize, entry.level);

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

    use super::FrozenGraph;
    use crate::index::graph::Graph;
    use crate::index::segment::HnswParams;
    use crate::index::walk::WalkDistance;

    fn vector(i: usize) -> Vec<f32> {
        (0..8)
            .map(|d| ((i * 31 + d * 17) % 97) as f32 / 97.0)
            .collect()
    }

    fn insert(graph: &Graph, range: std::ops::Range<usize>) {
        let vectors: Vec<Vec<f32>> = range.map(vector).collect();
        let refs: Vec<&[f32]> = vectors.iter().map(Vec::as_slice).collect();
        graph.insert_batch(&refs);
    }

    /// Copies are taken while batches are linked (upkeep does so without the
    /// index lock); each copy must finish, whatever the interleaving, and
    /// cover a growing prefix.
    #[test]
    fn copies_taken_during_inserts_finish() {
        let graph = Arc::new(Graph::new(
            WalkDistance::SquaredL2,
            HnswParams {
                m: 8,
                ef_construction: 32,
            },
            1,
        ));
        insert(&graph, 0..200);
        let done = Arc::new(AtomicBool::new(false));
        let inserter = {
            let (graph, done) = (graph.clone(), done.clone());
            std::thread::spawn(move || {
                for start in (200..20_000).step_by(100) {
                    if done.load(Ordering::SeqCst) {
                        break;
                    }
                    insert(&graph, start..start + 100);
                }
            })
        };
        let (sent, copies) = mpsc::channel();
        let copier = {
            let graph = graph.clone();
            std::thread::spawn(move || {
                for _ in 0..300 {
                    let len = graph.len();
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
