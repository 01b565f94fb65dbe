//! Portfolio metrics: NPS, CSAT, retention and churn, repeat purchases, complaints,
//! resolution time and revenue, per time bucket and group, aggregated in the database.
//!
//! Each source table is scanned once, grouped by (bucket, group), by one query; on
//! PostgreSQL the four queries run at once on their own connections. A bucket is found
//! from a list of boundaries computed here (calendar weeks and months in UTC):
//! `width_bucket` (a binary search) on PostgreSQL, a `CASE` chain on SQLite.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Double, Nullable, Text};
use vitals_engine::time::{MICROS_PER_DAY, Micros};

use crate::db::{Store, with_conn};
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

#[derive(QueryableByName)]
struct InteractionAgg {
    #[diesel(sql_type = BigInt)]
    bucket: i64,
    #[diesel(sql_type = Text)]
    grp: String,
    #[diesel(sql_type = BigInt)]
    complaints: i64,
    #[diesel(sql_type = BigInt)]
    complaining_customers: i64,
    #[diesel(sql_type = BigInt)]
    resolved: i64,
    #[diesel(sql_type = Nullable<Double>)]
    resolution_micros: Option<f64>,
}

#[derive(QueryableByName)]
struct PurchaseAgg {
    #[diesel(sql_type = BigInt)]
    bucket: i64,
    #[diesel(sql_type = Text)]
    grp: String,
    #[diesel(sql_type = BigInt)]
    buyers: i64,
    #[diesel(sql_type = BigInt)]
    repeat_buyers: i64,
    /// Non-contractual buyers, and those of them who bought in the bucket before too.
    #[diesel(sql_type = BigInt)]
    nc_buyers: i64,
    #[diesel(sql_type = BigInt)]
    nc_returning: i64,
}

#[derive(QueryableByName)]
struct RevenueAgg {
    #[diesel(sql_type = BigInt)]
    bucket: i64,
    #[diesel(sql_type = Text)]
    grp: String,
    #[diesel(sql_type = Text)]
    currency: String,
    #[diesel(sql_type = BigInt)]
    amount: i64,
}

#[derive(QueryableByName)]
struct CustomerSpan {
    #[diesel(sql_type = Text)]
    grp: String,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    contractual: bool,
    #[diesel(sql_type = BigInt)]
    since: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    churn_time: Option<i64>,
}

/// The four aggregates and the customer spans, before they are put together.
struct Parts {
    feedback: Vec<FeedbackAgg>,
    interactions: Vec<InteractionAgg>,
    purchases: Vec<PurchaseAgg>,
    revenue: Vec<RevenueAgg>,
    customers: Vec<CustomerSpan>,
}

struct Queries {
    feedback: String,
    interactions: String,
    purchases: String,
    revenue: String,
    customers: String,
}

