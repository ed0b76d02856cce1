//! Checkers: restore every shard to its replication factor after a worker is
//! down past the timeout or removed, and move replicas off draining workers.
//! Pure; no I/O.

use std::collections::BTreeSet;

use vectron_ids::WorkerId;

use crate::model::WorkerState;

use super::{Budget, ClusterView, Move, MoveReason, ShardView};

fn is_dead(view: &ClusterView, worker: WorkerId) -> bool {
    view.worker(worker).is_none_or(|w| w.is_dead())
}

/// The next repair: a shard with a replica on a dead worker gets a new
/// replica elsewhere (or, when it still has enough live ones, loses the dead
/// one from its membership).
pub(super) fn next_repair(view: &ClusterView, budget: &Budget) -> Option<Move> {
    view.shards.iter().find_map(|shard| {
        let dead: Vec<WorkerId> = shard
            .voters
            .iter()
            .copied()
            .filter(|w| is_dead(view, *w))
            .collect();
        let live = shard.voters.len() - dead.len();
        let m = if live < shard.replication_factor {
            Move {
                shard: shard.id,
                add: Some(view.best_target(shard, dead.first().copied())?),
                remove: dead.first().copied(),
                transfer_leader_to: None,
                reason: MoveReason::Repair,
            }
        } else {
            Move {
                shard: shard.id,
                add: None,
                remove: Some(*dead.first()?),
                transfer_leader_to: None,
                reason: MoveReason::Repair,
            }
        };
        budget.fits(&m).then_some(m)
    })
}

/// The live voter of `shard` (not `leaving`, not draining) with the fewest
/// leaderships: where leadership goes when the leader leaves.
fn new_leader(view: &ClusterView, shard: &ShardView, leaving: WorkerId) -> Option<WorkerId> {
    let leaders = view.leader_counts();
    let excluded: BTreeSet<WorkerId> = [leaving].into();
    shard
        .voters
        .iter()
        .copied()
        .filter(|w| !excluded.contains(w))
        .filter(|w| view.worker(*w).is_some_and(|v| v.takes_replicas()))
        .min_by_key(|w| (leaders.get(w).copied().unwrap_or(0), *w))
}

/// The next drain step: a replica on a draining worker moves to the best
/// other worker, leadership first moving to another live replica.
pub(super) fn next_drain(view: &ClusterView, budget: &Budget) -> Option<Move> {
    view.shards.iter().find_map(|shard| {
        shard.voters.iter().find_map(|&w| {
            if view.worker(w)?.state != WorkerState::Draining {
                return None;
            }
            let target = view.best_target(shard, Some(w))?;
            let transfer_leader_to = if shard.leader == Some(w) {
                Some(new_leader(view, shard, w).unwrap_or(target))
            } else {
                None
            };
            let m = Move {
                shard: shard.id,
                add: Some(target),
                remove: Some(w),
                transfer_leader_to,
                reason: MoveReason::Drain,
            };
            budget.fits(&m).then_some(m)
        })
    })
}
