//! `vectron chaos`: starts a real multi-process cluster on loopback, runs
//! concurrent register clients through the gateway while a seeded schedule
//! of faults kills, pauses and restarts its processes, then heals everything
//! and checks: the history is linearizable (Porcupine, `tests/chaos/checker`),
//! no acknowledged write is lost, every replica converges, every remaining
//! point is its own nearest neighbour, and no process crashed on its own.
//! Prints the figures (operations, outcomes, faults, failover times); on
//! failure keeps the data dir with the logs, the history and the checker's
//! visualisation. Does process, disk and network I/O.

pub mod cluster;
pub mod faults;
pub mod history;
pub mod net;
pub mod report;
pub mod rng;
pub mod verify;
pub mod workload;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;
use vectron_client::Client;

use crate::args::ChaosArgs;
use cluster::{Cluster, ClusterSpec, Role};
use faults::{Fault, Injected};
use history::{History, OpKind, Outcome};
use report::Report;
use rng::Rng;

/// The collection the workload uses.
const COLLECTION: &str = "chaos";

/// How long replicas may take to converge after the last heal.
const CONVERGENCE_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a chaos run failed.
#[derive(Debug, thiserror::Error)]
pub enum ChaosError {
    /// The command line asks for something impossible.
    #[error("{0}")]
    Usage(String),
    /// The cluster could not be started or driven.
    #[error("cluster: {0}")]
    Cluster(String),
    /// The checker could not run.
    #[error("checker: {0}")]
    Checker(String),
    /// The run found a violation.
    #[error("{0}")]
    Violation(String),
}

fn free_port_block(seed: u64) -> Option<u16> {
    let free = |base: u16| {
        (0..cluster::PORT_BLOCK)
            .all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok())
    };
    (0..200u64)
        .map(|i| 20_000 + ((seed.wrapping_add(i * 7919)) % 9_000) as u16)
        .find(|b| free(*b))
}

/// Builds the checker into `dir` and runs it on `history`; `Ok(true)` when
/// the history is linearizable.
fn check_linearizable(
    checker_dir: &Path,
    dir: &Path,
    history: &Path,
) -> Result<(bool, String), ChaosError> {
    let binary = dir.join("porcupine-checker");
    let built = std::process::Command::new("go")
        .args(["build", "-o"])
        .arg(&binary)
        .arg(".")
        .current_dir(checker_dir)
        .output()
        .map_err(|e| ChaosError::Checker(format!("cannot run go (is it on PATH?): {e}")))?;
    if !built.status.success() {
        return Err(ChaosError::Checker(format!(
            "go build in {} failed: {}",
            checker_dir.display(),
            String::from_utf8_lossy(&built.stderr)
        )));
    }
    let viz = dir.join("linearizability.html");
    let ran = std::process::Command::new(&binary)
        .arg("-history")
        .arg(history)
        .arg("-viz")
        .arg(&viz)
        .output()
        .map_err(|e| ChaosError::Checker(format!("cannot run the checker: {e}")))?;
    let said = String::from_utf8_lossy(&ran.stdout).trim().to_owned();
    match ran.status.code() {
        Some(0) => Ok((true, said)),
        Some(1) => Ok((false, said)),
        _ => Err(ChaosError::Checker(format!(
            "the check did not complete: {said} {}",
            String::from_utf8_lossy(&ran.stderr)
        ))),
    }
}

