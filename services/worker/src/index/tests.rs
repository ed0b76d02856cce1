//! Recall, delete/update and filter tests of the shard index on real hnsw_rs
//! graphs with fixed-seed random data.

use std::collections::{HashMap, HashSet};

use super::*;

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn random_vectors(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut state = seed;
    (0..n)
        .map(|_| {
            (0..dim)
                .map(|_| (splitmix64(&mut state) >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0)
                .collect()
        })
        .collect()
}

const PARAMS: HnswParams = HnswParams {
    m: 16,
    ef_construction: 200,
};
const DEFAULT_EF: usize = 64;

fn build(metric: Metric, vectors: &[Vec<f32>]) -> ShardIndex {
    let mut index = ShardIndex::new(metric, PARAMS);
    for (key, v) in vectors.iter().enumerate() {
        index.upsert(key as u64, v);
    }
    index
}

/// Mean recall@k of the index against exact search over `queries`.
fn recall(
    index: &ShardIndex,
    queries: &[Vec<f32>],
    k: usize,
    accept: Option<&dyn Fn(u64) -> bool>,
) -> f64 {
    let mut found = 0usize;
    let mut wanted = 0usize;
    for q in queries {
        let truth: HashSet<u64> = index
            .exact_search(q, k, accept)
            .into_iter()
            .map(|(key, _)| key)
            .collect();
        let got = index.search(q, k, DEFAULT_EF, accept);
        assert!(got.len() <= k);
        found += got.iter().filter(|(key, _)| truth.contains(key)).count();
        wanted += truth.len();
    }
    found as f64 / wanted.max(1) as f64
}

#[test]
fn recall_at_10_is_at_least_095_for_every_metric() {
    let vectors = random_vectors(10_000, 128, 7);
    let queries = random_vectors(100, 128, 8);
    for metric in [Metric::Cosine, Metric::L2, Metric::Dot] {
        let index = build(metric, &vectors);
        assert_eq!(index.len(), 10_000);
        let r = recall(&index, &queries, 10, None);
        eprintln!("{metric:?}: recall@10 = {r:.3} (10,000 x 128, ef {DEFAULT_EF})");
        assert!(r >= 0.95, "{metric:?}: recall@10 = {r:.3}");
    }
}

#[test]
fn deletes_and_updates_never_return_stale_points() {
    let vectors = random_vectors(4_000, 32, 11);
    let mut index = build(Metric::L2, &vectors);
    // Delete every even key, update every fourth odd key with a new vector.
    for key in (0..4_000u64).step_by(2) {
        assert!(index.delete(key));
    }
    assert!(!index.delete(0), "deleting twice reports nothing deleted");
    let updates = random_vectors(1_000, 32, 12);
    let updated: Vec<u64> = (1..4_000u64).step_by(4).collect();
    for (key, v) in updated.iter().zip(&updates) {
        index.upsert(*key, v);
    }
    assert_eq!(index.len(), 2_000);

    let mut current: HashMap<u64, Vec<f32>> = (1..4_000u64)
        .step_by(2)
        .map(|k| (k, vectors[k as usize].clone()))
        .collect();
    for (key, v) in updated.iter().zip(&updates) {
        current.insert(*key, v.clone());
    }
    let check = |index: &ShardIndex| {
        for (i, (key, v)) in updated.iter().zip(&updates).enumerate().take(200) {
            // The new vector finds its own key at distance 0.
            let hits = index.search(v, 10, DEFAULT_EF, None);
            assert_eq!(hits.first().map(|h| h.0), Some(*key), "update {i}");
            assert_eq!(hits[0].1, 0.0);
            // Searching near the old version: every hit is live and scored
            // against its current vector, never a stale one.
            let old = index.search(&vectors[*key as usize], 10, DEFAULT_EF, None);
            for (k, score) in old {
                let now = current
                    .get(&k)
                    .unwrap_or_else(|| panic!("deleted key {k} returned"));
                assert_eq!(
                    score,
                    crate::distance::squared_l2(&vectors[*key as usize], now),
                    "stale score for {k}"
                );
            }
        }
        let queries = random_vectors(50, 32, 13);
        let r = recall(index, &queries, 10, None);
        assert!(r >= 0.95, "recall after deletes = {r:.3}");
    };
    check(&index);
    let rebuilt = index.optimize(0.3);
    assert_eq!(rebuilt, 1);
    assert_eq!(index.len(), 2_000);
    check(&index);
}

#[test]
fn selective_filters_still_fill_top_k_with_matching_points() {
    let vectors = random_vectors(10_000, 64, 21);
    let index = build(Metric::Cosine, &vectors);
    let queries = random_vectors(50, 64, 22);
    let one_percent = |key: u64| key % 100 == 7;
    for q in &queries {
        let hits = index.search(q, 10, DEFAULT_EF, Some(&one_percent));
        assert_eq!(hits.len(), 10);
        assert!(hits.iter().all(|(key, _)| one_percent(*key)));
    }
    let r = recall(&index, &queries, 10, Some(&one_percent));
    eprintln!("1% filter: recall@10 = {r:.3}");
    assert!(r >= 0.9, "filtered recall@10 = {r:.3}");
}

#[test]
fn dot_points_outside_the_norm_bound_start_a_new_segment() {
    let mut index = ShardIndex::new(Metric::Dot, PARAMS);
    index.upsert(1, &[1.0, 0.0]);
    index.upsert(2, &[0.0, 1.1]);
    assert_eq!(index.segment_count(), 1);
    index.upsert(3, &[10.0, 10.0]);
    assert_eq!(index.segment_count(), 2);
    let hits = index.search(&[1.0, 1.0], 3, DEFAULT_EF, None);
    assert_eq!(hits.iter().map(|h| h.0).collect::<Vec<_>>(), vec![3, 2, 1]);
    assert_eq!(hits[0].1, 20.0);
}
