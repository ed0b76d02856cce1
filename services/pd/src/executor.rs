//! Runs the scheduler on the PD leader: every second it judges
//! each running move's step from the workers' heartbeat reports and
//! replicates the verdict (advance, finish or roll back), then asks the
//! planner for new moves and replicates their start. The steps themselves
//! reach the shard leaders in heartbeat replies ([`steps_for`]). Every
//! decision goes through Raft, so a new PD leader carries on where the old
//! one stopped. Does network I/O through Raft.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tracing::{info, warn};
use vectron_ids::{ShardId, WorkerId};
use vectron_proto::pd::v1 as pb;

use crate::command::PdCommand;
use crate::liveness::Liveness;
use crate::model::{MoveReason, MoveRecord, PdState, Step};
use crate::scheduler::membership;
use crate::scheduler::progress::{self, Progress};
use crate::scheduler::{ClusterView, Move, plan};
use crate::service::{PdCore, now_ms};

/// Reports PD waits for after becoming leader before planning: until every
/// worker has heartbeated once, shard leaders are unknown.
const PLANNING_GRACE: Duration = Duration::from_secs(3);

/// Counters of the scheduler on this node (meaningful on the leader).
#[derive(Debug, Default)]
pub struct SchedulerMetrics {
    /// Moves started.
    pub started: AtomicU64,
    /// Moves that completed.
    pub finished: AtomicU64,
    /// Moves rolled back.
    pub failed: AtomicU64,
    /// Shards with fewer live voters than their replication factor.
    pub under_replicated: AtomicU64,
}

/// Runs the scheduler until the task is aborted; does nothing while this
/// node is not the leader.
pub async fn run(core: Arc<PdCore>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let leading_for = core.liveness().leading_for(std::time::Instant::now());
        let Some(leading_for) = leading_for else {
            continue;
        };
        // Verdicts and plans both need every worker's report: a new
        // leader starts with none.
        if leading_for >= PLANNING_GRACE {
            judge_running_moves(&core).await;
            start_planned_moves(&core).await;
        }
    }
}

async fn judge_running_moves(core: &PdCore) {
    let now = now_ms();
    let verdicts: Vec<(MoveRecord, Progress)> = {
        let applied = core.state.read();
        let liveness = core.liveness();
        applied
            .state
            .moves
            .values()
            .map(|m| {
                let reports = liveness.shard_reports(m.shard, m.add);
                let target_usable = m.add.is_none_or(|a| {
                    progress::target_usable(
                        applied.state.workers.get(&a),
                        now,
                        core.schedule.down_timeout,
                    )
                });
                let verdict =
                    progress::check(m, &reports, target_usable, now, &core.schedule.timeouts);
                (m.clone(), verdict)
            })
            .collect()
    };
    for (m, verdict) in verdicts {
        let command = match &verdict {
            Progress::Wait => continue,
            Progress::Advance => PdCommand::AdvanceMove {
                id: m.id,
                from: m.step,
                now_ms: now,
            },
            Progress::Abort(_) => PdCommand::AbortMove {
                id: m.id,
                from: m.step,
            },
        };
        if let Err(e) = core.write(command).await {
            warn!(move_id = m.id, error = %e, "could not record a move's progress");
            continue;
        }
        let elapsed_ms = now - m.started_ms;
        match verdict {
            Progress::Advance if m.next_step().is_none() => {
                core.scheduler_metrics
                    .finished
                    .fetch_add(1, Ordering::Relaxed);
                info!(move_id = m.id, shard = %m.shard, reason = m.reason.name(), elapsed_ms, "move finished");
            }
            Progress::Advance => {
                info!(move_id = m.id, shard = %m.shard, step = m.step.name(), "move step done");
            }
            Progress::Abort(why) => {
                core.scheduler_metrics
                    .failed
                    .fetch_add(1, Ordering::Relaxed);
                warn!(move_id = m.id, shard = %m.shard, step = m.step.name(), why, "move rolled back");
            }
            Progress::Wait => {}
        }
    }
}

async fn start_planned_moves(core: &PdCore) {
    let down_timeout_ms = core.schedule.down_timeout.as_millis() as i64;
    let planned = {
        let applied = core.state.read();
        let liveness = core.liveness();
        let view = ClusterView::from_pd(
            &applied.state,
            |shard| liveness.shard_leader(shard),
            now_ms(),
            down_timeout_ms,
        );
        core.scheduler_metrics
            .under_replicated
            .store(under_replicated(&view), Ordering::Relaxed);
        let running: Vec<Move> = applied.state.moves.values().map(Move::from).collect();
        // A shard whose group still has members the placement lacks (left
        // by a rollback), or whose membership change is pending, waits.
        let unsettled = unsettled_shards(&applied.state, &liveness);
        plan(&view, &running, core.schedule.limits)
            .into_iter()
            .filter(|m| !unsettled.contains(&m.shard))
            .collect::<Vec<_>>()
    };
    for m in planned {
        let command = PdCommand::StartMove {
            shard: m.shard,
            add: m.add,
            remove: m.remove,
            transfer_leader_to: m.transfer_leader_to,
            reason: m.reason,
            now_ms: now_ms(),
        };
        match core.write(command).await {
            Ok(_) => {
                core.scheduler_metrics
                    .started
                    .fetch_add(1, Ordering::Relaxed);
                info!(shard = %m.shard, add = ?m.add, remove = ?m.remove,
                      leader_to = ?m.transfer_leader_to, reason = m.reason.name(), "move started");
            }
            Err(e) => warn!(shard = %m.shard, error = %e, "could not start a move"),
        }
    }
}

