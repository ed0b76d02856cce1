//! Point routing, computed identically by PD, gateways and workers: the
//! canonical id of a point is hashed with FNV-1a-64, and the 2^64 hash space is
//! split into `shards` equal contiguous ranges; a point lives in the shard whose
//! range holds its hash. No I/O.

use serde::{Deserialize, Serialize};
use vectron_ids::PointId;

/// Most shards a collection may have.
pub const MAX_SHARDS: u32 = 1024;

const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
/// Size of the hash space, 2^64, which does not fit in a u64.
const HASH_SPACE: u128 = 1 << 64;

/// Why a shard layout is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoutingError {
    /// The shard count is outside 1..=MAX_SHARDS.
    #[error("shards must be between 1 and {MAX_SHARDS}, got {0}")]
    ShardCount(u32),
    /// Stored ranges do not tile the hash space.
    #[error("shard ranges do not cover the hash space contiguously: {0}")]
    NotContiguous(String),
}

/// FNV-1a, 64-bit variant, over `bytes`.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(FNV_OFFSET_BASIS, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(FNV_PRIME)
    })
}

/// The routing hash of a point: FNV-1a-64 of its canonical id bytes.
pub fn point_hash(id: &PointId) -> u64 {
    match id {
        PointId::Num(n) => fnv1a64(n.to_string().as_bytes()),
        PointId::Str(s) => fnv1a64(s.as_bytes()),
    }
}

/// An inclusive range `[start, end]` of routing hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HashRange {
    /// First hash in the range.
    pub start: u64,
    /// Last hash in the range (inclusive, so the last range ends at u64::MAX).
    pub end: u64,
}

impl HashRange {
    /// Whether `hash` falls in this range.
    pub fn contains(&self, hash: u64) -> bool {
        self.start <= hash && hash <= self.end
    }
}

fn check_shard_count(shards: u32) -> Result<(), RoutingError> {
    if (1..=MAX_SHARDS).contains(&shards) {
        Ok(())
    } else {
        Err(RoutingError::ShardCount(shards))
    }
}

/// Splits the hash space into `shards` contiguous ranges whose sizes differ by
/// at most one: the first `2^64 mod shards` ranges are one hash larger.
pub fn split_hash_space(shards: u32) -> Result<Vec<HashRange>, RoutingError> {
    check_shard_count(shards)?;
    let n = u128::from(shards);
    let (base, larger) = (HASH_SPACE / n, HASH_SPACE % n);
    let mut start: u128 = 0;
    let ranges = (0..n)
        .map(|i| {
            let size = base + u128::from(i < larger);
            let range = HashRange {
                start: start as u64,
                end: (start + size - 1) as u64,
            };
            start += size;
            range
        })
        .collect();
    Ok(ranges)
}

/// The index of the shard holding `hash` under [`split_hash_space`], computed
/// without materialising the ranges.
pub fn shard_index(hash: u64, shards: u32) -> Result<u32, RoutingError> {
    check_shard_count(shards)?;
    let n = u128::from(shards);
    let (base, larger) = (HASH_SPACE / n, HASH_SPACE % n);
    let hash = u128::from(hash);
    let larger_span = larger * (base + 1);
    let index = if hash < larger_span {
        hash / (base + 1)
    } else {
        larger + (hash - larger_span) / base
    };
    Ok(index as u32)
}

/// Looks up shards in a stored list of ranges (as PD keeps them), checking once
/// that they tile the hash space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardMap {
    ranges: Vec<HashRange>,
}

impl ShardMap {
    /// Validates that `ranges` are sorted, contiguous and cover `0..=u64::MAX`.
    pub fn new(ranges: Vec<HashRange>) -> Result<Self, RoutingError> {
        let first = ranges
            .first()
            .ok_or_else(|| RoutingError::NotContiguous("no ranges".into()))?;
        if first.start != 0 {
            return Err(RoutingError::NotContiguous(format!(
                "first range starts at {}",
                first.start
            )));
        }
        for (i, pair) in ranges.windows(2).enumerate() {
            let (a, b) = (pair[0], pair[1]);
            if a.start > a.end || a.end.checked_add(1) != Some(b.start) {
                return Err(RoutingError::NotContiguous(format!(
                    "range {i} [{}, {}] is not followed by a range starting at {}",
                    a.start,
                    a.end,
                    u128::from(a.end) + 1
                )));
            }
        }
        let last = ranges[ranges.len() - 1];
        if last.start > last.end || last.end != u64::MAX {
            return Err(RoutingError::NotContiguous(format!(
                "last range ends at {}",
                last.end
            )));
        }
        Ok(Self { ranges })
    }

    /// The even split of [`split_hash_space`].
    pub fn even(shards: u32) -> Result<Self, RoutingError> {
        Self::new(split_hash_space(shards)?)
    }

    /// The ranges, in order.
    pub fn ranges(&self) -> &[HashRange] {
        &self.ranges
    }

    /// Index of the range holding `hash`.
    pub fn index_of_hash(&self, hash: u64) -> usize {
        // Ranges tile the space, so the holder is the last range starting at
        // or before the hash.
        self.ranges.partition_point(|r| r.start <= hash) - 1
    }

    /// Index of the shard holding the point.
    pub fn index_of_point(&self, id: &PointId) -> usize {
        self.index_of_hash(point_hash(id))
    }
}

#[cfg(test)]
mod tests;
