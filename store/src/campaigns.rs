//! Campaigns: targets drawn from the stored evaluations with a random control group
//! held out and recorded, and the review that measures their effect on churn.

use std::collections::HashMap;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Nullable, Text};
use vitals_domain::campaign::{Arm, Effect, Evidence, TargetRule, draw_control, review};
use vitals_domain::evaluation::lifecycle::risk_band;
use vitals_domain::time::{MICROS_PER_DAY, Micros, now_micros};

use crate::db::{Store, WriteTransaction, with_conn};
use crate::error::{Result, StoreError};
use crate::page::{self, Page};
use crate::schema::{campaign_members, campaigns, customers, evaluations};

/// A stored evaluation a campaign may target: customer id, churn probability, segment, tier.
type Candidate = (String, Option<f64>, Option<i32>, Option<String>);

/// Members per INSERT: 4 bind parameters each, under SQLite's limit.
const MEMBER_CHUNK: usize = 5_000;

/// A campaign as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignRecord {
    pub id: String,
    pub name: String,
    pub action_kind: String,
    pub target: TargetRule,
    pub holdout_share: f64,
    pub seed: u64,
    pub horizon_days: u32,
    pub draw_time: Micros,
    pub treated_count: i64,
    pub control_count: i64,
    pub actor: String,
    pub create_time: Micros,
}

/// One drawn customer.
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignMember {
    pub customer_id: String,
    /// Held out: left alone, the comparison for the treated.
    pub control: bool,
    pub churn_probability: Option<f64>,
}

/// What CreateCampaign asks for; validated by the caller.
#[derive(Debug, Clone, PartialEq)]
pub struct NewCampaign {
    pub name: String,
    pub action_kind: String,
    pub target: TargetRule,
    pub holdout_share: f64,
    pub seed: u64,
    pub horizon_days: u32,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = campaigns)]
struct CampaignRow {
    id: String,
    name: String,
    action_kind: String,
    target: String,
    holdout_share: f64,
    seed: i64,
    horizon_days: i32,
    draw_time: i64,
    treated_count: i64,
    control_count: i64,
    actor: String,
    create_time: i64,
}

impl CampaignRow {
    fn into_record(self) -> Result<CampaignRecord> {
        let target = serde_json::from_str(&self.target).map_err(|e| {
            StoreError::Internal(format!(
                "campaign {:?} has an unreadable target: {e}",
                self.name
            ))
        })?;
        Ok(CampaignRecord {
            id: self.id,
            name: self.name,
            action_kind: self.action_kind,
            target,
            holdout_share: self.holdout_share,
            // The seed is stored bit for bit in a signed column.
            seed: self.seed as u64,
            horizon_days: u32::try_from(self.horizon_days).unwrap_or(0),
            draw_time: self.draw_time,
            treated_count: self.treated_count,
            control_count: self.control_count,
            actor: self.actor,
            create_time: self.create_time,
        })
    }
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = campaign_members)]
struct MemberRow {
    customer_id: String,
    campaign_id: String,
    control: bool,
    churn_probability: Option<f64>,
}

/// One customer's part in a review: when their window starts and whether they churned.
#[derive(QueryableByName)]
struct ReviewRow {
    #[diesel(sql_type = Bool)]
    control: bool,
    #[diesel(sql_type = Bool)]
    contractual: bool,
    #[diesel(sql_type = Nullable<BigInt>)]
    churn_time: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    first_action: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    cost: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    currency: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    next_purchase: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    band: Option<String>,
}

/// A review's result with what was not counted, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignReview {
    pub campaign: String,
    pub evidence: Evidence,
    pub effect: Effect,
    pub treatment_cost_minor: i64,
    pub currency: String,
    /// Treatment-arm members with no recorded action.
    pub not_reached: u64,
    /// Members whose horizon has not ended by the review's as-of time.
    pub pending: u64,
}

/// How the rows of a review add up, per arm.
struct Tally {
    treated: Arm,
    control: Arm,
    cost: i64,
    currency: String,
    not_reached: u64,
    pending: u64,
}

/// An empty arm.
const NO_ONE: Arm = Arm {
    customers: 0,
    churned: 0,
};

