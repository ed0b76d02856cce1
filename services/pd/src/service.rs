//! The `vectron.pd.v1.PlacementDriver` gRPC service. Writes go through Raft;
//! reads run after openraft's linearizable read check on the leader. A
//! follower answers NOT_LEADER with the leader's address, which the bundled
//! client follows. Does network I/O through Raft.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use openraft::BasicNode;
use openraft::error::{
    ChangeMembershipError, CheckIsLeaderError, ClientWriteError, ForwardToLeader, RaftError,
};
use tonic::{Request, Response, Status};
use vectron_ids::{ShardId, WorkerId};
use vectron_proto::pd::v1 as pb;
use vectron_proto::pd::v1::placement_driver_server::PlacementDriver;

use crate::command::{PdCommand, PdResponse};
use crate::convert;
use crate::error::{PdError, Result};
use crate::executor::{self, SchedulerMetrics};
use crate::liveness::Liveness;
use crate::model::WorkerState;
use crate::registration;
use crate::scheduler::ScheduleConfig;
use crate::state_machine::SharedState;
use crate::types::PdRaft;
use crate::validate;

/// Milliseconds since the Unix epoch on this node's clock.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn not_leader(forward: ForwardToLeader<u64, BasicNode>) -> PdError {
    PdError::NotLeader {
        leader_id: forward.leader_id,
        leader_addr: forward.leader_node.map(|n| n.addr),
    }
}

fn write_error(error: RaftError<u64, ClientWriteError<u64, BasicNode>>) -> PdError {
    match error {
        RaftError::APIError(ClientWriteError::ForwardToLeader(forward)) => not_leader(forward),
        // Another membership change is still being committed: retryable.
        RaftError::APIError(ClientWriteError::ChangeMembershipError(
            ChangeMembershipError::InProgress(e),
        )) => PdError::Unavailable(e.to_string()),
        RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => {
            PdError::FailedPrecondition(e.to_string())
        }
        RaftError::Fatal(fatal) => PdError::Unavailable(fatal.to_string()),
    }
}

/// Everything the PD service and its background tasks share.
pub struct PdCore {
    /// This node's Raft handle.
    pub raft: PdRaft,
    /// This node's id.
    pub node_id: u64,
    /// The applied state.
    pub state: SharedState,
    /// Heartbeat bookkeeping (meaningful on the leader only).
    pub liveness: Mutex<Liveness>,
    /// How long a worker may stay silent before it is marked Down.
    pub worker_down_timeout: Duration,
    /// Serialises membership changes made through this node.
    pub membership_changes: tokio::sync::Mutex<()>,
    /// Scheduler limits, step timeouts and the down timeout.
    pub schedule: ScheduleConfig,
    /// Scheduler counters.
    pub scheduler_metrics: SchedulerMetrics,
}

impl PdCore {
    /// Locks the heartbeat bookkeeping.
    pub fn liveness(&self) -> MutexGuard<'_, Liveness> {
        self.liveness.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until no live worker reports a replica of `shards` any more, so
    /// that once a drop is answered no replica of the old incarnation can
    /// acknowledge a write sent by a gateway whose routing cache predates the
    /// drop (it gets "shard not found" and refreshes instead). Bounded by the
    /// down timeout: a worker silent that long is Down and serves nothing PD
    /// routes to; one that is alive but still hosts a replica past the bound
    /// is logged, and the drop, already committed, is answered anyway.
    pub async fn await_replicas_destroyed(
        &self,
        collection: &str,
        shards: &[ShardId],
        assigned: &[WorkerId],
        dropped_at: Instant,
    ) {
        if shards.is_empty() {
            return;
        }
        let deadline = Instant::now() + self.worker_down_timeout;
        loop {
            let now = Instant::now();
            let hosting = self.liveness().still_hosting(
                shards,
                assigned,
                dropped_at,
                self.worker_down_timeout,
                now,
            );
            if hosting.is_empty() {
                return;
            }
            if now >= deadline {
                tracing::warn!(
                    collection,
                    workers = ?hosting,
                    "dropped collection: live workers still report its replicas"
                );
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Proposes `command` and waits until it is committed and applied.
    pub async fn write(&self, command: PdCommand) -> Result<PdResponse> {
        let reply = self.raft.client_write(command).await.map_err(write_error)?;
        match reply.data {
            PdResponse::Rejected(error) => Err(error),
            ok => Ok(ok),
        }
    }

    /// Waits until this node, as confirmed leader, has applied everything
    /// committed before the call.
    pub async fn linearizable(&self) -> Result<()> {
        match self.raft.ensure_linearizable().await {
            Ok(_) => Ok(()),
            Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(forward))) => {
                Err(not_leader(forward))
            }
            Err(RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(e))) => {
                Err(PdError::Unavailable(e.to_string()))
            }
            Err(RaftError::Fatal(fatal)) => Err(PdError::Unavailable(fatal.to_string())),
        }
    }

