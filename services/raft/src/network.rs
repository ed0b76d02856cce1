//! The client half of the Raft transport: openraft's network traits on top of
//! `vectron.raft.v1.Raft`, with one lazily connected gRPC channel per peer
//! address shared by every group of the node. A node's address is looked up
//! on every RPC: the latest one the pool was told (a worker that restarted
//! elsewhere), else the one in the group's membership. Every request names
//! its target node, which refuses requests meant for another node. Does
//! network I/O.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, PayloadTooLarge, RPCError, RaftError, RemoteError,
    SnapshotMismatch, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, SnapshotSegmentId};
use prost::Message;
use tonic::transport::Channel;
use vectron_proto::channel::{Role, internal_endpoint};
use vectron_proto::raft::v1 as pb;
use vectron_proto::raft::v1::raft_client::RaftClient;

use crate::GroupConfig;
use crate::convert;

/// How long to wait for a TCP connection to a peer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Largest AppendEntries message sent, in encoded bytes. A batch over it is
/// refused back to openraft with a hint of how many entries fit, and
/// openraft resends fewer: without the cap a run of large entries exceeds the
/// receiver's decode limit ([`crate::service::MAX_MESSAGE_BYTES`]) and the
/// same range is refused forever. Single entries are capped below this by
/// their state machines, so one entry always fits.
pub const MAX_APPEND_BYTES: usize = 64 * 1024 * 1024;

/// How many of `entries` (encoded sizes, in order) fit in one AppendEntries
/// of at most `limit` bytes; at least one.
pub fn entries_that_fit(entries: impl IntoIterator<Item = usize>, limit: usize) -> usize {
    let mut total = 0usize;
    let mut count = 0usize;
    for size in entries {
        // The field tag and length prefix of each repeated entry.
        total = total.saturating_add(size + 10);
        if total > limit {
            break;
        }
        count += 1;
    }
    count.max(1)
}

/// A transport-level failure, wrapped into openraft's error types.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The peer's address cannot be turned into a URI.
    #[error("bad peer address {addr:?}: {reason}")]
    BadAddress {
        /// The address.
        addr: String,
        /// Why it is unusable.
        reason: String,
    },
    /// The call failed with a gRPC status.
    #[error("raft rpc to {addr} failed: {status}")]
    Status {
        /// The peer.
        addr: String,
        /// What the peer or the channel reported.
        status: tonic::Status,
    },
    /// The reply could not be decoded.
    #[error("raft rpc to {addr}: bad reply: {source}")]
    Decode {
        /// The peer.
        addr: String,
        /// What was wrong.
        source: convert::ConvertError,
    },
}

/// gRPC channels to peers, keyed by address, shared by every group of a node,
/// and the latest known address of each peer node.
#[derive(Debug, Clone)]
pub struct ChannelPool {
    peer: Role,
    channels: Arc<Mutex<HashMap<String, Channel>>>,
    addresses: Arc<Mutex<HashMap<u64, String>>>,
}

impl ChannelPool {
    /// An empty pool of channels to peers of role `peer` (PD nodes for PD's
    /// group, workers for shard groups): under mutual TLS a peer must prove
    /// that role.
    pub fn new(peer: Role) -> ChannelPool {
        ChannelPool {
            peer,
            channels: Arc::default(),
            addresses: Arc::default(),
        }
    }

    /// Records where `node` is now; it overrides the address in any group's
    /// membership, which openraft never updates after the node was added.
    pub fn set_address(&self, node: u64, addr: &str) {
        let mut addresses = self
            .addresses
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if addresses.get(&node).map(String::as_str) != Some(addr) {
            addresses.insert(node, addr.to_owned());
        }
    }

    /// Where to reach `node`: the latest recorded address, else `fallback`
    /// (its address in the group's membership).
    pub fn address_of(&self, node: u64, fallback: &str) -> String {
        self.addresses
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&node)
            .cloned()
            .unwrap_or_else(|| fallback.to_owned())
    }

    /// The channel to `addr`, created (lazily connected) on first use.
    pub fn channel(&self, addr: &str) -> Result<Channel, TransportError> {
        let mut channels = self
            .channels
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(channel) = channels.get(addr) {
            return Ok(channel.clone());
        }
        let endpoint = internal_endpoint(addr, self.peer, CONNECT_TIMEOUT)
            .map_err(|e| TransportError::BadAddress {
                addr: addr.to_owned(),
                reason: e.to_string(),
            })?
            .http2_keep_alive_interval(Duration::from_secs(10))
            .keep_alive_while_idle(true);
        let channel = endpoint.connect_lazy();
        channels.insert(addr.to_owned(), channel.clone());
        Ok(channel)
    }
}

/// Builds per-peer clients for one Raft group.
#[derive(Debug, Clone)]
pub struct GrpcNetworkFactory<C> {
    group: u64,
    pool: ChannelPool,
    _config: PhantomData<C>,
}

impl<C> GrpcNetworkFactory<C> {
    /// A factory for `group` using the node's shared channel pool.
    pub fn new(group: u64, pool: ChannelPool) -> Self {
        Self {
            group,
            pool,
            _config: PhantomData,
        }
    }
}

impl<C: GroupConfig> RaftNetworkFactory<C> for GrpcNetworkFactory<C> {
    type Network = GrpcNetwork<C>;

    async fn new_client(&mut self, target: u64, node: &BasicNode) -> Self::Network {
        GrpcNetwork {
            group: self.group,
            target,
            member_addr: node.addr.clone(),
            addr: node.addr.clone(),
            pool: self.pool.clone(),
            _config: PhantomData,
        }
    }
}

