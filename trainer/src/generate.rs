//! `vitals-trainer generate`: synthetic customer histories with a churn process whose
//! drivers are known, for benchmarks, load tests and tests that a model recovers them.
//!
//! ```text
//! vitals-trainer generate --customers N --seed S [--start YYYY-MM-DD] [--end YYYY-MM-DD] [--json]
//!     [--campaign NAME [--campaign-effect E] [--campaign-holdout H] [--campaign-horizon-days D]]
//! ```
//!
//! # Shape
//!
//! The window is `[start, end)`; by default `end` is midnight UTC at the start of
//! yesterday and `start` is two years (24 calendar months) before it. Customer `n` (1 to
//! N) has the external id `gen-<seed>-<n>` and:
//!
//! - a signup time in the window, with density falling off exponentially (about 3.3 times
//!   more signups at the start than at the end);
//! - a region (`EU` 40%, `US` 35%, `APAC` 25%) and an acquisition channel (`web` 45%,
//!   `store` 25%, `partner` 15%, `referral` 15%);
//! - 40% are contractual, with the attributes `plan` (`basic` 50%, `plus` 35%, `pro`
//!   15%), `contract` (`monthly` 60%, `yearly` 40%) and `monthly_charge` (the plan's price
//!   19, 39 or 79, less a 10% or 20% discount for some), a number in major units; the other
//!   60% are non-contractual, without attributes;
//! - no name, e-mail, phone or feedback comment: nothing that looks like PII.
//!
//! Latent traits, never stored: a dissatisfaction `d ~ N(0, 1)` (a little higher for
//! partner-acquired customers, lower for referrals); a late-payer trait (15% of
//! contractual customers); a purchase rate per month drawn from a gamma distribution
//! (shape 0.7, mean 2.0 for non-contractual and 0.3 add-on purchases for contractual
//! customers, times `exp(-0.15 d)`), so purchase frequency is heavy-tailed.
//!
//! Events, all in USD, each kind keyed `<kind>-<i>` per customer (`transaction-0`,
//! `payment-0`, `feedback-0`, `interaction-0`, ...):
//!
//! - transactions: a Poisson process at the customer's rate, shaped by the day of the week
//!   (busier weekends), the month (November and most of all December are busy) and the
//!   hour of the day (few purchases at night); basket values are lognormal in cents
//!   around a per-customer median (itself lognormal around 35 USD), 25% larger in
//!   December; channel `web`/`app`/`store` with a per-customer preference;
//! - payments (contractual only): an invoice every month (a twelfth of a year) from signup
//!   for `monthly_charge`, due 14 days after issue; mostly paid on time (93%), late (6%)
//!   or never (1%); late payers pay on time only 45% of the time, late 45% and never 10%.
//!   A payment made after `end` is recorded as unpaid;
//! - interactions: inquiries (0.25 a month), support requests (0.10) and complaints
//!   (`0.06 × exp(0.9 d)` a month) on `email`/`phone`/`chat`; a ticket is resolved
//!   hours to days later (lognormal; medians 4, 16 and 36 hours), or never (3%, 5% and
//!   8%+); a resolution after `end` is recorded as unresolved;
//! - feedback: NPS answers (1.65 a year; score `8.2 - 1.5 d - 0.6 × complaints in the
//!   previous 90 days + N(0, 1.3)`, rounded and clamped to 0..10) and, after 30% of
//!   resolved interactions, a CSAT answer (1..5, lower when dissatisfied, after a
//!   complaint or a slow resolution).
//!
//! # Churn
//!
//! At the start of every month of a customer's life (a twelfth of a year from signup), the
//! customer churns during that month with probability `1 - exp(-h)`, where the monthly
//! hazard is
//!
//! ```text
//! h = BASE × exp( β_dissatisfaction × d
//!               + β_complaints      × complaints in the previous 90 days
//!               + β_late            × late-payer trait (0/1)
//!               + β_tenure          × -ln(tenure in years, at least 30 days)
//!               + β_plan            × (plan == basic)
//!               + β_monthly         × (contract == monthly) )
//! ```
//!
//! | term | constant | value |
//! |---|---|---|
//! | BASE (per month) | [`BASE_HAZARD`] | 0.01 |
//! | β_dissatisfaction | [`BETA_DISSATISFACTION`] | 0.6 |
//! | β_complaints | [`BETA_COMPLAINTS`] | 0.4 |
//! | β_late | [`BETA_LATE_PAYER`] | 0.7 |
//! | β_tenure | [`BETA_TENURE`] | 0.3 |
//! | β_plan | [`BETA_BASIC_PLAN`] | 0.4 |
//! | β_monthly | [`BETA_MONTHLY_CONTRACT`] | 0.8 |
//!
//! The churn time is uniform within that month; nothing happens from it on (a survey
//! answer or payment that would have come later is dropped). Contractual churners inside
//! the window are stored with status `churned` and that `churn_time`; non-contractual
//! churners simply stop (their churn is not observable, so they stay `active` without a
//! churn time), which the labels see as no purchase within the horizon. The drivers show
//! in the features `complaints_365d`, `interactions_90d`, `nps_mean`, `nps_last`,
//! `detractor_answers`, `csat_mean`, `late_payment_share`, `mean_days_late`,
//! `tenure_days`, `attr.plan=basic` and `attr.contract=monthly` (see
//! [`DRIVER_FEATURES`]), and for non-contractual customers in `recency_days` and the
//! frequency features.
//!
//! # Campaign (`--campaign NAME`)
//!
//! Optionally, the data hold one retention campaign with a randomized control group and an
//! effect that is known exactly, so that the effect review (`vitals-trainer review
//! --campaign NAME`, `ReviewCampaign`) can be checked against the truth. With a horizon of
//! `D` days (`--campaign-horizon-days`, default 90), an effect `E` (`--campaign-effect`,
//! 0 to 1, default 0.5) and a holdout share `H` (`--campaign-holdout`, above 0 and at most
//! 0.5, default 0.2):
//!
//! - the campaign is drawn at `T_c = end - (D + 30 days)` (the window must be longer than
//!   that);
//! - its members are the contractual customers alive at `T_c` (signed up at or before it,
//!   not churned by it). Only contractual customers, so that churn is observed exactly, as
//!   the stored `churn_time`;
//! - each member is held out as control with probability `H`, independently (so the
//!   control group is about, not exactly, `H` of the members; the campaign records the
//!   generator's seed, but the store's `draw_control` does not reproduce this draw);
//! - a treated member still there at their action time `T_c + uniform(0, 7 days)` gets a
//!   retention action there: kind `call`, 15.00 USD (1500 minor units), channel `phone`,
//!   the campaign's name, keyed `retention_action-0`. A treated member who churns before
//!   it gets none (the review counts them as not reached);
//! - the effect: a churn that the simulation draws for a treated customer inside
//!   `(action, action + D days]` is cancelled with probability `E`, and a customer so kept
//!   cannot churn again until that window ends; then the churn process goes on as before.
//!
//! Everything the campaign decides (the arm, the action time, whether a churn is
//! cancelled) comes from a second per-customer random stream, seeded from `(seed, n)`
//! apart from the first, and the first stream is drawn exactly as without a campaign: data
//! generated without `--campaign` are unchanged, and with it a customer's history is the
//! same up to the cancelled churn. So the true effect, in the review's own terms (churn of
//! the treated within `D` days of their action against the control's within `D` days of
//! `T_c`), is known: `-saved / reached`, where `reached` counts the treated members who got
//! the action and `saved` those of them whose churn within their window was cancelled. It
//! is reported as `true_effect` (negative: fewer churned), and its expectation is about
//! `-E` times the members' churn rate within `D` days. The review's estimate differs from
//! it by sampling noise between the arms, and by a little bias: treated members who churn
//! before their call are not counted, while the control's early churners are.
//!
//! The campaign and its members are stored (`Store::insert_drawn_campaign`) with draw
//! time `T_c`, an empty target rule, action kind `call`, the holdout share, the seed, the
//! horizon and the actor `vitals-trainer generate`. Running the same command again finds
//! the same campaign stored and leaves it; a campaign of that name drawn otherwise is an
//! error.
//!
//! # Writing
//!
//! Customers are generated in groups of [`CUSTOMER_GROUP`]: each customer of a group is
//! simulated and its row upserted through the importers' validating customer sink, then
//! the group is simulated again (from the same per-customer random stream, so the
//! result is identical) and its events go through the importers' event sink, in
//! backfill mode, in `Store::record_events` calls of at most 10,000 events. Memory holds
//! one group's customer rows and one customer's events, never the whole history.
//!
//! Every customer has its own random stream, seeded from `(seed, n)`, so customer `n` is
//! the same whatever N is, and the same seed and window give the same data: running the
//! same command again reports every customer unchanged and every event a duplicate. With
//! the default window, `end` moves every day; pass `--end` to reproduce a run later (a
//! different window with the same seed changes the data, and its events are then
//! rejected as conflicting keys: generate into a fresh database or use another seed).

