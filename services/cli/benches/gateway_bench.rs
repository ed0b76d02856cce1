//! Gateway benchmark (a program, not a test): `vectron dev` on loopback with
//! one collection of 20,000 × 128-dim points (l2, one shard). Measures upsert
//! throughput through REST, then search QPS, p50/p99 latency and recall@10
//! of the same queries sent three ways side by side — REST through the
//! gateway, gRPC through the gateway, and gRPC straight to the worker that
//! holds the shard — so the gateway's own cost is visible.
//!
//! Run: `cargo bench -p vectron --bench gateway_bench`, or without a release
//! build `cargo test -p vectron --bench gateway_bench -- --bench`. Without
//! `--bench` it does nothing.

#[path = "support/bench_data.rs"]
mod bench_data;
#[path = "../tests/suite/cluster_harness.rs"]
mod cluster_harness;
#[path = "../tests/suite/harness.rs"]
mod harness;

use std::collections::HashSet;

use bench_data::{pct, vectors};
use std::time::{Duration, Instant};

use cluster_harness::DevServer;
use serde_json::json;
use vectron_client::{Point, PointId};
use vectron_proto::pd::v1 as pd;
use vectron_proto::worker::v1 as worker;

const N: usize = 20_000;
const DIM: usize = 128;
const QUERIES: usize = 300;
const K: usize = 10;
const EF: u32 = 128;
const BATCH: usize = 500;

fn exact(data: &[Vec<f32>], q: &[f32]) -> HashSet<u64> {
    let mut scored: Vec<(f32, u64)> = data
        .iter()
        .enumerate()
        .map(|(i, v)| {
            (
                v.iter().zip(q).map(|(a, b)| (a - b) * (a - b)).sum(),
                i as u64,
            )
        })
        .collect();
    scored.select_nth_unstable_by(K, |a: &(f32, u64), b| a.0.total_cmp(&b.0));
    scored[..K].iter().map(|(_, i)| *i).collect()
}

/// The integer id a wire message carries, if it is one.
fn numeric_id(id: Option<&vectron_proto::common::v1::PointId>) -> Option<u64> {
    match id?.kind {
        Some(vectron_proto::common::v1::point_id::Kind::Num(n)) => Some(n),
        _ => None,
    }
}

fn report(name: &str, latencies: &mut [Duration], total: Duration, found: usize) {
    latencies.sort();
    println!(
        "{name:<36} {:>8.0} {:>9.2} {:>9.2} {:>9.3}",
        latencies.len() as f64 / total.as_secs_f64(),
        pct(latencies, 0.5),
        pct(latencies, 0.99),
        found as f64 / (latencies.len() * K) as f64
    );
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(bench());
}

async fn bench() {
    let data = vectors(N, DIM, 7);
    let queries = vectors(QUERIES, DIM, 99);
    let truth: Vec<HashSet<u64>> = queries.iter().map(|q| exact(&data, q)).collect();

    let dev = DevServer::start().await;
    let client = dev.client();
    client
        .create_collection(&json!({"name": "bench", "dimension": DIM, "metric": "l2", "shards": 1}))
        .await
        .expect("create collection");
    let start = Instant::now();
    for (b, chunk) in data.chunks(BATCH).enumerate() {
        let points: Vec<Point> = chunk
            .iter()
            .enumerate()
            .map(|(i, v)| Point::new((b * BATCH + i) as u64, v.clone()))
            .collect();
        client.upsert("bench", &points).await.expect("upsert");
    }
    let insert = start.elapsed();
    println!(
        "upsert {N} x {DIM} through REST (batches of {BATCH}, rf 1, fsync): {:.1} s, {:.0} points/s",
        insert.as_secs_f64(),
        N as f64 / insert.as_secs_f64()
    );

    // The worker holding the shard, found through PD.
    let ports: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dev.data_dir().join("dev-ports.json")).expect("dev ports"),
    )
    .expect("dev ports JSON");
    let pd_client = vectron_pd::PdClient::new(&[format!("127.0.0.1:{}", ports["pd"])]).expect("pd");
    let table = pd_client
        .call(|mut c| async move {
            c.get_routing_table(pd::GetRoutingTableRequest {
                collection: "bench".into(),
            })
            .await
        })
        .await
        .expect("routing table");
    let shard = table.shards[0].clone();
    let mut direct = harness::worker_client(&format!("127.0.0.1:{}", ports["worker"]))
        .await
        .expect("worker client");
    let mut grpc =
        vectron_proto::v1::vectron_client::VectronClient::connect(format!("http://{}", dev.grpc))
            .await
            .expect("gateway gRPC");

    println!("\nsearch, one client, {QUERIES} queries, top_k {K}, ef {EF}, strong consistency");
    println!(
        "{:<36} {:>8} {:>9} {:>9} {:>9}",
        "path", "QPS", "p50 ms", "p99 ms", "recall@10"
    );
    for round in 0..2 {
        let label = |s: &str| {
            if round == 0 {
                format!("{s} (warm-up)")
            } else {
                s.to_owned()
            }
        };

        let (mut lat, mut found, start) = (Vec::new(), 0, Instant::now());
        for (q, t) in queries.iter().zip(&truth) {
            let begun = Instant::now();
            let hits = direct
                .search(worker::SearchRequest {
                    shard: Some(worker::ShardRef {
                        shard_id: shard.shard_id,
                        epoch: shard.epoch,
                    }),
                    vector: q.clone(),
                    top_k: K as u32,
                    ef: EF,
                    ..Default::default()
                })
                .await
                .expect("worker search")
                .into_inner()
                .results;
            lat.push(begun.elapsed());
            found += hits
                .iter()
                .filter(|h| numeric_id(h.id.as_ref()).is_some_and(|n| t.contains(&n)))
                .count();
        }
        report(
            &label("worker gRPC (no gateway)"),
            &mut lat,
            start.elapsed(),
            found,
        );

        let (mut lat, mut found, start) = (Vec::new(), 0, Instant::now());
        for (q, t) in queries.iter().zip(&truth) {
            let begun = Instant::now();
            let hits = grpc
                .search_points(vectron_proto::v1::SearchPointsRequest {
                    collection: "bench".into(),
                    vector: q.clone(),
                    top_k: K as u32,
                    ef: Some(EF),
                    ..Default::default()
                })
                .await
                .expect("gateway gRPC search")
                .into_inner()
                .results;
            lat.push(begun.elapsed());
            found += hits
                .iter()
                .filter(|h| numeric_id(h.id.as_ref()).is_some_and(|n| t.contains(&n)))
                .count();
        }
        report(&label("gateway gRPC"), &mut lat, start.elapsed(), found);

        let (mut lat, mut found, start) = (Vec::new(), 0, Instant::now());
        for (q, t) in queries.iter().zip(&truth) {
            let begun = Instant::now();
            let hits = client
                .search("bench", &json!({"vector": q, "top_k": K, "ef": EF}))
                .await
                .expect("REST search");
            lat.push(begun.elapsed());
            found += hits
                .iter()
                .filter(|h| matches!(h.id, PointId::Num(n) if t.contains(&n)))
                .count();
        }
        report(&label("gateway REST"), &mut lat, start.elapsed(), found);
    }
}
