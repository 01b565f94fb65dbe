//! Point-in-time features: what was known about a customer at a cutoff T.
//!
//! Only events that happened before T *and* were recorded by T count, so an event that
//! arrived late never leaks into a model of an earlier time. The trainer and the server
//! both call these functions, so a model is scored on exactly what it was trained on.
//! Undefined values (no purchase yet, no survey answered) are `NaN`; the feature schema
//! turns them into an imputed value plus a "missing" indicator the model sees.

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use crate::records::*;
use crate::time::{MICROS_PER_DAY, Micros};

/// One behavioural feature, by name. A customer's features are a `[f64; 28]` in the
/// order of [`Behaviour::ALL`] (what `behaviour` returns and models store); read one with
/// [`Behaviour::of`], never by position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Behaviour {
    RecencyDays,
    Frequency30d,
    Frequency90d,
    Frequency365d,
    FrequencyTotal,
    Monetary30d,
    Monetary90d,
    Monetary365d,
    MonetaryTotal,
    AvgOrderValue,
    TenureDays,
    DistinctPurchaseDays,
    MeanPurchaseGapDays,
    SpendTrend,
    NpsLast,
    NpsMean,
    CsatMean,
    CesMean,
    DetractorAnswers,
    FeedbackCount,
    Interactions90d,
    Complaints365d,
    OpenTickets,
    MeanResolutionHours,
    PaymentsDue,
    LatePaymentShare,
    MeanDaysLate,
    OverdueAmount,
}

impl Behaviour {
    /// Every feature, in the order of the features array.
    pub const ALL: [Behaviour; 28] = [
        Self::RecencyDays,
        Self::Frequency30d,
        Self::Frequency90d,
        Self::Frequency365d,
        Self::FrequencyTotal,
        Self::Monetary30d,
        Self::Monetary90d,
        Self::Monetary365d,
        Self::MonetaryTotal,
        Self::AvgOrderValue,
        Self::TenureDays,
        Self::DistinctPurchaseDays,
        Self::MeanPurchaseGapDays,
        Self::SpendTrend,
        Self::NpsLast,
        Self::NpsMean,
        Self::CsatMean,
        Self::CesMean,
        Self::DetractorAnswers,
        Self::FeedbackCount,
        Self::Interactions90d,
        Self::Complaints365d,
        Self::OpenTickets,
        Self::MeanResolutionHours,
        Self::PaymentsDue,
        Self::LatePaymentShare,
        Self::MeanDaysLate,
        Self::OverdueAmount,
    ];

    /// The name models, reports and the API use.
    pub const fn name(self) -> &'static str {
        match self {
            Self::RecencyDays => "recency_days",
            Self::Frequency30d => "frequency_30d",
            Self::Frequency90d => "frequency_90d",
            Self::Frequency365d => "frequency_365d",
            Self::FrequencyTotal => "frequency_total",
            Self::Monetary30d => "monetary_30d",
            Self::Monetary90d => "monetary_90d",
            Self::Monetary365d => "monetary_365d",
            Self::MonetaryTotal => "monetary_total",
            Self::AvgOrderValue => "avg_order_value",
            Self::TenureDays => "tenure_days",
            Self::DistinctPurchaseDays => "distinct_purchase_days",
            Self::MeanPurchaseGapDays => "mean_purchase_gap_days",
            Self::SpendTrend => "spend_trend",
            Self::NpsLast => "nps_last",
            Self::NpsMean => "nps_mean",
            Self::CsatMean => "csat_mean",
            Self::CesMean => "ces_mean",
            Self::DetractorAnswers => "detractor_answers",
            Self::FeedbackCount => "feedback_count",
            Self::Interactions90d => "interactions_90d",
            Self::Complaints365d => "complaints_365d",
            Self::OpenTickets => "open_tickets",
            Self::MeanResolutionHours => "mean_resolution_hours",
            Self::PaymentsDue => "payments_due",
            Self::LatePaymentShare => "late_payment_share",
            Self::MeanDaysLate => "mean_days_late",
            Self::OverdueAmount => "overdue_amount",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|b| b.name() == name)
    }

    /// This feature's value in a customer's features.
    pub fn of(self, features: &[f64; 28]) -> f64 {
        features[self as usize]
    }
}

/// The behavioural features' names, in the order `behaviour` returns them.
pub const BEHAVIOUR: [&str; 28] = {
    let mut names = [""; 28];
    let mut i = 0;
    while i < 28 {
        names[i] = Behaviour::ALL[i].name();
        i += 1;
    }
    names
};

