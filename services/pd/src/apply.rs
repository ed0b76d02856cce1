//! Applying a committed [`PdCommand`] to the [`PdState`]. Deterministic: the
//! same state and command give the same result on every node. A rejected
//! command returns [`PdResponse::Rejected`] and leaves the state untouched.
//! No I/O.

use std::collections::BTreeMap;

use vectron_ids::{CollectionId, ShardId, WorkerId};

use crate::command::{DataDir, PdCommand, PdResponse};
use crate::error::{PdError, Result};
use crate::model::{
    CollectionRecord, CollectionSpec, KvValue, PdState, ReplicaKind, ReplicaRecord, ShardRecord,
    WorkerRecord, WorkerState,
};
use crate::placement::{self, Candidate};

mod moves;

impl PdState {
    /// Applies `command`, committed at `log_index`.
    pub fn apply(&mut self, command: PdCommand, log_index: u64) -> PdResponse {
        let result = match command {
            PdCommand::RegisterWorker {
                name,
                addr,
                zone,
                now_ms,
                data_dir,
            } => self
                .register_worker(name, addr, zone, now_ms, data_dir)
                .map(PdResponse::Worker),
            PdCommand::SetWorkersLiveness { down, up, now_ms } => {
                self.set_liveness(&down, &up, now_ms);
                Ok(PdResponse::Done)
            }
            PdCommand::DrainWorker { name } => {
                self.drain_worker(&name).map(PdResponse::WorkerState)
            }
            PdCommand::UndrainWorker { name } => {
                self.undrain_worker(&name).map(PdResponse::WorkerState)
            }
            PdCommand::RemoveWorker { name } => {
                self.remove_worker(&name).map(|()| PdResponse::Done)
            }
            PdCommand::CreateCollection { spec, now_ms } => self
                .create_collection(spec, now_ms)
                .map(|c| PdResponse::Collection(Box::new(c))),
            PdCommand::DropCollection { name } => {
                self.drop_collection(&name).map(|()| PdResponse::Done)
            }
            PdCommand::AllocIds { count } => {
                let count = count.max(1);
                let first = self.alloc_ids(u64::from(count));
                Ok(PdResponse::Ids { first, count })
            }
            PdCommand::KvPut {
                key,
                value,
                expected_version,
            } => self
                .kv_put(key, value, expected_version, log_index)
                .map(PdResponse::KvVersion),
            PdCommand::KvDelete { key } => {
                Ok(PdResponse::KvDeleted(self.kv.remove(&key).is_some()))
            }
            PdCommand::StartMove {
                shard,
                add,
                remove,
                transfer_leader_to,
                reason,
                now_ms,
            } => self
                .start_move(shard, add, remove, transfer_leader_to, reason, now_ms)
                .map(PdResponse::MoveStarted),
            PdCommand::AdvanceMove { id, from, now_ms } => self
                .advance_move(id, from, now_ms)
                .map(|()| PdResponse::Done),
            PdCommand::AbortMove { id, from } => {
                self.abort_move(id, from).map(|()| PdResponse::Done)
            }
        };
        result.unwrap_or_else(PdResponse::Rejected)
    }

    fn register_worker(
        &mut self,
        name: String,
        addr: String,
        zone: String,
        now_ms: i64,
        data_dir: DataDir,
    ) -> Result<WorkerId> {
        let current = self.worker_by_name(&name).map(|w| w.id);
        match data_dir {
            DataDir::Unreported => match current {
                Some(id) => Ok(self.rejoin(id, addr, zone, now_ms)),
                None => Ok(self.add_worker(name, addr, zone, false, now_ms)),
            },
            DataDir::Holds(id) => {
                let Some(worker) = self.workers.get(&id) else {
                    return Err(PdError::FailedPrecondition(format!(
                        "the data directory belongs to worker {id}, which PD does not know; \
                         wipe it to join as a new worker"
                    )));
                };
                if worker.name != name {
                    return Err(PdError::FailedPrecondition(format!(
                        "the data directory belongs to worker {id} named {:?}, not {name:?}",
                        worker.name
                    )));
                }
                if let Some(newer) = current.filter(|newer| *newer != id) {
                    return Err(PdError::FailedPrecondition(format!(
                        "worker {id} ({name:?}) was replaced by worker {newer}, which joined \
                         under that name with a new data directory; wipe this directory to join again"
                    )));
                }
                Ok(self.rejoin(id, addr, zone, now_ms))
            }
            DataDir::Fresh => {
                let mut drain_requested = false;
                for worker in self.workers.values_mut() {
                    if worker.name == name && worker.state != WorkerState::Removed {
                        drain_requested |= worker.drain_requested;
                        worker.state = WorkerState::Removed;
                        worker.drain_requested = false;
                    }
                }
                Ok(self.add_worker(name, addr, zone, drain_requested, now_ms))
            }
        }
    }

