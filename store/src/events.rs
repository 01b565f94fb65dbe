//! Customer events: idempotent batch recording and the per-customer timeline.

use std::collections::{HashMap, HashSet};

use diesel::prelude::*;
use diesel::sql_types::Text;
use serde::{Deserialize, Serialize};
use vitals_domain::time::Micros;
use vitals_domain::{
    CustomerRef, CustomerStatus, EventKind, EventPayload, Feedback, FeedbackKind, Interaction,
    InteractionKind, NewEvent, Payment, RetentionAction, Severity, StoredEvent, Transaction,
    content_hash,
};

use crate::db::{Store, WriteTransaction, with_conn};
use crate::error::{Result, StoreError};
use crate::followups::{
    CustomerSignal, FollowUpOpener, FollowUpRow, OpenFollowUps, new_follow_up_rows,
};
use crate::page::{self, Page};
use crate::schema::{events, feedback, interactions, payments, retention_actions, transactions};

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

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = events, treat_none_as_default_value = false)]
pub(crate) struct EventRow {
    customer_id: String,
    event_key: String,
    kind: String,
    time: i64,
    record_time: i64,
    content_hash: String,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = transactions, treat_none_as_default_value = false)]
pub(crate) struct TransactionRow {
    pub(crate) customer_id: String,
    pub(crate) event_key: String,
    pub(crate) time: i64,
    pub(crate) record_time: i64,
    pub(crate) amount_minor: i64,
    pub(crate) currency: String,
    pub(crate) quantity: i32,
    pub(crate) category: String,
    pub(crate) channel: String,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = payments, treat_none_as_default_value = false)]
pub(crate) struct PaymentRow {
    pub(crate) customer_id: String,
    pub(crate) event_key: String,
    pub(crate) time: i64,
    pub(crate) record_time: i64,
    pub(crate) invoice_id: String,
    pub(crate) amount_minor: i64,
    pub(crate) currency: String,
    pub(crate) due_time: Option<i64>,
    pub(crate) paid_time: Option<i64>,
    pub(crate) method: String,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = feedback, treat_none_as_default_value = false)]
pub(crate) struct FeedbackRow {
    pub(crate) customer_id: String,
    pub(crate) event_key: String,
    pub(crate) time: i64,
    pub(crate) record_time: i64,
    pub(crate) kind: String,
    pub(crate) score: i32,
    pub(crate) comment: Option<String>,
    pub(crate) channel: String,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = interactions, treat_none_as_default_value = false)]
pub(crate) struct InteractionRow {
    pub(crate) customer_id: String,
    pub(crate) event_key: String,
    pub(crate) time: i64,
    pub(crate) record_time: i64,
    pub(crate) kind: String,
    pub(crate) severity: String,
    pub(crate) category: String,
    pub(crate) channel: String,
    pub(crate) ticket_id: String,
    pub(crate) resolved_time: Option<i64>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = retention_actions, treat_none_as_default_value = false)]
pub(crate) struct RetentionActionRow {
    pub(crate) customer_id: String,
    pub(crate) event_key: String,
    pub(crate) time: i64,
    pub(crate) record_time: i64,
    pub(crate) kind: String,
    pub(crate) cost_minor: i64,
    pub(crate) currency: String,
    pub(crate) campaign: String,
    pub(crate) channel: String,
    pub(crate) actor: String,
    pub(crate) note: Option<String>,
}

impl RetentionActionRow {
    pub(crate) fn into_event(self) -> Result<StoredEvent> {
        Ok(StoredEvent {
            customer_id: self.customer_id,
            event_key: self.event_key,
            time: self.time,
            record_time: self.record_time,
            payload: EventPayload::RetentionAction(RetentionAction {
                kind: self.kind,
                cost_minor: self.cost_minor,
                currency: self.currency,
                campaign: self.campaign,
                channel: self.channel,
                actor: self.actor,
                note: self.note,
            }),
        })
    }
}

