//! PostgreSQL: the metrics' rows by binary COPY, several streams at once, one snapshot.
//!
//! A coordinating transaction exports its snapshot. Each event source runs on a
//! connection of its own that imports the same snapshot, while the coordinator reads the
//! customers, so every row comes from one consistent view of the database (an event's
//! customer is always among the customers read). Counting starts once every stream is
//! read and the transactions have ended. The transactions table, by far the largest, is split into
//! page ranges (TID range scans), one per core, so its scan runs on two backends. A
//! source that gets no connection in time (a small or busy pool) runs on the coordinating
//! connection instead, in the same snapshot.
//!
//! Why COPY and counting in Rust rather than `GROUP BY` in SQL: buyers, repeat buyers,
//! retention and complaining customers count customers per bucket, which in SQL is a
//! grouping of every event by (customer, bucket): about a second of executor time for
//! 1.25 M purchases on this hardware. Streaming the same rows out costs PostgreSQL a
//! plain scan, and counting them costs the client tens of nanoseconds each.

use std::io::BufRead;
use std::sync::LazyLock;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, Pool};
use diesel::sql_types::{BigInt, Text};
use vitals_domain::portfolio::{Portfolio, PortfolioError, Tally};

use super::{
    ANSWERS_SQL, COMMENTS_SQL, CONTACTS_SQL, CUSTOMERS_ALL, CUSTOMERS_REGION, CUSTOMERS_SEGMENT,
    CUSTOMERS_TIER, GroupBy, MemberId, PURCHASES_SQL, Read, fill, with_ids,
};
use crate::error::{Result, StoreError};
use crate::pgcopy::{Fields, RowSink, copy_out, copy_source};
use crate::schema::{comment_analyses, customers, feedback, interactions, transactions};

type PgPool = Pool<ConnectionManager<PgConnection>>;

/// Page ranges the transactions scan is split into: one per core of the 2-core machines
/// Vitals is benchmarked on; more ranges than backends that can run only add switching.
const PURCHASE_PARTS: i64 = 2;

/// How long a source waits for a connection of its own before it runs on the
/// coordinating one.
const WORKER_CHECKOUT: Duration = Duration::from_millis(250);

/// The customer key: the server's 64-bit hash of the id under the attempt's seed.
fn key(id: &str) -> String {
    format!("hashtextextended({id}, (SELECT current_setting('vitals.seed')::bigint))")
}

/// A COPY's bounds, read once per statement (an init plan) from transaction-local
/// settings: a COPY takes no bind parameters, and diesel's COPY source is static SQL.
const BOUNDS: [&str; 3] = [
    "(SELECT current_setting('vitals.lo')::bigint)",
    "(SELECT current_setting('vitals.first')::bigint)",
    "(SELECT current_setting('vitals.hi')::bigint)",
];

/// Also turns off PostgreSQL's own parallel workers for the transaction: the streams are
/// already one backend per core, and a parallel hash join for the customers only added
/// processes competing for the same two cores.
const SET_PARAMETERS: &str = "SELECT set_config('max_parallel_workers_per_gather', '0', true), \
     set_config('vitals.lo', $1, true), \
     set_config('vitals.first', $2, true), set_config('vitals.hi', $3, true), \
     set_config('vitals.page_lo', $4, true), set_config('vitals.page_hi', $5, true), \
     set_config('vitals.seed', $6, true)";

static PURCHASES: LazyLock<String> = LazyLock::new(|| {
    format!(
        "({} AND ctid >= (SELECT ('(' || current_setting('vitals.page_lo') || ',0)')::tid) \
         AND ctid < (SELECT ('(' || current_setting('vitals.page_hi') || ',0)')::tid))",
        fill(PURCHASES_SQL, key, BOUNDS)
    )
});
/// A SELECT as a COPY source: in parentheses, with its placeholders filled.
fn copy_sql(sql: &str) -> String {
    format!("({})", fill(sql, key, BOUNDS))
}

