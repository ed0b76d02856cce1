//! Segment dumps on disk, so a restarted worker loads its graphs instead of
//! rebuilding them. Each shard has a directory holding one directory per
//! dumped segment (`seg-<id>-<points>/`: the graph file (see
//! [`super::graph_file`]), the key of every offset and a small JSON
//! description) and a `manifest.json`
//! naming the dumps that make up the index, oldest first. Every file is
//! fsynced and renamed into place, and the manifest is replaced last, so a
//! crash leaves either the old or the new set.
//!
//! A dump never needs to record deletes: rows are immutable (a row names one
//! committed log entry), so on load each offset is live exactly when RocksDB
//! still holds its row, and rows missing from every dump are inserted anew
//! (see [`super::ShardIndex::restore`]). A dump holds a segment's built
//! points only (those in its graph); whoever dumps holds the index's build
//! gate so no builder adds to the graph while it is written, and a graph
//! whose point count differs from its description is refused on load. Any
//! problem with a dump (including one of an older format, such as the
//! hnsw_rs files of format 1) is reported and the caller rebuilds from
//! RocksDB.
//! Does file I/O.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::graph_file;
use super::segment::{Graph, HnswParams, Segment, walk_distance};
use crate::distance::Metric;

/// On-disk format version of a segment dump and of the manifest. Format 1
/// held hnsw_rs's files; 2 holds Vectron's own graph file.
const FORMAT: u32 = 2;
const MANIFEST: &str = "manifest.json";
const META: &str = "segment.json";
const KEYS: &str = "keys.bin";
const GRAPH: &str = "graph.bin";

