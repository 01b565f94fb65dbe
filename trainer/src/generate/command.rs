//! The `generate` command: its options and arguments, what it reports, and running it.

use super::*;

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

    pub(super) fn validate(&self) -> anyhow::Result<()> {
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

pub(super) fn two_years_before(d: NaiveDate) -> NaiveDate {
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

    pub(super) fn flat(&self) -> JsonSummary {
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
pub(super) struct JsonSummary {
    pub(super) seed: u64,
    pub(super) start: String,
    pub(super) end: String,
    pub(super) customers: u64,
    pub(super) contractual: u64,
    pub(super) churned: u64,
    pub(super) churned_contractual: u64,
    pub(super) events: u64,
    pub(super) transactions: u64,
    pub(super) payments: u64,
    pub(super) feedback: u64,
    pub(super) interactions: u64,
    pub(super) created: u64,
    pub(super) updated: u64,
    pub(super) unchanged: u64,
    pub(super) accepted: u64,
    pub(super) duplicates: u64,
    pub(super) rejected: u64,
    pub(super) seconds: f64,
    pub(super) events_per_second: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) campaign: Option<JsonCampaign>,
}

#[derive(Debug, Serialize)]
pub(super) struct JsonCampaign {
    pub(super) name: String,
    pub(super) draw_time: String,
    pub(super) horizon_days: u32,
    pub(super) holdout_share: f64,
    pub(super) effect: f64,
    pub(super) members: u64,
    pub(super) treated: u64,
    pub(super) control: u64,
    pub(super) reached: u64,
    pub(super) saved: u64,
    pub(super) true_effect: f64,
    pub(super) stored: bool,
}

pub(super) fn show_time(t: Micros) -> String {
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
            vitals_domain::explain::thousands(self.events_per_second().round() as u64)
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

pub(super) fn parse_date_arg(s: &str) -> Result<NaiveDate, String> {
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
