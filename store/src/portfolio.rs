//! Portfolio metrics: NPS, CSAT, retention and churn, repeat purchases, complaints,
//! resolution time and revenue, per time bucket and group.
//!
//! The store reads the rows the metrics need (the customers with their group and span;
//! purchases from the bucket before the period on, NPS and CSAT answers and contacts in
//! the period) in one snapshot and hands them to `vitals_domain::portfolio`, which does
//! the counting after the read has ended. The bucket
//! boundaries (calendar weeks and months in UTC) are computed here. On PostgreSQL the
//! rows come by binary COPY over several connections at once (`portfolio/pg.rs`).

mod pg;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Integer, Nullable, Text};
pub use vitals_domain::portfolio::BucketMetrics;
use vitals_domain::portfolio::{Portfolio, PortfolioError, PortfolioEvent, Tally, customer_key};
use vitals_domain::time::{MICROS_PER_DAY, Micros};

use crate::db::{DbPool, Store};
use crate::error::{Result, StoreError};

/// The longest period one request may cover.
pub const MAX_PERIOD: Micros = 3_653 * MICROS_PER_DAY;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    All,
    Segment,
    Region,
    Tier,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Granularity {
    /// One bucket: the period itself.
    Period,
    /// Calendar weeks from Monday 00:00 UTC.
    Week,
    /// Calendar months, UTC.
    Month,
}

fn micros_of(d: NaiveDate) -> Micros {
    d.and_hms_opt(0, 0, 0)
        .map_or(0, |t| t.and_utc().timestamp_micros())
}

fn date_of(t: Micros) -> Result<NaiveDate> {
    DateTime::<Utc>::from_timestamp_micros(t)
        .map(|d| d.date_naive())
        .ok_or_else(|| StoreError::invalid("start_time", "is out of range"))
}

fn month_start(d: NaiveDate) -> NaiveDate {
    d.with_day(1).unwrap_or(d)
}

fn next_month(d: NaiveDate) -> NaiveDate {
    let (y, m) = if d.month() == 12 {
        (d.year() + 1, 1)
    } else {
        (d.year(), d.month() + 1)
    };
    NaiveDate::from_ymd_opt(y, m, 1).unwrap_or(d)
}

/// Bucket boundaries: `[b0, b1, ..., bn]`, bucket k is `[b_k, b_{k+1})`. Bucket 0 is
/// the one before the period (the base of retention), buckets 1.. are reported: the
/// period itself, or the whole weeks or months that cover it.
pub fn bucket_bounds(start: Micros, end: Micros, granularity: Granularity) -> Result<Vec<Micros>> {
    if end <= start {
        return Err(StoreError::invalid("end_time", "must be after start_time"));
    }
    if end - start > MAX_PERIOD {
        return Err(StoreError::invalid(
            "end_time",
            "the period may cover at most 10 years",
        ));
    }
    let mut bounds = Vec::new();
    match granularity {
        Granularity::Period => bounds.extend([start - (end - start), start, end]),
        Granularity::Week => {
            let first = date_of(start)?;
            let monday = first - Duration::days(i64::from(first.weekday().num_days_from_monday()));
            let mut t = micros_of(monday) - 7 * MICROS_PER_DAY;
            while t < end {
                bounds.push(t);
                t += 7 * MICROS_PER_DAY;
            }
            bounds.push(t);
        }
        Granularity::Month => {
            let first = month_start(date_of(start)?);
            let mut d = month_start(first - Duration::days(1));
            loop {
                let t = micros_of(d);
                bounds.push(t);
                if t >= end {
                    break;
                }
                d = next_month(d);
            }
        }
    }
    Ok(bounds)
}

