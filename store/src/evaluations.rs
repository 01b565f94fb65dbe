//! Evaluation snapshots: the latest scoring of each customer, bulk-written by a scoring
//! run and read back one at a time, as an at-risk ranking, or as per-segment summaries.

use std::collections::HashMap;

use diesel::dsl::{avg, count_star};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Double, Integer, Nullable, Text};
use serde::{Deserialize, Serialize};
use vitals_domain::time::Micros;

use crate::db::{Store, WriteTransaction, with_conn};
use crate::error::{Result, StoreError};
use crate::followups::{CustomerSignal, OpenFollowUps, new_follow_up_rows};
use crate::page::{self, Page};
use crate::schema::evaluations;

/// The columns of `evaluations` in the order `upsert_evaluations` binds them.
const COLUMN_NAMES: [&str; 17] = [
    "customer_id",
    "external_id",
    "as_of",
    "computed_at",
    "churn_probability",
    "value",
    "expected_loss",
    "segment_id",
    "tier",
    "composite",
    "churn_version",
    "segments_version",
    "scheme_version",
    "body",
    "value_lost",
    "currency",
    "lifecycle_stage",
];
/// Bind parameters per row of an upsert.
const COLUMNS: usize = COLUMN_NAMES.len();
/// Rows per upsert statement on SQLite: its bind-parameter limit (32766) over the columns.
const SQLITE_CHUNK: usize = 32_766 / COLUMNS;
/// Rows per upsert statement on PostgreSQL: its bind-parameter limit (65535) over the columns.
const PG_CHUNK: usize = 65_535 / COLUMNS;
/// Ids per `IN (...)` list: one bind parameter each, under SQLite's 32,766.
const ID_LIST_CHUNK: usize = 20_000;
const _: () = assert!(SQLITE_CHUNK * COLUMNS <= 32_766 && PG_CHUNK * COLUMNS <= 65_535);

/// One customer's latest evaluation. The sortable and filterable parts are columns; the
/// full evaluation is `body`, JSON the store never looks into.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = evaluations)]
pub struct EvaluationRecord {
    pub customer_id: String,
    pub external_id: String,
    /// The time the evaluation describes the customer at.
    pub as_of: Micros,
    /// When it was computed.
    pub computed_at: Micros,
    pub churn_probability: Option<f64>,
    /// The customer's value that `expected_loss` is based on.
    pub value: Option<f64>,
    /// `churn_probability * value`, computed by the caller.
    pub expected_loss: Option<f64>,
    pub segment_id: Option<i32>,
    pub tier: Option<String>,
    pub composite: Option<f64>,
    pub churn_version: Option<i64>,
    pub segments_version: Option<i64>,
    pub scheme_version: i64,
    pub body: String,
    /// What leaving took with a lapsed or churned customer; NULL for those still with us.
    pub value_lost: Option<f64>,
    /// The currency of the amounts (ISO 4217); NULL when the customer has none.
    pub currency: Option<String>,
    /// new, active, at_risk, dormant, churned or won_back.
    pub lifecycle_stage: Option<String>,
}

/// What `list_at_risk` ranks by, highest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AtRiskOrder {
    Probability,
    /// Rows without an expected loss are left out.
    ExpectedLoss,
    /// The win-back list: only lapsed and churned customers (rows with a value lost), by
    /// the value lost with them.
    ValueLost,
}

/// A request for one page of the at-risk ranking.
#[derive(Debug, Clone, PartialEq)]
pub struct AtRiskQuery {
    pub order: AtRiskOrder,
    /// Only customers at or above this probability, in [0, 1].
    pub min_probability: Option<f64>,
    pub segment_id: Option<i32>,
    pub tier: Option<String>,
    /// Only snapshots in this lifecycle stage.
    pub lifecycle_stage: Option<String>,
    /// Already resolved by the caller; 0 means the default.
    pub page_size: usize,
    pub page_token: Option<String>,
}

/// The overview's aggregates of the stored snapshots (`Store::risk_summary`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RiskSummary {
    /// Customers with a churn probability in [i/10, (i+1)/10); the last bin includes 1.
    pub probability_bins: [u64; 10],
    /// Evaluated customers by tier, by tier name.
    pub tiers: Vec<(String, u64)>,
    /// Customers with an expected loss, per currency ("" for none).
    pub value_at_risk: Vec<CurrencyAtRisk>,
}

/// What customers still with us are worth, and stand to take with them, in one currency.
#[derive(Debug, Clone, PartialEq)]
pub struct CurrencyAtRisk {
    pub currency: String,
    pub customers: u64,
    /// Their values summed.
    pub value: f64,
    /// Their expected losses (probability × value) summed: the value at risk.
    pub expected_loss: f64,
}