    /// The current members with their roles.
    pub fn members(&self) -> pb::GetMembersResponse {
        let metrics = self.raft.metrics().borrow().clone();
        let membership = metrics.membership_config.membership();
        let voters: BTreeSet<u64> = membership.voter_ids().collect();
        let leader_id = metrics.current_leader.unwrap_or(0);
        let members = membership
            .nodes()
            .map(|(id, node)| pb::Member {
                node_id: *id,
                addr: node.addr.clone(),
                role: if Some(*id) == metrics.current_leader {
                    pb::MemberRole::Leader
                } else if voters.contains(id) {
                    pb::MemberRole::Follower
                } else {
                    pb::MemberRole::Learner
                }
                .into(),
            })
            .collect();
        let leader_addr = membership
            .get_node(&leader_id)
            .map(|n| n.addr.clone())
            .unwrap_or_default();
        let index = |id: Option<openraft::LogId<u64>>| id.map(|l| l.index).unwrap_or(0);
        pb::GetMembersResponse {
            leader_id,
            leader_addr,
            members,
            node_id: self.node_id,
            applied_index: index(metrics.last_applied),
            snapshot_index: index(metrics.snapshot),
            purged_index: index(metrics.purged),
            term: metrics.current_term,
        }
    }

    fn worker_message(&self, name: &str) -> Result<pb::Worker> {
        let applied = self.state.read();
        let worker = applied
            .state
            .worker_by_name(name)
            .ok_or_else(|| PdError::not_found("worker", name))?;
        let leaders = self.liveness().leader_count(worker.id);
        Ok(convert::worker(&applied.state, worker, leaders))
    }

    fn routing(&self, name: &str) -> Result<pb::GetRoutingTableResponse> {
        let applied = self.state.read();
        let record = applied
            .state
            .collections
            .get(name)
            .ok_or_else(|| PdError::not_found("collection", name))?;
        let liveness = self.liveness();
        let shards = record
            .shard_ids
            .iter()
            .filter_map(|id| applied.state.shards.get(id))
            .map(|s| convert::shard(&applied.state, s, liveness.shard_leader(s.id).map(|w| w.0)))
            .collect();
        Ok(pb::GetRoutingTableResponse {
            collection: Some(convert::collection(record)),
            shards,
        })
    }
}

/// The gRPC service over a [`PdCore`].
#[derive(Clone)]
pub struct PdService {
    core: Arc<PdCore>,
}

impl PdService {
    /// A service for `core`.
    pub fn new(core: Arc<PdCore>) -> Self {
        Self { core }
    }
}

type RpcResult<T> = std::result::Result<Response<T>, Status>;

fn reply<T>(result: Result<T>) -> RpcResult<T> {
    result.map(Response::new).map_err(Status::from)
}