impl TransactionRow {
    pub(crate) fn into_event(self) -> Result<StoredEvent> {
        Ok(StoredEvent {
            customer_id: self.customer_id,
            event_key: self.event_key,
            time: self.time,
            record_time: self.record_time,
            payload: EventPayload::Transaction(Transaction {
                amount_minor: self.amount_minor,
                currency: self.currency,
                quantity: self.quantity,
                category: self.category,
                channel: self.channel,
            }),
        })
    }
}

impl PaymentRow {
    pub(crate) fn into_event(self) -> Result<StoredEvent> {
        Ok(StoredEvent {
            customer_id: self.customer_id,
            event_key: self.event_key,
            time: self.time,
            record_time: self.record_time,
            payload: EventPayload::Payment(Payment {
                invoice_id: self.invoice_id,
                amount_minor: self.amount_minor,
                currency: self.currency,
                due_time: self.due_time,
                paid_time: self.paid_time,
                method: self.method,
            }),
        })
    }
}

impl FeedbackRow {
    pub(crate) fn into_event(self) -> Result<StoredEvent> {
        let kind =
            FeedbackKind::parse(&self.kind).ok_or_else(|| corrupt("feedback kind", &self.kind))?;
        Ok(StoredEvent {
            customer_id: self.customer_id,
            event_key: self.event_key,
            time: self.time,
            record_time: self.record_time,
            payload: EventPayload::Feedback(Feedback {
                kind,
                score: self.score,
                comment: self.comment,
                channel: self.channel,
            }),
        })
    }
}

impl InteractionRow {
    pub(crate) fn into_event(self) -> Result<StoredEvent> {
        let kind = InteractionKind::parse(&self.kind)
            .ok_or_else(|| corrupt("interaction kind", &self.kind))?;
        let severity =
            Severity::parse(&self.severity).ok_or_else(|| corrupt("severity", &self.severity))?;
        Ok(StoredEvent {
            customer_id: self.customer_id,
            event_key: self.event_key,
            time: self.time,
            record_time: self.record_time,
            payload: EventPayload::Interaction(Interaction {
                kind,
                severity,
                category: self.category,
                channel: self.channel,
                ticket_id: self.ticket_id,
                resolved_time: self.resolved_time,
            }),
        })
    }
}

/// The rows of one batch, by table.
#[derive(Default)]
struct BatchRows {
    ledger: Vec<EventRow>,
    transactions: Vec<TransactionRow>,
    payments: Vec<PaymentRow>,
    feedback: Vec<FeedbackRow>,
    interactions: Vec<InteractionRow>,
    retention_actions: Vec<RetentionActionRow>,
}

impl BatchRows {
    fn push(&mut self, e: &StoredEvent, hash: String) {
        let (customer_id, event_key, time, record_time) = (
            e.customer_id.clone(),
            e.event_key.clone(),
            e.time,
            e.record_time,
        );
        self.ledger.push(EventRow {
            customer_id: customer_id.clone(),
            event_key: event_key.clone(),
            kind: e.payload.kind().as_str().to_owned(),
            time,
            record_time,
            content_hash: hash,
        });
        match &e.payload {
            EventPayload::Transaction(t) => self.transactions.push(TransactionRow {
                customer_id,
                event_key,
                time,
                record_time,
                amount_minor: t.amount_minor,
                currency: t.currency.clone(),
                quantity: t.quantity,
                category: t.category.clone(),
                channel: t.channel.clone(),
            }),
            EventPayload::Payment(p) => self.payments.push(PaymentRow {
                customer_id,
                event_key,
                time,
                record_time,
                invoice_id: p.invoice_id.clone(),
                amount_minor: p.amount_minor,
                currency: p.currency.clone(),
                due_time: p.due_time,
                paid_time: p.paid_time,
                method: p.method.clone(),
            }),
            EventPayload::Feedback(f) => self.feedback.push(FeedbackRow {
                customer_id,
                event_key,
                time,
                record_time,
                kind: f.kind.as_str().to_owned(),
                score: f.score,
                comment: f.comment.clone(),
                channel: f.channel.clone(),
            }),
            EventPayload::Interaction(i) => self.interactions.push(InteractionRow {
                customer_id,
                event_key,
                time,
                record_time,
                kind: i.kind.as_str().to_owned(),
                severity: i.severity.as_str().to_owned(),
                category: i.category.clone(),
                channel: i.channel.clone(),
                ticket_id: i.ticket_id.clone(),
                resolved_time: i.resolved_time,
            }),
            EventPayload::RetentionAction(a) => self.retention_actions.push(RetentionActionRow {
                customer_id,
                event_key,
                time,
                record_time,
                kind: a.kind.clone(),
                cost_minor: a.cost_minor,
                currency: a.currency.clone(),
                campaign: a.campaign.clone(),
                channel: a.channel.clone(),
                actor: a.actor.clone(),
                note: a.note.clone(),
            }),
        }
    }
}