static ANSWERS: LazyLock<String> = LazyLock::new(|| copy_sql(ANSWERS_SQL));
static CONTACTS: LazyLock<String> = LazyLock::new(|| copy_sql(CONTACTS_SQL));
static COMMENTS: LazyLock<String> = LazyLock::new(|| copy_sql(COMMENTS_SQL));
/// The customers by grouping, then the same with their ids (for held histories).
static CUSTOMERS: LazyLock<[String; 8]> = LazyLock::new(|| {
    let sql = [
        CUSTOMERS_ALL,
        CUSTOMERS_SEGMENT,
        CUSTOMERS_REGION,
        CUSTOMERS_TIER,
    ];
    let plain = sql.map(|s| copy_sql(&with_ids(s, false)));
    let ids = sql.map(|s| copy_sql(&with_ids(s, true)));
    [
        plain[0].clone(),
        plain[1].clone(),
        plain[2].clone(),
        plain[3].clone(),
        ids[0].clone(),
        ids[1].clone(),
        ids[2].clone(),
        ids[3].clone(),
    ]
});

copy_source!(PurchasesSource, transactions, PURCHASES);
copy_source!(AnswersSource, feedback, ANSWERS);
copy_source!(ContactsSource, interactions, CONTACTS);
copy_source!(CommentsSource, comment_analyses, COMMENTS);
copy_source!(CustomersAll, customers, CUSTOMERS[0]);
copy_source!(CustomersSegment, customers, CUSTOMERS[1]);
copy_source!(CustomersRegion, customers, CUSTOMERS[2]);
copy_source!(CustomersTier, customers, CUSTOMERS[3]);
copy_source!(CustomerIdsAll, customers, CUSTOMERS[4]);
copy_source!(CustomerIdsSegment, customers, CUSTOMERS[5]);
copy_source!(CustomerIdsRegion, customers, CUSTOMERS[6]);
copy_source!(CustomerIdsTier, customers, CUSTOMERS[7]);

/// What one stream reads.
#[derive(Debug, Clone, Copy)]
enum Source {
    /// Transactions on pages `[first, end)`.
    Purchases {
        first: i64,
        end: i64,
    },
    Answers,
    Contacts,
    Comments,
}

#[derive(QueryableByName)]
struct Snapshot {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = BigInt)]
    pages: i64,
}

