//! The scheduler's planner (DESIGN.md §6, issue #7): from a view of the
//! cluster (workers, their state and zone; shards, their replicas and
//! leader) it decides which replica moves to start next. Checkers repair
//! first (replicas on workers down past the timeout, replicas on draining
//! workers), then balancers optimise (replica count, then leader count per
//! worker, within a tolerance). Pure and deterministic: the same view and
//! running moves always give the same plan. Executing a move (its steps, in
//! heartbeat replies) is the executor's job, not this module's.

mod balance;
mod repair;
mod view;

#[cfg(test)]
mod tests;

pub use view::{ClusterView, ShardView, WorkerView};

use std::collections::BTreeMap;

use vectron_ids::{ShardId, WorkerId};

/// Why a move exists; repairs come before drains before balancing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum MoveReason {
    /// A replica sits on a worker that is down past the timeout or removed.
    Repair,
    /// A replica sits on a draining worker.
    Drain,
    /// Replica counts per worker differ by more than the tolerance.
    BalanceReplicas,
    /// Leader counts per worker differ by more than the tolerance.
    BalanceLeaders,
}

/// One step of a move, in order. Each has a timeout in the executor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Start a learner replica on the target worker.
    AddLearner,
    /// Wait until the learner has caught up (log or snapshot).
    CatchUp,
    /// Membership change: the learner becomes a voter.
    Promote,
    /// Move leadership off the replica that leaves.
    TransferLeader,
    /// Membership change: the old replica leaves; the shard epoch is bumped.
    RemoveOld,
}

impl Step {
    /// The name shown in `GET /v1/cluster`.
    pub fn name(self) -> &'static str {
        match self {
            Step::AddLearner => "add_learner",
            Step::CatchUp => "catch_up",
            Step::Promote => "promote",
            Step::TransferLeader => "transfer_leader",
            Step::RemoveOld => "remove_old",
        }
    }
}

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
        let mut steps = Vec::new();
        if self.add.is_some() {
            steps.extend([Step::AddLearner, Step::CatchUp, Step::Promote]);
        }
        if self.transfer_leader_to.is_some() {
            steps.push(Step::TransferLeader);
        }
        if self.remove.is_some() {
            steps.push(Step::RemoveOld);
        }
        steps
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
    let unlimited = Budget::unlimited(&budget);
    if checkers
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