/// The customers' SQL: key, group, contractual, since (signup, or creation without one)
/// and churn time, by grouping. `{key(c.id)}` is the customer key's expression (see
/// `CustomerKey`): the id itself on SQLite, which the client hashes, and the server's
/// hash of it on PostgreSQL.
macro_rules! customers_sql {
    ($grp:literal, $join:literal) => {
        concat!(
            "SELECT {key(c.id)} AS id, ",
            $grp,
            " AS grp, c.contractual AS contractual, \
             COALESCE(c.signup_time, c.create_time) AS since, c.churn_time AS churn_time{id} \
             FROM customers c",
            $join
        )
    };
}

const CUSTOMERS_ALL: &str = customers_sql!("'all'", "");
const CUSTOMERS_SEGMENT: &str = customers_sql!(
    "COALESCE(CAST(e.segment_id AS TEXT), 'none')",
    " LEFT JOIN evaluations e ON e.customer_id = c.id"
);
const CUSTOMERS_REGION: &str = customers_sql!("COALESCE(NULLIF(c.region, ''), 'none')", "");
const CUSTOMERS_TIER: &str = customers_sql!(
    "COALESCE(e.tier, 'none')",
    " LEFT JOIN evaluations e ON e.customer_id = c.id"
);

fn customers_sql(group_by: GroupBy) -> &'static str {
    match group_by {
        GroupBy::All => CUSTOMERS_ALL,
        GroupBy::Segment => CUSTOMERS_SEGMENT,
        GroupBy::Region => CUSTOMERS_REGION,
        GroupBy::Tier => CUSTOMERS_TIER,
    }
}

/// The customers' SQL with `{id}` filled: the id itself as a last column when the events
/// come from histories held in memory (looked up by id), nothing otherwise.
fn with_ids(sql: &str, ids: bool) -> String {
    sql.replace("{id}", if ids { ", c.id AS customer_id" } else { "" })
}

/// The event rows the metrics count, with their bounds as `{lo}`, `{first}` and `{hi}`:
/// purchases from the bucket before the period (the base of retention), answers and
/// contacts from the period's first bucket. SQLite gets the bounds spliced in as
/// integers; PostgreSQL reads them from settings (`pg.rs`). `{key(customer_id)}` as
/// above.
const PURCHASES_SQL: &str = "SELECT {key(customer_id)} AS customer_id, time, currency, amount_minor \
     FROM transactions WHERE time >= {lo} AND time < {hi}";
const ANSWERS_SQL: &str = "SELECT {key(customer_id)} AS customer_id, time, kind = 'nps' AS nps, score \
     FROM feedback WHERE kind IN ('nps', 'csat') AND time >= {first} AND time < {hi}";
/// From the bucket before the period on: a topic rises against the bucket before.
const COMMENTS_SQL: &str = "SELECT {key(customer_id)} AS customer_id, time, sentiment, \
     coalesce(topic, '') AS topic FROM comment_analyses WHERE time >= {lo} AND time < {hi}";
const CONTACTS_SQL: &str = "SELECT {key(customer_id)} AS customer_id, event_key, ticket_id, time, \
     resolved_time, kind = 'complaint' AS complaint FROM interactions \
     WHERE time >= {first} AND time < {hi}";

/// `sql` with its placeholders filled: `key(column)` for each customer key, and the
/// bounds `lo`, `first` and `hi`.
fn fill(sql: &str, key: impl Fn(&str) -> String, [lo, first, hi]: [&str; 3]) -> String {
    sql.replace("{key(c.id)}", &key("c.id"))
        .replace("{key(customer_id)}", &key("customer_id"))
        .replace("{lo}", lo)
        .replace("{first}", first)
        .replace("{hi}", hi)
}

/// Histories a caller holds in memory (the server's history cache): the portfolio counts
/// their purchases, answers and contacts from there instead of streaming them from the
/// database again. Comments' analyses and the customers' groups are always read.
pub trait HeldHistories: Sync {
    /// Counts customer `id`'s events into `tally` (a [`Portfolio::member_tally`]) as
    /// the portfolio's customer number `member`, and says true; or says false and counts
    /// nothing when the history is not held.
    fn tally_held(&self, id: &str, member: u32, tally: &mut Tally) -> bool;
}