macro_rules! insert_chunked {
    ($conn:expr, $table:expr, $rows:expr) => {
        for chunk in $rows.chunks(CHUNK) {
            diesel::insert_into($table).values(chunk).execute($conn)?;
        }
    };
}

/// Writing a batch's rows and the tasks its events open, each backend its fastest way.
/// Callers have already checked the keys are new; a unique violation means a concurrent
/// writer won a race. Returns the tasks opened (a reason already open for the customer
/// opens nothing).
trait WriteBatch {
    fn write_batch(&mut self, rows: &BatchRows, follow_ups: &[FollowUpRow]) -> QueryResult<usize>;
}

/// Batches up to this many events go to PostgreSQL as one statement; larger ones by COPY.
const ONE_STATEMENT_MAX: usize = 32;

/// One `INSERT ... RETURNING 1` per table, as data-modifying CTEs of one statement:
/// a live call with one event costs one round trip instead of a COPY per table (each a
/// round trip or two), and the tasks it opens ride along instead of costing another.
struct OneStatement {
    sql: String,
    ctes: usize,
}

impl OneStatement {
    fn new() -> Self {
        Self {
            sql: String::from("WITH "),
            ctes: 0,
        }
    }

    /// Appends `name AS (INSERT INTO table (columns) VALUES (...), ... suffix RETURNING 1)`
    /// with placeholders for `rows` rows.
    fn table(&mut self, name: &str, table: &str, columns: &[&str], rows: usize, suffix: &str) {
        use std::fmt::Write;
        if rows == 0 {
            return;
        }
        if self.ctes > 0 {
            self.sql.push_str(", ");
        }
        self.ctes += 1;
        let _ = write!(
            self.sql,
            "{name} AS (INSERT INTO {table} ({}) VALUES ",
            columns.join(", ")
        );
        for r in 0..rows {
            self.sql.push_str(if r == 0 { "(" } else { ", (" });
            for c in 0..columns.len() {
                if c > 0 {
                    self.sql.push_str(", ");
                }
                self.sql.push(PARAM);
            }
            self.sql.push(')');
        }
        let _ = write!(self.sql, "{suffix} RETURNING 1)");
    }
}

/// Stands for a bind parameter in the statement's text until it is split into segments.
const PARAM: char = '\u{1}';

/// Batches up to this many events are prepared once per connection and statement shape
/// (the shapes are few: single events are the usual live call); larger ones are parsed and
/// planned each time so the statement cache stays small.
const CACHED_SHAPES_MAX: usize = 4;

/// A bind parameter of the one-statement write.
pub(crate) enum Param {
    Text(String),
    OptText(Option<String>),
    BigInt(i64),
    OptBigInt(Option<i64>),
    Integer(i32),
}

/// The one-statement write as a query diesel can prepare and cache by its text
/// (`sql_query` is never cached: parsing and planning it was a tenth of a one-event call).
struct OneStatementQuery {
    /// The text between parameters: one more segment than parameters.
    segments: Vec<String>,
    params: Vec<Param>,
    cacheable: bool,
}

