//! The faults a chaos run injects, the named mixes of them, and injecting
//! and healing one: kill -9 then restart, or SIGSTOP then SIGCONT, of a
//! worker, a shard's leader, the PD leader, or every worker at once; or a
//! restart with a crash point armed (the process aborts at a named place —
//! mid log append, mid apply, mid snapshot, mid index dump, at a move step —
//! and is restarted plainly at heal). Does process I/O through the cluster.

use std::fmt;

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
        ]),
        "failover" => Ok(&[KillShardLeader, KillPdLeader]),
        "crash" if !vectron_raft::failpoint::ENABLED => Err(ChaosError::Usage(
            "mix crash arms crash points, which this binary lacks; build it with \
             `cargo build -p vectron --features failpoints`"
                .into(),
        )),
        "crash" => Ok(&[CrashAtPoint]),
        other => Err(ChaosError::Usage(format!(
            "unknown mix {other:?}; use kill, pause, mixed, failover or crash"
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
        at,
    })
}

/// Undoes `injected`: restarts what was killed, resumes what was paused,
/// disarms a crash point. Returns whether an armed crash point fired.
pub async fn heal(cluster: &mut Cluster, injected: &Injected) -> Result<bool, ChaosError> {
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
        for name in ["kill", "pause", "mixed", "failover"] {
            assert!(!mix(name).expect("mix").is_empty());
        }
        assert_eq!(mix("mixed").expect("mix").len(), 7);
        assert!(mix("nope").is_err());
        // The crash mix needs the crash points compiled in.
        assert_eq!(mix("crash").is_ok(), vectron_raft::failpoint::ENABLED);
    }
}
