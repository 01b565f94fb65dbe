//! Lifetime value of a contractual (subscription) customer: what they pay each month,
//! for as long as they are expected to stay, discounted.
//!
//! Retention comes from the churn model's own probability: a churn probability `p` over
//! a horizon of `h` days is a monthly survival `s = (1 - p)^(30.44 / h)` (a constant
//! hazard within the year), so the customer is still paying in month `m` with
//! probability `s^m`, and
//!
//! ```text
//! value = Σ_{m=1..M} revenue × margin × s^m / (1 + d)^m
//! ```
//!
//! with the same horizon `M`, monthly discount `d` and margin as the non-contractual
//! model (BG/NBD + Gamma-Gamma), so both kinds of customer are valued in the same units
//! and expected loss ranks them together. The shifted-beta-geometric model (Fader and
//! Hardie) would learn the retention curve from cohorts; the churn model already scores
//! each customer's own risk from their history, so its probability is used directly.
//!
//! The monthly revenue is what the customer was invoiced over the last 90 days (per
//! month), or, without invoices, a monthly-charge attribute (`MonthlyCharges`,
//! `monthly_charge`, `mrr`: how subscription sources such as the Telco sample carry it).

use serde::{Deserialize, Serialize};

use crate::explain::money;
use crate::records::{AttributeValue, CustomerData, EventPayload, StoredEvent};
use crate::time::{MICROS_PER_DAY, Micros};
use crate::words::Language;

/// Days in an average month.
pub const DAYS_PER_MONTH: f64 = 365.25 / 12.0;
/// The window over which invoices give the monthly revenue.
const REVENUE_WINDOW_DAYS: i64 = 90;
/// Attribute names (compared without case, `_` and spaces) that carry a monthly charge.
const MONTHLY_CHARGE_ATTRIBUTES: [&str; 4] =
    ["monthlycharges", "monthlycharge", "mrr", "monthlyfee"];

/// Where a subscription's monthly revenue came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevenueSource {
    /// Invoices in the last 90 days.
    Invoices,
    /// A monthly-charge attribute, by name.
    Attribute(String),
}

/// How a lifetime value was reached: the facts its sentence is made of, kept so that the
/// sentence can be written in the reader's language.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Basis {
    /// The purchase models, for a customer who has not bought in the days since sign-up.
    NeverBought { days_since_signup: f64 },
    /// The purchase models, for a customer with one purchase (no gap to judge by).
    OnePurchase,
    /// The purchase models: repeat purchase days, the last so many days ago.
    Purchases {
        repeat_days: f64,
        days_since_last: f64,
    },
    /// A subscription: its monthly revenue for the months the churn risk expects it paid.
    Subscription {
        monthly: f64,
        source: RevenueSource,
        expected_months: f64,
        horizon_months: u32,
        monthly_retention: f64,
        churn_probability: f64,
        churn_horizon_days: f64,
    },
}

impl Basis {
    /// Whether the value is a subscription's (else the purchase models').
    pub fn is_subscription(&self) -> bool {
        matches!(self, Self::Subscription { .. })
    }