/// Why a dump could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// A dump is not what this worker expects.
    #[error("{path}: {message}")]
    Invalid {
        /// The file or directory.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DiskError + '_ {
    move |source| DiskError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn invalid(path: &Path, message: impl Into<String>) -> DiskError {
    DiskError::Invalid {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// The description stored next to a dumped graph.
#[derive(Debug, Serialize, Deserialize)]
struct SegmentMeta {
    format: u32,
    id: u64,
    metric: Metric,
    m: usize,
    ef_construction: usize,
    max_norm: f32,
    points: usize,
    sealed: bool,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Manifest {
    format: u32,
    segments: Vec<String>,
}

/// What a dump needs from a segment, taken while the index is locked: its
/// built points' keys and the shared graph. The graph changes only under
/// the index's build gate, so whoever dumps holds the gate until the dump
/// is written and needs no index lock meanwhile.
pub struct SegmentImage {
    meta: SegmentMeta,
    graph: Arc<Graph>,
    keys: Vec<u64>,
}

impl SegmentImage {
    /// Captures `segment` as it is now.
    pub fn of(segment: &Segment) -> Self {
        let params = segment.params();
        Self {
            meta: SegmentMeta {
                format: FORMAT,
                id: segment.id(),
                metric: segment.metric(),
                m: params.m,
                ef_construction: params.ef_construction,
                max_norm: segment.max_norm(),
                points: segment.built(),
                sealed: segment.is_sealed(),
            },
            graph: segment.graph(),
            keys: segment.keys()[..segment.built()].to_vec(),
        }
    }

    /// The dump directory's name.
    pub fn name(&self) -> String {
        Self::name_of(self.meta.id, self.meta.points)
    }

    /// The dump directory name of segment `id` holding `points` points.
    pub fn name_of(id: u64, points: usize) -> String {
        format!("seg-{id}-{points}")
    }

    /// The segment the image is of.
    pub fn id(&self) -> u64 {
        self.meta.id
    }

    /// Points in the image.
    pub fn len(&self) -> usize {
        self.meta.points
    }

    /// Whether the image holds no point.
    pub fn is_empty(&self) -> bool {
        self.meta.points == 0
    }
}

/// One shard's dump directory.
#[derive(Debug, Clone)]
pub struct IndexDir {
    root: PathBuf,
}

fn sync_file(path: &Path) -> Result<(), DiskError> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(io(path))
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), DiskError> {
    let mut file = File::create(path).map_err(io(path))?;
    file.write_all(bytes).map_err(io(path))?;
    file.sync_all().map_err(io(path))
}

fn dump_graph(graph: &Graph, points: usize, dir: &Path) -> Result<(), DiskError> {
    let path = dir.join(GRAPH);
    let file = File::create(&path).map_err(io(&path))?;
    graph_file::write(graph, points, &file).map_err(io(&path))?;
    file.sync_all().map_err(io(&path))
}

fn load_graph(dir: &Path, meta: &SegmentMeta, params: HnswParams) -> Result<Graph, DiskError> {
    let path = dir.join(GRAPH);
    let bytes = fs::read(&path).map_err(io(&path))?;
    let graph = graph_file::read(&bytes, walk_distance(meta.metric), params, meta.id)
        .map_err(|message| invalid(&path, message))?;
    if graph.len() != meta.points {
        return Err(invalid(
            &path,
            format!(
                "graph holds {} points, description says {}",
                graph.len(),
                meta.points
            ),
        ));
    }
    Ok(graph)
}

impl IndexDir {
    /// The dump directory at `root` (created on first dump).
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }

    /// Where the dumps live.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Writes `image` as `<root>/<image.name()>`, fsynced; returns the name.
    pub fn dump(&self, image: &SegmentImage) -> Result<String, DiskError> {
        fs::create_dir_all(&self.root).map_err(io(&self.root))?;
        let name = image.name();
        let staging = self.root.join(format!("tmp-{name}"));
        let target = self.root.join(&name);
        if staging.exists() {
            fs::remove_dir_all(&staging).map_err(io(&staging))?;
        }
        fs::create_dir_all(&staging).map_err(io(&staging))?;
        dump_graph(&image.graph, image.meta.points, &staging)?;
        let keys: Vec<u8> = image.keys.iter().flat_map(|k| k.to_le_bytes()).collect();
        write_synced(&staging.join(KEYS), &keys)?;
        // Half a dump on disk, not yet renamed into place.
        vectron_raft::crash_point!("worker::index::dump_segment");
        let meta = serde_json::to_vec(&image.meta)
            .map_err(|e| invalid(&staging, format!("cannot encode description: {e}")))?;
        write_synced(&staging.join(META), &meta)?;
        if target.exists() {
            fs::remove_dir_all(&target).map_err(io(&target))?;
        }
        fs::rename(&staging, &target).map_err(io(&target))?;
        sync_file(&self.root)?;
        Ok(name)
    }

    /// Makes `names` (oldest first) the index's dumps and deletes every other
    /// dump directory.
    pub fn commit(&self, names: &[String]) -> Result<(), DiskError> {
        fs::create_dir_all(&self.root).map_err(io(&self.root))?;
        let manifest = Manifest {
            format: FORMAT,
            segments: names.to_vec(),
        };
        let bytes = serde_json::to_vec(&manifest)
            .map_err(|e| invalid(&self.root, format!("cannot encode manifest: {e}")))?;
        let staging = self.root.join(format!("{MANIFEST}.tmp"));
        write_synced(&staging, &bytes)?;
        // The new manifest written, the old one still in place.
        vectron_raft::crash_point!("worker::index::manifest");
        let target = self.root.join(MANIFEST);
        fs::rename(&staging, &target).map_err(io(&target))?;
        sync_file(&self.root)?;
        for entry in fs::read_dir(&self.root).map_err(io(&self.root))? {
            let path = entry.map_err(io(&self.root))?.path();
            let listed = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| names.iter().any(|listed| listed == n));
            if path.is_dir() && !listed {
                fs::remove_dir_all(&path).map_err(io(&path))?;
            }
        }
        Ok(())
    }

    /// Loads the dumps the manifest names, oldest first, each with every
    /// offset marked deleted until the stored points revive them. No
    /// manifest means no dumps. Dumps made for another metric or other HNSW
    /// parameters are an error.
    pub fn load(&self, metric: Metric, params: HnswParams) -> Result<Vec<Segment>, DiskError> {
        let manifest_path = self.root.join(MANIFEST);
        let manifest: Manifest = match fs::read(&manifest_path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| invalid(&manifest_path, format!("unreadable manifest: {e}")))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(&manifest_path)(e)),
        };
        if manifest.format != FORMAT {
            return Err(invalid(
                &manifest_path,
                format!("format {} (expected {FORMAT})", manifest.format),
            ));
        }
        manifest
            .segments
            .iter()
            .map(|name| self.load_segment(&self.root.join(name), metric, params))
            .collect()
    }

    fn load_segment(
        &self,
        dir: &Path,
        metric: Metric,
        params: HnswParams,
    ) -> Result<Segment, DiskError> {
        let meta_path = dir.join(META);
        let bytes = fs::read(&meta_path).map_err(io(&meta_path))?;
        let meta: SegmentMeta = serde_json::from_slice(&bytes)
            .map_err(|e| invalid(&meta_path, format!("unreadable description: {e}")))?;
        if meta.format != FORMAT
            || meta.metric != metric
            || meta.m != params.m
            || meta.ef_construction != params.ef_construction
        {
            return Err(invalid(
                &meta_path,
                format!("dump is {meta:?}, the shard wants {metric:?} with {params:?}"),
            ));
        }
        let keys_path = dir.join(KEYS);
        let raw = fs::read(&keys_path).map_err(io(&keys_path))?;
        if raw.len() != meta.points * 8 {
            return Err(invalid(
                &keys_path,
                format!("{} bytes for {} points", raw.len(), meta.points),
            ));
        }
        let keys = raw
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
            .collect();
        let graph = load_graph(dir, &meta, params)?;
        Ok(Segment::from_loaded(
            meta.id,
            metric,
            params,
            graph,
            keys,
            meta.max_norm,
            meta.sealed,
        ))
    }

    /// Deletes every dump of the shard.
    pub fn remove(&self) -> Result<(), DiskError> {
        match fs::remove_dir_all(&self.root) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(&self.root)(e)),
        }
    }
}
