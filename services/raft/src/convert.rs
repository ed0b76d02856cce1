//! Conversions between openraft's types and the `vectron.raft.v1` wire
//! messages. The log store persists entries in the same encoding, so disk and
//! wire never disagree. No I/O.

use std::collections::{BTreeMap, BTreeSet};

use openraft::{
    BasicNode, Entry, EntryPayload, LeaderId, LogId, Membership, StoredMembership, Vote,
};
use vectron_proto::raft::v1 as pb;

use crate::{GroupConfig, PayloadCodec};

/// A wire message that cannot be turned into an openraft value.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// A required field is absent.
    #[error("raft message field {0} is missing")]
    Missing(&'static str),
    /// The application payload of a normal entry failed to decode.
    #[error("raft entry {index} payload does not decode: {reason}")]
    Payload {
        /// Log index of the entry.
        index: u64,
        /// Decoder message.
        reason: String,
    },
}

/// openraft vote → wire.
pub fn vote_to_pb(vote: &Vote<u64>) -> pb::Vote {
    pb::Vote {
        term: vote.leader_id.term,
        node_id: vote.leader_id.node_id,
        committed: vote.committed,
    }
}

/// Wire vote → openraft.
pub fn vote_from_pb(vote: &pb::Vote) -> Vote<u64> {
    Vote {
        leader_id: LeaderId::new(vote.term, vote.node_id),
        committed: vote.committed,
    }
}

/// openraft log id → wire.
pub fn log_id_to_pb(log_id: &LogId<u64>) -> pb::LogId {
    pb::LogId {
        term: log_id.leader_id.term,
        leader_node_id: log_id.leader_id.node_id,
        index: log_id.index,
    }
}

/// Wire log id → openraft.
pub fn log_id_from_pb(log_id: &pb::LogId) -> LogId<u64> {
    LogId::new(
        LeaderId::new(log_id.term, log_id.leader_node_id),
        log_id.index,
    )
}

/// Optional log id → wire.
pub fn opt_log_id_to_pb(log_id: &Option<LogId<u64>>) -> Option<pb::LogId> {
    log_id.as_ref().map(log_id_to_pb)
}

/// Optional wire log id → openraft.
pub fn opt_log_id_from_pb(log_id: &Option<pb::LogId>) -> Option<LogId<u64>> {
    log_id.as_ref().map(log_id_from_pb)
}

/// Membership → wire.
pub fn membership_to_pb(membership: &Membership<u64, BasicNode>) -> pb::Membership {
    pb::Membership {
        configs: membership
            .get_joint_config()
            .iter()
            .map(|set| pb::NodeIdSet {
                node_ids: set.iter().copied().collect(),
            })
            .collect(),
        nodes: membership
            .nodes()
            .map(|(id, node)| {
                (
                    *id,
                    pb::Node {
                        addr: node.addr.clone(),
                    },
                )
            })
            .collect(),
    }
}

/// Wire membership → openraft.
pub fn membership_from_pb(membership: &pb::Membership) -> Membership<u64, BasicNode> {
    let configs: Vec<BTreeSet<u64>> = membership
        .configs
        .iter()
        .map(|set| set.node_ids.iter().copied().collect())
        .collect();
    let nodes: BTreeMap<u64, BasicNode> = membership
        .nodes
        .iter()
        .map(|(id, node)| (*id, BasicNode::new(node.addr.clone())))
        .collect();
    Membership::new(configs, nodes)
}

/// Stored membership → wire.
pub fn stored_membership_to_pb(stored: &StoredMembership<u64, BasicNode>) -> pb::StoredMembership {
    pb::StoredMembership {
        log_id: opt_log_id_to_pb(stored.log_id()),
        membership: Some(membership_to_pb(stored.membership())),
    }
}

/// Wire stored membership → openraft.
pub fn stored_membership_from_pb(
    stored: &pb::StoredMembership,
) -> Result<StoredMembership<u64, BasicNode>, ConvertError> {
    let membership = stored
        .membership
        .as_ref()
        .ok_or(ConvertError::Missing("stored_membership.membership"))?;
    Ok(StoredMembership::new(
        opt_log_id_from_pb(&stored.log_id),
        membership_from_pb(membership),
    ))
}

