//! Exact (brute-force) top-k search: the fallback for very selective filters
//! and the baseline recall is measured against. No I/O.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::distance::Metric;

/// A scored candidate; the heap keeps the worst on top so it can be evicted.
struct Candidate<K> {
    key: K,
    score: f32,
    metric: Metric,
}

impl<K> PartialEq for Candidate<K> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl<K> Eq for Candidate<K> {}

impl<K> PartialOrd for Candidate<K> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<K> Ord for Candidate<K> {
    /// Better scores sort first, so the heap's maximum is the worst kept.
    fn cmp(&self, other: &Self) -> Ordering {
        self.metric.compare(self.score, other.score)
    }
}

/// The `k` best of `points` for `query` (both prepared for `metric`), best
/// first.
pub fn top_k<'a, K: 'a>(
    metric: Metric,
    query: &[f32],
    points: impl IntoIterator<Item = (K, &'a [f32])>,
    k: usize,
) -> Vec<(K, f32)> {
    if k == 0 {
        return Vec::new();
    }
    let mut heap: BinaryHeap<Candidate<K>> = BinaryHeap::with_capacity(k + 1);
    for (key, vector) in points {
        let score = metric.score(query, vector);
        if heap.len() < k {
            heap.push(Candidate { key, score, metric });
        } else if heap
            .peek()
            .is_some_and(|worst| metric.compare(score, worst.score).is_lt())
        {
            heap.pop();
            heap.push(Candidate { key, score, metric });
        }
    }
    heap.into_sorted_vec()
        .into_iter()
        .map(|c| (c.key, c.score))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_the_best_k_best_first() {
        let points: Vec<Vec<f32>> = (0..100).map(|i| vec![i as f32]).collect();
        let result = top_k(
            Metric::L2,
            &[42.2],
            points.iter().enumerate().map(|(i, p)| (i, p.as_slice())),
            3,
        );
        let keys: Vec<usize> = result.iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, vec![42, 43, 41]);
        let result = top_k(
            Metric::Dot,
            &[1.0],
            points.iter().enumerate().map(|(i, p)| (i, p.as_slice())),
            2,
        );
        assert_eq!(
            result.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
            vec![99, 98]
        );
        assert!(
            top_k(
                Metric::Dot,
                &[1.0],
                points.iter().map(|p| (0, p.as_slice())),
                0
            )
            .is_empty()
        );
    }
}