impl Default for Tally {
    fn default() -> Self {
        Self {
            treated: NO_ONE,
            control: NO_ONE,
            cost: 0,
            currency: String::new(),
            not_reached: 0,
            pending: 0,
        }
    }
}

/// Whether a customer whose window starts at `start` churned within `horizon`, or
/// why they are not counted (already gone at the start, or still in the window).
fn outcome(row: &ReviewRow, start: Micros, horizon: Micros, as_of: Micros) -> Outcome {
    if row.contractual && row.churn_time.is_some_and(|c| c <= start) {
        return Outcome::Gone;
    }
    let end = start.saturating_add(horizon);
    if end > as_of {
        return Outcome::Pending;
    }
    let churned = if row.contractual {
        row.churn_time.is_some_and(|c| c > start && c <= end)
    } else {
        row.next_purchase.is_none_or(|t| t > end)
    };
    Outcome::Counted { churned }
}

enum Outcome {
    Gone,
    Pending,
    Counted { churned: bool },
}

fn add(arm: &mut Arm, churned: bool) {
    arm.customers += 1;
    arm.churned += u64::from(churned);
}

/// The window start of every member and, for the control group, the draw time.
const REVIEW_CAMPAIGN_SQL: &str = "\
SELECT m.control AS control, c.contractual AS contractual, c.churn_time AS churn_time,
       a.first_action AS first_action, a.cost AS cost, a.currency AS currency,
       (SELECT MIN(t.time) FROM transactions t
         WHERE t.customer_id = m.customer_id
           AND t.time > CASE WHEN m.control THEN $1 ELSE COALESCE(a.first_action, $1) END
       ) AS next_purchase,
       CAST(NULL AS TEXT) AS band
FROM campaign_members m
JOIN customers c ON c.id = m.customer_id
LEFT JOIN (
    SELECT customer_id, MIN(time) AS first_action, CAST(SUM(cost_minor) AS BIGINT) AS cost,
           MAX(currency) AS currency
    FROM retention_actions WHERE campaign = $2 AND time >= $1 GROUP BY customer_id
) a ON a.customer_id = m.customer_id
WHERE m.campaign_id = $3";

/// Every evaluated customer: those with an uncampaigned action of the kind in the
/// period (treated, from their first), and those with no action at all in it.
const REVIEW_ACTIONS_SQL: &str = "\
SELECT a.first_action IS NULL AS control, c.contractual AS contractual,
       c.churn_time AS churn_time, a.first_action AS first_action, a.cost AS cost,
       a.currency AS currency,
       (SELECT MIN(t.time) FROM transactions t
         WHERE t.customer_id = c.id AND t.time > COALESCE(a.first_action, $1)) AS next_purchase,
       -- The bands of vitals_domain::evaluation::risk_band.
       CASE WHEN e.churn_probability IS NULL THEN NULL
            WHEN e.churn_probability >= 0.5 THEN 'high'
            WHEN e.churn_probability >= 0.25 THEN 'medium'
            ELSE 'low' END AS band
FROM customers c
JOIN evaluations e ON e.customer_id = c.id
LEFT JOIN (
    SELECT customer_id, MIN(time) AS first_action, CAST(SUM(cost_minor) AS BIGINT) AS cost,
           MAX(currency) AS currency
    FROM retention_actions
    WHERE campaign = '' AND ($3 = '' OR kind = $3) AND time >= $1 AND time < $2
    GROUP BY customer_id
) a ON a.customer_id = c.id
WHERE c.status <> 'erased'
  AND (a.first_action IS NOT NULL OR NOT EXISTS (
        SELECT 1 FROM retention_actions r
        WHERE r.customer_id = c.id AND r.time >= $1 AND r.time < $2))";

/// `$n` placeholders are PostgreSQL's; SQLite reads `?n` the same way.
fn placeholders(sql: &str, postgres: bool) -> String {
    if postgres {
        sql.to_owned()
    } else {
        sql.replace('$', "?")
    }
}

