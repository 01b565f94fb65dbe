//! Portfolio metrics: NPS, CSAT, retention and churn, repeat purchases, complaints,
//! resolution time and revenue, per time bucket and group.
//!
//! Each source table is scanned once by one aggregate query: feedback grouped by (bucket,
//! group); purchases and tickets grouped by (customer, bucket), because buyers, repeat
//! buyers, retention and complaining customers count customers; and the customers with
//! their group and span. On PostgreSQL the four run at once on their own connections;
//! the per-customer rows are combined into groups in Rust. A bucket is found from a list
//! of boundaries computed here (calendar weeks and months in UTC): `width_bucket` (a
//! binary search) on PostgreSQL, a `CASE` chain on SQLite.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Double, Nullable, Text};
use vitals_engine::time::{MICROS_PER_DAY, Micros};

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

/// One bucket's counts for one group; the rates derive from them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BucketMetrics {
    pub start: Micros,
    pub end: Micros,
    pub group: String,
    pub nps_answers: i64,
    pub promoters: i64,
    pub detractors: i64,
    pub csat_answers: i64,
    pub csat_sum: i64,
    /// Contractual customers on contract at the start plus non-contractual buyers of
    /// the bucket before.
    pub customers_at_start: i64,
    pub churned: i64,
    pub buyers: i64,
    pub repeat_buyers: i64,
    pub complaints: i64,
    pub complaining_customers: i64,
    /// Customers signed up (or created) before the bucket's end and not churned
    /// before its start: the complaint rate's denominator.
    pub customers_on_books: i64,
    pub resolved_interactions: i64,
    pub resolution_micros: f64,
    pub revenue_minor: BTreeMap<String, i64>,
}

fn ratio(n: f64, d: i64) -> Option<f64> {
    (d > 0).then(|| n / d as f64)
}

