//! The HNSW graph of one segment, as it is built: Vectron's own builder.
//! Searches walk a [`super::frozen::FrozenGraph`] copy of it; dumps write it
//! (see [`super::graph_file`]).
//!
//! The algorithm is HNSW as Malkov and Yashunin describe it. A node's top
//! layer is drawn from an exponential distribution of scale `1 / ln m`. On
//! each of its layers the node is linked to at most `m` neighbours (`2m` on
//! layer 0, as hnsw_rs does; hnswlib takes `m` there and recalls less per
//! ef), picked with the diversity heuristic among the `ef_construction`
//! nearest nodes a best-first search finds. Each neighbour links back; a
//! neighbour whose list is full keeps its closest links. (Picking that list
//! again by the heuristic, as hnswlib does, recalled up to 0.015 less per
//! ef than hnsw_rs on the index tests' random data; keeping the closest
//! recalls at least as well as hnsw_rs at every ef.)
//!
//! Points are added in batches of consecutive offsets and linked on every
//! core at once. The graph keeps its own copy of each vector in one
//! contiguous array (what a dump writes), and the same rows as 8-bit codes
//! (see [`super::quantized`]); when the rows are coded every distance of
//! the build is measured on codes, a quarter of the memory traffic of f32
//! rows.
//!
//! Concurrency. A batch first appends its vectors and unlinked nodes under
//! the graph's write lock (a memory copy). It then links them holding only
//! the read lock, so copies for searching and dumps can read the graph
//! meanwhile. Each node's links change only under that node's own mutex
//! (layer 0 is read without it; see `Nodes`). A thread holds at most one
//! node lock at a time and copies a list out before measuring it, so locks
//! never nest and nothing deadlocks.
//!
//! A node of a batch in progress may already be reachable while it has only
//! some of its links. A reader that wants a consistent graph reads only the
//! offsets whose batch has finished (the segment's `built` count).
//!
//! Replaces hnsw_rs as the builder: hnsw_rs built about 1,000 points/s on
//! two cores where hnswlib builds 4,000 with the same parameters. Its search
//! allocated per visited node and spent half its time outside the distance
//! kernel. No I/O.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::ops::Range;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering as AtomicOrdering};
use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard};

use super::quantized::{self, CodeStore};
use super::segment::HnswParams;
use super::vectors::VectorStore;
use super::walk::{self, Candidate, WalkDistance};
use crate::distance::kernels;

/// The most layers a graph has (top layer index + 1).
pub const MAX_LAYERS: usize = 16;

/// One node: its top layer, and its links on layers `1..=level` behind the
/// mutex that also serialises every change to its layer-0 row.
struct Node {
    level: u8,
    upper: Mutex<Vec<Vec<u32>>>,
}

impl Node {
    fn new(level: usize) -> Self {
        Self {
            level: level as u8,
            upper: Mutex::new(vec![Vec::new(); level]),
        }
    }

    /// The upper links (and the right to change the layer-0 row), even if a
    /// thread panicked holding them: a list is always whole, and a row is
    /// only ever read through its count.
    fn lock(&self) -> MutexGuard<'_, Vec<Vec<u32>>> {
        self.upper
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Nodes, their layer-0 rows and their vectors, by offset.
///
/// Layer 0 is read for every node a build search expands, so its lists sit
/// in one flat array, a row of `1 + 2m` words per node (the count, then the
/// links): a row's address needs no pointer chase and can be prefetched.
/// Rows change only under their node's mutex and are read without it: the
/// links are written before the count, and every word ever written names a
/// node that exists, so a reader racing a change sees a list of real nodes
/// (perhaps part old, part new), which a build search tolerates. Readers
/// that need a row to stand still ([`Graph::read_prefix`]) take the mutex.
struct Nodes {
    vectors: VectorStore,
    codes: CodeStore,
    nodes: Vec<Node>,
    base: Vec<AtomicU32>,
    stride: usize,
    /// Per node: how many layer-0 lists link to it (kept under the list
    /// owners' locks, read without them).
    in_links: Vec<AtomicU32>,
}

impl Nodes {
    /// The walk distance between two nodes: on their codes when the rows
    /// are coded, on their f32 vectors otherwise.
    #[inline]
    fn between(&self, distance: WalkDistance, kernels: &kernels::Kernels, a: u32, b: u32) -> f32 {
        if self.codes.is_coded() {
            quantized::distance(
                distance,
                kernels,
                self.codes.get(a as usize),
                self.codes.get(b as usize),
            )
        } else {
            distance.eval(
                kernels,
                self.vectors.get(a as usize),
                self.vectors.get(b as usize),
            )
        }
    }