fn queries(bounds: &[Micros], group_by: GroupBy, postgres: bool) -> Queries {
    let lo = bounds[0];
    let first = bounds[1];
    let hi = bounds[bounds.len() - 1];
    let (grp, join) = group_sql(group_by);
    let b = |col: &str| bucket_sql(col, bounds, postgres);
    let feedback = format!(
        "SELECT {bucket} AS bucket, {grp} AS grp,
                COUNT(CASE WHEN x.kind = 'nps' THEN 1 END) AS nps_answers,
                COUNT(CASE WHEN x.kind = 'nps' AND x.score >= 9 THEN 1 END) AS promoters,
                COUNT(CASE WHEN x.kind = 'nps' AND x.score <= 6 THEN 1 END) AS detractors,
                COUNT(CASE WHEN x.kind = 'csat' THEN 1 END) AS csat_answers,
                CAST(COALESCE(SUM(CASE WHEN x.kind = 'csat' THEN x.score END), 0) AS BIGINT) AS csat_sum
         FROM feedback x{join}
         WHERE x.time >= {first} AND x.time < {hi} AND x.kind IN ('nps', 'csat')
         GROUP BY 1, 2",
        bucket = b("x.time"),
    );
    // A ticket's events (opening, later resolution) count as one contact, opened at
    // its first event.
    let interactions = format!(
        "SELECT {bucket} AS bucket, {grp} AS grp,
                CAST(SUM(x.complaint) AS BIGINT) AS complaints,
                COUNT(DISTINCT CASE WHEN x.complaint = 1 THEN x.customer_id END) AS complaining_customers,
                COUNT(x.resolved) AS resolved,
                SUM(CAST(x.resolved - x.opened AS DOUBLE PRECISION)) AS resolution_micros
         FROM (SELECT customer_id, MIN(time) AS opened, MAX(resolved_time) AS resolved,
                      MAX(CASE WHEN kind = 'complaint' THEN 1 ELSE 0 END) AS complaint
               FROM interactions
               WHERE time >= {first} AND time < {hi}
               GROUP BY customer_id, CASE WHEN ticket_id = '' THEN event_key ELSE ticket_id END) x{join}
         GROUP BY 1, 2",
        bucket = b("x.opened"),
    );
    // Per customer and bucket, then each bucket's buyers and whether they bought in
    // the bucket before (LAG over the customer's buckets).
    let purchases = format!(
        "SELECT x.bucket AS bucket, {grp} AS grp,
                COUNT(CASE WHEN x.bucket > 0 THEN 1 END) AS buyers,
                COUNT(CASE WHEN x.bucket > 0 AND x.n > 1 THEN 1 END) AS repeat_buyers,
                COUNT(CASE WHEN NOT x.contractual THEN 1 END) AS nc_buyers,
                COUNT(CASE WHEN NOT x.contractual AND x.prev = x.bucket - 1 THEN 1 END) AS nc_returning
         FROM (SELECT t.customer_id, t.bucket, t.n, cc.contractual,
                      LAG(t.bucket) OVER (PARTITION BY t.customer_id ORDER BY t.bucket) AS prev
               FROM (SELECT customer_id, {bucket} AS bucket, COUNT(*) AS n
                     FROM transactions WHERE time >= {lo} AND time < {hi}
                     GROUP BY 1, 2) t
               JOIN customers cc ON cc.id = t.customer_id) x{join}
         GROUP BY 1, 2",
        bucket = b("time"),
    );
    let revenue = format!(
        "SELECT {bucket} AS bucket, {grp} AS grp, x.currency AS currency,
                CAST(SUM(x.amount_minor) AS BIGINT) AS amount
         FROM transactions x{join}
         WHERE x.time >= {first} AND x.time < {hi}
         GROUP BY 1, 2, 3",
        bucket = b("x.time"),
    );
    let customers = format!(
        "SELECT {grp} AS grp, x.contractual AS contractual,
                COALESCE(x.signup_time, x.create_time) AS since, x.churn_time AS churn_time
         FROM (SELECT id AS customer_id, contractual, signup_time, create_time, churn_time
               FROM customers) x{join}",
    );
    Queries {
        feedback,
        interactions,
        purchases,
        revenue,
        customers,
    }
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
        let q = queries(&bounds, group_by, self.is_postgres());
        let parts = if self.is_postgres() {
            // One connection per query, all at once: the scans are independent.
            std::thread::scope(|s| {
                let feedback = s.spawn(|| self.load_rows::<FeedbackAgg>(&q.feedback));
                let interactions = s.spawn(|| self.load_rows::<InteractionAgg>(&q.interactions));
                let revenue = s.spawn(|| self.load_rows::<RevenueAgg>(&q.revenue));
                let customers = s.spawn(|| self.load_rows::<CustomerSpan>(&q.customers));
                let purchases = self.load_rows::<PurchaseAgg>(&q.purchases);
                Ok::<_, StoreError>(Parts {
                    feedback: joined(feedback.join())?,
                    interactions: joined(interactions.join())?,
                    purchases: purchases?,
                    revenue: joined(revenue.join())?,
                    customers: joined(customers.join())?,
                })
            })?
        } else {
            Parts {
                feedback: self.load_rows(&q.feedback)?,
                interactions: self.load_rows(&q.interactions)?,
                purchases: self.load_rows(&q.purchases)?,
                revenue: self.load_rows(&q.revenue)?,
                customers: self.load_rows(&q.customers)?,
            }
        };
        Ok(assemble(&bounds, parts))
    }

    fn load_rows<
        T: QueryableByName<diesel::pg::Pg> + QueryableByName<diesel::sqlite::Sqlite> + 'static,
    >(
        &self,
        sql: &str,
    ) -> Result<Vec<T>> {
        Ok(with_conn!(self, conn => diesel::sql_query(sql).load::<T>(conn)?))
    }
}