impl BucketMetrics {
    /// 100 × (promoters − detractors) / answers.
    pub fn nps(&self) -> Option<f64> {
        ratio(
            100.0 * (self.promoters - self.detractors) as f64,
            self.nps_answers,
        )
    }
    pub fn mean_csat(&self) -> Option<f64> {
        ratio(self.csat_sum as f64, self.csat_answers)
    }
    pub fn churn_rate(&self) -> Option<f64> {
        ratio(self.churned as f64, self.customers_at_start)
    }
    pub fn retention_rate(&self) -> Option<f64> {
        self.churn_rate().map(|c| 1.0 - c)
    }
    pub fn repeat_purchase_rate(&self) -> Option<f64> {
        ratio(self.repeat_buyers as f64, self.buyers)
    }
    pub fn complaint_rate(&self) -> Option<f64> {
        ratio(self.complaining_customers as f64, self.customers_on_books)
    }
    pub fn mean_resolution_hours(&self) -> Option<f64> {
        ratio(self.resolution_micros / 3.6e9, self.resolved_interactions)
    }
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

/// SQL for the bucket number (0-based) of `column`; rows outside the bounds are
/// filtered out by the callers' WHERE.
fn bucket_sql(column: &str, bounds: &[Micros], postgres: bool) -> String {
    if postgres {
        let list: Vec<String> = bounds.iter().map(|b| b.to_string()).collect();
        format!(
            "CAST(width_bucket({column}, '{{{}}}'::bigint[]) - 1 AS BIGINT)",
            list.join(",")
        )
    } else {
        let mut sql = String::from("CASE");
        for (k, b) in bounds.iter().enumerate().skip(1) {
            sql.push_str(&format!(" WHEN {column} < {b} THEN {}", k - 1));
        }
        sql.push_str(" END");
        sql
    }
}

/// The group key of a row whose customer id is `customer` (with `c` customers and `e`
/// evaluations joined where the grouping needs them).
fn group_sql(group_by: GroupBy) -> (&'static str, &'static str) {
    match group_by {
        GroupBy::All => ("'all'", ""),
        GroupBy::Segment => (
            "COALESCE(CAST(e.segment_id AS TEXT), 'none')",
            " LEFT JOIN evaluations e ON e.customer_id = x.customer_id",
        ),
        GroupBy::Tier => (
            "COALESCE(e.tier, 'none')",
            " LEFT JOIN evaluations e ON e.customer_id = x.customer_id",
        ),
        GroupBy::Region => (
            "COALESCE(NULLIF(c.region, ''), 'none')",
            " LEFT JOIN customers c ON c.id = x.customer_id",
        ),
    }
}

#[derive(QueryableByName)]
struct FeedbackAgg {
    #[diesel(sql_type = BigInt)]
    bucket: i64,
    #[diesel(sql_type = Text)]
    grp: String,
    #[diesel(sql_type = BigInt)]
    nps_answers: i64,
    #[diesel(sql_type = BigInt)]
    promoters: i64,
    #[diesel(sql_type = BigInt)]
    detractors: i64,
    #[diesel(sql_type = BigInt)]
    csat_answers: i64,
    #[diesel(sql_type = BigInt)]
    csat_sum: i64,
}

/// A customer's group and the span they were on the books.
#[derive(QueryableByName)]
struct CustomerSpan {
    #[diesel(sql_type = Text)]
    customer_id: String,
    #[diesel(sql_type = Text)]
    grp: String,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    contractual: bool,
    #[diesel(sql_type = BigInt)]
    since: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    churn_time: Option<i64>,
}

/// One customer's purchases in one currency, per bucket (bucket 0 is the one before).
#[derive(Debug, Default)]
struct Purchases {
    customer_id: String,
    currency: String,
    counts: Vec<i64>,
    amounts: Vec<i64>,
}

/// One customer's tickets (a ticket's events folded into one contact), per bucket.
#[derive(Debug, Default)]
struct Tickets {
    customer_id: String,
    complaints: Vec<i64>,
    resolved: Vec<i64>,
    resolution_micros: Vec<f64>,
}

/// Either backend, any number of buckets: one row per (customer, bucket).
#[derive(QueryableByName)]
struct PurchasesRow {
    #[diesel(sql_type = Text)]
    customer_id: String,
    #[diesel(sql_type = Text)]
    currency: String,
    #[diesel(sql_type = BigInt)]
    bucket: i64,
    #[diesel(sql_type = BigInt)]
    n: i64,
    #[diesel(sql_type = BigInt)]
    amount: i64,
}

#[derive(QueryableByName)]
struct TicketsRow {
    #[diesel(sql_type = Text)]
    customer_id: String,
    #[diesel(sql_type = BigInt)]
    bucket: i64,
    #[diesel(sql_type = BigInt)]
    complaints: i64,
    #[diesel(sql_type = BigInt)]
    resolved: i64,
    #[diesel(sql_type = Double)]
    resolution_micros: f64,
}

/// What the queries return, before it is put together.
struct Parts {
    feedback: Vec<FeedbackAgg>,
    customers: Vec<CustomerSpan>,
    purchases: Vec<Purchases>,
    tickets: Vec<Tickets>,
}

/// A ticket's events as one contact: opened at its first event, resolved at the latest
/// resolution, a complaint if any event says so. Events without a ticket id stand alone.
fn tickets_sql(first: Micros, hi: Micros) -> String {
    format!(
        "SELECT customer_id, MIN(time) AS opened, MAX(resolved_time) AS resolved,
                MAX(CASE WHEN kind = 'complaint' THEN 1 ELSE 0 END) AS complaint
         FROM interactions
         WHERE time >= {first} AND time < {hi}
         GROUP BY customer_id, CASE WHEN ticket_id = '' THEN event_key ELSE ticket_id END"
    )
}

fn feedback_sql(bounds: &[Micros], group_by: GroupBy, postgres: bool) -> String {
    let (grp, join) = group_sql(group_by);
    format!(
        "SELECT {bucket} AS bucket, {grp} AS grp,
                COUNT(CASE WHEN x.kind = 'nps' THEN 1 END) AS nps_answers,
                COUNT(CASE WHEN x.kind = 'nps' AND x.score >= 9 THEN 1 END) AS promoters,
                COUNT(CASE WHEN x.kind = 'nps' AND x.score <= 6 THEN 1 END) AS detractors,
                COUNT(CASE WHEN x.kind = 'csat' THEN 1 END) AS csat_answers,
                CAST(COALESCE(SUM(CASE WHEN x.kind = 'csat' THEN x.score END), 0) AS BIGINT) AS csat_sum
         FROM feedback x{join}
         WHERE x.time >= {first} AND x.time < {hi} AND x.kind IN ('nps', 'csat')
         GROUP BY 1, 2",
        bucket = bucket_sql("x.time", bounds, postgres),
        first = bounds[1],
        hi = bounds[bounds.len() - 1],
    )
}

fn customers_sql(group_by: GroupBy) -> String {
    let (grp, join) = group_sql(group_by);
    format!(
        "SELECT x.customer_id AS customer_id, {grp} AS grp, x.contractual AS contractual,
                COALESCE(x.signup_time, x.create_time) AS since, x.churn_time AS churn_time
         FROM (SELECT id AS customer_id, contractual, signup_time, create_time, churn_time
               FROM customers) x{join}",
    )
}

fn purchases_rows_sql(bounds: &[Micros], postgres: bool) -> String {
    format!(
        "SELECT customer_id, currency, {bucket} AS bucket, COUNT(*) AS n,
                CAST(SUM(amount_minor) AS BIGINT) AS amount
         FROM transactions WHERE time >= {lo} AND time < {hi}
         GROUP BY 1, 2, 3",
        bucket = bucket_sql("time", bounds, postgres),
        lo = bounds[0],
        hi = bounds[bounds.len() - 1],
    )
}

fn tickets_rows_sql(bounds: &[Micros], postgres: bool) -> String {
    format!(
        "SELECT customer_id, {bucket} AS bucket,
                CAST(SUM(complaint) AS BIGINT) AS complaints, COUNT(resolved) AS resolved,
                CAST(COALESCE(SUM(CAST(resolved - opened AS DOUBLE PRECISION)), 0) AS DOUBLE PRECISION) AS resolution_micros
         FROM ({tickets}) t GROUP BY 1, 2",
        bucket = bucket_sql("opened", bounds, postgres),
        tickets = tickets_sql(bounds[1], bounds[bounds.len() - 1]),
    )
}

/// Rows per (customer, bucket) into per-customer vectors over every bucket.
fn purchases_of_rows(rows: Vec<PurchasesRow>, buckets: usize) -> Vec<Purchases> {
    let mut by: HashMap<(String, String), Purchases> = HashMap::new();
    for r in rows {
        let Ok(k) = usize::try_from(r.bucket) else {
            continue;
        };
        if k >= buckets {
            continue;
        }
        let p = by
            .entry((r.customer_id.clone(), r.currency.clone()))
            .or_insert_with(|| Purchases {
                customer_id: r.customer_id,
                currency: r.currency,
                counts: vec![0; buckets],
                amounts: vec![0; buckets],
            });
        p.counts[k] += r.n;
        p.amounts[k] += r.amount;
    }
    by.into_values().collect()
}

fn tickets_of_rows(rows: Vec<TicketsRow>, buckets: usize) -> Vec<Tickets> {
    let mut by: HashMap<String, Tickets> = HashMap::new();
    for r in rows {
        let Ok(k) = usize::try_from(r.bucket) else {
            continue;
        };
        if k >= buckets {
            continue;
        }
        let t = by.entry(r.customer_id.clone()).or_insert_with(|| Tickets {
            customer_id: r.customer_id,
            complaints: vec![0; buckets],
            resolved: vec![0; buckets],
            resolution_micros: vec![0.0; buckets],
        });
        t.complaints[k] += r.complaints;
        t.resolved[k] += r.resolved;
        t.resolution_micros[k] += r.resolution_micros;
    }
    by.into_values().collect()
}

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
        let bounds = bucket_bounds(start, end, granularity)?;
        let buckets = bounds.len() - 1;
        let postgres = self.is_postgres();
        let feedback_q = feedback_sql(&bounds, group_by, postgres);
        let customers_q = customers_sql(group_by);
        let purchases_q = purchases_rows_sql(&bounds, postgres);
        let tickets_q = tickets_rows_sql(&bounds, postgres);
        let parts = if postgres {
            // One connection per query, all at once: the scans are independent.
            std::thread::scope(|s| {
                let feedback = s.spawn(|| self.analytic_rows::<FeedbackAgg>(&feedback_q));
                let customers = s.spawn(|| self.analytic_rows::<CustomerSpan>(&customers_q));
                let tickets = s.spawn(|| self.analytic_rows::<TicketsRow>(&tickets_q));
                let purchases = self.analytic_rows::<PurchasesRow>(&purchases_q);
                Ok::<_, StoreError>(Parts {
                    feedback: joined(feedback.join())?,
                    customers: joined(customers.join())?,
                    tickets: tickets_of_rows(joined(tickets.join())?, buckets),
                    purchases: purchases_of_rows(purchases?, buckets),
                })
            })?
        } else {
            Parts {
                feedback: self.analytic_rows(&feedback_q)?,
                customers: self.analytic_rows(&customers_q)?,
                purchases: purchases_of_rows(self.analytic_rows(&purchases_q)?, buckets),
                tickets: tickets_of_rows(self.analytic_rows(&tickets_q)?, buckets),
            }
        };
        Ok(assemble(&bounds, parts))
    }

    /// Runs an aggregate query; on PostgreSQL with enough sort and hash memory for the
    /// scan (the 4 MB default spilled to disk), set for this transaction only.
    fn analytic_rows<T>(&self, sql: &str) -> Result<Vec<T>>
    where
        T: QueryableByName<diesel::pg::Pg> + QueryableByName<diesel::sqlite::Sqlite> + 'static,
    {
        match &self.pool {
            DbPool::Postgres(_) => self.pg_rows(sql),
            DbPool::Sqlite(pool) => {
                let mut conn = pool.get()?;
                Ok(diesel::sql_query(sql).load::<T>(&mut *conn)?)
            }
        }
    }

    fn pg_rows<T: QueryableByName<diesel::pg::Pg> + 'static>(&self, sql: &str) -> Result<Vec<T>> {
        let DbPool::Postgres(pool) = &self.pool else {
            return Err(StoreError::Internal("a PostgreSQL query on SQLite".into()));
        };
        let mut conn = pool.get()?;
        let conn: &mut diesel::pg::PgConnection = &mut conn;
        conn.transaction(|conn| {
            diesel::sql_query(ANALYTIC_WORK_MEM).execute(conn)?;
            diesel::sql_query(sql).load::<T>(conn)
        })
        .map_err(StoreError::from)
    }
}

