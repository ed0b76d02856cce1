//! A real cluster from `vectron playground` (3 PD + 3 workers): a collection
//! of 4 shards × 3 replicas, 20,000 points through the gateway, recall@10
//! against exact search, then kill -9 of a worker and of the PD leader while
//! the gateway keeps serving every acknowledged point.

use std::time::{Duration, Instant};

use serde_json::json;
use vectron_client::{Client, Point, PointId};

use crate::cluster_harness::Playground;
use crate::harness::serial;

pub(crate) const DIM: usize = 32;
const POINTS: u64 = 20_000;

/// A deterministic pseudo-random vector (xorshift), different per seed.
pub(crate) fn vector(seed: u64) -> Vec<f32> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..DIM)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % 2000) as f32 / 1000.0 - 1.0
        })
        .collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

fn exact_top10(data: &[Vec<f32>], query: &[f32]) -> Vec<u64> {
    let mut scored: Vec<(f32, u64)> = data
        .iter()
        .enumerate()
        .map(|(i, v)| (cosine(v, query), i as u64))
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored.iter().take(10).map(|(_, i)| *i).collect()
}

pub(crate) async fn upsert_all(client: &Client, ids: std::ops::Range<u64>) {
    let batches: Vec<Vec<Point>> = ids
        .collect::<Vec<_>>()
        .chunks(500)
        .map(|chunk| {
            chunk
                .iter()
                .map(|&i| Point::new(i, vector(i)).with_payload(json!({"i": i})))
                .collect()
        })
        .collect();
    for group in batches.chunks(4) {
        let calls = group.iter().map(|batch| client.upsert("pg", batch));
        for result in futures::future::join_all(calls).await {
            assert_eq!(result.expect("upsert batch"), 500);
        }
    }
}

/// Every acknowledged point is readable with strong consistency.
pub(crate) async fn all_points_readable(client: &Client, total: u64) -> Result<(), String> {
    for start in (0..total).step_by(1000) {
        let ids: Vec<u64> = (start..(start + 1000).min(total)).collect();
        let points = client
            .get_points("pg", &json!({"ids": ids, "with_vector": false, "with_payload": false, "consistency": "strong"}))
            .await
            .map_err(|e| e.to_string())?;
        if points.len() != ids.len() {
            return Err(format!(
                "ids {start}..: {} of {} found",
                points.len(),
                ids.len()
            ));
        }
    }
    Ok(())
}

