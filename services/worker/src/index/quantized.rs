//! Vectors as 8-bit codes: the form the graph is built and walked in.
//!
//! Each row keeps, per component, `round(x / step)` with the row's own step
//! (its largest magnitude / 127), and the row's squared norm. A row's codes
//! depend only on that row, so no row ever saturates, a segment needs no
//! training pass, and codes are rebuilt from the f32 vectors whenever a graph
//! is loaded (they are never written to disk).
//!
//! Why: the walk and the builder measure hundreds of rows per search, and on
//! a segment larger than the CPU caches each measurement waits on memory. A
//! code row is a quarter of the bytes of an f32 row, so a quarter of the
//! traffic, and the integer dot product is exact and cheap.
//!
//! Distances from codes are approximate (relative error around 1% per
//! component for typical embeddings). The walk ranks its candidates by them;
//! the segment then measures those candidates again on the f32 vectors
//! before it ranks and scores its results (see `segment::Segment::search`),
//! so returned scores are always exact.
//!
//! When codes are not used: below [`MIN_CODED_DIMENSION`] components (a
//! short f32 row is a cache line or two already, and a row's one step is
//! too coarse when a few components carry it), and when the worker runs
//! with `VECTRON_CODED_DISTANCES=off` — for vectors whose components differ
//! in scale by orders of magnitude (raw features in mixed units), where one
//! step per row rounds the small components away. A store decides once, on
//! its first vector; a store that does not code holds no codes. No I/O.

use std::sync::OnceLock;

use super::walk::{WalkDistance, WalkRows};
use crate::distance::kernels::Kernels;

/// The largest code magnitude (symmetric: -127..=127).
const LEVELS: f32 = 127.0;

/// Vectors shorter than this are walked and built on f32 rows.
pub const MIN_CODED_DIMENSION: usize = 64;

/// Whether this process codes vectors at all (`VECTRON_CODED_DISTANCES=off`
/// turns it off), read once.
fn coding_allowed() -> bool {
    static ALLOWED: OnceLock<bool> = OnceLock::new();
    *ALLOWED.get_or_init(|| std::env::var("VECTRON_CODED_DISTANCES").map_or(true, |v| v != "off"))
}

/// One row's codes, the step they are in and the row's exact squared norm.
#[derive(Debug, Clone, Copy)]
pub struct Codes<'a> {
    /// The codes, one per component.
    pub codes: &'a [i8],
    /// The value of one code unit.
    pub step: f32,
    /// The f32 vector's squared norm.
    pub squared_norm: f32,
}

/// Encodes `vector` into `out` (same length); returns the step.
fn encode_into(vector: &[f32], out: &mut [i8]) -> f32 {
    let largest = vector.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    if largest == 0.0 || !largest.is_finite() {
        out.fill(0);
        return 0.0;
    }
    let step = largest / LEVELS;
    for (code, x) in out.iter_mut().zip(vector) {
        *code = (x / step).round().clamp(-LEVELS, LEVELS) as i8;
    }
    step
}

/// The walk distance (lower is closer) between two coded rows, in the order
/// `distance` names: the negated dot product, or the squared l2 distance
/// from the norms and the dot product.
#[inline]
pub fn distance(distance: WalkDistance, kernels: &Kernels, a: Codes<'_>, b: Codes<'_>) -> f32 {
    let dot = (kernels.dot_i8)(a.codes, b.codes) as f32 * (a.step * b.step);
    match distance {
        WalkDistance::NegatedDot => -dot,
        WalkDistance::SquaredL2 => a.squared_norm + b.squared_norm - 2.0 * dot,
    }
}

/// A coded query walking coded rows.
pub struct CodedWalk<'a> {
    /// The rows.
    pub rows: &'a CodeStore,
    /// The query's codes.
    pub query: Codes<'a>,
    /// The order measured.
    pub distance: WalkDistance,
    /// The kernels measuring it.
    pub kernels: &'a Kernels,
}

impl WalkRows for CodedWalk<'_> {
    #[inline]
    fn measure(&self, node: u32) -> f32 {
        distance(
            self.distance,
            self.kernels,
            self.query,
            self.rows.get(node as usize),
        )
    }

    #[inline]
    fn prefetch(&self, node: u32) {
        self.rows.prefetch(node);
    }
}

/// A query's codes, owned.
#[derive(Debug, Clone)]
pub struct CodedQuery {
    codes: Vec<i8>,
    step: f32,
    squared_norm: f32,
}

