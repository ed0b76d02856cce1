//! Applying the replica-move commands: start (the learner enters the
//! placement), advance (promotion makes it a voter, the last step drops the
//! old replica) and abort (the learner leaves again). Every change to a
//! shard's replica set bumps its epoch and the placement version. No I/O.

use vectron_ids::{ShardId, WorkerId};

use crate::error::{PdError, Result};
use crate::model::{
    MoveReason, MoveRecord, PdState, ReplicaKind, ReplicaRecord, Step, WorkerState, steps_of,
};

fn rejected(message: String) -> PdError {
    PdError::FailedPrecondition(message)
}

impl PdState {
    pub(super) fn start_move(
        &mut self,
        shard_id: ShardId,
        add: Option<WorkerId>,
        remove: Option<WorkerId>,
        transfer_leader_to: Option<WorkerId>,
        reason: MoveReason,
        now_ms: i64,
    ) -> Result<u64> {
        let shard = self
            .shards
            .get(&shard_id)
            .ok_or_else(|| PdError::not_found("shard", shard_id.to_string()))?;
        if self.moves.values().any(|m| m.shard == shard_id) {
            return Err(rejected(format!("shard {shard_id} already has a move")));
        }
        let holds = |w: WorkerId| shard.replicas.iter().any(|r| r.worker == w);
        if let Some(add) = add {
            let up = self
                .workers
                .get(&add)
                .is_some_and(|w| w.state == WorkerState::Up);
            if !up || holds(add) {
                return Err(rejected(format!(
                    "worker {add} cannot take a replica of shard {shard_id}"
                )));
            }
        }
        if let Some(remove) = remove
            && !holds(remove)
        {
            return Err(rejected(format!(
                "worker {remove} holds no replica of shard {shard_id}"
            )));
        }
        if let Some(to) = transfer_leader_to
            && !holds(to)
            && Some(to) != add
        {
            return Err(rejected(format!(
                "worker {to} cannot lead shard {shard_id}: it holds no replica"
            )));
        }
        let Some(first) = steps_of(add, remove, transfer_leader_to).first().copied() else {
            return Err(rejected("a move must change something".into()));
        };
        let id = self.alloc_ids(1);
        self.moves.insert(
            id,
            MoveRecord {
                id,
                shard: shard_id,
                add,
                remove,
                transfer_leader_to,
                reason,
                step: first,
                started_ms: now_ms,
                step_started_ms: now_ms,
            },
        );
        if let Some(add) = add {
            self.change_replicas(shard_id, |replicas| {
                replicas.push(ReplicaRecord {
                    worker: add,
                    kind: ReplicaKind::Learner,
                });
            });
        }
        Ok(id)
    }

    /// Move `id`, if it is at step `from` (a verdict on another step is
    /// stale and refused).
    fn move_at(&self, id: u64, from: Step) -> Result<MoveRecord> {
        let record = self
            .moves
            .get(&id)
            .ok_or_else(|| PdError::not_found("move", id.to_string()))?;
        if record.step != from {
            return Err(rejected(format!(
                "move {id} is at {}, not {}",
                record.step.name(),
                from.name()
            )));
        }
        Ok(record.clone())
    }

    pub(super) fn advance_move(&mut self, id: u64, from: Step, now_ms: i64) -> Result<()> {
        let record = self.move_at(id, from)?;
        match from {
            Step::Promote => {
                if let Some(add) = record.add {
                    self.change_replicas(record.shard, |replicas| {
                        for r in replicas.iter_mut().filter(|r| r.worker == add) {
                            r.kind = ReplicaKind::Voter;
                        }
                    });
                }
            }
            Step::RemoveOld => {
                if let Some(remove) = record.remove {
                    self.change_replicas(record.shard, |replicas| {
                        replicas.retain(|r| r.worker != remove);
                    });
                }
            }
            Step::AddLearner | Step::CatchUp | Step::TransferLeader => {}
        }
        match record.next_step() {
            Some(next) => {
                let m = self.moves.get_mut(&id).expect("looked up above");
                m.step = next;
                m.step_started_ms = now_ms;
            }
            None => {
                self.moves.remove(&id);
            }
        }
        Ok(())
    }

    pub(super) fn abort_move(&mut self, id: u64, from: Step) -> Result<()> {
        let record = self.move_at(id, from)?;
        if !matches!(
            from,
            Step::AddLearner | Step::CatchUp | Step::Promote | Step::TransferLeader
        ) || (from == Step::TransferLeader && record.add.is_some())
        {
            return Err(rejected(format!(
                "move {id} is past the point of rollback ({})",
                from.name()
            )));
        }
        self.moves.remove(&id);
        if let Some(add) = record.add {
            self.change_replicas(record.shard, |replicas| {
                replicas.retain(|r| !(r.worker == add && r.kind == ReplicaKind::Learner));
            });
        }
        Ok(())
    }

    /// Edits a shard's replicas, bumping its epoch and the placement version.
    fn change_replicas(&mut self, shard: ShardId, edit: impl FnOnce(&mut Vec<ReplicaRecord>)) {
        if let Some(shard) = self.shards.get_mut(&shard) {
            edit(&mut shard.replicas);
            shard.epoch += 1;
            self.placement_version += 1;
        }
    }
}