/// Per query, for this transaction only.
const ANALYTIC_WORK_MEM: &str = "SET LOCAL work_mem = '64MB'";

/// A query thread's result; a panic in one becomes an error, not a crash.
fn joined<T>(r: std::thread::Result<Result<T>>) -> Result<T> {
    r.unwrap_or_else(|_| Err(StoreError::Internal("a metrics query panicked".into())))
}

/// The bucket's metrics for a group, created on first use; `None` for bucket 0 (the
/// one before the period, only a base for retention) and anything outside.
fn at<'a>(
    out: &'a mut BTreeMap<(usize, String), BucketMetrics>,
    bounds: &[Micros],
    k: usize,
    grp: &str,
) -> Option<&'a mut BucketMetrics> {
    if k == 0 || k + 1 >= bounds.len() {
        return None;
    }
    Some(
        out.entry((k, grp.to_owned()))
            .or_insert_with(|| BucketMetrics {
                start: bounds[k],
                end: bounds[k + 1],
                group: grp.to_owned(),
                ..BucketMetrics::default()
            }),
    )
}

/// Puts the parts together per (bucket, group).
fn assemble(bounds: &[Micros], parts: Parts) -> Vec<BucketMetrics> {
    let buckets = bounds.len() - 1;
    let mut out: BTreeMap<(usize, String), BucketMetrics> = BTreeMap::new();
    for f in &parts.feedback {
        let Ok(k) = usize::try_from(f.bucket) else {
            continue;
        };
        if let Some(m) = at(&mut out, bounds, k, &f.grp) {
            m.nps_answers += f.nps_answers;
            m.promoters += f.promoters;
            m.detractors += f.detractors;
            m.csat_answers += f.csat_answers;
            m.csat_sum += f.csat_sum;
        }
    }
    let spans: HashMap<&str, &CustomerSpan> = parts
        .customers
        .iter()
        .map(|c| (c.customer_id.as_str(), c))
        .collect();
    let none = "none".to_owned();
    let group_of = |id: &str| spans.get(id).map_or(&none, |c| &c.grp);
    for t in &parts.tickets {
        let grp = group_of(&t.customer_id);
        for k in 1..buckets.min(t.complaints.len()) {
            let (complaints, resolved) = (t.complaints[k], t.resolved[k]);
            if complaints == 0 && resolved == 0 {
                continue;
            }
            if let Some(m) = at(&mut out, bounds, k, grp) {
                m.complaints += complaints;
                m.complaining_customers += i64::from(complaints > 0);
                m.resolved_interactions += resolved;
                m.resolution_micros += t.resolution_micros.get(k).copied().unwrap_or(0.0);
            }
        }
    }
    // A customer's purchases in every currency, per bucket.
    let mut counts: HashMap<&str, Vec<i64>> = HashMap::new();
    for p in &parts.purchases {
        let c = counts
            .entry(p.customer_id.as_str())
            .or_insert_with(|| vec![0; buckets]);
        for (k, n) in p.counts.iter().enumerate().take(buckets) {
            c[k] += n;
        }
        let grp = group_of(&p.customer_id);
        for k in 1..buckets.min(p.amounts.len()) {
            if p.counts.get(k).copied().unwrap_or(0) == 0 {
                continue;
            }
            if let Some(m) = at(&mut out, bounds, k, grp) {
                *m.revenue_minor.entry(p.currency.clone()).or_default() += p.amounts[k];
            }
        }
    }
    for (id, c) in &counts {
        let span = spans.get(id);
        let contractual = span.is_some_and(|s| s.contractual);
        let grp = group_of(id);
        for k in 1..buckets {
            let (before, now) = (c[k - 1] > 0, c[k] > 0);
            if !now && (contractual || !before) {
                continue;
            }
            if let Some(m) = at(&mut out, bounds, k, grp) {
                if now {
                    m.buyers += 1;
                    m.repeat_buyers += i64::from(c[k] > 1);
                }
                // Non-contractual retention: last bucket's buyers are this one's base;
                // those who did not buy again left.
                if !contractual && before {
                    m.customers_at_start += 1;
                    m.churned += i64::from(!now);
                }
            }
        }
    }
    for c in &parts.customers {
        for k in 1..buckets {
            let (start, end) = (bounds[k], bounds[k + 1]);
            if c.since >= end || c.churn_time.is_some_and(|t| t < start) {
                continue;
            }
            let Some(m) = at(&mut out, bounds, k, &c.grp) else {
                continue;
            };
            m.customers_on_books += 1;
            if c.contractual && c.since < start {
                m.customers_at_start += 1;
                if c.churn_time.is_some_and(|t| t < end) {
                    m.churned += 1;
                }
            }
        }
    }
    out.into_values().collect()
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

    #[test]
    fn sqlite_buckets_are_a_case_chain() {
        assert_eq!(
            bucket_sql("t", &[0, 10, 20], false),
            "CASE WHEN t < 10 THEN 0 WHEN t < 20 THEN 1 END"
        );
        assert_eq!(
            bucket_sql("t", &[0, 10, 20], true),
            "CAST(width_bucket(t, '{0,10,20}'::bigint[]) - 1 AS BIGINT)"
        );
    }
}