use std::fmt;
use std::time::Instant;

use anyhow::bail;
use chrono::{Datelike, Days, Months, NaiveDate};
use indicatif::ProgressBar;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use vitals_domain::campaign::{TargetRule, validate_holdout};
use vitals_domain::time::{MICROS_PER_DAY, Micros, now_micros};
use vitals_domain::validate::MAX_LABEL_LEN;
use vitals_domain::{
    AttributeValue, CustomerData, CustomerRef, CustomerStatus, EventKind, EventPayload, Feedback,
    FeedbackKind, Interaction, InteractionKind, NewEvent, Payment, RetentionAction, Severity,
    Transaction,
};
use vitals_store::{CampaignMember, NewCampaign, Store, StoreError};

use crate::import::{
    CustomerCounts, CustomerSink, EventCounts, EventSink, ImportOptions, group_thousands,
    progress_bar,
};
use crate::time::date_micros;

/// Base monthly churn hazard.
pub const BASE_HAZARD: f64 = 0.01;
/// Per standard deviation of latent dissatisfaction.
pub const BETA_DISSATISFACTION: f64 = 0.6;
/// Per complaint in the previous [`RECENT_COMPLAINT_DAYS`] days.
pub const BETA_COMPLAINTS: f64 = 0.4;
/// For customers with the late-payer trait (contractual only).
pub const BETA_LATE_PAYER: f64 = 0.7;
/// Times `-ln(tenure in years)`, tenure at least 30 days: new customers churn more.
pub const BETA_TENURE: f64 = 0.3;
/// For the `basic` plan.
pub const BETA_BASIC_PLAN: f64 = 0.4;
/// For a `monthly` contract.
pub const BETA_MONTHLY_CONTRACT: f64 = 0.8;
/// The window of complaints that raise the hazard.
pub const RECENT_COMPLAINT_DAYS: i64 = 90;

/// Model features through which the churn drivers show.
pub const DRIVER_FEATURES: [&str; 12] = [
    "complaints_365d",
    "interactions_90d",
    "nps_mean",
    "nps_last",
    "detractor_answers",
    "csat_mean",
    "late_payment_share",
    "mean_days_late",
    "tenure_days",
    "attr.plan=basic",
    "attr.contract=monthly",
    "attr.contract=yearly",
];

/// Customers whose rows are upserted before their events are recorded.
pub const CUSTOMER_GROUP: u64 = 2_000;

/// A twelfth of a year (30.4375 days): the invoice and churn-check period.
pub const MONTH: Micros = 2_629_800_000_000;
const YEAR: Micros = 12 * MONTH;
const HOUR: Micros = 3_600_000_000;
const CURRENCY: &str = "USD";

/// The generated campaign's action.
pub const CAMPAIGN_ACTION_KIND: &str = "call";
/// What one call costs, in minor units of USD.
pub const CAMPAIGN_ACTION_COST_MINOR: i64 = 1_500;
/// Who the campaign and its actions are recorded as by.
pub const CAMPAIGN_ACTOR: &str = "vitals-trainer generate";
/// The campaign is drawn this long before the end of its horizon's room in the window:
/// `T_c = end - (horizon + CAMPAIGN_MARGIN)`.
pub const CAMPAIGN_MARGIN_DAYS: i64 = 30;
/// Treated members are called within this many days after the draw.
pub const CAMPAIGN_ACTION_SPREAD_DAYS: i64 = 7;
/// Defaults of `--campaign-effect`, `--campaign-holdout`, `--campaign-horizon-days`.
pub const DEFAULT_CAMPAIGN_EFFECT: f64 = 0.5;
pub const DEFAULT_CAMPAIGN_HOLDOUT: f64 = 0.2;
pub const DEFAULT_CAMPAIGN_HORIZON_DAYS: u32 = 90;
/// The longest campaign horizon, as the API allows.
pub const MAX_CAMPAIGN_HORIZON_DAYS: u32 = 730;
/// Mixed into the seed of the campaign's per-customer random stream, so it is apart from
/// the customer's own stream.
const CAMPAIGN_STREAM: u64 = 0x6361_6d70_6169_676e;

/// A campaign to play out in the generated data (see the module documentation).
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignOptions {
    pub name: String,
    /// The probability that a treated customer's churn within the horizon is cancelled.
    pub effect: f64,
    /// The probability that a member is held out as control.
    pub holdout_share: f64,
    pub horizon_days: u32,
}

impl CampaignOptions {
    /// A campaign with the default effect, holdout and horizon.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            effect: DEFAULT_CAMPAIGN_EFFECT,
            holdout_share: DEFAULT_CAMPAIGN_HOLDOUT,
            horizon_days: DEFAULT_CAMPAIGN_HORIZON_DAYS,
        }
    }

    fn validate(&self) -> anyhow::Result<()> {
        let name = &self.name;
        if name.trim().is_empty()
            || name.trim() != name
            || name.chars().count() > MAX_LABEL_LEN
            || name.chars().any(char::is_control)
        {
            bail!(
                "--campaign must be 1 to {MAX_LABEL_LEN} characters, without control characters \
                 or leading/trailing spaces, got {name:?}"
            );
        }
        if !(0.0..=1.0).contains(&self.effect) {
            bail!(
                "--campaign-effect must be between 0 and 1, got {}",
                self.effect
            );
        }
        if validate_holdout(self.holdout_share).is_err() {
            bail!(
                "--campaign-holdout must be above 0 and at most {}, got {}",
                vitals_domain::campaign::MAX_HOLDOUT_SHARE,
                self.holdout_share
            );
        }
        if !(1..=MAX_CAMPAIGN_HORIZON_DAYS).contains(&self.horizon_days) {
            bail!(
                "--campaign-horizon-days must be 1 to {MAX_CAMPAIGN_HORIZON_DAYS}, got {}",
                self.horizon_days
            );
        }
        Ok(())
    }
}

/// The campaign as the generator played it out: who was in it and the true effect.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CampaignSummary {
    pub name: String,
    /// `T_c`: when the members were drawn.
    pub draw_time: Micros,
    pub horizon_days: u32,
    pub holdout_share: f64,
    /// The probability a treated customer's churn within the horizon was cancelled.
    pub effect: f64,
    /// Contractual customers alive at the draw.
    pub members: u64,
    /// Members in the treatment arm (`members - control`), reached or not.
    pub treated: u64,
    /// Members held out.
    pub control: u64,
    /// Treated members who got the action (one retention action each).
    pub reached: u64,
    /// Reached customers whose churn within their window was cancelled.
    pub saved: u64,
    /// `-saved / reached` (0 when no one was reached): the action's effect on the churn
    /// rate of the reached treated customers, negative when fewer churned.
    pub true_effect: f64,
    /// False when the same campaign was stored already (a re-run).
    pub stored: bool,
}

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerateOptions {
    pub customers: u64,
    pub seed: u64,
    /// The window's start (inclusive).
    pub start: Micros,
    /// The window's end (exclusive); not in the future.
    pub end: Micros,
    /// Draw a progress bar on stderr (only when stderr is a terminal).
    pub progress: bool,
}

