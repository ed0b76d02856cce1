//! PD benchmark (a program, not a test): on a 3-process PD cluster on
//! loopback, measures RegisterWorker and CreateCollection throughput and
//! latency (sequential and concurrent), and the time from kill -9 of the
//! leader to the next acknowledged write over 10 kills.
//!
//! Run: `cargo bench -p vectron --bench pd_bench` (release build), or for a
//! quick run without a release build of the dependencies:
//! `cargo test -p vectron --bench pd_bench -- --bench`.
//! Without `--bench` (as under `cargo test`) it does nothing.

#[path = "../tests/suite/harness.rs"]
mod harness;

use std::sync::Arc;
use std::time::{Duration, Instant};

use harness::PdCluster;
use vectron_pd::PdClient;
use vectron_proto::common::v1::Metric;
use vectron_proto::pd::v1 as pb;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank]
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

struct Run {
    name: String,
    ops: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Run {
    fn print(&mut self) {
        self.latencies.sort();
        println!(
            "{:<34} {:>6} {:>10.0} {:>9} {:>9} {:>9}",
            self.name,
            self.ops,
            self.ops as f64 / self.elapsed.as_secs_f64(),
            ms(percentile(&self.latencies, 0.5)),
            ms(percentile(&self.latencies, 0.99)),
            ms(*self.latencies.last().unwrap_or(&Duration::ZERO)),
        );
    }
}

async fn register(client: &PdClient, name: String) {
    let request = pb::RegisterWorkerRequest {
        name,
        addr: "127.0.0.1:1".into(),
        zone: String::new(),
        ..Default::default()
    };
    client
        .call(|mut c| {
            let request = request.clone();
            async move { c.register_worker(request).await }
        })
        .await
        .expect("register");
}

async fn create(client: &PdClient, name: String) {
    let request = pb::CreateCollectionRequest {
        spec: Some(pb::CollectionSpec {
            name,
            dimension: 128,
            metric: Metric::Cosine.into(),
            shards: 4,
            replication_factor: 3,
            hnsw: None,
        }),
    };
    client
        .call(|mut c| {
            let request = request.clone();
            async move { c.create_collection(request).await }
        })
        .await
        .expect("create");
}

/// Runs `ops` calls of `op` with `concurrency` in flight.
async fn measure<F, Fut>(name: &str, ops: usize, concurrency: usize, op: F) -> Run
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (op, next) = (op.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= ops {
                    return latencies;
                }
                let t = Instant::now();
                op(i).await;
                latencies.push(t.elapsed());
            }
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("task"));
    }
    Run {
        name: format!("{name} (c={concurrency})"),
        ops,
        elapsed: start.elapsed(),
        latencies,
    }
}

async fn failover(cluster: &mut PdCluster, kills: usize) -> Vec<Duration> {
    let mut times = Vec::new();
    for round in 0..kills {
        let leader = cluster.wait_for_leader(Duration::from_secs(30)).await;
        cluster.node(leader).kill9();
        let killed_at = Instant::now();
        let client = cluster.client();
        let request = pb::KvPutRequest {
            key: format!("failover/{round}").into_bytes(),
            value: b"x".to_vec(),
            expected_version: None,
        };
        client
            .call(|mut c| {
                let request = request.clone();
                async move { c.kv_put(request).await }
            })
            .await
            .expect("write after failover");
        times.push(killed_at.elapsed());
        // Bring the node back and let it catch up before the next kill.
        cluster.restart(leader);
        let applied = cluster.nodes[(leader + 1) % 3]
            .members()
            .await
            .map(|m| m.applied_index)
            .unwrap_or(0);
        let node = &cluster.nodes[leader];
        harness::wait_for(
            "restarted node to catch up",
            Duration::from_secs(30),
            || async { node.members().await.filter(|m| m.applied_index >= applied) },
        )
        .await;
    }
    times
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!(
            "pd_bench: skipped (run with --bench, e.g. `cargo bench -p vectron --bench pd_bench`)"
        );
        return;
    }
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    runtime.block_on(async {
        // The registered workers never heartbeat; keep them Up for the run.
        let mut cluster = PdCluster::start(3, &["--heartbeat-timeout-secs", "3600"]);
        cluster.wait_for_leader(Duration::from_secs(30)).await;
        let client = Arc::new(cluster.client());
        println!("PD benchmark: 3 `vectron pd` processes on loopback, fsync on every Raft append");
        println!(
            "{:<34} {:>6} {:>10} {:>9} {:>9} {:>9}",
            "operation", "ops", "ops/s", "p50 ms", "p99 ms", "max ms"
        );
        for concurrency in [1, 16] {
            let c = client.clone();
            measure("RegisterWorker", 300, concurrency, move |i| {
                let c = c.clone();
                async move { register(&c, format!("w-{concurrency}-{i}")).await }
            })
            .await
            .print();
        }
        for concurrency in [1, 16] {
            let c = client.clone();
            measure("CreateCollection (4 shards, rf 3)", 200, concurrency, move |i| {
                let c = c.clone();
                async move { create(&c, format!("c-{concurrency}-{i}")).await }
            })
            .await
            .print();
        }
        let mut times = failover(&mut cluster, 10).await;
        times.sort();
        println!(
            "leader kill -9 -> next acknowledged write, 10 kills: min {} ms, median {} ms, max {} ms",
            ms(times[0]),
            ms(percentile(&times, 0.5)),
            ms(times[times.len() - 1])
        );
    });
}
