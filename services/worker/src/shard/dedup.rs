//! The shard's table of recently applied client requests, which makes writes
//! exactly-once: a gateway that times out (or loses the leader) retries with
//! the same request id, and when the first proposal did commit the retry is
//! answered from this table instead of being applied a second time — so a
//! timed-out write can never land again after a later acknowledged one.
//!
//! The table is replicated state: every replica records the same ids at the
//! same log indexes, in the same RocksDB batch as the entry's data, so it
//! survives restarts, and it travels inside shard snapshots. It is bounded by
//! count: past [`MAX_REMEMBERED`] ids the oldest (by log index) are forgotten,
//! identically on every replica. A gateway gives up on a request long before
//! that many later requests reach one shard. Stored in `shard_meta` under
//! `req/<16-byte id>`. Disk reads on open only; writes go through the caller's
//! batch.

use std::collections::{BTreeSet, HashMap};

use rocksdb::WriteBatch;
use serde::{Deserialize, Serialize};

use super::command::{RequestId, ShardResponse};
use crate::storage::{ShardStore, StorageError};

/// Most request ids a shard remembers.
pub const MAX_REMEMBERED: usize = 100_000;

const KEY_PREFIX: &[u8] = b"req/";

/// What the shard answered a request, and at which log index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recorded {
    /// The log index of the entry that applied the request.
    pub log_index: u64,
    /// The answer.
    pub response: ShardResponse,
}

/// Applied request ids of one shard (see the module).
#[derive(Debug)]
pub struct DedupTable {
    limit: usize,
    by_id: HashMap<RequestId, Recorded>,
    by_age: BTreeSet<(u64, RequestId)>,
}

impl Default for DedupTable {
    fn default() -> Self {
        Self::with_limit(MAX_REMEMBERED)
    }
}

fn key(id: RequestId) -> Vec<u8> {
    let mut key = KEY_PREFIX.to_vec();
    key.extend_from_slice(&id.to_wire());
    key
}

impl DedupTable {
    /// An empty table remembering at most `limit` ids. Every replica of a
    /// shard must use the same limit ([`MAX_REMEMBERED`]; others are for
    /// tests).
    pub fn with_limit(limit: usize) -> Self {
        Self {
            limit,
            by_id: HashMap::new(),
            by_age: BTreeSet::new(),
        }
    }

    /// The table as stored for `store`'s shard.
    pub fn load(store: &ShardStore) -> Result<Self, StorageError> {
        Self::load_with_limit(store, MAX_REMEMBERED)
    }

    /// [`DedupTable::load`] with another limit.
    pub fn load_with_limit(store: &ShardStore, limit: usize) -> Result<Self, StorageError> {
        let mut table = Self::with_limit(limit);
        for (name, value) in store.meta_with_prefix(KEY_PREFIX)? {
            let corrupt = |reason: String| StorageError::Corrupt {
                what: "request record",
                shard: store.shard_id(),
                reason,
            };
            let id = RequestId::from_wire(&name)
                .map_err(corrupt)?
                .ok_or_else(|| corrupt("empty request id".into()))?;
            let recorded: Recorded =
                serde_json::from_slice(&value).map_err(|e| corrupt(e.to_string()))?;
            table.insert(id, recorded);
        }
        Ok(table)
    }

    /// Ids remembered.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether no id is remembered.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// The first answer to `id`, if it was applied and is still remembered.
    pub fn answer(&self, id: RequestId) -> Option<&ShardResponse> {
        self.by_id.get(&id).map(|r| &r.response)
    }

    fn insert(&mut self, id: RequestId, recorded: Recorded) {
        if let Some(old) = self.by_id.insert(id, recorded.clone()) {
            self.by_age.remove(&(old.log_index, id));
        }
        self.by_age.insert((recorded.log_index, id));
    }

    /// Records that `id` was applied at `log_index` with `response`: staged
    /// into `batch` with the eviction of the oldest ids past the bound, and
    /// applied to the table (call once the caller commits to writing
    /// `batch`).
    pub fn record(
        &mut self,
        store: &ShardStore,
        batch: &mut WriteBatch,
        id: RequestId,
        log_index: u64,
        response: ShardResponse,
    ) {
        let recorded = Recorded {
            log_index,
            response,
        };
        let value = serde_json::to_vec(&recorded).expect("request records always serialise");
        store.put_meta(batch, key(id), &value);
        self.insert(id, recorded);
        while self.by_id.len() > self.limit {
            let Some((_, oldest)) = self.by_age.pop_first() else {
                break;
            };
            self.by_id.remove(&oldest);
            store.delete_meta(batch, &key(oldest));
        }
    }

    /// Every remembered id with its record, oldest first (for snapshots).
    pub fn entries(&self) -> Vec<(RequestId, Recorded)> {
        self.by_age
            .iter()
            .filter_map(|(_, id)| self.by_id.get(id).map(|r| (*id, r.clone())))
            .collect()
    }

    /// Replaces the table with `entries` (from a snapshot), staging their
    /// writes into `batch`; the caller has already staged the removal of
    /// every old key of the shard.
    pub fn replace(
        &mut self,
        store: &ShardStore,
        batch: &mut WriteBatch,
        entries: Vec<(RequestId, Recorded)>,
    ) {
        *self = Self::with_limit(self.limit);
        for (id, recorded) in entries {
            self.record(store, batch, id, recorded.log_index, recorded.response);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_ids_are_forgotten_past_the_limit_on_disk_too() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = vectron_raft::open_db(dir.path(), crate::storage::DATA_CFS).expect("rocksdb");
        let store = ShardStore::new(db, 7);
        let mut table = DedupTable::with_limit(3);
        for index in 1..=5u64 {
            let mut batch = WriteBatch::default();
            table.record(
                &store,
                &mut batch,
                RequestId(u128::from(100 - index)),
                index,
                ShardResponse::Upserted(index),
            );
            store.write(batch).expect("write");
        }
        assert_eq!(table.len(), 3);
        assert_eq!(table.answer(RequestId(99)), None, "index 1 forgotten");
        assert_eq!(table.answer(RequestId(98)), None, "index 2 forgotten");
        assert_eq!(
            table.answer(RequestId(97)),
            Some(&ShardResponse::Upserted(3))
        );
        let reloaded = DedupTable::load_with_limit(&store, 3).expect("load");
        assert_eq!(reloaded.len(), 3, "evictions reached the disk");
        assert_eq!(
            reloaded.entries().first().map(|(id, r)| (*id, r.log_index)),
            Some((RequestId(97), 3)),
            "oldest first"
        );
    }
}