impl GenerateOptions {
    /// `customers` customers with `seed` over the default window ending yesterday.
    pub fn new(customers: u64, seed: u64) -> Self {
        let (start, end) = default_window(chrono::Utc::now().date_naive());
        Self {
            customers,
            seed,
            start: date_micros(start),
            end: date_micros(end),
            progress: false,
        }
    }
}

/// The default window for a run on `today`: from two years before yesterday to yesterday.
pub fn default_window(today: NaiveDate) -> (NaiveDate, NaiveDate) {
    let end = today.checked_sub_days(Days::new(1)).unwrap_or(today);
    (two_years_before(end), end)
}

fn two_years_before(d: NaiveDate) -> NaiveDate {
    d.checked_sub_months(Months::new(24)).unwrap_or(d)
}

/// What a run generated and wrote.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GenerateSummary {
    pub seed: u64,
    pub start: Micros,
    pub end: Micros,
    pub customers: u64,
    pub contractual: u64,
    /// Customers who churned inside the window, contractual or not.
    pub churned: u64,
    /// Of those, contractual: stored with status `churned` and a churn time.
    pub churned_contractual: u64,
    pub events: u64,
    pub transactions: u64,
    pub payments: u64,
    pub feedback: u64,
    pub interactions: u64,
    /// What the customer upserts did.
    pub customer_writes: CustomerCounts,
    /// What the event batches did.
    pub event_writes: EventCounts,
    /// Customer and event rows rejected by validation or the store.
    pub rejected: u64,
    pub seconds: f64,
    /// The campaign played out, with `--campaign`.
    pub campaign: Option<CampaignSummary>,
}

impl GenerateSummary {
    pub fn events_per_second(&self) -> f64 {
        if self.seconds > 0.0 {
            self.events as f64 / self.seconds
        } else {
            0.0
        }
    }

    /// One flat JSON object with the keys `seed`, `start`, `end` (YYYY-MM-DD when at
    /// midnight, else RFC 3339), `customers`, `contractual`, `churned`,
    /// `churned_contractual`, `events`, `transactions`, `payments`, `feedback`,
    /// `interactions`, `created`, `updated`, `unchanged`, `accepted`, `duplicates`,
    /// `rejected`, `seconds` and `events_per_second`, in that order, and with `--campaign`
    /// last `campaign`: an object with `name`, `draw_time`, `horizon_days`,
    /// `holdout_share`, `effect`, `members`, `treated`, `control`, `reached`, `saved`,
    /// `true_effect` and `stored`.
    pub fn to_json_string(&self) -> String {
        serde_json::to_string(&self.flat()).unwrap_or_default()
    }

    /// [`Self::to_json_string`] as a JSON value.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self.flat()).unwrap_or_default()
    }

    fn flat(&self) -> JsonSummary {
        JsonSummary {
            seed: self.seed,
            start: show_time(self.start),
            end: show_time(self.end),
            customers: self.customers,
            contractual: self.contractual,
            churned: self.churned,
            churned_contractual: self.churned_contractual,
            events: self.events,
            transactions: self.transactions,
            payments: self.payments,
            feedback: self.feedback,
            interactions: self.interactions,
            created: self.customer_writes.created,
            updated: self.customer_writes.updated,
            unchanged: self.customer_writes.unchanged,
            accepted: self.event_writes.accepted,
            duplicates: self.event_writes.duplicates,
            rejected: self.rejected,
            seconds: (self.seconds * 1000.0).round() / 1000.0,
            events_per_second: self.events_per_second().round(),
            campaign: self.campaign.as_ref().map(|c| JsonCampaign {
                name: c.name.clone(),
                draw_time: show_time(c.draw_time),
                horizon_days: c.horizon_days,
                holdout_share: c.holdout_share,
                effect: c.effect,
                members: c.members,
                treated: c.treated,
                control: c.control,
                reached: c.reached,
                saved: c.saved,
                true_effect: c.true_effect,
                stored: c.stored,
            }),
        }
    }
}

/// The summary as one flat JSON object (`--json`).
#[derive(Debug, Serialize)]
struct JsonSummary {
    seed: u64,
    start: String,
    end: String,
    customers: u64,
    contractual: u64,
    churned: u64,
    churned_contractual: u64,
    events: u64,
    transactions: u64,
    payments: u64,
    feedback: u64,
    interactions: u64,
    created: u64,
    updated: u64,
    unchanged: u64,
    accepted: u64,
    duplicates: u64,
    rejected: u64,
    seconds: f64,
    events_per_second: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    campaign: Option<JsonCampaign>,
}

#[derive(Debug, Serialize)]
struct JsonCampaign {
    name: String,
    draw_time: String,
    horizon_days: u32,
    holdout_share: f64,
    effect: f64,
    members: u64,
    treated: u64,
    control: u64,
    reached: u64,
    saved: u64,
    true_effect: f64,
    stored: bool,
}

fn show_time(t: Micros) -> String {
    match chrono::DateTime::from_timestamp_micros(t) {
        Some(d) if t.rem_euclid(MICROS_PER_DAY) == 0 => d.date_naive().to_string(),
        Some(d) => d.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        None => t.to_string(),
    }
}

impl fmt::Display for GenerateSummary {
    /// Two lines, e.g.
    /// `generated: 300 customers (120 contractual, 61 churned), 9120 events (7890
    /// transactions, 640 payments, 230 feedback, 360 interactions) in 1.2 s, 7,600 events/s`
    /// and `written: customers 300 created, ...`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "generated: {} customers ({} contractual, {} churned), {} events ({} transactions, \
             {} payments, {} feedback, {} interactions) in {:.1} s, {} events/s",
            self.customers,
            self.contractual,
            self.churned,
            self.events,
            self.transactions,
            self.payments,
            self.feedback,
            self.interactions,
            self.seconds,
            group_thousands(self.events_per_second().round() as u64)
        )?;
        let c = &self.customer_writes;
        let e = &self.event_writes;
        write!(
            f,
            "written: customers {} created, {} updated, {} unchanged, {} rejected; \
             events {} accepted, {} duplicates, {} rejected",
            c.created, c.updated, c.unchanged, c.rejected, e.accepted, e.duplicates, e.rejected
        )?;
        if let Some(k) = &self.campaign {
            write!(
                f,
                "\ncampaign {:?} drawn {}: {} members ({} treated, {} held out), {} called, \
                 {} churns prevented: true effect {:+.1} points on the churn rate within {} days{}",
                k.name,
                show_time(k.draw_time),
                k.members,
                k.treated,
                k.control,
                k.reached,
                k.saved,
                k.true_effect * 100.0,
                k.horizon_days,
                if k.stored { "" } else { " (stored already)" }
            )?;
        }
        Ok(())
    }
}

/// `vitals-trainer generate`'s arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct GenerateArgs {
    /// How many customers (external ids `gen-<seed>-1` to `gen-<seed>-N`).
    #[arg(long)]
    pub customers: u64,
    /// The random seed: the same seed and window give the same data.
    #[arg(long)]
    pub seed: u64,
    /// The window's first day (YYYY-MM-DD). Default: 24 months before --end.
    #[arg(long, value_parser = parse_date_arg)]
    pub start: Option<NaiveDate>,
    /// The day the window ends, exclusive (YYYY-MM-DD). Default: yesterday (UTC).
    #[arg(long, value_parser = parse_date_arg)]
    pub end: Option<NaiveDate>,
    /// Print the summary as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Play out a retention campaign with this name: a random control group and an
    /// effect known exactly (see `review --campaign`).
    #[arg(long)]
    pub campaign: Option<String>,
    /// The probability that the campaign's action cancels a treated customer's churn
    /// within the horizon, 0 to 1. Default: 0.5.
    #[arg(long, requires = "campaign")]
    pub campaign_effect: Option<f64>,
    /// The probability that a member is held out as control, above 0 and at most 0.5.
    /// Default: 0.2.
    #[arg(long, requires = "campaign")]
    pub campaign_holdout: Option<f64>,
    /// Days after the action within which churn is compared. Default: 90.
    #[arg(long, requires = "campaign")]
    pub campaign_horizon_days: Option<u32>,
}