/// How a raw feature is shaped before standardizing: counts and money are heavy-tailed,
/// so they enter as `ln(1 + x)`.
pub fn is_heavy_tailed(name: &str) -> bool {
    name.starts_with("frequency_")
        || name.starts_with("monetary_")
        || matches!(
            name,
            "avg_order_value"
                | "distinct_purchase_days"
                | "detractor_answers"
                | "feedback_count"
                | "interactions_90d"
                | "complaints_365d"
                | "open_tickets"
                | "payments_due"
                | "overdue_amount"
                | "recency_days"
                | "tenure_days"
                | "mean_purchase_gap_days"
                | "mean_resolution_hours"
                | "mean_days_late"
        )
}

/// True when `e` was known at `as_of`: it happened before and was recorded by then.
pub fn known_at(time: Micros, record_time: Micros, as_of: Micros) -> bool {
    time < as_of && record_time <= as_of
}

fn days(micros: Micros) -> f64 {
    micros as f64 / MICROS_PER_DAY as f64
}

fn mean(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        f64::NAN
    } else {
        xs.iter().sum::<f64>() / xs.len() as f64
    }
}

/// The attribute that names a customer's currency when their events do not (a
/// subscription source with charges but no invoices); never a model input.
pub const CURRENCY_ATTRIBUTE: &str = "currency";

/// The customer's currency as of `as_of`: that of their latest purchase or invoice known
/// then, else their `currency` attribute. Amounts are never converted; this says which
/// currency they are in.
pub fn currency_of(
    customer: &CustomerData,
    events: &[StoredEvent],
    as_of: Micros,
) -> Option<String> {
    let from_events = events
        .iter()
        .filter(|e| known_at(e.time, e.record_time, as_of))
        .filter_map(|e| match &e.payload {
            EventPayload::Transaction(t) => Some((e.time, &t.currency)),
            EventPayload::Payment(p) => Some((e.time, &p.currency)),
            _ => None,
        })
        .max_by_key(|(time, _)| *time)
        .map(|(_, c)| c.clone());
    from_events.or_else(|| match customer.attributes.get(CURRENCY_ATTRIBUTE) {
        Some(AttributeValue::String(code)) if !code.is_empty() => Some(code.clone()),
        _ => None,
    })
}

/// Money in major units (amount_minor / 100). Vitals assumes one reporting currency per
/// deployment for modelling; amounts are not converted.
fn major(amount_minor: i64) -> f64 {
    amount_minor as f64 / 100.0
}