/// Log entry → wire.
pub fn entry_to_pb<C: GroupConfig>(entry: &Entry<C>) -> pb::Entry {
    let payload = match &entry.payload {
        EntryPayload::Blank => pb::entry::Payload::Blank(pb::Blank {}),
        EntryPayload::Normal(data) => pb::entry::Payload::Normal(data.encode_payload()),
        EntryPayload::Membership(m) => pb::entry::Payload::Membership(membership_to_pb(m)),
    };
    pb::Entry {
        log_id: Some(log_id_to_pb(&entry.log_id)),
        payload: Some(payload),
    }
}

/// Wire entry → openraft.
pub fn entry_from_pb<C: GroupConfig>(entry: &pb::Entry) -> Result<Entry<C>, ConvertError> {
    let log_id = log_id_from_pb(
        entry
            .log_id
            .as_ref()
            .ok_or(ConvertError::Missing("entry.log_id"))?,
    );
    let payload = match entry
        .payload
        .as_ref()
        .ok_or(ConvertError::Missing("entry.payload"))?
    {
        pb::entry::Payload::Blank(_) => EntryPayload::Blank,
        pb::entry::Payload::Normal(bytes) => {
            EntryPayload::Normal(C::D::decode_payload(bytes).map_err(|reason| {
                ConvertError::Payload {
                    index: log_id.index,
                    reason,
                }
            })?)
        }
        pb::entry::Payload::Membership(m) => EntryPayload::Membership(membership_from_pb(m)),
    };
    Ok(Entry { log_id, payload })
}

/// Append-entries request → wire.
pub fn append_request_to_pb<C: GroupConfig>(
    group_id: u64,
    target_node_id: u64,
    req: &openraft::raft::AppendEntriesRequest<C>,
) -> pb::AppendEntriesRequest {
    pb::AppendEntriesRequest {
        group_id,
        vote: Some(vote_to_pb(&req.vote)),
        prev_log_id: opt_log_id_to_pb(&req.prev_log_id),
        entries: req.entries.iter().map(entry_to_pb).collect(),
        leader_commit: opt_log_id_to_pb(&req.leader_commit),
        target_node_id,
    }
}

/// Wire append-entries request → openraft.
pub fn append_request_from_pb<C: GroupConfig>(
    req: &pb::AppendEntriesRequest,
) -> Result<openraft::raft::AppendEntriesRequest<C>, ConvertError> {
    Ok(openraft::raft::AppendEntriesRequest {
        vote: vote_from_pb(req.vote.as_ref().ok_or(ConvertError::Missing("vote"))?),
        prev_log_id: opt_log_id_from_pb(&req.prev_log_id),
        entries: req
            .entries
            .iter()
            .map(entry_from_pb)
            .collect::<Result<_, _>>()?,
        leader_commit: opt_log_id_from_pb(&req.leader_commit),
    })
}

/// Append-entries response → wire.
pub fn append_response_to_pb(
    resp: &openraft::raft::AppendEntriesResponse<u64>,
) -> pb::AppendEntriesResponse {
    use openraft::raft::AppendEntriesResponse as R;
    use pb::append_entries_response::Result as W;
    let result = match resp {
        R::Success => W::Success(pb::Success {}),
        R::PartialSuccess(matching) => W::PartialSuccess(pb::PartialSuccess {
            matching: opt_log_id_to_pb(matching),
        }),
        R::Conflict => W::Conflict(pb::Conflict {}),
        R::HigherVote(vote) => W::HigherVote(vote_to_pb(vote)),
    };
    pb::AppendEntriesResponse {
        result: Some(result),
    }
}

/// Wire append-entries response → openraft.
pub fn append_response_from_pb(
    resp: &pb::AppendEntriesResponse,
) -> Result<openraft::raft::AppendEntriesResponse<u64>, ConvertError> {
    use openraft::raft::AppendEntriesResponse as R;
    use pb::append_entries_response::Result as W;
    Ok(
        match resp
            .result
            .as_ref()
            .ok_or(ConvertError::Missing("result"))?
        {
            W::Success(_) => R::Success,
            W::PartialSuccess(p) => R::PartialSuccess(opt_log_id_from_pb(&p.matching)),
            W::Conflict(_) => R::Conflict,
            W::HigherVote(vote) => R::HigherVote(vote_from_pb(vote)),
        },
    )
}