    /// Brings a known worker back: new address and zone, Up (or Draining
    /// when a drain was asked for).
    fn rejoin(&mut self, id: WorkerId, addr: String, zone: String, now_ms: i64) -> WorkerId {
        let worker = self.workers.get_mut(&id).expect("callers pass a known id");
        worker.addr = addr;
        worker.zone = zone;
        worker.last_heartbeat_ms = now_ms;
        worker.down_since_ms = None;
        worker.state = match worker.state {
            WorkerState::Removed => {
                worker.drain_requested = false;
                WorkerState::Up
            }
            _ if worker.drain_requested => WorkerState::Draining,
            _ => WorkerState::Up,
        };
        self.placement_version += 1;
        id
    }

    /// Records a worker under a new id.
    fn add_worker(
        &mut self,
        name: String,
        addr: String,
        zone: String,
        drain_requested: bool,
        now_ms: i64,
    ) -> WorkerId {
        let id = WorkerId(self.alloc_ids(1));
        self.workers.insert(
            id,
            WorkerRecord {
                id,
                name,
                addr,
                zone,
                state: if drain_requested {
                    WorkerState::Draining
                } else {
                    WorkerState::Up
                },
                drain_requested,
                last_heartbeat_ms: now_ms,
                down_since_ms: None,
            },
        );
        self.placement_version += 1;
        id
    }

    fn set_liveness(&mut self, down: &[WorkerId], up: &[WorkerId], now_ms: i64) {
        for id in down {
            if let Some(w) = self.workers.get_mut(id)
                && matches!(w.state, WorkerState::Up | WorkerState::Draining)
            {
                w.state = WorkerState::Down;
                w.down_since_ms = Some(now_ms);
            }
        }
        for id in up {
            if let Some(w) = self.workers.get_mut(id)
                && w.state == WorkerState::Down
            {
                w.state = if w.drain_requested {
                    WorkerState::Draining
                } else {
                    WorkerState::Up
                };
                w.last_heartbeat_ms = now_ms;
                w.down_since_ms = None;
            }
        }
    }

    fn worker_id_by_name(&self, name: &str) -> Result<WorkerId> {
        self.worker_by_name(name)
            .filter(|w| w.state != WorkerState::Removed)
            .map(|w| w.id)
            .ok_or_else(|| PdError::not_found("worker", name))
    }

    fn drain_worker(&mut self, name: &str) -> Result<WorkerState> {
        let id = self.worker_id_by_name(name)?;
        let worker = self.workers.get_mut(&id).expect("looked up above");
        worker.drain_requested = true;
        if worker.state == WorkerState::Up {
            worker.state = WorkerState::Draining;
        }
        Ok(worker.state)
    }

    fn undrain_worker(&mut self, name: &str) -> Result<WorkerState> {
        let id = self.worker_id_by_name(name)?;
        let worker = self.workers.get_mut(&id).expect("looked up above");
        worker.drain_requested = false;
        if worker.state == WorkerState::Draining {
            worker.state = WorkerState::Up;
            // It may take replicas again.
            self.placement_version += 1;
        }
        Ok(worker.state)
    }