/// The behavioural features of one customer as of `as_of`, in `BEHAVIOUR` order.
/// `events` may hold anything; what was not known at `as_of` is ignored. Order matters in
/// one place only: several events of one ticket or invoice are applied in slice order (the
/// last one's resolution, amount, due and paid times win), so pass timelines oldest first,
/// as the store returns them.
pub fn behaviour(signup_time: Option<Micros>, events: &[StoredEvent], as_of: Micros) -> [f64; 28] {
    // Saturating: stored times are arbitrary i64s, and no time difference may overflow.
    let window = |d: i64| as_of.saturating_sub(d * MICROS_PER_DAY);
    let mut purchases: Vec<(Micros, f64)> = Vec::new();
    let mut nps: Vec<(Micros, f64)> = Vec::new();
    let mut csat = Vec::new();
    let mut ces = Vec::new();
    let mut feedback_count = 0.0;
    let mut interactions_90d = 0.0;
    let mut complaints_365d = 0.0;
    // ticket -> (opened, resolved as known at as_of)
    let mut tickets: HashMap<&str, (Micros, Option<Micros>)> = HashMap::new();
    // invoice -> (amount, due, paid as known at as_of)
    let mut invoices: HashMap<&str, (i64, Option<Micros>, Option<Micros>)> = HashMap::new();
    let mut first_event: Option<Micros> = None;

    for e in events {
        if !known_at(e.time, e.record_time, as_of) {
            continue;
        }
        first_event = Some(first_event.map_or(e.time, |f| f.min(e.time)));
        match &e.payload {
            EventPayload::Transaction(t) => purchases.push((e.time, major(t.amount_minor))),
            EventPayload::Feedback(f) => {
                feedback_count += 1.0;
                // A review without a score has no number to average.
                let Some(score) = f.score.map(f64::from) else {
                    continue;
                };
                match f.kind {
                    FeedbackKind::Nps => nps.push((e.time, score)),
                    FeedbackKind::Csat => csat.push(score),
                    FeedbackKind::Ces => ces.push(score),
                    FeedbackKind::Review => {}
                }
            }
            EventPayload::Interaction(i) => {
                if e.time >= window(90) {
                    interactions_90d += 1.0;
                }
                if i.kind == InteractionKind::Complaint && e.time >= window(365) {
                    complaints_365d += 1.0;
                }
                let ticket = if i.ticket_id.is_empty() {
                    e.event_key.as_str()
                } else {
                    i.ticket_id.as_str()
                };
                let resolved = i.resolved_time.filter(|&r| r <= as_of);
                let entry = tickets.entry(ticket).or_insert((e.time, None));
                entry.0 = entry.0.min(e.time);
                if resolved.is_some() {
                    entry.1 = resolved;
                }
            }
            EventPayload::Payment(p) => {
                let invoice = if p.invoice_id.is_empty() {
                    e.event_key.as_str()
                } else {
                    p.invoice_id.as_str()
                };
                let paid = p.paid_time.filter(|&t| t <= as_of);
                let entry = invoices
                    .entry(invoice)
                    .or_insert((p.amount_minor, None, None));
                entry.0 = p.amount_minor;
                if p.due_time.is_some() {
                    entry.1 = p.due_time;
                }
                if paid.is_some() {
                    entry.2 = paid;
                }
            }
            // What the company did is not what the customer did: a model that learned
            // from actions would learn the company's targeting, not the customer.
            EventPayload::RetentionAction(_) => {}
        }
    }

    purchases.sort_by_key(|p| p.0);
    let count_since = |d: i64| purchases.iter().filter(|p| p.0 >= window(d)).count() as f64;
    let spend_between = |from: Micros, to: Micros| {
        purchases
            .iter()
            .filter(|p| p.0 >= from && p.0 < to)
            .map(|p| p.1)
            .sum::<f64>()
    };
    let spend_since = |d: i64| spend_between(window(d), as_of);
    let frequency_total = purchases.len() as f64;
    let monetary_total: f64 = purchases.iter().map(|p| p.1).sum();
    let recency = purchases
        .last()
        .map_or(f64::NAN, |p| days(as_of.saturating_sub(p.0)));
    let purchase_days: BTreeSet<i64> = purchases
        .iter()
        .map(|p| p.0.div_euclid(MICROS_PER_DAY))
        .collect();
    let mean_gap = match (purchase_days.first(), purchase_days.last()) {
        (Some(first), Some(last)) if purchase_days.len() >= 2 => {
            (last - first) as f64 / (purchase_days.len() - 1) as f64
        }
        _ => f64::NAN,
    };
    let last90 = spend_since(90);
    let prior90 = spend_between(window(180), window(90));
    let trend = if last90.abs() + prior90.abs() > 0.0 {
        (last90 - prior90) / (last90.abs() + prior90.abs())
    } else {
        0.0
    };
    let tenure = signup_time
        .or(first_event)
        .map_or(f64::NAN, |s| days(as_of.saturating_sub(s)).max(0.0));

    nps.sort_by_key(|n| n.0);
    let nps_scores: Vec<f64> = nps.iter().map(|n| n.1).collect();
    let detractors = nps_scores.iter().filter(|&&s| s <= 6.0).count() as f64;

    let open = tickets.values().filter(|t| t.1.is_none()).count() as f64;
    let resolution_hours: Vec<f64> = tickets
        .values()
        .filter_map(|(opened, resolved)| resolved.map(|r| r.saturating_sub(*opened) as f64 / 3.6e9))
        .collect();

    let due: Vec<&(i64, Option<Micros>, Option<Micros>)> = invoices
        .values()
        .filter(|i| i.1.is_some_and(|d| d < as_of))
        .collect();
    let mut late = 0.0;
    let mut days_late = Vec::with_capacity(due.len());
    let mut overdue = 0.0;
    for (amount, due_time, paid) in &due {
        let due_time = due_time.unwrap_or(as_of);
        let settled = paid.unwrap_or(as_of);
        if paid.is_none() || settled > due_time {
            late += 1.0;
        }
        if paid.is_none() {
            overdue += major(*amount);
        }
        days_late.push(days(settled.saturating_sub(due_time)).max(0.0));
    }
    let late_share = if due.is_empty() {
        f64::NAN
    } else {
        late / due.len() as f64
    };

    // Filled by name: the array's order is `Behaviour::ALL`'s.
    let mut out = [f64::NAN; 28];
    for (feature, value) in [
        (Behaviour::RecencyDays, recency),
        (Behaviour::Frequency30d, count_since(30)),
        (Behaviour::Frequency90d, count_since(90)),
        (Behaviour::Frequency365d, count_since(365)),
        (Behaviour::FrequencyTotal, frequency_total),
        (Behaviour::Monetary30d, spend_since(30)),
        (Behaviour::Monetary90d, last90),
        (Behaviour::Monetary365d, spend_since(365)),
        (Behaviour::MonetaryTotal, monetary_total),
        (
            Behaviour::AvgOrderValue,
            if frequency_total > 0.0 {
                monetary_total / frequency_total
            } else {
                f64::NAN
            },
        ),
        (Behaviour::TenureDays, tenure),
        (Behaviour::DistinctPurchaseDays, purchase_days.len() as f64),
        (Behaviour::MeanPurchaseGapDays, mean_gap),
        (Behaviour::SpendTrend, trend),
        (
            Behaviour::NpsLast,
            nps_scores.last().copied().unwrap_or(f64::NAN),
        ),
        (Behaviour::NpsMean, mean(&nps_scores)),
        (Behaviour::CsatMean, mean(&csat)),
        (Behaviour::CesMean, mean(&ces)),
        (Behaviour::DetractorAnswers, detractors),
        (Behaviour::FeedbackCount, feedback_count),
        (Behaviour::Interactions90d, interactions_90d),
        (Behaviour::Complaints365d, complaints_365d),
        (Behaviour::OpenTickets, open),
        (Behaviour::MeanResolutionHours, mean(&resolution_hours)),
        (Behaviour::PaymentsDue, due.len() as f64),
        (Behaviour::LatePaymentShare, late_share),
        (Behaviour::MeanDaysLate, mean(&days_late)),
        (Behaviour::OverdueAmount, overdue),
    ] {
        out[feature as usize] = value;
    }
    out
}

