//! Worker benchmark (a program, not a test): one PD and three `vectron worker`
//! processes on loopback. Measures upsert throughput of one shard at
//! replication factor 1 and 3 (every acknowledged batch fsynced on a quorum),
//! and search QPS, p50/p99 latency and recall@10 over gRPC — beside raw
//! hnsw_rs in this process with the same data and parameters, so the ratio is
//! visible.
//!
//! With `--restart` it instead measures how a shard holding 100,000 points
//! reopens: loading its dumped index segments versus rebuilding the index
//! from RocksDB (the path a restarted worker takes for each replica).
//!
//! Run: `cargo bench -p vectron --bench worker_bench [-- --restart]`, or
//! without a release build `cargo test -p vectron --bench worker_bench --
//! --bench`. Without `--bench` it does nothing.

#[path = "support/bench_data.rs"]
mod bench_data;
#[path = "../tests/suite/harness.rs"]
mod harness;

use std::collections::HashSet;

use bench_data::{pct, vectors};
use std::time::{Duration, Instant};

use harness::{PdCluster, WorkerProc, wait_for, worker_client};
use hnsw_rs::prelude::{DistL2, Hnsw};
use tonic::transport::Channel;
use vectron_proto::common::v1::{self as common, Consistency, Metric};
use vectron_proto::pd::v1 as pd;
use vectron_proto::worker::v1 as pb;
use vectron_proto::worker::v1::worker_client::WorkerClient;

const N: usize = 20_000;
const DIM: usize = 128;
const QUERIES: usize = 300;
const K: usize = 10;
const EFS: [usize; 3] = [64, 128, 256];
const BATCH: usize = 500;