#[tonic::async_trait]
impl PlacementDriver for PdService {
    async fn register_worker(
        &self,
        request: Request<pb::RegisterWorkerRequest>,
    ) -> RpcResult<pb::RegisterWorkerResponse> {
        let req = request.into_inner();
        reply(
            async {
                validate::check_name("name", &req.name)?;
                vectron_config::parse_host_port("addr", &req.addr)
                    .map_err(|e| PdError::invalid("addr", e.to_string()))?;
                let data_dir = registration::data_dir(&req)?;
                self.core.linearizable().await?;
                let current = self
                    .core
                    .state
                    .read()
                    .state
                    .worker_by_name(&req.name)
                    .cloned();
                {
                    registration::check_name_free(
                        current.as_ref(),
                        &self.core.liveness(),
                        &req.name,
                        &req.addr,
                        self.core.worker_down_timeout,
                        Instant::now(),
                    )?;
                }
                let command = PdCommand::RegisterWorker {
                    name: req.name,
                    addr: req.addr,
                    zone: req.zone,
                    now_ms: now_ms(),
                    data_dir,
                };
                match self.core.write(command).await? {
                    PdResponse::Worker(id) => {
                        self.core.liveness().touch(id, Instant::now());
                        Ok(pb::RegisterWorkerResponse { worker_id: id.0 })
                    }
                    other => Err(PdError::Internal(format!("unexpected reply {other:?}"))),
                }
            }
            .await,
        )
    }

    async fn heartbeat(
        &self,
        request: Request<pb::HeartbeatRequest>,
    ) -> RpcResult<pb::HeartbeatResponse> {
        let req = request.into_inner();
        reply(
            async {
                self.core.linearizable().await?;
                let worker_id = WorkerId(req.worker_id);
                let state = {
                    let applied = self.core.state.read();
                    let worker = applied
                        .state
                        .workers
                        .get(&worker_id)
                        .ok_or_else(|| PdError::not_found("worker", worker_id.to_string()))?;
                    worker.state
                };
                if state == WorkerState::Removed {
                    return Err(PdError::FailedPrecondition(format!(
                        "worker {worker_id} was removed; register again"
                    )));
                }
                self.core
                    .liveness()
                    .heartbeat(worker_id, req.replicas, Instant::now());
                if state == WorkerState::Down {
                    self.core
                        .write(PdCommand::SetWorkersLiveness {
                            down: Vec::new(),
                            up: vec![worker_id],
                            now_ms: now_ms(),
                        })
                        .await?;
                }
                let applied = self.core.state.read();
                let liveness = self.core.liveness();
                let assignments = applied
                    .state
                    .shards_on(worker_id)
                    .filter_map(|shard| {
                        let collection = applied.state.collections.get(&shard.collection)?;
                        Some(pb::ReplicaAssignment {
                            shard: Some(convert::shard(
                                &applied.state,
                                shard,
                                liveness.shard_leader(shard.id).map(|w| w.0),
                            )),
                            dimension: collection.spec.dimension,
                            metric: convert::metric(collection.spec.metric).into(),
                            hnsw: Some(convert::hnsw(&collection.spec.hnsw)),
                        })
                    })
                    .collect();
                let steps = executor::steps_for(worker_id, &applied.state, &liveness);
                Ok(pb::HeartbeatResponse {
                    assignments,
                    steps,
                    placement_version: applied.state.placement_version,
                })
            }
            .await,
        )
    }

    async fn get_worker(
        &self,
        request: Request<pb::GetWorkerRequest>,
    ) -> RpcResult<pb::GetWorkerResponse> {
        let req = request.into_inner();
        reply(
            async {
                self.core.linearizable().await?;
                Ok(pb::GetWorkerResponse {
                    worker: Some(self.core.worker_message(&req.name)?),
                })
            }
            .await,
        )
    }

    async fn list_workers(
        &self,
        _request: Request<pb::ListWorkersRequest>,
    ) -> RpcResult<pb::ListWorkersResponse> {
        reply(
            async {
                self.core.linearizable().await?;
                let applied = self.core.state.read();
                let liveness = self.core.liveness();
                let workers = applied
                    .state
                    .workers
                    .values()
                    .map(|w| convert::worker(&applied.state, w, liveness.leader_count(w.id)))
                    .collect();
                Ok(pb::ListWorkersResponse { workers })
            }
            .await,
        )
    }