async fn recall(client: &Client, data: &[Vec<f32>], queries: u64) -> f64 {
    let mut found = 0usize;
    for q in 0..queries {
        let query = vector(1_000_000 + q);
        let truth = exact_top10(data, &query);
        let hits = client
            .search("pg", &json!({"vector": query, "top_k": 10, "ef": 128}))
            .await
            .expect("search");
        assert_eq!(hits.len(), 10, "search returned {} hits", hits.len());
        found += hits
            .iter()
            .filter(|h| matches!(h.id, PointId::Num(n) if truth.contains(&n)))
            .count();
    }
    found as f64 / (queries as f64 * 10.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn playground_cluster_survives_worker_and_pd_leader_kill9() {
    let _serial = serial().await;
    let pg = Playground::start(3, 3);
    let client = pg.client();
    client
        .create_collection(&json!({"name": "pg", "dimension": DIM, "metric": "cosine", "shards": 4, "replication_factor": 3}))
        .await
        .expect("create collection");

    let started = Instant::now();
    upsert_all(&client, 0..POINTS).await;
    eprintln!("upserted {POINTS} points in {:?}", started.elapsed());
    assert_eq!(client.count("pg", &json!({})).await.expect("count"), POINTS);
    let info = client.get_collection("pg").await.expect("collection");
    for shard in info["shard_status"].as_array().expect("shards") {
        assert_eq!(
            shard["replicas"].as_array().map(Vec::len),
            Some(3),
            "{info}"
        );
    }

    let data: Vec<Vec<f32>> = (0..POINTS).map(vector).collect();
    let r = recall(&client, &data, 100).await;
    eprintln!("recall@10 over 100 queries: {r:.4}");
    assert!(r >= 0.95, "recall@10 {r} < 0.95");

    // kill -9 one worker: reads, searches and writes go on.
    pg.kill9("worker-1");
    let killed = Instant::now();
    let deadline = killed + Duration::from_secs(90);
    loop {
        match all_points_readable(&client, POINTS).await {
            Ok(()) => break,
            Err(e) if Instant::now() < deadline => {
                eprintln!("after killing worker-1: {e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => {
                panic!("acknowledged points not readable 90 s after kill -9 of worker-1: {e}")
            }
        }
    }
    eprintln!(
        "all {POINTS} points read back with strong consistency {:?} after kill -9 of worker-1",
        killed.elapsed()
    );
    for q in 0..10 {
        let hits = client
            .search("pg", &json!({"vector": vector(2_000_000 + q), "top_k": 10}))
            .await
            .expect("search after worker kill");
        assert_eq!(hits.len(), 10);
    }
    upsert_all(&client, POINTS..POINTS + 1000).await;

    // kill -9 the PD leader: the gateway keeps serving.
    let pd = vectron_pd::PdClient::new(&pg.pd_endpoints()).expect("pd client");
    let members = pd
        .call(|mut c| async move {
            c.get_members(vectron_proto::pd::v1::GetMembersRequest {})
                .await
        })
        .await
        .expect("members");
    assert!(members.leader_id > 0);
    pg.kill9(&format!("pd-{}", members.leader_id));
    let pd_killed = Instant::now();
    let hits = client
        .search("pg", &json!({"vector": vector(3_000_000), "top_k": 10}))
        .await
        .expect("search right after PD leader kill");
    assert_eq!(hits.len(), 10);
    eprintln!(
        "search answered {:?} after kill -9 of the PD leader",
        pd_killed.elapsed()
    );
    upsert_all(&client, POINTS + 1000..POINTS + 1500).await;
    all_points_readable(&client, POINTS + 1500)
        .await
        .expect("all points after PD leader kill");
    assert_eq!(
        client
            .count("pg", &json!({"consistency": "strong"}))
            .await
            .expect("count"),
        POINTS + 1500
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn playground_with_auth_runs_the_auth_service_as_its_own_process() {
    let _serial = serial().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let password_file = dir.path().join("admin-password");
    std::fs::write(&password_file, "playground-admin-pw\n").expect("password file");
    let pg = Playground::start_with(
        1,
        1,
        &[
            "--auth",
            "--admin-password-file",
            &password_file.display().to_string(),
        ],
    );
    assert!(
        pg.children.iter().any(|c| c.name == "auth"),
        "{:?}",
        pg.children
    );
    let anonymous = pg.client();
    let refused = anonymous
        .list_collections()
        .await
        .expect_err("no credential");
    assert_eq!(refused.status(), Some(401));
    let token = anonymous
        .login("admin", "playground-admin-pw")
        .await
        .expect("admin login");
    let admin = anonymous.with_token(&token);
    admin
        .create_collection(&json!({"name": "secured", "dimension": 2, "metric": "l2"}))
        .await
        .expect("create");
    let (_, key) = admin
        .create_api_key("reader", "read", Some(&["secured"]))
        .await
        .expect("key");
    let reader = anonymous.with_api_key(&key);
    assert_eq!(
        reader
            .count("secured", &json!({}))
            .await
            .expect("read with key"),
        0
    );
    let denied = reader
        .upsert("secured", &[Point::new(1, vec![0.0, 1.0])])
        .await
        .expect_err("read key writes");
    assert_eq!(denied.status(), Some(403));
}

/// Defect: a gateway whose routing cache predated a drop and recreate of a
/// collection with another shard count wrote points into the wrong shards
/// (seen as points that could not be read by id), and workers never checked
/// the hash range. Here a second gateway (the gateway library in this test
/// process, over the playground's PD) caches the 2-shard layout, the
/// collection is recreated with 4 shards through the playground's gateway,
/// and every point the stale gateway then writes is readable by id through
/// both gateways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_with_a_stale_routing_table_writes_into_the_right_shards() {
    use vectron_gateway::api::Gateway;
    use vectron_gateway::model::{GetQuery, NewPoint};

    let _serial = serial().await;
    let pg = Playground::start(1, 2);
    let client = pg.client();
    let spec = |shards: u32| json!({"name": "re", "dimension": DIM, "metric": "cosine", "shards": shards, "replication_factor": 1});
    client
        .create_collection(&spec(2))
        .await
        .expect("create collection");
    let stale = Gateway::new(&pg.pd_endpoints(), vectron_config::Limits::default())
        .expect("second gateway");
    let new_point = |i: u64| NewPoint {
        id: vectron_ids::PointId::Num(i),
        vector: vector(i),
        payload: None,
    };
    assert_eq!(
        stale.upsert("re", vec![new_point(0)]).await.expect("warm"),
        1
    );

    client.delete_collection("re").await.expect("drop");
    client
        .create_collection(&spec(4))
        .await
        .expect("recreate with 4 shards");
    let total = 200u64;
    let written = stale
        .upsert("re", (0..total).map(new_point).collect())
        .await
        .expect("upsert through the stale gateway");
    assert_eq!(written, total);

    let ids: Vec<vectron_ids::PointId> = (0..total).map(vectron_ids::PointId::Num).collect();
    let through_stale = stale
        .get_points(
            "re",
            GetQuery {
                ids: ids.clone(),
                with_vector: false,
                with_payload: false,
                consistency: vectron_proto::common::v1::Consistency::Strong,
            },
        )
        .await
        .expect("get through the stale gateway");
    assert_eq!(through_stale.len() as u64, total, "every point by id");
    let body = json!({"ids": (0..total).collect::<Vec<u64>>()});
    let through_playground = client.get_points("re", &body).await.expect("get");
    assert_eq!(
        through_playground.len() as u64,
        total,
        "every point readable by id through the other gateway"
    );
    assert_eq!(client.count("re", &json!({})).await.expect("count"), total);

    // The worker itself refuses a point outside its shard's range, naming
    // the reason, and writes nothing.
    use vectron_proto::pd::v1 as pd;
    use vectron_proto::worker::v1 as pb;
    let table = stale.routing_table("re").await.expect("routing table");
    let (home, other) = (&table.shards[0], &table.shards[1]);
    let foreign = (0..total)
        .find(|i| {
            let hash = vectron_routing::point_hash(&vectron_ids::PointId::Num(*i));
            other.range_start <= hash && hash <= other.range_end
        })
        .expect("a point of shard 1");
    let replica = home
        .replicas
        .iter()
        .find(|r| r.kind() != pd::ReplicaKind::Learner)
        .expect("a replica");
    let mut worker = crate::harness::worker_client(&replica.addr)
        .await
        .expect("worker reachable");
    let refused = worker
        .upsert(pb::UpsertRequest {
            shard: Some(pb::ShardRef {
                shard_id: home.shard_id,
                epoch: home.epoch,
            }),
            points: vec![pb::Point {
                id: Some(vectron_proto::common::v1::PointId {
                    kind: Some(vectron_proto::common::v1::point_id::Kind::Num(foreign)),
                }),
                vector: vector(foreign),
                payload_json: Vec::new(),
            }],
            request_id: Vec::new(),
        })
        .await
        .expect_err("a point of another shard is refused");
    let detail = vectron_proto::error_detail::detail_of(&refused).expect("error detail");
    assert_eq!(
        detail.reason(),
        vectron_proto::common::v1::ErrorReason::WrongShard,
        "{refused:?}"
    );
    assert_eq!(detail.field, "points[0].id");
    assert_eq!(client.count("re", &json!({})).await.expect("count"), total);

    // A write whose log entry would pass the entry cap is refused before it
    // is proposed (it could never replicate), naming the field.
    let filler = format!(r#"{{"text": "{}"}}"#, "x".repeat(60 * 1024));
    let own: Vec<u64> = (1_000..100_000u64)
        .filter(|i| {
            let hash = vectron_routing::point_hash(&vectron_ids::PointId::Num(*i));
            home.range_start <= hash && hash <= home.range_end
        })
        .take(700)
        .collect();
    let big = worker
        .upsert(pb::UpsertRequest {
            shard: Some(pb::ShardRef {
                shard_id: home.shard_id,
                epoch: home.epoch,
            }),
            points: own
                .iter()
                .map(|i| pb::Point {
                    id: Some(vectron_proto::common::v1::PointId {
                        kind: Some(vectron_proto::common::v1::point_id::Kind::Num(*i)),
                    }),
                    vector: vector(*i),
                    payload_json: filler.clone().into_bytes(),
                })
                .collect(),
            request_id: Vec::new(),
        })
        .await
        .expect_err("a 42 MB entry is refused");
    assert_eq!(big.code(), tonic::Code::OutOfRange, "{big:?}");
    assert!(big.message().contains("at most"), "{big:?}");
    assert_eq!(client.count("re", &json!({})).await.expect("count"), total);
}