impl Store {
    /// Draws the campaign's targets from the stored evaluations of customers not
    /// erased or churned, holds out the control share by the seeded draw, and stores
    /// the campaign with its members in one transaction.
    pub fn create_campaign(
        &self,
        new: &NewCampaign,
        actor: &str,
        now: Micros,
    ) -> Result<CampaignRecord> {
        let candidates: Vec<Candidate> = with_conn!(self, conn => {
            evaluations::table
                .inner_join(customers::table.on(customers::id.eq(evaluations::customer_id)))
                .filter(customers::status.eq("active"))
                .select((
                    evaluations::customer_id,
                    evaluations::churn_probability,
                    evaluations::segment_id,
                    evaluations::tier,
                ))
                .order(evaluations::customer_id.asc())
                .load(conn)?
        });
        let targets: Vec<(String, Option<f64>)> = candidates
            .into_iter()
            .filter(|(_, p, segment, tier)| {
                new.target
                    .matches(p.map(risk_band), *segment, tier.as_deref(), *p)
            })
            .map(|(id, p, _, _)| (id, p))
            .collect();
        if targets.len() < 2 {
            return Err(StoreError::FailedPrecondition(format!(
                "the target matches {} customer(s) among the stored evaluations; a campaign needs at least 2 (one treated, one held out): widen the target, or run RefreshEvaluations first",
                targets.len()
            )));
        }
        let control = draw_control(targets.len(), new.holdout_share, new.seed);
        let members: Vec<CampaignMember> = targets
            .into_iter()
            .zip(control)
            .map(
                |((customer_id, churn_probability), control)| CampaignMember {
                    customer_id,
                    control,
                    churn_probability,
                },
            )
            .collect();
        self.insert_campaign(new, now, now, actor, &members)
    }

    /// Stores a campaign whose members were drawn elsewhere (the synthetic generator
    /// draws its own, at a time in the past), with the counts taken from `members`, in
    /// one transaction: a name already taken is `AlreadyExists` and stores nothing.
    /// The members' customer ids must be stored customers' ids.
    pub fn insert_drawn_campaign(
        &self,
        new: &NewCampaign,
        draw_time: Micros,
        actor: &str,
        members: &[CampaignMember],
    ) -> Result<CampaignRecord> {
        self.insert_campaign(new, draw_time, now_micros(), actor, members)
    }

    fn insert_campaign(
        &self,
        new: &NewCampaign,
        draw_time: Micros,
        create_time: Micros,
        actor: &str,
        members: &[CampaignMember],
    ) -> Result<CampaignRecord> {
        let control_count = members.iter().filter(|m| m.control).count() as i64;
        let row = CampaignRow {
            id: uuid::Uuid::now_v7().to_string(),
            name: new.name.clone(),
            action_kind: new.action_kind.clone(),
            target: serde_json::to_string(&new.target)
                .map_err(|e| StoreError::Internal(e.to_string()))?,
            holdout_share: new.holdout_share,
            seed: new.seed as i64,
            horizon_days: i32::try_from(new.horizon_days).unwrap_or(i32::MAX),
            draw_time,
            treated_count: members.len() as i64 - control_count,
            control_count,
            actor: actor.to_owned(),
            create_time,
        };
        let members: Vec<MemberRow> = members
            .iter()
            .map(|m| MemberRow {
                customer_id: m.customer_id.clone(),
                campaign_id: row.id.clone(),
                control: m.control,
                churn_probability: m.churn_probability,
            })
            .collect();
        with_conn!(self, conn => {
            conn.write_transaction(|conn| {
                match diesel::insert_into(campaigns::table).values(&row).execute(conn) {
                    Ok(_) => {}
                    Err(e) if StoreError::is_unique_violation(&e) => {
                        return Err(StoreError::AlreadyExists(format!(
                            "a campaign named {:?} exists already",
                            row.name
                        )));
                    }
                    Err(e) => return Err(e.into()),
                }
                for chunk in members.chunks(MEMBER_CHUNK) {
                    diesel::insert_into(campaign_members::table)
                        .values(chunk)
                        .execute(conn)?;
                }
                Ok(())
            })
        })?;
        row.into_record()
    }

    /// Stored customers' ids by external id, for the external ids given that are
    /// stored (in chunks; any number may be asked).
    pub fn customer_ids_by_external_id(
        &self,
        external_ids: &[String],
    ) -> Result<HashMap<String, String>> {
        let mut found = HashMap::with_capacity(external_ids.len());
        for chunk in external_ids.chunks(MEMBER_CHUNK) {
            let rows: Vec<(String, String)> = with_conn!(self, conn => {
                customers::table
                    .filter(customers::external_id.eq_any(chunk))
                    .select((customers::external_id, customers::id))
                    .load(conn)?
            });
            found.extend(rows);
        }
        Ok(found)
    }