    async fn drain_worker(
        &self,
        request: Request<pb::DrainWorkerRequest>,
    ) -> RpcResult<pb::DrainWorkerResponse> {
        let req = request.into_inner();
        reply(
            async {
                self.core
                    .write(PdCommand::DrainWorker {
                        name: req.name.clone(),
                    })
                    .await?;
                Ok(pb::DrainWorkerResponse {
                    worker: Some(self.core.worker_message(&req.name)?),
                })
            }
            .await,
        )
    }

    async fn undrain_worker(
        &self,
        request: Request<pb::UndrainWorkerRequest>,
    ) -> RpcResult<pb::UndrainWorkerResponse> {
        let req = request.into_inner();
        reply(
            async {
                self.core
                    .write(PdCommand::UndrainWorker {
                        name: req.name.clone(),
                    })
                    .await?;
                Ok(pb::UndrainWorkerResponse {
                    worker: Some(self.core.worker_message(&req.name)?),
                })
            }
            .await,
        )
    }

    async fn remove_worker(
        &self,
        request: Request<pb::RemoveWorkerRequest>,
    ) -> RpcResult<pb::RemoveWorkerResponse> {
        let req = request.into_inner();
        reply(
            async {
                self.core
                    .write(PdCommand::RemoveWorker { name: req.name })
                    .await?;
                Ok(pb::RemoveWorkerResponse {})
            }
            .await,
        )
    }

    async fn list_moves(
        &self,
        _request: Request<pb::ListMovesRequest>,
    ) -> RpcResult<pb::ListMovesResponse> {
        reply(
            async {
                self.core.linearizable().await?;
                let applied = self.core.state.read();
                Ok(pb::ListMovesResponse {
                    moves: applied
                        .state
                        .moves
                        .values()
                        .map(|m| convert::move_message(&applied.state, m))
                        .collect(),
                })
            }
            .await,
        )
    }

    async fn create_collection(
        &self,
        request: Request<pb::CreateCollectionRequest>,
    ) -> RpcResult<pb::CreateCollectionResponse> {
        let req = request.into_inner();
        reply(
            async {
                let spec = validate::collection_spec(req.spec.as_ref())?;
                match self
                    .core
                    .write(PdCommand::CreateCollection {
                        spec,
                        now_ms: now_ms(),
                    })
                    .await?
                {
                    PdResponse::Collection(record) => Ok(pb::CreateCollectionResponse {
                        collection: Some(convert::collection(&record)),
                    }),
                    other => Err(PdError::Internal(format!("unexpected reply {other:?}"))),
                }
            }
            .await,
        )
    }

    async fn drop_collection(
        &self,
        request: Request<pb::DropCollectionRequest>,
    ) -> RpcResult<pb::DropCollectionResponse> {
        let req = request.into_inner();
        reply(
            async {
                let (shards, assigned) = {
                    let applied = self.core.state.read();
                    let state = &applied.state;
                    let shards = state
                        .collections
                        .get(&req.name)
                        .map(|c| c.shard_ids.clone())
                        .unwrap_or_default();
                    let mut assigned: Vec<WorkerId> = shards
                        .iter()
                        .filter_map(|id| state.shards.get(id))
                        .flat_map(|s| s.replicas.iter().map(|r| r.worker))
                        .collect();
                    assigned.sort();
                    assigned.dedup();
                    (shards, assigned)
                };
                self.core
                    .write(PdCommand::DropCollection {
                        name: req.name.clone(),
                    })
                    .await?;
                self.core
                    .await_replicas_destroyed(&req.name, &shards, &assigned, Instant::now())
                    .await;
                Ok(pb::DropCollectionResponse {})
            }
            .await,
        )
    }