fn parse_date_arg(s: &str) -> Result<NaiveDate, String> {
    crate::time::parse_date(s)
}

/// Runs `generate` from the command line and prints its summary on stdout.
pub fn run_command(store: &Store, args: &GenerateArgs, progress: bool) -> anyhow::Result<()> {
    let (default_start, default_end) = default_window(chrono::Utc::now().date_naive());
    let end = args.end.unwrap_or(default_end);
    let start = args.start.unwrap_or_else(|| {
        if args.end.is_some() {
            two_years_before(end)
        } else {
            default_start
        }
    });
    let options = GenerateOptions {
        customers: args.customers,
        seed: args.seed,
        start: date_micros(start),
        end: date_micros(end),
        progress,
    };
    let campaign = args.campaign.as_ref().map(|name| CampaignOptions {
        name: name.clone(),
        effect: args.campaign_effect.unwrap_or(DEFAULT_CAMPAIGN_EFFECT),
        holdout_share: args.campaign_holdout.unwrap_or(DEFAULT_CAMPAIGN_HOLDOUT),
        horizon_days: args
            .campaign_horizon_days
            .unwrap_or(DEFAULT_CAMPAIGN_HORIZON_DAYS),
    });
    let summary = generate_with_campaign(store, &options, campaign.as_ref())?;
    if summary.rejected > 0 {
        eprintln!(
            "{} row(s) rejected: was this seed generated before with another window? \
             Use a fresh database or another seed",
            summary.rejected
        );
    }
    if args.json {
        crate::outln!("{}", summary.to_json_string());
    } else {
        crate::outln!("{summary}");
    }
    Ok(())
}

/// Generates `options.customers` customers and their histories into `store`.
pub fn generate(store: &Store, options: &GenerateOptions) -> anyhow::Result<GenerateSummary> {
    generate_with_campaign(store, options, None)
}

/// [`generate`], playing out `campaign` when given (see the module documentation) and
/// storing it with its members.
pub fn generate_with_campaign(
    store: &Store,
    options: &GenerateOptions,
    campaign: Option<&CampaignOptions>,
) -> anyhow::Result<GenerateSummary> {
    let started = Instant::now();
    let now = now_micros();
    if options.customers == 0 {
        bail!("--customers must be at least 1");
    }
    if options.end > now {
        bail!(
            "the window's end ({}) is in the future: pick an end no later than today",
            show_time(options.end)
        );
    }
    let mut generator = Generator::new(options.seed, options.start, options.end)?;
    if let Some(c) = campaign {
        generator = generator.with_campaign(c)?;
    }

    let bar = progress_bar(
        &ImportOptions {
            progress: options.progress,
        },
        options.customers,
        "generate",
        false,
    );
    let mut summary = GenerateSummary {
        seed: options.seed,
        start: options.start,
        end: options.end,
        customers: 0,
        contractual: 0,
        churned: 0,
        churned_contractual: 0,
        events: 0,
        transactions: 0,
        payments: 0,
        feedback: 0,
        interactions: 0,
        customer_writes: CustomerCounts::default(),
        event_writes: EventCounts::default(),
        rejected: 0,
        seconds: 0.0,
        campaign: None,
    };
    // Campaign members by customer number (true: control), and the tally.
    let mut members: Vec<(u64, bool)> = Vec::new();
    let (mut reached, mut saved) = (0_u64, 0_u64);
    let mut events = EventSink::new(store, now, bar.clone());
    let mut ordinal: u64 = 0;
    let mut first = 1;
    while first <= options.customers {
        let last = first
            .saturating_add(CUSTOMER_GROUP - 1)
            .min(options.customers);
        // 1. The group's customer rows (the simulation's events are dropped here).
        let mut customers = CustomerSink::new(store, now, ProgressBar::hidden());
        for n in first..=last {
            let life = generator.simulate(n, &mut |_| {});
            summary.customers += 1;
            summary.contractual += u64::from(life.data.contractual);
            summary.churned += u64::from(life.churn.is_some());
            summary.churned_contractual += u64::from(life.churn.is_some() && life.data.contractual);
            if let Some(role) = life.campaign {
                members.push((n, role.control));
                reached += u64::from(role.action.is_some());
                saved += u64::from(role.saved);
            }
            customers.push(n, life.data)?;
        }
        let (counts, _) = customers.finish()?;
        let w = &mut summary.customer_writes;
        w.read += counts.read;
        w.created += counts.created;
        w.updated += counts.updated;
        w.unchanged += counts.unchanged;
        w.rejected += counts.rejected;
        w.seconds += counts.seconds;

        // 2. Their events, from the same random streams.
        let mut buffer = Vec::new();
        for n in first..=last {
            generator.simulate(n, &mut |e| buffer.push(e));
            for e in buffer.drain(..) {
                ordinal += 1;
                match e.payload.kind() {
                    EventKind::Transaction => summary.transactions += 1,
                    EventKind::Payment => summary.payments += 1,
                    EventKind::Feedback => summary.feedback += 1,
                    EventKind::Interaction => summary.interactions += 1,
                    // Only the campaign's calls, counted as `reached`.
                    EventKind::RetentionAction => {}
                }
                events.push(ordinal, e)?;
            }
            bar.inc(1);
        }
        first = last.saturating_add(1);
        if last == u64::MAX {
            break;
        }
    }
    let (counts, _) = events.finish()?;
    bar.finish_and_clear();
    summary.events = ordinal;
    summary.rejected = summary.customer_writes.rejected + counts.rejected;
    summary.event_writes = counts;
    if let (Some(c), Some(plan)) = (campaign, &generator.campaign) {
        let stored = store_campaign(store, &generator, plan, &members)?;
        let control = members.iter().filter(|(_, control)| *control).count() as u64;
        summary.campaign = Some(CampaignSummary {
            name: c.name.clone(),
            draw_time: plan.draw_time,
            horizon_days: c.horizon_days,
            holdout_share: c.holdout_share,
            effect: c.effect,
            members: members.len() as u64,
            treated: members.len() as u64 - control,
            control,
            reached,
            saved,
            // `0.0 - x`, not `-x`: no effect reads 0, not -0.
            true_effect: if reached == 0 {
                0.0
            } else {
                0.0 - saved as f64 / reached as f64
            },
            stored,
        });
    }
    summary.seconds = started.elapsed().as_secs_f64();
    tracing::info!(
        customers = summary.customers,
        events = summary.events,
        rejected = summary.rejected,
        seconds = summary.seconds,
        "generated"
    );
    Ok(summary)
}