impl diesel::query_builder::QueryId for OneStatementQuery {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl diesel::query_builder::Query for OneStatementQuery {
    type SqlType = diesel::sql_types::Untyped;
}

impl diesel::query_builder::QueryFragment<diesel::pg::Pg> for OneStatementQuery {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>,
    ) -> QueryResult<()> {
        use diesel::sql_types::{BigInt, Integer, Nullable};
        if !self.cacheable {
            out.unsafe_to_cache_prepared();
        }
        for (i, segment) in self.segments.iter().enumerate() {
            out.push_sql(segment);
            match self.params.get(i) {
                Some(Param::Text(v)) => out.push_bind_param::<Text, _>(v)?,
                Some(Param::OptText(v)) => out.push_bind_param::<Nullable<Text>, _>(v)?,
                Some(Param::BigInt(v)) => out.push_bind_param::<BigInt, _>(v)?,
                Some(Param::OptBigInt(v)) => out.push_bind_param::<Nullable<BigInt>, _>(v)?,
                Some(Param::Integer(v)) => out.push_bind_param::<Integer, _>(v)?,
                None => {}
            }
        }
        Ok(())
    }
}

impl RunQueryDsl<diesel::pg::PgConnection> for OneStatementQuery {}

#[derive(QueryableByName)]
struct Opened {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    opened: i64,
}

/// A row the one-statement write inserts: its table's columns and its values, in the
/// same order, side by side so they cannot drift apart.
pub(crate) trait StatementRow {
    const TABLE: &'static str;
    const COLUMNS: &'static [&'static str];
    fn push_params(&self, p: &mut Vec<Param>);
}

macro_rules! statement_row {
    ($row:ty, $table:literal, [$($column:ident: $kind:ident),+ $(,)?]) => {
        impl StatementRow for $row {
            const TABLE: &'static str = $table;
            const COLUMNS: &'static [&'static str] = &[$(stringify!($column)),+];
            fn push_params(&self, p: &mut Vec<Param>) {
                p.extend([$(Param::$kind(self.$column.clone())),+]);
            }
        }
    };
}

statement_row!(EventRow, "events", [
    customer_id: Text, event_key: Text, kind: Text, time: BigInt, record_time: BigInt,
    content_hash: Text,
]);
statement_row!(TransactionRow, "transactions", [
    customer_id: Text, event_key: Text, time: BigInt, record_time: BigInt,
    amount_minor: BigInt, currency: Text, quantity: Integer, category: Text, channel: Text,
]);
statement_row!(PaymentRow, "payments", [
    customer_id: Text, event_key: Text, time: BigInt, record_time: BigInt, invoice_id: Text,
    amount_minor: BigInt, currency: Text, due_time: OptBigInt, paid_time: OptBigInt,
    method: Text,
]);
statement_row!(FeedbackRow, "feedback", [
    customer_id: Text, event_key: Text, time: BigInt, record_time: BigInt, kind: Text,
    score: Integer, comment: OptText, channel: Text,
]);
statement_row!(InteractionRow, "interactions", [
    customer_id: Text, event_key: Text, time: BigInt, record_time: BigInt, kind: Text,
    severity: Text, category: Text, channel: Text, ticket_id: Text, resolved_time: OptBigInt,
]);
statement_row!(RetentionActionRow, "retention_actions", [
    customer_id: Text, event_key: Text, time: BigInt, record_time: BigInt, kind: Text,
    cost_minor: BigInt, currency: Text, campaign: Text, channel: Text, actor: Text,
    note: OptText,
]);
statement_row!(FollowUpRow, "follow_ups", [
    customer_id: Text, id: Text, reason: Text, department: Text, status: Text, detail: Text,
    source: Text, rules_version: BigInt, assignee: OptText, outcome: OptText,
    dismiss_reason: OptText, due_time: BigInt, create_time: BigInt, update_time: BigInt,
    close_time: OptBigInt, version: BigInt,
]);

/// Appends one CTE for `rows` and their parameters.
fn add_rows<R: StatementRow>(
    st: &mut OneStatement,
    p: &mut Vec<Param>,
    name: &str,
    rows: &[R],
    suffix: &str,
) {
    st.table(name, R::TABLE, R::COLUMNS, rows.len(), suffix);
    for r in rows {
        r.push_params(p);
    }
}