fn l2(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

fn exact(data: &[Vec<f32>], q: &[f32]) -> HashSet<u64> {
    let mut scored: Vec<(f32, u64)> = data
        .iter()
        .enumerate()
        .map(|(i, v)| (l2(q, v), i as u64))
        .collect();
    scored.select_nth_unstable_by(K, |a, b| a.0.total_cmp(&b.0));
    scored[..K].iter().map(|(_, i)| *i).collect()
}

struct SearchFigures {
    qps: f64,
    p50: f64,
    p99: f64,
    recall: f64,
}

fn row(name: &str, insert_per_s: f64, s: &SearchFigures) {
    println!(
        "{name:<40} {insert_per_s:>12.0} {:>10.0} {:>8.2} {:>8.2} {:>8.3}",
        s.qps, s.p50, s.p99, s.recall
    );
}

fn baseline<D>(
    name: &str,
    distance: D,
    data: &[Vec<f32>],
    queries: &[Vec<f32>],
    truth: &[HashSet<u64>],
) where
    D: hnsw_rs::anndists::dist::Distance<f32> + Send + Sync,
{
    // The same construction arguments the worker's segments use (capacity hint
    // 100,000, 16 layers).
    let mut hnsw = Hnsw::<f32, D>::new(16, 100_000, 16, 200, distance);
    let start = Instant::now();
    for (i, v) in data.iter().enumerate() {
        hnsw.insert_slice((v, i));
    }
    let insert = data.len() as f64 / start.elapsed().as_secs_f64();
    hnsw.set_searching_mode(true);
    for filtered in [false, true] {
        for ef in EFS {
            let search = baseline_search(&hnsw, queries, truth, ef, filtered);
            let mode = if filtered {
                "search_filter(all)"
            } else {
                "search"
            };
            row(&format!("{name} {mode}, ef {ef}"), insert, &search);
        }
    }
}

fn baseline_search<D>(
    hnsw: &Hnsw<f32, D>,
    queries: &[Vec<f32>],
    truth: &[HashSet<u64>],
    ef: usize,
    filtered: bool,
) -> SearchFigures
where
    D: hnsw_rs::anndists::dist::Distance<f32> + Send + Sync,
{
    let mut latencies = Vec::new();
    let mut found = 0;
    let start = Instant::now();
    for (q, t) in queries.iter().zip(truth) {
        let s = Instant::now();
        let hits = if filtered {
            // hnsw_rs's filtered search (the path the worker took for every
            // search before it walked its own graph copy), which walks more
            // of the graph.
            let accept_all = |_: &usize| true;
            hnsw.search_filter(q, K, ef, Some(&accept_all))
        } else {
            hnsw.search(q, K, ef)
        };
        latencies.push(s.elapsed());
        found += hits.iter().filter(|n| t.contains(&(n.d_id as u64))).count();
    }
    let qps = queries.len() as f64 / start.elapsed().as_secs_f64();
    latencies.sort();
    SearchFigures {
        qps,
        p50: pct(&latencies, 0.5),
        p99: pct(&latencies, 0.99),
        recall: found as f64 / (queries.len() * K) as f64,
    }
}

async fn create(pd_client: &vectron_pd::PdClient, name: &str, rf: u32) -> pd::Shard {
    let request = pd::CreateCollectionRequest {
        spec: Some(pd::CollectionSpec {
            name: name.into(),
            dimension: DIM as u32,
            metric: Metric::L2.into(),
            shards: 1,
            replication_factor: rf,
            hnsw: None,
        }),
    };
    pd_client
        .call(|mut c| {
            let request = request.clone();
            async move { c.create_collection(request).await }
        })
        .await
        .expect("create collection");
    let request = pd::GetRoutingTableRequest {
        collection: name.into(),
    };
    pd_client
        .call(|mut c| {
            let request = request.clone();
            async move { c.get_routing_table(request).await }
        })
        .await
        .expect("routing")
        .shards
        .remove(0)
}

fn shard_ref(shard: &pd::Shard) -> Option<pb::ShardRef> {
    Some(pb::ShardRef {
        shard_id: shard.shard_id,
        epoch: shard.epoch,
    })
}

async fn leader(addrs: &[String], shard: &pd::Shard) -> WorkerClient<Channel> {
    wait_for("a shard leader", Duration::from_secs(60), || async {
        for addr in addrs {
            let mut c = worker_client(addr).await?;
            let request = pb::CountRequest {
                shard: shard_ref(shard),
                filter: None,
                consistency: Consistency::Strong.into(),
            };
            if c.count(request).await.is_ok() {
                return Some(c);
            }
        }
        None
    })
    .await
}

async fn vectron_insert(
    client: &mut WorkerClient<Channel>,
    shard: &pd::Shard,
    data: &[Vec<f32>],
) -> f64 {
    let start = Instant::now();
    for (b, chunk) in data.chunks(BATCH).enumerate() {
        let points = chunk
            .iter()
            .enumerate()
            .map(|(i, v)| pb::Point {
                id: Some(common::PointId {
                    kind: Some(common::point_id::Kind::Num((b * BATCH + i) as u64)),
                }),
                vector: v.clone(),
                payload_json: Vec::new(),
            })
            .collect();
        let request = pb::UpsertRequest {
            shard: shard_ref(shard),
            points,
            ..Default::default()
        };
        // Follow NOT_LEADER hints as a gateway does; upserts are idempotent.
        loop {
            match client.upsert(request.clone()).await {
                Ok(_) => break,
                Err(status) => {
                    let hint = vectron_proto::error_detail::detail_of(&status)
                        .and_then(|d| d.leader)
                        .map(|l| l.addr)
                        .filter(|a| !a.is_empty());
                    let Some(addr) = hint else {
                        panic!("upsert: {status:?}");
                    };
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    if let Some(c) = worker_client(&addr).await {
                        *client = c;
                    }
                }
            }
        }
    }
    data.len() as f64 / start.elapsed().as_secs_f64()
}

async fn vectron_search(
    client: &mut WorkerClient<Channel>,
    shard: &pd::Shard,
    queries: &[Vec<f32>],
    truth: &[HashSet<u64>],
    ef: usize,
) -> SearchFigures {
    let mut latencies = Vec::new();
    let mut found = 0;
    let start = Instant::now();
    for (q, t) in queries.iter().zip(truth) {
        let s = Instant::now();
        let reply = client
            .search(pb::SearchRequest {
                shard: shard_ref(shard),
                vector: q.clone(),
                top_k: K as u32,
                ef: ef as u32,
                filter: None,
                with_payload: false,
                with_vector: false,
                consistency: Consistency::Strong.into(),
            })
            .await
            .expect("search")
            .into_inner();
        latencies.push(s.elapsed());
        found += reply
            .results
            .iter()
            .filter(|r| match r.id.as_ref().and_then(|id| id.kind.as_ref()) {
                Some(common::point_id::Kind::Num(n)) => t.contains(n),
                _ => false,
            })
            .count();
    }
    let qps = queries.len() as f64 / start.elapsed().as_secs_f64();
    latencies.sort();
    SearchFigures {
        qps,
        p50: pct(&latencies, 0.5),
        p99: pct(&latencies, 0.99),
        recall: found as f64 / (queries.len() * K) as f64,
    }
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!(
            "worker_bench: skipped (run with --bench, e.g. `cargo bench -p vectron --bench worker_bench`)"
        );
        return;
    }
    if std::env::args().any(|a| a == "--restart") {
        restart_bench();
        return;
    }
    let data = vectors(N, DIM, 1);
    let queries = vectors(QUERIES, DIM, 2);
    let truth: Vec<HashSet<u64>> = queries.iter().map(|q| exact(&data, q)).collect();
    println!(
        "{N} x {DIM} random vectors (l2), m 16, ef_construction 200, top {K}, {QUERIES} sequential queries, upserts in batches of {BATCH}"
    );
    println!(
        "{:<40} {:>12} {:>10} {:>8} {:>8} {:>8}",
        "system", "inserts/s", "search/s", "p50 ms", "p99 ms", "recall"
    );
    baseline("raw hnsw_rs", DistL2 {}, &data, &queries, &truth);

    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    runtime.block_on(async {
        let cluster = PdCluster::start(1, &["--heartbeat-timeout-secs", "60"]);
        cluster.wait_for_leader(Duration::from_secs(30)).await;
        let endpoints = cluster.endpoints();
        let mut workers: Vec<WorkerProc> = (0..3)
            .map(|i| WorkerProc::new(cluster.dir(), &format!("w{i}"), &endpoints))
            .collect();
        for w in &mut workers {
            w.spawn();
        }
        let pd_client = cluster.client();
        wait_for("three workers", Duration::from_secs(60), || async {
            let reply = pd_client
                .call(|mut c| async move { c.list_workers(pd::ListWorkersRequest {}).await })
                .await
                .ok()?;
            (reply.workers.len() == 3).then_some(())
        })
        .await;
        let addrs: Vec<String> = workers.iter().map(|w| w.addr.clone()).collect();
        for rf in [1u32, 3] {
            let shard = create(&pd_client, &format!("bench-rf{rf}"), rf).await;
            let mut client = leader(&addrs, &shard).await;
            let insert = vectron_insert(&mut client, &shard, &data).await;
            // Measure search in steady state: every replica has applied
            // everything (followers lag behind the leader while the machine's
            // two cores are busy building three graphs).
            for addr in &addrs {
                wait_for("replicas to catch up", Duration::from_secs(300), || async {
                    let mut c = worker_client(addr).await?;
                    let request = pb::CountRequest {
                        shard: shard_ref(&shard),
                        filter: None,
                        consistency: Consistency::Eventual.into(),
                    };
                    let count = c.count(request).await.map(|r| r.into_inner().count);
                    match count {
                        Ok(n) if n == N as u64 => Some(()),
                        Err(status) if status.code() == tonic::Code::NotFound => Some(()), // not a replica
                        _ => None,
                    }
                })
                .await;
            }
            for ef in EFS {
                let search = vectron_search(&mut client, &shard, &queries, &truth, ef).await;
                row(&format!("vectron rf {rf} (gRPC), ef {ef}"), insert, &search);
            }
        }
    });
}

