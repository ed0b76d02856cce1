//! The server half of the Raft transport: a `vectron.raft.v1.Raft` service
//! that routes each request to the local Raft group named by its `group_id`.
//! PD registers its single group 0; a worker registers one group per shard
//! replica. Does no I/O itself; the groups do.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use openraft::Raft;
use openraft::error::{InstallSnapshotError, RaftError};
use tonic::{Request, Response, Status};
use vectron_proto::raft::v1 as pb;
use vectron_proto::raft::v1::raft_server::{Raft as RaftRpc, RaftServer};

use crate::GroupConfig;
use crate::convert;

/// The Raft groups hosted by this node, by group id.
pub struct GroupRegistry<C: GroupConfig> {
    groups: RwLock<HashMap<u64, Raft<C>>>,
}

impl<C: GroupConfig> Default for GroupRegistry<C> {
    fn default() -> Self {
        Self {
            groups: RwLock::new(HashMap::new()),
        }
    }
}

impl<C: GroupConfig> GroupRegistry<C> {
    /// Makes `raft` reachable as `group`.
    pub fn insert(&self, group: u64, raft: Raft<C>) {
        self.groups
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(group, raft);
    }

    /// Stops routing to `group`, returning its handle.
    pub fn remove(&self, group: u64) -> Option<Raft<C>> {
        self.groups
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&group)
    }

    /// The handle of `group`, if hosted here.
    pub fn get(&self, group: u64) -> Option<Raft<C>> {
        self.groups
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&group)
            .cloned()
    }

    fn require(&self, group: u64) -> Result<Raft<C>, Status> {
        self.get(group)
            .ok_or_else(|| Status::not_found(format!("raft group {group} is not hosted here")))
    }
}

/// Largest Raft message a node accepts or sends, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024 * 1024;

/// The tonic service dispatching Raft RPCs to registered groups.
pub struct RaftService<C: GroupConfig> {
    registry: Arc<GroupRegistry<C>>,
}

impl<C: GroupConfig> RaftService<C> {
    /// A service over `registry`, ready to be added to a tonic server.
    pub fn server(registry: Arc<GroupRegistry<C>>) -> RaftServer<Self> {
        RaftServer::new(Self { registry })
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }
}

/// Refuses a request meant for another Raft node: the sender's membership
/// holds a stale address that now belongs to this node (for example a worker
/// that rejoined under a new id). 0 comes from senders that predate the field.
pub fn check_addressed_to<C: GroupConfig>(raft: &Raft<C>, target: u64) -> Result<(), Status> {
    let me = raft.metrics().borrow().id;
    if target == 0 || target == me {
        return Ok(());
    }
    Err(Status::failed_precondition(format!(
        "this is raft node {me}, not node {target}: the sender's address for node {target} is stale"
    )))
}

fn bad_request(error: convert::ConvertError) -> Status {
    Status::invalid_argument(error.to_string())
}

fn raft_failure<E: std::error::Error>(error: RaftError<u64, E>) -> Status {
    Status::internal(error.to_string())
}

#[tonic::async_trait]
impl<C: GroupConfig> RaftRpc for RaftService<C> {
    async fn append_entries(
        &self,
        request: Request<pb::AppendEntriesRequest>,
    ) -> Result<Response<pb::AppendEntriesResponse>, Status> {
        let request = request.into_inner();
        let raft = self.registry.require(request.group_id)?;
        check_addressed_to(&raft, request.target_node_id)?;
        let rpc = convert::append_request_from_pb::<C>(&request).map_err(bad_request)?;
        let reply = raft.append_entries(rpc).await.map_err(raft_failure)?;
        Ok(Response::new(convert::append_response_to_pb(&reply)))
    }

    async fn vote(
        &self,
        request: Request<pb::VoteRequest>,
    ) -> Result<Response<pb::VoteResponse>, Status> {
        let request = request.into_inner();
        let raft = self.registry.require(request.group_id)?;
        check_addressed_to(&raft, request.target_node_id)?;
        let rpc = convert::vote_request_from_pb(&request).map_err(bad_request)?;
        let reply = raft.vote(rpc).await.map_err(raft_failure)?;
        Ok(Response::new(convert::vote_response_to_pb(&reply)))
    }

    async fn trigger_election(
        &self,
        request: Request<pb::TriggerElectionRequest>,
    ) -> Result<Response<pb::TriggerElectionResponse>, Status> {
        let request = request.into_inner();
        let raft = self.registry.require(request.group_id)?;
        check_addressed_to(&raft, request.target_node_id)?;
        raft.trigger()
            .elect()
            .await
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(pb::TriggerElectionResponse {}))
    }

    async fn install_snapshot(
        &self,
        request: Request<pb::InstallSnapshotRequest>,
    ) -> Result<Response<pb::InstallSnapshotResponse>, Status> {
        let request = request.into_inner();
        let raft = self.registry.require(request.group_id)?;
        check_addressed_to(&raft, request.target_node_id)?;
        let rpc = convert::snapshot_request_from_pb::<C>(request).map_err(bad_request)?;
        match raft.install_snapshot(rpc).await {
            Ok(reply) => Ok(Response::new(pb::InstallSnapshotResponse {
                vote: Some(convert::vote_to_pb(&reply.vote)),
                mismatch: None,
            })),
            Err(RaftError::APIError(InstallSnapshotError::SnapshotMismatch(m))) => {
                let segment = |s: &openraft::SnapshotSegmentId| pb::SnapshotSegment {
                    snapshot_id: s.id.clone(),
                    offset: s.offset,
                };
                Ok(Response::new(pb::InstallSnapshotResponse {
                    vote: None,
                    mismatch: Some(pb::SnapshotMismatch {
                        expect: Some(segment(&m.expect)),
                        got: Some(segment(&m.got)),
                    }),
                }))
            }
            Err(other) => Err(raft_failure(other)),
        }
    }
}
