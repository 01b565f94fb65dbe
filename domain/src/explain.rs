//! Reasons in words: a churn model's per-column contributions folded into the features a
//! person knows ("tenure", "contract", "days since last purchase"), each with the
//! customer's value in its own unit ("3 months", "Month-to-month", "41 days",
//! "120.50 USD").
//!
//! A model sees one feature as several columns: a number and its logarithm, a missing
//! indicator beside it, one column per common value of a string attribute plus "other".
//! Their contributions add up to the feature's (log-odds are additive in a logistic
//! model; for the others each column's contribution is measured against the average,
//! and the sum is the same approximation), so a feature is explained once, by the sum.
//!
//! An attribute the customer does not have is not a reason for them: a customer with no
//! contract is not "explained" by the contract columns of customers who have one (their
//! contribution is what the model learned about *having no such attribute*, a property of
//! the population mix, not of the customer).

use std::collections::BTreeMap;

use crate::evaluation::Factor;
use crate::features::{Behaviour, ColumnSource, FeatureSchema, RawFeatures};
use crate::records::AttributeValue;

/// The feature a model column belongs to: what a person reads as one reason.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum FeatureKey {
    Behaviour(Behaviour),
    Attribute(String),
    /// A column this build cannot place (a behaviour it does not know): kept as named.
    Other(String),
}

impl FeatureKey {
    /// The key of a schema column.
    pub fn of(source: &ColumnSource) -> Self {
        match source {
            ColumnSource::Behaviour { feature, .. } | ColumnSource::Missing { feature } => {
                Behaviour::from_name(feature)
                    .map_or_else(|| Self::Other(feature.clone()), Self::Behaviour)
            }
            ColumnSource::Attribute { attribute }
            | ColumnSource::AttributeLog { attribute }
            | ColumnSource::Category { attribute, .. } => Self::Attribute(attribute.clone()),
        }
    }

    /// The stable name APIs and files carry: the behaviour's name, or `attr.NAME`.
    pub fn name(&self) -> String {
        match self {
            Self::Behaviour(b) => b.name().to_owned(),
            Self::Attribute(a) => format!("attr.{a}"),
            Self::Other(n) => n.clone(),
        }
    }

    /// What a person calls it.
    pub fn label(&self) -> String {
        match self {
            Self::Behaviour(b) => behaviour_label(*b).to_owned(),
            Self::Attribute(a) => humanize(a),
            Self::Other(n) => n.clone(),
        }
    }
}

/// What a person calls a behavioural feature.
pub fn behaviour_label(b: Behaviour) -> &'static str {
    use Behaviour::*;
    match b {
        RecencyDays => "days since last purchase",
        Frequency30d => "purchases in the last 30 days",
        Frequency90d => "purchases in the last 90 days",
        Frequency365d => "purchases in the last 12 months",
        FrequencyTotal => "purchases in all",
        Monetary30d => "spend in the last 30 days",
        Monetary90d => "spend in the last 90 days",
        Monetary365d => "spend in the last 12 months",
        MonetaryTotal => "spend in all",
        AvgOrderValue => "average order",
        TenureDays => "time since sign-up",
        DistinctPurchaseDays => "days with a purchase",
        MeanPurchaseGapDays => "average time between purchases",
        SpendTrend => "spend trend (last 90 days against the 90 before)",
        NpsLast => "last NPS answer",
        NpsMean => "mean NPS",
        CsatMean => "mean CSAT",
        CesMean => "mean effort score (CES)",
        DetractorAnswers => "NPS answers of 0-6 (detractor)",
        FeedbackCount => "survey answers",
        Interactions90d => "contacts in the last 90 days",
        Complaints365d => "complaints in the last 12 months",
        OpenTickets => "open support tickets",
        MeanResolutionHours => "average time to resolve a ticket",
        PaymentsDue => "invoices due so far",
        LatePaymentShare => "invoices paid late",
        MeanDaysLate => "average delay of a late payment",
        OverdueAmount => "overdue amount",
    }
}

