//! openraft's storage conformance suite on PD's RocksDB log store and state
//! machine, each run on a fresh RocksDB in a temporary directory.

use openraft::StorageError;
use openraft::testing::{StoreBuilder, Suite};
use tempfile::TempDir;
use vectron_pd::node::PD_GROUP;
use vectron_pd::state_machine::{CF_PD_SNAPSHOT, PdStateMachine};
use vectron_pd::types::PdTypeConfig;
use vectron_raft::{RocksLogStore, open_db};

struct RocksBuilder;

impl StoreBuilder<PdTypeConfig, RocksLogStore<PdTypeConfig>, PdStateMachine, TempDir>
    for RocksBuilder
{
    async fn build(
        &self,
    ) -> Result<(TempDir, RocksLogStore<PdTypeConfig>, PdStateMachine), StorageError<u64>> {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = open_db(dir.path(), &[CF_PD_SNAPSHOT]).expect("rocksdb opens");
        let log_store = RocksLogStore::new(db.clone(), PD_GROUP);
        let state_machine = PdStateMachine::open(db)?;
        Ok((dir, log_store, state_machine))
    }
}

#[test]
fn pd_storage_passes_the_openraft_suite() {
    Suite::test_all(RocksBuilder).expect("conformance suite");
}