    /// The sentence, with money in `currency`.
    pub fn words(&self, currency: Option<&str>, lang: Language) -> String {
        let models = lang.pick(
            "purchases (BG/NBD and Gamma-Gamma)",
            "购买模型（BG/NBD 与 Gamma-Gamma）",
        );
        match (self, lang) {
            (Self::NeverBought { days_since_signup }, Language::English) => format!(
                "{models}. No purchase yet in the {days_since_signup:.0} days since sign-up: \
                 valued at the shop's purchase rate and spend for a customer that quiet"
            ),
            (Self::NeverBought { days_since_signup }, Language::Chinese) => format!(
                "{models}。注册后 {days_since_signup:.0} 天尚无购买：按本店同样沉寂的客户的\
                 购买频率和消费估值"
            ),
            (Self::OnePurchase, Language::English) => format!(
                "{models}. One purchase so far: the model has seen no gap between purchases \
                 to judge by, so it counts the customer as still buying (probability alive \
                 1.00); the churn risk asks the narrower question of a purchase within its \
                 horizon"
            ),
            (Self::OnePurchase, Language::Chinese) => format!(
                "{models}。目前只购买过一次：模型还没有可据以判断的购买间隔，因此视其仍在购买\
                 （存活概率 1.00）；流失风险回答的是更窄的问题：在其时间窗内是否会再次购买"
            ),
            (
                Self::Purchases {
                    repeat_days,
                    days_since_last,
                },
                Language::English,
            ) => format!(
                "{models}: {repeat_days:.0} repeat purchase days, the last {days_since_last:.0} \
                 days ago"
            ),
            (
                Self::Purchases {
                    repeat_days,
                    days_since_last,
                },
                Language::Chinese,
            ) => format!(
                "{models}：{repeat_days:.0} 个重复购买日，最近一次在 {days_since_last:.0} 天前"
            ),
            (
                Self::Subscription {
                    monthly,
                    source,
                    expected_months,
                    horizon_months,
                    monthly_retention,
                    churn_probability,
                    churn_horizon_days,
                },
                lang,
            ) => {
                let monthly = money(*monthly, currency);
                let retention = monthly_retention * 100.0;
                let churn = churn_probability * 100.0;
                match (source, lang) {
                    (source, Language::English) => {
                        let source = match source {
                            RevenueSource::Invoices => "invoiced over the last 90 days".to_owned(),
                            RevenueSource::Attribute(name) => format!("its {name}"),
                        };
                        format!(
                            "subscription: {monthly} a month ({source}), paid for an expected \
                             {expected_months:.1} of the next {horizon_months} months (a \
                             {retention:.0}% chance of staying each month, from the churn risk \
                             of {churn:.0}% over {churn_horizon_days:.0} days)"
                        )
                    }
                    (source, Language::Chinese) => {
                        let source = match source {
                            RevenueSource::Invoices => "按近 90 天的账单".to_owned(),
                            RevenueSource::Attribute(name) => format!("按其 {name}"),
                        };
                        format!(
                            "订阅：每月 {monthly}（{source}），预计未来 {horizon_months} 个月中\
                             付费 {expected_months:.1} 个月（每月留存概率 {retention:.0}%，来自 \
                             {churn_horizon_days:.0} 天内 {churn:.0}% 的流失风险）"
                        )
                    }
                }
            }
        }
    }
}

/// A subscription's recurring revenue per month, in major units.
#[derive(Debug, Clone, PartialEq)]
pub struct MonthlyRevenue {
    pub amount: f64,
    pub source: RevenueSource,
}

/// The customer's monthly revenue as of `as_of`, from what was known then; None when
/// they have neither invoices in the last 90 days nor a monthly-charge attribute.
pub fn monthly_revenue(
    customer: &CustomerData,
    events: &[StoredEvent],
    as_of: Micros,
) -> Option<MonthlyRevenue> {
    let since = as_of.saturating_sub(REVENUE_WINDOW_DAYS * MICROS_PER_DAY);
    let invoiced: i64 = events
        .iter()
        .filter(|e| e.time >= since && e.time < as_of && e.record_time <= as_of)
        .filter_map(|e| match &e.payload {
            EventPayload::Payment(p) => Some(p.amount_minor),
            _ => None,
        })
        .sum();
    if invoiced > 0 {
        let months = REVENUE_WINDOW_DAYS as f64 / DAYS_PER_MONTH;
        return Some(MonthlyRevenue {
            amount: invoiced as f64 / 100.0 / months,
            source: RevenueSource::Invoices,
        });
    }
    customer.attributes.iter().find_map(|(name, value)| {
        let key: String = name
            .chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
            .collect();
        match value {
            AttributeValue::Number(v)
                if MONTHLY_CHARGE_ATTRIBUTES.contains(&key.as_str())
                    && v.is_finite()
                    && *v > 0.0 =>
            {
                Some(MonthlyRevenue {
                    amount: *v,
                    source: RevenueSource::Attribute(name.clone()),
                })
            }
            _ => None,
        }
    })
}

/// What leaving took with it, for the win-back list, in major units: a subscription's
/// revenue for a year at its last monthly rate (invoices before the churn, or its
/// monthly-charge attribute), or a shop customer's spend in the year up to their last
/// purchase. None for a customer who never paid anything.
pub fn value_lost(customer: &CustomerData, events: &[StoredEvent], as_of: Micros) -> Option<f64> {
    if customer.contractual {
        let at = customer.churn_time.map_or(as_of, |t| t.min(as_of));
        return monthly_revenue(customer, events, at).map(|r| r.amount * 12.0);
    }
    let known = |e: &&StoredEvent| e.time < as_of && e.record_time <= as_of;
    let purchases = || {
        events
            .iter()
            .filter(known)
            .filter_map(|e| match &e.payload {
                EventPayload::Transaction(t) => Some((e.time, t.amount_minor)),
                _ => None,
            })
    };
    let last = purchases().map(|(t, _)| t).max()?;
    let since = last.saturating_sub(365 * MICROS_PER_DAY);
    let minor: i64 = purchases()
        .filter(|(t, _)| *t > since)
        .map(|(_, a)| a)
        .sum();
    Some(minor as f64 / 100.0)
}