#[derive(QueryableByName)]
struct BinRow {
    #[diesel(sql_type = Integer)]
    bin: i32,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct TierRow {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct AtRiskRow {
    #[diesel(sql_type = Text)]
    currency: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
    #[diesel(sql_type = Double)]
    value: f64,
    #[diesel(sql_type = Double)]
    loss: f64,
}

/// Aggregates of the stored snapshots of one segment.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentSummary {
    pub segment_id: i32,
    pub customers: u64,
    /// Over the customers with a probability; `None` when none has one.
    pub mean_probability: Option<f64>,
    /// Over the customers with a value; `None` when none has one.
    pub mean_value: Option<f64>,
}

/// A segment id, its row count, mean probability and mean value, as the database returns them.
type SegmentRow = (Option<i32>, i64, Option<f64>, Option<f64>);

/// What an at-risk page token is bound to. Floats travel as their bits: JSON's decimal
/// form need not parse back to the same f64, and an off-by-one-ulp key would skip or
/// repeat rows, an off-by-one-ulp filter would refuse a good token.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct AtRiskFilter {
    order: AtRiskOrder,
    min_probability: Option<u64>,
    segment_id: Option<i32>,
    tier: Option<String>,
    #[serde(default)]
    lifecycle_stage: Option<String>,
}

/// The last row served: its sort value's bits and its customer id.
type AtRiskKey = (u64, String);

/// `INSERT ... VALUES (...), ... ON CONFLICT (customer_id) DO UPDATE` for `rows` rows, in
/// SQL both backends accept. Written out because diesel's typed upsert cannot take many
/// rows at once on SQLite, and one statement text keeps one code path.
fn upsert_sql(rows: usize, postgres: bool) -> String {
    use std::fmt::Write;
    let mut sql = format!(
        "INSERT INTO evaluations ({}) VALUES ",
        COLUMN_NAMES.join(", ")
    );
    let mut n = 0;
    for i in 0..rows {
        sql.push_str(if i == 0 { "(" } else { ", (" });
        for c in 0..COLUMNS {
            if c > 0 {
                sql.push_str(", ");
            }
            n += 1;
            if postgres {
                let _ = write!(sql, "${n}");
            } else {
                sql.push('?');
            }
        }
        sql.push(')');
    }
    sql.push_str(" ON CONFLICT (customer_id) DO UPDATE SET ");
    for (i, c) in COLUMN_NAMES.iter().skip(1).enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        let _ = write!(sql, "{c} = excluded.{c}");
    }
    sql
}

/// Keeps the last snapshot of each customer, in first-seen order: PostgreSQL refuses an
/// `ON CONFLICT DO UPDATE` statement that touches one row twice.
fn last_per_customer(rows: &[EvaluationRecord]) -> Vec<&EvaluationRecord> {
    let mut index: HashMap<&str, usize> = HashMap::with_capacity(rows.len());
    let mut kept: Vec<&EvaluationRecord> = Vec::with_capacity(rows.len());
    for row in rows {
        match index.get(row.customer_id.as_str()) {
            Some(&i) => kept[i] = row,
            None => {
                index.insert(&row.customer_id, kept.len());
                kept.push(row);
            }
        }
    }
    kept
}

/// Refuses non-finite numbers: SQLite stores NaN as NULL and PostgreSQL sorts it above
/// every number, so either would corrupt the ranking.
fn check_finite(rows: &[&EvaluationRecord]) -> Result<()> {
    for row in rows {
        for (field, v) in [
            ("churn_probability", row.churn_probability),
            ("value", row.value),
            ("expected_loss", row.expected_loss),
            ("composite", row.composite),
            ("value_lost", row.value_lost),
        ] {
            if let Some(v) = v
                && !v.is_finite()
            {
                return Err(StoreError::invalid(
                    field,
                    format!(
                        "must be a finite number, got {v} for customer {:?}",
                        row.customer_id
                    ),
                ));
            }
        }
    }
    Ok(())
}

impl Store {
    /// Inserts or replaces the snapshots (keyed by customer_id) in one transaction, so a
    /// scoring run is visible whole or not at all; returns the rows written. A customer
    /// given twice keeps the later snapshot. Multi-row `INSERT ... ON CONFLICT DO UPDATE`
    /// statements as large as each backend's bind-parameter limit allows: the fewer
    /// statements, the fewer round trips and plans.
    pub fn upsert_evaluations(&self, rows: &[EvaluationRecord]) -> Result<usize> {
        Ok(self.upsert_evaluations_opening(rows, &[], 0, 0)?.0)
    }

