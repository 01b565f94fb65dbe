//! Turning failures into gRPC statuses with google.rpc details. Every failure a request
//! can meet, from every layer below the API, is an [`ApiError`]; its one conversion into a
//! `Status` gives each its code, always a `google.rpc.ErrorInfo` (reason and domain), a
//! `RetryInfo` where retrying helps, and a `BadRequest` for invalid input, so no client
//! mistake ever comes back as INTERNAL and no internal cause ever reaches a client.

use std::time::Duration;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};
use vitals_domain::Violations;
use vitals_engine::registry::RegistryError;
use vitals_store::StoreError;

use crate::models::HubError;

const DOMAIN: &str = "vitals.v1";

/// Why a request failed. Lower layers' errors convert with `?`; `Status::from` is the
/// only way out.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Hub(#[from] HubError),
    /// Bad input: INVALID_ARGUMENT naming every bad field.
    #[error("invalid request: {}", .0.summary())]
    Invalid(Violations),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    PermissionDenied(String),
    /// Retrying shortly may succeed.
    #[error("{0}")]
    Unavailable(String),
    /// Something stored cannot be read back; the message says what to do about it.
    #[error("{0}")]
    Unreadable(String),
    /// A fault of ours: logged with its cause, answered as "internal error".
    #[error("{0}")]
    Internal(String),
}

impl From<Violations> for ApiError {
    fn from(v: Violations) -> Self {
        Self::Invalid(v)
    }
}

impl From<ApiError> for Status {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::Store(e) => from_store(e),
            ApiError::Registry(e) => from_registry(e),
            ApiError::Hub(HubError::Registry(e)) => from_registry(e),
            ApiError::Hub(e @ HubError::Unservable { .. }) => {
                with_reason(Code::FailedPrecondition, "MODEL_UNSERVABLE", e.to_string())
            }
            ApiError::Invalid(v) => invalid(&v),
            ApiError::NotFound(m) => with_reason(Code::NotFound, "NOT_FOUND", m),
            ApiError::FailedPrecondition(m) => {
                with_reason(Code::FailedPrecondition, "FAILED_PRECONDITION", m)
            }
            ApiError::Unauthenticated(m) => {
                with_reason(Code::Unauthenticated, "UNAUTHENTICATED", m)
            }
            ApiError::PermissionDenied(m) => {
                with_reason(Code::PermissionDenied, "PERMISSION_DENIED", m)
            }
            ApiError::Unavailable(m) => with_reason(Code::Unavailable, "UNAVAILABLE", m),
            ApiError::Unreadable(m) => with_reason(Code::Internal, "STORED_DATA_UNREADABLE", m),
            ApiError::Internal(m) => {
                // The cause goes to the log, never to the caller.
                tracing::error!(error = %m, "internal error");
                with_reason(Code::Internal, "INTERNAL", "internal error".into())
            }
        }
    }
}

fn from_registry(e: RegistryError) -> Status {
    match e {
        RegistryError::NotFound(m) => with_reason(Code::NotFound, "MODEL_NOT_FOUND", m),
        RegistryError::InvalidKind(m) => invalid_field("kind", m),
        e @ (RegistryError::Integrity { .. } | RegistryError::Corrupt { .. }) => with_reason(
            Code::FailedPrecondition,
            "MODEL_FILES_INVALID",
            e.to_string(),
        ),
        e => {
            tracing::error!(error = %e, "registry failure");
            with_reason(
                Code::Unavailable,
                "REGISTRY_UNAVAILABLE",
                "the model registry cannot be read; retry shortly".into(),
            )
        }
    }
}

/// INVALID_ARGUMENT with a `google.rpc.BadRequest` listing every violation.
pub fn invalid(violations: &Violations) -> Status {
    let details: Vec<FieldViolation> = violations
        .0
        .iter()
        .map(|v| FieldViolation::new(&v.field, &v.description))
        .collect();
    let mut d = ErrorDetails::with_bad_request(details);
    d.set_error_info("INVALID_ARGUMENT", DOMAIN, []);
    Status::with_error_details(
        Code::InvalidArgument,
        format!("invalid request: {}", violations.summary()),
        d,
    )
}

