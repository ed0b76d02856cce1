//! The faults a chaos run injects, the named mixes of them, and injecting
//! and healing one: kill -9 then restart, or SIGSTOP then SIGCONT, of a
//! worker, a shard's leader, the PD leader, or every worker at once; a
//! restart with a crash point armed (the process aborts at a named place —
//! mid log append, mid apply, mid snapshot, mid index dump, at a move step —
//! and is restarted plainly at heal); or a network fault through the run's
//! proxies — a node, a shard leader or the PD leader cut off from every
//! other member, the members split in two, or in two with one node bridging
//! them, and links slowed. Does process and network I/O through the cluster.

use std::fmt;
use std::time::Duration;

use super::ChaosError;
use super::cluster::{Cluster, Role};
use super::rng::Rng;

/// One kind of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// kill -9 of a random worker, restarted at heal.
    KillWorker,
    /// kill -9 of the worker leading a random shard.
    KillShardLeader,
    /// kill -9 of the PD leader.
    KillPdLeader,
    /// kill -9 of every worker at once.
    KillAllWorkers,
    /// SIGSTOP of a random worker, SIGCONT at heal.
    PauseWorker,
    /// SIGSTOP of the worker leading a random shard.
    PauseShardLeader,
    /// SIGSTOP of the PD leader.
    PausePdLeader,
    /// A worker or PD node restarted with one crash point armed (needs a
    /// build with the `failpoints` feature).
    CrashAtPoint,
    /// A random PD node or worker cut off from every other member.
    IsolateNode,
    /// The worker leading a random shard cut off from every PD node and
    /// worker, while the gateway still reaches it: it stays leader in its
    /// own eyes until it hears otherwise, so a read it answered without
    /// confirming its leadership would be stale.
    IsolateShardLeader,
    /// The PD leader cut off from every other PD node and worker, while the
    /// gateway still reaches it.
    IsolatePdLeader,
    /// The members split at random into two sides that cannot reach each
    /// other (one of them a minority, unless they are even).
    PartitionHalves,
    /// Two sides that cannot reach each other, and one node that reaches
    /// both.
    PartitionBridge,
    /// Every link slowed by 5–100 ms each way, at random per member.
    SlowNetwork,
    /// One PD node or worker's links slowed by 100–800 ms each way, around
    /// the election timeout.
    SlowNode,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Fault::KillWorker => "kill-worker",
            Fault::KillShardLeader => "kill-shard-leader",
            Fault::KillPdLeader => "kill-pd-leader",
            Fault::KillAllWorkers => "kill-all-workers",
            Fault::PauseWorker => "pause-worker",
            Fault::PauseShardLeader => "pause-shard-leader",
            Fault::PausePdLeader => "pause-pd-leader",
            Fault::CrashAtPoint => "crash-at-point",
            Fault::IsolateNode => "isolate-node",
            Fault::IsolateShardLeader => "isolate-shard-leader",
            Fault::IsolatePdLeader => "isolate-pd-leader",
            Fault::PartitionHalves => "partition-halves",
            Fault::PartitionBridge => "partition-bridge",
            Fault::SlowNetwork => "slow-network",
            Fault::SlowNode => "slow-node",
        })
    }
}

/// The faults of the mix named `name`.
pub fn mix(name: &str) -> Result<&'static [Fault], ChaosError> {
    use Fault::*;
    match name {
        "kill" => Ok(&[KillWorker, KillShardLeader, KillPdLeader]),
        "pause" => Ok(&[PauseWorker, PauseShardLeader, PausePdLeader]),
        "mixed" => Ok(&[
            KillWorker,
            KillShardLeader,
            KillPdLeader,
            KillAllWorkers,
            PauseWorker,
            PauseShardLeader,
            PausePdLeader,
            IsolateNode,
            IsolateShardLeader,
            IsolatePdLeader,
            PartitionHalves,
            PartitionBridge,
            SlowNetwork,
            SlowNode,
        ]),
        "partition" => Ok(&[
            IsolateNode,
            IsolateShardLeader,
            IsolatePdLeader,
            PartitionHalves,
            PartitionBridge,
            SlowNetwork,
            SlowNode,
        ]),
        "failover" => Ok(&[KillShardLeader, KillPdLeader]),
        "crash" if !vectron_raft::failpoint::ENABLED => Err(ChaosError::Usage(
            "mix crash arms crash points, which this binary lacks; build it with \
             `cargo build -p vectron --features failpoints`"
                .into(),
        )),
        "crash" => Ok(&[CrashAtPoint]),
        other => Err(ChaosError::Usage(format!(
            "unknown mix {other:?}; use kill, pause, partition, mixed, failover or crash"
        ))),
    }
}

