//! The shard state machine on real RocksDB: applies upserts, updates and
//! deletes, survives a reopen (index rebuilt from disk), and moves its points
//! through a snapshot to another replica; index dumps written by the upkeep
//! task are loaded on reopen instead of rebuilding, and stay correct across
//! deletes, updates and segment rebuilds; a retried client request is applied
//! once; reads see one consistent state while points are updated.

use std::sync::Arc;

use openraft::storage::RaftStateMachine;
use openraft::{Entry, EntryPayload, LeaderId, LogId, RaftSnapshotBuilder};
use vectron_ids::PointId;
use vectron_raft::open_db;
use vectron_worker::distance::Metric;
use vectron_worker::index::HnswParams;
use vectron_worker::index::disk::IndexDir;
use vectron_worker::maintenance::{self, MaintenanceConfig};
use vectron_worker::shard::ShardTypeConfig;
use vectron_worker::shard::command::{
    PointRecord, RequestId, ShardCommand, ShardProposal, ShardResponse,
};
use vectron_worker::shard::state_machine::ShardStateMachine;
use vectron_worker::storage::{DATA_CFS, ShardStore};

const PARAMS: HnswParams = HnswParams {
    m: 16,
    ef_construction: 100,
};

fn entry(index: u64, command: ShardCommand) -> Entry<ShardTypeConfig> {
    Entry {
        log_id: LogId::new(LeaderId::new(1, 1), index),
        payload: EntryPayload::Normal(command.into()),
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
    let dumps = IndexDir::new(std::env::temp_dir().join("vectron-unused-dumps"));
    open_with(db, shard, &dumps)
}

fn open_with(db: &Arc<rocksdb::DB>, shard: u64, dumps: &IndexDir) -> ShardStateMachine {
    ShardStateMachine::open(
        ShardStore::new(db.clone(), shard),
        Metric::L2,
        PARAMS,
        dumps,
    )
    .expect("open")
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

/// How many points shard `shard` stores in `db`.
fn stored_points(db: &Arc<rocksdb::DB>, shard: u64) -> usize {
    ShardStore::new(db.clone(), shard)
        .points()
        .expect("points")
        .len()
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
    assert_eq!(stored_points(&db, 2), 50);
    assert_eq!(search_ids(&replica, 4.1, 1), vec![row_of_4]);
    let (applied, _) = replica.applied_state().await.expect("state");
    assert_eq!(applied.map(|l| l.index), Some(3));

    // Dropping shard 1's keys leaves shard 2 untouched.
    let mut batch = rocksdb::WriteBatch::default();
    ShardStore::new(db.clone(), 1).delete_all(&mut batch);
    ShardStore::new(db.clone(), 1).write(batch).expect("drop");
    assert_eq!(stored_points(&db, 1), 0);
    assert_eq!(stored_points(&db, 2), 50);
}

fn spread_point(id: u64) -> PointRecord {
    // Deterministic, well spread 4-d vectors.
    let x = id as f32;
    PointRecord {
        id: PointId::Num(id),
        vector: vec![x.sin() * 10.0, x.cos() * 10.0, (x * 0.37).sin(), x * 0.001],
        payload: b"{}".to_vec(),
    }
}

async fn apply_all(machine: &mut ShardStateMachine, first_index: u64, commands: Vec<ShardCommand>) {
    let entries: Vec<_> = commands
        .into_iter()
        .enumerate()
        .map(|(i, c)| entry(first_index + i as u64, c))
        .collect();
    machine.apply(entries).await.expect("apply");
}

/// Every live stored point is found by searching its own vector, and no
/// search returns a row that storage no longer holds.
fn assert_index_matches_storage(machine: &ShardStateMachine, store: &ShardStore) {
    let stored = store.points().expect("points");
    let live: std::collections::HashSet<u64> = stored.iter().map(|p| p.row).collect();
    let index = machine.index();
    let index = index.read().expect("lock");
    assert_eq!(index.len(), stored.len(), "index count equals stored count");
    for p in stored.iter().step_by(7) {
        let hits = index.search(&p.point.vector, 5, 64, None);
        assert_eq!(
            hits.first().map(|h| h.0),
            Some(p.row),
            "own vector finds own row"
        );
        for (row, _) in hits {
            assert!(live.contains(&row), "row {row} is not stored any more");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopen_loads_dumped_segments_and_stays_correct() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = open_db(&dir.path().join("db"), DATA_CFS).expect("rocksdb");
    let dumps = IndexDir::new(dir.path().join("index"));
    let config = MaintenanceConfig {
        rebuild_threshold: 0.3,
        dump_growth: 1_000,
        freeze_growth: 256,
        ..MaintenanceConfig::default()
    };
    let store = ShardStore::new(db.clone(), 1);
    let mut machine = open_with(&db, 1, &dumps);
    apply_all(
        &mut machine,
        1,
        (0..3u64)
            .map(|b| ShardCommand::Upsert {
                points: (b * 1_000..(b + 1) * 1_000).map(spread_point).collect(),
            })
            .collect(),
    )
    .await;
    let report = maintenance::run_round(1, &machine.index(), &dumps, &config).expect("round");
    assert_eq!(
        report.dumped, 1,
        "the appendable segment grew past dump_growth"
    );

    // Changes after the dump: new points, deletes of dumped points, updates.
    apply_all(
        &mut machine,
        4,
        vec![
            ShardCommand::Upsert {
                points: (3_000..3_500).map(spread_point).collect(),
            },
            ShardCommand::Delete {
                ids: (0..300).map(PointId::Num).collect(),
            },
            ShardCommand::Upsert {
                points: (300..400)
                    .map(|i| PointRecord {
                        id: PointId::Num(i),
                        ..spread_point(i + 10_000)
                    })
                    .collect(),
            },
        ],
    )
    .await;
    drop(machine);
    let machine = open_with(&db, 1, &dumps);
    // 3,000 dumped, 300 deleted, 100 updated (their new rows are not dumped).
    assert_eq!(machine.loaded_from_disk(), 2_600);
    assert_index_matches_storage(&machine, &store);

    // Enough deletes to pass the rebuild threshold; the round rebuilds the
    // segment and dumps the rebuilt one.
    let mut machine = machine;
    apply_all(
        &mut machine,
        7,
        vec![ShardCommand::Delete {
            ids: (400..2_000).map(PointId::Num).collect(),
        }],
    )
    .await;
    let report = maintenance::run_round(1, &machine.index(), &dumps, &config).expect("round");
    assert_eq!(report.rebuilt, 1);
    assert!(report.dumped >= 1);
    assert_index_matches_storage(&machine, &store);
    let live = store.points().expect("points").len();
    drop(machine);
    let machine = open_with(&db, 1, &dumps);
    assert_eq!(
        machine.loaded_from_disk(),
        live,
        "every live point came from a dump"
    );
    assert_index_matches_storage(&machine, &store);

    // A damaged dump is not trusted: the index is rebuilt from storage.
    drop(machine);
    for entry in std::fs::read_dir(dumps.root()).expect("dumps") {
        let path = entry.expect("entry").path().join("keys.bin");
        if path.exists() {
            std::fs::write(&path, b"short").expect("damage");
        }
    }
    let machine = open_with(&db, 1, &dumps);
    assert_eq!(machine.loaded_from_disk(), 0);
    assert_index_matches_storage(&machine, &store);
}

fn proposal(index: u64, request: u128, command: ShardCommand) -> Entry<ShardTypeConfig> {
    Entry {
        log_id: LogId::new(LeaderId::new(1, 1), index),
        payload: EntryPayload::Normal(ShardProposal {
            request: Some(RequestId(request)),
            command,
        }),
    }
}

fn stored_x(db: &Arc<rocksdb::DB>, shard: u64, id: u64) -> Option<f32> {
    let store = ShardStore::new(db.clone(), shard);
    let row = store.row_of(&id.to_string()).expect("read")?;
    Some(store.point(row).expect("read").expect("row").point.vector[0])
}

/// Defect: a gateway retry of a write whose first attempt did commit applied
/// it again, after a later write of another client (or, for a delete, erased
/// a later write). Retries carry the first attempt's request id, and the
/// shard answers them from its replicated table — after a restart and on a
/// replica that installed a snapshot, too.
#[tokio::test]
async fn a_retried_request_is_applied_once_even_after_later_writes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = open_db(dir.path(), DATA_CFS).expect("rocksdb");
    let mut machine = open(&db, 1);
    let v1 = || ShardCommand::Upsert {
        points: vec![point(1, 1.0)],
    };
    let v2 = || ShardCommand::Upsert {
        points: vec![point(1, 2.0)],
    };
    let delete_2 = || ShardCommand::Delete {
        ids: vec![PointId::Num(2)],
    };
    let replies = machine
        .apply([
            // Client A writes v1 (its gateway times out and will retry),
            // client B writes v2 and is acknowledged, A's retry lands.
            proposal(1, 0xA, v1()),
            proposal(2, 0xB, v2()),
            proposal(3, 0xA, v1()),
            // The same for a delete: C deletes 2, D re-creates it, C retries.
            proposal(4, 0xC, delete_2()),
            proposal(
                5,
                0xD,
                ShardCommand::Upsert {
                    points: vec![point(2, 5.0)],
                },
            ),
            proposal(6, 0xC, delete_2()),
        ])
        .await
        .expect("apply");
    assert_eq!(
        replies,
        vec![
            ShardResponse::Upserted(1),
            ShardResponse::Upserted(1),
            ShardResponse::Upserted(1),
            ShardResponse::Deleted(0),
            ShardResponse::Upserted(1),
            ShardResponse::Deleted(0),
        ],
        "a repeat gets the first answer"
    );
    assert_eq!(stored_x(&db, 1, 1), Some(2.0), "B's acknowledged v2 stands");
    assert_eq!(
        stored_x(&db, 1, 2),
        Some(5.0),
        "D's write survives C's retry"
    );
    assert_eq!(machine.remembered_requests(), 4);

    // The table is durable: after a reopen a late retry is still a repeat.
    drop(machine);
    let mut machine = open(&db, 1);
    assert_eq!(machine.remembered_requests(), 4);
    machine
        .apply([proposal(7, 0xA, v1())])
        .await
        .expect("apply");
    assert_eq!(stored_x(&db, 1, 1), Some(2.0), "retry after restart");

    // And it travels in snapshots.
    let mut builder = machine.get_snapshot_builder().await;
    let snapshot = builder.build_snapshot().await.expect("snapshot");
    let mut replica = open(&db, 2);
    replica
        .install_snapshot(&snapshot.meta, snapshot.snapshot)
        .await
        .expect("install");
    assert_eq!(replica.remembered_requests(), 4);
    replica
        .apply([proposal(8, 0xA, v1()), proposal(9, 0xE, v1())])
        .await
        .expect("apply");
    // 0xA is a repeat; 0xE is new and applies.
    assert_eq!(stored_x(&db, 2, 1), Some(1.0));
    assert_eq!(replica.remembered_requests(), 5);
    let mut machine = machine;
    machine
        .apply([proposal(8, 0xA, v1())])
        .await
        .expect("apply");
    assert_eq!(stored_x(&db, 1, 1), Some(2.0));
}

/// Defect: Get read the id map and then the row without a snapshot, so a
/// concurrent update (which moves the point to a new row) made an existing
/// point read as missing; search took rows from the index while RocksDB
/// already held the update. Every read during a stream of updates sees all
/// ten points.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_see_every_point_while_it_is_being_updated() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use vectron_worker::shard::read::{self, ShardQuery};

    let dir = tempfile::tempdir().expect("temp dir");
    let db = open_db(dir.path(), DATA_CFS).expect("rocksdb");
    let mut machine = open(&db, 1);
    let points = |version: u64| ShardCommand::Upsert {
        points: (0..10)
            .map(|id| PointRecord {
                id: PointId::Num(id),
                vector: vec![id as f32 * 10.0, 1.0, 0.0, 0.0],
                payload: format!(r#"{{"version": {version}}}"#).into_bytes(),
            })
            .collect(),
    };
    machine.apply([entry(1, points(0))]).await.expect("apply");
    let store = ShardStore::new(db.clone(), 1);
    let index = machine.index();
    let row_ids = machine.row_ids();
    let wire_id = |n: u64| vectron_proto::common::v1::PointId {
        kind: Some(vectron_proto::common::v1::point_id::Kind::Num(n)),
    };
    let done = Arc::new(AtomicBool::new(false));
    // One thread only gets and one only searches, so each spins on its own
    // read path and lands inside an apply as often as the machine allows.
    let getter = {
        let done = done.clone();
        let store = store.clone();
        std::thread::spawn(move || {
            let ids: Vec<PointId> = (0..10).map(PointId::Num).collect();
            let mut reads = 0u64;
            let mut problems = Vec::new();
            while !done.load(Ordering::Relaxed) && problems.len() < 5 {
                let got = read::get_points(&store, &ids, true).expect("get");
                if got.len() != 10 {
                    problems.push(format!("get found {} of 10 points", got.len()));
                }
                reads += 1;
            }
            (reads, problems)
        })
    };
    let searcher = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut reads = 0u64;
            let mut problems = Vec::new();
            while !done.load(Ordering::Relaxed) && problems.len() < 5 {
                let id = reads % 10;
                // Alternate the path reading rows with the one taking ids
                // from memory.
                let with_payload = reads.is_multiple_of(2);
                let query = ShardQuery {
                    vector: &[id as f32 * 10.0, 1.0, 0.0, 0.0],
                    top_k: 1,
                    ef: 16,
                    filter: None,
                    with_payload,
                    with_vector: false,
                };
                let hits = read::search_points(&index, &row_ids, &store, &query).expect("search");
                let found = hits.first().and_then(|(p, _)| p.point.id.clone());
                if hits.len() != 1 || found != Some(wire_id(id)) {
                    problems.push(format!(
                        "search for point {id} (payload {with_payload}) found {found:?} in {} hits",
                        hits.len()
                    ));
                }
                reads += 1;
            }
            (reads, problems)
        })
    };
    for version in 1..=1_000u64 {
        machine
            .apply([entry(1 + version, points(version))])
            .await
            .expect("apply");
    }
    done.store(true, Ordering::Relaxed);
    for (what, reader) in [("get", getter), ("search", searcher)] {
        let (reads, problems) = reader.join().expect("reader");
        assert!(reads > 0, "the {what} reader ran");
        assert!(
            problems.is_empty(),
            "after {reads} reads by the {what} thread: {problems:?}"
        );
    }
}

