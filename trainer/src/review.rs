//! `vitals-trainer review`: whether retention actions worked, as the server's
//! `ReviewCampaign` computes it (`Store::review_campaign`, `Store::review_uncampaigned`).
//!
//! ```text
//! vitals-trainer review --campaign NAME [--as-of DATE] [--json]
//! vitals-trainer review --actions [--kind K] --start DATE --end DATE [--horizon-days N] [--as-of DATE] [--json]
//! ```
//!
//! A campaign compares the churn of its treated members within the horizon after their
//! first action of the campaign with that of the held-out control group within the horizon
//! after the draw: randomized, so the difference is the action's effect. `--actions`
//! compares customers given an action of kind K (any kind when not given) without a
//! campaign in `[start, end)` with customers given none then, within each risk band:
//! observational, weaker evidence, and the sentence says so. Members whose horizon ends
//! after `--as-of` (default: now) are pending and not counted.
//!
//! The output is a table of the two arms (customers, churned, churn rate), the difference
//! of the churn rates with its 95% interval in percentage points, customers kept, the cost
//! per customer kept, the verdict, one plain sentence and what was not counted; with
//! `--json`, one JSON object with the same fields.

use std::fmt;

use anyhow::bail;
use chrono::NaiveDate;
use serde::Serialize;
use vitals_domain::campaign::Arm;
use vitals_domain::time::{Micros, now_micros};
use vitals_store::{CampaignReview, Store, StoreError};

use crate::money::minor_digits;
use crate::time::date_micros;

/// The review horizon of `--actions` when none is given, as the API's.
pub const DEFAULT_HORIZON_DAYS: u32 = 90;
/// The longest review horizon, as the API's.
pub const MAX_HORIZON_DAYS: u32 = 730;

/// `vitals-trainer review`'s arguments.
#[derive(Debug, Clone, clap::Args)]
#[command(group(clap::ArgGroup::new("subject").required(true).args(["campaign", "actions"])))]
pub struct ReviewArgs {
    /// The campaign to review (its treated members against its control group).
    #[arg(long)]
    pub campaign: Option<String>,
    /// Review actions recorded without a campaign instead (against untreated customers
    /// of the same risk band: weaker evidence).
    #[arg(long, requires_all = ["start", "end"])]
    pub actions: bool,
    /// With --actions: only actions of this kind (call, discount, ...). Default: any.
    #[arg(long, requires = "actions")]
    pub kind: Option<String>,
    /// With --actions: the first day of the period (YYYY-MM-DD).
    #[arg(long, value_parser = parse_date_arg, requires = "actions")]
    pub start: Option<NaiveDate>,
    /// With --actions: the day the period ends, exclusive (YYYY-MM-DD).
    #[arg(long, value_parser = parse_date_arg, requires = "actions")]
    pub end: Option<NaiveDate>,
    /// With --actions: days after the action within which churn counts. Default: 90.
    #[arg(long, requires = "actions")]
    pub horizon_days: Option<u32>,
    /// Review as of this date (YYYY-MM-DD, midnight UTC): customers whose horizon ends
    /// after it are pending. Default: now.
    #[arg(long, value_parser = parse_date_arg)]
    pub as_of: Option<NaiveDate>,
    /// Print the review as one JSON object.
    #[arg(long)]
    pub json: bool,
}

fn parse_date_arg(s: &str) -> Result<NaiveDate, String> {
    crate::time::parse_date(s)
}

/// One arm of the review.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArmReport {
    pub customers: u64,
    pub churned: u64,
    pub churn_rate: f64,
}

impl ArmReport {
    fn new(arm: Arm, churn_rate: f64) -> Self {
        Self {
            customers: arm.customers,
            churned: arm.churned,
            churn_rate,
        }
    }
}

/// A review as reported: rates and differences as fractions (0.05 = 5%), money in major
/// units of `currency`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReviewReport {
    /// The campaign's name; empty for actions without one.
    pub campaign: String,
    /// `randomized` (a campaign) or `observational` (actions without one).
    pub evidence: String,
    pub treated: ArmReport,
    /// The held-out control group, or the comparison group for `--actions`.
    pub control: ArmReport,
    /// Treated minus control churn rate: negative means the action kept customers.
    pub difference: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    pub confidence: f64,
    /// Estimated customers kept (negative when the action lost customers).
    pub customers_kept: f64,
    /// What the counted treated customers' actions cost, in major units.
    pub treatment_cost: f64,
    /// `treatment_cost / customers_kept`, when customers were kept.
    pub cost_per_customer_kept: Option<f64>,
    pub currency: String,
    /// `too_few`, `inconclusive`, `helps` or `hurts`.
    pub verdict: String,
    pub sentence: String,
    /// Treated members with no action recorded.
    pub not_reached: u64,
    /// Customers whose horizon had not ended by `as_of`.
    pub pending: u64,
    /// RFC 3339.
    pub as_of: String,
}