/// A behavioural feature's value in its own unit; `currency` for money (ISO code).
pub fn behaviour_value(b: Behaviour, v: f64, currency: Option<&str>) -> String {
    use Behaviour::*;
    if !v.is_finite() {
        return match b {
            RecencyDays | AvgOrderValue | MeanPurchaseGapDays => "no purchase yet".into(),
            NpsLast | NpsMean => "no NPS answer yet".into(),
            CsatMean => "no CSAT answer yet".into(),
            CesMean => "no effort score yet".into(),
            MeanResolutionHours => "no ticket resolved yet".into(),
            LatePaymentShare | MeanDaysLate => "no invoice due yet".into(),
            TenureDays => "not known".into(),
            _ => "none".into(),
        };
    }
    match b {
        RecencyDays | DistinctPurchaseDays | MeanPurchaseGapDays | MeanDaysLate => {
            count(v, "day", "days")
        }
        Frequency30d | Frequency90d | Frequency365d | FrequencyTotal => {
            count(v, "purchase", "purchases")
        }
        Monetary30d | Monetary90d | Monetary365d | MonetaryTotal | AvgOrderValue
        | OverdueAmount => money(v, currency),
        TenureDays => duration_days(v),
        SpendTrend => {
            if v.abs() < 0.005 {
                "unchanged".into()
            } else if v >= 1.0 {
                "buying again after 90 days without".into()
            } else if v <= -1.0 {
                "stopped buying".into()
            } else {
                // (last - prior) / (last + prior) = t  ⇒  last / prior = (1 + t) / (1 - t).
                let ratio = (1.0 + v) / (1.0 - v);
                format!("{:+.0}%", (ratio - 1.0) * 100.0)
            }
        }
        NpsLast => format!("{v:.0} of 10"),
        NpsMean => format!("{v:.1} of 10"),
        CsatMean => format!("{v:.1} of 5"),
        CesMean => format!("{v:.1} of 7"),
        DetractorAnswers | FeedbackCount => count(v, "answer", "answers"),
        Interactions90d => count(v, "contact", "contacts"),
        Complaints365d => count(v, "complaint", "complaints"),
        OpenTickets => count(v, "ticket", "tickets"),
        MeanResolutionHours => {
            if v >= 48.0 {
                format!("{:.1} days", v / 24.0)
            } else {
                format!("{v:.0} hours")
            }
        }
        PaymentsDue => count(v, "invoice", "invoices"),
        LatePaymentShare => format!("{:.0}%", v * 100.0),
    }
}

fn count(v: f64, one: &str, many: &str) -> String {
    let n = v.round();
    if (n - 1.0).abs() < f64::EPSILON {
        format!("1 {one}")
    } else if (v - n).abs() < 1e-9 {
        format!("{n:.0} {many}")
    } else {
        format!("{v:.1} {many}")
    }
}

/// Money with its currency, two decimals and thousands separated: "1,234.50 USD".
pub fn money(v: f64, currency: Option<&str>) -> String {
    let cents = (v * 100.0).round();
    let sign = if cents < 0.0 { "-" } else { "" };
    let cents = cents.abs();
    let whole = (cents / 100.0).trunc() as u64;
    let fraction = (cents % 100.0) as u64;
    let grouped = thousands(whole);
    match currency {
        Some(code) if !code.is_empty() => format!("{sign}{grouped}.{fraction:02} {code}"),
        _ => format!("{sign}{grouped}.{fraction:02}"),
    }
}

/// A whole number with thousands separated: `1234567` → "1,234,567" (the reports' counts
/// and the money above).
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A span of days as a person says it: days under two months, months under two years,
/// then years.
pub fn duration_days(days: f64) -> String {
    const MONTH: f64 = 365.25 / 12.0;
    if days < 60.0 {
        count(days.round(), "day", "days")
    } else if days < 730.0 {
        count((days / MONTH).round(), "month", "months")
    } else {
        format!("{:.1} years", days / 365.25)
    }
}

