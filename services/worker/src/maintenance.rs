//! Background upkeep of one replica's index, off the request path: builds
//! points the write path only stored into their segment's graph (every few
//! milliseconds, in chunks, without the index lock; see [`build_pending`]),
//! rebuilds
//! the segment with the most deletes once its deleted fraction passes a
//! threshold (holding the index lock only to copy and to swap), refreshes
//! the searchable copy of each segment's graph once enough points were
//! inserted past it (copied with no lock held, swapped in briefly), and dumps
//! segments to disk so a restart loads graphs instead of rebuilding them.
//! Sealed segments are dumped once; the appendable segment is re-dumped each
//! time its graph has grown by a set number of points. Graphs change only
//! under the index's build gate (or before an index is shared), so a dump
//! holds the gate and no index lock while it writes.

use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use tracing::{info, warn};

use crate::index::ShardIndex;
use crate::index::disk::{DiskError, IndexDir, SegmentImage};

/// When upkeep acts.
#[derive(Debug, Clone, Copy)]
pub struct MaintenanceConfig {
    /// Rebuild a segment once more than this fraction of it is deleted.
    pub rebuild_threshold: f64,
    /// Re-dump the appendable segment after it grew by this many points.
    pub dump_growth: usize,
    /// Refresh a segment's searchable graph copy once this many points were
    /// inserted past it (they are scanned exactly until then).
    pub freeze_growth: usize,
    /// Pause between rounds.
    pub interval: Duration,
    /// Pause between checks for points waiting to be built into a graph.
    pub build_interval: Duration,
    /// Points built into a graph at a time; the searchable copy is
    /// refreshed after each chunk.
    pub build_chunk: usize,
}

impl Default for MaintenanceConfig {
    fn default() -> Self {
        Self {
            rebuild_threshold: 0.2,
            dump_growth: 10_000,
            freeze_growth: 256,
            interval: Duration::from_secs(1),
            build_interval: Duration::from_millis(20),
            build_chunk: BUILD_CHUNK,
        }
    }
}

/// Points built into a graph at a time by default.
pub const BUILD_CHUNK: usize = 4_096;

/// Points a shard may hold unbuilt (scanned exactly by every search) before
/// writes wait for the builder: the worker holds new upserts back (never
/// the apply, which strong reads wait for) until the builder catches up, so
/// ingest slows to the graph's build rate instead of searches slowing
/// without bound.
pub const MAX_UNBUILT: usize = 16_384;

/// The hard bound, enforced by the apply itself (building there, which
/// strong reads then wait for), when writes already admitted overshoot
/// [`MAX_UNBUILT`].
pub const HARD_MAX_UNBUILT: usize = 4 * MAX_UNBUILT;

/// Builds stored points into their segments' graphs, `chunk` at a time,
/// until at most `leave` remain unbuilt, refreshing each segment's
/// searchable copy after each chunk. Holds the index's build gate
/// throughout (one builder at a time), the index lock only to copy a chunk
/// out and to record it: searches and applies go on meanwhile. Returns the
/// points built. Blocking; call off the async threads.
pub fn build_pending(index: &RwLock<ShardIndex>, chunk: usize, leave: usize) -> usize {
    with_build_gate(index, || {
        let mut built = 0;
        loop {
            let plan = {
                let guard = read(index);
                if guard.unbuilt() <= leave {
                    break;
                }
                guard.build_plan(chunk)
            };
            let Some((position, plan)) = plan else {
                break;
            };
            let points = plan.len();
            let range = plan.run();
            if !write(index).install_built(position, range) {
                // The segment was rebuilt or the index replaced meanwhile.
                break;
            }
            built += points;
            refresh_frozen(index, 1);
        }
        built
    })
}

/// Runs `work` holding the build gate of the index as it is once the gate
/// is held (a snapshot may replace the whole index, and its gate, while
/// this waits).
fn with_build_gate<T>(index: &RwLock<ShardIndex>, work: impl FnOnce() -> T) -> T {
    loop {
        let gate = read(index).build_gate();
        let _held = gate.lock().unwrap_or_else(|p| p.into_inner());
        if Arc::ptr_eq(&gate, &read(index).build_gate()) {
            return work();
        }
    }
}

/// What one round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RoundReport {
    /// Segments rebuilt.
    pub rebuilt: usize,
    /// Segments dumped.
    pub dumped: usize,
    /// Searchable graph copies refreshed.
    pub frozen: usize,
    /// Points built into a graph.
    pub built: usize,
}

fn read(index: &RwLock<ShardIndex>) -> RwLockReadGuard<'_, ShardIndex> {
    index.read().unwrap_or_else(|p| p.into_inner())
}

