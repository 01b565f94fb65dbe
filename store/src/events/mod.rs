//! Customer events: idempotent batch recording (here), the kind tables' rows (`rows.rs`),
//! writing a batch in one statement or a few (`write.rs`), and the per-customer timeline
//! (`timeline.rs`).

use std::collections::{HashMap, HashSet};

use diesel::prelude::*;
use diesel::sql_types::Text;
use serde::{Deserialize, Serialize};
use vitals_domain::comments::{CommentAnalysis, CommentSource, comment_of};
use vitals_domain::time::Micros;
use vitals_domain::{
    CustomerRef, CustomerStatus, EventKind, EventPayload, Feedback, FeedbackKind, Interaction,
    InteractionKind, NewEvent, Payment, RetentionAction, Severity, StoredEvent, Transaction,
    content_hash,
};

use crate::comments::CommentAnalysisRow;
use crate::db::{Store, WriteTransaction, with_conn};
use crate::error::{Result, StoreError};
use crate::followups::{
    CommentAnalyser, CustomerSignal, FollowUpOpener, FollowUpRow, OpenFollowUps, new_follow_up_rows,
};
use crate::page::{self, Page};
use crate::schema::{events, feedback, interactions, payments, retention_actions, transactions};

/// Every event kind's table and row type, listed once: `$m!` gets the list (after any
/// arguments in brackets) and expands what each kind needs: the batch's rows
/// (`rows.rs`), the inserts (`write.rs`), the timeline's loads (`timeline.rs`), the
/// history scans, diesel's and the binary COPY reader (`history.rs`, `history/copy.rs`),
/// and the kind tables (`history.rs`). A new kind is a row type with its `KindRow` impl,
/// its `statement_row!` columns, a line here, and, when it belongs to a customer's
/// history, its branch of the one-statement history read (`history/single.rs`, kept by
/// hand because diesel caches that typed statement; `history/tests.rs` fails when a kind
/// is missing from it).
macro_rules! with_event_kinds {
    ($m:ident $(, $arg:expr)*) => {
        $m! {
            [$($arg),*]
            transactions: TransactionRow,
            payments: PaymentRow,
            feedback: FeedbackRow,
            interactions: InteractionRow,
            retention_actions: RetentionActionRow
        }
    };
}
pub(crate) use with_event_kinds;

mod rows;
mod timeline;
mod write;

pub(crate) use rows::*;
pub use timeline::EventFilter;
pub(crate) use write::StatementRow;
use write::WriteBatch;

/// Rows per INSERT or per `IN (...)` list: under SQLite's 32,766 and PostgreSQL's 65,535
/// bind parameters for the widest table.
const CHUNK: usize = 2_000;

/// (customer, key) pairs per ledger lookup: two bind parameters each.
const LOOKUP_CHUNK: usize = 1_000;

/// `SELECT ... WHERE (customer_id, event_key) IN (VALUES (..), ...)` for `pairs` pairs,
/// with each backend's placeholders.
fn ledger_lookup_sql(pairs: usize, postgres: bool) -> String {
    use std::fmt::Write;
    let mut sql = String::from(
        "SELECT customer_id, event_key, content_hash FROM events WHERE (customer_id, event_key) IN (VALUES ",
    );
    for i in 0..pairs {
        if i > 0 {
            sql.push(',');
        }
        if postgres {
            let _ = write!(sql, "(${}, ${})", 2 * i + 1, 2 * i + 2);
        } else {
            sql.push_str("(?, ?)");
        }
    }
    sql.push(')');
    sql
}

#[derive(QueryableByName)]
struct LedgerHash {
    #[diesel(sql_type = Text)]
    customer_id: String,
    #[diesel(sql_type = Text)]
    event_key: String,
    #[diesel(sql_type = Text)]
    content_hash: String,
}

/// When Vitals counts an event as known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordMode {
    /// Known now: the normal case for events arriving as they happen.
    Live,
    /// A load of history: each event is known as of when it happened.
    Backfill,
}

/// What a batch did: accepted events are committed together.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchOutcome {
    pub accepted: u64,
    pub duplicates: u64,
    /// Follow-up tasks the accepted events opened (live events only).
    pub follow_ups_opened: u64,
    pub rejected: Vec<RejectedEvent>,
    /// Every customer the batch named that exists, whether or not its events were new:
    /// the histories a cache must forget once the call returns.
    pub customers: Vec<String>,
}

/// An event refused, by its index in the batch.
#[derive(Debug, Clone, PartialEq)]
pub struct RejectedEvent {
    pub index: usize,
    pub event_key: String,
    pub field: String,
    pub reason: String,
}