    async fn list_collections(
        &self,
        _request: Request<pb::ListCollectionsRequest>,
    ) -> RpcResult<pb::ListCollectionsResponse> {
        reply(
            async {
                self.core.linearizable().await?;
                let applied = self.core.state.read();
                Ok(pb::ListCollectionsResponse {
                    collections: applied
                        .state
                        .collections
                        .values()
                        .map(convert::collection)
                        .collect(),
                })
            }
            .await,
        )
    }

    async fn get_collection_status(
        &self,
        request: Request<pb::GetCollectionStatusRequest>,
    ) -> RpcResult<pb::GetCollectionStatusResponse> {
        let req = request.into_inner();
        reply(
            async {
                self.core.linearizable().await?;
                let routing = self.core.routing(&req.name)?;
                let liveness = self.core.liveness();
                let now = Instant::now();
                let timeout = self.core.worker_down_timeout;
                let shards: Vec<pb::ShardStatus> = routing
                    .shards
                    .into_iter()
                    .map(|shard| {
                        let (points, bytes) = liveness.shard_size(ShardId(shard.shard_id));
                        let live_replicas = shard
                            .replicas
                            .iter()
                            .filter(|r| liveness.is_alive(WorkerId(r.worker_id), timeout, now))
                            .count() as u32;
                        let unindexed_points = liveness.shard_unindexed(ShardId(shard.shard_id));
                        pb::ShardStatus {
                            shard: Some(shard),
                            points,
                            bytes,
                            live_replicas,
                            unindexed_points,
                        }
                    })
                    .collect();
                let points = shards.iter().map(|s| s.points).sum();
                Ok(pb::GetCollectionStatusResponse {
                    collection: routing.collection,
                    shards,
                    points,
                })
            }
            .await,
        )
    }

    async fn get_routing_table(
        &self,
        request: Request<pb::GetRoutingTableRequest>,
    ) -> RpcResult<pb::GetRoutingTableResponse> {
        let req = request.into_inner();
        reply(
            async {
                self.core.linearizable().await?;
                self.core.routing(&req.collection)
            }
            .await,
        )
    }

    async fn add_member(
        &self,
        request: Request<pb::AddMemberRequest>,
    ) -> RpcResult<pb::AddMemberResponse> {
        let req = request.into_inner();
        reply(
            async {
                if req.node_id == 0 {
                    return Err(PdError::invalid("node_id", "must be positive"));
                }
                vectron_config::parse_host_port("addr", &req.addr)
                    .map_err(|e| PdError::invalid("addr", e.to_string()))?;
                let _one_change_at_a_time = self.core.membership_changes.lock().await;
                self.core
                    .raft
                    .add_learner(req.node_id, BasicNode::new(req.addr.clone()), true)
                    .await
                    .map_err(write_error)?;
                if !req.learner_only {
                    let mut voters: BTreeSet<u64> = self
                        .core
                        .raft
                        .metrics()
                        .borrow()
                        .membership_config
                        .membership()
                        .voter_ids()
                        .collect();
                    if voters.insert(req.node_id) {
                        self.core
                            .raft
                            .change_membership(voters, false)
                            .await
                            .map_err(write_error)?;
                    }
                }
                Ok(pb::AddMemberResponse {
                    members: self.core.members().members,
                })
            }
            .await,
        )
    }

    async fn remove_member(
        &self,
        request: Request<pb::RemoveMemberRequest>,
    ) -> RpcResult<pb::RemoveMemberResponse> {
        let req = request.into_inner();
        reply(
            async {
                let _one_change_at_a_time = self.core.membership_changes.lock().await;
                let membership = self
                    .core
                    .raft
                    .metrics()
                    .borrow()
                    .membership_config
                    .membership()
                    .clone();
                if membership.get_node(&req.node_id).is_none() {
                    return Err(PdError::not_found("member", req.node_id.to_string()));
                }
                let voters: BTreeSet<u64> = membership
                    .voter_ids()
                    .filter(|id| *id != req.node_id)
                    .collect();
                if voters.is_empty() {
                    return Err(PdError::FailedPrecondition(
                        "cannot remove the last voter".into(),
                    ));
                }
                self.core
                    .raft
                    .change_membership(voters, false)
                    .await
                    .map_err(write_error)?;
                Ok(pb::RemoveMemberResponse {
                    members: self.core.members().members,
                })
            }
            .await,
        )
    }