/// Stores the generated campaign with its members (true: stored now; false: the same
/// campaign was stored already).
fn store_campaign(
    store: &Store,
    generator: &Generator,
    plan: &CampaignPlan,
    members: &[(u64, bool)],
) -> anyhow::Result<bool> {
    let new = NewCampaign {
        name: plan.name.clone(),
        action_kind: CAMPAIGN_ACTION_KIND.to_owned(),
        target: TargetRule::default(),
        holdout_share: plan.holdout_share,
        seed: generator.seed,
        horizon_days: plan.horizon_days,
    };
    let control = members.iter().filter(|(_, control)| *control).count() as i64;
    let same = |c: &vitals_store::CampaignRecord| {
        c.action_kind == new.action_kind
            && c.target == new.target
            && c.holdout_share == new.holdout_share
            && c.seed == new.seed
            && c.horizon_days == new.horizon_days
            && c.draw_time == plan.draw_time
            && c.control_count == control
            && c.treated_count == members.len() as i64 - control
    };
    let taken = |c: &vitals_store::CampaignRecord| {
        anyhow::anyhow!(
            "a campaign named {:?} exists already, drawn {} with {} treated and {} held out: \
             use another --campaign name, or generate into a fresh database",
            c.name,
            show_time(c.draw_time),
            c.treated_count,
            c.control_count
        )
    };
    if let Some(existing) = store.get_campaign(&new.name)? {
        return if same(&existing) {
            Ok(false)
        } else {
            Err(taken(&existing))
        };
    }
    let external_ids: Vec<String> = members
        .iter()
        .map(|(n, _)| generator.external_id(*n))
        .collect();
    let ids = store.customer_ids_by_external_id(&external_ids)?;
    let mut drawn = Vec::with_capacity(members.len());
    for ((_, control), external_id) in members.iter().zip(&external_ids) {
        let Some(id) = ids.get(external_id) else {
            bail!(
                "campaign member {external_id} is not stored (its row was rejected): \
                 generate into a fresh database or use another seed"
            );
        };
        drawn.push(CampaignMember {
            customer_id: id.clone(),
            control: *control,
            churn_probability: None,
        });
    }
    match store.insert_drawn_campaign(&new, plan.draw_time, CAMPAIGN_ACTOR, &drawn) {
        Ok(record) => {
            tracing::info!(
                campaign = %record.name,
                treated = record.treated_count,
                control = record.control_count,
                "campaign stored"
            );
            Ok(true)
        }
        // Stored meanwhile by a concurrent run.
        Err(StoreError::AlreadyExists(_)) => match store.get_campaign(&new.name)? {
            Some(existing) if same(&existing) => Ok(false),
            Some(existing) => Err(taken(&existing)),
            None => bail!("campaign {:?} could not be stored", new.name),
        },
        Err(e) => Err(e.into()),
    }
}

/// A customer's latent traits: what drives their behaviour and churn, never stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Traits {
    /// Standard normal; higher means more complaints, worse surveys, more churn.
    pub dissatisfaction: f64,
    /// Pays late often (contractual customers only).
    pub late_payer: bool,
    /// Purchases per month on average, before seasonality.
    pub purchase_rate: f64,
    /// `basic`, `plus` or `pro` for contractual customers.
    pub plan: Option<&'static str>,
    /// `monthly` or `yearly` for contractual customers.
    pub contract: Option<&'static str>,
}

/// The monthly churn hazard of a customer with `traits`, `recent_complaints` complaints in
/// the previous [`RECENT_COMPLAINT_DAYS`] days, and `tenure` since signup.
pub fn monthly_hazard(traits: &Traits, recent_complaints: usize, tenure: Micros) -> f64 {
    let tenure_years = tenure.max(30 * MICROS_PER_DAY) as f64 / YEAR as f64;
    let indicator = |b: bool| if b { 1.0 } else { 0.0 };
    BASE_HAZARD
        * (BETA_DISSATISFACTION * traits.dissatisfaction
            + BETA_COMPLAINTS * recent_complaints as f64
            + BETA_LATE_PAYER * indicator(traits.late_payer)
            + BETA_TENURE * -tenure_years.ln()
            + BETA_BASIC_PLAN * indicator(traits.plan == Some("basic"))
            + BETA_MONTHLY_CONTRACT * indicator(traits.contract == Some("monthly")))
        .exp()
}

/// One simulated customer: the row to store, the latent truth, and (from
/// [`Generator::customer`]) the events.
#[derive(Debug, Clone, PartialEq)]
pub struct Synthetic {
    pub data: CustomerData,
    pub traits: Traits,
    /// When the customer churned, if inside the window (for both kinds; only contractual
    /// customers have it stored as `churn_time`). No event happens at or after it.
    pub churn: Option<Micros>,
    /// The customer's part in the generated campaign, when a member of it.
    pub campaign: Option<CampaignRole>,
    pub events: Vec<NewEvent>,
}

/// A campaign member's arm and what the campaign did to them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CampaignRole {
    /// Held out: no action, no effect.
    pub control: bool,
    /// When a treated member got the action; `None` for the control group and for
    /// treated members who churned before it.
    pub action: Option<Micros>,
    /// A churn within the horizon after the action was cancelled.
    pub saved: bool,
}

/// The campaign a [`Generator`] plays out, with its draw time.
#[derive(Debug, Clone, PartialEq)]
struct CampaignPlan {
    name: String,
    effect: f64,
    holdout_share: f64,
    horizon_days: u32,
    /// `T_c`.
    draw_time: Micros,
    horizon: Micros,
}

/// One customer's draws from the campaign's random stream.
struct CampaignDraw {
    control: bool,
    action: Micros,
    /// Below the effect: a churn within the window is cancelled.
    cancel: f64,
}

/// Simulates customers over one window; customer `n` depends only on the seed, the
/// window and `n`.
#[derive(Debug, Clone)]
pub struct Generator {
    seed: u64,
    start: Micros,
    end: Micros,
    first_day: i64,
    /// Per day of the window: weekday × month factor, averaging about 1.
    day_factor: Vec<f64>,
    /// Per day of the window: true in December.
    december: Vec<bool>,
    /// Per hour of the day, averaging 1.
    hour_factor: [f64; 24],
    /// The largest day × hour factor: the thinning bound.
    peak: f64,
    campaign: Option<CampaignPlan>,
}

const WEEKDAY: [f64; 7] = [0.85, 0.85, 0.9, 0.95, 1.1, 1.35, 1.2];
const MONTHS: [f64; 12] = [
    0.85, 0.8, 0.9, 0.95, 1.0, 0.95, 0.9, 0.95, 1.0, 1.05, 1.25, 1.7,
];

fn hour_weight(h: usize) -> f64 {
    match h {
        0..=6 => 0.15,
        7..=9 => 0.6,
        10..=20 => 1.3,
        _ => 0.7,
    }
}

impl Generator {
    pub fn new(seed: u64, start: Micros, end: Micros) -> anyhow::Result<Self> {
        if start < 0 {
            bail!("the window must not start before 1970-01-01");
        }
        if end <= start {
            bail!(
                "the window is empty: its end ({}) must come after its start ({})",
                show_time(end),
                show_time(start)
            );
        }
        let first_day = start.div_euclid(MICROS_PER_DAY);
        let last_day = (end - 1).div_euclid(MICROS_PER_DAY);
        let weekday_mean = WEEKDAY.iter().sum::<f64>() / 7.0;
        let month_mean = MONTHS.iter().sum::<f64>() / 12.0;
        let mut day_factor = Vec::new();
        let mut december = Vec::new();
        for day in first_day..=last_day {
            let date = chrono::DateTime::from_timestamp_micros(day * MICROS_PER_DAY)
                .map(|d| d.date_naive())
                .unwrap_or_default();
            let w = WEEKDAY[date.weekday().num_days_from_monday() as usize] / weekday_mean;
            let m = MONTHS[date.month0() as usize] / month_mean;
            day_factor.push(w * m);
            december.push(date.month() == 12);
        }
        let hour_mean = (0..24).map(hour_weight).sum::<f64>() / 24.0;
        let mut hour_factor = [0.0; 24];
        for (h, f) in hour_factor.iter_mut().enumerate() {
            *f = hour_weight(h) / hour_mean;
        }
        let peak = day_factor.iter().copied().fold(0.0, f64::max)
            * hour_factor.iter().copied().fold(0.0, f64::max);
        Ok(Self {
            seed,
            start,
            end,
            first_day,
            day_factor,
            december,
            hour_factor,
            peak,
            campaign: None,
        })
    }