/// Reads an attempt's rows. With `ids`, only the customers (with their ids) and the
/// comments: the other events come from held histories.
pub(super) fn metrics(
    pool: &PgPool,
    portfolio: &mut Portfolio,
    group_by: GroupBy,
    seed: u64,
    ids: bool,
) -> Result<Read> {
    let started = std::time::Instant::now();
    let mut conn = pool.get()?;
    let read = conn
        .build_transaction()
        .read_only()
        .repeatable_read()
        .run::<_, StoreError, _>(|conn| {
            let snapshot = diesel::sql_query(
                "SELECT pg_export_snapshot() AS id, \
                 pg_relation_size('transactions') / current_setting('block_size')::bigint \
                 AS pages",
            )
            .get_result::<Snapshot>(conn)?;
            if !snapshot
                .id
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b'-')
            {
                return Err(StoreError::Internal(format!(
                    "unexpected snapshot id {:?}",
                    snapshot.id
                )));
            }
            let step = (snapshot.pages / PURCHASE_PARTS).max(1);
            let streams = if ids { 0 } else { PURCHASE_PARTS };
            let mut sources: Vec<Source> = (0..streams)
                .map(|i| Source::Purchases {
                    first: i * step,
                    // The last range is open: a page the size estimate missed still counts.
                    end: if i + 1 == PURCHASE_PARTS {
                        i64::from(u32::MAX - 1)
                    } else {
                        (i + 1) * step
                    },
                })
                .collect();
            if !ids {
                sources.extend([Source::Answers, Source::Contacts]);
            }
            sources.push(Source::Comments);
            let snapshot = snapshot.id.as_str();
            let tallies = std::thread::scope(|s| {
                let mut here = Vec::new();
                let mut workers = Vec::new();
                // After one wait runs out the pool is busy: the rest run here at once
                // rather than each waiting in turn.
                let mut pool_busy = false;
                for source in sources {
                    let tally = portfolio.tally();
                    let own = if pool_busy {
                        None
                    } else {
                        pool.get_timeout(WORKER_CHECKOUT).ok()
                    };
                    pool_busy |= own.is_none();
                    match own {
                        Some(mut own) => workers.push(s.spawn(move || {
                            own.build_transaction()
                                .read_only()
                                .repeatable_read()
                                .run::<_, StoreError, _>(|own| {
                                    // Validated above: hex digits and dashes only.
                                    own.batch_execute(&format!(
                                        "SET TRANSACTION SNAPSHOT '{snapshot}'"
                                    ))?;
                                    read(own, tally, source, seed)
                                })
                        })),
                        None => here.push((tally, source)),
                    }
                }
                // The customers, here, while the workers read the events.
                set_parameters(
                    conn,
                    portfolio.purchase_span(),
                    portfolio.reported_span().0,
                    (0, 0),
                    seed,
                )?;
                let mut members = Members {
                    portfolio: &mut *portfolio,
                    group: Vec::new(),
                    ids: ids.then(Vec::new),
                    collision: None,
                };
                match (group_by, ids) {
                    (GroupBy::All, false) => copy_out(conn, CustomersAll, &mut members)?,
                    (GroupBy::Segment, false) => copy_out(conn, CustomersSegment, &mut members)?,
                    (GroupBy::Region, false) => copy_out(conn, CustomersRegion, &mut members)?,
                    (GroupBy::Tier, false) => copy_out(conn, CustomersTier, &mut members)?,
                    (GroupBy::All, true) => copy_out(conn, CustomerIdsAll, &mut members)?,
                    (GroupBy::Segment, true) => copy_out(conn, CustomerIdsSegment, &mut members)?,
                    (GroupBy::Region, true) => copy_out(conn, CustomerIdsRegion, &mut members)?,
                    (GroupBy::Tier, true) => copy_out(conn, CustomerIdsTier, &mut members)?,
                }
                let collision = members.collision;
                let member_ids = members.ids.unwrap_or_default();
                tracing::debug!(
                    customers = portfolio.customers(),
                    ms = started.elapsed().as_millis() as u64,
                    "portfolio: customers read"
                );
                let mut tallies = Vec::new();
                for (tally, source) in here {
                    tallies.push(read(conn, tally, source, seed)?);
                }
                for w in workers {
                    tallies.push(w.join().unwrap_or_else(|_| {
                        Err(StoreError::Internal("a metrics reader panicked".into()))
                    })?);
                }
                Ok::<_, StoreError>((tallies, member_ids, collision))
            })?;
            let (tallies, member_ids, collision) = tallies;
            Ok(match collision {
                Some(collision) => Err(collision),
                None => Ok((tallies, member_ids)),
            })
        })?;
    // Counted after the transaction (by the caller): the snapshot and the connection are
    // not held through the CPU work.
    tracing::debug!(
        ms = started.elapsed().as_millis() as u64,
        "portfolio: rows read"
    );
    Ok(read)
}

/// Reads one source into its tally, in the connection's current transaction.
fn read(conn: &mut PgConnection, tally: Tally, source: Source, seed: u64) -> Result<Tally> {
    let pages = match source {
        Source::Purchases { first, end } => (first, end),
        _ => (0, 0),
    };
    set_parameters(
        conn,
        tally.purchase_span(),
        tally.reported_span().0,
        pages,
        seed,
    )?;
    let mut sink = Sink {
        tally,
        text: Vec::new(),
        source,
    };
    match source {
        Source::Purchases { .. } => copy_out(conn, PurchasesSource, &mut sink)?,
        Source::Answers => copy_out(conn, AnswersSource, &mut sink)?,
        Source::Contacts => copy_out(conn, ContactsSource, &mut sink)?,
        Source::Comments => copy_out(conn, CommentsSource, &mut sink)?,
    }
    Ok(sink.tally)
}