/// Creates the test collection and waits until every shard takes writes.
async fn prepare(http: &Client, args: &ChaosArgs) -> Result<(), ChaosError> {
    http.create_collection(&json!({
        "name": COLLECTION,
        "dimension": workload::DIMENSION,
        "metric": "l2",
        "shards": args.shards,
        "replication_factor": args.replication_factor,
    }))
    .await
    .map_err(|e| ChaosError::Cluster(format!("create the collection: {e}")))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let probe = http
            .count(COLLECTION, &json!({"consistency": "strong"}))
            .await;
        if probe.is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(ChaosError::Cluster(format!(
                "the collection's shards did not elect leaders within 60 s: {probe:?}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// After a PD-leader kill: how long until PD takes a write again, measured
/// as creating (and then dropping) a small collection through the gateway.
async fn pd_failover(http: Client, cycle: u32, killed_at: Instant) -> Option<f64> {
    let name = format!("pd-probe-{cycle}");
    let spec =
        json!({"name": name, "dimension": 2, "metric": "l2", "shards": 1, "replication_factor": 1});
    let deadline = killed_at + Duration::from_secs(30);
    while Instant::now() < deadline {
        let attempt =
            tokio::time::timeout(Duration::from_secs(5), http.create_collection(&spec)).await;
        match attempt {
            Ok(Ok(_)) => {
                let took = killed_at.elapsed().as_secs_f64();
                let _ = http.delete_collection(&name).await;
                return Some(took);
            }
            Ok(Err(e)) if e.status() == Some(409) => {
                // An earlier attempt did commit; the write went through.
                let took = killed_at.elapsed().as_secs_f64();
                let _ = http.delete_collection(&name).await;
                return Some(took);
            }
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    None
}

/// Whether `injected` hit a PD node.
fn pd_target(cluster: &Cluster, injected: &Injected) -> bool {
    let pds = cluster.names(Role::Pd);
    injected.targets.iter().any(|t| pds.contains(t))
}

/// Runs `vectron chaos` as described on the module.
pub async fn run(args: ChaosArgs, insecure_internal: bool) -> Result<(), ChaosError> {
    let mix = faults::mix(&args.mix)?;
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
    });
    if args.replication_factor > args.workers {
        return Err(ChaosError::Usage(format!(
            "--replication-factor {} needs at least as many --workers (got {})",
            args.replication_factor, args.workers
        )));
    }
    let dir: PathBuf = args
        .data_dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join(format!("vectron-chaos-{seed}")));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)
            .map_err(|e| ChaosError::Usage(format!("cannot clear {}: {e}", dir.display())))?;
    }
    std::fs::create_dir_all(&dir)
        .map_err(|e| ChaosError::Usage(format!("cannot create {}: {e}", dir.display())))?;
    let checker_dir = std::fs::canonicalize(&args.checker_dir).map_err(|e| {
        ChaosError::Checker(format!(
            "checker module {}: {e}",
            args.checker_dir.display()
        ))
    })?;
    let base_port = free_port_block(seed)
        .ok_or_else(|| ChaosError::Cluster("no block of free loopback ports".into()))?;
    println!(
        "vectron chaos: mix {} ({}), {} cycles, seed {seed}, {} PD + {} workers, {} shards x {} replicas, {} clients on {} keys; data in {}",
        args.mix,
        mix.iter()
            .map(|f| f.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        args.cycles,
        args.pd,
        args.workers,
        args.shards,
        args.replication_factor,
        args.clients,
        args.keys,
        dir.display()
    );
    let spec = ClusterSpec {
        pd: args.pd,
        workers: args.workers,
        base_port,
        election_ms: (args.election_min_ms, args.election_max_ms),
        heartbeat_ms: args.heartbeat_ms,
        plant_stale_reads: args.plant_stale_reads,
        insecure_internal,
    };
    let mut cluster = Cluster::start(&spec, &dir).await?;
    let outcome = drive(&args, mix, seed, &mut cluster, &dir, &checker_dir).await;
    let failed = !matches!(&outcome, Ok(report) if report.passed());
    if failed {
        println!("--- log tails ---\n{}", cluster.log_tails(15));
    }
    cluster.stop().await;
    let report = outcome?;
    println!("{}", report.render());
    if let Some(path) = &args.json {
        std::fs::write(path, report.to_json().to_string())
            .map_err(|e| ChaosError::Usage(format!("cannot write {}: {e}", path.display())))?;
    }
    if report.passed() {
        if !args.keep {
            let _ = std::fs::remove_dir_all(&dir);
        }
        Ok(())
    } else {
        Err(ChaosError::Violation(format!(
            "the run failed ({}); logs, history and visualisation kept in {}",
            report.failures().join("; "),
            dir.display()
        )))
    }
}

async fn drive(
    args: &ChaosArgs,
    mix: &[Fault],
    seed: u64,
    cluster: &mut Cluster,
    dir: &Path,
    checker_dir: &Path,
) -> Result<Report, ChaosError> {
    let http = Client::new(&cluster.http).map_err(|e| ChaosError::Cluster(e.to_string()))?;
    prepare(&http, args).await?;
    let mut rng = Rng::new(seed);
    let history = Arc::new(History::new());
    let stop = Arc::new(AtomicBool::new(false));
    let clients = workload::spawn_clients(
        &cluster.http,
        COLLECTION,
        args.keys,
        args.clients as usize,
        history.clone(),
        stop.clone(),
        &mut rng,
    )
    .map_err(|e| ChaosError::Cluster(e.to_string()))?;
    let started = Instant::now();
    let mut injected: Vec<Injected> = Vec::new();
    let mut crash_points: BTreeMap<String, (u32, u32)> = BTreeMap::new();
    let mut pd_probes = Vec::new();
    let hold = Duration::from_secs_f64(args.fault_secs.max(0.0));
    let recover = Duration::from_secs_f64(args.recover_secs.max(0.0));
    for cycle in 1..=args.cycles {
        let fault = *rng.pick(mix);
        let hist = history.clone();
        let fault_at = Instant::now();
        let done = faults::inject(cluster, fault, COLLECTION, &mut rng, move || hist.now()).await?;
        if fault == Fault::KillPdLeader {
            pd_probes.push(tokio::spawn(pd_failover(http.clone(), cycle, fault_at)));
        }
        if fault == Fault::CrashAtPoint && pd_target(cluster, &done) {
            // PD writes only on metadata changes: make one, so the armed
            // point (log append, apply) is reached within the fault.
            drop(tokio::spawn(pd_failover(http.clone(), cycle, fault_at)));
        }
        println!(
            "cycle {cycle}/{}: {fault} {}{} at {:.1}s",
            args.cycles,
            done.detail
                .clone()
                .unwrap_or_else(|| done.targets.join(",")),
            done.shard
                .map(|s| format!(" (shard {s})"))
                .unwrap_or_default(),
            started.elapsed().as_secs_f64()
        );
        tokio::time::sleep(hold).await;
        let fired = faults::heal(cluster, &done).await?;
        if let Some(point) = done.point {
            println!(
                "  crash point {point}: {}",
                if fired { "fired" } else { "not reached" }
            );
            let entry = crash_points.entry(point.to_owned()).or_insert((0, 0));
            entry.0 += 1;
            entry.1 += u32::from(fired);
        }
        injected.push(done);
        tokio::time::sleep(recover).await;
        let crashed = cluster.crashed();
        if !crashed.is_empty() {
            stop.store(true, Ordering::Relaxed);
            return Err(ChaosError::Violation(format!(
                "processes exited on their own: {}",
                crashed.join(", ")
            )));
        }
    }
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        let _ = client.await;
    }
    let mut pd_failovers = Vec::new();
    for probe in pd_probes {
        if let Ok(Some(took)) = probe.await {
            pd_failovers.push(took);
        }
    }
    cluster.heal_all()?;
    let healed = Instant::now();
    cluster
        .wait_serving(args.workers as usize, Duration::from_secs(60))
        .await?;

    // Final strong reads of every key, as one more client.
    let final_client = args.clients as usize;
    for key in 0..args.keys {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let outcome = workload::operate(
                &http,
                COLLECTION,
                &history,
                final_client,
                key,
                OpKind::Get,
                String::new(),
            )
            .await;
            if outcome == Outcome::Ok {
                break;
            }
            if Instant::now() > deadline {
                return Err(ChaosError::Violation(format!(
                    "key {key} could not be read within 60 s of the heal"
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let records = history.records();
    let present: Vec<u64> = records
        .iter()
        .filter(|r| r.client == final_client && r.outcome == Outcome::Ok && r.found)
        .filter_map(|r| r.key.parse().ok())
        .collect();
    let converged = verify::convergence(cluster, COLLECTION, CONVERGENCE_TIMEOUT).await;
    let converged_after = converged.as_ref().ok().map(|_| healed.elapsed());
    let search_misses = verify::own_nearest(&http, COLLECTION, &present).await?;
    let lost = verify::lost_writes(&records, final_client);

    let shards = cluster.shards(COLLECTION).await?;
    let shard_of_key = |key: &str| {
        let id = vectron_ids::PointId::Num(key.parse().ok()?);
        let hash = vectron_routing::point_hash(&id);
        shards
            .iter()
            .find(|s| s.range_start <= hash && hash <= s.range_end)
            .map(|s| s.shard_id)
    };
    let shard_failovers = verify::shard_failovers(&records, &injected, &shard_of_key);

    let history_path = dir.join("history.json");
    history
        .write(&history_path)
        .map_err(|e| ChaosError::Checker(format!("cannot write the history: {e}")))?;
    let (linearizable, checker_said) = check_linearizable(checker_dir, dir, &history_path)?;

    let mut fault_counts: BTreeMap<String, u32> = BTreeMap::new();
    for i in &injected {
        *fault_counts.entry(i.fault.to_string()).or_default() += 1;
    }
    Ok(Report {
        seed,
        mix: args.mix.clone(),
        cycles: args.cycles,
        elapsed: started.elapsed(),
        records,
        fault_counts,
        linearizable,
        checker_said,
        lost,
        convergence: converged.map_err(|e| e.to_string()),
        converged_after,
        search_misses,
        shard_failovers,
        pd_failovers,
        crash_points,
        history_path,
    })
}
