//! Carrying out the replica-move steps PD sends in heartbeat replies, on the
//! worker leading the shard: add a learner, promote it, remove a replica
//! (membership changes through openraft) and hand leadership over. Each step
//! is idempotent, checked against the group's current membership first, so
//! PD may resend it every second until its reports show it done. A step
//! already running is not started twice. Does network I/O through Raft.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::{BasicNode, ChangeMembers, ServerState};
use tracing::{info, warn};
use vectron_proto::pd::v1 as pd;
use vectron_proto::raft::v1::TriggerElectionRequest;
use vectron_proto::raft::v1::raft_client::RaftClient;
use vectron_raft::network::ChannelPool;

use crate::replica::Replica;

/// How long one step may run on the worker before it is given up (PD
/// resends it if it still matters).
const STEP_DEADLINE: Duration = Duration::from_secs(30);

/// Why a step could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// The step names a worker the placement gives no address for.
    #[error("no address for worker {0} in the placement")]
    UnknownTarget(u64),
    /// openraft refused or failed the change.
    #[error("raft: {0}")]
    Raft(String),
    /// The successor could not be asked to campaign.
    #[error("asking worker {worker} to campaign: {message}")]
    Campaign {
        /// The successor.
        worker: u64,
        /// What failed.
        message: String,
    },
    /// The step did not finish within its deadline.
    #[error("did not finish within {0:?}")]
    Deadline(Duration),
}

type StepKey = (u64, i32, u64);

/// Runs move steps in the background, at most one per (shard, kind, target).
#[derive(Clone)]
pub struct StepRunner {
    running: Arc<Mutex<HashSet<StepKey>>>,
    pool: ChannelPool,
    /// Followers' leader lease (openraft's `election_timeout_max`): how long
    /// a silent leader's followers still refuse to vote for someone else.
    lease: Duration,
}

/// Clears a step's entry in the running set when the step ends.
struct Running {
    running: Arc<Mutex<HashSet<StepKey>>>,
    key: StepKey,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.key);
    }
}

impl StepRunner {
    /// A runner whose hand-overs wait out `lease`.
    pub fn new(pool: ChannelPool, lease: Duration) -> Self {
        Self {
            running: Arc::default(),
            pool,
            lease,
        }
    }

    /// Starts `step` on `replica` unless the same step is running; `addr`
    /// is the target worker's address from the placement.
    pub fn launch(&self, replica: Arc<Replica>, step: pd::MoveStep, addr: Option<String>) {
        let key = (step.shard_id, step.kind, step.target_worker_id);
        if !self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key)
        {
            return;
        }
        let guard = Running {
            running: self.running.clone(),
            key,
        };
        let (pool, lease) = (self.pool.clone(), self.lease);
        tokio::spawn(async move {
            let _guard = guard;
            let kind = step.kind();
            let outcome =
                tokio::time::timeout(STEP_DEADLINE, run(&replica, &step, addr, &pool, lease))
                    .await
                    .unwrap_or(Err(StepError::Deadline(STEP_DEADLINE)));
            match outcome {
                Ok(true) => info!(
                    shard = step.shard_id,
                    step = kind.as_str_name(),
                    target = step.target_worker_id,
                    move_id = step.move_id,
                    "move step carried out"
                ),
                Ok(false) => {}
                Err(e) => warn!(
                    shard = step.shard_id,
                    step = kind.as_str_name(),
                    target = step.target_worker_id,
                    error = %e,
                    "move step failed; PD will resend it"
                ),
            }
        });
    }
}

fn raft_error(e: impl std::fmt::Display) -> StepError {
    StepError::Raft(e.to_string())
}