pub fn invalid_field(field: &str, description: impl Into<String>) -> Status {
    let mut v = Violations::new();
    v.push(field, description);
    invalid(&v)
}

/// INVALID_ARGUMENT unless `id` is a well-formed identifier (as the store issues them).
pub fn check_id(field: &str, id: &str) -> Result<(), Status> {
    let mut v = Violations::new();
    vitals_domain::validate::check_id(&mut v, field, id);
    v.into_result().map_err(|v| invalid(&v))
}

/// INVALID_ARGUMENT unless `violations` is empty.
pub fn check(violations: Violations) -> Result<(), Status> {
    violations.into_result().map_err(|v| invalid(&v))
}

fn with_reason(code: Code, reason: &str, message: String) -> Status {
    let mut d = ErrorDetails::new();
    d.set_error_info(reason, DOMAIN, []);
    if matches!(code, Code::Unavailable | Code::ResourceExhausted) {
        d.set_retry_info(Some(Duration::from_secs(1)));
    }
    Status::with_error_details(code, message, d)
}

pub fn from_store(e: StoreError) -> Status {
    match e {
        StoreError::NotFound(m) => with_reason(Code::NotFound, "NOT_FOUND", m),
        StoreError::AlreadyExists(m) => with_reason(Code::AlreadyExists, "ALREADY_EXISTS", m),
        StoreError::Aborted(m) => with_reason(Code::Aborted, "STALE_ETAG", m),
        StoreError::FailedPrecondition(m) => {
            with_reason(Code::FailedPrecondition, "FAILED_PRECONDITION", m)
        }
        StoreError::Invalid(v) => invalid(&v),
        StoreError::Unavailable(m) => {
            tracing::warn!(error = %m, "database unavailable");
            with_reason(
                Code::Unavailable,
                "DATABASE_UNAVAILABLE",
                "the database is unavailable; retry shortly".into(),
            )
        }
        StoreError::Internal(m) => {
            // The cause goes to the log, never to the caller.
            tracing::error!(error = %m, "internal store error");
            with_reason(Code::Internal, "INTERNAL", "internal error".into())
        }
    }
}

/// Runs blocking store work off the async threads.
pub async fn blocking<T, F>(f: F) -> Result<T, Status>
where
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
    T: Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result.map_err(from_store),
        Err(e) => Err(ApiError::Internal(format!("blocking task failed: {e}")).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_failure_carries_error_info_and_only_retryable_ones_retry_info() {
        let mut bad = Violations::new();
        bad.push("customer.email", "is not an e-mail address");
        let cases: Vec<(ApiError, Code, bool)> = vec![
            (ApiError::Invalid(bad), Code::InvalidArgument, false),
            (
                ApiError::NotFound("no such customer".into()),
                Code::NotFound,
                false,
            ),
            (
                ApiError::FailedPrecondition("no model".into()),
                Code::FailedPrecondition,
                false,
            ),
            (
                ApiError::Unauthenticated("unknown API key".into()),
                Code::Unauthenticated,
                false,
            ),
            (
                ApiError::PermissionDenied("needs admin".into()),
                Code::PermissionDenied,
                false,
            ),
            (
                ApiError::Unavailable("shutting down".into()),
                Code::Unavailable,
                true,
            ),
            (
                ApiError::Unreadable("run RefreshEvaluations".into()),
                Code::Internal,
                false,
            ),
            (
                ApiError::Internal("a secret cause".into()),
                Code::Internal,
                false,
            ),
            (
                StoreError::Aborted("stale etag".into()).into(),
                Code::Aborted,
                false,
            ),
            (
                StoreError::Unavailable("down".into()).into(),
                Code::Unavailable,
                true,
            ),
            (
                RegistryError::NotFound("churn v9".into()).into(),
                Code::NotFound,
                false,
            ),
        ];
        for (error, code, retry) in cases {
            let shown = error.to_string();
            let status = Status::from(error);
            assert_eq!(status.code(), code, "{shown}");
            let details = status.get_error_details();
            assert!(details.error_info().is_some(), "{shown}: no ErrorInfo");
            assert_eq!(details.retry_info().is_some(), retry, "{shown}: RetryInfo");
            assert!(
                !status.message().contains("secret"),
                "an internal cause was sent"
            );
        }
    }
}