/// An attribute name as words: `MonthlyCharges` → "monthly charges",
/// `payment_method` → "payment method", `SeniorCitizen` → "senior citizen".
pub fn humanize(name: &str) -> String {
    let mut out = String::new();
    let mut previous: Option<char> = None;
    for c in name.chars() {
        if c == '_' || c == '-' || c == '.' {
            if !out.ends_with(' ') && !out.is_empty() {
                out.push(' ');
            }
        } else if c.is_uppercase() {
            if previous.is_some_and(|p| p.is_lowercase() || p.is_ascii_digit()) {
                out.push(' ');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
        previous = Some(c);
    }
    out.trim().to_owned()
}

/// An attribute's value as words. Numbers named like money get the currency; a tenure
/// attribute (Telco's, in months) gets months; flags read "yes" or "no".
fn attribute_value(name: &str, value: &AttributeValue, currency: Option<&str>) -> String {
    let lower = name.to_lowercase();
    match value {
        AttributeValue::Bool(b) => if *b { "yes" } else { "no" }.into(),
        AttributeValue::String(s) => s.clone(),
        AttributeValue::Number(v) => {
            let moneyish = ["charge", "amount", "price", "revenue", "spend", "fee"]
                .iter()
                .any(|m| lower.contains(m));
            if moneyish {
                money(*v, currency)
            } else if lower == "tenure" || lower.ends_with("months") {
                count(*v, "month", "months")
            } else if lower.contains("senior") && (*v == 0.0 || *v == 1.0) {
                if *v == 1.0 { "yes" } else { "no" }.into()
            } else if (v - v.round()).abs() < 1e-9 {
                format!("{v:.0}")
            } else {
                format!("{v:.2}")
            }
        }
    }
}

/// One factor per feature with a contribution: the columns of each feature summed, the
/// customer's value in words (from `raw` when known: a bare model input row has no
/// units), attributes the customer lacks left out. Unsorted.
pub fn factors(
    schema: &FeatureSchema,
    contributions: &[f64],
    raw: Option<&RawFeatures>,
    currency: Option<&str>,
) -> Vec<Factor> {
    let mut sums: BTreeMap<FeatureKey, f64> = BTreeMap::new();
    for (column, &c) in schema.columns.iter().zip(contributions) {
        *sums.entry(FeatureKey::of(&column.source)).or_default() += c;
    }
    sums.into_iter()
        .filter(|(_, c)| c.abs() > 1e-6)
        .filter_map(|(key, contribution)| {
            let (value, display_value) = match (&key, raw) {
                (FeatureKey::Behaviour(b), Some(raw)) => {
                    let v = b.of(&raw.behaviour);
                    (v.is_finite().then_some(v), behaviour_value(*b, v, currency))
                }
                (FeatureKey::Attribute(a), Some(raw)) => {
                    let value = raw.attributes.get(a)?;
                    let number = match value {
                        AttributeValue::Number(v) => Some(*v),
                        AttributeValue::Bool(b) => Some(f64::from(u8::from(*b))),
                        AttributeValue::String(_) => None,
                    };
                    (number, attribute_value(a, value, currency))
                }
                _ => (None, String::new()),
            };
            Some(Factor {
                feature: key.name(),
                label: key.label(),
                value,
                display_value,
                contribution,
            })
        })
        .collect()
}

/// Importance per feature: the mean absolute summed contribution over `rows` (each a
/// row's per-column contributions), largest first, as (name, label, importance).
pub fn importance(schema: &FeatureSchema, rows: &[Vec<f64>]) -> Vec<(String, String, f64)> {
    let keys: Vec<FeatureKey> = schema
        .columns
        .iter()
        .map(|c| FeatureKey::of(&c.source))
        .collect();
    let mut totals: BTreeMap<&FeatureKey, f64> = BTreeMap::new();
    for row in rows {
        let mut sums: BTreeMap<&FeatureKey, f64> = BTreeMap::new();
        for (key, c) in keys.iter().zip(row) {
            *sums.entry(key).or_default() += c;
        }
        for (key, s) in sums {
            *totals.entry(key).or_default() += s.abs();
        }
    }
    let n = rows.len().max(1) as f64;
    let mut out: Vec<(String, String, f64)> = totals
        .into_iter()
        .map(|(k, t)| (k.name(), k.label(), t / n))
        .collect();
    out.sort_by(|a, b| b.2.total_cmp(&a.2));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::Column;

    fn column(source: ColumnSource) -> Column {
        Column {
            name: String::new(),
            source,
            mean: 0.0,
            std: 1.0,
        }
    }

    #[test]
    fn values_read_in_their_units() {
        assert_eq!(
            behaviour_value(Behaviour::TenureDays, 92.0, None),
            "3 months"
        );
        assert_eq!(
            behaviour_value(Behaviour::TenureDays, 20.0, None),
            "20 days"
        );
        assert_eq!(
            behaviour_value(Behaviour::TenureDays, 1000.0, None),
            "2.7 years"
        );
        assert_eq!(
            behaviour_value(Behaviour::RecencyDays, 41.0, None),
            "41 days"
        );
        assert_eq!(
            behaviour_value(Behaviour::RecencyDays, f64::NAN, None),
            "no purchase yet"
        );
        assert_eq!(behaviour_value(Behaviour::NpsMean, 4.0, None), "4.0 of 10");
        assert_eq!(
            behaviour_value(Behaviour::Monetary365d, 1234.5, Some("USD")),
            "1,234.50 USD"
        );
        assert_eq!(
            behaviour_value(Behaviour::Complaints365d, 1.0, None),
            "1 complaint"
        );
        assert_eq!(
            behaviour_value(Behaviour::LatePaymentShare, 0.25, None),
            "25%"
        );
        // Spend of 30 in the last 90 days against 10 in the 90 before: trend 0.5, +200%.
        assert_eq!(behaviour_value(Behaviour::SpendTrend, 0.5, None), "+200%");
        assert_eq!(money(-0.5, Some("EUR")), "-0.50 EUR");
        assert_eq!(money(1_000_000.0, None), "1,000,000.00");
    }

    #[test]
    fn attribute_names_become_words() {
        assert_eq!(humanize("MonthlyCharges"), "monthly charges");
        assert_eq!(humanize("payment_method"), "payment method");
        assert_eq!(humanize("Contract"), "contract");
        assert_eq!(humanize("SeniorCitizen"), "senior citizen");
    }

    #[test]
    fn a_feature_s_columns_fold_into_one_factor_and_absent_attributes_are_no_reason() {
        let schema = FeatureSchema {
            columns: vec![
                column(ColumnSource::Behaviour {
                    feature: "tenure_days".into(),
                    log: true,
                }),
                column(ColumnSource::Missing {
                    feature: "tenure_days".into(),
                }),
                column(ColumnSource::Category {
                    attribute: "Contract".into(),
                    value: Some("Month-to-month".into()),
                }),
                column(ColumnSource::Category {
                    attribute: "Contract".into(),
                    value: None,
                }),
                column(ColumnSource::Attribute {
                    attribute: "plan_price".into(),
                }),
            ],
        };
        let mut raw = RawFeatures {
            behaviour: [f64::NAN; 28],
            attributes: Default::default(),
        };
        raw.behaviour[Behaviour::TenureDays as usize] = 92.0;
        raw.attributes.insert(
            "Contract".into(),
            AttributeValue::String("Month-to-month".into()),
        );
        let f = factors(
            &schema,
            &[0.5, 0.25, 1.0, -0.1, 0.3],
            Some(&raw),
            Some("USD"),
        );
        assert_eq!(f.len(), 2, "{f:?}");
        let tenure = f
            .iter()
            .find(|f| f.feature == "tenure_days")
            .expect("tenure");
        assert_eq!(tenure.label, "time since sign-up");
        assert_eq!(tenure.display_value, "3 months");
        assert!((tenure.contribution - 0.75).abs() < 1e-12);
        let contract = f
            .iter()
            .find(|f| f.feature == "attr.Contract")
            .expect("contract");
        assert_eq!(contract.label, "contract");
        assert_eq!(contract.display_value, "Month-to-month");
        assert!((contract.contribution - 0.9).abs() < 1e-12);
        // plan_price: the customer has none, so its 0.3 explains nothing about them.
        assert!(f.iter().all(|f| f.feature != "attr.plan_price"));

        let imp = importance(&schema, &[vec![0.5, 0.25, 1.0, -0.1, 0.3]]);
        assert_eq!(imp[0].1, "contract");
        assert_eq!(imp.len(), 3, "one entry per feature, not per column");
    }
}