/// Vote request → wire.
pub fn vote_request_to_pb(
    group_id: u64,
    target_node_id: u64,
    req: &openraft::raft::VoteRequest<u64>,
) -> pb::VoteRequest {
    pb::VoteRequest {
        group_id,
        vote: Some(vote_to_pb(&req.vote)),
        last_log_id: opt_log_id_to_pb(&req.last_log_id),
        target_node_id,
    }
}

/// Wire vote request → openraft.
pub fn vote_request_from_pb(
    req: &pb::VoteRequest,
) -> Result<openraft::raft::VoteRequest<u64>, ConvertError> {
    Ok(openraft::raft::VoteRequest {
        vote: vote_from_pb(req.vote.as_ref().ok_or(ConvertError::Missing("vote"))?),
        last_log_id: opt_log_id_from_pb(&req.last_log_id),
    })
}

/// Vote response → wire.
pub fn vote_response_to_pb(resp: &openraft::raft::VoteResponse<u64>) -> pb::VoteResponse {
    pb::VoteResponse {
        vote: Some(vote_to_pb(&resp.vote)),
        vote_granted: resp.vote_granted,
        last_log_id: opt_log_id_to_pb(&resp.last_log_id),
    }
}

/// Wire vote response → openraft.
pub fn vote_response_from_pb(
    resp: &pb::VoteResponse,
) -> Result<openraft::raft::VoteResponse<u64>, ConvertError> {
    Ok(openraft::raft::VoteResponse {
        vote: vote_from_pb(resp.vote.as_ref().ok_or(ConvertError::Missing("vote"))?),
        vote_granted: resp.vote_granted,
        last_log_id: opt_log_id_from_pb(&resp.last_log_id),
    })
}

/// Snapshot metadata → wire.
pub fn snapshot_meta_to_pb(meta: &openraft::SnapshotMeta<u64, BasicNode>) -> pb::SnapshotMeta {
    pb::SnapshotMeta {
        last_log_id: opt_log_id_to_pb(&meta.last_log_id),
        last_membership: Some(stored_membership_to_pb(&meta.last_membership)),
        snapshot_id: meta.snapshot_id.clone(),
    }
}

/// Wire snapshot metadata → openraft.
pub fn snapshot_meta_from_pb(
    meta: &pb::SnapshotMeta,
) -> Result<openraft::SnapshotMeta<u64, BasicNode>, ConvertError> {
    Ok(openraft::SnapshotMeta {
        last_log_id: opt_log_id_from_pb(&meta.last_log_id),
        last_membership: stored_membership_from_pb(
            meta.last_membership
                .as_ref()
                .ok_or(ConvertError::Missing("meta.last_membership"))?,
        )?,
        snapshot_id: meta.snapshot_id.clone(),
    })
}

/// Snapshot chunk → wire.
pub fn snapshot_request_to_pb<C: GroupConfig>(
    group_id: u64,
    target_node_id: u64,
    req: &openraft::raft::InstallSnapshotRequest<C>,
) -> pb::InstallSnapshotRequest {
    pb::InstallSnapshotRequest {
        group_id,
        vote: Some(vote_to_pb(&req.vote)),
        meta: Some(snapshot_meta_to_pb(&req.meta)),
        offset: req.offset,
        data: req.data.clone(),
        done: req.done,
        target_node_id,
    }
}

/// Wire snapshot chunk → openraft.
pub fn snapshot_request_from_pb<C: GroupConfig>(
    req: pb::InstallSnapshotRequest,
) -> Result<openraft::raft::InstallSnapshotRequest<C>, ConvertError> {
    Ok(openraft::raft::InstallSnapshotRequest {
        vote: vote_from_pb(req.vote.as_ref().ok_or(ConvertError::Missing("vote"))?),
        meta: snapshot_meta_from_pb(req.meta.as_ref().ok_or(ConvertError::Missing("meta"))?)?,
        offset: req.offset,
        data: req.data,
        done: req.done,
    })
}