/// A customer whose events come from held histories: their id, to look the history up,
/// and their number in the portfolio, to count under.
type MemberId = (Box<str>, u32);

/// What the database gave one attempt: the tallies of the streams read and, when the
/// events come from held histories, every customer's id and number.
type Read = std::result::Result<(Vec<Tally>, Vec<MemberId>), PortfolioError>;

/// Seeds tried for the customer keys before giving up: with 64-bit keys, even ten
/// million customers collide under one seed with a probability of about 3e-6.
const KEY_SEEDS: u64 = 4;

impl Store {
    /// Metrics for `[start, end)` by `granularity`, one row per bucket and group,
    /// buckets in time order and groups by name.
    pub fn portfolio_metrics(
        &self,
        start: Micros,
        end: Micros,
        group_by: GroupBy,
        granularity: Granularity,
    ) -> Result<Vec<BucketMetrics>> {
        self.portfolio_metrics_held(start, end, group_by, granularity, None)
    }

    /// [`Self::portfolio_metrics`], the events of the histories `held` holds counted from
    /// memory (on every core) and only the others read. The customers and comments come
    /// from the database either way.
    pub fn portfolio_metrics_held(
        &self,
        start: Micros,
        end: Micros,
        group_by: GroupBy,
        granularity: Granularity,
        held: Option<&dyn HeldHistories>,
    ) -> Result<Vec<BucketMetrics>> {
        let bounds = bucket_bounds(start, end, granularity)?;
        for seed in 0..KEY_SEEDS {
            let started = std::time::Instant::now();
            let mut portfolio = Portfolio::new(bounds.clone());
            let ids = held.is_some();
            let read = match &self.pool {
                DbPool::Postgres(pool) => pg::metrics(pool, &mut portfolio, group_by, seed, ids)?,
                DbPool::Sqlite(pool) => {
                    let mut conn = self.checkout(pool)?;
                    sqlite_metrics(&mut conn, &mut portfolio, group_by, seed, ids)?
                }
            };
            let counted = match (read, held) {
                (Ok((mut tallies, members)), Some(held)) => {
                    if !members.is_empty() {
                        tallies.extend(self.tally_members(&portfolio, &members, held)?);
                    }
                    portfolio.finish(tallies)
                }
                (Ok((tallies, _)), None) => portfolio.finish(tallies),
                (Err(e), _) => Err(e),
            };
            tracing::debug!(
                ms = started.elapsed().as_millis() as u64,
                "portfolio: counted"
            );
            match counted {
                Ok(rows) => return Ok(rows),
                Err(PortfolioError::KeyCollision(key)) => {
                    tracing::warn!(seed, key, "two customers share a key: counting again");
                }
                Err(e) => return Err(StoreError::Internal(format!("portfolio metrics: {e}"))),
            }
        }
        Err(StoreError::Internal(format!(
            "portfolio metrics: customer keys collided under {KEY_SEEDS} seeds"
        )))
    }
}

/// Customers whose histories are read from the database at once when not held.
const MISSING_CHUNK: usize = 1000;