/// openraft's state-machine task outlives `Raft::shutdown` and drains the
/// entries already handed to it. Once a destroyed replica's store is retired
/// those late applies (and snapshot installs) fail and write nothing, so a
/// replica opened on the shard again starts empty instead of claiming an
/// applied index whose earlier points were deleted.
#[tokio::test]
async fn writes_after_the_store_is_retired_fail_and_leave_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = open_db(dir.path(), DATA_CFS).expect("rocksdb");
    let store = ShardStore::new(db.clone(), 3);
    let dumps = IndexDir::new(dir.path().join("dumps"));
    let mut machine =
        ShardStateMachine::open(store.clone(), Metric::L2, PARAMS, &dumps).expect("open");
    let upsert = |ids: std::ops::Range<u64>| ShardCommand::Upsert {
        points: ids.map(|i| point(i, i as f32)).collect(),
    };
    machine
        .apply([entry(1, upsert(0..10))])
        .await
        .expect("apply");
    let mut builder = machine.get_snapshot_builder().await;
    let snapshot = builder.build_snapshot().await.expect("snapshot");

    let mut batch = rocksdb::WriteBatch::default();
    store.delete_all(&mut batch);
    store.retire(batch).expect("retire");
    let late = machine.apply([entry(2, upsert(10..20))]).await;
    assert!(late.is_err(), "an apply after retirement must fail");
    let late = machine
        .install_snapshot(&snapshot.meta, snapshot.snapshot)
        .await;
    assert!(
        late.is_err(),
        "a snapshot install after retirement must fail"
    );

    let mut reopened = open(&db, 3);
    let (applied, _) = reopened.applied_state().await.expect("state");
    assert_eq!(applied, None, "the reopened shard claims nothing applied");
    assert_eq!(stored_points(&db, 3), 0);
    // The next incarnation writes normally.
    reopened
        .apply([entry(1, upsert(0..5))])
        .await
        .expect("apply after reopen");
    assert_eq!(stored_points(&db, 3), 5);
}

