//! Writing a batch's rows: one statement for a small batch on PostgreSQL, chunked inserts otherwise.

use super::*;

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
pub(super) trait WriteBatch {
    fn write_batch(&mut self, rows: &BatchRows, follow_ups: &[FollowUpRow]) -> QueryResult<usize>;
}

/// Batches up to this many events go to PostgreSQL as one statement; larger ones by COPY.
pub(super) const ONE_STATEMENT_MAX: usize = 32;

/// One `INSERT ... RETURNING 1` per table, as data-modifying CTEs of one statement:
/// a live call with one event costs one round trip instead of a COPY per table (each a
/// round trip or two), and the tasks it opens ride along instead of costing another.
pub(super) struct OneStatement {
    pub(super) sql: String,
    pub(super) ctes: usize,
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
pub(super) const PARAM: char = '\u{1}';

/// Batches up to this many events are prepared once per connection and statement shape
/// (the shapes are few: single events are the usual live call); larger ones are parsed and
/// planned each time so the statement cache stays small.
pub(super) const CACHED_SHAPES_MAX: usize = 4;

/// A bind parameter of the one-statement write.
pub(crate) enum Param {
    Text(String),
    OptText(Option<String>),
    BigInt(i64),
    OptBigInt(Option<i64>),
    Integer(i32),
    OptInteger(Option<i32>),
    Float(f32),
}

/// The one-statement write as a query diesel can prepare and cache by its text
/// (`sql_query` is never cached: parsing and planning it was a tenth of a one-event call).
pub(super) struct OneStatementQuery {
    /// The text between parameters: one more segment than parameters.
    pub(super) segments: Vec<String>,
    pub(super) params: Vec<Param>,
    pub(super) cacheable: bool,
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
        use diesel::sql_types::{BigInt, Float, Integer, Nullable};
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
                Some(Param::OptInteger(v)) => out.push_bind_param::<Nullable<Integer>, _>(v)?,
                Some(Param::Float(v)) => out.push_bind_param::<Float, _>(v)?,
                None => {}
            }
        }
        Ok(())
    }
}

impl RunQueryDsl<diesel::pg::PgConnection> for OneStatementQuery {}

#[derive(QueryableByName)]
pub(super) struct Opened {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub(super) opened: i64,
}

/// A row the one-statement write inserts: its table's columns and its values, in the
/// same order, side by side so they cannot drift apart.
pub(crate) trait StatementRow {
    const TABLE: &'static str;
    const COLUMNS: &'static [&'static str];
    fn push_params(&self, p: &mut Vec<Param>);
}

macro_rules! statement_row {
    ($row:ty, $table:ident, [$($column:ident: $kind:ident),+ $(,)?]) => {
        impl StatementRow for $row {
            const TABLE: &'static str = stringify!($table);
            const COLUMNS: &'static [&'static str] = &[$(stringify!($column)),+];
            fn push_params(&self, p: &mut Vec<Param>) {
                p.extend([$(Param::$kind(self.$column.clone())),+]);
            }
        }

        impl crate::pgcopy::CopyRow for $row {
            type Table = crate::schema::$table::table;
            fn from_fields<R: std::io::BufRead>(
                r: &mut crate::pgcopy::Fields<R>,
            ) -> Result<Self> {
                Ok(Self { $($column: crate::pgcopy::copy_field!(r, $kind)),+ })
            }
        }
    };
}

statement_row!(EventRow, events, [
    customer_id: Text, event_key: Text, kind: Text, time: BigInt, record_time: BigInt,
    content_hash: Text,
]);
statement_row!(TransactionRow, transactions, [
    customer_id: Text, event_key: Text, time: BigInt, record_time: BigInt,
    amount_minor: BigInt, currency: Text, quantity: Integer, category: Text, channel: Text,
]);
statement_row!(PaymentRow, payments, [
    customer_id: Text, event_key: Text, time: BigInt, record_time: BigInt, invoice_id: Text,
    amount_minor: BigInt, currency: Text, due_time: OptBigInt, paid_time: OptBigInt,
    method: Text,
]);
statement_row!(FeedbackRow, feedback, [
    customer_id: Text, event_key: Text, time: BigInt, record_time: BigInt, kind: Text,
    score: OptInteger, comment: OptText, channel: Text,
]);
statement_row!(InteractionRow, interactions, [
    customer_id: Text, event_key: Text, time: BigInt, record_time: BigInt, kind: Text,
    severity: Text, category: Text, channel: Text, ticket_id: Text, resolved_time: OptBigInt,
    note: OptText,
]);
statement_row!(RetentionActionRow, retention_actions, [
    customer_id: Text, event_key: Text, time: BigInt, record_time: BigInt, kind: Text,
    cost_minor: BigInt, currency: Text, campaign: Text, channel: Text, actor: Text,
    note: OptText,
]);
statement_row!(crate::comments::CommentAnalysisRow, comment_analyses, [
    customer_id: Text, event_key: Text, time: BigInt, source: Text, channel: Text,
    language: Text, sentiment: Float, topic_id: OptInteger, topic: OptText,
    model_version: BigInt,
]);
statement_row!(FollowUpRow, follow_ups, [
    customer_id: Text, id: Text, reason: Text, department: Text, status: Text, detail: Text,
    source: Text, rules_version: BigInt, assignee: OptText, outcome: OptText,
    dismiss_reason: OptText, due_time: BigInt, create_time: BigInt, update_time: BigInt,
    close_time: OptBigInt, version: BigInt,
]);

/// Appends one CTE for `rows` and their parameters.
pub(super) fn add_rows<R: StatementRow>(
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

pub(super) fn write_one_statement(
    conn: &mut diesel::pg::PgConnection,
    rows: &BatchRows,
    follow_ups: &[FollowUpRow],
) -> QueryResult<usize> {
    let mut st = OneStatement::new();
    let mut p: Vec<Param> = Vec::new();
    add_rows(&mut st, &mut p, "e", &rows.ledger, "");
    macro_rules! add_kinds {
        ([] $($table:ident: $row:ty),*) => {
            $(add_rows(&mut st, &mut p, concat!("k_", stringify!($table)), &rows.$table, "");)*
        };
    }
    with_event_kinds!(add_kinds);
    add_rows(&mut st, &mut p, "a", &rows.analyses, "");
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
        macro_rules! copy_kinds {
            ([] $($table:ident: $row:ty),*) => {
                $(
                    if !rows.$table.is_empty() {
                        diesel::copy_from($table::table)
                            .from_insertable(&rows.$table)
                            .execute(self)?;
                    }
                )*
            };
        }
        with_event_kinds!(copy_kinds);
        if !rows.analyses.is_empty() {
            diesel::copy_from(crate::schema::comment_analyses::table)
                .from_insertable(&rows.analyses)
                .execute(self)?;
        }
        self.open_follow_ups(follow_ups)
    }
}

/// SQLite: multi-row INSERTs in chunks under its bind-parameter limit.
impl WriteBatch for diesel::sqlite::SqliteConnection {
    fn write_batch(&mut self, rows: &BatchRows, follow_ups: &[FollowUpRow]) -> QueryResult<usize> {
        insert_chunked!(self, events::table, rows.ledger);
        macro_rules! insert_kinds {
            ([] $($table:ident: $row:ty),*) => {
                $(insert_chunked!(self, $table::table, rows.$table);)*
            };
        }
        with_event_kinds!(insert_kinds);
        insert_chunked!(self, crate::schema::comment_analyses::table, rows.analyses);
        self.open_follow_ups(follow_ups)
    }
}