/// Carries out one step; `Ok(false)` when there was nothing to do.
async fn run(
    replica: &Replica,
    step: &pd::MoveStep,
    addr: Option<String>,
    pool: &ChannelPool,
    lease: Duration,
) -> Result<bool, StepError> {
    let target = step.target_worker_id;
    // A step from an older placement than one already seen (its task ran
    // late) is stale: PD has moved on.
    if step.epoch < replica.epoch.load(Ordering::Relaxed) {
        return Ok(false);
    }
    let metrics = replica.raft.metrics().borrow().clone();
    if metrics.state != ServerState::Leader {
        return Ok(false);
    }
    let membership = metrics.membership_config.membership().clone();
    let is_voter = membership.voter_ids().any(|id| id == target);
    let is_member = membership.get_node(&target).is_some();
    match step.kind() {
        pd::MoveStepKind::AddLearner => {
            vectron_raft::crash_point!("worker::move::add_learner");
            if is_voter {
                // PD adds a fresh learner, so this voter is what an earlier
                // replica on that worker left behind; the worker has
                // destroyed it, and the new one would rejoin empty with the
                // old vote counted. Remove it; PD resends the step.
                warn!(
                    shard = replica.shard_id,
                    target, "removing a leftover voter before adding it back as a learner"
                );
                replica
                    .raft
                    .change_membership(ChangeMembers::RemoveVoters(BTreeSet::from([target])), false)
                    .await
                    .map_err(raft_error)?;
                return Ok(true);
            }
            if is_member {
                return Ok(false);
            }
            let addr = addr.ok_or(StepError::UnknownTarget(target))?;
            replica
                .raft
                .add_learner(target, BasicNode::new(addr), false)
                .await
                .map_err(raft_error)?;
        }
        pd::MoveStepKind::Promote => {
            vectron_raft::crash_point!("worker::move::promote");
            if is_voter {
                return Ok(false);
            }
            if !is_member {
                return Err(StepError::Raft(format!(
                    "worker {target} is not a learner of the group yet"
                )));
            }
            let voters: BTreeSet<u64> = membership.voter_ids().collect();
            let change = promotion(&voters, target, step.replaces_worker_id, metrics.id);
            replica
                .raft
                .change_membership(change, false)
                .await
                .map_err(raft_error)?;
        }
        pd::MoveStepKind::RemoveReplica => {
            vectron_raft::crash_point!("worker::move::remove_replica");
            let ids = BTreeSet::from([target]);
            let change = if is_voter {
                ChangeMembers::RemoveVoters(ids)
            } else if is_member {
                ChangeMembers::RemoveNodes(ids)
            } else {
                return Ok(false);
            };
            replica
                .raft
                .change_membership(change, false)
                .await
                .map_err(raft_error)?;
        }
        pd::MoveStepKind::TransferLeader => {
            vectron_raft::crash_point!("worker::move::transfer_leader");
            if target == metrics.id || !is_voter {
                return Ok(false);
            }
            let addr = addr.ok_or(StepError::UnknownTarget(target))?;
            hand_over(replica, target, &addr, pool, lease).await?;
        }
        pd::MoveStepKind::Unspecified => return Ok(false),
    }
    Ok(true)
}

/// The membership change that makes learner `target` a voter. When it
/// replaces a lost voter (`replaces`, 0 for none) that one leaves in the same
/// change: adding alone would need a majority of the grown configuration,
/// which counts the lost voter and so needs `target` up and caught up, while
/// the replaced configuration commits with the live voters alone. The leader
/// itself is never dropped this way; its removal waits for its own step.
pub fn promotion(
    voters: &BTreeSet<u64>,
    target: u64,
    replaces: u64,
    leader: u64,
) -> ChangeMembers<u64, BasicNode> {
    if replaces == 0 || replaces == leader || !voters.contains(&replaces) {
        return ChangeMembers::AddVoterIds(BTreeSet::from([target]));
    }
    let mut next = voters.clone();
    next.remove(&replaces);
    next.insert(target);
    ChangeMembers::ReplaceAllVoters(next)
}

/// Hands leadership to `target`. openraft 0.9 has no transfer call, and a
/// follower refuses to vote while its leader's lease lasts; so the leader
/// stops taking requests and heartbeating, lets `target` catch up to its
/// last entry, waits out the lease and then asks `target` to campaign.
/// `target` is the only node that starts an election that early, and the
/// old leader votes for it, so it wins.
async fn hand_over(
    replica: &Replica,
    target: u64,
    addr: &str,
    pool: &ChannelPool,
    lease: Duration,
) -> Result<(), StepError> {
    let _handover = replica.begin_handover();
    let caught_up = async {
        let mut metrics = replica.raft.metrics();
        loop {
            let m = metrics.borrow().clone();
            let matched = m
                .replication
                .as_ref()
                .and_then(|r: &BTreeMap<u64, Option<openraft::LogId<u64>>>| r.get(&target))
                .and_then(|l| l.map(|l| l.index));
            if matched.is_some() && matched >= m.last_log_index {
                return;
            }
            if metrics.changed().await.is_err() {
                return;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(3), caught_up).await;
    tokio::time::sleep(lease + Duration::from_millis(150)).await;
    let channel = pool.channel(addr).map_err(|e| StepError::Campaign {
        worker: target,
        message: e.to_string(),
    })?;
    RaftClient::new(channel)
        .trigger_election(TriggerElectionRequest {
            group_id: replica.shard_id,
            target_node_id: target,
        })
        .await
        .map_err(|e| StepError::Campaign {
            worker: target,
            message: e.message().to_owned(),
        })?;
    let stepped_down = replica
        .raft
        .wait(Some(Duration::from_secs(5)))
        .metrics(|m| m.state != ServerState::Leader, "stepped down")
        .await;
    stepped_down
        .map(|_| ())
        .map_err(|e| StepError::Raft(format!("still leading after the hand-over: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repair_promotion_drops_the_lost_voter_in_the_same_change() {
        let voters = BTreeSet::from([1, 2, 3]);
        // Voter 3 is lost; learner 4 replaces it. {1, 2} commit the joint
        // configuration {1, 2, 3} + {1, 2, 4} without 4.
        assert_eq!(
            promotion(&voters, 4, 3, 1),
            ChangeMembers::ReplaceAllVoters(BTreeSet::from([1, 2, 4]))
        );
        // Nothing to replace, the replaced voter already gone, or the leader
        // itself named: only add.
        let add = ChangeMembers::AddVoterIds(BTreeSet::from([4]));
        assert_eq!(promotion(&voters, 4, 0, 1), add);
        assert_eq!(promotion(&voters, 4, 9, 1), add);
        assert_eq!(promotion(&voters, 4, 1, 1), add);
    }
}
