//! The scheduler's planner (issue #7): from a view of the
//! cluster (workers, their state and zone; shards, their replicas and
//! leader) it decides which replica moves to start next. Checkers repair
//! first (replicas on workers down past the timeout, replicas on draining
//! workers), then balancers optimise (replica count, then leader count per
//! worker, within a tolerance). Pure and deterministic: the same view and
//! running moves always give the same plan. Executing a move (its steps, in
//! heartbeat replies) is the executor's job, not this module's.

mod balance;
pub mod membership;
pub mod progress;
mod repair;
mod view;

#[cfg(test)]
mod tests;

pub use crate::model::{MoveReason, Step};
pub use view::{ClusterView, ShardView, WorkerView};

use std::collections::BTreeMap;

use vectron_ids::{ShardId, WorkerId};

/// A planned change to one shard's replica set or leadership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move {
    /// The shard.
    pub shard: ShardId,
    /// Worker that gains a replica.
    pub add: Option<WorkerId>,
    /// Worker that loses its replica.
    pub remove: Option<WorkerId>,
    /// Worker that should lead afterwards (set when the leaving replica, or
    /// an overloaded worker, leads).
    pub transfer_leader_to: Option<WorkerId>,
    /// Why.
    pub reason: MoveReason,
}

impl Move {
    /// The steps that carry the move out, in order.
    pub fn steps(&self) -> Vec<Step> {
        crate::model::steps_of(self.add, self.remove, self.transfer_leader_to)
    }

    /// Workers the move loads: the one receiving a replica, and the one
    /// giving it up unless it is dead (a repair only drops its membership).
    pub fn workers(&self) -> impl Iterator<Item = WorkerId> + '_ {
        let leaving = self.remove.filter(|_| self.reason != MoveReason::Repair);
        self.add.into_iter().chain(leaving)
    }
}

/// How much the scheduler may do at once, and what counts as balanced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScheduleLimits {
    /// Moves running at once in the whole cluster.
    pub max_moves: usize,
    /// Moves touching one worker at once (as source or target).
    pub max_moves_per_worker: usize,
    /// Largest allowed difference of replica (and leader) counts between
    /// the most and least loaded workers.
    pub tolerance: usize,
}

impl Default for ScheduleLimits {
    fn default() -> Self {
        Self {
            max_moves: 4,
            max_moves_per_worker: 2,
            tolerance: 1,
        }
    }
}

/// Everything the scheduler is configured with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScheduleConfig {
    /// Move limits and balance tolerance.
    pub limits: ScheduleLimits,
    /// Per-step timeouts.
    pub timeouts: progress::StepTimeouts,
    /// How long a worker stays Down before its replicas are re-created.
    pub down_timeout: std::time::Duration,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        Self {
            limits: ScheduleLimits::default(),
            timeouts: progress::StepTimeouts::default(),
            down_timeout: std::time::Duration::from_secs(120),
        }
    }
}

impl From<&crate::model::MoveRecord> for Move {
    fn from(m: &crate::model::MoveRecord) -> Self {
        Self {
            shard: m.shard,
            add: m.add,
            remove: m.remove,
            transfer_leader_to: m.transfer_leader_to,
            reason: m.reason,
        }
    }
}

/// Budget left for new moves, given those already running.
pub(crate) struct Budget {
    limits: ScheduleLimits,
    total: usize,
    per_worker: BTreeMap<WorkerId, usize>,
    busy_shards: Vec<ShardId>,
}

impl Budget {
    fn new(limits: ScheduleLimits, running: &[Move]) -> Self {
        let mut budget = Self {
            limits,
            total: 0,
            per_worker: BTreeMap::new(),
            busy_shards: Vec::new(),
        };
        for m in running {
            budget.take(m);
        }
        budget
    }

    /// Whether `m` fits: its shard has no move yet and no limit is hit.
    pub(crate) fn fits(&self, m: &Move) -> bool {
        self.total < self.limits.max_moves
            && !self.busy_shards.contains(&m.shard)
            && m.workers().all(|w| {
                self.per_worker.get(&w).copied().unwrap_or(0) < self.limits.max_moves_per_worker
            })
    }

    pub(crate) fn take(&mut self, m: &Move) {
        self.total += 1;
        self.busy_shards.push(m.shard);
        for w in m.workers() {
            *self.per_worker.entry(w).or_default() += 1;
        }
    }

    fn exhausted(&self) -> bool {
        self.total >= self.limits.max_moves
    }

    /// A budget with no limits, to ask whether any work of a kind is left.
    fn unlimited(busy: &Budget) -> Self {
        Self {
            limits: ScheduleLimits {
                max_moves: usize::MAX,
                max_moves_per_worker: usize::MAX,
                tolerance: busy.limits.tolerance,
            },
            total: 0,
            per_worker: BTreeMap::new(),
            busy_shards: busy.busy_shards.clone(),
        }
    }
}

/// The moves to start now, most urgent first, within `limits` given the
/// moves already `running`.
pub fn plan(view: &ClusterView, running: &[Move], limits: ScheduleLimits) -> Vec<Move> {
    let mut budget = Budget::new(limits, running);
    let mut planned = Vec::new();
    // Each pass works on the view as if the moves planned so far were done,
    // so two moves never pick the same target for the same reason blindly.
    let mut projected = view.clone();
    for m in running {
        projected.apply(m);
    }
    let checkers: [Pass; 2] = [repair::next_repair, repair::next_drain];
    let balancers: [Pass; 2] = [balance::next_replica_move, balance::next_leader_transfer];
    for pass in checkers {
        run_pass(pass, &mut projected, &mut budget, &mut planned);
    }
    // Balancing waits until repairs and drains are all under way: moving
    // replicas for balance while a shard is under-replicated would compete
    // for the same bandwidth.
    // It also waits while a worker is down but may return: its replicas
    // are neither lost nor usable, and balancing around them would move
    // data twice.
    let unlimited = Budget::unlimited(&budget);
    if projected.has_unavailable_replicas()
        || checkers
            .iter()
            .any(|pass| pass(&projected, &unlimited).is_some())
    {
        return planned;
    }
    for pass in balancers {
        run_pass(pass, &mut projected, &mut budget, &mut planned);
    }
    planned
}

type Pass = fn(&ClusterView, &Budget) -> Option<Move>;

fn run_pass(pass: Pass, projected: &mut ClusterView, budget: &mut Budget, planned: &mut Vec<Move>) {
    while !budget.exhausted() {
        let Some(m) = pass(projected, budget) else {
            break;
        };
        budget.take(&m);
        projected.apply(&m);
        planned.push(m);
    }
}