    async fn get_members(
        &self,
        _request: Request<pb::GetMembersRequest>,
    ) -> RpcResult<pb::GetMembersResponse> {
        Ok(Response::new(self.core.members()))
    }

    async fn alloc_id(
        &self,
        request: Request<pb::AllocIdRequest>,
    ) -> RpcResult<pb::AllocIdResponse> {
        let req = request.into_inner();
        reply(
            async {
                if req.count > 1_000_000 {
                    return Err(PdError::invalid("count", "must be at most 1000000"));
                }
                match self
                    .core
                    .write(PdCommand::AllocIds { count: req.count })
                    .await?
                {
                    PdResponse::Ids { first, count } => Ok(pb::AllocIdResponse { first, count }),
                    other => Err(PdError::Internal(format!("unexpected reply {other:?}"))),
                }
            }
            .await,
        )
    }

    async fn kv_get(&self, request: Request<pb::KvGetRequest>) -> RpcResult<pb::KvGetResponse> {
        let req = request.into_inner();
        reply(
            async {
                self.core.linearizable().await?;
                let applied = self.core.state.read();
                Ok(pb::KvGetResponse {
                    pair: applied.state.kv.get(&req.key).map(|v| pb::KvPair {
                        key: req.key.clone(),
                        value: v.value.clone(),
                        version: v.version,
                    }),
                })
            }
            .await,
        )
    }

    async fn kv_put(&self, request: Request<pb::KvPutRequest>) -> RpcResult<pb::KvPutResponse> {
        let req = request.into_inner();
        reply(
            async {
                if req.key.is_empty() {
                    return Err(PdError::invalid("key", "must not be empty"));
                }
                let command = PdCommand::KvPut {
                    key: req.key,
                    value: req.value,
                    expected_version: req.expected_version,
                };
                match self.core.write(command).await? {
                    PdResponse::KvVersion(version) => Ok(pb::KvPutResponse { version }),
                    other => Err(PdError::Internal(format!("unexpected reply {other:?}"))),
                }
            }
            .await,
        )
    }

    async fn kv_delete(
        &self,
        request: Request<pb::KvDeleteRequest>,
    ) -> RpcResult<pb::KvDeleteResponse> {
        let req = request.into_inner();
        reply(
            async {
                match self
                    .core
                    .write(PdCommand::KvDelete { key: req.key })
                    .await?
                {
                    PdResponse::KvDeleted(deleted) => Ok(pb::KvDeleteResponse { deleted }),
                    other => Err(PdError::Internal(format!("unexpected reply {other:?}"))),
                }
            }
            .await,
        )
    }

    async fn kv_scan(&self, request: Request<pb::KvScanRequest>) -> RpcResult<pb::KvScanResponse> {
        let req = request.into_inner();
        reply(
            async {
                self.core.linearizable().await?;
                let limit = if req.limit == 0 {
                    1000
                } else {
                    req.limit.min(10_000)
                } as usize;
                let applied = self.core.state.read();
                let mut pairs: Vec<pb::KvPair> = applied
                    .state
                    .kv
                    .range(req.prefix.clone()..)
                    .take_while(|(k, _)| k.starts_with(&req.prefix))
                    .filter(|(k, _)| {
                        req.start_after.is_empty() || k.as_slice() > req.start_after.as_slice()
                    })
                    .take(limit + 1)
                    .map(|(k, v)| pb::KvPair {
                        key: k.clone(),
                        value: v.value.clone(),
                        version: v.version,
                    })
                    .collect();
                let more = pairs.len() > limit;
                pairs.truncate(limit);
                Ok(pb::KvScanResponse { pairs, more })
            }
            .await,
        )
    }
}
