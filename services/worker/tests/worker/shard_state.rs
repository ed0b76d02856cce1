//! The shard state machine on real RocksDB: applies upserts, updates and
//! deletes, survives a reopen (index rebuilt from disk), and moves its points
//! through a snapshot to another replica.

use std::sync::Arc;

use openraft::storage::RaftStateMachine;
use openraft::{Entry, EntryPayload, LeaderId, LogId, RaftSnapshotBuilder};
use vectron_ids::PointId;
use vectron_raft::open_db;
use vectron_worker::distance::Metric;
use vectron_worker::index::HnswParams;
use vectron_worker::shard::ShardTypeConfig;
use vectron_worker::shard::command::{PointRecord, ShardCommand, ShardResponse};
use vectron_worker::shard::state_machine::ShardStateMachine;
use vectron_worker::storage::{DATA_CFS, ShardStore};

const PARAMS: HnswParams = HnswParams {
    m: 16,
    ef_construction: 100,
};

fn entry(index: u64, command: ShardCommand) -> Entry<ShardTypeConfig> {
    Entry {
        log_id: LogId::new(LeaderId::new(1, 1), index),
        payload: EntryPayload::Normal(command),
    }
}

fn point(id: u64, x: f32) -> PointRecord {
    PointRecord {
        id: PointId::Num(id),
        vector: vec![x, 0.0, 0.0, 0.0],
        payload: format!(r#"{{"even": {}}}"#, id.is_multiple_of(2)).into_bytes(),
    }
}

fn open(db: &Arc<rocksdb::DB>, shard: u64) -> ShardStateMachine {
    ShardStateMachine::open(ShardStore::new(db.clone(), shard), Metric::L2, PARAMS).expect("open")
}

fn search_ids(machine: &ShardStateMachine, query: f32, k: usize) -> Vec<u64> {
    let index = machine.index();
    let index = index.read().expect("lock");
    index
        .search(&[query, 0.0, 0.0, 0.0], k, 64, None)
        .into_iter()
        .map(|(row, _)| row)
        .collect()
}

#[tokio::test]
async fn apply_reopen_and_snapshot_keep_exactly_the_live_points() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = open_db(dir.path(), DATA_CFS).expect("rocksdb");
    let mut machine = open(&db, 1);

    let upsert = ShardCommand::Upsert {
        points: (0..100).map(|i| point(i, i as f32)).collect(),
    };
    let replies = machine.apply([entry(1, upsert)]).await.expect("apply");
    assert_eq!(replies, vec![ShardResponse::Upserted(100)]);

    // Update point 5 to sit at x = 1000 and delete the odd ids by filter.
    let update = ShardCommand::Upsert {
        points: vec![point(5, 1000.0)],
    };
    let filter = vectron_proto::common::v1::Filter {
        must: vec![vectron_proto::common::v1::Condition {
            key: "even".into(),
            condition: Some(vectron_proto::common::v1::condition::Condition::Match(
                vectron_proto::common::v1::Match {
                    kind: Some(vectron_proto::common::v1::r#match::Kind::Value(
                        vectron_proto::common::v1::MatchValue {
                            value: Some(vectron_proto::common::v1::match_value::Value::Boolean(
                                false,
                            )),
                        },
                    )),
                },
            )),
        }],
        ..Default::default()
    };
    let delete = ShardCommand::DeleteByFilter {
        filter: prost::Message::encode_to_vec(&filter),
    };
    let replies = machine
        .apply([entry(2, update), entry(3, delete)])
        .await
        .expect("apply");
    assert_eq!(
        replies,
        vec![ShardResponse::Upserted(1), ShardResponse::Deleted(50)]
    );
    let live = machine.index().read().expect("lock").len();
    assert_eq!(live, 50);

    let store = ShardStore::new(db.clone(), 1);
    assert_eq!(store.points().expect("points").len(), 50);
    assert!(
        store.row_of("5").expect("read").is_none(),
        "odd id 5 was deleted"
    );
    let row_of_4 = store.row_of("4").expect("read").expect("4 is live");
    assert_eq!(search_ids(&machine, 4.1, 1), vec![row_of_4]);

    // Reopen: the index is rebuilt from RocksDB with the same answers.
    drop(machine);
    let mut machine = open(&db, 1);
    assert_eq!(machine.index().read().expect("lock").len(), 50);
    assert_eq!(search_ids(&machine, 4.1, 1), vec![row_of_4]);
    let (applied, _) = machine.applied_state().await.expect("state");
    assert_eq!(applied.map(|l| l.index), Some(3));

    // Snapshot to another shard id (a fresh replica) in the same database.
    let mut builder = machine.get_snapshot_builder().await;
    let snapshot = builder.build_snapshot().await.expect("snapshot");
    let mut replica = open(&db, 2);
    replica
        .install_snapshot(&snapshot.meta, snapshot.snapshot)
        .await
        .expect("install");
    assert_eq!(
        ShardStore::new(db.clone(), 2)
            .points()
            .expect("points")
            .len(),
        50
    );
    assert_eq!(search_ids(&replica, 4.1, 1), vec![row_of_4]);
    let (applied, _) = replica.applied_state().await.expect("state");
    assert_eq!(applied.map(|l| l.index), Some(3));

    // Dropping shard 1's keys leaves shard 2 untouched.
    let mut batch = rocksdb::WriteBatch::default();
    ShardStore::new(db.clone(), 1).delete_all(&mut batch);
    ShardStore::new(db.clone(), 1).write(batch).expect("drop");
    assert!(
        ShardStore::new(db.clone(), 1)
            .points()
            .expect("points")
            .is_empty()
    );
    assert_eq!(
        ShardStore::new(db.clone(), 2)
            .points()
            .expect("points")
            .len(),
        50
    );
}