/// A fault as injected.
#[derive(Debug, Clone)]
pub struct Injected {
    /// The kind.
    pub fault: Fault,
    /// The members it hit.
    pub targets: Vec<String>,
    /// For shard-leader faults, the shard whose leader it hit.
    pub shard: Option<u64>,
    /// For a crash point, its name.
    pub point: Option<&'static str>,
    /// For a network fault, what it did (the sides of a partition, the
    /// delays).
    pub detail: Option<String>,
    /// When, in ns since the run started.
    pub at: i64,
}

/// The worker leading `shard_id`, as PD last heard.
async fn shard_leader(
    cluster: &Cluster,
    collection: &str,
    rng: &mut Rng,
) -> Result<(u64, String), ChaosError> {
    let shards = cluster.shards(collection).await?;
    if shards.is_empty() {
        return Err(ChaosError::Cluster("the collection has no shards".into()));
    }
    let shard = rng.pick(&shards);
    let leader = shard
        .replicas
        .iter()
        .find(|r| r.worker_id == shard.leader_worker_id)
        .or_else(|| shard.replicas.first())
        .map(|r| r.worker_name.clone())
        .ok_or_else(|| ChaosError::Cluster(format!("shard {} has no replicas", shard.shard_id)))?;
    Ok((shard.shard_id, leader))
}

async fn pd_leader(cluster: &Cluster, rng: &mut Rng) -> String {
    match cluster.pd_leader().await {
        Some(leader) => leader,
        None => rng.pick(&cluster.names(Role::Pd)).clone(),
    }
}

/// Injects `fault`; `now` reads the run's clock.
pub async fn inject(
    cluster: &mut Cluster,
    fault: Fault,
    collection: &str,
    rng: &mut Rng,
    now: impl Fn() -> i64,
) -> Result<Injected, ChaosError> {
    let (targets, shard) = match fault {
        Fault::KillWorker | Fault::PauseWorker => {
            (vec![rng.pick(&cluster.names(Role::Worker)).clone()], None)
        }
        Fault::KillShardLeader | Fault::PauseShardLeader => {
            let (shard, leader) = shard_leader(cluster, collection, rng).await?;
            (vec![leader], Some(shard))
        }
        Fault::KillPdLeader | Fault::PausePdLeader => (vec![pd_leader(cluster, rng).await], None),
        Fault::KillAllWorkers => (cluster.names(Role::Worker), None),
        Fault::CrashAtPoint => {
            // Workers hold most of the crash points; PD gets one in three.
            if rng.below(3) == 0 {
                (vec![pd_leader(cluster, rng).await], None)
            } else {
                (vec![rng.pick(&cluster.names(Role::Worker)).clone()], None)
            }
        }
        Fault::IsolateNode | Fault::SlowNode => (vec![rng.pick(&servers(cluster)).clone()], None),
        Fault::IsolateShardLeader => {
            let (shard, leader) = shard_leader(cluster, collection, rng).await?;
            (vec![leader], Some(shard))
        }
        Fault::IsolatePdLeader => (vec![pd_leader(cluster, rng).await], None),
        Fault::PartitionHalves | Fault::PartitionBridge | Fault::SlowNetwork => {
            (cluster.all_names(), None)
        }
    };
    let point = (fault == Fault::CrashAtPoint).then(|| {
        let is_pd = targets
            .first()
            .is_some_and(|t| cluster.names(Role::Pd).contains(t));
        let points = if is_pd {
            vectron_raft::failpoint::PD_POINTS
        } else {
            vectron_raft::failpoint::WORKER_POINTS
        };
        *rng.pick(points)
    });
    let at = now();
    if let Some(detail) = network_fault(cluster, fault, &targets, rng)? {
        return Ok(Injected {
            fault,
            targets,
            shard,
            point,
            detail: Some(detail),
            at,
        });
    }
    for target in &targets {
        match fault {
            Fault::PauseWorker | Fault::PauseShardLeader | Fault::PausePdLeader => {
                cluster.pause(target)?
            }
            Fault::CrashAtPoint => {
                let point = point.unwrap_or_default();
                cluster.restart_armed(target, point).await?
            }
            _ => cluster.kill9(target).await?,
        }
    }
    Ok(Injected {
        fault,
        targets,
        shard,
        point,
        detail: None,
        at,
    })
}

/// PD nodes and workers: the members that hold state.
fn servers(cluster: &Cluster) -> Vec<String> {
    let mut names = cluster.names(Role::Pd);
    names.extend(cluster.names(Role::Worker));
    names
}

/// `names` split at random into two non-empty sides (`names` has two or
/// more).
fn split(names: &[String], rng: &mut Rng) -> (Vec<String>, Vec<String>) {
    loop {
        let (a, b): (Vec<String>, Vec<String>) =
            names.iter().cloned().partition(|_| rng.below(2) == 0);
        if !a.is_empty() && !b.is_empty() {
            return (a, b);
        }
    }
}