    /// Asks the CPU to start loading the row `node` is measured on.
    #[inline]
    fn prefetch_vector(&self, node: u32) {
        if self.codes.is_coded() {
            self.codes.prefetch(node);
        } else {
            self.vectors.prefetch(node);
        }
    }

    #[inline]
    fn row(&self, node: u32) -> &[AtomicU32] {
        let start = node as usize * self.stride;
        &self.base[start..start + self.stride]
    }

    /// Copies `node`'s layer-0 links into `out` (no lock).
    #[inline]
    fn base_into(&self, node: u32, out: &mut Vec<u32>) {
        let row = self.row(node);
        let count = (row[0].load(AtomicOrdering::Acquire) as usize).min(self.stride - 1);
        out.extend(
            row[1..=count]
                .iter()
                .map(|l| l.load(AtomicOrdering::Relaxed)),
        );
    }

    /// Replaces `node`'s layer-0 links; the caller holds the node's mutex.
    fn set_base(&self, node: u32, links: &[u32]) {
        let row = self.row(node);
        let count = links.len().min(self.stride - 1);
        for (slot, &link) in row[1..=count].iter().zip(links) {
            slot.store(link, AtomicOrdering::Relaxed);
        }
        row[0].store(count as u32, AtomicOrdering::Release);
    }

    /// Asks the CPU to start loading `node`'s layer-0 row.
    #[inline]
    fn prefetch_row(&self, node: u32) {
        #[cfg(target_arch = "x86_64")]
        if let Some(word) = self.base.get(node as usize * self.stride) {
            use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            // SAFETY: a prefetch is a hint; it never faults or changes memory.
            unsafe { _mm_prefetch(word.as_ptr() as *const i8, _MM_HINT_T0) };
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = node;
    }

    /// Appends a node with no links.
    fn push(&mut self, vector: &[f32], level: usize) {
        self.vectors.push(vector);
        self.codes.push(vector);
        self.nodes.push(Node::new(level));
        self.base
            .extend(std::iter::repeat_with(|| AtomicU32::new(0)).take(self.stride));
        self.in_links.push(AtomicU32::new(0));
    }

    /// How many layer-0 lists link to `node`.
    #[inline]
    fn in_links(&self, node: u32) -> u32 {
        self.in_links
            .get(node as usize)
            .map_or(0, |n| n.load(AtomicOrdering::Relaxed))
    }

    /// Counts the links a layer-0 list gained and lost.
    fn count_changes(&self, before: &[u32], after: &[u32]) {
        for &gained in after.iter().filter(|n| !before.contains(n)) {
            if let Some(n) = self.in_links.get(gained as usize) {
                n.fetch_add(1, AtomicOrdering::Relaxed);
            }
        }
        for &lost in before.iter().filter(|n| !after.contains(n)) {
            if let Some(n) = self.in_links.get(lost as usize) {
                let _ = n.fetch_update(AtomicOrdering::Relaxed, AtomicOrdering::Relaxed, |v| {
                    Some(v.saturating_sub(1))
                });
            }
        }
    }
}

/// Where every search starts: a node on the highest layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// The node.
    pub node: u32,
    /// Its top layer.
    pub level: usize,
}

/// One node as a reader sees it: its top layer and its links per layer.
pub struct NodeView<'a> {
    /// The node's top layer.
    pub level: usize,
    /// Links per layer `0..=level`.
    pub links: &'a [Vec<u32>],
}

