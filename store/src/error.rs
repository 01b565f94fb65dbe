//! What can go wrong in the store, in terms a caller can act on.

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use vitals_domain::Violations;

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    /// A stale etag or a concurrent writer: nothing was changed.
    #[error("{0}")]
    Aborted(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    Invalid(Violations),
    /// The database cannot be reached or is too busy; retrying later may succeed.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Internal(String),
}

impl StoreError {
    pub fn invalid(field: &str, description: impl Into<String>) -> Self {
        let mut v = Violations::new();
        v.push(field, description);
        Self::Invalid(v)
    }

    /// True for a unique-key violation, which callers turn into ALREADY_EXISTS or a retry.
    pub(crate) fn is_unique_violation(e: &DieselError) -> bool {
        matches!(
            e,
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)
        )
    }
}

/// Messages of errors that mean "the database went away", on either backend.
const UNAVAILABLE_HINTS: &[&str] = &[
    "server closed the connection",
    "terminating connection",
    "connection refused",
    "could not connect",
    "no connection to the server",
    "the database system is shutting down",
    "the database system is starting up",
    "database is locked",
    "database is busy",
    "connection to server",
    "broken pipe",
    // A write that reached a standby: the primary moved (a failover) and this session has
    // not followed yet; the next connection finds the new primary.
    "read-only transaction",
];

impl From<DieselError> for StoreError {
    fn from(e: DieselError) -> Self {
        match &e {
            DieselError::NotFound => Self::NotFound("not found".into()),
            DieselError::DatabaseError(
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
                info,
            ) => Self::Unavailable(info.message().to_owned()),
            DieselError::DatabaseError(_, info) => {
                let msg = info.message().to_lowercase();
                if UNAVAILABLE_HINTS.iter().any(|h| msg.contains(h)) {
                    Self::Unavailable(info.message().to_owned())
                } else {
                    Self::Internal(e.to_string())
                }
            }
            DieselError::BrokenTransactionManager => {
                Self::Unavailable("the connection's transaction state was lost".into())
            }
            _ => Self::Internal(e.to_string()),
        }
    }
}

impl From<diesel::r2d2::PoolError> for StoreError {
    fn from(e: diesel::r2d2::PoolError) -> Self {
        Self::Unavailable(e.to_string())
    }
}

impl From<diesel::ConnectionError> for StoreError {
    fn from(e: diesel::ConnectionError) -> Self {
        Self::Unavailable(e.to_string())
    }
}