/// Puts the parts together per (bucket, group); bucket numbers are `bounds` indexes.
/// A query thread's result; a panic in one becomes an error, not a crash.
fn joined<T>(r: std::thread::Result<Result<T>>) -> Result<T> {
    r.unwrap_or_else(|_| Err(StoreError::Internal("a metrics query panicked".into())))
}

fn assemble(bounds: &[Micros], parts: Parts) -> Vec<BucketMetrics> {
    let buckets = bounds.len() - 1;
    let mut out: BTreeMap<(i64, String), BucketMetrics> = BTreeMap::new();
    fn at<'a>(
        out: &'a mut BTreeMap<(i64, String), BucketMetrics>,
        bounds: &[Micros],
        bucket: i64,
        grp: &str,
    ) -> Option<&'a mut BucketMetrics> {
        let k = usize::try_from(bucket)
            .ok()
            .filter(|k| (1..bounds.len() - 1).contains(k))?;
        Some(
            out.entry((bucket, grp.to_owned()))
                .or_insert_with(|| BucketMetrics {
                    start: bounds[k],
                    end: bounds[k + 1],
                    group: grp.to_owned(),
                    ..BucketMetrics::default()
                }),
        )
    }
    for f in &parts.feedback {
        if let Some(m) = at(&mut out, bounds, f.bucket, &f.grp) {
            m.nps_answers = f.nps_answers;
            m.promoters = f.promoters;
            m.detractors = f.detractors;
            m.csat_answers = f.csat_answers;
            m.csat_sum = f.csat_sum;
        }
    }
    for i in &parts.interactions {
        if let Some(m) = at(&mut out, bounds, i.bucket, &i.grp) {
            m.complaints = i.complaints;
            m.complaining_customers = i.complaining_customers;
            m.resolved_interactions = i.resolved;
            m.resolution_micros = i.resolution_micros.unwrap_or(0.0);
        }
    }
    // Non-contractual retention: the buyers of bucket k-1 are bucket k's base, those of
    // them who bought in k stayed.
    let nc_buyers: HashMap<(i64, &str), i64> = parts
        .purchases
        .iter()
        .map(|p| ((p.bucket, p.grp.as_str()), p.nc_buyers))
        .collect();
    let mut nc_base: Vec<(i64, String, i64)> = nc_buyers
        .iter()
        .map(|((b, g), n)| (b + 1, (*g).to_owned(), *n))
        .collect();
    nc_base.sort();
    for (bucket, grp, base) in nc_base {
        if let Some(m) = at(&mut out, bounds, bucket, &grp) {
            m.customers_at_start += base;
            m.churned += base;
        }
    }
    for p in &parts.purchases {
        if let Some(m) = at(&mut out, bounds, p.bucket, &p.grp) {
            m.buyers = p.buyers;
            m.repeat_buyers = p.repeat_buyers;
            m.churned -= p.nc_returning;
        }
    }
    for r in &parts.revenue {
        if let Some(m) = at(&mut out, bounds, r.bucket, &r.grp) {
            *m.revenue_minor.entry(r.currency.clone()).or_default() += r.amount;
        }
    }
    for c in &parts.customers {
        for k in 1..buckets {
            let (start, end) = (bounds[k], bounds[k + 1]);
            if c.since >= end || c.churn_time.is_some_and(|t| t < start) {
                continue;
            }
            let Some(m) = at(&mut out, bounds, k as i64, &c.grp) else {
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