/// A subscription's value over `months`, from its churn probability `p` over
/// `horizon_days`.
#[derive(Debug, Clone, PartialEq)]
pub struct SubscriptionValue {
    /// The chance of still paying a month from now.
    pub monthly_retention: f64,
    /// Months of the horizon the customer is expected to pay for: Σ s^m.
    pub expected_months: f64,
    pub lifetime_value: f64,
}

pub fn subscription_value(
    p: f64,
    horizon_days: f64,
    monthly: f64,
    months: u32,
    monthly_discount: f64,
    margin: f64,
) -> SubscriptionValue {
    let p = p.clamp(0.0, 1.0);
    let s = if horizon_days > 0.0 {
        (1.0 - p).powf(DAYS_PER_MONTH / horizon_days)
    } else {
        1.0 - p
    };
    let mut expected_months = 0.0;
    let mut value = 0.0;
    let mut alive = 1.0;
    let mut discount = 1.0;
    for _ in 0..months {
        alive *= s;
        discount /= 1.0 + monthly_discount;
        expected_months += alive;
        value += monthly * margin * alive * discount;
    }
    SubscriptionValue {
        monthly_retention: s,
        expected_months,
        lifetime_value: value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::Payment;

    #[test]
    fn a_subscription_is_worth_its_expected_paid_months() {
        // No churn risk, no discount: 12 months of 50.
        let v = subscription_value(0.0, 30.0, 50.0, 12, 0.0, 1.0);
        assert!((v.lifetime_value - 600.0).abs() < 1e-9);
        assert!((v.expected_months - 12.0).abs() < 1e-9);
        // Certain to leave this month: worth nothing more.
        let gone = subscription_value(1.0, 30.0, 50.0, 12, 0.01, 1.0);
        assert_eq!(gone.lifetime_value, 0.0);
        // 20% over a month: retention 0.8^(30.44/30), a geometric sum.
        let v = subscription_value(0.2, DAYS_PER_MONTH, 100.0, 12, 0.0, 1.0);
        let expected: f64 = (1..=12).map(|m| 100.0 * 0.8f64.powi(m)).sum();
        assert!((v.lifetime_value - expected).abs() < 1e-9, "{v:?}");
        assert!((v.monthly_retention - 0.8).abs() < 1e-12);
        // Riskier is worth less.
        let safe = subscription_value(0.05, 30.0, 100.0, 12, 0.01, 1.0);
        let risky = subscription_value(0.5, 30.0, 100.0, 12, 0.01, 1.0);
        assert!(risky.lifetime_value < safe.lifetime_value);
    }

    #[test]
    fn revenue_comes_from_recent_invoices_then_from_a_monthly_charge() {
        let as_of = 1_000 * MICROS_PER_DAY;
        let invoice = |days_before: i64, amount_minor: i64| StoredEvent {
            customer_id: "c".into(),
            event_key: format!("p{days_before}"),
            time: as_of - days_before * MICROS_PER_DAY,
            record_time: as_of - days_before * MICROS_PER_DAY,
            payload: EventPayload::Payment(Payment {
                invoice_id: format!("i{days_before}"),
                amount_minor,
                currency: "EUR".into(),
                due_time: None,
                paid_time: None,
                method: String::new(),
            }),
        };
        let mut customer = CustomerData::new("x");
        customer
            .attributes
            .insert("MonthlyCharges".into(), AttributeValue::Number(70.35));
        let events = [
            invoice(10, 3_000),
            invoice(40, 3_000),
            invoice(70, 3_000),
            invoice(200, 9_999),
        ];
        let r = monthly_revenue(&customer, &events, as_of).expect("revenue");
        assert_eq!(r.source, RevenueSource::Invoices);
        assert!(
            (r.amount - 90.0 / (90.0 / DAYS_PER_MONTH)).abs() < 1e-9,
            "{r:?}"
        );
        let r = monthly_revenue(&customer, &[], as_of).expect("revenue");
        assert_eq!(r.source, RevenueSource::Attribute("MonthlyCharges".into()));
        assert_eq!(r.amount, 70.35);
        assert_eq!(monthly_revenue(&CustomerData::new("y"), &[], as_of), None);
    }
}
