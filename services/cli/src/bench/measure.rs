//! The measurements of `vectron bench`: loading a dataset (points/s until
//! every point is searchable, with a prober timing searches meanwhile) and
//! searching it at one `ef` from several client threads (QPS, latency
//! percentiles, recall@k against the exact neighbours). Pure arithmetic in
//! [`percentile`] and [`recall`]; the rest drives a [`Target`].

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::BenchError;
use super::dataset::Dataset;
use super::target::{Target, TargetError};
use crate::args::BenchArgs;

/// What loading measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LoadFigures {
    /// Points loaded.
    pub points: usize,
    /// Points per second, from the first upsert until all were searchable.
    pub points_per_s: f64,
    /// Searches the prober made while loading.
    pub probe_searches: usize,
    /// Their p99 latency, in milliseconds.
    pub probe_p99_ms: f64,
    /// Their longest latency, in milliseconds.
    pub probe_max_ms: f64,
    /// Points per second from the first upsert until every point was in an
    /// HNSW graph too (equal to `points_per_s` for targets that build as
    /// they store); the search sweep starts after that.
    pub indexed_points_per_s: f64,
}

/// What one search sweep point measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SearchFigures {
    /// Mean recall@k over the queries.
    pub recall: f64,
    /// Searches per second over all threads.
    pub qps: f64,
    /// Latency percentiles, in milliseconds.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
}

/// The `q`-quantile (0..=1) of sorted latencies, in milliseconds.
pub fn percentile(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[rank.min(sorted.len() - 1)].as_secs_f64() * 1e3
}

/// The share of the `k` true neighbours among the hits.
pub fn recall(hits: &[u64], truth: &[u32], k: usize) -> f64 {
    let wanted: HashSet<u64> = truth.iter().take(k).map(|&r| r as u64).collect();
    let found = hits.iter().take(k).filter(|h| wanted.contains(h)).count();
    found as f64 / k.max(1) as f64
}