impl Store {
    /// The events of `members` into tallies: from `held` on every core, the histories it
    /// does not hold read from the database in chunks.
    fn tally_members(
        &self,
        portfolio: &Portfolio,
        members: &[MemberId],
        held: &dyn HeldHistories,
    ) -> Result<Vec<Tally>> {
        let started = std::time::Instant::now();
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        let per_thread = members.len().div_ceil(threads).max(1);
        let (mut tallies, missing): (Vec<Tally>, Vec<Vec<&MemberId>>) = std::thread::scope(|s| {
            let workers: Vec<_> = members
                .chunks(per_thread)
                .map(|part| {
                    s.spawn(move || {
                        let mut tally = portfolio.member_tally();
                        let missing: Vec<&MemberId> = part
                            .iter()
                            .filter(|(id, member)| !held.tally_held(id, *member, &mut tally))
                            .collect();
                        (tally, missing)
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| {
                    w.join()
                        .map_err(|_| StoreError::Internal("a portfolio counter panicked".into()))
                })
                .collect::<Result<Vec<_>>>()
                .map(|parts| parts.into_iter().unzip())
        })?;
        let missing: Vec<&MemberId> = missing.into_iter().flatten().collect();
        if !missing.is_empty() {
            let mut tally = portfolio.member_tally();
            for chunk in missing.chunks(MISSING_CHUNK) {
                let ids: Vec<&str> = chunk.iter().map(|(id, _)| &**id).collect();
                let mut events = self.events_by_customer(&ids)?;
                for (id, member) in chunk {
                    let stored = events.remove(&**id).unwrap_or_default();
                    let counted: Vec<PortfolioEvent<'_>> =
                        stored.iter().filter_map(PortfolioEvent::of).collect();
                    tally.member_events(*member, &counted);
                }
            }
            tallies.push(tally);
        }
        tracing::debug!(
            customers = members.len(),
            read = missing.len(),
            ms = started.elapsed().as_millis() as u64,
            "portfolio: held histories counted"
        );
        Ok(tallies)
    }
}

#[derive(QueryableByName)]
struct MemberRow {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Text)]
    grp: String,
    #[diesel(sql_type = Bool)]
    contractual: bool,
    #[diesel(sql_type = BigInt)]
    since: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    churn_time: Option<i64>,
}

#[derive(QueryableByName)]
struct PurchaseRow {
    #[diesel(sql_type = Text)]
    customer_id: String,
    #[diesel(sql_type = BigInt)]
    time: i64,
    #[diesel(sql_type = Text)]
    currency: String,
    #[diesel(sql_type = BigInt)]
    amount_minor: i64,
}

#[derive(QueryableByName)]
struct AnswerRow {
    #[diesel(sql_type = Text)]
    customer_id: String,
    #[diesel(sql_type = BigInt)]
    time: i64,
    #[diesel(sql_type = Bool)]
    nps: bool,
    #[diesel(sql_type = Integer)]
    score: i32,
}

#[derive(QueryableByName)]
struct CommentRow {
    #[diesel(sql_type = Text)]
    customer_id: String,
    #[diesel(sql_type = BigInt)]
    time: i64,
    #[diesel(sql_type = diesel::sql_types::Float)]
    sentiment: f32,
    #[diesel(sql_type = Text)]
    topic: String,
}

#[derive(QueryableByName)]
struct ContactRow {
    #[diesel(sql_type = Text)]
    customer_id: String,
    #[diesel(sql_type = Text)]
    event_key: String,
    #[diesel(sql_type = Text)]
    ticket_id: String,
    #[diesel(sql_type = BigInt)]
    time: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    resolved_time: Option<i64>,
    #[diesel(sql_type = Bool)]
    complaint: bool,
}

/// A customer with their id, for the held-histories path.
#[derive(QueryableByName)]
struct MemberIdRow {
    #[diesel(embed)]
    member: MemberRow,
    #[diesel(sql_type = Text)]
    customer_id: String,
}

/// SQLite: every row through diesel, in one transaction (one snapshot). The embedded
/// database holds sample-sized data; PostgreSQL is the path built for size. With `ids`,
/// only the customers (with their ids) and the comments are read: the other events come
/// from held histories.
fn sqlite_metrics(
    conn: &mut diesel::sqlite::SqliteConnection,
    portfolio: &mut Portfolio,
    group_by: GroupBy,
    seed: u64,
    ids: bool,
) -> Result<Read> {
    let (lo, hi) = portfolio.purchase_span();
    let (first, _) = portfolio.reported_span();
    let bounds = [lo, first, hi].map(|b| b.to_string());
    let sql = |sql: &str| {
        fill(
            &with_ids(sql, ids),
            |id| id.to_owned(),
            [&bounds[0], &bounds[1], &bounds[2]],
        )
    };
    let key = |id: &str| customer_key(id.as_bytes(), seed);
    conn.transaction::<_, StoreError, _>(|conn| {
        let mut members = Vec::new();
        let rows: Vec<(MemberRow, Option<String>)> = if ids {
            diesel::sql_query(sql(customers_sql(group_by)))
                .load::<MemberIdRow>(conn)?
                .into_iter()
                .map(|r| (r.member, Some(r.customer_id)))
                .collect()
        } else {
            diesel::sql_query(sql(customers_sql(group_by)))
                .load::<MemberRow>(conn)?
                .into_iter()
                .map(|m| (m, None))
                .collect()
        };
        for (m, id) in rows {
            let member = portfolio.customers() as u32;
            if let Err(e) =
                portfolio.add_customer(key(&m.id), &m.grp, m.contractual, m.since, m.churn_time)
            {
                return Ok(Err(e));
            }
            members.extend(id.map(|id| (id.into_boxed_str(), member)));
        }
        let mut tally = portfolio.tally();
        if !ids {
            for r in diesel::sql_query(sql(PURCHASES_SQL)).load::<PurchaseRow>(conn)? {
                tally.purchase(
                    key(&r.customer_id),
                    r.time,
                    r.currency.as_bytes(),
                    r.amount_minor,
                );
            }
            for r in diesel::sql_query(sql(ANSWERS_SQL)).load::<AnswerRow>(conn)? {
                tally.answer(key(&r.customer_id), r.time, r.nps, r.score);
            }
            for r in diesel::sql_query(sql(CONTACTS_SQL)).load::<ContactRow>(conn)? {
                tally.interaction(
                    key(&r.customer_id),
                    r.event_key.as_bytes(),
                    r.ticket_id.as_bytes(),
                    r.time,
                    r.resolved_time,
                    r.complaint,
                );
            }
        }
        for r in diesel::sql_query(sql(COMMENTS_SQL)).load::<CommentRow>(conn)? {
            tally.comment(key(&r.customer_id), r.time, r.sentiment, &r.topic);
        }
        // Counted after the read transaction ends, so the file is not held meanwhile.
        Ok(Ok((vec![tally], members)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(y: i32, m: u32, d: u32) -> Micros {
        micros_of(NaiveDate::from_ymd_opt(y, m, d).expect("a date"))
    }

    #[test]
    fn months_cover_the_period_with_the_month_before_first() {
        let b = bucket_bounds(at(2024, 1, 15), at(2024, 3, 1), Granularity::Month).expect("ok");
        assert_eq!(
            b,
            vec![
                at(2023, 12, 1),
                at(2024, 1, 1),
                at(2024, 2, 1),
                at(2024, 3, 1)
            ]
        );
    }

    #[test]
    fn weeks_start_on_monday() {
        // 2024-01-03 is a Wednesday; its week starts Monday 2024-01-01.
        let b = bucket_bounds(at(2024, 1, 3), at(2024, 1, 9), Granularity::Week).expect("ok");
        assert_eq!(
            b,
            vec![
                at(2023, 12, 25),
                at(2024, 1, 1),
                at(2024, 1, 8),
                at(2024, 1, 15)
            ]
        );
    }

    #[test]
    fn a_period_is_one_bucket_after_one_as_long() {
        let b = bucket_bounds(at(2024, 1, 10), at(2024, 1, 20), Granularity::Period).expect("ok");
        assert_eq!(b, vec![at(2023, 12, 31), at(2024, 1, 10), at(2024, 1, 20)]);
    }

    #[test]
    fn bad_periods_are_refused() {
        assert!(bucket_bounds(at(2024, 1, 10), at(2024, 1, 10), Granularity::Week).is_err());
        assert!(bucket_bounds(at(2000, 1, 1), at(2024, 1, 1), Granularity::Month).is_err());
    }
}