impl ReviewReport {
    pub fn new(review: &CampaignReview, as_of: Micros) -> Self {
        let e = &review.effect;
        let scale = 10_f64.powi(minor_digits(&review.currency) as i32);
        Self {
            campaign: review.campaign.clone(),
            evidence: review.evidence.as_str().to_owned(),
            treated: ArmReport::new(e.treated, e.treated_churn_rate),
            control: ArmReport::new(e.control, e.control_churn_rate),
            difference: e.difference,
            ci_low: e.ci_low,
            ci_high: e.ci_high,
            confidence: e.confidence,
            // `+ 0.0` turns the -0 of "no difference" into 0.
            customers_kept: e.customers_kept + 0.0,
            treatment_cost: review.treatment_cost_minor as f64 / scale,
            cost_per_customer_kept: e.cost_per_customer_kept_minor.map(|c| c / scale),
            currency: review.currency.clone(),
            verdict: e.verdict.as_str().to_owned(),
            sentence: e.sentence.clone(),
            not_reached: review.not_reached,
            pending: review.pending,
            as_of: chrono::DateTime::from_timestamp_micros(as_of)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_default(),
        }
    }
}

fn points(x: f64) -> String {
    let p = (x * 1000.0).round() / 10.0;
    format!("{:+.1}", if p == 0.0 { 0.0 } else { p })
}

fn percent(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

impl fmt::Display for ReviewReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (title, comparison) = if self.campaign.is_empty() {
            (
                "actions without a campaign (observational)".to_owned(),
                "comparison",
            )
        } else {
            (
                format!("campaign {:?} (randomized)", self.campaign),
                "control",
            )
        };
        writeln!(f, "{title}, as of {}", self.as_of)?;
        writeln!(
            f,
            "  {:<10} {:>9} {:>8} {:>10}",
            "arm", "customers", "churned", "churn rate"
        )?;
        for (name, arm) in [("treated", &self.treated), (comparison, &self.control)] {
            writeln!(
                f,
                "  {:<10} {:>9} {:>8} {:>10}",
                name,
                arm.customers,
                arm.churned,
                percent(arm.churn_rate)
            )?;
        }
        writeln!(
            f,
            "difference: {} points ({:.0}% interval {} to {})",
            points(self.difference),
            self.confidence * 100.0,
            points(self.ci_low),
            points(self.ci_high)
        )?;
        writeln!(f, "customers kept: {:.1}", self.customers_kept)?;
        let money = |x: f64| format!("{x:.2} {}", self.currency).trim_end().to_owned();
        let cost = match self.cost_per_customer_kept {
            Some(c) => money(c),
            None => "none kept".to_owned(),
        };
        writeln!(
            f,
            "cost per customer kept: {cost} (treatment cost {})",
            money(self.treatment_cost)
        )?;
        writeln!(f, "verdict: {}", self.verdict)?;
        writeln!(f, "{}", self.sentence)?;
        write!(
            f,
            "not counted: {} not reached (no action recorded), {} pending (horizon not over)",
            self.not_reached, self.pending
        )
    }
}

/// Reviews the campaign named `name` as of `as_of`; an unknown name is an error that
/// says so.
pub fn review_campaign(store: &Store, name: &str, as_of: Micros) -> anyhow::Result<ReviewReport> {
    match store.review_campaign(name, as_of) {
        Ok(review) => Ok(ReviewReport::new(&review, as_of)),
        Err(StoreError::NotFound(_)) => bail!(
            "no campaign named {name:?}: campaigns are created with the API's CreateCampaign \
             or by `vitals-trainer generate --campaign NAME`"
        ),
        Err(e) => Err(e.into()),
    }
}

/// Reviews the actions of `kind` (empty: any) recorded without a campaign in
/// `[start, end)`, with churn counted within `horizon_days` after each customer's first.
pub fn review_actions(
    store: &Store,
    kind: &str,
    (start, end): (Micros, Micros),
    horizon_days: u32,
    as_of: Micros,
) -> anyhow::Result<ReviewReport> {
    if end <= start {
        bail!("--end must come after --start");
    }
    if !(1..=MAX_HORIZON_DAYS).contains(&horizon_days) {
        bail!("--horizon-days must be 1 to {MAX_HORIZON_DAYS}, got {horizon_days}");
    }
    let review = store.review_uncampaigned(kind, start, end, horizon_days, as_of)?;
    Ok(ReviewReport::new(&review, as_of))
}

/// Runs `review` from the command line and prints the review on stdout.
pub fn run_command(store: &Store, args: &ReviewArgs) -> anyhow::Result<()> {
    let as_of = args.as_of.map_or_else(now_micros, date_micros);
    let report = match (&args.campaign, args.actions) {
        (Some(name), false) => review_campaign(store, name, as_of)?,
        (None, true) => {
            let (Some(start), Some(end)) = (args.start, args.end) else {
                bail!("--actions needs --start and --end");
            };
            review_actions(
                store,
                args.kind.as_deref().unwrap_or(""),
                (date_micros(start), date_micros(end)),
                args.horizon_days.unwrap_or(DEFAULT_HORIZON_DAYS),
                as_of,
            )?
        }
        _ => bail!("give either --campaign NAME or --actions"),
    };
    if args.json {
        crate::outln!("{}", serde_json::to_string(&report)?);
    } else {
        crate::outln!("{report}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_are_signed_without_negative_zero() {
        assert_eq!(points(-0.0412), "-4.1");
        assert_eq!(points(0.0123), "+1.2");
        assert_eq!(points(-0.00001), "+0.0");
    }
}