impl CodedQuery {
    /// Encodes a (prepared) query.
    pub fn new(vector: &[f32]) -> Self {
        let mut codes = vec![0i8; vector.len()];
        let step = encode_into(vector, &mut codes);
        Self {
            codes,
            step,
            squared_norm: crate::distance::dot(vector, vector),
        }
    }

    /// The codes as a row.
    pub fn codes(&self) -> Codes<'_> {
        Codes {
            codes: &self.codes,
            step: self.step,
            squared_norm: self.squared_norm,
        }
    }
}

/// Coded rows by offset, in one contiguous array (row `o` at
/// `o * dimension`). The dimension, and whether to code at all, are learned
/// from the first vector stored; a row never given a vector reads as the
/// zero vector.
#[derive(Debug, Default, Clone)]
pub struct CodeStore {
    dimension: usize,
    /// Whether rows are coded (decided with the dimension).
    coded: bool,
    rows: usize,
    codes: Vec<i8>,
    /// Per row: its step and squared norm.
    scales: Vec<(f32, f32)>,
}

impl CodeStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// A store of `rows` rows with no vector yet (see [`CodeStore::set`]).
    pub fn with_empty_rows(rows: usize) -> Self {
        Self {
            dimension: 0,
            coded: false,
            rows,
            codes: Vec::new(),
            scales: Vec::new(),
        }
    }

    /// Whether rows are coded: distances must be measured on f32 rows when
    /// not.
    pub fn is_coded(&self) -> bool {
        self.coded
    }

    fn learn_dimension(&mut self, dimension: usize) {
        if self.dimension == 0 && dimension > 0 {
            self.dimension = dimension;
            self.coded = dimension >= MIN_CODED_DIMENSION && coding_allowed();
            if self.coded {
                self.codes = vec![0; self.rows * dimension];
                self.scales = vec![(0.0, 0.0); self.rows];
            }
        }
    }

    /// Appends the codes of `vector`.
    pub fn push(&mut self, vector: &[f32]) {
        self.learn_dimension(vector.len());
        if !self.coded {
            self.rows += 1;
            return;
        }
        let start = self.codes.len();
        self.codes.resize(start + self.dimension, 0);
        let n = vector.len().min(self.dimension);
        let step = encode_into(&vector[..n], &mut self.codes[start..start + n]);
        self.scales
            .push((step, crate::distance::dot(&vector[..n], &vector[..n])));
        self.rows += 1;
    }

    /// Sets the codes of an existing row (a vector of another length
    /// changes nothing).
    pub fn set(&mut self, row: usize, vector: &[f32]) {
        self.learn_dimension(vector.len());
        if self.coded && row < self.rows && vector.len() == self.dimension {
            let start = row * self.dimension;
            let step = encode_into(vector, &mut self.codes[start..start + self.dimension]);
            self.scales[row] = (step, crate::distance::dot(vector, vector));
        }
    }

    /// The codes of `row` (empty codes past the end or before any vector).
    #[inline]
    pub fn get(&self, row: usize) -> Codes<'_> {
        let start = row * self.dimension;
        let (step, squared_norm) = self.scales.get(row).copied().unwrap_or((0.0, 0.0));
        Codes {
            codes: self.codes.get(start..start + self.dimension).unwrap_or(&[]),
            step,
            squared_norm,
        }
    }

    /// Asks the CPU to start loading `row` (its first cache lines; the
    /// hardware prefetcher follows the rest).
    #[inline]
    pub fn prefetch(&self, row: u32) {
        #[cfg(target_arch = "x86_64")]
        {
            let start = row as usize * self.dimension;
            if let Some(codes) = self.codes.get(start..start + self.dimension) {
                use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
                let ptr = codes.as_ptr();
                // SAFETY: a prefetch is a hint; it never faults or changes
                // memory. Every address is inside the row.
                unsafe {
                    let mut line = 0;
                    while line < codes.len().min(512) {
                        _mm_prefetch(ptr.add(line), _MM_HINT_T0);
                        line += 64;
                    }
                }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = row;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distance::kernels;

    fn exact(kind: WalkDistance, a: &[f32], b: &[f32]) -> f32 {
        match kind {
            WalkDistance::NegatedDot => -a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>(),
            WalkDistance::SquaredL2 => a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum(),
        }
    }

    /// Deterministic pseudo-random vectors in [-1, 1).
    fn vectors(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
        let mut state = seed | 1;
        (0..n)
            .map(|_| {
                (0..dim)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn coded_distances_stay_within_the_rounding_bound_of_the_exact_ones() {
        // Each component is off by at most half a step, so the dot product
        // is off by at most |a|₁·step_b/2 + |b|₁·step_a/2 + d·step_a·step_b/4.
        let points = vectors(50, 384, 3);
        let mut store = CodeStore::new();
        for p in &points {
            store.push(p);
        }
        for kernels in kernels::available() {
            for kind in [WalkDistance::NegatedDot, WalkDistance::SquaredL2] {
                for (i, a) in points.iter().enumerate() {
                    let b = &points[(i * 7 + 1) % points.len()];
                    let query = CodedQuery::new(a);
                    let (ca, cb) = (query.codes(), store.get((i * 7 + 1) % points.len()));
                    let l1 = |v: &[f32]| v.iter().map(|x| x.abs()).sum::<f32>();
                    let bound = l1(a) * cb.step / 2.0
                        + l1(b) * ca.step / 2.0
                        + a.len() as f32 * ca.step * cb.step / 4.0;
                    let factor = if kind == WalkDistance::SquaredL2 {
                        2.0
                    } else {
                        1.0
                    };
                    let got = distance(kind, &kernels, ca, cb);
                    let want = exact(kind, a, b);
                    assert!(
                        (got - want).abs() <= factor * bound * 1.001 + 1e-4,
                        "{} {kind:?}: coded {got}, exact {want}, bound {}",
                        kernels.name,
                        factor * bound
                    );
                }
            }
        }
    }

    #[test]
    fn short_vectors_are_not_coded() {
        let mut short = CodeStore::new();
        short.push(&[1.0; MIN_CODED_DIMENSION - 1]);
        assert!(!short.is_coded());
        assert!(short.get(0).codes.is_empty());
        let mut long = CodeStore::new();
        long.push(&[1.0; MIN_CODED_DIMENSION]);
        assert!(long.is_coded());
        assert_eq!(long.get(0).codes.len(), MIN_CODED_DIMENSION);
    }

    #[test]
    fn coded_distances_rank_neighbours_like_the_exact_ones() {
        // On 1,000 random points, the coded ranking's top 10 for a query
        // shares at least 9 of the exact top 10 on average.
        let points = vectors(1000, 128, 11);
        let queries = vectors(20, 128, 12);
        let mut store = CodeStore::new();
        for p in &points {
            store.push(p);
        }
        let kernels = kernels::active();
        let mut shared = 0;
        for q in &queries {
            let coded = CodedQuery::new(q);
            let top = |measure: &dyn Fn(usize) -> f32| {
                let mut order: Vec<usize> = (0..points.len()).collect();
                order.sort_by(|&a, &b| measure(a).total_cmp(&measure(b)));
                order.truncate(10);
                order
            };
            let exact_top = top(&|i| exact(WalkDistance::SquaredL2, q, &points[i]));
            let coded_top = top(&|i| {
                distance(
                    WalkDistance::SquaredL2,
                    kernels,
                    coded.codes(),
                    store.get(i),
                )
            });
            shared += coded_top.iter().filter(|i| exact_top.contains(i)).count();
        }
        assert!(
            shared >= 9 * queries.len(),
            "shared {shared} of {}",
            10 * queries.len()
        );
    }

    /// `head` followed by zeros, to the least coded length.
    fn padded(head: &[f32]) -> Vec<f32> {
        let mut v = head.to_vec();
        v.resize(MIN_CODED_DIMENSION, 0.0);
        v
    }

    #[test]
    fn extreme_and_empty_rows_encode_without_saturating_or_failing() {
        let mut store = CodeStore::new();
        store.push(&padded(&[1e30, -1e30, 0.0]));
        store.push(&padded(&[0.0, 0.0, 0.0]));
        store.push(&padded(&[1e-30, 0.0, -1e-30]));
        let big = store.get(0);
        assert_eq!(&big.codes[..3], &[127, -127, 0]);
        assert_eq!(store.get(1).step, 0.0);
        assert_eq!(&store.get(2).codes[..3], &[127, 0, -127]);
        // Past the end: empty codes, never a panic.
        assert!(store.get(3).codes.is_empty());
        store.prefetch(3);
    }

    #[test]
    fn empty_rows_read_as_zero_until_set() {
        let mut store = CodeStore::with_empty_rows(2);
        assert!(store.get(0).codes.is_empty());
        store.set(1, &padded(&[0.5, -0.25]));
        assert!(store.get(0).codes.iter().all(|&c| c == 0));
        assert_eq!(&store.get(1).codes[..3], &[127, -64, 0]);
        assert_eq!(store.get(1).squared_norm, 0.3125);
        // A vector of the wrong length changes nothing.
        store.set(0, &[1.0]);
        assert!(store.get(0).codes.iter().all(|&c| c == 0));
    }
}