    /// Which arm of a campaign a customer was drawn into: `Some(true)` the control group,
    /// `Some(false)` the treated, `None` not drawn.
    pub fn campaign_arm(&self, campaign_id: &str, customer_id: &str) -> Result<Option<bool>> {
        with_conn!(self, conn => {
            Ok(campaign_members::table
                .find((customer_id, campaign_id))
                .select(campaign_members::control)
                .first(conn)
                .optional()?)
        })
    }

    pub fn get_campaign(&self, name: &str) -> Result<Option<CampaignRecord>> {
        let row: Option<CampaignRow> = with_conn!(self, conn => {
            campaigns::table
                .filter(campaigns::name.eq(name))
                .select(CampaignRow::as_select())
                .first(conn)
                .optional()?
        });
        row.map(CampaignRow::into_record).transpose()
    }

    /// Campaigns, oldest first (ids are time-ordered).
    pub fn list_campaigns(
        &self,
        page_size: usize,
        page_token: &str,
    ) -> Result<Page<CampaignRecord>> {
        let after: Option<String> = page::decode(page_token, &())?;
        let limit = i64::try_from(page_size + 1).unwrap_or(i64::MAX);
        let rows: Vec<CampaignRow> = with_conn!(self, conn => {
            let mut q = campaigns::table
                .select(CampaignRow::as_select())
                .order(campaigns::id.asc())
                .limit(limit)
                .into_boxed();
            if let Some(id) = &after {
                q = q.filter(campaigns::id.gt(id.clone()));
            }
            q.load(conn)?
        });
        let records = rows
            .into_iter()
            .map(CampaignRow::into_record)
            .collect::<Result<Vec<_>>>()?;
        Ok(page::paginate(records, page_size, (), |c| c.id.clone()))
    }

    /// A campaign's members in customer id order, one arm (`Some(true)`: the control
    /// group) or both.
    pub fn list_campaign_members(
        &self,
        campaign_id: &str,
        control: Option<bool>,
        page_size: usize,
        page_token: &str,
    ) -> Result<Page<CampaignMember>> {
        let filter = (campaign_id.to_owned(), control);
        let after: Option<String> = page::decode(page_token, &filter)?;
        let limit = i64::try_from(page_size + 1).unwrap_or(i64::MAX);
        let rows: Vec<(String, bool, Option<f64>)> = with_conn!(self, conn => {
            let mut q = campaign_members::table
                .filter(campaign_members::campaign_id.eq(campaign_id))
                .select((
                    campaign_members::customer_id,
                    campaign_members::control,
                    campaign_members::churn_probability,
                ))
                .order(campaign_members::customer_id.asc())
                .limit(limit)
                .into_boxed();
            if let Some(c) = control {
                q = q.filter(campaign_members::control.eq(c));
            }
            if let Some(id) = &after {
                q = q.filter(campaign_members::customer_id.gt(id.clone()));
            }
            q.load(conn)?
        });
        let members = rows
            .into_iter()
            .map(|(customer_id, control, churn_probability)| CampaignMember {
                customer_id,
                control,
                churn_probability,
            })
            .collect();
        Ok(page::paginate(members, page_size, filter, |m| {
            m.customer_id.clone()
        }))
    }