fn even_filter(even: bool) -> vectron_worker::filter::PayloadFilter {
    use vectron_proto::common::v1 as common;
    let filter = common::Filter {
        must: vec![common::Condition {
            key: "even".into(),
            condition: Some(common::condition::Condition::Match(common::Match {
                kind: Some(common::r#match::Kind::Value(common::MatchValue {
                    value: Some(common::match_value::Value::Boolean(even)),
                })),
            })),
        }],
        ..Default::default()
    };
    vectron_worker::filter::PayloadFilter::from_proto(&filter, "filter").expect("filter")
}

#[tokio::test]
async fn scroll_pages_walk_every_point_once_in_id_order_and_count_streams() {
    use vectron_worker::shard::read::{count_matching, scroll_points};
    let dir = tempfile::tempdir().expect("temp dir");
    let db = open_db(dir.path(), DATA_CFS).expect("db");
    let mut machine = open(&db, 4);
    apply_all(
        &mut machine,
        1,
        vec![ShardCommand::Upsert {
            points: (0..257).map(|i| point(i, i as f32)).collect(),
        }],
    )
    .await;
    let store = ShardStore::new(db.clone(), 4);
    let mut expected: Vec<String> = (0..257).map(|i| PointId::Num(i).canonical()).collect();
    expected.sort();

    // Pages of 50: every id exactly once, in canonical order, the cursor
    // exclusive, and no cursor after the last page.
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let decoded = store.points_decoded();
        let page = scroll_points(&store, after.as_deref(), 50, None, true).expect("page");
        assert!(page.points.len() <= 50);
        assert_eq!(
            store.points_decoded() - decoded,
            page.points.len() as u64,
            "a page decodes its own points, not the shard's"
        );
        for (id, stored) in &page.points {
            assert!(!stored.payload.is_empty(), "payload asked for");
            seen.push(id.clone());
        }
        pages += 1;
        match page.next_after {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, expected);
    assert_eq!(pages, 6, "257 points make 6 pages of 50");

    // A filter keeps order and pages by matches, not by points walked.
    let even = even_filter(true);
    let decoded = store.points_decoded();
    let page = scroll_points(&store, None, 10, Some(&even), false).expect("page");
    assert_eq!(page.points.len(), 10);
    assert_eq!(
        store.points_decoded() - decoded,
        10,
        "filters read payloads only"
    );
    assert!(page.points.iter().all(|(_, p)| p.payload.is_empty()));
    let even_ids: Vec<String> = expected
        .iter()
        .filter(|id| {
            (0..257u64)
                .find(|i| PointId::Num(*i).canonical() == **id)
                .is_some_and(|i| i % 2 == 0)
        })
        .cloned()
        .collect();
    let got: Vec<String> = page.points.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(got, even_ids[..10]);
    assert_eq!(page.next_after.as_deref(), Some(even_ids[9].as_str()));

    let decoded = store.points_decoded();
    assert_eq!(count_matching(&store, &even).expect("count"), 129);
    assert_eq!(
        store.points_decoded(),
        decoded,
        "a count decodes no vectors"
    );
    assert_eq!(
        count_matching(&store, &even_filter(false)).expect("count"),
        128
    );
}

