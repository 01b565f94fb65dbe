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
//! `tenure_days`, `attr.plan` (basic) and `attr.contract` (monthly) (see
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
    CustomerCounts, CustomerSink, EventCounts, EventSink, ImportOptions, progress_bar,
};
use crate::time::date_micros;

mod command;
mod process;
mod sampling;
mod words;
mod write;

pub use command::*;
pub use process::*;
use sampling::*;
pub use write::*;

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
pub const DRIVER_FEATURES: [&str; 11] = [
    "complaints_365d",
    "interactions_90d",
    "nps_mean",
    "nps_last",
    "detractor_answers",
    "csat_mean",
    "late_payment_share",
    "mean_days_late",
    "tenure_days",
    "attr.plan",
    "attr.contract",
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