/// Sets what the COPY sources read from settings, for the current transaction.
fn set_parameters(
    conn: &mut PgConnection,
    (lo, hi): (i64, i64),
    first: i64,
    (page_first, page_end): (i64, i64),
    seed: u64,
) -> Result<()> {
    diesel::sql_query(SET_PARAMETERS)
        .bind::<Text, _>(lo.to_string())
        .bind::<Text, _>(first.to_string())
        .bind::<Text, _>(hi.to_string())
        .bind::<Text, _>(page_first.to_string())
        .bind::<Text, _>(page_end.to_string())
        .bind::<Text, _>(seed.to_string())
        .execute(conn)?;
    Ok(())
}

/// The customers' rows: key, group, contractual, since, churn time, and the id when
/// `ids` collects them.
struct Members<'a> {
    portfolio: &'a mut Portfolio,
    group: Vec<u8>,
    ids: Option<Vec<MemberId>>,
    /// Two customers with one key: the rest is read, and the attempt given up.
    collision: Option<PortfolioError>,
}

impl RowSink for Members<'_> {
    fn fields(&self) -> i16 {
        if self.ids.is_some() { 6 } else { 5 }
    }

    fn row<R: BufRead>(&mut self, rows: &mut Fields<R>) -> Result<()> {
        let key = rows.i64()? as u64;
        self.group.clear();
        self.group.extend_from_slice(rows.bytes()?);
        let group = String::from_utf8_lossy(&self.group);
        let contractual = rows.bool()?;
        let since = rows.i64()?;
        let churn_time = rows.opt_i64()?;
        let member = self.portfolio.customers() as u32;
        if let Err(e) = self
            .portfolio
            .add_customer(key, &group, contractual, since, churn_time)
        {
            self.collision.get_or_insert(e);
        }
        if let Some(ids) = &mut self.ids {
            let id = String::from_utf8_lossy(rows.bytes()?).into_owned();
            ids.push((id.into_boxed_str(), member));
        }
        Ok(())
    }
}

/// One event source's rows into a tally. Text fields read before the last one are
/// copied into the sink's buffer (a field's bytes are borrowed only until the next read).
struct Sink {
    tally: Tally,
    /// The second text field: a currency, or an event key.
    text: Vec<u8>,
    source: Source,
}

impl RowSink for Sink {
    fn fields(&self) -> i16 {
        match self.source {
            Source::Purchases { .. } | Source::Answers | Source::Comments => 4,
            Source::Contacts => 6,
        }
    }

    fn row<R: BufRead>(&mut self, rows: &mut Fields<R>) -> Result<()> {
        // The server's hash, an int8: the bits are the key.
        let customer = rows.i64()? as u64;
        match self.source {
            // customer_id, time, currency, amount_minor
            Source::Purchases { .. } => {
                let time = rows.i64()?;
                self.text.clear();
                self.text.extend_from_slice(rows.bytes()?);
                let amount = rows.i64()?;
                self.tally.purchase(customer, time, &self.text, amount);
            }
            // customer_id, time, nps, score
            Source::Answers => {
                let time = rows.i64()?;
                let nps = rows.bool()?;
                let score = rows.i32()?;
                self.tally.answer(customer, time, nps, score);
            }
            // customer_id, time, sentiment, topic ('' for none)
            Source::Comments => {
                let time = rows.i64()?;
                let sentiment = rows.f32()?;
                let topic = std::str::from_utf8(rows.bytes()?).unwrap_or_default();
                self.tally.comment(customer, time, sentiment, topic);
            }
            // customer_id, event_key, ticket_id, time, resolved_time, complaint
            Source::Contacts => {
                self.text.clear();
                self.text.extend_from_slice(rows.bytes()?);
                let ticket = rows.bytes()?.to_vec();
                let time = rows.i64()?;
                let resolved = rows.opt_i64()?;
                let complaint = rows.bool()?;
                self.tally
                    .interaction(customer, &self.text, &ticket, time, resolved, complaint);
            }
        }
        Ok(())
    }
}
