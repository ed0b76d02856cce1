//! openraft's storage conformance suite on a shard replica's RocksDB log
//! store and state machine, each run on a fresh RocksDB.

use openraft::StorageError;
use openraft::testing::{StoreBuilder, Suite};
use tempfile::TempDir;
use vectron_raft::{RocksLogStore, open_db};
use vectron_worker::distance::Metric;
use vectron_worker::index::HnswParams;
use vectron_worker::index::disk::IndexDir;
use vectron_worker::shard::ShardTypeConfig;
use vectron_worker::shard::state_machine::ShardStateMachine;
use vectron_worker::storage::{DATA_CFS, ShardStore};

const SHARD: u64 = 42;

struct RocksBuilder;

impl StoreBuilder<ShardTypeConfig, RocksLogStore<ShardTypeConfig>, ShardStateMachine, TempDir>
    for RocksBuilder
{
    async fn build(
        &self,
    ) -> Result<(TempDir, RocksLogStore<ShardTypeConfig>, ShardStateMachine), StorageError<u64>>
    {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = open_db(dir.path(), DATA_CFS).expect("rocksdb opens");
        let log_store = RocksLogStore::new(db.clone(), SHARD);
        let params = HnswParams {
            m: 16,
            ef_construction: 100,
        };
        let dumps = IndexDir::new(dir.path().join("index"));
        let state_machine =
            ShardStateMachine::open(ShardStore::new(db, SHARD), Metric::L2, params, &dumps)?;
        Ok((dir, log_store, state_machine))
    }
}

#[test]
fn shard_storage_passes_the_openraft_suite() {
    Suite::test_all(RocksBuilder).expect("conformance suite");
}
