//! Balancers: keep replica counts, then leader counts, per worker within the
//! tolerance, never reducing a shard's zone spread. A new worker therefore
//! receives replicas until it is level with the others. Pure; no I/O.

use std::collections::BTreeSet;

use vectron_ids::WorkerId;

use super::{Budget, ClusterView, Move, MoveReason, ShardView};

/// Distinct known zones of `voters` (unknown zones count one each).
fn zone_spread(view: &ClusterView, voters: impl Iterator<Item = WorkerId>) -> usize {
    let mut zones = BTreeSet::new();
    let mut unknown = 0;
    for w in voters {
        match view.worker(w).map(|v| v.zone.as_str()) {
            Some("") | None => unknown += 1,
            Some(zone) => {
                zones.insert(zone.to_owned());
            }
        }
    }
    zones.len() + unknown
}

/// (source, target) pairs whose loads differ by more than the tolerance,
/// most loaded source and least loaded target first.
fn pairs(
    counts: &std::collections::BTreeMap<WorkerId, usize>,
    tolerance: usize,
) -> Vec<(WorkerId, WorkerId)> {
    let mut by_load: Vec<(usize, WorkerId)> = counts.iter().map(|(w, c)| (*c, *w)).collect();
    by_load.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut out = Vec::new();
    for &(high, source) in &by_load {
        for &(low, target) in by_load.iter().rev() {
            if high > low + tolerance {
                out.push((source, target));
            }
        }
    }
    out
}

fn keeps_zone_spread(
    view: &ClusterView,
    shard: &ShardView,
    source: WorkerId,
    target: WorkerId,
) -> bool {
    let before = zone_spread(view, shard.voters.iter().copied());
    let after = zone_spread(
        view,
        shard
            .voters
            .iter()
            .copied()
            .filter(|w| *w != source)
            .chain([target]),
    );
    after >= before
}

/// The next replica move from the most to the least loaded worker.
pub(super) fn next_replica_move(view: &ClusterView, budget: &Budget) -> Option<Move> {
    let tolerance = budget.limits.tolerance;
    for (source, target) in pairs(&view.replica_counts(), tolerance) {
        for shard in &view.shards {
            if !shard.voters.contains(&source)
                || shard.voters.contains(&target)
                || !keeps_zone_spread(view, shard, source, target)
            {
                continue;
            }
            let m = Move {
                shard: shard.id,
                add: Some(target),
                remove: Some(source),
                transfer_leader_to: (shard.leader == Some(source)).then_some(target),
                reason: MoveReason::BalanceReplicas,
            };
            if budget.fits(&m) {
                return Some(m);
            }
        }
    }
    None
}

/// The next leadership transfer from the worker leading most shards to one
/// leading fewest that holds a replica of the shard.
pub(super) fn next_leader_transfer(view: &ClusterView, budget: &Budget) -> Option<Move> {
    // A shard without a known leader (an election, a report not in yet)
    // would make the counts lie.
    if view.shards.iter().any(|s| s.leader.is_none()) {
        return None;
    }
    let tolerance = budget.limits.tolerance;
    for (source, target) in pairs(&view.leader_counts(), tolerance) {
        for shard in &view.shards {
            if shard.leader != Some(source) || !shard.voters.contains(&target) {
                continue;
            }
            let m = Move {
                shard: shard.id,
                add: None,
                remove: None,
                transfer_leader_to: Some(target),
                reason: MoveReason::BalanceLeaders,
            };
            if budget.fits(&m) {
                return Some(m);
            }
        }
    }
    None
}