    /// The stored churn probability of each of `customer_ids` that has one.
    pub fn stored_probabilities(&self, customer_ids: &[String]) -> Result<HashMap<String, f64>> {
        let mut out = HashMap::with_capacity(customer_ids.len());
        for chunk in customer_ids.chunks(ID_LIST_CHUNK) {
            let rows: Vec<(String, Option<f64>)> = with_conn!(self, conn => {
                evaluations::table
                    .filter(evaluations::customer_id.eq_any(chunk))
                    .select((evaluations::customer_id, evaluations::churn_probability))
                    .load(conn)?
            });
            out.extend(rows.into_iter().filter_map(|(id, p)| Some((id, p?))));
        }
        Ok(out)
    }

    /// Upserts snapshots and opens the follow-ups their refresh signalled, in one
    /// transaction. Returns (snapshots written, tasks opened).
    pub fn upsert_evaluations_opening(
        &self,
        rows: &[EvaluationRecord],
        signals: &[CustomerSignal],
        rules_version: i64,
        now: Micros,
    ) -> Result<(usize, usize)> {
        let rows = last_per_customer(rows);
        check_finite(&rows)?;
        if rows.is_empty() && signals.is_empty() {
            return Ok((0, 0));
        }
        let chunk_size = if self.is_postgres() {
            PG_CHUNK
        } else {
            SQLITE_CHUNK
        };
        let postgres = self.is_postgres();
        with_conn!(self, conn => {
            conn.write_transaction(|conn| {
                let mut written = 0;
                for chunk in rows.chunks(chunk_size) {
                    let mut q = diesel::sql_query(upsert_sql(chunk.len(), postgres)).into_boxed();
                    for r in chunk {
                        q = q
                            .bind::<Text, _>(r.customer_id.as_str())
                            .bind::<Text, _>(r.external_id.as_str())
                            .bind::<BigInt, _>(r.as_of)
                            .bind::<BigInt, _>(r.computed_at)
                            .bind::<Nullable<Double>, _>(r.churn_probability)
                            .bind::<Nullable<Double>, _>(r.value)
                            .bind::<Nullable<Double>, _>(r.expected_loss)
                            .bind::<Nullable<Integer>, _>(r.segment_id)
                            .bind::<Nullable<Text>, _>(r.tier.as_deref())
                            .bind::<Nullable<Double>, _>(r.composite)
                            .bind::<Nullable<BigInt>, _>(r.churn_version)
                            .bind::<Nullable<BigInt>, _>(r.segments_version)
                            .bind::<BigInt, _>(r.scheme_version)
                            .bind::<Text, _>(r.body.as_str())
                            .bind::<Nullable<Double>, _>(r.value_lost)
                            .bind::<Nullable<Text>, _>(r.currency.as_deref())
                            .bind::<Nullable<Text>, _>(r.lifecycle_stage.as_deref());
                    }
                    written += q.execute(conn)?;
                }
                let opened = if signals.is_empty() {
                    0
                } else {
                    conn.open_follow_ups(&new_follow_up_rows(signals, rules_version, now))?
                };
                Ok((written, opened))
            })
        })
    }

    pub fn get_evaluation(&self, customer_id: &str) -> Result<Option<EvaluationRecord>> {
        with_conn!(self, conn => {
            Ok(evaluations::table
                .find(customer_id)
                .select(EvaluationRecord::as_select())
                .first(conn)
                .optional()?)
        })
    }