/// Filtered search answers from the in-memory payload index: a selective
/// filter (scored exactly), a broad one (the graph walk letting only
/// matching points through), and one reaching past what is indexed (a long
/// keyword, checked against stored payloads) each return only matching
/// points, and as many of the true nearest matching points as an unfiltered
/// search would; the same holds after the shard is reopened (index rebuilt
/// from storage) and on a replica that installed a snapshot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filtered_search_finds_the_nearest_matching_points() {
    use vectron_worker::filter::{Bounds, Condition, PayloadFilter, Scalar};
    use vectron_worker::shard::read::{self, ShardQuery};

    const POINTS: u64 = 6_000;
    const DIM: usize = 8;
    let long = "l".repeat(300);
    let vector = |id: u64| -> Vec<f32> {
        // A deterministic scatter (xorshift per component).
        let mut state = id.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..DIM)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state % 10_000) as f32 / 100.0
            })
            .collect()
    };
    let payload = |id: u64| {
        let name = if id.is_multiple_of(7) {
            long.as_str()
        } else {
            "short"
        };
        format!(r#"{{"tag": {}, "name": "{name}"}}"#, id % 100).into_bytes()
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let db = open_db(dir.path(), DATA_CFS).expect("rocksdb");
    let mut machine = open(&db, 1);
    let entries: Vec<_> = (0..POINTS / 500)
        .map(|batch| {
            let points = (batch * 500..(batch + 1) * 500)
                .map(|id| PointRecord {
                    id: PointId::Num(id),
                    vector: vector(id),
                    payload: payload(id),
                })
                .collect();
            entry(1 + batch, ShardCommand::Upsert { points })
        })
        .collect();
    machine.apply(entries).await.expect("apply");
    maintenance::build_pending(&machine.index(), 1_000, 0);

    let tag = vec!["tag".to_owned()];
    type Case = (PayloadFilter, fn(u64) -> bool);
    let filters: [Case; 3] = [
        // 1%: scored exactly.
        (
            PayloadFilter {
                must: vec![Condition::Match {
                    key: tag.clone(),
                    values: vec![Scalar::Integer(3)],
                }],
                ..Default::default()
            },
            |id| id % 100 == 3,
        ),
        // 80%: walked.
        (
            PayloadFilter {
                must: vec![Condition::Range {
                    key: tag.clone(),
                    bounds: Bounds {
                        lt: Some(80.0),
                        ..Default::default()
                    },
                }],
                ..Default::default()
            },
            |id| id % 100 < 80,
        ),
        // Past the index: a keyword longer than it keeps.
        (
            PayloadFilter {
                must_not: vec![Condition::Match {
                    key: vec!["name".to_owned()],
                    values: vec![Scalar::Keyword("l".repeat(300))],
                }],
                ..Default::default()
            },
            |id| id % 7 != 0,
        ),
    ];
    let exact = |accepts: &dyn Fn(u64) -> bool, query: &[f32]| -> Vec<u64> {
        let mut scored: Vec<(f32, u64)> = (0..POINTS)
            .filter(|&id| accepts(id))
            .map(|id| {
                let d: f32 = vector(id)
                    .iter()
                    .zip(query)
                    .map(|(a, b)| (a - b) * (a - b))
                    .sum();
                (d, id)
            })
            .collect();
        scored.sort_by(|a, b| a.0.total_cmp(&b.0));
        scored.into_iter().take(10).map(|(_, id)| id).collect()
    };
    let check = |machine: &ShardStateMachine, store: &ShardStore, what: &str| {
        let (index, rows) = (machine.index(), machine.row_ids());
        for (filter, accepts) in &filters {
            let (mut found, mut wanted) = (0, 0);
            for q in 0..50u64 {
                let query = vector(POINTS + q);
                let hits = read::search_points(
                    &index,
                    &rows,
                    store,
                    &ShardQuery {
                        vector: &query,
                        top_k: 10,
                        ef: 64,
                        filter: Some(filter),
                        with_payload: false,
                        with_vector: false,
                    },
                )
                .expect("search");
                let ids: Vec<u64> = hits
                    .iter()
                    .map(
                        |(p, _)| match p.point.id.as_ref().and_then(|i| i.kind.clone()) {
                            Some(vectron_proto::common::v1::point_id::Kind::Num(n)) => n,
                            other => panic!("unexpected id {other:?}"),
                        },
                    )
                    .collect();
                assert!(
                    ids.iter().all(|&id| accepts(id)),
                    "{what}: a hit outside the filter: {ids:?}"
                );
                let truth = exact(accepts, &query);
                wanted += truth.len();
                found += truth.iter().filter(|id| ids.contains(id)).count();
            }
            let recall = found as f64 / wanted as f64;
            assert!(recall >= 0.95, "{what}: recall {recall:.3} for {filter:?}");
        }
    };
    let store = ShardStore::new(db.clone(), 1);
    check(&machine, &store, "live");
    drop(machine);
    let reopened = open(&db, 1);
    check(&reopened, &store, "reopened");

    let mut builder = { reopened }.get_snapshot_builder().await;
    let snapshot = builder.build_snapshot().await.expect("snapshot");
    let mut replica = open(&db, 2);
    replica
        .install_snapshot(&snapshot.meta, snapshot.snapshot)
        .await
        .expect("install");
    check(&replica, &ShardStore::new(db.clone(), 2), "snapshot");
}