    /// This generator playing out `campaign` (see the module documentation): drawn at
    /// `end - (horizon + 30 days)`, which must come after the window's start.
    pub fn with_campaign(mut self, campaign: &CampaignOptions) -> anyhow::Result<Self> {
        campaign.validate()?;
        let horizon = i64::from(campaign.horizon_days) * MICROS_PER_DAY;
        let draw_time = self.end - horizon - CAMPAIGN_MARGIN_DAYS * MICROS_PER_DAY;
        if draw_time <= self.start {
            bail!(
                "the window ({} to {}) is too short for a campaign with a {}-day horizon: \
                 it is drawn {} days before the end, which must come after the start",
                show_time(self.start),
                show_time(self.end),
                campaign.horizon_days,
                i64::from(campaign.horizon_days) + CAMPAIGN_MARGIN_DAYS
            );
        }
        self.campaign = Some(CampaignPlan {
            name: campaign.name.clone(),
            effect: campaign.effect,
            holdout_share: campaign.holdout_share,
            horizon_days: campaign.horizon_days,
            draw_time,
            horizon,
        });
        Ok(self)
    }

    /// When the campaign is drawn, with one.
    pub fn campaign_draw_time(&self) -> Option<Micros> {
        self.campaign.as_ref().map(|c| c.draw_time)
    }

    /// Customer `n`'s draws from the campaign's stream, always in the same order.
    fn campaign_draw(&self, plan: &CampaignPlan, n: u64) -> CampaignDraw {
        let mut rng =
            StdRng::seed_from_u64(splitmix64(splitmix64(self.seed ^ CAMPAIGN_STREAM) ^ n));
        let control = rng.random::<f64>() < plan.holdout_share;
        let spread = (CAMPAIGN_ACTION_SPREAD_DAYS * MICROS_PER_DAY) as f64;
        let action = plan.draw_time + (rng.random::<f64>() * spread) as Micros;
        let cancel = rng.random::<f64>();
        CampaignDraw {
            control,
            action,
            cancel,
        }
    }

    /// The campaign's part in the month `[t0, t1)` of a member-to-be: membership at the
    /// draw, the action, and whether the month's churn (if any) is cancelled.
    fn play_campaign(
        &self,
        plan: &CampaignPlan,
        draw: &CampaignDraw,
        (t0, t1): (Micros, Micros),
        churn: &mut Option<Micros>,
        role: &mut Option<CampaignRole>,
        out: &mut Emitter<'_>,
    ) {
        if role.is_none() && t0 <= plan.draw_time && plan.draw_time < t1 {
            if churn.is_some_and(|c| c <= plan.draw_time) {
                return; // gone before the draw: not a member
            }
            *role = Some(CampaignRole {
                control: draw.control,
                action: None,
                saved: false,
            });
        }
        let Some(r) = role.as_mut() else {
            return;
        };
        if r.control {
            return;
        }
        if r.action.is_none() && t0 <= draw.action && draw.action < t1 {
            if churn.is_some_and(|c| c <= draw.action) {
                return; // churned before the call: not reached
            }
            out.push(
                draw.action,
                EventPayload::RetentionAction(RetentionAction {
                    kind: CAMPAIGN_ACTION_KIND.into(),
                    cost_minor: CAMPAIGN_ACTION_COST_MINOR,
                    currency: CURRENCY.into(),
                    campaign: plan.name.clone(),
                    channel: "phone".into(),
                    actor: CAMPAIGN_ACTOR.into(),
                    note: None,
                }),
            );
            r.action = Some(draw.action);
        }
        let Some(a) = r.action else {
            return;
        };
        // The first churn in the window is cancelled with probability `effect` (one draw
        // per customer); once kept, every later churn in the window is too.
        if let Some(c) = *churn
            && c > a
            && c <= a.saturating_add(plan.horizon)
            && draw.cancel < plan.effect
        {
            r.saved = true;
            *churn = None;
        }
    }

    /// Customer `n` with all its events.
    pub fn customer(&self, n: u64) -> Synthetic {
        let mut events = Vec::new();
        let mut life = self.simulate(n, &mut |e| events.push(e));
        life.events = events;
        life
    }

    /// The external id of customer `n`.
    pub fn external_id(&self, n: u64) -> String {
        format!("gen-{}-{n}", self.seed)
    }

    fn day_index(&self, t: Micros) -> usize {
        let i = t.div_euclid(MICROS_PER_DAY) - self.first_day;
        usize::try_from(i)
            .unwrap_or(0)
            .min(self.day_factor.len().saturating_sub(1))
    }

    /// The purchase intensity factor at `t` (season × weekday × hour).
    fn intensity(&self, t: Micros) -> f64 {
        let hour = (t.rem_euclid(MICROS_PER_DAY) / HOUR) as usize;
        self.day_factor[self.day_index(t)] * self.hour_factor[hour.min(23)]
    }

