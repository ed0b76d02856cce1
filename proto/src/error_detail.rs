//! Building and reading [`ErrorDetail`], the machine-readable reason that
//! Vectron attaches to a `tonic::Status` (in its details bytes) so that
//! clients can follow leader hints and refresh routing without parsing text.
//! No I/O.

use prost::Message;
use tonic::{Code, Status};

use crate::common::v1::{ErrorDetail, ErrorReason, LeaderHint};

/// Builds a status whose details carry `detail`; the status message is the
/// detail's message.
pub fn status(code: Code, detail: ErrorDetail) -> Status {
    let message = detail.message.clone();
    Status::with_details(code, message, detail.encode_to_vec().into())
}

/// Reads the detail out of a status, if it carries one Vectron wrote.
pub fn detail_of(status: &Status) -> Option<ErrorDetail> {
    if status.details().is_empty() {
        return None;
    }
    ErrorDetail::decode(status.details())
        .ok()
        .filter(|detail| detail.reason() != ErrorReason::Unspecified)
}

/// The node is not the leader of the group; `leader` says where it is when
/// known.
pub fn not_leader(message: impl Into<String>, leader: Option<LeaderHint>) -> Status {
    status(
        Code::FailedPrecondition,
        ErrorDetail {
            reason: ErrorReason::NotLeader.into(),
            message: message.into(),
            leader,
            ..ErrorDetail::default()
        },
    )
}

/// The request carried an older shard epoch than the node holds.
pub fn stale_epoch(shard_id: u64, request_epoch: u64, current_epoch: u64) -> Status {
    status(
        Code::FailedPrecondition,
        ErrorDetail {
            reason: ErrorReason::StaleEpoch.into(),
            message: format!(
                "shard {shard_id}: request epoch {request_epoch} is older than current epoch {current_epoch}"
            ),
            field: "shard.epoch".into(),
            current_epoch,
            ..ErrorDetail::default()
        },
    )
}

/// The node does not host the shard.
pub fn shard_not_found(shard_id: u64) -> Status {
    status(
        Code::NotFound,
        ErrorDetail {
            reason: ErrorReason::ShardNotFound.into(),
            message: format!("shard {shard_id} is not hosted here"),
            field: "shard.shard_id".into(),
            ..ErrorDetail::default()
        },
    )
}

/// A point of the request hashes outside the shard's range: the caller's
/// routing table is out of date.
pub fn wrong_shard(shard_id: u64, field: impl Into<String>, message: impl Into<String>) -> Status {
    status(
        Code::FailedPrecondition,
        ErrorDetail {
            reason: ErrorReason::WrongShard.into(),
            message: format!("shard {shard_id}: {}", message.into()),
            field: field.into(),
            ..ErrorDetail::default()
        },
    )
}

/// The request is over a size limit (`OUT_OF_RANGE`, rendered by the gateway
/// as 413); `field` names what is too large.
pub fn too_large(field: impl Into<String>, message: impl Into<String>) -> Status {
    status(
        Code::OutOfRange,
        ErrorDetail {
            reason: ErrorReason::InvalidArgument.into(),
            message: message.into(),
            field: field.into(),
            ..ErrorDetail::default()
        },
    )
}

/// The request is invalid; `field` is the path of the offending field.
pub fn invalid_argument(field: impl Into<String>, message: impl Into<String>) -> Status {
    status(
        Code::InvalidArgument,
        ErrorDetail {
            reason: ErrorReason::InvalidArgument.into(),
            message: message.into(),
            field: field.into(),
            ..ErrorDetail::default()
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_leader_hint_survives_the_status() {
        let hint = LeaderHint {
            node_id: 2,
            addr: "127.0.0.1:7002".into(),
        };
        let status = not_leader("node 1 is a follower", Some(hint.clone()));
        assert_eq!(status.code(), Code::FailedPrecondition);
        assert_eq!(status.message(), "node 1 is a follower");
        let detail = detail_of(&status).expect("detail present");
        assert_eq!(detail.reason(), ErrorReason::NotLeader);
        assert_eq!(detail.leader, Some(hint));
    }

    #[test]
    fn stale_epoch_carries_the_current_epoch() {
        let detail = detail_of(&stale_epoch(7, 3, 5)).expect("detail present");
        assert_eq!(detail.reason(), ErrorReason::StaleEpoch);
        assert_eq!(detail.current_epoch, 5);
        assert!(detail.message.contains("shard 7"), "{}", detail.message);
    }

    #[test]
    fn shard_not_found_is_not_found() {
        let status = shard_not_found(9);
        assert_eq!(status.code(), Code::NotFound);
        let detail = detail_of(&status).expect("detail present");
        assert_eq!(detail.reason(), ErrorReason::ShardNotFound);
    }

    #[test]
    fn plain_status_has_no_detail() {
        assert_eq!(detail_of(&Status::internal("boom")), None);
        let garbage = Status::with_details(Code::Internal, "x", vec![0xff, 0xff].into());
        assert_eq!(detail_of(&garbage), None);
    }
}