    /// The effect of a campaign: treated members (window from their first action of the
    /// campaign) against the held-out control (window from the draw).
    pub fn review_campaign(&self, name: &str, as_of: Micros) -> Result<CampaignReview> {
        let campaign = self
            .get_campaign(name)?
            .ok_or_else(|| StoreError::NotFound(format!("no campaign named {name:?}")))?;
        let sql = placeholders(REVIEW_CAMPAIGN_SQL, self.is_postgres());
        let rows: Vec<ReviewRow> = with_conn!(self, conn => {
            diesel::sql_query(sql.as_str())
                .bind::<BigInt, _>(campaign.draw_time)
                .bind::<Text, _>(campaign.name.as_str())
                .bind::<Text, _>(campaign.id.as_str())
                .load(conn)?
        });
        let horizon = i64::from(campaign.horizon_days) * MICROS_PER_DAY;
        let mut tally = Tally::default();
        for row in &rows {
            let start = match (row.control, row.first_action) {
                (true, _) => campaign.draw_time,
                (false, Some(t)) => t,
                (false, None) => {
                    tally.not_reached += 1;
                    continue;
                }
            };
            match outcome(row, start, horizon, as_of) {
                Outcome::Gone => {}
                Outcome::Pending => tally.pending += 1,
                Outcome::Counted { churned } if row.control => add(&mut tally.control, churned),
                Outcome::Counted { churned } => {
                    add(&mut tally.treated, churned);
                    tally.cost += row.cost.unwrap_or(0);
                    if tally.currency.is_empty() {
                        tally.currency = row.currency.clone().unwrap_or_default();
                    }
                }
            }
        }
        Ok(CampaignReview {
            campaign: campaign.name,
            evidence: Evidence::Randomized,
            effect: review(
                tally.treated,
                tally.control,
                tally.cost,
                &tally.currency,
                Evidence::Randomized,
            ),
            treatment_cost_minor: tally.cost,
            currency: tally.currency,
            not_reached: tally.not_reached,
            pending: tally.pending,
        })
    }

    /// The effect of actions recorded without a campaign, of `kind` (empty: any) in
    /// `[start, end)`: customers treated then (window from their first action) against
    /// customers with no action in the period (window from its start), compared within
    /// each risk band of their stored evaluation and combined with the treated's band
    /// mix. Not randomized: weaker evidence, and the review says so.
    pub fn review_uncampaigned(
        &self,
        kind: &str,
        start: Micros,
        end: Micros,
        horizon_days: u32,
        as_of: Micros,
    ) -> Result<CampaignReview> {
        let sql = placeholders(REVIEW_ACTIONS_SQL, self.is_postgres());
        let rows: Vec<ReviewRow> = with_conn!(self, conn => {
            diesel::sql_query(sql.as_str())
                .bind::<BigInt, _>(start)
                .bind::<BigInt, _>(end)
                .bind::<Text, _>(kind)
                .load(conn)?
        });
        let horizon = i64::from(horizon_days) * MICROS_PER_DAY;
        let mut bands: HashMap<Option<String>, Tally> = HashMap::new();
        let mut cost = 0;
        let mut currency = String::new();
        let mut pending = 0;
        for row in &rows {
            let start = row.first_action.unwrap_or(start);
            let tally = bands.entry(row.band.clone()).or_default();
            match outcome(row, start, horizon, as_of) {
                Outcome::Gone => {}
                Outcome::Pending => pending += 1,
                Outcome::Counted { churned } if row.control => add(&mut tally.control, churned),
                Outcome::Counted { churned } => {
                    add(&mut tally.treated, churned);
                    cost += row.cost.unwrap_or(0);
                    if currency.is_empty() {
                        currency = row.currency.clone().unwrap_or_default();
                    }
                }
            }
        }
        let (treated, control) = standardize(&bands);
        Ok(CampaignReview {
            campaign: String::new(),
            evidence: Evidence::Observational,
            effect: review(treated, control, cost, &currency, Evidence::Observational),
            treatment_cost_minor: cost,
            currency,
            not_reached: 0,
            pending,
        })
    }
}

/// Pools the bands that have treated customers. The comparison arm keeps its real size
/// (so the interval is as wide as its data allow) and gets the churn rate it would have
/// with the treated's mix of bands, so a treatment aimed at high-risk customers is not
/// flattered or blamed for their higher base rate.
fn standardize(bands: &HashMap<Option<String>, Tally>) -> (Arm, Arm) {
    let mut treated = NO_ONE;
    let mut comparison = 0u64;
    let mut expected_rate = 0.0;
    for t in bands.values() {
        if t.treated.customers == 0 {
            continue;
        }
        treated.customers += t.treated.customers;
        treated.churned += t.treated.churned;
        comparison += t.control.customers;
    }
    for t in bands.values() {
        if t.treated.customers == 0 || t.control.customers == 0 || treated.customers == 0 {
            continue;
        }
        let weight = t.treated.customers as f64 / treated.customers as f64;
        expected_rate += weight * t.control.churned as f64 / t.control.customers as f64;
    }
    let control = Arm {
        customers: comparison,
        churned: (expected_rate * comparison as f64).round() as u64,
    };
    (treated, control)
}