/// One customer's raw inputs at a cutoff: behaviour plus typed attributes.
#[derive(Debug, Clone, PartialEq)]
pub struct RawFeatures {
    pub behaviour: [f64; 28],
    pub attributes: Attributes,
}

impl RawFeatures {
    pub fn of(customer: &CustomerData, events: &[StoredEvent], as_of: Micros) -> Self {
        Self {
            behaviour: behaviour(customer.signup_time, events, as_of),
            attributes: customer.attributes.clone(),
        }
    }
}

/// Where a model input column comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum ColumnSource {
    /// A behavioural feature (by name), `ln(1+x)` first when `log` is set.
    Behaviour { feature: String, log: bool },
    /// 1 when the behavioural feature was undefined, else 0.
    Missing { feature: String },
    /// A number (or bool as 0/1) attribute.
    Attribute { attribute: String },
    /// `ln(1+x)` of a non-negative number attribute with values above 1 (money, counts,
    /// tenures are heavy-tailed): the model gets both the linear and the log shape.
    AttributeLog { attribute: String },
    /// 1 when a string attribute has this value; `value: None` is the "other" bucket
    /// (a value not in the training vocabulary, or no value).
    Category {
        attribute: String,
        value: Option<String>,
    },
}

/// One model input column and its standardization, learned on the training set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    #[serde(flatten)]
    pub source: ColumnSource,
    /// Imputed for undefined values, and subtracted when standardizing.
    pub mean: f64,
    pub std: f64,
}

/// The feature schema a model was trained with: its columns in order, with their
/// vocabularies and normalisation. Published in every manifest; a model is only ever
/// scored through its own schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureSchema {
    pub columns: Vec<Column>,
}

/// Most distinct values kept per string attribute; rarer ones fall into "other".
const MAX_VOCABULARY: usize = 30;
/// A value needs this share of training rows to get its own column.
const MIN_CATEGORY_SHARE: f64 = 0.005;

fn behaviour_index(name: &str) -> Option<usize> {
    Behaviour::from_name(name).map(|b| b as usize)
}

