//! The one error type of the public API and its two renderings: an HTTP
//! answer `{"error": {"code", "message"}}` and a `tonic::Status` carrying an
//! `ErrorDetail`. Errors from PD, workers and auth are translated here and
//! nowhere else. No I/O.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tonic::{Code, Status};
use vectron_proto::common::v1::{ErrorDetail, ErrorReason};
use vectron_proto::error_detail;

/// What kind of failure an [`ApiError`] is; picks the HTTP status, the gRPC
/// code and the `code` string of the error body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// 400: the request is invalid.
    InvalidArgument,
    /// 400: the body is not valid JSON or has the wrong shape.
    InvalidJson,
    /// 401: no usable credential.
    Unauthenticated,
    /// 403: the credential may not do this.
    PermissionDenied,
    /// 404: the collection, point, key or worker does not exist.
    NotFound,
    /// 409: the object already exists.
    AlreadyExists,
    /// 409: the object's state forbids the operation.
    Conflict,
    /// 413: the body is over the limit.
    PayloadTooLarge,
    /// 429: the caller is over its rate limit.
    RateLimited,
    /// 503: no quorum, shard unavailable, overloaded or timed out.
    Unavailable,
    /// 500: a bug.
    Internal,
}

impl ErrorKind {
    /// The snake_case code of the error body.
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::InvalidArgument => "invalid_argument",
            ErrorKind::InvalidJson => "invalid_json",
            ErrorKind::Unauthenticated => "unauthenticated",
            ErrorKind::PermissionDenied => "permission_denied",
            ErrorKind::NotFound => "not_found",
            ErrorKind::AlreadyExists => "already_exists",
            ErrorKind::Conflict => "conflict",
            ErrorKind::PayloadTooLarge => "payload_too_large",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Internal => "internal",
        }
    }

    /// The HTTP status.
    pub fn http_status(self) -> StatusCode {
        match self {
            ErrorKind::InvalidArgument | ErrorKind::InvalidJson => StatusCode::BAD_REQUEST,
            ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
            ErrorKind::PermissionDenied => StatusCode::FORBIDDEN,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::AlreadyExists | ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn grpc(self) -> (Code, ErrorReason) {
        match self {
            ErrorKind::InvalidArgument | ErrorKind::InvalidJson => {
                (Code::InvalidArgument, ErrorReason::InvalidArgument)
            }
            ErrorKind::Unauthenticated => (Code::Unauthenticated, ErrorReason::Unspecified),
            ErrorKind::PermissionDenied => (Code::PermissionDenied, ErrorReason::Unspecified),
            ErrorKind::NotFound => (Code::NotFound, ErrorReason::Unspecified),
            ErrorKind::AlreadyExists => (Code::AlreadyExists, ErrorReason::AlreadyExists),
            ErrorKind::Conflict => (Code::FailedPrecondition, ErrorReason::Conflict),
            ErrorKind::PayloadTooLarge => (Code::OutOfRange, ErrorReason::InvalidArgument),
            ErrorKind::RateLimited => (Code::ResourceExhausted, ErrorReason::Overloaded),
            ErrorKind::Unavailable => (Code::Unavailable, ErrorReason::NoQuorum),
            ErrorKind::Internal => (Code::Internal, ErrorReason::Unspecified),
        }
    }
}

/// A failed public API call.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// What went wrong, broadly.
    pub kind: ErrorKind,
    /// Human text naming the field or object.
    pub message: String,
    /// The offending request field, when there is one.
    pub field: String,
}

/// Results of the public API.
pub type Result<T, E = ApiError> = std::result::Result<T, E>;