    /// Snapshots with a churn probability, highest first (by probability or by expected
    /// loss), ties by customer_id ascending. Keyset-paginated: the token holds the last
    /// row's sort value and id, and the filters, so it is refused under other filters.
    pub fn list_at_risk(&self, query: &AtRiskQuery) -> Result<Page<EvaluationRecord>> {
        if let Some(p) = query.min_probability
            && !(0.0..=1.0).contains(&p)
        {
            return Err(StoreError::invalid(
                "min_probability",
                format!("must be between 0 and 1, got {p}"),
            ));
        }
        // The conventions of page::page_size: 0 is the default, above the maximum is refused.
        let page_size = page::page_size(i32::try_from(query.page_size).unwrap_or(i32::MAX))?;
        let filter = AtRiskFilter {
            order: query.order,
            min_probability: query.min_probability.map(f64::to_bits),
            segment_id: query.segment_id,
            tier: query.tier.clone(),
            lifecycle_stage: query.lifecycle_stage.clone(),
        };
        let after: Option<AtRiskKey> = match &query.page_token {
            Some(token) => page::decode(token, &filter)?,
            None => None,
        };
        let after = after.map(|(bits, id)| (f64::from_bits(bits), id));
        let limit = i64::try_from(page_size + 1).unwrap_or(i64::MAX);
        let rows: Vec<EvaluationRecord> = with_conn!(self, conn => {
            let mut q = evaluations::table
                .select(EvaluationRecord::as_select())
                .limit(limit)
                .into_boxed();
            // Customers still with us have a churn probability; those who lapsed or
            // churned have a value lost instead: the two lists never share a customer.
            q = match query.order {
                AtRiskOrder::ValueLost => q.filter(evaluations::value_lost.is_not_null()),
                _ => q.filter(evaluations::churn_probability.is_not_null()),
            };
            if let Some(min) = query.min_probability {
                q = q.filter(evaluations::churn_probability.ge(min));
            }
            if let Some(segment) = query.segment_id {
                q = q.filter(evaluations::segment_id.eq(segment));
            }
            if let Some(tier) = &query.tier {
                q = q.filter(evaluations::tier.eq(tier.clone()));
            }
            if let Some(stage) = &query.lifecycle_stage {
                q = q.filter(evaluations::lifecycle_stage.eq(stage.clone()));
            }
            // The seek is written `v <= last AND (v < last OR id > last_id)`: the first
            // half bounds the index range, the second drops the rows already served.
            match query.order {
                AtRiskOrder::Probability => {
                    q = q.order((
                        evaluations::churn_probability.desc(),
                        evaluations::customer_id.asc(),
                    ));
                    if let Some((v, id)) = &after {
                        q = q.filter(
                            evaluations::churn_probability.le(*v).and(
                                evaluations::churn_probability
                                    .lt(*v)
                                    .or(evaluations::customer_id.gt(id.clone())),
                            ),
                        );
                    }
                }
                AtRiskOrder::ExpectedLoss => {
                    q = q
                        .filter(evaluations::expected_loss.is_not_null())
                        .order((
                            evaluations::expected_loss.desc(),
                            evaluations::customer_id.asc(),
                        ));
                    if let Some((v, id)) = &after {
                        q = q.filter(
                            evaluations::expected_loss.le(*v).and(
                                evaluations::expected_loss
                                    .lt(*v)
                                    .or(evaluations::customer_id.gt(id.clone())),
                            ),
                        );
                    }
                }
                AtRiskOrder::ValueLost => {
                    q = q.order((
                        evaluations::value_lost.desc(),
                        evaluations::customer_id.asc(),
                    ));
                    if let Some((v, id)) = &after {
                        q = q.filter(
                            evaluations::value_lost.le(*v).and(
                                evaluations::value_lost
                                    .lt(*v)
                                    .or(evaluations::customer_id.gt(id.clone())),
                            ),
                        );
                    }
                }
            }
            q.load(conn)?
        });
        let order = query.order;
        Ok(page::paginate(rows, page_size, &filter, |r| {
            let v = match order {
                AtRiskOrder::Probability => r.churn_probability,
                AtRiskOrder::ExpectedLoss => r.expected_loss,
                AtRiskOrder::ValueLost => r.value_lost,
            };
            // Both are non-NULL in every row served (the query filters on them).
            (v.unwrap_or_default().to_bits(), r.customer_id.clone())
        }))
    }

    /// Per segment (rows without one are left out): how many customers, their mean churn
    /// probability and mean value, ordered by segment id.
    ///
    /// Only snapshots assigned by `segments_version` count: segment ids of another
    /// segmentation name other groups.
    pub fn segment_summaries(&self, segments_version: i64) -> Result<Vec<SegmentSummary>> {
        let rows: Vec<SegmentRow> = with_conn!(self, conn => {
            evaluations::table
                .filter(evaluations::segment_id.is_not_null())
                .filter(evaluations::segments_version.eq(segments_version))
                .group_by(evaluations::segment_id)
                .select((
                    evaluations::segment_id,
                    count_star(),
                    avg(evaluations::churn_probability),
                    avg(evaluations::value),
                ))
                .order(evaluations::segment_id.asc())
                .load(conn)?
        });
        Ok(rows
            .into_iter()
            .filter_map(|(segment, n, p, v)| {
                Some(SegmentSummary {
                    segment_id: segment?,
                    customers: u64::try_from(n).unwrap_or(0),
                    mean_probability: p,
                    mean_value: v,
                })
            })
            .collect())
    }