fn write_one_statement(
    conn: &mut diesel::pg::PgConnection,
    rows: &BatchRows,
    follow_ups: &[FollowUpRow],
) -> QueryResult<usize> {
    let mut st = OneStatement::new();
    let mut p: Vec<Param> = Vec::new();
    add_rows(&mut st, &mut p, "e", &rows.ledger, "");
    add_rows(&mut st, &mut p, "t", &rows.transactions, "");
    add_rows(&mut st, &mut p, "p", &rows.payments, "");
    add_rows(&mut st, &mut p, "f", &rows.feedback, "");
    add_rows(&mut st, &mut p, "i", &rows.interactions, "");
    add_rows(&mut st, &mut p, "r", &rows.retention_actions, "");
    // The partial unique index turns a second open task into nothing.
    add_rows(&mut st, &mut p, "u", follow_ups, " ON CONFLICT DO NOTHING");
    if st.ctes == 0 {
        // Every event was a duplicate: nothing to write.
        return Ok(0);
    }
    st.sql.push_str(if follow_ups.is_empty() {
        " SELECT CAST(0 AS BIGINT) AS opened"
    } else {
        " SELECT CAST(count(*) AS BIGINT) AS opened FROM u"
    });
    let query = OneStatementQuery {
        segments: st.sql.split(PARAM).map(str::to_owned).collect(),
        params: p,
        cacheable: rows.ledger.len() <= CACHED_SHAPES_MAX,
    };
    let opened: Vec<Opened> = query.load(conn)?;
    Ok(opened.first().map_or(0, |o| o.opened.max(0) as usize))
}

/// PostgreSQL: small batches as one statement; large ones by binary `COPY FROM STDIN`,
/// several times faster than multi-row INSERTs of the same rows (no statement to parse or
/// plan per chunk).
impl WriteBatch for diesel::pg::PgConnection {
    fn write_batch(&mut self, rows: &BatchRows, follow_ups: &[FollowUpRow]) -> QueryResult<usize> {
        if rows.ledger.len() <= ONE_STATEMENT_MAX {
            return write_one_statement(self, rows, follow_ups);
        }
        if !rows.ledger.is_empty() {
            diesel::copy_from(events::table)
                .from_insertable(&rows.ledger)
                .execute(self)?;
        }
        if !rows.transactions.is_empty() {
            diesel::copy_from(transactions::table)
                .from_insertable(&rows.transactions)
                .execute(self)?;
        }
        if !rows.payments.is_empty() {
            diesel::copy_from(payments::table)
                .from_insertable(&rows.payments)
                .execute(self)?;
        }
        if !rows.feedback.is_empty() {
            diesel::copy_from(feedback::table)
                .from_insertable(&rows.feedback)
                .execute(self)?;
        }
        if !rows.interactions.is_empty() {
            diesel::copy_from(interactions::table)
                .from_insertable(&rows.interactions)
                .execute(self)?;
        }
        if !rows.retention_actions.is_empty() {
            diesel::copy_from(retention_actions::table)
                .from_insertable(&rows.retention_actions)
                .execute(self)?;
        }
        self.open_follow_ups(follow_ups)
    }
}

/// SQLite: multi-row INSERTs in chunks under its bind-parameter limit.
impl WriteBatch for diesel::sqlite::SqliteConnection {
    fn write_batch(&mut self, rows: &BatchRows, follow_ups: &[FollowUpRow]) -> QueryResult<usize> {
        insert_chunked!(self, events::table, rows.ledger);
        insert_chunked!(self, transactions::table, rows.transactions);
        insert_chunked!(self, payments::table, rows.payments);
        insert_chunked!(self, feedback::table, rows.feedback);
        insert_chunked!(self, interactions::table, rows.interactions);
        insert_chunked!(self, retention_actions::table, rows.retention_actions);
        self.open_follow_ups(follow_ups)
    }
}

/// Filters of a timeline listing; a page token is only valid with the filters it was issued for.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EventFilter {
    /// Only these kinds; empty means all.
    pub kinds: Vec<EventKind>,
    /// At or after.
    pub start_time: Option<Micros>,
    /// Before.
    pub end_time: Option<Micros>,
}

