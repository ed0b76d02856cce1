//! The point id of every stored row of a shard, kept in memory so a search
//! hit costs no RocksDB read unless its vector or payload is asked for.
//!
//! Consistency contract: only the state machine changes it, and only while
//! it holds the shard index's write lock (lock order: index, then ids). A
//! reader that holds the index's read lock therefore sees the ids of exactly
//! the rows the index returns. No I/O.

use std::collections::HashMap;
use std::sync::{RwLock, RwLockWriteGuard};

use vectron_proto::common::v1 as common;

/// Row → point id of one shard.
#[derive(Debug, Default)]
pub struct RowIds {
    ids: RwLock<HashMap<u64, common::PointId>>,
}

impl RowIds {
    /// The ids of `rows`.
    pub fn from_rows(rows: impl IntoIterator<Item = (u64, common::PointId)>) -> Self {
        Self {
            ids: RwLock::new(rows.into_iter().collect()),
        }
    }

    /// Write access; the caller holds the index's write lock.
    pub fn write(&self) -> RwLockWriteGuard<'_, HashMap<u64, common::PointId>> {
        self.ids.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Replaces every id (a snapshot was installed).
    pub fn replace(&self, rows: impl IntoIterator<Item = (u64, common::PointId)>) {
        *self.write() = rows.into_iter().collect();
    }

    /// The ids of `rows`, in order; `None` for a row not held.
    pub fn ids_of(&self, rows: impl IntoIterator<Item = u64>) -> Vec<Option<common::PointId>> {
        let ids = self.ids.read().unwrap_or_else(|p| p.into_inner());
        rows.into_iter().map(|row| ids.get(&row).cloned()).collect()
    }

    /// Rows held.
    pub fn len(&self) -> usize {
        self.ids.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether no row is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::point_id::Kind;

    fn id(n: u64) -> common::PointId {
        common::PointId {
            kind: Some(Kind::Num(n)),
        }
    }

    #[test]
    fn answers_the_id_of_each_row_held_and_none_for_others() {
        let ids = RowIds::from_rows([(10, id(1)), (11, id(2))]);
        assert_eq!(
            ids.ids_of([11, 12, 10]),
            vec![Some(id(2)), None, Some(id(1))]
        );
        ids.write().remove(&10);
        ids.write().insert(12, id(3));
        assert_eq!(ids.ids_of([10, 12]), vec![None, Some(id(3))]);
        ids.replace([(1, id(9))]);
        assert_eq!(ids.len(), 1);
        assert_eq!(ids.ids_of([12, 1]), vec![None, Some(id(9))]);
    }
}