/// Carries out `fault` on the network when it is a network fault, and
/// says what it did; `Ok(None)` for the other faults.
fn network_fault(
    cluster: &Cluster,
    fault: Fault,
    targets: &[String],
    rng: &mut Rng,
) -> Result<Option<String>, ChaosError> {
    let ip = |name: &String| {
        cluster
            .ip(name)
            .ok_or_else(|| ChaosError::Cluster(format!("no member named {name}")))
    };
    let ips = |names: &[String]| names.iter().map(ip).collect::<Result<Vec<_>, _>>();
    let everyone = cluster.all_names();
    let net = cluster.network();
    let detail = match fault {
        Fault::IsolateNode | Fault::IsolateShardLeader | Fault::IsolatePdLeader => {
            // A lone node is cut from everyone; a leader keeps the gateway,
            // which goes on sending it reads and writes.
            let from = if fault == Fault::IsolateNode {
                everyone
            } else {
                servers(cluster)
            };
            let others: Vec<String> = from
                .iter()
                .filter(|n| !targets.contains(n))
                .cloned()
                .collect();
            net.cut(&ips(targets)?, &ips(&others)?);
            format!("{} cut off from {}", targets.join(","), others.join(","))
        }
        Fault::PartitionHalves => {
            let (a, b) = split(&everyone, rng);
            net.cut(&ips(&a)?, &ips(&b)?);
            format!("{} | {}", a.join(","), b.join(","))
        }
        Fault::PartitionBridge => {
            let bridge = rng.pick(&servers(cluster)).clone();
            let rest: Vec<String> = everyone.iter().filter(|n| **n != bridge).cloned().collect();
            let (a, b) = split(&rest, rng);
            net.cut(&ips(&a)?, &ips(&b)?);
            format!(
                "{} | {} | {}, bridged by {bridge}",
                a.join(","),
                b.join(","),
                bridge
            )
        }
        Fault::SlowNetwork => {
            let mut said = Vec::new();
            for name in &everyone {
                let by = Duration::from_millis(5 + rng.below(96));
                net.slow(ip(name)?, by);
                said.push(format!("{name} {} ms", by.as_millis()));
            }
            said.join(", ")
        }
        Fault::SlowNode => {
            let by = Duration::from_millis(100 + rng.below(701));
            for name in targets {
                net.slow(ip(name)?, by);
            }
            format!("{} slowed by {} ms", targets.join(","), by.as_millis())
        }
        _ => return Ok(None),
    };
    Ok(Some(detail))
}

/// Whether `fault` is carried out on the network (healed all at once).
pub fn is_network_fault(fault: Fault) -> bool {
    matches!(
        fault,
        Fault::IsolateNode
            | Fault::IsolateShardLeader
            | Fault::IsolatePdLeader
            | Fault::PartitionHalves
            | Fault::PartitionBridge
            | Fault::SlowNetwork
            | Fault::SlowNode
    )
}

/// Undoes `injected`: restarts what was killed, resumes what was paused,
/// disarms a crash point. Returns whether an armed crash point fired.
pub async fn heal(cluster: &mut Cluster, injected: &Injected) -> Result<bool, ChaosError> {
    if is_network_fault(injected.fault) {
        cluster.network().heal();
        return Ok(false);
    }
    let mut fired = false;
    for target in &injected.targets {
        match injected.fault {
            Fault::PauseWorker | Fault::PauseShardLeader | Fault::PausePdLeader => {
                cluster.resume(target)?
            }
            Fault::CrashAtPoint => fired |= cluster.disarm(target).await?,
            _ => cluster.restart(target)?,
        }
    }
    Ok(fired)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_mix_exists_and_others_are_refused() {
        for name in ["kill", "pause", "partition", "mixed", "failover"] {
            assert!(!mix(name).expect("mix").is_empty());
        }
        assert_eq!(mix("mixed").expect("mix").len(), 14);
        let partition = mix("partition").expect("mix");
        assert!(partition.iter().all(|f| is_network_fault(*f)));
        assert!(
            mix("kill")
                .expect("mix")
                .iter()
                .all(|f| !is_network_fault(*f))
        );
        assert!(mix("nope").is_err());
        // The crash mix needs the crash points compiled in.
        assert_eq!(mix("crash").is_ok(), vectron_raft::failpoint::ENABLED);
    }

    #[test]
    fn a_split_has_two_non_empty_sides_holding_every_name_once() {
        let names: Vec<String> = (1..=7).map(|i| format!("m{i}")).collect();
        let mut rng = Rng::new(3);
        for _ in 0..200 {
            let (a, b) = split(&names, &mut rng);
            assert!(!a.is_empty() && !b.is_empty());
            let mut all: Vec<String> = a.iter().chain(b.iter()).cloned().collect();
            all.sort();
            let mut expected = names.clone();
            expected.sort();
            assert_eq!(all, expected);
        }
    }
}
