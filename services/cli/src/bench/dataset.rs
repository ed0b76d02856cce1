//! Benchmark datasets: base vectors, held-out queries and each query's exact
//! nearest base rows. Read from a directory written by
//! `scripts/bench/make_dataset.py` (`base.f32`, `queries.f32`, `truth.u32`,
//! `meta.json`), from TEXMEX `.fvecs` / `.ivecs` files, or generated
//! (uniform random, labelled as such). Ground truth missing from the files is
//! computed exactly. Does file I/O.

use std::path::{Path, PathBuf};

use thiserror::Error;
use vectron_worker::distance::Metric;

/// Why a dataset could not be read.
#[derive(Debug, Error)]
pub enum DatasetError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A file's content does not fit its format.
    #[error("{path}: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// Vectors, queries and ground truth.
pub struct Dataset {
    /// What the data is (shown in reports).
    pub label: String,
    /// The metric the ground truth was computed under.
    pub metric: Metric,
    /// Components per vector.
    pub dimension: usize,
    /// Base vectors, row `i` indexed under id `i`.
    pub base: Vec<Vec<f32>>,
    /// Query vectors.
    pub queries: Vec<Vec<f32>>,
    /// Per query: base rows, best first (at least `k` of them).
    pub truth: Vec<Vec<u32>>,
}