    /// The overview's aggregates of the stored snapshots: customers still with us by churn
    /// probability in ten bins, everyone evaluated by tier, and value at risk per
    /// currency. Three grouped queries; nothing is sent row by row.
    pub fn risk_summary(&self) -> Result<RiskSummary> {
        // A CASE rather than FLOOR or a cast: SQLite has no FLOOR by default, and
        // PostgreSQL rounds a float cast to integer instead of truncating it.
        const BINS: &str = "SELECT CASE \
            WHEN churn_probability < 0.1 THEN 0 WHEN churn_probability < 0.2 THEN 1 \
            WHEN churn_probability < 0.3 THEN 2 WHEN churn_probability < 0.4 THEN 3 \
            WHEN churn_probability < 0.5 THEN 4 WHEN churn_probability < 0.6 THEN 5 \
            WHEN churn_probability < 0.7 THEN 6 WHEN churn_probability < 0.8 THEN 7 \
            WHEN churn_probability < 0.9 THEN 8 ELSE 9 END AS bin, COUNT(*) AS n \
            FROM evaluations WHERE churn_probability IS NOT NULL GROUP BY 1";
        const TIERS: &str = "SELECT tier AS name, COUNT(*) AS n FROM evaluations \
            WHERE tier IS NOT NULL GROUP BY tier ORDER BY tier";
        const AT_RISK: &str = "SELECT COALESCE(currency, '') AS currency, COUNT(*) AS n, \
            COALESCE(SUM(value), 0) AS value, COALESCE(SUM(expected_loss), 0) AS loss \
            FROM evaluations WHERE expected_loss IS NOT NULL GROUP BY 1 ORDER BY 1";
        let (bins, tiers, at_risk): (Vec<BinRow>, Vec<TierRow>, Vec<AtRiskRow>) = with_conn!(self, conn => {
            (
                diesel::sql_query(BINS).load(conn)?,
                diesel::sql_query(TIERS).load(conn)?,
                diesel::sql_query(AT_RISK).load(conn)?,
            )
        });
        let mut summary = RiskSummary::default();
        for b in bins {
            let i = usize::try_from(b.bin).unwrap_or(0).min(9);
            summary.probability_bins[i] += u64::try_from(b.n).unwrap_or(0);
        }
        summary.tiers = tiers
            .into_iter()
            .map(|t| (t.name, u64::try_from(t.n).unwrap_or(0)))
            .collect();
        summary.value_at_risk = at_risk
            .into_iter()
            .map(|r| CurrencyAtRisk {
                currency: r.currency,
                customers: u64::try_from(r.n).unwrap_or(0),
                value: r.value,
                expected_loss: r.loss,
            })
            .collect();
        Ok(summary)
    }

    /// How many customers have a stored snapshot.
    pub fn count_evaluations(&self) -> Result<u64> {
        let n: i64 = with_conn!(self, conn => evaluations::table.count().get_result(conn)?);
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, p: f64) -> EvaluationRecord {
        EvaluationRecord {
            customer_id: id.into(),
            external_id: format!("ext-{id}"),
            as_of: 0,
            computed_at: 0,
            churn_probability: Some(p),
            value: None,
            expected_loss: None,
            segment_id: None,
            tier: None,
            composite: None,
            churn_version: None,
            segments_version: None,
            scheme_version: 1,
            body: "{}".into(),
            value_lost: None,
            currency: None,
            lifecycle_stage: None,
        }
    }

    #[test]
    fn duplicates_keep_the_last_snapshot_in_first_seen_order() {
        let rows = [record("a", 0.1), record("b", 0.2), record("a", 0.3)];
        let kept = last_per_customer(&rows);
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[0].customer_id, "a");
        assert_eq!(kept[0].churn_probability, Some(0.3));
        assert_eq!(kept[1].customer_id, "b");
    }

    #[test]
    fn non_finite_numbers_are_refused() {
        let bad = record("a", f64::NAN);
        assert!(check_finite(&[&bad]).is_err());
        assert!(check_finite(&[&record("a", 0.5)]).is_ok());
    }

    #[test]
    fn upsert_sql_numbers_every_parameter() {
        let pg = upsert_sql(2, true);
        assert!(pg.contains("($18, $19,"), "{pg}");
        assert!(
            pg.contains(
                "$34) ON CONFLICT (customer_id) DO UPDATE SET external_id = excluded.external_id"
            ),
            "{pg}"
        );
        assert!(!pg.contains("customer_id = excluded"), "{pg}");
        let sqlite = upsert_sql(2, false);
        assert_eq!(sqlite.matches('?').count(), 2 * COLUMNS);
    }
}