impl ApiError {
    /// An error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            field: String::new(),
        }
    }

    /// Invalid input in `field`; the message starts with the field's path.
    pub fn invalid(field: impl Into<String>, message: impl std::fmt::Display) -> Self {
        let field = field.into();
        Self {
            kind: ErrorKind::InvalidArgument,
            message: format!("{field}: {message}"),
            field,
        }
    }

    /// The same error for a request nested at `prefix` (e.g. the fourth
    /// search of a batch, `searches[3]`): its field becomes
    /// `searches[3].vector` and so does the start of its message.
    pub fn within(mut self, prefix: &str) -> Self {
        if self.field.is_empty() {
            self.message = format!("{prefix}: {}", self.message);
            self.field = prefix.to_owned();
        } else {
            let nested = format!("{prefix}.{}", self.field);
            self.message = match self.message.strip_prefix(&self.field) {
                Some(rest) => format!("{nested}{rest}"),
                None => format!("{nested}: {}", self.message),
            };
            self.field = nested;
        }
        self
    }

    /// The collection does not exist.
    pub fn collection_not_found(name: &str) -> Self {
        Self::new(
            ErrorKind::NotFound,
            format!("collection {name:?} does not exist"),
        )
    }

    /// The service is unavailable for `reason`.
    pub fn unavailable(reason: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, reason)
    }

    /// Translates a status from PD, a worker or auth into the public error.
    pub fn from_status(status: &Status) -> Self {
        let detail = error_detail::detail_of(status);
        let field = detail.as_ref().map(|d| d.field.clone()).unwrap_or_default();
        let reason = detail.as_ref().map(|d| d.reason());
        let kind = match (status.code(), reason) {
            (Code::OutOfRange, _) => ErrorKind::PayloadTooLarge,
            (_, Some(ErrorReason::InvalidArgument)) | (Code::InvalidArgument, _) => {
                ErrorKind::InvalidArgument
            }
            (_, Some(ErrorReason::AlreadyExists)) | (Code::AlreadyExists, _) => {
                ErrorKind::AlreadyExists
            }
            (_, Some(ErrorReason::CollectionNotFound)) => ErrorKind::NotFound,
            (_, Some(ErrorReason::Conflict)) | (Code::Aborted, _) => ErrorKind::Conflict,
            (_, Some(ErrorReason::Overloaded)) | (Code::ResourceExhausted, _) => {
                ErrorKind::RateLimited
            }
            (Code::NotFound, _) => ErrorKind::NotFound,
            (Code::Unauthenticated, _) => ErrorKind::Unauthenticated,
            (Code::PermissionDenied, _) => ErrorKind::PermissionDenied,
            (Code::FailedPrecondition, _) => ErrorKind::Conflict,
            (Code::Internal | Code::Unimplemented | Code::DataLoss, _) => ErrorKind::Internal,
            _ => ErrorKind::Unavailable,
        };
        let message = if field.is_empty() || status.message().contains(&field) {
            status.message().to_owned()
        } else {
            format!("{field}: {}", status.message())
        };
        Self {
            kind,
            message,
            field,
        }
    }

    /// The gRPC rendering, with an `ErrorDetail` naming the field.
    pub fn to_status(&self) -> Status {
        let (code, reason) = self.kind.grpc();
        error_detail::status(
            code,
            ErrorDetail {
                reason: reason.into(),
                message: self.message.clone(),
                field: self.field.clone(),
                ..ErrorDetail::default()
            },
        )
    }

    /// The error body of the REST API.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({"error": {"code": self.kind.code(), "message": self.message}})
    }
}

impl From<ApiError> for Status {
    fn from(error: ApiError) -> Self {
        error.to_status()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.kind.http_status(), axum::Json(self.body())).into_response();
        if self.kind == ErrorKind::PayloadTooLarge {
            // The rest of the body was never read, so the connection cannot
            // carry another request: say so, or a client's pool reuses it
            // and its next request fails in transport.
            response.headers_mut().insert(
                axum::http::header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_within_a_batch_names_its_position() {
        let nested = ApiError::invalid("ef", "must be at least 1").within("searches[3]");
        assert_eq!(nested.field, "searches[3].ef");
        assert_eq!(nested.message, "searches[3].ef: must be at least 1");
        let bare = ApiError::new(ErrorKind::InvalidJson, "bad").within("searches[0]");
        assert_eq!(bare.field, "searches[0]");
        assert_eq!(bare.message, "searches[0]: bad");
    }

    #[test]
    fn worker_invalid_argument_keeps_the_field() {
        let status = error_detail::invalid_argument("points[3].vector", "has 3 values, expected 4");
        let error = ApiError::from_status(&status);
        assert_eq!(error.kind, ErrorKind::InvalidArgument);
        assert_eq!(error.field, "points[3].vector");
        assert!(
            error.message.starts_with("points[3].vector"),
            "{}",
            error.message
        );
    }

    #[test]
    fn kinds_map_to_the_contract_statuses() {
        assert_eq!(ErrorKind::PayloadTooLarge.http_status().as_u16(), 413);
        assert_eq!(ErrorKind::RateLimited.http_status().as_u16(), 429);
        assert_eq!(ErrorKind::AlreadyExists.http_status().as_u16(), 409);
        assert_eq!(
            ApiError::from_status(&Status::unavailable("down")).kind,
            ErrorKind::Unavailable
        );
        assert_eq!(
            ApiError::from_status(&Status::permission_denied("no")).kind,
            ErrorKind::PermissionDenied
        );
    }

    #[test]
    fn grpc_rendering_round_trips() {
        let error = ApiError::invalid("top_k", "must be at least 1");
        let back = ApiError::from_status(&error.to_status());
        assert_eq!(back.kind, ErrorKind::InvalidArgument);
        assert_eq!(back.message, error.message);
        assert_eq!(back.field, "top_k");
    }
}