    /// Simulates customer `n`, handing each event to `emit`; the returned value has no
    /// events.
    fn simulate(&self, n: u64, emit: &mut dyn FnMut(NewEvent)) -> Synthetic {
        let mut rng = StdRng::seed_from_u64(splitmix64(splitmix64(self.seed) ^ n));
        let rng = &mut rng;
        let external_id = self.external_id(n);

        // Who they are.
        let span = (self.end - self.start) as f64;
        let decay: f64 = 1.2;
        let u: f64 = rng.random();
        let x = -(1.0 - u * (1.0 - (-decay).exp())).ln() / decay;
        let signup = (self.start + (x * span) as Micros).clamp(self.start, self.end - 1);
        let region = pick(rng, &[("EU", 0.40), ("US", 0.35), ("APAC", 0.25)]);
        let channel = pick(
            rng,
            &[
                ("web", 0.45),
                ("store", 0.25),
                ("partner", 0.15),
                ("referral", 0.15),
            ],
        );
        let contractual = rng.random_bool(0.4);
        let shift = match channel {
            "partner" => 0.2,
            "referral" => -0.2,
            _ => 0.0,
        };
        let dissatisfaction = normal(rng) + shift;
        let (plan, contract, charge) = if contractual {
            let (plan, price) = pick(
                rng,
                &[
                    (("basic", 19.0), 0.50),
                    (("plus", 39.0), 0.35),
                    (("pro", 79.0), 0.15),
                ],
            );
            let contract = pick(rng, &[("monthly", 0.6), ("yearly", 0.4)]);
            let discount = pick(rng, &[(1.0, 0.7), (0.9, 0.2), (0.8, 0.1)]);
            let charge = (price * discount * 100.0_f64).round() / 100.0;
            (Some(plan), Some(contract), charge)
        } else {
            (None, None, 0.0)
        };
        let late_payer = contractual && rng.random_bool(0.15);
        let mean_rate = if contractual { 0.3 } else { 2.0 };
        let shape = 0.7;
        let purchase_rate = gamma(rng, shape, mean_rate / shape) * (-0.15 * dissatisfaction).exp();
        let traits = Traits {
            dissatisfaction,
            late_payer,
            purchase_rate,
            plan,
            contract,
        };
        let tastes = Tastes {
            basket_log_median: (3_500.0_f64).ln() + 0.6 * normal(rng),
            channel: pick(rng, &[("web", 0.5), ("app", 0.3), ("store", 0.2)]),
            category: pick(
                rng,
                &[
                    ("grocery", 0.3),
                    ("apparel", 0.2),
                    ("electronics", 0.15),
                    ("home", 0.2),
                    ("beauty", 0.15),
                ],
            ),
            contact: pick(rng, &[("email", 0.45), ("phone", 0.3), ("chat", 0.25)]),
            method: pick(
                rng,
                &[
                    ("card", 0.5),
                    ("direct_debit", 0.35),
                    ("bank_transfer", 0.15),
                ],
            ),
        };

        let mut data = CustomerData::new(external_id.clone());
        data.region = region.to_owned();
        data.acquisition_channel = channel.to_owned();
        data.contractual = contractual;
        data.signup_time = Some(signup);
        if let (Some(plan), Some(contract)) = (plan, contract) {
            let attrs = &mut data.attributes;
            attrs.insert("plan".into(), AttributeValue::String(plan.into()));
            attrs.insert("contract".into(), AttributeValue::String(contract.into()));
            attrs.insert("monthly_charge".into(), AttributeValue::Number(charge));
        }

        // What they do, month by month, until they churn or the window ends.
        let mut out = Emitter {
            prefix: external_id.clone(),
            customer: external_id,
            next: [0; 5],
            emit,
        };
        let mut complaints: Vec<Micros> = Vec::new();
        let mut pending: Vec<(Micros, i32, &'static str)> = Vec::new();
        let mut churn = None;
        // Only contractual customers signed up by the draw may be campaign members.
        let campaign = self
            .campaign
            .as_ref()
            .filter(|plan| contractual && signup <= plan.draw_time)
            .map(|plan| (plan, self.campaign_draw(plan, n)));
        let mut role = None;
        let mut t0 = signup;
        let mut month = 0_u64;
        while t0 < self.end {
            let t1 = t0.saturating_add(MONTH).min(self.end);
            let recent_from = t0 - RECENT_COMPLAINT_DAYS * MICROS_PER_DAY;
            complaints.retain(|&c| c > recent_from);
            let h = monthly_hazard(&traits, complaints.len(), t0 - signup);
            if rng.random::<f64>() < 1.0 - (-h).exp() {
                let c = t0 + 1 + (rng.random::<f64>() * (MONTH - 1) as f64) as Micros;
                if c < self.end {
                    churn = Some(c);
                }
            }
            if let Some((plan, draw)) = &campaign {
                self.play_campaign(plan, draw, (t0, t1), &mut churn, &mut role, &mut out);
            }
            let stop = churn.unwrap_or(t1);
            if contractual {
                self.invoice(rng, &mut out, &traits, &tastes, t0, month, charge);
            }
            self.purchases(rng, &mut out, &traits, &tastes, t0, stop);
            self.interactions(
                rng,
                &mut out,
                &traits,
                &tastes,
                (t0, stop),
                &mut complaints,
                &mut pending,
            );
            self.nps(rng, &mut out, &traits, (t0, stop), &complaints);
            // Survey answers due before this month's end (or the churn) are given.
            pending.retain(|&(t, score, channel)| {
                if t < stop {
                    out.push(t, csat(score, channel));
                    false
                } else {
                    true
                }
            });
            if churn.is_some() {
                break;
            }
            t0 = t1;
            month += 1;
        }

        if contractual && let Some(c) = churn {
            data.status = CustomerStatus::Churned;
            data.churn_time = Some(c);
        }
        Synthetic {
            data,
            traits,
            churn,
            campaign: role,
            events: Vec::new(),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn invoice(
        &self,
        rng: &mut StdRng,
        out: &mut Emitter<'_>,
        traits: &Traits,
        tastes: &Tastes,
        issued: Micros,
        month: u64,
        charge: f64,
    ) {
        let due = issued + 14 * MICROS_PER_DAY;
        let (on_time, late) = if traits.late_payer {
            (0.45, 0.45)
        } else {
            (0.93, 0.06)
        };
        let r: f64 = rng.random();
        let paid = if r < on_time {
            Some(issued + (rng.random::<f64>() * 13.0 * MICROS_PER_DAY as f64) as Micros)
        } else if r < on_time + late {
            let days = 1.0 + exponential(rng) * if traits.late_payer { 12.0 } else { 6.0 };
            Some(due + (days * MICROS_PER_DAY as f64) as Micros)
        } else {
            None
        };
        out.push(
            issued,
            EventPayload::Payment(Payment {
                invoice_id: format!("{}-inv-{month}", out.prefix),
                amount_minor: (charge * 100.0).round() as i64,
                currency: CURRENCY.into(),
                due_time: Some(due),
                paid_time: paid.filter(|&p| p <= self.end),
                method: tastes.method.into(),
            }),
        );
    }

    fn purchases(
        &self,
        rng: &mut StdRng,
        out: &mut Emitter<'_>,
        traits: &Traits,
        tastes: &Tastes,
        from: Micros,
        to: Micros,
    ) {
        // Thinning: candidates at the peak rate, each kept with intensity / peak.
        let peak_rate = traits.purchase_rate * self.peak / MONTH as f64;
        if peak_rate <= 0.0 || !peak_rate.is_finite() {
            return;
        }
        let mut t = from as f64;
        loop {
            t += exponential(rng) / peak_rate;
            if t >= to as f64 {
                return;
            }
            let at = t as Micros;
            if rng.random::<f64>() * self.peak >= self.intensity(at) {
                continue;
            }
            let mut cents = (tastes.basket_log_median + 0.5 * normal(rng)).exp();
            if self.december[self.day_index(at)] {
                cents *= 1.25;
            }
            let quantity = 1 + (exponential(rng) / 0.8) as i32;
            let category = if rng.random_bool(0.6) {
                tastes.category
            } else {
                pick(
                    rng,
                    &[
                        ("grocery", 1.0),
                        ("apparel", 1.0),
                        ("electronics", 1.0),
                        ("home", 1.0),
                        ("beauty", 1.0),
                    ],
                )
            };
            let channel = if rng.random_bool(0.7) {
                tastes.channel
            } else {
                pick(rng, &[("web", 1.0), ("app", 1.0), ("store", 1.0)])
            };
            out.push(
                at,
                EventPayload::Transaction(Transaction {
                    amount_minor: (cents.round() as i64).max(99),
                    currency: CURRENCY.into(),
                    quantity: quantity.min(20),
                    category: category.into(),
                    channel: channel.into(),
                }),
            );
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn interactions(
        &self,
        rng: &mut StdRng,
        out: &mut Emitter<'_>,
        traits: &Traits,
        tastes: &Tastes,
        (from, to): (Micros, Micros),
        complaints: &mut Vec<Micros>,
        pending: &mut Vec<(Micros, i32, &'static str)>,
    ) {
        let months = (to - from) as f64 / MONTH as f64;
        let d = traits.dissatisfaction;
        let kinds: [(InteractionKind, f64, f64, f64); 3] = [
            (InteractionKind::Inquiry, 0.25, 4.0, 0.03),
            (InteractionKind::Support, 0.10, 16.0, 0.05),
            (
                InteractionKind::Complaint,
                0.06 * (0.9 * d).exp(),
                36.0,
                0.08 + 0.03 * d.max(0.0),
            ),
        ];
        for (kind, rate, median_hours, unresolved) in kinds {
            for _ in 0..poisson(rng, rate * months) {
                let at = from + (rng.random::<f64>() * (to - from) as f64) as Micros;
                let (severity, category) = match kind {
                    InteractionKind::Complaint => (
                        pick(
                            rng,
                            &[
                                (Severity::Medium, 0.5),
                                (Severity::High, 0.4),
                                (Severity::Critical, 0.1),
                            ],
                        ),
                        pick(
                            rng,
                            &[
                                ("billing", 0.3),
                                ("delivery", 0.3),
                                ("product", 0.25),
                                ("service", 0.15),
                            ],
                        ),
                    ),
                    InteractionKind::Support => (
                        pick(rng, &[(Severity::Low, 0.6), (Severity::Medium, 0.4)]),
                        pick(rng, &[("technical", 0.6), ("account", 0.4)]),
                    ),
                    _ => (
                        Severity::Low,
                        pick(
                            rng,
                            &[
                                ("billing", 0.3),
                                ("product", 0.4),
                                ("account", 0.15),
                                ("delivery", 0.15),
                            ],
                        ),
                    ),
                };
                let channel = if rng.random_bool(0.7) {
                    tastes.contact
                } else {
                    pick(rng, &[("email", 1.0), ("phone", 1.0), ("chat", 1.0)])
                };
                let hours = (median_hours.ln() + 0.9 * normal(rng)).exp();
                let resolved = if rng.random_bool(unresolved.clamp(0.0, 1.0)) {
                    None
                } else {
                    Some(at + ((hours * HOUR as f64) as Micros).max(60_000_000))
                };
                if kind == InteractionKind::Complaint {
                    complaints.push(at);
                }
                let ticket = out.next[3];
                out.push(
                    at,
                    EventPayload::Interaction(Interaction {
                        kind,
                        severity,
                        category: category.into(),
                        channel: channel.into(),
                        ticket_id: format!("{}-tkt-{ticket}", out.prefix),
                        resolved_time: resolved.filter(|&r| r <= self.end),
                    }),
                );
                if let Some(r) = resolved
                    && rng.random_bool(0.3)
                {
                    let answered = r + ((1.0 + 71.0 * rng.random::<f64>()) * HOUR as f64) as i64;
                    let penalty = if kind == InteractionKind::Complaint {
                        0.9
                    } else {
                        0.0
                    } + if hours > 72.0 { 0.4 } else { 0.0 };
                    let score = (4.3 - 0.55 * d - penalty + 0.7 * normal(rng)).round();
                    pending.push((answered, score.clamp(1.0, 5.0) as i32, channel));
                }
            }
        }
    }

    fn nps(
        &self,
        rng: &mut StdRng,
        out: &mut Emitter<'_>,
        traits: &Traits,
        (from, to): (Micros, Micros),
        complaints: &[Micros],
    ) {
        let years = (to - from) as f64 / YEAR as f64;
        for _ in 0..poisson(rng, 1.65 * years) {
            let at = from + (rng.random::<f64>() * (to - from) as f64) as Micros;
            let window = at - RECENT_COMPLAINT_DAYS * MICROS_PER_DAY;
            let recent = complaints.iter().filter(|&&c| c < at && c > window).count();
            let score = (8.2 - 1.5 * traits.dissatisfaction - 0.6 * recent as f64
                + 1.3 * normal(rng))
            .round()
            .clamp(0.0, 10.0) as i32;
            let channel = pick(rng, &[("email", 0.6), ("app", 0.4)]);
            out.push(
                at,
                EventPayload::Feedback(Feedback {
                    kind: FeedbackKind::Nps,
                    score,
                    comment: None,
                    channel: channel.into(),
                }),
            );
        }
    }
}

fn csat(score: i32, channel: &str) -> EventPayload {
    EventPayload::Feedback(Feedback {
        kind: FeedbackKind::Csat,
        score,
        comment: None,
        channel: channel.into(),
    })
}

/// A customer's stable preferences.
struct Tastes {
    basket_log_median: f64,
    channel: &'static str,
    category: &'static str,
    contact: &'static str,
    method: &'static str,
}

/// Keys and hands out one customer's events.
struct Emitter<'a> {
    /// `gen-<seed>-<n>`, for invoice and ticket ids.
    prefix: String,
    customer: String,
    /// The next index of each kind, in `EventKind::ALL` order.
    next: [u64; 5],
    emit: &'a mut dyn FnMut(NewEvent),
}

impl Emitter<'_> {
    fn push(&mut self, time: Micros, payload: EventPayload) {
        let kind = payload.kind();
        let slot = match kind {
            EventKind::Transaction => 0,
            EventKind::Payment => 1,
            EventKind::Feedback => 2,
            EventKind::Interaction => 3,
            EventKind::RetentionAction => 4,
        };
        let i = self.next[slot];
        self.next[slot] += 1;
        (self.emit)(NewEvent {
            event_key: format!("{}-{i}", kind.as_str()),
            customer: CustomerRef::ExternalId(self.customer.clone()),
            time,
            payload,
        });
    }
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// One of `items`, with probability proportional to its weight.
fn pick<T: Copy>(rng: &mut StdRng, items: &[(T, f64)]) -> T {
    let total: f64 = items.iter().map(|i| i.1).sum();
    let mut r = rng.random::<f64>() * total;
    for (item, weight) in items {
        if r < *weight {
            return *item;
        }
        r -= weight;
    }
    items[items.len() - 1].0
}

/// Standard normal (Box-Muller).
fn normal(rng: &mut StdRng) -> f64 {
    let u1: f64 = rng.random();
    let u2: f64 = rng.random();
    (-2.0 * (1.0 - u1).ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Exponential with mean 1.
fn exponential(rng: &mut StdRng) -> f64 {
    -(1.0 - rng.random::<f64>()).ln()
}

/// Gamma(shape, scale) by Marsaglia and Tsang.
fn gamma(rng: &mut StdRng, shape: f64, scale: f64) -> f64 {
    if shape < 1.0 {
        let u: f64 = rng.random();
        return gamma(rng, shape + 1.0, scale) * u.powf(1.0 / shape);
    }
    let d = shape - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let x = normal(rng);
        let v = (1.0 + c * x).powi(3);
        if v <= 0.0 {
            continue;
        }
        let u: f64 = rng.random();
        if u < 1.0 - 0.0331 * x.powi(4) || u.ln() < 0.5 * x * x + d * (1.0 - v + v.ln()) {
            return d * v * scale;
        }
    }
}

/// Poisson with `mean` (Knuth's method; a normal approximation for large means).
fn poisson(rng: &mut StdRng, mean: f64) -> u64 {
    if mean <= 0.0 || !mean.is_finite() {
        return 0;
    }
    if mean > 30.0 {
        return (mean + mean.sqrt() * normal(rng)).round().max(0.0) as u64;
    }
    let limit = (-mean).exp();
    let mut k = 0;
    let mut p: f64 = rng.random();
    while p > limit {
        k += 1;
        p *= rng.random::<f64>();
    }
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window() -> (Micros, Micros) {
        let start = date_micros(NaiveDate::from_ymd_opt(2022, 1, 1).unwrap_or_default());
        (start, start + 730 * MICROS_PER_DAY)
    }

    #[test]
    fn samplers_have_the_right_means() {
        let mut rng = StdRng::seed_from_u64(1);
        let n = 20_000;
        let mean = |xs: Vec<f64>| xs.iter().sum::<f64>() / xs.len() as f64;
        let g = mean((0..n).map(|_| gamma(&mut rng, 0.7, 2.0 / 0.7)).collect());
        assert!((g - 2.0).abs() < 0.1, "gamma {g}");
        let p = mean((0..n).map(|_| poisson(&mut rng, 3.0) as f64).collect());
        assert!((p - 3.0).abs() < 0.1, "poisson {p}");
        let z = mean((0..n).map(|_| normal(&mut rng)).collect());
        assert!(z.abs() < 0.05, "normal {z}");
    }

    #[test]
    fn customers_are_deterministic_and_consistent() {
        let (start, end) = window();
        let g = match Generator::new(7, start, end) {
            Ok(g) => g,
            Err(e) => panic!("{e}"),
        };
        for n in 1..=50 {
            let a = g.customer(n);
            assert_eq!(a, g.customer(n));
            assert_eq!(a.data.external_id, format!("gen-7-{n}"));
            let signup = a.data.signup_time.unwrap_or(i64::MIN);
            assert!(signup >= start && signup < end);
            let stop = a.churn.unwrap_or(end);
            let mut keys = std::collections::HashSet::new();
            for e in &a.events {
                assert!(e.time >= signup && e.time < stop, "{n}: {e:?}");
                assert!(keys.insert(e.event_key.clone()), "{n}: duplicate key");
            }
            assert_eq!(
                a.data.churn_time.is_some(),
                a.data.contractual && a.churn.is_some()
            );
        }
    }

    #[test]
    fn the_hazard_follows_the_documented_formula() {
        let traits = Traits {
            dissatisfaction: 1.0,
            late_payer: true,
            purchase_rate: 1.0,
            plan: Some("basic"),
            contract: Some("monthly"),
        };
        let h = monthly_hazard(&traits, 2, YEAR);
        let expected = BASE_HAZARD
            * (BETA_DISSATISFACTION
                + 2.0 * BETA_COMPLAINTS
                + BETA_LATE_PAYER
                + BETA_BASIC_PLAN
                + BETA_MONTHLY_CONTRACT)
                .exp();
        assert!((h - expected).abs() < 1e-12);
        // New customers churn more.
        assert!(monthly_hazard(&traits, 2, MONTH) > h);
    }
}
