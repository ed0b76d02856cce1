//! The scheduler's picture of the cluster: workers with state and zone,
//! shards with voters, learners and leader, and what a move does to it.
//! Pure; no I/O.

use std::collections::{BTreeMap, BTreeSet};

use vectron_ids::{ShardId, WorkerId};

use crate::model::{PdState, ReplicaKind, WorkerState};

use super::Move;

/// A worker as the scheduler sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerView {
    /// Zone ("" when unknown; each unknown zone counts as distinct).
    pub zone: String,
    /// Lifecycle state.
    pub state: WorkerState,
    /// Down, but not for longer than the down timeout: its replicas are not
    /// repaired yet (it may come back), and it takes no new ones.
    pub may_return: bool,
}

impl WorkerView {
    /// Whether the worker may receive replicas and leadership.
    pub fn takes_replicas(&self) -> bool {
        self.state == WorkerState::Up
    }

    /// Whether replicas on it count towards the replication factor.
    pub fn holds_live_replicas(&self) -> bool {
        matches!(self.state, WorkerState::Up | WorkerState::Draining)
    }

    /// Whether its replicas are lost for good and must be re-created.
    pub fn is_dead(&self) -> bool {
        match self.state {
            WorkerState::Removed => true,
            WorkerState::Down => !self.may_return,
            WorkerState::Up | WorkerState::Draining => false,
        }
    }
}

/// A shard as the scheduler sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardView {
    /// The shard.
    pub id: ShardId,
    /// Voters its collection wants.
    pub replication_factor: usize,
    /// Workers holding a voting replica.
    pub voters: Vec<WorkerId>,
    /// The current leader, when known.
    pub leader: Option<WorkerId>,
}

/// Workers and shards.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterView {
    /// Every worker that is not removed.
    pub workers: BTreeMap<WorkerId, WorkerView>,
    /// Every shard.
    pub shards: Vec<ShardView>,
}

impl ClusterView {
    /// The view of PD's replicated state; `leader_of` says which worker
    /// last reported leading a shard (PD keeps that outside Raft). Removed
    /// workers are left out, so replicas still on them count as dead; a
    /// worker Down for less than `down_timeout_ms` at `now_ms` may return.
    pub fn from_pd(
        state: &PdState,
        leader_of: impl Fn(ShardId) -> Option<WorkerId>,
        now_ms: i64,
        down_timeout_ms: i64,
    ) -> Self {
        let workers = state
            .workers
            .values()
            .filter(|w| w.state != WorkerState::Removed)
            .map(|w| {
                (
                    w.id,
                    WorkerView {
                        zone: w.zone.clone(),
                        state: w.state,
                        may_return: w.state == WorkerState::Down
                            && w.down_since_ms
                                .is_none_or(|since| now_ms - since < down_timeout_ms),
                    },
                )
            })
            .collect();
        let shards = state
            .shards
            .values()
            .map(|shard| {
                let voters: Vec<WorkerId> = shard
                    .replicas
                    .iter()
                    .filter(|r| r.kind == ReplicaKind::Voter)
                    .map(|r| r.worker)
                    .collect();
                let replication_factor = state
                    .collections
                    .get(&shard.collection)
                    .map_or(voters.len(), |c| c.spec.replication_factor as usize);
                ShardView {
                    id: shard.id,
                    replication_factor,
                    leader: leader_of(shard.id).filter(|l| voters.contains(l)),
                    voters,
                }
            })
            .collect();
        Self { workers, shards }
    }

    /// Whether some shard has a voter on a worker that is not live (down,
    /// waiting to return or to be repaired).
    pub fn has_unavailable_replicas(&self) -> bool {
        self.shards.iter().any(|s| {
            s.voters
                .iter()
                .any(|w| self.worker(*w).is_none_or(|v| !v.holds_live_replicas()))
        })
    }

    /// The worker's view, if known.
    pub fn worker(&self, id: WorkerId) -> Option<&WorkerView> {
        self.workers.get(&id)
    }

    /// Replicas per worker that takes replicas (zero included).
    pub fn replica_counts(&self) -> BTreeMap<WorkerId, usize> {
        let mut counts: BTreeMap<WorkerId, usize> = self
            .workers
            .iter()
            .filter(|(_, w)| w.takes_replicas())
            .map(|(id, _)| (*id, 0))
            .collect();
        for shard in &self.shards {
            for w in &shard.voters {
                if let Some(c) = counts.get_mut(w) {
                    *c += 1;
                }
            }
        }
        counts
    }

    /// Leaders per worker that takes replicas (zero included).
    pub fn leader_counts(&self) -> BTreeMap<WorkerId, usize> {
        let mut counts: BTreeMap<WorkerId, usize> = self
            .workers
            .iter()
            .filter(|(_, w)| w.takes_replicas())
            .map(|(id, _)| (*id, 0))
            .collect();
        for leader in self.shards.iter().filter_map(|s| s.leader) {
            if let Some(c) = counts.get_mut(&leader) {
                *c += 1;
            }
        }
        counts
    }

    /// The best worker to receive a replica of `shard`: takes replicas, does
    /// not hold one already, preferably in a zone the shard's other live
    /// replicas (other than `leaving`) do not use, then least loaded.
    pub fn best_target(&self, shard: &ShardView, leaving: Option<WorkerId>) -> Option<WorkerId> {
        let counts = self.replica_counts();
        let used_zones: BTreeSet<&str> = shard
            .voters
            .iter()
            .filter(|w| Some(**w) != leaving)
            .filter_map(|w| self.worker(*w))
            .filter(|w| w.holds_live_replicas() && !w.zone.is_empty())
            .map(|w| w.zone.as_str())
            .collect();
        self.workers
            .iter()
            .filter(|(id, w)| w.takes_replicas() && !shard.voters.contains(id))
            .min_by_key(|(id, w)| {
                let zone_taken = !w.zone.is_empty() && used_zones.contains(w.zone.as_str());
                (zone_taken, counts.get(id).copied().unwrap_or(0), **id)
            })
            .map(|(id, _)| *id)
    }

    /// Applies a finished move to the view.
    pub fn apply(&mut self, m: &Move) {
        let Some(shard) = self.shards.iter_mut().find(|s| s.id == m.shard) else {
            return;
        };
        if let Some(add) = m.add
            && !shard.voters.contains(&add)
        {
            shard.voters.push(add);
        }
        if let Some(to) = m.transfer_leader_to {
            shard.leader = Some(to);
        }
        if let Some(remove) = m.remove {
            shard.voters.retain(|w| *w != remove);
            if shard.leader == Some(remove) {
                shard.leader = m.add.or_else(|| shard.voters.first().copied());
            }
        }
    }
}