impl FeatureSchema {
    /// Learns the columns from training rows: every behavioural feature (with a missing
    /// indicator where any row lacked it), every numeric or bool attribute, and a one-hot
    /// of every string attribute's common values plus "other".
    pub fn fit(rows: &[&RawFeatures]) -> Self {
        let mut sources = Vec::new();
        for (i, name) in BEHAVIOUR.iter().enumerate() {
            sources.push(ColumnSource::Behaviour {
                feature: (*name).to_owned(),
                log: is_heavy_tailed(name),
            });
            if rows.iter().any(|r| r.behaviour[i].is_nan()) {
                sources.push(ColumnSource::Missing {
                    feature: (*name).to_owned(),
                });
            }
        }
        let mut numeric = BTreeSet::new();
        let mut categories: std::collections::BTreeMap<&str, HashMap<&str, usize>> =
            Default::default();
        for r in rows {
            for (name, value) in &r.attributes {
                if name == CURRENCY_ATTRIBUTE {
                    // Which currency amounts are in says nothing about the customer.
                    continue;
                }
                match value {
                    AttributeValue::Number(_) | AttributeValue::Bool(_) => {
                        numeric.insert(name.as_str());
                    }
                    AttributeValue::String(s) => {
                        *categories
                            .entry(name.as_str())
                            .or_default()
                            .entry(s.as_str())
                            .or_default() += 1;
                    }
                }
            }
        }
        for name in &numeric {
            if !categories.contains_key(name) {
                sources.push(ColumnSource::Attribute {
                    attribute: (*name).to_owned(),
                });
                let numbers = rows.iter().filter_map(|r| match r.attributes.get(*name) {
                    Some(AttributeValue::Number(x)) => Some(*x),
                    _ => None,
                });
                let (min, max) = numbers.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
                    (lo.min(x), hi.max(x))
                });
                if min >= 0.0 && max > 1.0 {
                    sources.push(ColumnSource::AttributeLog {
                        attribute: (*name).to_owned(),
                    });
                }
            }
        }
        let min_count = ((rows.len() as f64) * MIN_CATEGORY_SHARE).ceil() as usize;
        for (name, counts) in &categories {
            let mut values: Vec<(&str, usize)> = counts
                .iter()
                .filter(|(_, c)| **c >= min_count.max(1))
                .map(|(v, c)| (*v, *c))
                .collect();
            values.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
            values.truncate(MAX_VOCABULARY);
            values.sort_by(|a, b| a.0.cmp(b.0));
            for (value, _) in values {
                sources.push(ColumnSource::Category {
                    attribute: (*name).to_owned(),
                    value: Some(value.to_owned()),
                });
            }
            sources.push(ColumnSource::Category {
                attribute: (*name).to_owned(),
                value: None,
            });
        }

        let mut schema = FeatureSchema {
            columns: sources
                .into_iter()
                .map(|source| Column {
                    name: column_name(&source),
                    source,
                    mean: 0.0,
                    std: 1.0,
                })
                .collect(),
        };
        // Standardize on the training rows, ignoring undefined values, in one streaming
        // pass (Welford), so memory does not grow with rows × columns.
        let width = schema.columns.len();
        let (mut count, mut mean, mut m2) =
            (vec![0u64; width], vec![0.0f64; width], vec![0.0f64; width]);
        for r in rows {
            for (c, v) in schema.raw_values(r).into_iter().enumerate() {
                if v.is_finite() {
                    count[c] += 1;
                    let delta = v - mean[c];
                    mean[c] += delta / count[c] as f64;
                    m2[c] += delta * (v - mean[c]);
                }
            }
        }
        for (c, column) in schema.columns.iter_mut().enumerate() {
            let var = if count[c] > 1 {
                m2[c] / (count[c] - 1) as f64
            } else {
                0.0
            };
            column.mean = if count[c] > 0 && mean[c].is_finite() {
                mean[c]
            } else {
                0.0
            };
            column.std = if var.sqrt() > 1e-12 { var.sqrt() } else { 1.0 };
        }
        schema
    }

    pub fn len(&self) -> usize {
        self.columns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }

    pub fn names(&self) -> Vec<&str> {
        self.columns.iter().map(|c| c.name.as_str()).collect()
    }

    /// The model input for one customer: imputed and standardized, never NaN.
    pub fn transform(&self, raw: &RawFeatures) -> Vec<f32> {
        let mut out = Vec::with_capacity(self.columns.len());
        self.transform_into(raw, &mut out);
        out
    }

    /// As `transform`, appending to `out` (to fill one row of a larger matrix).
    pub fn transform_into(&self, raw: &RawFeatures, out: &mut Vec<f32>) {
        self.standardize_into(&self.raw_values(raw), out);
    }

    /// The model input from values `raw_values` returned: for callers that need both
    /// (an evaluation reports the raw value beside each factor), without computing
    /// them twice.
    pub fn standardize(&self, raw_values: &[f64]) -> Vec<f32> {
        let mut out = Vec::with_capacity(self.columns.len());
        self.standardize_into(raw_values, &mut out);
        out
    }

    fn standardize_into(&self, raw_values: &[f64], out: &mut Vec<f32>) {
        for (c, &v) in self.columns.iter().zip(raw_values) {
            let v = if v.is_finite() { v } else { c.mean };
            out.push(((v - c.mean) / c.std) as f32);
        }
    }

    /// Every column's value before standardizing; NaN where undefined.
    ///
    /// A string attribute's columns are contiguous, its vocabulary first and its "other"
    /// column last (as `fit` lays them out), so "other" is 1 exactly when no vocabulary
    /// column of the same attribute matched.
    pub fn raw_values(&self, raw: &RawFeatures) -> Vec<f64> {
        let mut out = Vec::with_capacity(self.columns.len());
        let mut matched: Option<(&str, bool)> = None;
        for c in &self.columns {
            let v = match &c.source {
                ColumnSource::Category { attribute, value } => {
                    let actual = match raw.attributes.get(attribute) {
                        Some(AttributeValue::String(s)) => Some(s.as_str()),
                        _ => None,
                    };
                    let seen = match matched {
                        Some((a, seen)) if a == attribute.as_str() => seen,
                        _ => false,
                    };
                    match value {
                        Some(v) => {
                            let hit = actual == Some(v.as_str());
                            matched = Some((attribute.as_str(), seen || hit));
                            f64::from(u8::from(hit))
                        }
                        None => {
                            matched = None;
                            f64::from(u8::from(!seen))
                        }
                    }
                }
                _ => c.raw_value(raw),
            };
            out.push(v);
        }
        out
    }

    /// Why this engine cannot compute the schema's inputs, if it cannot: a column that
    /// names a behavioural feature it does not know (a model from a newer engine), or a
    /// normalisation that would turn inputs into NaN or infinity.
    pub fn check_compatible(&self) -> Result<(), String> {
        if self.columns.is_empty() {
            return Err("the feature schema has no columns".into());
        }
        for c in &self.columns {
            if let ColumnSource::Behaviour { feature, .. } | ColumnSource::Missing { feature } =
                &c.source
                && behaviour_index(feature).is_none()
            {
                return Err(format!(
                    "column {:?} needs feature {feature:?}, which this engine does not compute",
                    c.name
                ));
            }
            if !c.mean.is_finite() || !c.std.is_finite() || c.std <= 0.0 {
                return Err(format!(
                    "column {:?} has an unusable normalisation (mean {}, std {})",
                    c.name, c.mean, c.std
                ));
            }
        }
        Ok(())
    }

    /// A short fingerprint of the schema, to check a model and its inputs agree.
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let json = serde_json::to_vec(self).unwrap_or_default();
        hex::encode(&Sha256::digest(&json)[..8])
    }
}

