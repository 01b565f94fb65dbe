//! The audit trail: who wrote what or read whose personal data, when, and the outcome.
//! Written in batches by the server's audit writer; read by `vitals-trainer audit`.

use diesel::prelude::*;
use vitals_domain::time::Micros;

use crate::db::{Store, WriteTransaction, with_conn};
use crate::error::Result;
use crate::schema::audit_log;

/// One audited call.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_log)]
pub struct AuditEntry {
    /// UUIDv7: time-ordered.
    pub id: String,
    pub time: Micros,
    /// The API key's name (or `anonymous ...`, `unauthenticated`).
    pub actor: String,
    /// The gRPC method, e.g. `vitals.v1.CustomerService/DeleteCustomer`.
    pub method: String,
    /// What the call touched (a customer id, `churn v3`, `batch of 500 events`), as the
    /// service reported it; empty when the call failed before it knew.
    pub record: String,
    /// `OK` or the gRPC status code's name.
    pub outcome: String,
}

impl AuditEntry {
    pub fn new(
        time: Micros,
        actor: impl Into<String>,
        method: impl Into<String>,
        record: impl Into<String>,
        outcome: impl Into<String>,
    ) -> Self {
        Self {
            id: uuid::Uuid::now_v7().to_string(),
            time,
            actor: actor.into(),
            method: method.into(),
            record: record.into(),
            outcome: outcome.into(),
        }
    }
}

/// Which entries `list_audit` returns; every field narrows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub actor: Option<String>,
    /// A substring of the method (e.g. `DeleteCustomer`).
    pub method: Option<String>,
    pub record: Option<String>,
    /// At or after.
    pub since: Option<Micros>,
    /// Before.
    pub until: Option<Micros>,
}

/// Rows per INSERT: under SQLite's bind limit (6 columns).
const CHUNK: usize = 5_000;

impl Store {
    /// Appends entries in one transaction.
    pub fn insert_audit(&self, entries: &[AuditEntry]) -> Result<usize> {
        if entries.is_empty() {
            return Ok(0);
        }
        with_conn!(self, conn => {
            conn.write_transaction(|conn| {
                let mut written = 0;
                for chunk in entries.chunks(CHUNK) {
                    written += diesel::insert_into(audit_log::table)
                        .values(chunk)
                        .execute(conn)?;
                }
                Ok(written)
            })
        })
    }

    /// The newest `limit` entries matching `filter`, newest first.
    pub fn list_audit(&self, filter: &AuditFilter, limit: usize) -> Result<Vec<AuditEntry>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        with_conn!(self, conn => {
            let mut q = audit_log::table
                .select(AuditEntry::as_select())
                .order(audit_log::id.desc())
                .limit(limit)
                .into_boxed();
            if let Some(actor) = &filter.actor {
                q = q.filter(audit_log::actor.eq(actor.clone()));
            }
            if let Some(method) = &filter.method {
                q = q.filter(audit_log::method.like(format!("%{}%", method.replace('%', ""))));
            }
            if let Some(record) = &filter.record {
                q = q.filter(audit_log::record.eq(record.clone()));
            }
            if let Some(since) = filter.since {
                q = q.filter(audit_log::time.ge(since));
            }
            if let Some(until) = filter.until {
                q = q.filter(audit_log::time.lt(until));
            }
            Ok(q.load(conn)?)
        })
    }
}
