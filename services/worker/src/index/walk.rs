//! HNSW search over a [`FrozenGraph`]: greedy descent through the upper
//! layers, then a best-first walk of layer 0 with `ef` candidates. The walk
//! distance is lower-is-closer: squared l2 for l2, the negated dot product
//! for cosine (unit vectors) and dot, the order the graph was built in,
//! measured on whatever rows the caller hands in ([`WalkRows`]): f32
//! vectors, or 8-bit codes (see [`super::quantized`]), whose distances are
//! approximate so callers measure the candidates again on f32 vectors.
//! Nodes the caller does not accept (deleted, filtered out)
//! are walked through but never returned; with no such nodes the walk takes
//! a path with no acceptance check at all.
//!
//! Each thread keeps its visited marks (stamped with a per-search generation,
//! so nothing is cleared between searches) and its heaps, so a search
//! allocates only its result.

use std::cell::RefCell;
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use super::frozen::FrozenGraph;
use super::vectors::VectorStore;
use crate::distance::kernels;

/// The rows a walk measures, with the query fixed.
pub trait WalkRows {
    /// The walk distance from the query to `node`.
    fn measure(&self, node: u32) -> f32;
    /// Asks the CPU to start loading `node`'s row.
    fn prefetch(&self, node: u32);
}

/// An f32 query walking f32 rows (exact distances).
pub struct ExactWalk<'a> {
    /// The rows.
    pub rows: &'a VectorStore,
    /// The prepared query.
    pub query: &'a [f32],
    /// The order measured.
    pub distance: WalkDistance,
    /// The kernels measuring it.
    pub kernels: &'a kernels::Kernels,
}

impl WalkRows for ExactWalk<'_> {
    #[inline]
    fn measure(&self, node: u32) -> f32 {
        self.distance
            .eval(self.kernels, self.query, self.rows.get(node as usize))
    }

    #[inline]
    fn prefetch(&self, node: u32) {
        self.rows.prefetch(node);
    }
}

/// How the walk measures closeness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalkDistance {
    /// Squared Euclidean distance.
    SquaredL2,
    /// Negated dot product.
    NegatedDot,
}

impl WalkDistance {
    #[inline]
    pub(super) fn eval(self, kernels: &kernels::Kernels, query: &[f32], point: &[f32]) -> f32 {
        match self {
            WalkDistance::SquaredL2 => (kernels.squared_l2)(query, point),
            WalkDistance::NegatedDot => -(kernels.dot)(query, point),
        }
    }
}

/// A node and its walk distance, ordered by distance (then node).
#[derive(Debug, Clone, Copy)]
pub(super) struct Candidate {
    pub(super) distance: f32,
    pub(super) node: u32,
}

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Candidate {}

impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> Ordering {
        self.distance
            .total_cmp(&other.distance)
            .then(self.node.cmp(&other.node))
    }
}

/// Per-thread scratch space of a best-first search (this walk, and the
/// graph builder's searches).
#[derive(Default)]
pub(super) struct Scratch {
    marks: Vec<u32>,
    generation: u32,
    /// Nodes still to expand, closest first.
    pub(super) frontier: BinaryHeap<Reverse<Candidate>>,
    /// The `ef` closest accepted nodes seen, farthest on top.
    pub(super) found: BinaryHeap<Candidate>,
}

impl Scratch {
    /// Starts a search over `nodes` nodes.
    pub(super) fn begin(&mut self, nodes: usize) {
        if self.marks.len() < nodes {
            self.marks.resize(nodes, 0);
        }
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.marks.fill(0);
            self.generation = 1;
        }
        self.frontier.clear();
        self.found.clear();
    }

    /// Marks `node` visited; returns whether it was not yet.
    #[inline]
    pub(super) fn visit(&mut self, node: u32) -> bool {
        let mark = &mut self.marks[node as usize];
        if *mark == self.generation {
            false
        } else {
            *mark = self.generation;
            true
        }
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// The at most `ef` closest nodes to the query of `rows` that `accept` lets
/// through, as (node, walk distance) closest first. `accept: None` accepts
/// every node.
pub fn search<R: WalkRows, A: Fn(u32) -> bool>(
    graph: &FrozenGraph,
    rows: &R,
    ef: usize,
    accept: Option<A>,
) -> Vec<(u32, f32)> {
    if graph.is_empty() || ef == 0 {
        return Vec::new();
    }
    let measure = |node: u32| rows.measure(node);
    let entry = descend(graph, &measure);
    SCRATCH.with(|scratch| {
        let mut scratch = scratch.borrow_mut();
        match &accept {
            None => walk_base(&mut scratch, graph, rows, &measure, entry, ef, |_| true),
            Some(accept) => walk_base(&mut scratch, graph, rows, &measure, entry, ef, accept),
        }
    })
}

/// Greedy descent from the entry point to the closest node on layer 1.
fn descend(graph: &FrozenGraph, measure: &impl Fn(u32) -> f32) -> Candidate {
    let mut best = Candidate {
        distance: measure(graph.entry()),
        node: graph.entry(),
    };
    for level in (1..=graph.top_level()).rev() {
        loop {
            let mut moved = false;
            for &next in graph.upper_links(best.node, level) {
                let distance = measure(next);
                if distance < best.distance {
                    best = Candidate {
                        distance,
                        node: next,
                    };
                    moved = true;
                }
            }
            if !moved {
                break;
            }
        }
    }
    best
}

/// Best-first search of layer 0 from `entry`.
fn walk_base(
    scratch: &mut Scratch,
    graph: &FrozenGraph,
    rows: &impl WalkRows,
    measure: &impl Fn(u32) -> f32,
    entry: Candidate,
    ef: usize,
    accept: impl Fn(u32) -> bool,
) -> Vec<(u32, f32)> {
    scratch.begin(graph.len());
    scratch.visit(entry.node);
    scratch.frontier.push(Reverse(entry));
    if accept(entry.node) {
        scratch.found.push(entry);
    }
    let mut bound = match scratch.found.peek() {
        Some(farthest) => farthest.distance,
        None => f32::INFINITY,
    };
    // The graph keeps at most 2 * m (m <= 256) links per node on layer 0.
    let mut fresh = [0u32; 512];
    while let Some(Reverse(current)) = scratch.frontier.pop() {
        if current.distance > bound && scratch.found.len() >= ef {
            break;
        }
        // Mark the unvisited links first, prefetching their rows, then
        // measure them: the loads overlap with the arithmetic.
        let mut count = 0;
        for &next in graph.base_links(current.node) {
            if count < fresh.len() && scratch.visit(next) {
                rows.prefetch(next);
                fresh[count] = next;
                count += 1;
            }
        }
        for &next in &fresh[..count] {
            let distance = measure(next);
            if scratch.found.len() < ef || distance < bound {
                let candidate = Candidate {
                    distance,
                    node: next,
                };
                scratch.frontier.push(Reverse(candidate));
                if accept(next) {
                    scratch.found.push(candidate);
                    if scratch.found.len() > ef {
                        scratch.found.pop();
                    }
                }
                if let Some(farthest) = scratch.found.peek() {
                    bound = farthest.distance;
                }
            }
        }
    }
    let mut found: Vec<(u32, f32)> = scratch
        .found
        .drain()
        .map(|c| (c.node, c.distance))
        .collect();
    found.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    found
}