/// Loads every base vector in batches from `args.load_clients` concurrent
/// clients, printing progress each second, while one prober searches.
pub async fn load(
    target: Arc<dyn Target>,
    dataset: Arc<Dataset>,
    args: &BenchArgs,
) -> Result<LoadFigures, BenchError> {
    let batch = args.batch.max(1);
    let batches = dataset.base.len().div_ceil(batch);
    let next = Arc::new(AtomicUsize::new(0));
    let loaded = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let started = Instant::now();

    let prober = {
        let (target, dataset, done, k) = (target.clone(), dataset.clone(), done.clone(), args.k);
        let ef = args.ef.first().copied().unwrap_or(64);
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut i = 0;
            while !done.load(Ordering::Relaxed) {
                let query = &dataset.queries[i % dataset.queries.len()];
                let t = Instant::now();
                // A failed probe (e.g. before the collection is ready) is
                // not a latency; it is skipped.
                if target.search(query, k, ef).await.is_ok() {
                    latencies.push(t.elapsed());
                }
                i += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            latencies
        })
    };

    let mut loaders = Vec::new();
    for _ in 0..args.load_clients.max(1) {
        let (target, dataset, next, loaded) = (
            target.clone(),
            dataset.clone(),
            next.clone(),
            loaded.clone(),
        );
        loaders.push(tokio::spawn(async move {
            loop {
                let b = next.fetch_add(1, Ordering::Relaxed);
                if b >= batches {
                    return Ok::<(), TargetError>(());
                }
                let start = b * batch;
                let end = (start + batch).min(dataset.base.len());
                let points: Vec<(u64, Vec<f32>)> = (start..end)
                    .map(|i| (i as u64, dataset.base[i].clone()))
                    .collect();
                target.upsert(&points).await?;
                loaded.fetch_add(end - start, Ordering::Relaxed);
            }
        }));
    }
    let progress = {
        let (loaded, done, total) = (loaded.clone(), done.clone(), dataset.base.len());
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let n = loaded.load(Ordering::Relaxed);
                let rate = n as f64 / started.elapsed().as_secs_f64();
                eprintln!("  loaded {n}/{total} points ({rate:.0} points/s)");
            }
        })
    };
    let mut failure = None;
    for loader in loaders {
        match loader.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failure = Some(BenchError::Target(e)),
            Err(e) => failure = Some(BenchError::Usage(format!("a loader panicked: {e}"))),
        }
    }
    if let Some(e) = failure {
        done.store(true, Ordering::Relaxed);
        return Err(e);
    }
    // Searchable: the target counts every point.
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let count = target.count().await?;
        if count as usize >= dataset.base.len() {
            break;
        }
        if Instant::now() > deadline {
            done.store(true, Ordering::Relaxed);
            return Err(BenchError::Usage(format!(
                "only {count} of {} points searchable 10 minutes after loading",
                dataset.base.len()
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    // Indexed: every point is in a graph (the searches measured next would
    // otherwise pay for exact scans of the rest). Workers report it with
    // their heartbeats, so a second late at most; probes go on meanwhile.
    let mut settled = 0;
    let indexed = loop {
        match target.unindexed().await? {
            None => break elapsed,
            Some(0) => {
                settled += 1;
                if settled >= 3 {
                    break started.elapsed();
                }
            }
            Some(_) => settled = 0,
        }
        if Instant::now() > deadline {
            done.store(true, Ordering::Relaxed);
            return Err(BenchError::Usage(
                "points still unindexed 10 minutes after loading".into(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    done.store(true, Ordering::Relaxed);
    let _ = progress.await;
    let mut probes = prober.await.unwrap_or_default();
    probes.sort();
    eprintln!(
        "  searchable after {:.1} s, indexed after {:.1} s",
        elapsed.as_secs_f64(),
        indexed.as_secs_f64()
    );
    Ok(LoadFigures {
        points: dataset.base.len(),
        points_per_s: dataset.base.len() as f64 / elapsed.as_secs_f64(),
        indexed_points_per_s: dataset.base.len() as f64 / indexed.as_secs_f64(),
        probe_searches: probes.len(),
        probe_p99_ms: percentile(&probes, 0.99),
        probe_max_ms: probes.last().map_or(0.0, |d| d.as_secs_f64() * 1e3),
    })
}

/// Searches at breadth `ef` from `threads` concurrent clients: every query
/// once for recall, and at least `args.min_searches` searches in all.
pub async fn search(
    target: Arc<dyn Target>,
    dataset: Arc<Dataset>,
    k: usize,
    ef: usize,
    threads: usize,
    args: &BenchArgs,
) -> Result<SearchFigures, BenchError> {
    let queries = dataset.queries.len();
    let total = queries.max(args.min_searches);
    // Warm up (connections, caches) outside the timing.
    for q in dataset.queries.iter().take(20) {
        target.search(q, k, ef).await?;
    }
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut clients = Vec::new();
    for _ in 0..threads.max(1) {
        let (target, dataset, next) = (target.clone(), dataset.clone(), next.clone());
        clients.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut recall_sum = 0.0;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return Ok::<_, TargetError>((latencies, recall_sum));
                }
                let q = i % queries;
                let t = Instant::now();
                let hits = target.search(&dataset.queries[q], k, ef).await?;
                latencies.push(t.elapsed());
                if i < queries {
                    recall_sum += recall(&hits, &dataset.truth[q], k);
                }
            }
        }));
    }
    let mut latencies = Vec::with_capacity(total);
    let mut recall_sum = 0.0;
    for client in clients {
        let (l, r) = client
            .await
            .map_err(|e| BenchError::Usage(format!("a search client panicked: {e}")))??;
        latencies.extend(l);
        recall_sum += r;
    }
    let elapsed = started.elapsed();
    latencies.sort();
    Ok(SearchFigures {
        recall: recall_sum / queries.max(1) as f64,
        qps: total as f64 / elapsed.as_secs_f64(),
        p50_ms: percentile(&latencies, 0.5),
        p95_ms: percentile(&latencies, 0.95),
        p99_ms: percentile(&latencies, 0.99),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_the_ranked_latency() {
        let sorted: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&sorted, 0.5), 51.0);
        assert_eq!(percentile(&sorted, 0.99), 99.0);
        assert_eq!(percentile(&sorted, 1.0), 100.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }

    #[test]
    fn recall_counts_true_neighbours_among_the_first_k_hits() {
        assert_eq!(recall(&[1, 2, 3], &[3, 2, 9, 8], 2), 0.5);
        assert_eq!(recall(&[2, 3], &[3, 2], 2), 1.0);
        assert_eq!(recall(&[], &[1, 2], 2), 0.0);
    }
}
