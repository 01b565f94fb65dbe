//! Recording the audit trail: every write and every read of PII, by the auth layer (it
//! knows the caller and the method, and sees the outcome), with the record the service
//! reports through [`AuditRecord`]. Entries go to a writer task that stores them in
//! batches, so a call waits for a channel send, not for a database write.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use vitals_store::{AuditEntry, Store};

use crate::auth::{Caller, Role};

/// Entries buffered before callers wait for the writer.
const BACKLOG: usize = 10_000;
/// Entries per database write.
const BATCH: usize = 1_000;

/// What a service tells the audit trail it touched; put in the response's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord(pub String);

/// Attaches the record a call touched to its response.
pub fn with_record<T>(
    mut response: tonic::Response<T>,
    record: impl Into<String>,
) -> tonic::Response<T> {
    response.extensions_mut().insert(AuditRecord(record.into()));
    response
}

/// Whether a call is audited: every write; a read only when it shows PII to the caller.
pub fn audited(path: &str, caller: Option<&Caller>) -> bool {
    let method = path.trim_start_matches('/');
    let write = matches!(
        method,
        "vitals.v1.CustomerService/CreateCustomer"
            | "vitals.v1.CustomerService/UpdateCustomer"
            | "vitals.v1.CustomerService/DeleteCustomer"
            | "vitals.v1.CustomerService/ImportCustomers"
            | "vitals.v1.EventService/RecordEvents"
            | "vitals.v1.EventService/StreamEvents"
            | "vitals.v1.EvaluationService/RefreshEvaluations"
            | "vitals.v1.EvaluationService/UpdateScoringScheme"
            | "vitals.v1.ModelService/ActivateModel"
            | "vitals.v1.ModelService/ReloadModels"
            | "vitals.v1.FollowUpService/UpdateFollowUp"
            | "vitals.v1.FollowUpService/UpdateFollowUpRules"
            | "vitals.v1.FollowUpService/RecordRetentionAction"
            | "vitals.v1.FollowUpService/CreateCampaign"
    );
    let pii_read = matches!(
        method,
        "vitals.v1.CustomerService/GetCustomer"
            | "vitals.v1.CustomerService/ListCustomers"
            | "vitals.v1.EventService/ListCustomerEvents"
    ) && caller.is_none_or(|c| c.can(Role::PiiReader));
    write || pii_read
}

/// Where the auth layer sends entries.
#[derive(Debug, Clone)]
pub struct AuditSink {
    tx: mpsc::Sender<AuditEntry>,
}

impl AuditSink {
    pub async fn record(&self, entry: AuditEntry) {
        if self.tx.send(entry).await.is_err() {
            tracing::error!("the audit writer has stopped; an audit entry was not stored");
        }
    }
}

/// Starts the writer; it stores what it receives until every sink is dropped, then
/// flushes and ends.
pub fn spawn_writer(
    store: Store,
    metrics: std::sync::Arc<crate::metrics::Metrics>,
) -> (AuditSink, JoinHandle<()>) {
    let (tx, mut rx) = mpsc::channel::<AuditEntry>(BACKLOG);
    let task = tokio::spawn(async move {
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            if rx.recv_many(&mut batch, BATCH).await == 0 {
                return;
            }
            let entries = std::mem::take(&mut batch);
            let store = store.clone();
            let n = entries.len();
            // A failed write is retried a few times (the database may be restarting);
            // after that the entries are logged as lost, loudly.
            let mut pending = Some(entries);
            for attempt in 0..5u32 {
                let Some(entries) = pending.take() else { break };
                let store = store.clone();
                match tokio::task::spawn_blocking(move || {
                    let r = store.insert_audit(&entries);
                    (r, entries)
                })
                .await
                {
                    Ok((Ok(_), _)) => metrics.audit_written.inc_by(n as u64),
                    Ok((Err(e), entries)) => {
                        tracing::warn!(error = %e, entries = n, attempt, "cannot store audit entries yet");
                        pending = Some(entries);
                        tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
                    }
                    Err(e) => {
                        metrics.audit_dropped.inc_by(n as u64);
                        tracing::error!(error = %e, entries = n, "audit writer task failed");
                    }
                }
            }
            if pending.is_some() {
                metrics.audit_dropped.inc_by(n as u64);
                tracing::error!(
                    entries = n,
                    "audit entries lost: the database refused them five times"
                );
            }
        }
    });
    (AuditSink { tx }, task)
}