    fn remove_worker(&mut self, name: &str) -> Result<()> {
        let id = self.worker_id_by_name(name)?;
        let held = self.replica_count(id);
        let state = self.workers[&id].state;
        if held > 0 && state != WorkerState::Down {
            return Err(PdError::FailedPrecondition(format!(
                "worker {name:?} still holds {held} replicas; drain it first (it is {state:?})"
            )));
        }
        let worker = self.workers.get_mut(&id).expect("looked up above");
        worker.state = WorkerState::Removed;
        worker.drain_requested = false;
        self.placement_version += 1;
        Ok(())
    }

    fn create_collection(&mut self, spec: CollectionSpec, now_ms: i64) -> Result<CollectionRecord> {
        if self.collections.contains_key(&spec.name) {
            return Err(PdError::AlreadyExists {
                kind: "collection".into(),
                name: spec.name,
            });
        }
        let placement = placement::place(self.candidates(), spec.shards, spec.replication_factor)?;
        let ranges = vectron_routing::split_hash_space(spec.shards)
            .map_err(|e| PdError::invalid("shards", e.to_string()))?;
        let collection_id = CollectionId(self.alloc_ids(1));
        let first_shard = self.alloc_ids(u64::from(spec.shards));
        let mut shard_ids = Vec::with_capacity(ranges.len());
        for (index, (range, workers)) in ranges.iter().zip(placement).enumerate() {
            let id = ShardId(first_shard + index as u64);
            shard_ids.push(id);
            self.shards.insert(
                id,
                ShardRecord {
                    id,
                    collection: spec.name.clone(),
                    index: index as u32,
                    range_start: range.start,
                    range_end: range.end,
                    epoch: 1,
                    replicas: workers
                        .into_iter()
                        .map(|worker| ReplicaRecord {
                            worker,
                            kind: ReplicaKind::Voter,
                        })
                        .collect(),
                },
            );
        }
        let record = CollectionRecord {
            id: collection_id,
            spec,
            shard_ids,
            created_at_ms: now_ms,
        };
        self.collections
            .insert(record.spec.name.clone(), record.clone());
        self.placement_version += 1;
        Ok(record)
    }

    /// Up workers with their current replica and preferred-leader counts,
    /// counted in one pass over the shards.
    fn candidates(&self) -> Vec<Candidate> {
        let mut load: BTreeMap<WorkerId, (usize, usize)> = BTreeMap::new();
        for shard in self.shards.values() {
            for (position, replica) in shard.replicas.iter().enumerate() {
                let entry = load.entry(replica.worker).or_default();
                entry.0 += 1;
                if position == 0 {
                    entry.1 += 1;
                }
            }
        }
        self.workers
            .values()
            .filter(|w| w.state == WorkerState::Up)
            .map(|w| {
                let (replicas, leaders) = load.get(&w.id).copied().unwrap_or_default();
                Candidate {
                    id: w.id,
                    zone: w.zone.clone(),
                    replicas,
                    leaders,
                }
            })
            .collect()
    }

    fn drop_collection(&mut self, name: &str) -> Result<()> {
        let record = self
            .collections
            .remove(name)
            .ok_or_else(|| PdError::not_found("collection", name))?;
        for id in record.shard_ids {
            self.shards.remove(&id);
            self.moves.retain(|_, m| m.shard != id);
        }
        self.placement_version += 1;
        Ok(())
    }

    fn kv_put(
        &mut self,
        key: Vec<u8>,
        value: Vec<u8>,
        expected: Option<u64>,
        log_index: u64,
    ) -> Result<u64> {
        if key.is_empty() {
            return Err(PdError::invalid("key", "must not be empty"));
        }
        let actual = self.kv.get(&key).map(|v| v.version).unwrap_or(0);
        if let Some(expected) = expected
            && expected != actual
        {
            return Err(PdError::VersionConflict { expected, actual });
        }
        // The version is the log index, so it is unique and increasing; index
        // 0 never holds a command, keeping 0 free to mean "absent".
        let version = log_index.max(1);
        self.kv.insert(key, KvValue { value, version });
        Ok(version)
    }
}

#[cfg(test)]
mod move_tests;
#[cfg(test)]
mod tests;