/// A segment's HNSW graph.
pub struct Graph {
    distance: WalkDistance,
    params: HnswParams,
    /// Seeds the layer draw, so a graph's shape depends only on its points.
    seed: u64,
    nodes: RwLock<Nodes>,
    entry: Mutex<Option<Entry>>,
}

/// Per-thread scratch space of the build's searches: the walk's, plus a
/// buffer for the links being expanded.
#[derive(Default)]
struct Scratch {
    search: walk::Scratch,
    links: Vec<u32>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// A uniform draw in (0, 1] from `seed` (splitmix64).
fn uniform(seed: u64) -> f64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    ((z >> 11) as f64 + 1.0) / (1u64 << 53) as f64
}

impl Graph {
    /// An empty graph ordering points by `distance`.
    pub fn new(distance: WalkDistance, params: HnswParams, seed: u64) -> Self {
        Self {
            distance,
            params,
            seed,
            nodes: RwLock::new(Nodes {
                vectors: VectorStore::new(),
                codes: CodeStore::new(),
                nodes: Vec::new(),
                base: Vec::new(),
                stride: 1 + 2 * params.m,
                in_links: Vec::new(),
            }),
            entry: Mutex::new(None),
        }
    }

    /// A graph read back from a dump: the links of every offset, one list
    /// per layer `0..=level`, and the vectors it was built over. Links must
    /// name offsets below `links.len()`; lists past a layer's capacity are
    /// cut to it.
    pub fn from_parts(
        distance: WalkDistance,
        params: HnswParams,
        seed: u64,
        vectors: VectorStore,
        links: Vec<Vec<Vec<u32>>>,
    ) -> Self {
        let stride = 1 + 2 * params.m;
        let mut codes = CodeStore::new();
        for row in 0..vectors.len() {
            codes.push(vectors.get(row));
        }
        let mut nodes = Nodes {
            vectors,
            codes,
            nodes: Vec::with_capacity(links.len()),
            base: Vec::with_capacity(links.len() * stride),
            stride,
            in_links: std::iter::repeat_with(|| AtomicU32::new(0))
                .take(links.len())
                .collect(),
        };
        for mut layers in links {
            let base = if layers.is_empty() {
                Vec::new()
            } else {
                layers.remove(0)
            };
            for layer in &mut layers {
                layer.truncate(params.m);
            }
            let node = nodes.nodes.len() as u32;
            nodes.nodes.push(Node {
                level: layers.len() as u8,
                upper: Mutex::new(layers),
            });
            nodes
                .base
                .extend(std::iter::repeat_with(|| AtomicU32::new(0)).take(stride));
            nodes.set_base(node, &base);
            nodes.count_changes(&[], &base[..base.len().min(stride - 1)]);
        }
        let entry = top_node(nodes.nodes.iter().map(|n| n.level as usize));
        Self {
            distance,
            params,
            seed,
            nodes: RwLock::new(nodes),
            entry: Mutex::new(entry),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, Nodes> {
        self.nodes
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Nodes in the graph (linked or being linked).
    pub fn len(&self) -> usize {
        self.read().nodes.len()
    }

    /// Whether the graph has no node.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The build parameters.
    pub fn params(&self) -> HnswParams {
        self.params
    }

    /// The seed of the layer draw.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The layer a node at `offset` gets.
    fn level_of(&self, offset: usize) -> usize {
        let scale = 1.0 / (self.params.m.max(2) as f64).ln();
        let draw = uniform(self.seed ^ (offset as u64).wrapping_mul(0x2545_f491_4f6c_dd1d));
        ((-draw.ln() * scale) as usize).min(MAX_LAYERS - 1)
    }

    /// Adds `vectors` at the next offsets and links them, on every core
    /// when there are several; returns their offsets. Callers add one batch
    /// at a time (a segment's build gate); the graph stays readable
    /// throughout.
    pub fn insert_batch(&self, vectors: &[&[f32]]) -> Range<usize> {
        let range = {
            let mut nodes = self
                .nodes
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let first = nodes.nodes.len();
            for (i, v) in vectors.iter().enumerate() {
                nodes.push(v, self.level_of(first + i));
            }
            first..nodes.nodes.len()
        };
        let nodes = self.read();
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(range.len());
        if threads <= 1 {
            for node in range.clone() {
                self.link(&nodes, node as u32);
            }
        } else {
            let next = AtomicUsize::new(range.start);
            let nodes = &*nodes;
            std::thread::scope(|scope| {
                for _ in 0..threads {
                    scope.spawn(|| {
                        loop {
                            let node = next.fetch_add(1, AtomicOrdering::Relaxed);
                            if node >= range.end {
                                break;
                            }
                            self.link(nodes, node as u32);
                        }
                    });
                }
            });
        }
        range
    }

    /// Calls `visit` with every node below `len`, in offset order, its links
    /// to nodes at or past `len` left out; returns the entry point among
    /// them (`None` when there is no node).
    pub fn read_prefix(
        &self,
        len: usize,
        mut visit: impl FnMut(usize, NodeView<'_>),
    ) -> Option<Entry> {
        let nodes = self.read();
        let len = len.min(nodes.nodes.len());
        let mut kept: Vec<Vec<u32>> = Vec::new();
        let mut base = Vec::new();
        for (offset, node) in nodes.nodes[..len].iter().enumerate() {
            {
                let upper = node.lock();
                base.clear();
                nodes.base_into(offset as u32, &mut base);
                kept.clear();
                kept.extend(std::iter::once(&base).chain(upper.iter()).map(|layer| {
                    layer
                        .iter()
                        .copied()
                        .filter(|&n| (n as usize) < len)
                        .collect::<Vec<u32>>()
                }));
            }
            visit(
                offset,
                NodeView {
                    level: node.level as usize,
                    links: &kept,
                },
            );
        }
        top_node(nodes.nodes[..len].iter().map(|n| n.level as usize))
    }

    /// Runs `read` over the vectors the graph holds.
    pub fn with_vectors<R>(&self, read: impl FnOnce(&VectorStore) -> R) -> R {
        read(&self.read().vectors)
    }

    /// The walk distance between nodes `a` and `b`.
    #[inline]
    fn measure(&self, nodes: &Nodes, kernels: &kernels::Kernels, a: u32, b: u32) -> f32 {
        nodes.between(self.distance, kernels, a, b)
    }

    /// Links `node` into the graph.
    fn link(&self, nodes: &Nodes, node: u32) {
        let kernels = kernels::active();
        let level = nodes.nodes[node as usize].level as usize;
        let query = node;
        let entry = {
            let mut entry = self
                .entry
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            match *entry {
                Some(entry) => entry,
                None => {
                    *entry = Some(Entry { node, level });
                    return;
                }
            }
        };
        let mut closest = Candidate {
            distance: self.measure(nodes, kernels, query, entry.node),
            node: entry.node,
        };
        SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            for layer in (level + 1..=entry.level).rev() {
                closest = self.greedy(nodes, &mut scratch, query, closest, layer);
            }
            for layer in (0..=level.min(entry.level)).rev() {
                let found = self.search_layer(nodes, &mut scratch, query, closest, layer);
                let found: Vec<Candidate> = found.into_iter().filter(|c| c.node != node).collect();
                let Some(&nearest) = found.first() else {
                    continue;
                };
                let chosen = self.diverse(nodes, &found, self.capacity(layer));
                self.set_own_links(nodes, node, layer, &chosen);
                for neighbour in &chosen {
                    self.link_back(
                        nodes,
                        neighbour.node,
                        node,
                        neighbour.distance,
                        layer,
                        false,
                    );
                }
                // Every full neighbour may have kept closer links: then the
                // nearest takes this node anyway, so layer 0 never leaves a
                // node without a way in.
                if layer == 0
                    && nodes.in_links(node) == 0
                    && let Some(nearest) = chosen.first()
                {
                    self.link_back(nodes, nearest.node, node, nearest.distance, layer, true);
                }
                closest = nearest;
            }
        });
        if level > entry.level {
            let mut entry = self
                .entry
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if entry.is_none_or(|e| level > e.level) {
                *entry = Some(Entry { node, level });
            }
        }
    }

    /// Copies the links of `node` on `layer` into `out`.
    fn links_into(nodes: &Nodes, node: u32, layer: usize, out: &mut Vec<u32>) {
        out.clear();
        if layer == 0 {
            nodes.base_into(node, out);
        } else if let Some(list) = nodes.nodes[node as usize].lock().get(layer - 1) {
            out.extend_from_slice(list);
        }
    }

    /// Greedy descent on one layer from `from` to a local minimum.
    fn greedy(
        &self,
        nodes: &Nodes,
        scratch: &mut Scratch,
        query: u32,
        from: Candidate,
        layer: usize,
    ) -> Candidate {
        let kernels = kernels::active();
        let mut best = from;
        let mut links = std::mem::take(&mut scratch.links);
        loop {
            Self::links_into(nodes, best.node, layer, &mut links);
            let mut moved = false;
            for &next in &links {
                let distance = self.measure(nodes, kernels, query, next);
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
        scratch.links = links;
        best
    }

    /// The `ef_construction` nearest nodes to `query` on `layer` found by a
    /// best-first search from `from`, closest first.
    fn search_layer(
        &self,
        nodes: &Nodes,
        scratch: &mut Scratch,
        query: u32,
        from: Candidate,
        layer: usize,
    ) -> Vec<Candidate> {
        let kernels = kernels::active();
        let ef = self.params.ef_construction.max(self.params.m);
        scratch.search.begin(nodes.nodes.len());
        scratch.search.visit(from.node);
        scratch.search.frontier.push(Reverse(from));
        scratch.search.found.push(from);
        let mut links = std::mem::take(&mut scratch.links);
        while let Some(Reverse(current)) = scratch.search.frontier.pop() {
            let bound = scratch
                .search
                .found
                .peek()
                .map_or(f32::INFINITY, |c| c.distance);
            if current.distance > bound && scratch.search.found.len() >= ef {
                break;
            }
            if layer == 0
                && let Some(Reverse(upcoming)) = scratch.search.frontier.peek()
            {
                nodes.prefetch_row(upcoming.node);
            }
            Self::links_into(nodes, current.node, layer, &mut links);
            // Keep the unvisited links, prefetching their vectors, then
            // measure them: the loads overlap with the arithmetic.
            links.retain(|&next| scratch.search.visit(next));
            for &next in &links {
                nodes.prefetch_vector(next);
            }
            for &next in &links {
                let distance = self.measure(nodes, kernels, query, next);
                let bound = scratch
                    .search
                    .found
                    .peek()
                    .map_or(f32::INFINITY, |c| c.distance);
                if scratch.search.found.len() < ef || distance < bound {
                    let candidate = Candidate {
                        distance,
                        node: next,
                    };
                    scratch.search.frontier.push(Reverse(candidate));
                    scratch.search.found.push(candidate);
                    if scratch.search.found.len() > ef {
                        scratch.search.found.pop();
                    }
                }
            }
        }
        scratch.links = links;
        let mut found: Vec<Candidate> = scratch.search.found.drain().collect();
        found.sort();
        found
    }

    /// At most `m` of `candidates` (closest first) by the diversity
    /// heuristic: a candidate is kept unless a kept one is closer to it than
    /// the query is.
    fn diverse(&self, nodes: &Nodes, candidates: &[Candidate], m: usize) -> Vec<Candidate> {
        if candidates.len() <= m {
            return candidates.to_vec();
        }
        let kernels = kernels::active();
        let mut kept: Vec<Candidate> = Vec::with_capacity(m);
        for candidate in candidates {
            if kept.len() >= m {
                break;
            }
            let diverse = kept.iter().all(|k| {
                self.measure(nodes, kernels, candidate.node, k.node) >= candidate.distance
            });
            if diverse {
                kept.push(*candidate);
            }
        }
        kept
    }

    /// The most links a node keeps on `layer`.
    fn capacity(&self, layer: usize) -> usize {
        if layer == 0 {
            2 * self.params.m
        } else {
            self.params.m
        }
    }

    /// Changes `node`'s list on `layer` under the node's mutex; `change`
    /// says whether it changed anything.
    fn change_list(
        nodes: &Nodes,
        node: u32,
        layer: usize,
        change: impl FnOnce(&mut Vec<u32>) -> bool,
    ) {
        let mut upper = nodes.nodes[node as usize].lock();
        if layer == 0 {
            let mut row = Vec::new();
            nodes.base_into(node, &mut row);
            let before = row.clone();
            if change(&mut row) {
                nodes.set_base(node, &row);
                row.truncate(nodes.stride - 1);
                nodes.count_changes(&before, &row);
            }
        } else if let Some(list) = upper.get_mut(layer - 1) {
            change(list);
        }
    }

    /// The `capacity` links of `known` (already measured from `node`) and
    /// `others` (its current links, measured here) closest to `node`. On
    /// layer 0 no current link is dropped whose only in-link is this list
    /// (it would become unreachable), nor `must_keep`: they stay in place of
    /// the farthest links that can go.
    #[allow(clippy::too_many_arguments)]
    fn closest(
        &self,
        nodes: &Nodes,
        node: u32,
        known: &[Candidate],
        others: &[u32],
        capacity: usize,
        layer: usize,
        must_keep: Option<u32>,
    ) -> Vec<u32> {
        let kernels = kernels::active();
        let mut all: Vec<Candidate> = known.to_vec();
        all.extend(others.iter().map(|&other| Candidate {
            distance: self.measure(nodes, kernels, node, other),
            node: other,
        }));
        all.sort();
        if all.len() <= capacity || layer != 0 {
            all.truncate(capacity);
            return all.iter().map(|c| c.node).collect();
        }
        let stays = |c: &Candidate| {
            Some(c.node) == must_keep || (others.contains(&c.node) && nodes.in_links(c.node) <= 1)
        };
        let mut free = capacity - all.iter().filter(|c| stays(c)).count().min(capacity);
        let mut kept = Vec::with_capacity(capacity);
        for c in &all {
            if kept.len() == capacity {
                break;
            }
            if stays(c) {
                kept.push(c.node);
            } else if free > 0 {
                kept.push(c.node);
                free -= 1;
            }
        }
        kept
    }

    /// Gives `node` its `chosen` links on `layer`. Another node may already
    /// have linked back to it there (one whose search started from `node`
    /// after it was linked on the layer above), so the lists are merged:
    /// no duplicate, and past the capacity the closest are kept.
    fn set_own_links(&self, nodes: &Nodes, node: u32, layer: usize, chosen: &[Candidate]) {
        let capacity = self.capacity(layer);
        Self::change_list(nodes, node, layer, |list| {
            list.retain(|&other| other != node && !chosen.iter().any(|c| c.node == other));
            *list = if list.is_empty() {
                chosen.iter().take(capacity).map(|c| c.node).collect()
            } else {
                self.closest(nodes, node, chosen, list, capacity, layer, None)
            };
            true
        });
    }

    /// Adds `node` (at `distance`) to `neighbour`'s links on `layer`; a full
    /// list keeps its closest links (and `node` too when `must_keep`).
    fn link_back(
        &self,
        nodes: &Nodes,
        neighbour: u32,
        node: u32,
        distance: f32,
        layer: usize,
        must_keep: bool,
    ) {
        let capacity = self.capacity(layer);
        Self::change_list(nodes, neighbour, layer, |list| {
            if list.contains(&node) {
                return false;
            }
            if list.len() < capacity {
                list.push(node);
            } else {
                *list = self.closest(
                    nodes,
                    neighbour,
                    &[Candidate { distance, node }],
                    list,
                    capacity,
                    layer,
                    must_keep.then_some(node),
                );
            }
            true
        });
    }
}

/// The first node on the highest layer among `levels` (by offset).
fn top_node(levels: impl Iterator<Item = usize>) -> Option<Entry> {
    levels
        .enumerate()
        .fold(None, |best: Option<Entry>, (offset, level)| match best {
            Some(best) if best.level >= level => Some(best),
            _ => Some(Entry {
                node: offset as u32,
                level,
            }),
        })
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn vectors(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
        (0..n)
            .map(|i| {
                (0..dim)
                    .map(|d| uniform(seed ^ ((i * dim + d) as u64).wrapping_mul(7919)) as f32 - 0.5)
                    .collect()
            })
            .collect()
    }

    fn build(points: &[Vec<f32>], batch: usize) -> Graph {
        let graph = Graph::new(
            WalkDistance::SquaredL2,
            HnswParams {
                m: 8,
                ef_construction: 64,
            },
            7,
        );
        for chunk in points.chunks(batch) {
            let refs: Vec<&[f32]> = chunk.iter().map(Vec::as_slice).collect();
            graph.insert_batch(&refs);
        }
        graph
    }

    #[test]
    fn every_node_keeps_its_link_bounds_and_links_only_real_nodes() {
        let points = vectors(3_000, 16, 1);
        let graph = build(&points, 700);
        assert_eq!(graph.len(), 3_000);
        let mut nodes_with_links = 0;
        let entry = graph.read_prefix(3_000, |offset, view| {
            assert_eq!(view.links.len(), view.level + 1, "node {offset}");
            for (layer, list) in view.links.iter().enumerate() {
                let cap = if layer == 0 { 16 } else { 8 };
                assert!(
                    list.len() <= cap,
                    "node {offset} layer {layer}: {}",
                    list.len()
                );
                let unique: HashSet<u32> = list.iter().copied().collect();
                assert_eq!(unique.len(), list.len(), "node {offset}: duplicate links");
                assert!(
                    !list.contains(&(offset as u32)),
                    "node {offset} links itself"
                );
            }
            if !view.links[0].is_empty() {
                nodes_with_links += 1;
            }
        });
        assert_eq!(nodes_with_links, 3_000, "every node is linked on layer 0");
        let entry = entry.expect("an entry");
        assert!(entry.level >= 1, "3,000 nodes at m 8 reach an upper layer");
    }

    #[test]
    fn layer_draw_follows_the_exponential_distribution() {
        let graph = Graph::new(
            WalkDistance::SquaredL2,
            HnswParams {
                m: 16,
                ef_construction: 64,
            },
            3,
        );
        let n = 100_000;
        let above0 = (0..n).filter(|&o| graph.level_of(o) >= 1).count();
        // P(level >= 1) = 1 / m.
        let expected = n as f64 / 16.0;
        assert!(
            (above0 as f64 - expected).abs() < expected * 0.1,
            "{above0} nodes above layer 0, expected about {expected}"
        );
    }

    #[test]
    fn a_prefix_read_drops_links_past_it() {
        let points = vectors(1_000, 8, 2);
        let graph = build(&points, 1_000);
        graph.read_prefix(400, |offset, view| {
            assert!(offset < 400);
            for list in view.links {
                assert!(
                    list.iter().all(|&n| n < 400),
                    "node {offset} links past 400"
                );
            }
        });
    }
}