fn read(path: &Path) -> Result<Vec<u8>, DatasetError> {
    std::fs::read(path).map_err(|source| DatasetError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn format_error(path: &Path, reason: impl Into<String>) -> DatasetError {
    DatasetError::Format {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn words(bytes: &[u8]) -> impl Iterator<Item = [u8; 4]> + '_ {
    bytes.chunks_exact(4).map(|c| [c[0], c[1], c[2], c[3]])
}

/// Rows of `dimension` little-endian f32s.
fn raw_f32_rows(path: &Path, dimension: usize) -> Result<Vec<Vec<f32>>, DatasetError> {
    let bytes = read(path)?;
    if dimension == 0 || bytes.len() % (4 * dimension) != 0 {
        return Err(format_error(
            path,
            format!(
                "{} bytes is not a whole number of {dimension}-component rows",
                bytes.len()
            ),
        ));
    }
    let values: Vec<f32> = words(&bytes).map(f32::from_le_bytes).collect();
    Ok(values.chunks(dimension).map(<[f32]>::to_vec).collect())
}

/// Rows of `width` little-endian u32s.
fn raw_u32_rows(path: &Path, width: usize) -> Result<Vec<Vec<u32>>, DatasetError> {
    let bytes = read(path)?;
    if width == 0 || bytes.len() % (4 * width) != 0 {
        return Err(format_error(path, "not a whole number of rows"));
    }
    let values: Vec<u32> = words(&bytes).map(u32::from_le_bytes).collect();
    Ok(values.chunks(width).map(<[u32]>::to_vec).collect())
}

/// TEXMEX vectors: each row is its length (i32) then its components.
fn vecs<T>(path: &Path, decode: fn([u8; 4]) -> T) -> Result<Vec<Vec<T>>, DatasetError> {
    let bytes = read(path)?;
    let mut rows = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let Some(head) = bytes.get(at..at + 4) else {
            return Err(format_error(
                path,
                format!("truncated row header at byte {at}"),
            ));
        };
        let length = i32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        let length = usize::try_from(length)
            .ok()
            .filter(|&l| l > 0 && l <= 65_536)
            .ok_or_else(|| format_error(path, format!("row length {length} at byte {at}")))?;
        let body = bytes
            .get(at + 4..at + 4 + 4 * length)
            .ok_or_else(|| format_error(path, format!("truncated row at byte {at}")))?;
        rows.push(words(body).map(decode).collect());
        at += 4 + 4 * length;
    }
    Ok(rows)
}

#[derive(serde::Deserialize)]
struct Meta {
    dimension: usize,
    metric: String,
    truth_k: usize,
    #[serde(default)]
    model: Option<String>,
}

fn metric_named(name: &str) -> Option<Metric> {
    match name {
        "cosine" => Some(Metric::Cosine),
        "l2" => Some(Metric::L2),
        "dot" => Some(Metric::Dot),
        _ => None,
    }
}

impl Dataset {
    /// A generator-written directory.
    pub fn from_dir(dir: &Path) -> Result<Self, DatasetError> {
        let meta_path = dir.join("meta.json");
        let meta: Meta = serde_json::from_slice(&read(&meta_path)?)
            .map_err(|e| format_error(&meta_path, e.to_string()))?;
        let metric = metric_named(&meta.metric)
            .ok_or_else(|| format_error(&meta_path, format!("unknown metric {:?}", meta.metric)))?;
        let base = raw_f32_rows(&dir.join("base.f32"), meta.dimension)?;
        let queries = raw_f32_rows(&dir.join("queries.f32"), meta.dimension)?;
        let truth_path = dir.join("truth.u32");
        let truth = raw_u32_rows(&truth_path, meta.truth_k)?;
        if truth.len() != queries.len() {
            return Err(format_error(&truth_path, "one row per query expected"));
        }
        Ok(Self {
            label: format!(
                "{} x {} {} ({})",
                base.len(),
                meta.dimension,
                meta.model.as_deref().unwrap_or("embeddings"),
                dir.display()
            ),
            metric,
            dimension: meta.dimension,
            base,
            queries,
            truth,
        })
    }

    /// TEXMEX files; ground truth computed under `metric` when `truth` is
    /// not given.
    pub fn from_fvecs(
        base: &Path,
        queries: &Path,
        truth: Option<&Path>,
        metric: Metric,
        k: usize,
    ) -> Result<Self, DatasetError> {
        let base_rows = vecs(base, f32::from_le_bytes)?;
        let query_rows = vecs(queries, f32::from_le_bytes)?;
        let dimension = base_rows.first().map_or(0, Vec::len);
        if base_rows
            .iter()
            .chain(&query_rows)
            .any(|r| r.len() != dimension)
        {
            return Err(format_error(base, "rows of different lengths"));
        }
        let truth_rows = match truth {
            Some(path) => vecs(path, u32::from_le_bytes)?,
            None => exact_truth(metric, &base_rows, &query_rows, k),
        };
        Ok(Self {
            label: format!("{} x {dimension} ({})", base_rows.len(), base.display()),
            metric,
            dimension,
            base: base_rows,
            queries: query_rows,
            truth: truth_rows,
        })
    }

    /// Uniform random vectors in [-1, 1) (close to the worst case for
    /// HNSW; a second, labelled case only).
    pub fn random(n: usize, dimension: usize, queries: usize, metric: Metric, k: usize) -> Self {
        let mut state = 0x5eed_u64;
        let mut next = move || {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            ((z ^ (z >> 31)) >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
        };
        let mut rows = |count: usize| -> Vec<Vec<f32>> {
            (0..count)
                .map(|_| (0..dimension).map(|_| next()).collect())
                .collect()
        };
        let base = rows(n);
        let query_rows = rows(queries);
        let truth = exact_truth(metric, &base, &query_rows, k);
        Self {
            label: format!("{n} x {dimension} uniform random"),
            metric,
            dimension,
            base,
            queries: query_rows,
            truth,
        }
    }

    /// Keeps the first `n` queries.
    pub fn limit_queries(&mut self, n: usize) {
        self.queries.truncate(n);
        self.truth.truncate(n);
    }
}

/// The `k` nearest base rows of each query, by brute force.
pub fn exact_truth(
    metric: Metric,
    base: &[Vec<f32>],
    queries: &[Vec<f32>],
    k: usize,
) -> Vec<Vec<u32>> {
    let prepared: Vec<Vec<f32>> = base.iter().map(|v| metric.prepare(v)).collect();
    queries
        .iter()
        .map(|q| {
            let q = metric.prepare(q);
            let mut scored: Vec<(f32, u32)> = prepared
                .iter()
                .enumerate()
                .map(|(i, v)| (metric.score(&q, v), i as u32))
                .collect();
            scored.sort_by(|a, b| metric.compare(a.0, b.0).then(a.1.cmp(&b.1)));
            scored.truncate(k);
            scored.into_iter().map(|(_, i)| i).collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fvecs_rows_round_trip_and_damage_is_reported() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("x.fvecs");
        let mut bytes = Vec::new();
        for row in [[1.0f32, 2.0], [3.0, 4.0]] {
            bytes.extend(2i32.to_le_bytes());
            for x in row {
                bytes.extend(x.to_le_bytes());
            }
        }
        std::fs::write(&path, &bytes).expect("write");
        let rows = vecs(&path, f32::from_le_bytes).expect("valid file");
        assert_eq!(rows, vec![vec![1.0, 2.0], vec![3.0, 4.0]]);
        std::fs::write(&path, &bytes[..bytes.len() - 2]).expect("write");
        let error = vecs(&path, f32::from_le_bytes).expect_err("truncated");
        assert!(error.to_string().contains("truncated"), "{error}");
    }

    #[test]
    fn exact_truth_ranks_best_first() {
        let base = vec![vec![0.0, 0.0], vec![5.0, 5.0], vec![1.0, 1.0]];
        let truth = exact_truth(Metric::L2, &base, &[vec![0.9, 0.9]], 2);
        assert_eq!(truth, vec![vec![2, 0]]);
    }
}