impl Store {
    /// Records a batch of validated events. Events naming an unknown or erased customer
    /// are rejected; an event whose key the customer already used is a duplicate when its
    /// content is the same and rejected as a conflict when not. Everything accepted is
    /// committed in one transaction, with the follow-ups `opens` decides the new events
    /// raise (a live batch's; a backfill opens none).
    pub fn record_events(
        &self,
        batch: Vec<(usize, NewEvent)>,
        mode: RecordMode,
        opens: Option<&FollowUpOpener<'_>>,
        analyse: Option<CommentAnalyser<'_>>,
        now: Micros,
    ) -> Result<BatchOutcome> {
        // Resolve customers first, outside the write transaction.
        let mut ids = HashSet::new();
        let mut external_ids = HashSet::new();
        for (_, e) in &batch {
            match &e.customer {
                CustomerRef::Id(id) => ids.insert(id.clone()),
                CustomerRef::ExternalId(ext) => external_ids.insert(ext.clone()),
            };
        }
        let ids: Vec<String> = ids.into_iter().collect();
        let external_ids: Vec<String> = external_ids.into_iter().collect();
        let mut by_id = HashMap::new();
        let mut by_external = HashMap::new();
        for (id, ext, status) in self.customers_by_keys(&ids, &external_ids)? {
            by_id.insert(id.clone(), status);
            by_external.insert(ext, (id, status));
        }

        // Every customer found is in `by_id`, however the batch named it.
        let mut outcome = BatchOutcome {
            customers: by_id.keys().cloned().collect(),
            ..BatchOutcome::default()
        };
        let mut candidates: Vec<(usize, StoredEvent, String)> = Vec::with_capacity(batch.len());
        for (index, e) in batch {
            let resolved = match &e.customer {
                CustomerRef::Id(id) => by_id.get(id).map(|s| (id.clone(), *s)),
                CustomerRef::ExternalId(ext) => by_external.get(ext).cloned(),
            };
            let (field, missing) = match &e.customer {
                CustomerRef::Id(id) => ("customer_id", format!("customer {id:?} not found")),
                CustomerRef::ExternalId(ext) => (
                    "customer_external_id",
                    format!("no customer with external_id {ext:?}"),
                ),
            };
            let customer_id = match resolved {
                None => {
                    outcome.rejected.push(RejectedEvent {
                        index,
                        event_key: e.event_key,
                        field: field.into(),
                        reason: missing,
                    });
                    continue;
                }
                Some((_, CustomerStatus::Erased)) => {
                    outcome.rejected.push(RejectedEvent {
                        index,
                        event_key: e.event_key,
                        field: field.into(),
                        reason: "the customer was erased: no new events are recorded".into(),
                    });
                    continue;
                }
                Some((id, _)) => id,
            };
            let hash = content_hash(e.time, &e.payload);
            let record_time = match mode {
                RecordMode::Live => now,
                RecordMode::Backfill => e.time,
            };
            candidates.push((
                index,
                StoredEvent {
                    customer_id,
                    event_key: e.event_key,
                    time: e.time,
                    record_time,
                    payload: e.payload,
                },
                hash,
            ));
        }

        // In key order: each index (the ledger's and the kind table's keys, the timeline's
        // customer and time) then takes a bulk load's rows a customer at a time, on pages
        // already in memory, instead of one random page of a large B-tree per event.
        // A stable sort: a key sent twice keeps the request's order, so the first is the
        // one recorded, as in a live batch; rejections name the index each event came with.
        if mode == RecordMode::Backfill {
            candidates.sort_by(|(_, a, _), (_, b, _)| {
                (a.customer_id.as_str(), a.event_key.as_str())
                    .cmp(&(b.customer_id.as_str(), b.event_key.as_str()))
            });
        }

        // Comments are analysed before the transaction, which then holds its locks for
        // the writes alone; an analysis is dropped with its event if the key is not new.
        let analyses: Vec<Option<(CommentSource, CommentAnalysis)>> = candidates
            .iter()
            .map(|(_, e, _)| {
                let analyse = analyse?;
                let (source, text, _) = comment_of(&e.payload)?;
                Some((source, analyse(text)))
            })
            .collect();

        // First optimistically, as if every key were new (a bulk load of fresh history
        // then needs no ledger lookup at all). A key already there makes the unique key
        // roll the transaction back; the next attempt looks the keys up first. A
        // concurrent writer of the same keys can cost one more attempt.
        for (attempt, look_up) in [false, true, true].into_iter().enumerate() {
            match self.commit_new_events(&candidates, &analyses, look_up, opens, now) {
                Ok(committed) => {
                    outcome.accepted = committed.accepted;
                    outcome.duplicates = committed.duplicates;
                    outcome.follow_ups_opened = committed.follow_ups_opened;
                    outcome.rejected.extend(committed.rejected);
                    outcome.rejected.sort_by_key(|r| r.index);
                    return Ok(outcome);
                }
                Err(StoreError::AlreadyExists(_)) if attempt < 2 => continue,
                Err(StoreError::AlreadyExists(_)) => break,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Aborted(
            "the batch raced twice with concurrent writers of the same event keys: send it again"
                .into(),
        ))
    }

    /// Checks candidates against the ledger (when `look_up`) and inserts the new ones in
    /// one transaction, with the follow-up tasks that live events open. A key already in
    /// the ledger comes back as `AlreadyExists`.
    fn commit_new_events(
        &self,
        candidates: &[(usize, StoredEvent, String)],
        analyses: &[Option<(CommentSource, CommentAnalysis)>],
        look_up: bool,
        opens: Option<&FollowUpOpener<'_>>,
        now: Micros,
    ) -> Result<BatchOutcome> {
        let keys: Vec<(&str, &str)> = if !look_up {
            Vec::new()
        } else {
            candidates
                .iter()
                .map(|(_, e, _)| (e.customer_id.as_str(), e.event_key.as_str()))
                .collect()
        };
        let postgres = self.is_postgres();
        with_conn!(self, conn => {
            conn.write_transaction(|conn| {
                let mut found: Vec<LedgerHash> = Vec::new();
                // One query per chunk of exact (customer, key) pairs: a row-value IN list
                // probes the primary key once per pair (two separate `= ANY` lists would
                // make PostgreSQL probe their cross product).
                for chunk in keys.chunks(LOOKUP_CHUNK) {
                    let mut q = diesel::sql_query(ledger_lookup_sql(chunk.len(), postgres)).into_boxed();
                    for (c, k) in chunk {
                        q = q.bind::<Text, _>(*c).bind::<Text, _>(*k);
                    }
                    found.extend(q.load::<LedgerHash>(conn)?);
                }
                // Keys borrow from the candidates and the lookup: no copies per event.
                let mut seen: HashMap<(&str, &str), &str> = found
                    .iter()
                    .map(|r| ((r.customer_id.as_str(), r.event_key.as_str()), r.content_hash.as_str()))
                    .collect();
                let mut out = BatchOutcome::default();
                let mut rows = BatchRows::default();
                let mut signals: Vec<CustomerSignal> = Vec::new();
                for ((index, e, hash), analysis) in candidates.iter().zip(analyses) {
                    let key = (e.customer_id.as_str(), e.event_key.as_str());
                    match seen.get(&key) {
                        Some(h) if *h == hash.as_str() => out.duplicates += 1,
                        Some(_) => out.rejected.push(RejectedEvent {
                            index: *index,
                            event_key: e.event_key.clone(),
                            field: "event_key".into(),
                            reason: "this event_key was already used for this customer with different content".into(),
                        }),
                        None => {
                            seen.insert(key, hash.as_str());
                            rows.push(e, hash.clone());
                            out.accepted += 1;
                            if let Some((source, a)) = analysis {
                                let channel = comment_of(&e.payload).map_or("", |(_, _, c)| c);
                                rows.analyses.push(CommentAnalysisRow::new(
                                    &e.customer_id, &e.event_key, e.time, *source, channel, a,
                                ));
                            }
                            if let Some(o) = opens {
                                let analysis = analysis.as_ref().map(|(_, a)| a);
                                for signal in (o.signal_of)(e, analysis) {
                                    signals.push(CustomerSignal {
                                        customer_id: e.customer_id.clone(),
                                        source: e.event_key.clone(),
                                        signal,
                                    });
                                }
                            }
                        }
                    }
                }
                let follow_ups = match opens {
                    Some(o) if !signals.is_empty() => new_follow_up_rows(&signals, o.rules_version, now),
                    _ => Vec::new(),
                };
                match conn.write_batch(&rows, &follow_ups) {
                    Ok(opened) => out.follow_ups_opened = opened as u64,
                    Err(e) if StoreError::is_unique_violation(&e) => {
                        return Err(StoreError::AlreadyExists("event key raced".into()));
                    }
                    Err(e) => return Err(e.into()),
                }
                Ok(out)
            })
        })
    }
}