#[derive(Serialize, Deserialize, PartialEq)]
struct TimelineFilter<'a> {
    customer_id: std::borrow::Cow<'a, str>,
    filter: std::borrow::Cow<'a, EventFilter>,
}

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Internal(format!("stored event has unknown {what} {value:?}"))
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

        // First optimistically, as if every key were new (a bulk load of fresh history
        // then needs no ledger lookup at all). A key already there makes the unique key
        // roll the transaction back; the next attempt looks the keys up first. A
        // concurrent writer of the same keys can cost one more attempt.
        for (attempt, look_up) in [false, true, true].into_iter().enumerate() {
            match self.commit_new_events(&candidates, look_up, opens, now) {
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
                for (index, e, hash) in candidates {
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
                            if let Some(signal) = opens.and_then(|o| (o.signal_of)(e)) {
                                signals.push(CustomerSignal {
                                    customer_id: e.customer_id.clone(),
                                    source: e.event_key.clone(),
                                    signal,
                                });
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

    /// One customer's events, newest first, with their kind-specific details.
    pub fn list_customer_events(
        &self,
        customer_id: &str,
        filter: &EventFilter,
        page_size: usize,
        page_token: &str,
    ) -> Result<Page<StoredEvent>> {
        let token_filter = TimelineFilter {
            customer_id: customer_id.into(),
            filter: std::borrow::Cow::Borrowed(filter),
        };
        let after: Option<(i64, String)> = page::decode(page_token, &token_filter)?;
        let limit = i64::try_from(page_size + 1).unwrap_or(i64::MAX);
        let kinds: Vec<&str> = filter.kinds.iter().map(|k| k.as_str()).collect();
        let events = with_conn!(self, conn => {
            let mut q = events::table
                .filter(events::customer_id.eq(customer_id))
                .select(EventRow::as_select())
                .order((events::time.desc(), events::event_key.desc()))
                .limit(limit)
                .into_boxed();
            if !kinds.is_empty() {
                q = q.filter(events::kind.eq_any(kinds.clone()));
            }
            if let Some(t) = filter.start_time {
                q = q.filter(events::time.ge(t));
            }
            if let Some(t) = filter.end_time {
                q = q.filter(events::time.lt(t));
            }
            if let Some((time, key)) = &after {
                q = q.filter(
                    events::time
                        .lt(*time)
                        .or(events::time.eq(*time).and(events::event_key.lt(key.clone()))),
                );
            }
            let ledger: Vec<EventRow> = q.load(conn)?;
            let mut keys: HashMap<&str, Vec<String>> = HashMap::new();
            for row in &ledger {
                keys.entry(row.kind.as_str()).or_default().push(row.event_key.clone());
            }
            let none = Vec::new();
            let mut payloads: HashMap<String, EventPayload> = HashMap::new();
            let mut keep = |e: StoredEvent| {
                payloads.insert(e.event_key, e.payload);
            };
            // Each kind's rows for the keys the ledger names, in one query per kind.
            macro_rules! load_kind {
                ($kind:literal, $table:ident, $row:ty) => {
                    let kind_keys = keys.get($kind).unwrap_or(&none);
                    if !kind_keys.is_empty() {
                        let rows: Vec<$row> = $table::table
                            .filter($table::customer_id.eq(customer_id))
                            .filter($table::event_key.eq_any(kind_keys))
                            .select(<$row>::as_select())
                            .load(conn)?;
                        for r in rows {
                            keep(r.into_event()?);
                        }
                    }
                };
            }
            load_kind!("transaction", transactions, TransactionRow);
            load_kind!("payment", payments, PaymentRow);
            load_kind!("feedback", feedback, FeedbackRow);
            load_kind!("interaction", interactions, InteractionRow);
            load_kind!("retention_action", retention_actions, RetentionActionRow);
            ledger
                .into_iter()
                .map(|row| {
                    let payload = payloads.remove(&row.event_key).ok_or_else(|| {
                        StoreError::Internal(format!(
                            "event {:?} of customer {customer_id:?} has no {} row",
                            row.event_key, row.kind
                        ))
                    })?;
                    Ok(StoredEvent {
                        customer_id: row.customer_id,
                        event_key: row.event_key,
                        time: row.time,
                        record_time: row.record_time,
                        payload,
                    })
                })
                .collect::<Result<Vec<_>>>()?
        });
        Ok(page::paginate(events, page_size, token_filter, |e| {
            (e.time, e.event_key.clone())
        }))
    }
}