/// Reopens a 100k-point shard state machine with and without its dumps.
fn restart_bench() {
    use openraft::storage::RaftStateMachine;
    use openraft::{Entry, EntryPayload, LeaderId, LogId};
    use vectron_ids::PointId;
    use vectron_worker::distance::Metric as WorkerMetric;
    use vectron_worker::index::HnswParams;
    use vectron_worker::index::disk::IndexDir;
    use vectron_worker::maintenance::{self, MaintenanceConfig};
    use vectron_worker::shard::command::{PointRecord, ShardCommand};
    use vectron_worker::shard::state_machine::ShardStateMachine;
    use vectron_worker::storage::{DATA_CFS, ShardStore};

    const POINTS: usize = 100_000;
    const PER_ENTRY: usize = 1_000;
    let params = HnswParams {
        m: 16,
        ef_construction: 200,
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let db = vectron_raft::open_db(&dir.path().join("db"), DATA_CFS).expect("rocksdb");
    let dumps = IndexDir::new(dir.path().join("index"));
    let no_dumps = IndexDir::new(dir.path().join("no-index"));
    let open = |dumps: &IndexDir| {
        ShardStateMachine::open(
            ShardStore::new(db.clone(), 1),
            WorkerMetric::L2,
            params,
            dumps,
        )
        .expect("open")
    };
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    runtime.block_on(async {
        println!("restart: {POINTS} x {DIM} l2 points, m 16, ef_construction 200, one shard");
        let mut machine = open(&dumps);
        let data = vectors(POINTS, DIM, 5);
        let started = Instant::now();
        for (batch, chunk) in data.chunks(PER_ENTRY).enumerate() {
            let points = chunk
                .iter()
                .enumerate()
                .map(|(i, v)| PointRecord {
                    id: PointId::Num((batch * PER_ENTRY + i) as u64),
                    vector: v.clone(),
                    payload: b"{}".to_vec(),
                })
                .collect();
            let entry = Entry {
                log_id: LogId::new(LeaderId::new(1, 1), batch as u64 + 1),
                payload: EntryPayload::Normal(ShardCommand::Upsert { points }.into()),
            };
            machine.apply([entry]).await.expect("apply");
            if (batch + 1) % 10 == 0 {
                println!(
                    "  applied {} points ({:.0}/s)",
                    (batch + 1) * PER_ENTRY,
                    ((batch + 1) * PER_ENTRY) as f64 / started.elapsed().as_secs_f64()
                );
            }
        }
        let started = Instant::now();
        let report =
            maintenance::run_round(1, &machine.index(), &dumps, &MaintenanceConfig::default())
                .expect("dump");
        println!(
            "  dumped {} segment(s) in {:.2} s",
            report.dumped,
            started.elapsed().as_secs_f64()
        );
        drop(machine);

        let started = Instant::now();
        let loaded = open(&dumps);
        let load_s = started.elapsed().as_secs_f64();
        assert_eq!(
            loaded.loaded_from_disk(),
            POINTS,
            "every point came from the dump"
        );
        drop(loaded);
        let started = Instant::now();
        let rebuilt = open(&no_dumps);
        let rebuild_s = started.elapsed().as_secs_f64();
        assert_eq!(rebuilt.loaded_from_disk(), 0);
        println!("{:<40} {:>10}", "reopen", "seconds");
        println!("{:<40} {:>10.2}", "load dumped segments", load_s);
        println!(
            "{:<40} {:>10.2}",
            "rebuild from RocksDB (all cores)", rebuild_s
        );
    });
}
