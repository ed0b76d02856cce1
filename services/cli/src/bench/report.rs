//! The report of one `vectron bench` run: a plain-text table (load and
//! search rows per target) and the same figures as JSON. No I/O.

use serde::Serialize;

use super::measure::{LoadFigures, SearchFigures};

#[derive(Debug, Serialize)]
struct LoadRow {
    target: String,
    #[serde(flatten)]
    figures: LoadFigures,
}

#[derive(Debug, Serialize)]
struct SearchRow {
    target: String,
    ef: usize,
    threads: usize,
    #[serde(flatten)]
    figures: SearchFigures,
}

/// Every figure of a run.
#[derive(Debug, Serialize)]
pub struct Report {
    dataset: String,
    k: usize,
    m: usize,
    ef_construction: usize,
    loads: Vec<LoadRow>,
    searches: Vec<SearchRow>,
}

impl Report {
    /// An empty report for a dataset and parameters.
    pub fn new(dataset: &str, k: usize, m: usize, ef_construction: usize) -> Self {
        Self {
            dataset: dataset.to_string(),
            k,
            m,
            ef_construction,
            loads: Vec::new(),
            searches: Vec::new(),
        }
    }

    /// Records a load.
    pub fn load(&mut self, target: &str, figures: LoadFigures) {
        self.loads.push(LoadRow {
            target: target.to_string(),
            figures,
        });
    }

    /// Records a search sweep point.
    pub fn search(&mut self, target: &str, ef: usize, threads: usize, figures: SearchFigures) {
        self.searches.push(SearchRow {
            target: target.to_string(),
            ef,
            threads,
            figures,
        });
    }

    /// The figures as a table.
    pub fn table(&self) -> String {
        let width = self
            .loads
            .iter()
            .map(|r| r.target.len())
            .chain(self.searches.iter().map(|r| r.target.len()))
            .max()
            .unwrap_or(6)
            .max(6);
        let mut out = format!(
            "dataset: {}; k {}, m {}, ef_construction {}\n\n",
            self.dataset, self.k, self.m, self.ef_construction
        );
        out += &format!(
            "{:<width$}  {:>10}  {:>10}  {:>10}  {:>13}  {:>12}\n",
            "load", "points/s", "indexed/s", "probes", "probe p99 ms", "probe max ms"
        );
        for row in &self.loads {
            let f = &row.figures;
            out += &format!(
                "{:<width$}  {:>10.0}  {:>10.0}  {:>10}  {:>13.2}  {:>12.2}\n",
                row.target,
                f.points_per_s,
                f.indexed_points_per_s,
                f.probe_searches,
                f.probe_p99_ms,
                f.probe_max_ms
            );
        }
        out += &format!(
            "\n{:<width$}  {:>5}  {:>7}  {:>9}  {:>9}  {:>8}  {:>8}  {:>8}\n",
            "search", "ef", "threads", "recall@k", "QPS", "p50 ms", "p95 ms", "p99 ms"
        );
        for row in &self.searches {
            let f = &row.figures;
            out += &format!(
                "{:<width$}  {:>5}  {:>7}  {:>9.3}  {:>9.0}  {:>8.3}  {:>8.3}  {:>8.3}\n",
                row.target, row.ef, row.threads, f.recall, f.qps, f.p50_ms, f.p95_ms, f.p99_ms
            );
        }
        out
    }

    /// The figures as JSON.
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_and_the_json_carry_every_row() {
        let mut report = Report::new("toy", 10, 16, 200);
        report.load(
            "hnsw-rs",
            LoadFigures {
                points: 100,
                points_per_s: 1234.0,
                indexed_points_per_s: 987.0,
                probe_searches: 3,
                probe_p99_ms: 1.5,
                probe_max_ms: 2.5,
            },
        );
        report.search(
            "hnsw-rs",
            64,
            2,
            SearchFigures {
                recall: 0.987,
                qps: 4321.0,
                p50_ms: 0.4,
                p95_ms: 0.6,
                p99_ms: 0.9,
            },
        );
        let table = report.table();
        assert!(table.contains("1234") && table.contains("987"), "{table}");
        assert!(table.contains("0.987") && table.contains("4321"), "{table}");
        let json: serde_json::Value = serde_json::from_str(&report.json()).expect("JSON");
        assert_eq!(json["searches"][0]["ef"], 64);
        assert_eq!(json["loads"][0]["points_per_s"], 1234.0);
    }
}