/// A client of one peer for one group.
pub struct GrpcNetwork<C> {
    group: u64,
    target: u64,
    /// The target's address in the group's membership.
    member_addr: String,
    /// The address of the latest call, for error messages.
    addr: String,
    pool: ChannelPool,
    _config: PhantomData<C>,
}

fn unreachable<E: std::error::Error>(error: TransportError) -> RPCError<u64, BasicNode, E> {
    RPCError::Unreachable(Unreachable::new(&error))
}

impl<C: GroupConfig> GrpcNetwork<C> {
    /// A client of the target at its current address.
    fn client(&mut self) -> Result<RaftClient<Channel>, TransportError> {
        self.addr = self.pool.address_of(self.target, &self.member_addr);
        self.pool.channel(&self.addr).map(RaftClient::new)
    }

    fn request<T>(&self, message: T, option: &RPCOption) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.set_timeout(option.hard_ttl());
        request
    }

    /// Unreachable peers make openraft back off; other failures retry at once.
    fn status_error<E: std::error::Error>(
        &self,
        status: tonic::Status,
    ) -> RPCError<u64, BasicNode, E> {
        let code = status.code();
        let error = TransportError::Status {
            addr: self.addr.clone(),
            status,
        };
        match code {
            // A node that is not the target (a stale address) is as good as
            // unreachable: back off rather than retry at once.
            tonic::Code::Unavailable | tonic::Code::NotFound | tonic::Code::FailedPrecondition => {
                unreachable(error)
            }
            _ => RPCError::Network(NetworkError::new(&error)),
        }
    }

    fn decode_error<E: std::error::Error>(
        &self,
        source: convert::ConvertError,
    ) -> RPCError<u64, BasicNode, E> {
        RPCError::Network(NetworkError::new(&TransportError::Decode {
            addr: self.addr.clone(),
            source,
        }))
    }
}

impl<C: GroupConfig> RaftNetwork<C> for GrpcNetwork<C> {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<C>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        let message = convert::append_request_to_pb(self.group, self.target, &rpc);
        if message.entries.len() > 1 && message.encoded_len() > MAX_APPEND_BYTES {
            let fit = entries_that_fit(
                message.entries.iter().map(Message::encoded_len),
                MAX_APPEND_BYTES,
            );
            return Err(RPCError::PayloadTooLarge(
                PayloadTooLarge::new_entries_hint(fit as u64),
            ));
        }
        let mut client = self.client().map_err(unreachable)?;
        let request = self.request(message, &option);
        let reply = client
            .append_entries(request)
            .await
            .map_err(|s| self.status_error(s))?;
        convert::append_response_from_pb(reply.get_ref()).map_err(|e| self.decode_error(e))
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<C>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<u64>,
        RPCError<u64, BasicNode, RaftError<u64, InstallSnapshotError>>,
    > {
        let mut client = self.client().map_err(unreachable)?;
        let request = self.request(
            convert::snapshot_request_to_pb(self.group, self.target, &rpc),
            &option,
        );
        let reply = client
            .install_snapshot(request)
            .await
            .map_err(|s| self.status_error(s))?
            .into_inner();
        if let Some(mismatch) = reply.mismatch {
            let segment = |s: Option<pb::SnapshotSegment>| {
                let s = s.unwrap_or_default();
                SnapshotSegmentId {
                    id: s.snapshot_id,
                    offset: s.offset,
                }
            };
            let error = SnapshotMismatch {
                expect: segment(mismatch.expect),
                got: segment(mismatch.got),
            };
            return Err(RPCError::RemoteError(RemoteError::new(
                self.target,
                RaftError::APIError(InstallSnapshotError::SnapshotMismatch(error)),
            )));
        }
        let vote = reply
            .vote
            .as_ref()
            .ok_or(convert::ConvertError::Missing("vote"))
            .map_err(|e| self.decode_error(e))?;
        Ok(InstallSnapshotResponse {
            vote: convert::vote_from_pb(vote),
        })
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        let mut client = self.client().map_err(unreachable)?;
        let request = self.request(
            convert::vote_request_to_pb(self.group, self.target, &rpc),
            &option,
        );
        let reply = client
            .vote(request)
            .await
            .map_err(|s| self.status_error(s))?;
        convert::vote_response_from_pb(reply.get_ref()).map_err(|e| self.decode_error(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorded_address_overrides_the_membership() {
        let pool = ChannelPool::new(Role::Worker);
        assert_eq!(pool.address_of(3, "10.0.0.1:7500"), "10.0.0.1:7500");
        pool.set_address(3, "10.0.0.9:7500");
        assert_eq!(pool.address_of(3, "10.0.0.1:7500"), "10.0.0.9:7500");
        assert_eq!(pool.address_of(4, "10.0.0.2:7500"), "10.0.0.2:7500");
    }

    #[test]
    fn a_batch_is_cut_where_the_bytes_run_out_but_never_to_nothing() {
        let mib = 1024 * 1024;
        assert_eq!(entries_that_fit([10 * mib; 10], 64 * mib), 6);
        assert_eq!(entries_that_fit([100; 5], 64 * mib), 5);
        assert_eq!(entries_that_fit([100 * mib, 1], 64 * mib), 1);
        assert_eq!(entries_that_fit(std::iter::empty(), 64 * mib), 1);
    }
}
