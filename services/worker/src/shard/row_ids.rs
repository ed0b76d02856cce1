//! What the shard keeps in memory per stored row: the point id, so a search
//! hit costs no RocksDB read unless its vector or payload is asked for, and
//! the row's payload in the shard's [`PayloadIndex`], so a filter is
//! evaluated once per query rather than per candidate.
//!
//! Consistency contract: only the state machine changes it, and only while
//! it holds the shard index's write lock (lock order: index, then rows). A
//! reader that holds the index's read lock therefore sees the ids and
//! payloads of exactly the rows the index returns. No I/O.

use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use vectron_proto::common::v1 as common;

use crate::payload_index::PayloadIndex;

/// One stored row as the in-memory table takes it: row, point id, payload
/// JSON bytes (empty when none).
pub type RowEntry<'a> = (u64, common::PointId, &'a [u8]);

/// The in-memory rows of one shard.
#[derive(Debug, Default)]
pub struct RowTable {
    /// Row → point id.
    pub ids: crate::RowMap<common::PointId>,
    /// The payload of every row, indexed.
    pub payloads: PayloadIndex,
}

impl RowTable {
    /// Records a stored row.
    pub fn insert(&mut self, (row, id, payload): RowEntry<'_>) {
        self.ids.insert(row, id);
        self.payloads.insert(row, payload);
    }

    /// Forgets a row.
    pub fn remove(&mut self, row: u64) {
        self.ids.remove(&row);
        self.payloads.remove(row);
    }

    fn of<'a>(rows: impl IntoIterator<Item = RowEntry<'a>>) -> Self {
        let mut table = Self::default();
        for entry in rows {
            table.insert(entry);
        }
        table
    }
}

/// Row → point id and payload index of one shard.
#[derive(Debug, Default)]
pub struct RowIds {
    table: RwLock<RowTable>,
}

impl RowIds {
    /// The table of `rows`.
    pub fn from_rows<'a>(rows: impl IntoIterator<Item = RowEntry<'a>>) -> Self {
        Self {
            table: RwLock::new(RowTable::of(rows)),
        }
    }

    /// Write access; the caller holds the index's write lock.
    pub fn write(&self) -> RwLockWriteGuard<'_, RowTable> {
        self.table.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Read access (for a search that evaluates a filter while it walks).
    pub fn read(&self) -> RwLockReadGuard<'_, RowTable> {
        self.table.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Replaces every row (a snapshot was installed).
    pub fn replace<'a>(&self, rows: impl IntoIterator<Item = RowEntry<'a>>) {
        *self.write() = RowTable::of(rows);
    }

    /// The ids of `rows`, in order; `None` for a row not held.
    pub fn ids_of(&self, rows: impl IntoIterator<Item = u64>) -> Vec<Option<common::PointId>> {
        let table = self.read();
        rows.into_iter()
            .map(|row| table.ids.get(&row).cloned())
            .collect()
    }

    /// Rows held.
    pub fn len(&self) -> usize {
        self.read().ids.len()
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
        let ids = RowIds::from_rows([(10, id(1), &b""[..]), (11, id(2), br#"{"a":1}"#)]);
        assert_eq!(
            ids.ids_of([11, 12, 10]),
            vec![Some(id(2)), None, Some(id(1))]
        );
        ids.write().remove(10);
        ids.write().insert((12, id(3), br#"{"a":2}"#));
        assert_eq!(ids.ids_of([10, 12]), vec![None, Some(id(3))]);
        assert_eq!(ids.read().payloads.len(), 2);
        ids.replace([(1, id(9), &b""[..])]);
        assert_eq!(ids.len(), 1);
        assert_eq!(ids.ids_of([12, 1]), vec![None, Some(id(9))]);
    }
}