fn write(index: &RwLock<ShardIndex>) -> RwLockWriteGuard<'_, ShardIndex> {
    index.write().unwrap_or_else(|p| p.into_inner())
}

/// Rebuilds at most one segment, then dumps whatever needs dumping and
/// records the dumps in the manifest. Blocking; call off the async threads.
pub fn run_round(
    shard_id: u64,
    index: &RwLock<ShardIndex>,
    dir: &IndexDir,
    config: &MaintenanceConfig,
) -> Result<RoundReport, DiskError> {
    let mut report = RoundReport {
        built: build_pending(index, config.build_chunk, 0),
        ..RoundReport::default()
    };
    let plan = write(index).plan_rebuild(config.rebuild_threshold);
    if let Some(plan) = plan {
        let started = Instant::now();
        let points = plan.len();
        // Built without the lock; installing checks it is still current.
        let rebuilt = plan.build();
        if write(index).install_rebuilt(rebuilt) {
            report.rebuilt += 1;
            info!(
                shard = shard_id,
                points,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "rebuilt an index segment with many deletes"
            );
        }
    }
    report.frozen = refresh_frozen(index, config.freeze_growth);
    // Graphs stand still while they are dumped.
    report.dumped = with_build_gate(index, || -> Result<usize, DiskError> {
        let mut dumped = 0;
        let mut position = 0;
        loop {
            let guard = read(index);
            let Some(segment) = guard.segments().get(position) else {
                break;
            };
            let grown = segment.built() - segment.dumped_len().min(segment.built());
            // Under the build gate no graph changes, so the image is
            // written with no index lock held: applies and searches go on.
            let image = if (segment.is_sealed() && grown > 0)
                || (!segment.is_sealed() && grown >= config.dump_growth)
            {
                let image = SegmentImage::of(segment);
                drop(guard);
                dir.dump(&image)?;
                Some(image)
            } else {
                drop(guard);
                None
            };
            if let Some(image) = image {
                let mut guard = write(index);
                if let Some(segment) = guard.segment_mut(position)
                    && segment.id() == image.id()
                {
                    segment.set_dumped_len(image.len());
                    dumped += 1;
                }
            }
            position += 1;
        }
        Ok(dumped)
    })?;
    if report.dumped > 0 || report.rebuilt > 0 {
        let names: Vec<String> = read(index)
            .segments()
            .iter()
            .filter(|s| s.dumped_len() > 0)
            .map(|s| SegmentImage::name_of(s.id(), s.dumped_len()))
            .collect();
        dir.commit(&names)?;
    }
    Ok(report)
}

/// Refreshes the searchable graph copy of every segment with at least
/// `growth` points past it; returns how many were refreshed.
fn refresh_frozen(index: &RwLock<ShardIndex>, growth: usize) -> usize {
    let mut refreshed = 0;
    let mut position = 0;
    loop {
        let plan = {
            let guard = read(index);
            let Some(segment) = guard.segments().get(position) else {
                break;
            };
            if segment.unfrozen() >= growth.max(1) {
                segment.freeze_plan()
            } else {
                None
            }
        };
        if let Some(plan) = plan {
            let copy = plan.copy();
            if let Some(segment) = write(index).segment_mut(position)
                && segment.install_frozen(copy)
            {
                refreshed += 1;
            }
        }
        position += 1;
    }
    refreshed
}

/// Builds pending points every `config.build_interval` and runs full rounds
/// every `config.interval`, until the task is aborted.
pub fn spawn(
    shard_id: u64,
    index: Arc<RwLock<ShardIndex>>,
    dir: IndexDir,
    config: MaintenanceConfig,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(config.build_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_round = tokio::time::Instant::now();
        loop {
            tick.tick().await;
            if last_round.elapsed() < config.interval {
                let pending = read(&index).unbuilt() > 0;
                if pending {
                    let index = index.clone();
                    let build = tokio::task::spawn_blocking(move || {
                        build_pending(&index, config.build_chunk, 0)
                    })
                    .await;
                    if let Err(e) = build {
                        warn!(shard = shard_id, error = %e, "index build panicked");
                    }
                }
                continue;
            }
            last_round = tokio::time::Instant::now();
            let (index, dir) = (index.clone(), dir.clone());
            let round =
                tokio::task::spawn_blocking(move || run_round(shard_id, &index, &dir, &config))
                    .await;
            match round {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => warn!(shard = shard_id, error = %e, "index upkeep failed"),
                Err(e) => warn!(shard = shard_id, error = %e, "index upkeep panicked"),
            }
        }
    })
}