fn under_replicated(view: &ClusterView) -> u64 {
    view.shards
        .iter()
        .filter(|s| {
            let live = s
                .voters
                .iter()
                .filter(|w| view.worker(**w).is_some_and(|v| v.holds_live_replicas()))
                .count();
            live < s.replication_factor
        })
        .count() as u64
}

fn step(m: &MoveRecord, kind: pb::MoveStepKind, target: WorkerId, epoch: u64) -> pb::MoveStep {
    // A repair replaces a lost voter: promote the new one and drop the lost
    // one in one membership change, which the live voters commit alone.
    let replaces = match (kind, m.reason, m.remove) {
        (pb::MoveStepKind::Promote, MoveReason::Repair, Some(lost)) => lost.0,
        _ => 0,
    };
    pb::MoveStep {
        move_id: m.id,
        shard_id: m.shard.0,
        kind: kind.into(),
        target_worker_id: target.0,
        epoch,
        replaces_worker_id: replaces,
    }
}

/// Shards on which no new move may start: their group does not agree with
/// the placement yet (see [`membership::agreement`]).
fn unsettled_shards(state: &PdState, liveness: &Liveness) -> BTreeSet<ShardId> {
    state
        .shards
        .values()
        .filter(|s| {
            let report = liveness.leader_report(s.id).map(|(_, r)| r);
            membership::agreement(s, report) != membership::Agreement::Settled
        })
        .map(|s| s.id)
        .collect()
}

/// The move steps `worker` must carry out now: those of moves on shards it
/// leads, and the removal of group members the placement no longer has
/// (left behind by a rolled-back move) on shards without a move.
pub fn steps_for(worker: WorkerId, state: &PdState, liveness: &Liveness) -> Vec<pb::MoveStep> {
    let mut steps = Vec::new();
    let mut moving: BTreeSet<ShardId> = BTreeSet::new();
    for m in state.moves.values() {
        moving.insert(m.shard);
        if liveness.shard_leader(m.shard) != Some(worker) {
            continue;
        }
        let epoch = state.shards.get(&m.shard).map_or(0, |s| s.epoch);
        let planned = match m.step {
            Step::AddLearner => m.add.map(|t| (pb::MoveStepKind::AddLearner, t)),
            Step::CatchUp => None,
            Step::Promote => m.add.map(|t| (pb::MoveStepKind::Promote, t)),
            Step::TransferLeader => m
                .transfer_leader_to
                .map(|t| (pb::MoveStepKind::TransferLeader, t)),
            Step::RemoveOld => m.remove.map(|t| (pb::MoveStepKind::RemoveReplica, t)),
        };
        if let Some((kind, target)) = planned {
            steps.push(step(m, kind, target, epoch));
        }
    }
    for shard in state.shards.values().filter(|s| !moving.contains(&s.id)) {
        let Some((leader, report)) = liveness.leader_report(shard.id) else {
            continue;
        };
        if leader != worker {
            continue;
        }
        for stray in membership::strays(shard, report) {
            steps.push(pb::MoveStep {
                move_id: 0,
                shard_id: shard.id.0,
                kind: pb::MoveStepKind::RemoveReplica.into(),
                target_worker_id: stray,
                epoch: shard.epoch,
                replaces_worker_id: 0,
            });
        }
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a_move(reason: MoveReason) -> MoveRecord {
        MoveRecord {
            id: 3,
            shard: ShardId(7),
            add: Some(WorkerId(4)),
            remove: Some(WorkerId(1)),
            transfer_leader_to: None,
            reason,
            step: Step::Promote,
            step_started_ms: 0,
            started_ms: 0,
        }
    }

    #[test]
    fn a_repair_promotes_and_drops_the_lost_voter_in_one_change() {
        let repair = a_move(MoveReason::Repair);
        let promote = step(&repair, pb::MoveStepKind::Promote, WorkerId(4), 9);
        assert_eq!(promote.replaces_worker_id, 1);
        let remove = step(&repair, pb::MoveStepKind::RemoveReplica, WorkerId(1), 9);
        assert_eq!(remove.replaces_worker_id, 0);
        // A live replica leaving (balance, drain) goes in its own step, after
        // leadership has moved off it.
        for reason in [MoveReason::BalanceReplicas, MoveReason::Drain] {
            let promote = step(&a_move(reason), pb::MoveStepKind::Promote, WorkerId(4), 9);
            assert_eq!(promote.replaces_worker_id, 0, "{reason:?}");
        }
    }
}
