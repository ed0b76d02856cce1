//! The auth crate's error type and its one conversion to `tonic::Status`
//! with a machine-readable `ErrorDetail`. No I/O.

use std::net::SocketAddr;
use std::path::PathBuf;

use tonic::{Code, Status};
use vectron_pd::PdClientError;
use vectron_proto::common::v1::{ErrorDetail, ErrorReason};
use vectron_proto::error_detail;

/// Result alias of the auth crate.
pub type Result<T, E = AuthError> = std::result::Result<T, E>;

/// Everything an auth operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Bad input; `field` names it.
    #[error("{field}: {message}")]
    Invalid {
        /// Request field path.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The credential is missing, malformed, expired or wrong.
    #[error("{0}")]
    Unauthenticated(String),
    /// The object exists.
    #[error("{kind} {name:?} already exists")]
    AlreadyExists {
        /// Kind of object ("user").
        kind: &'static str,
        /// Its name.
        name: String,
    },
    /// The object does not exist.
    #[error("{kind} {name:?} not found")]
    NotFound {
        /// Kind of object ("user", "API key").
        kind: &'static str,
        /// Its name or id.
        name: String,
    },
    /// A concurrent writer changed the same record.
    #[error("{0}")]
    Conflict(String),
    /// Too much work is waiting (password checks in a login flood); retry
    /// later.
    #[error("{0}")]
    Overloaded(String),
    /// PD, which holds the auth state, failed or rejected the call.
    #[error("auth state in PD: {0}")]
    Pd(#[from] PdClientError),
    /// The JWT secret file is missing, unreadable or too short.
    #[error("JWT secret file {}: {message}", path.display())]
    Secret {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The JWT secret given in code is unusable.
    #[error("JWT secret: {0}")]
    WeakSecret(String),
    /// Binding or running the gRPC server failed.
    #[error("auth gRPC server on {addr}: {message}")]
    Serve {
        /// Listen address.
        addr: SocketAddr,
        /// What failed.
        message: String,
    },
    /// A bug, a corrupt stored record or a failed hash computation.
    #[error("internal error: {0}")]
    Internal(String),
}

impl AuthError {
    /// Shorthand for an invalid field.
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            message: message.into(),
        }
    }
}

fn with_reason(code: Code, reason: ErrorReason, message: String) -> Status {
    error_detail::status(
        code,
        ErrorDetail {
            reason: reason.into(),
            message,
            ..ErrorDetail::default()
        },
    )
}

impl From<AuthError> for Status {
    fn from(error: AuthError) -> Self {
        let message = error.to_string();
        match error {
            AuthError::Invalid { field, .. } => error_detail::invalid_argument(field, message),
            AuthError::Unauthenticated(_) => Status::unauthenticated(message),
            AuthError::AlreadyExists { .. } => {
                with_reason(Code::AlreadyExists, ErrorReason::AlreadyExists, message)
            }
            AuthError::NotFound { .. } => Status::not_found(message),
            AuthError::Conflict(_) => with_reason(Code::Aborted, ErrorReason::Conflict, message),
            AuthError::Overloaded(_) => {
                with_reason(Code::ResourceExhausted, ErrorReason::Overloaded, message)
            }
            AuthError::Pd(pd) => {
                let status = pd.status();
                Status::new(status.code(), message)
            }
            AuthError::Secret { .. }
            | AuthError::WeakSecret(_)
            | AuthError::Serve { .. }
            | AuthError::Internal(_) => Status::internal(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_carries_the_field() {
        let status = Status::from(AuthError::invalid("password", "too short"));
        assert_eq!(status.code(), Code::InvalidArgument);
        let detail = error_detail::detail_of(&status).expect("detail present");
        assert_eq!(detail.field, "password");
        assert!(
            status.message().contains("password"),
            "{}",
            status.message()
        );
    }

    #[test]
    fn already_exists_maps_to_already_exists() {
        let status = Status::from(AuthError::AlreadyExists {
            kind: "user",
            name: "bob".into(),
        });
        assert_eq!(status.code(), Code::AlreadyExists);
        let detail = error_detail::detail_of(&status).expect("detail present");
        assert_eq!(detail.reason(), ErrorReason::AlreadyExists);
    }

    #[test]
    fn unauthenticated_and_not_found_codes() {
        assert_eq!(
            Status::from(AuthError::Unauthenticated("no".into())).code(),
            Code::Unauthenticated
        );
        assert_eq!(
            Status::from(AuthError::NotFound {
                kind: "API key",
                name: "x".into()
            })
            .code(),
            Code::NotFound
        );
    }
}