fn column_name(source: &ColumnSource) -> String {
    match source {
        ColumnSource::Behaviour { feature, .. } => feature.clone(),
        ColumnSource::Missing { feature } => format!("{feature}_missing"),
        ColumnSource::Attribute { attribute } => format!("attr.{attribute}"),
        ColumnSource::AttributeLog { attribute } => format!("attr.{attribute}.log"),
        ColumnSource::Category {
            attribute,
            value: Some(v),
        } => format!("attr.{attribute}={v}"),
        ColumnSource::Category {
            attribute,
            value: None,
        } => format!("attr.{attribute}=other"),
    }
}

impl Column {
    /// The value before standardizing; NaN when undefined.
    fn raw_value(&self, raw: &RawFeatures) -> f64 {
        match &self.source {
            ColumnSource::Behaviour { feature, log } => {
                let v = behaviour_index(feature).map_or(f64::NAN, |i| raw.behaviour[i]);
                if *log { v.max(0.0).ln_1p() } else { v }
            }
            ColumnSource::Missing { feature } => {
                let v = behaviour_index(feature).map_or(f64::NAN, |i| raw.behaviour[i]);
                if v.is_nan() { 1.0 } else { 0.0 }
            }
            ColumnSource::AttributeLog { attribute } => match raw.attributes.get(attribute) {
                Some(AttributeValue::Number(x)) => x.max(0.0).ln_1p(),
                _ => f64::NAN,
            },
            ColumnSource::Attribute { attribute } => match raw.attributes.get(attribute) {
                Some(AttributeValue::Number(x)) => *x,
                Some(AttributeValue::Bool(b)) => f64::from(u8::from(*b)),
                _ => f64::NAN,
            },
            // Categories need their neighbours: see `FeatureSchema::raw_values`.
            ColumnSource::Category { .. } => f64::NAN,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn features_are_named_once_and_found_by_name() {
        let mut seen = std::collections::BTreeSet::new();
        for (i, feature) in Behaviour::ALL.into_iter().enumerate() {
            assert_eq!(feature as usize, i, "ALL is in declaration order");
            assert_eq!(BEHAVIOUR[i], feature.name());
            assert_eq!(Behaviour::from_name(feature.name()), Some(feature));
            assert!(
                seen.insert(feature.name()),
                "{} named twice",
                feature.name()
            );
        }
        assert_eq!(Behaviour::from_name("no_such_feature"), None);
    }

    use super::*;

    const DAY: Micros = MICROS_PER_DAY;
    const T: Micros = 1_000 * DAY;

    fn event(key: &str, time: Micros, record_time: Micros, payload: EventPayload) -> StoredEvent {
        StoredEvent {
            customer_id: "c".into(),
            event_key: key.into(),
            time,
            record_time,
            payload,
        }
    }

    fn buy(key: &str, time: Micros, cents: i64) -> StoredEvent {
        event(
            key,
            time,
            time,
            EventPayload::Transaction(Transaction {
                amount_minor: cents,
                currency: "USD".into(),
                quantity: 1,
                category: String::new(),
                channel: String::new(),
            }),
        )
    }

    fn get(f: &[f64; 28], name: &str) -> f64 {
        f[behaviour_index(name).expect("a feature")]
    }

    #[test]
    fn rfm_windows_and_trend() {
        let events = vec![
            buy("a", T - 10 * DAY, 1_000),
            buy("b", T - 50 * DAY, 2_000),
            buy("c", T - 100 * DAY, 4_000),
            buy("d", T - 400 * DAY, 8_000),
        ];
        let f = behaviour(Some(T - 500 * DAY), &events, T);
        assert_eq!(get(&f, "recency_days"), 10.0);
        assert_eq!(get(&f, "frequency_30d"), 1.0);
        assert_eq!(get(&f, "frequency_90d"), 2.0);
        assert_eq!(get(&f, "frequency_365d"), 3.0);
        assert_eq!(get(&f, "frequency_total"), 4.0);
        assert_eq!(get(&f, "monetary_90d"), 30.0);
        assert_eq!(get(&f, "monetary_total"), 150.0);
        assert_eq!(get(&f, "avg_order_value"), 37.5);
        assert_eq!(get(&f, "tenure_days"), 500.0);
        assert_eq!(get(&f, "distinct_purchase_days"), 4.0);
        assert_eq!(get(&f, "mean_purchase_gap_days"), 130.0);
        // last 90 days: 30; the 90 before: 40.
        assert!((get(&f, "spend_trend") - (30.0 - 40.0) / 70.0).abs() < 1e-12);
    }

    #[test]
    fn nothing_from_the_future_or_recorded_late_leaks_in() {
        let mut late = buy("late", T - 5 * DAY, 100_000);
        late.record_time = T + DAY; // happened before T, learned after T
        let events = vec![
            buy("past", T - 20 * DAY, 500),
            late,
            buy("future", T + DAY, 9_999),
        ];
        let f = behaviour(None, &events, T);
        assert_eq!(get(&f, "frequency_total"), 1.0);
        assert_eq!(get(&f, "monetary_total"), 5.0);
        assert_eq!(get(&f, "recency_days"), 20.0);
        // An event exactly at T is not before T.
        let f = behaviour(None, &[buy("at", T, 100)], T);
        assert_eq!(get(&f, "frequency_total"), 0.0);
    }

    #[test]
    fn missing_data_is_nan_not_a_crash() {
        let f = behaviour(None, &[], T);
        for name in [
            "recency_days",
            "avg_order_value",
            "tenure_days",
            "nps_last",
            "late_payment_share",
        ] {
            assert!(get(&f, name).is_nan(), "{name}");
        }
        assert_eq!(get(&f, "frequency_total"), 0.0);
        assert_eq!(get(&f, "spend_trend"), 0.0);
    }

    #[test]
    fn feedback_tickets_and_payments() {
        let nps = |key: &str, t: Micros, score: i32| {
            event(
                key,
                t,
                t,
                EventPayload::Feedback(Feedback {
                    kind: FeedbackKind::Nps,
                    score: Some(score),
                    comment: None,
                    channel: String::new(),
                }),
            )
        };
        let ticket = |key: &str, t: Micros, id: &str, resolved: Option<Micros>, kind| {
            event(
                key,
                t,
                t,
                EventPayload::Interaction(Interaction {
                    note: None,
                    kind,
                    severity: Severity::High,
                    category: String::new(),
                    channel: String::new(),
                    ticket_id: id.into(),
                    resolved_time: resolved,
                }),
            )
        };
        let invoice = |key: &str, t: Micros, id: &str, due: Micros, paid: Option<Micros>| {
            event(
                key,
                t,
                t,
                EventPayload::Payment(Payment {
                    invoice_id: id.into(),
                    amount_minor: 5_000,
                    currency: "USD".into(),
                    due_time: Some(due),
                    paid_time: paid,
                    method: String::new(),
                }),
            )
        };
        let events = vec![
            nps("n1", T - 30 * DAY, 9),
            nps("n2", T - 3 * DAY, 3),
            ticket("t1", T - 10 * DAY, "A", None, InteractionKind::Complaint),
            ticket(
                "t1-done",
                T - 9 * DAY,
                "A",
                Some(T - 9 * DAY),
                InteractionKind::Complaint,
            ),
            ticket("t2", T - 2 * DAY, "B", None, InteractionKind::Inquiry),
            // resolved only after T: still open at T
            ticket("t3", T - DAY, "C", Some(T + DAY), InteractionKind::Inquiry),
            invoice("i1", T - 60 * DAY, "I1", T - 30 * DAY, Some(T - 20 * DAY)),
            invoice("i2", T - 40 * DAY, "I2", T - 10 * DAY, None),
            invoice("i3", T - 5 * DAY, "I3", T + 20 * DAY, None),
        ];
        let f = behaviour(None, &events, T);
        assert_eq!(get(&f, "nps_last"), 3.0);
        assert_eq!(get(&f, "nps_mean"), 6.0);
        assert_eq!(get(&f, "detractor_answers"), 1.0);
        assert_eq!(get(&f, "interactions_90d"), 4.0);
        assert_eq!(get(&f, "complaints_365d"), 2.0);
        assert_eq!(get(&f, "open_tickets"), 2.0);
        assert_eq!(get(&f, "mean_resolution_hours"), 24.0);
        assert_eq!(get(&f, "payments_due"), 2.0);
        assert_eq!(get(&f, "late_payment_share"), 1.0);
        assert_eq!(get(&f, "mean_days_late"), 10.0);
        assert_eq!(get(&f, "overdue_amount"), 50.0);
    }

    fn raw(attrs: &[(&str, AttributeValue)]) -> RawFeatures {
        RawFeatures {
            behaviour: behaviour(None, &[], T),
            attributes: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        }
    }

    #[test]
    fn schema_one_hots_with_other_and_standardizes() {
        let s = |v: &str| AttributeValue::String(v.into());
        let mut rows = Vec::new();
        for i in 0..100 {
            let contract = if i % 2 == 0 { "monthly" } else { "yearly" };
            rows.push(raw(&[
                ("contract", s(contract)),
                ("charge", AttributeValue::Number(f64::from(i))),
                ("senior", AttributeValue::Bool(i % 4 == 0)),
            ]));
        }
        let schema = FeatureSchema::fit(&rows.iter().collect::<Vec<_>>());
        let names = schema.names();
        assert!(names.contains(&"attr.contract=monthly"));
        assert!(names.contains(&"attr.contract=yearly"));
        assert!(names.contains(&"attr.contract=other"));
        assert!(names.contains(&"attr.charge"));
        assert!(
            names.contains(&"attr.charge.log"),
            "a heavy-tailed number also enters as a log"
        );
        assert!(!names.contains(&"attr.senior.log"), "never for a bool");
        assert!(names.contains(&"attr.senior"));
        assert!(names.contains(&"recency_days_missing"));
        let at =
            |row: &[f32], name: &str| row[names.iter().position(|n| *n == name).expect("column")];

        let unseen = schema.transform(&raw(&[("contract", s("weekly"))]));
        assert!(unseen.iter().all(|v| v.is_finite()));
        assert!(at(&unseen, "attr.contract=other") > 0.0);
        assert!(at(&unseen, "attr.contract=monthly") < 0.0);
        // A missing number is imputed with the training mean: 0 after standardizing.
        assert_eq!(at(&unseen, "attr.charge"), 0.0);

        let monthly = schema.transform(&raw(&[("contract", s("monthly"))]));
        assert!(at(&monthly, "attr.contract=monthly") > 0.0);
        assert!(at(&monthly, "attr.contract=other") <= 0.0);

        // Standardized on the training rows.
        let charge: Vec<f32> = rows
            .iter()
            .map(|r| at(&schema.transform(r), "attr.charge"))
            .collect();
        let m = charge.iter().sum::<f32>() / charge.len() as f32;
        assert!(m.abs() < 1e-5);

        // The schema survives JSON unchanged.
        let json = serde_json::to_string(&schema).expect("serializes");
        let back: FeatureSchema = serde_json::from_str(&json).expect("parses");
        assert_eq!(back, schema);
        assert_eq!(back.fingerprint(), schema.fingerprint());
    }
}
