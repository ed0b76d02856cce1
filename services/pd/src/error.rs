//! Errors of the placement driver and their one conversion to `tonic::Status`
//! with a machine-readable `ErrorDetail`. No I/O.

use serde::{Deserialize, Serialize};
use tonic::Code;
use vectron_proto::common::v1::{ErrorDetail, ErrorReason, LeaderHint};
use vectron_proto::error_detail;

/// Result alias of the PD crate.
pub type Result<T, E = PdError> = std::result::Result<T, E>;

/// Everything a PD call can fail with. Business rejections travel through the
/// Raft log as values, so this type is serialisable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum PdError {
    /// Bad input; `field` names it.
    #[error("{field}: {message}")]
    InvalidArgument {
        /// Request field path.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The object exists.
    #[error("{kind} {name:?} already exists")]
    AlreadyExists {
        /// Kind of object ("collection").
        kind: String,
        /// Its name.
        name: String,
    },
    /// The object does not exist.
    #[error("{kind} {name:?} not found")]
    NotFound {
        /// Kind of object ("collection", "worker").
        kind: String,
        /// Its name or id.
        name: String,
    },
    /// The object's state forbids the operation.
    #[error("{0}")]
    FailedPrecondition(String),
    /// A worker name is held by another live process.
    #[error(
        "worker name {name:?} is in use by worker {holder} at {addr}, which is still heartbeating; \
         give this worker another --name, or stop the other one and retry"
    )]
    NameInUse {
        /// The name.
        name: String,
        /// The worker id holding it.
        holder: u64,
        /// The holder's address.
        addr: String,
    },
    /// A KV compare-and-set lost.
    #[error("key version is {actual}, expected {expected}")]
    VersionConflict {
        /// Expected version (0 = absent).
        expected: u64,
        /// Actual version (0 = absent).
        actual: u64,
    },
    /// This node is not the leader.
    #[error("not the PD leader{}", leader_addr.as_ref().map(|a| format!("; leader is {a}")).unwrap_or_default())]
    NotLeader {
        /// Leader node id, when known.
        leader_id: Option<u64>,
        /// Leader address, when known.
        leader_addr: Option<String>,
    },
    /// Raft could not commit or confirm leadership.
    #[error("no quorum: {0}")]
    Unavailable(String),
    /// A bug or storage failure.
    #[error("internal error: {0}")]
    Internal(String),
}

impl PdError {
    /// Shorthand for an invalid field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidArgument {
            field: field.into(),
            message: message.into(),
        }
    }

    /// Shorthand for a missing object.
    pub fn not_found(kind: &str, name: impl Into<String>) -> Self {
        Self::NotFound {
            kind: kind.into(),
            name: name.into(),
        }
    }
}

impl From<PdError> for tonic::Status {
    fn from(error: PdError) -> Self {
        let message = error.to_string();
        let (code, reason, field, leader) = match &error {
            PdError::InvalidArgument { field, .. } => (
                Code::InvalidArgument,
                ErrorReason::InvalidArgument,
                field.clone(),
                None,
            ),
            PdError::AlreadyExists { .. } => (
                Code::AlreadyExists,
                ErrorReason::AlreadyExists,
                String::new(),
                None,
            ),
            PdError::NotFound { kind, .. } => (
                Code::NotFound,
                if kind == "collection" {
                    ErrorReason::CollectionNotFound
                } else {
                    ErrorReason::Unspecified
                },
                String::new(),
                None,
            ),
            PdError::FailedPrecondition(_) => (
                Code::FailedPrecondition,
                ErrorReason::Conflict,
                String::new(),
                None,
            ),
            PdError::NameInUse { .. } => (
                Code::FailedPrecondition,
                ErrorReason::Conflict,
                "name".to_owned(),
                None,
            ),
            PdError::VersionConflict { .. } => {
                (Code::Aborted, ErrorReason::Conflict, String::new(), None)
            }
            PdError::NotLeader {
                leader_id,
                leader_addr,
            } => (
                Code::FailedPrecondition,
                ErrorReason::NotLeader,
                String::new(),
                leader_addr.as_ref().map(|addr| LeaderHint {
                    node_id: leader_id.unwrap_or_default(),
                    addr: addr.clone(),
                }),
            ),
            PdError::Unavailable(_) => (
                Code::Unavailable,
                ErrorReason::NoQuorum,
                String::new(),
                None,
            ),
            PdError::Internal(_) => (
                Code::Internal,
                ErrorReason::Unspecified,
                String::new(),
                None,
            ),
        };
        error_detail::status(
            code,
            ErrorDetail {
                reason: reason.into(),
                message,
                field,
                leader,
                current_epoch: 0,
            },
        )
    }
}
