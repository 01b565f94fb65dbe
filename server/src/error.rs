//! Turning failures into gRPC statuses with google.rpc details: the one place where
//! every store error gets its code, so no client mistake ever comes back as INTERNAL.

use std::time::Duration;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};
use vitals_domain::Violations;
use vitals_store::StoreError;

const DOMAIN: &str = "vitals.v1";

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
        Err(e) => {
            tracing::error!(error = %e, "blocking task failed");
            Err(Status::internal("internal error"))
        }
    }
}
