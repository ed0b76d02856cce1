//! The PD scheduler on a real playground (3 PD, workers as processes): a
//! collection of 6 shards × 3 replicas with 20,000 points; a 4th worker is
//! added and the cluster rebalances (with the PD leader killed mid-move);
//! a worker is drained and removed; a 5th worker is killed -9 while moves
//! to it run (they roll back); a 6th is balanced in and killed -9 for good,
//! and every shard returns to 3 replicas. A client writes
//! and searches throughout; every acknowledged point is readable at the end.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use vectron_client::{Client, HttpMethod, Point};

use crate::cluster_harness::Playground;
use crate::harness::{WorkerProc, serial};
use crate::playground::{DIM, all_points_readable, upsert_all, vector};

const POINTS: u64 = 20_000;
const SHARDS: usize = 6;
const REPLICAS: usize = 3;

/// A client that upserts batches of new points (retrying a failed batch
/// until it is acknowledged, so acknowledged ids stay contiguous) and
/// searches between them, until stopped.
struct Traffic {
    stop: Arc<AtomicBool>,
    acknowledged: Arc<AtomicU64>,
    failed_attempts: Arc<AtomicU64>,
    searches: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Traffic {
    fn start(client: Client, first_id: u64) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let acknowledged = Arc::new(AtomicU64::new(first_id));
        let failed_attempts = Arc::new(AtomicU64::new(0));
        let searches = Arc::new(AtomicU64::new(0));
        let (s, a, f, q) = (
            stop.clone(),
            acknowledged.clone(),
            failed_attempts.clone(),
            searches.clone(),
        );
        let task = tokio::spawn(async move {
            while !s.load(Ordering::SeqCst) {
                let next = a.load(Ordering::SeqCst);
                let batch: Vec<Point> = (next..next + 50)
                    .map(|i| Point::new(i, vector(i)).with_payload(json!({"i": i})))
                    .collect();
                // A failed upsert may still have been applied (a 503 after
                // the leader moved mid-write is an unknown outcome, not a
                // refusal), so the batch is retried until acknowledged
                // before stop is looked at again: the acknowledged range is
                // then exactly what is stored.
                let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
                loop {
                    match client.upsert("pg", &batch).await {
                        Ok(50) => break,
                        Ok(n) => panic!("upsert of 50 points acknowledged {n}"),
                        Err(e) => {
                            f.fetch_add(1, Ordering::SeqCst);
                            eprintln!("traffic: upsert failed (will retry): {e}");
                            assert!(
                                tokio::time::Instant::now() < deadline,
                                "ids {next}.. not acknowledged within 180 s: {e}"
                            );
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                    }
                }
                a.store(next + 50, Ordering::SeqCst);
                match client
                    .search("pg", &json!({"vector": vector(next), "top_k": 5}))
                    .await
                {
                    Ok(hits) if !hits.is_empty() => {
                        q.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(_) => eprintln!("traffic: search returned nothing"),
                    Err(e) => eprintln!("traffic: search failed: {e}"),
                }
            }
        });
        Self {
            stop,
            acknowledged,
            failed_attempts,
            searches,
            task,
        }
    }

    /// Stops the client; answers the end of the acknowledged id range.
    async fn stop(self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.expect("traffic task");
        eprintln!(
            "traffic: acknowledged up to id {}, {} failed attempts (retried), {} searches",
            self.acknowledged.load(Ordering::SeqCst),
            self.failed_attempts.load(Ordering::SeqCst),
            self.searches.load(Ordering::SeqCst)
        );
        self.acknowledged.load(Ordering::SeqCst)
    }
}

async fn cluster(client: &Client) -> Value {
    client.cluster().await.expect("GET /v1/cluster")
}

/// Replica and leader counts of the live (up) workers.
fn counts(cluster: &Value) -> BTreeMap<String, (u64, u64)> {
    cluster["workers"]
        .as_array()
        .expect("workers")
        .iter()
        .filter(|w| w["state"] == "up")
        .map(|w| {
            (
                w["name"].as_str().unwrap_or_default().to_owned(),
                (
                    w["replicas"].as_u64().unwrap_or(0),
                    w["leaders"].as_u64().unwrap_or(0),
                ),
            )
        })
        .collect()
}

fn spread(values: impl Iterator<Item = u64> + Clone) -> u64 {
    values.clone().max().unwrap_or(0) - values.min().unwrap_or(0)
}

fn moves(cluster: &Value) -> usize {
    cluster["moves"].as_array().map_or(0, Vec::len)
}

/// Every shard's replica set, by the collection's shard status.
async fn shard_replicas(client: &Client) -> Vec<Vec<String>> {
    let info = client.get_collection("pg").await.expect("collection");
    info["shard_status"]
        .as_array()
        .expect("shard_status")
        .iter()
        .map(|s| {
            s["replicas"]
                .as_array()
                .expect("replicas")
                .iter()
                .map(|r| r.as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .collect()
}

/// Polls (bounded) until `done` holds for the cluster; answers how long it took.
async fn wait_cluster(
    client: &Client,
    what: &str,
    timeout: Duration,
    pg: &Playground,
    mut done: impl FnMut(&Value) -> bool,
) -> Duration {
    let started = Instant::now();
    let mut last = Value::Null;
    while started.elapsed() < timeout {
        if let Ok(c) = client.cluster().await {
            if done(&c) {
                return started.elapsed();
            }
            last = c;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!(
        "{what} did not happen within {timeout:?}; last cluster state: {last:#}\n{}",
        pg.logs()
    );
}

fn balanced(c: &Value, workers: usize) -> bool {
    let counts = counts(c);
    counts.len() == workers
        && moves(c) == 0
        && spread(counts.values().map(|v| v.0)) <= 1
        && spread(counts.values().map(|v| v.1)) <= 1
        && counts.values().map(|v| v.0).sum::<u64>() == (SHARDS * REPLICAS) as u64
        && counts.values().map(|v| v.1).sum::<u64>() == SHARDS as u64
}

async fn assert_fully_replicated(client: &Client) {
    for replicas in shard_replicas(client).await {
        let mut distinct = replicas.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), REPLICAS, "shard replicas {replicas:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduler_rebalances_drains_and_repairs_under_traffic() {
    let _serial = serial().await;
    let pg = Playground::start_with_env(
        3,
        3,
        &[],
        &[
            ("VECTRON_HEARTBEAT_TIMEOUT_SECS", "3"),
            ("VECTRON_DOWN_TIMEOUT_SECS", "5"),
        ],
    );
    let client = pg.client();
    client
        .create_collection(&json!({"name": "pg", "dimension": DIM, "metric": "cosine",
                                   "shards": SHARDS, "replication_factor": REPLICAS}))
        .await
        .expect("create collection");
    let loaded = Instant::now();
    upsert_all(&client, 0..POINTS).await;
    eprintln!("upserted {POINTS} points in {:?}", loaded.elapsed());

    // 1. A 4th worker joins; the PD leader is killed as soon as a move runs.
    let traffic = Traffic::start(client.clone(), POINTS);
    let mut worker4 = WorkerProc::new(pg.dir(), "worker-4", &pg.pd_endpoints());
    worker4.spawn();
    let joined = Instant::now();
    wait_cluster(
        &client,
        "a move to worker-4",
        Duration::from_secs(60),
        &pg,
        |c| moves(c) > 0,
    )
    .await;
    let leader_addr = cluster(&client).await["pd"]["leader"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let pd_leader = pg
        .children
        .iter()
        .find(|c| c.addr == leader_addr)
        .unwrap_or_else(|| panic!("PD leader {leader_addr} among {:?}", pg.children))
        .name
        .clone();
    pg.kill9(&pd_leader);
    eprintln!("killed the PD leader {pd_leader} while a move ran");
    let rebalance = wait_cluster(
        &client,
        "rebalancing onto worker-4",
        Duration::from_secs(400),
        &pg,
        |c| balanced(c, 4),
    )
    .await;
    eprintln!(
        "rebalanced 6 shards x 3 replicas onto 4 workers in {:?} (since worker-4 started: {:?}): {:?}",
        rebalance,
        joined.elapsed(),
        counts(&cluster(&client).await)
    );
    assert_fully_replicated(&client).await;

    // 2. Drain worker-1, then remove it; removing a worker with replicas fails.
    let (status, body) = client
        .call(HttpMethod::POST, "/v1/cluster/workers/worker-1/drain", None)
        .await
        .expect("drain call");
    assert_eq!(status, 202, "{body}");
    let drain = wait_cluster(
        &client,
        "draining worker-1",
        Duration::from_secs(400),
        &pg,
        |c| {
            let drained = c["workers"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|w| w["name"] == "worker-1" && w["replicas"] == 0);
            drained && moves(c) == 0
        },
    )
    .await;
    eprintln!("drained worker-1 in {drain:?}");
    assert_fully_replicated(&client).await;
    let (status, body) = client
        .call(HttpMethod::DELETE, "/v1/cluster/workers/worker-2", None)
        .await
        .expect("remove call");
    assert_eq!(status, 409, "removing a worker holding replicas: {body}");
    assert!(
        body.to_string().contains("replicas"),
        "the error says why: {body}"
    );
    let (status, body) = client
        .call(HttpMethod::DELETE, "/v1/cluster/workers/worker-1", None)
        .await
        .expect("remove call");
    assert_eq!(status, 200, "removing the drained worker: {body}");
    pg.kill9("worker-1");

    // 3. A 5th worker joins and is killed -9 while a move to it runs: the
    //    move rolls back once PD marks it Down, and no shard loses a replica.
    let mut worker5 = WorkerProc::new(pg.dir(), "worker-5", &pg.pd_endpoints());
    worker5.spawn();
    wait_cluster(
        &client,
        "a move to worker-5",
        Duration::from_secs(120),
        &pg,
        |c| {
            c["moves"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|m| m["to"] == "worker-5")
        },
    )
    .await;
    worker5.kill9();
    let rollback = wait_cluster(
        &client,
        "rolling back the moves to worker-5",
        Duration::from_secs(120),
        &pg,
        |c| balanced(c, 3),
    )
    .await;
    eprintln!("moves to the killed worker-5 rolled back in {rollback:?}");
    assert_fully_replicated(&client).await;

    // 4. A 6th worker joins and is balanced in, then killed -9 for good:
    //    after the down timeout every shard is back at 3 replicas on the
    //    three workers left.
    let mut worker6 = WorkerProc::new(pg.dir(), "worker-6", &pg.pd_endpoints());
    worker6.spawn();
    let joined = wait_cluster(
        &client,
        "rebalancing onto worker-6",
        Duration::from_secs(400),
        &pg,
        |c| balanced(c, 4),
    )
    .await;
    eprintln!("rebalanced onto worker-6 in {joined:?}");
    worker6.kill9();
    let repair = wait_cluster(
        &client,
        "repair after worker-6 died",
        Duration::from_secs(400),
        &pg,
        |c| balanced(c, 3),
    )
    .await;
    eprintln!(
        "after kill -9 of worker-6 every shard was back at 3 replicas in {repair:?} \
         (heartbeat timeout 3 s + down timeout 5 s included)"
    );
    assert_fully_replicated(&client).await;
    for replicas in shard_replicas(&client).await {
        assert!(
            !replicas
                .iter()
                .any(|r| ["worker-1", "worker-5", "worker-6"].contains(&r.as_str())),
            "{replicas:?}"
        );
    }

    // 5. Nothing acknowledged was lost.
    let acknowledged = traffic.stop().await;
    assert!(acknowledged > POINTS, "the client kept writing");
    all_points_readable(&client, acknowledged)
        .await
        .expect("every acknowledged point is readable");
    assert_eq!(
        client
            .count("pg", &json!({"consistency": "strong"}))
            .await
            .expect("count"),
        acknowledged
    );
    drop(worker4);
    eprintln!("{}", step_summary(pg.dir()));
    check_pd_metrics(&pg, &pd_leader).await;
}

/// The value of an unlabelled sample in a Prometheus text page.
fn sample(page: &str, name: &str) -> u64 {
    page.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no sample {name} in\n{page}"))
}

/// The live PD nodes' metrics agree with what happened: one leader, moves
/// finished, none running, no shard under-replicated, three workers up.
async fn check_pd_metrics(pg: &Playground, killed: &str) {
    let mut pages = Vec::new();
    for pd in pg
        .children
        .iter()
        .filter(|c| c.name.starts_with("pd-") && c.name != killed)
    {
        // The playground serves PD metrics 10 ports above each PD.
        let (host, port) = pd.addr.rsplit_once(':').expect("host:port");
        let port: u16 = port.parse().expect("port");
        let addr = format!("{host}:{}", port + 10);
        let page =
            tokio::task::spawn_blocking(move || crate::gateway_dev::http_get(&addr, "/metrics"))
                .await
                .expect("metrics fetch");
        pages.push(page);
    }
    let total = |name: &str| pages.iter().map(|p| sample(p, name)).sum::<u64>();
    assert_eq!(total("vectron_pd_is_leader"), 1, "{pages:?}");
    let leader = pages
        .iter()
        .find(|p| sample(p, "vectron_pd_is_leader") == 1)
        .expect("leader page");
    assert!(total("vectron_pd_moves_finished_total") > 0, "{leader}");
    assert_eq!(total("vectron_pd_moves_running"), 0, "{leader}");
    assert_eq!(
        sample(leader, "vectron_pd_under_replicated_shards"),
        0,
        "{leader}"
    );
    assert!(
        leader.contains("vectron_pd_workers{state=\"up\"} 3"),
        "{leader}"
    );
    eprintln!(
        "PD metrics since the first leader died: {} moves started, {} finished, {} rolled back",
        total("vectron_pd_moves_started_total"),
        total("vectron_pd_moves_finished_total"),
        total("vectron_pd_moves_failed_total")
    );
}

/// How many move steps of each kind the workers logged as carried out.
fn step_summary(dir: &std::path::Path) -> String {
    let mut logs = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(path) = pending.pop() {
        for entry in std::fs::read_dir(&path).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "log") {
                logs.push(std::fs::read_to_string(&path).unwrap_or_default());
            }
        }
    }
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for line in logs.iter().flat_map(|l| l.lines()) {
        if !line.contains("move step carried out") {
            continue;
        }
        for kind in [
            "ADD_LEARNER",
            "PROMOTE",
            "TRANSFER_LEADER",
            "REMOVE_REPLICA",
        ] {
            if line.contains(kind) {
                *kinds.entry(kind).or_default() += 1;
            }
        }
    }
    format!("move steps carried out by workers: {kinds:?}")
}
