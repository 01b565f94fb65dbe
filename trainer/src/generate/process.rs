//! The synthetic process: latent traits, the churn hazard, and the events each customer emits.

use super::*;

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
pub(super) struct CampaignPlan {
    pub(super) name: String,
    pub(super) effect: f64,
    pub(super) holdout_share: f64,
    pub(super) horizon_days: u32,
    /// `T_c`.
    pub(super) draw_time: Micros,
    pub(super) horizon: Micros,
}

/// One customer's draws from the campaign's random stream.
pub(super) struct CampaignDraw {
    pub(super) control: bool,
    pub(super) action: Micros,
    /// Below the effect: a churn within the window is cancelled.
    pub(super) cancel: f64,
}

/// Simulates customers over one window; customer `n` depends only on the seed, the
/// window and `n`.
#[derive(Debug, Clone)]
pub struct Generator {
    pub(super) seed: u64,
    pub(super) start: Micros,
    pub(super) end: Micros,
    pub(super) first_day: i64,
    /// Per day of the window: weekday × month factor, averaging about 1.
    pub(super) day_factor: Vec<f64>,
    /// Per day of the window: true in December.
    pub(super) december: Vec<bool>,
    /// Per hour of the day, averaging 1.
    pub(super) hour_factor: [f64; 24],
    /// The largest day × hour factor: the thinning bound.
    pub(super) peak: f64,
    pub(super) campaign: Option<CampaignPlan>,
}

pub(super) const WEEKDAY: [f64; 7] = [0.85, 0.85, 0.9, 0.95, 1.1, 1.35, 1.2];
pub(super) const MONTHS: [f64; 12] = [
    0.85, 0.8, 0.9, 0.95, 1.0, 0.95, 0.9, 0.95, 1.0, 1.05, 1.25, 1.7,
];

pub(super) fn hour_weight(h: usize) -> f64 {
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
    pub(super) fn campaign_draw(&self, plan: &CampaignPlan, n: u64) -> CampaignDraw {
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
    pub(super) fn play_campaign(
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

    pub(super) fn day_index(&self, t: Micros) -> usize {
        let i = t.div_euclid(MICROS_PER_DAY) - self.first_day;
        usize::try_from(i)
            .unwrap_or(0)
            .min(self.day_factor.len().saturating_sub(1))
    }

    /// The purchase intensity factor at `t` (season × weekday × hour).
    pub(super) fn intensity(&self, t: Micros) -> f64 {
        let hour = (t.rem_euclid(MICROS_PER_DAY) / HOUR) as usize;
        self.day_factor[self.day_index(t)] * self.hour_factor[hour.min(23)]
    }

    /// Simulates customer `n`, handing each event to `emit`; the returned value has no
    /// events.
    pub(super) fn simulate(&self, n: u64, emit: &mut dyn FnMut(NewEvent)) -> Synthetic {
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
            words: super::words::Writer::new(self.seed, n, region),
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
    pub(super) fn invoice(
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

    pub(super) fn purchases(
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
    pub(super) fn interactions(
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
                        note: None,
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

    pub(super) fn nps(
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
                    score: Some(score),
                    comment: None,
                    channel: channel.into(),
                }),
            );
        }
    }
}

pub(super) fn csat(score: i32, channel: &str) -> EventPayload {
    EventPayload::Feedback(Feedback {
        kind: FeedbackKind::Csat,
        score: Some(score),
        comment: None,
        channel: channel.into(),
    })
}

/// A customer's stable preferences.
pub(super) struct Tastes {
    pub(super) basket_log_median: f64,
    pub(super) channel: &'static str,
    pub(super) category: &'static str,
    pub(super) contact: &'static str,
    pub(super) method: &'static str,
}

/// Keys and hands out one customer's events.
pub(super) struct Emitter<'a> {
    /// `gen-<seed>-<n>`, for invoice and ticket ids.
    pub(super) prefix: String,
    pub(super) customer: String,
    /// The next index of each kind, in `EventKind::ALL` order.
    pub(super) next: [u64; 5],
    pub(super) emit: &'a mut dyn FnMut(NewEvent),
    /// What the customer writes on surveys and complaints.
    pub(super) words: super::words::Writer,
}

impl Emitter<'_> {
    pub(super) fn push(&mut self, time: Micros, mut payload: EventPayload) {
        self.words.annotate(&mut payload);
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
