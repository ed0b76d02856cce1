//! Filtered search in `vectron bench --filtered`: every point carries the
//! payload `{"tag": id % 100}`, and a [`TagFilter`] keeps the points whose
//! tag is below a bound, so it matches a known fraction of them (1% through
//! a match condition, 10% and 50% through a range). Recall is measured
//! against the exact nearest neighbours among the matching points. No I/O.

use std::sync::Arc;

use serde_json::{Value, json};
use vectron_proto::common::v1 as common;

use super::dataset::Dataset;
use super::target::{Reply, Target};

/// Distinct tags; point `id` has tag `id % TAGS`.
pub const TAGS: u64 = 100;

/// Points whose tag is below `below` (so `below`% of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TagFilter {
    /// Exclusive upper bound of the tags kept.
    pub below: u64,
}

/// The selectivities the benchmark sweeps.
pub const SWEEP: [TagFilter; 3] = [
    TagFilter { below: 1 },
    TagFilter { below: 10 },
    TagFilter { below: 50 },
];

/// The payload of point `id`.
pub fn tag_payload(id: u64) -> Value {
    json!({ "tag": id % TAGS })
}

impl TagFilter {
    /// The percentage of points kept.
    pub fn percent(self) -> u64 {
        self.below * 100 / TAGS
    }

    /// Whether point `id` passes.
    pub fn accepts(self, id: u64) -> bool {
        id % TAGS < self.below
    }

    /// The filter in the REST API's JSON form.
    pub fn json(self) -> Value {
        if self.below == 1 {
            json!({"must": [{"key": "tag", "match": {"value": 0}}]})
        } else {
            json!({"must": [{"key": "tag", "range": {"lt": self.below}}]})
        }
    }

    /// The filter in the gRPC APIs' form.
    pub fn wire(self) -> common::Filter {
        let condition = if self.below == 1 {
            common::condition::Condition::Match(common::Match {
                kind: Some(common::r#match::Kind::Value(common::MatchValue {
                    value: Some(common::match_value::Value::Integer(0)),
                })),
            })
        } else {
            common::condition::Condition::Range(common::Range {
                lt: Some(self.below as f64),
                ..Default::default()
            })
        };
        common::Filter {
            must: vec![common::Condition {
                key: "tag".into(),
                condition: Some(condition),
            }],
            ..Default::default()
        }
    }
}

/// For each filter, the dataset's queries with their exact `k` nearest
/// neighbours among the points the filter keeps (base rows left empty: the
/// search measurement needs only queries and truth).
pub fn filtered_datasets(dataset: &Dataset, filters: &[TagFilter], k: usize) -> Vec<Dataset> {
    let metric = dataset.metric;
    let prepared: Vec<Vec<f32>> = dataset.base.iter().map(|v| metric.prepare(v)).collect();
    filters
        .iter()
        .map(|&filter| {
            let kept: Vec<(u32, &[f32])> = prepared
                .iter()
                .enumerate()
                .filter(|(i, _)| filter.accepts(*i as u64))
                .map(|(i, v)| (i as u32, v.as_slice()))
                .collect();
            let truth = dataset
                .queries
                .iter()
                .map(|q| {
                    let q = metric.prepare(q);
                    let mut scored: Vec<(f32, u32)> = kept
                        .iter()
                        .map(|(i, v)| (metric.score(&q, v), *i))
                        .collect();
                    let order = |a: &(f32, u32), b: &(f32, u32)| {
                        metric.compare(a.0, b.0).then(a.1.cmp(&b.1))
                    };
                    if scored.len() > k {
                        scored.select_nth_unstable_by(k, order);
                        scored.truncate(k);
                    }
                    scored.sort_by(order);
                    scored.into_iter().map(|(_, i)| i).collect()
                })
                .collect();
            Dataset {
                label: format!("{}, filter {}%", dataset.label, filter.percent()),
                metric,
                dimension: dataset.dimension,
                base: Vec::new(),
                queries: dataset.queries.clone(),
                truth,
            }
        })
        .collect()
}

/// A target whose searches carry a filter.
pub struct FilteredTarget {
    inner: Arc<dyn Target>,
    filter: TagFilter,
}

impl FilteredTarget {
    /// `inner`, searched under `filter`.
    pub fn new(inner: Arc<dyn Target>, filter: TagFilter) -> Self {
        Self { inner, filter }
    }
}

impl Target for FilteredTarget {
    fn name(&self) -> String {
        format!("{}, filter {}%", self.inner.name(), self.filter.percent())
    }

    fn create(&self) -> Reply<'_, ()> {
        self.inner.create()
    }

    fn upsert<'a>(&'a self, points: &'a [(u64, Vec<f32>)]) -> Reply<'a, ()> {
        self.inner.upsert(points)
    }

    fn count(&self) -> Reply<'_, u64> {
        self.inner.count()
    }

    fn search<'a>(&'a self, query: &'a [f32], k: usize, ef: usize) -> Reply<'a, Vec<u64>> {
        self.inner.search_filtered(query, k, ef, self.filter)
    }

    fn drop_collection(&self) -> Reply<'_, ()> {
        self.inner.drop_collection()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vectron_worker::distance::Metric;

    #[test]
    fn filters_keep_their_share_and_truth_respects_them() {
        for filter in SWEEP {
            let kept = (0..10_000u64).filter(|&id| filter.accepts(id)).count();
            assert_eq!(kept as u64, filter.percent() * 100);
        }
        let base: Vec<Vec<f32>> = (0..1_000).map(|i| vec![i as f32, 0.0]).collect();
        let dataset = Dataset {
            label: "line".into(),
            metric: Metric::L2,
            dimension: 2,
            base,
            queries: vec![vec![505.0, 0.0]],
            truth: vec![vec![]],
        };
        let filtered = filtered_datasets(&dataset, &SWEEP, 3);
        // 1%: tag 0 only (ids 0, 100, ...): 500, then 600 and 400.
        assert_eq!(filtered[0].truth[0], vec![500, 600, 400]);
        // 10%: ids ending in 0..=9 within each hundred.
        assert_eq!(filtered[1].truth[0], vec![505, 504, 506]);
        assert!(filtered[2].truth[0].iter().all(|&i| i % 100 < 50));
        assert_eq!(
            filtered[0].label, "line, filter 1%",
            "labels carry the selectivity"
        );
    }
}
