//! Lifecycle stage: where a customer stands in their relationship with the company.
//!
//! Rules, first match wins (the order puts what needs action first):
//! 1. churned: status churned, or a contractual churn time at or before T;
//! 2. dormant: lapsed (`labels::standing`: a non-contractual customer with no purchase
//!    for more than 180 days); a subscriber never is, whatever their add-on purchases;
//! 3. at risk: churn probability in the high band (≥ 0.5), or a non-contractual customer
//!    with no purchase for 90 days;
//! 4. new: known for fewer than 90 days;
//! 5. won back: came back within the last 90 days after a pause of more than 180 days;
//! 6. active: everyone else.

use serde::{Deserialize, Serialize};

use crate::features::known_at;
use crate::records::{CustomerData, CustomerStatus, EventPayload, StoredEvent};
use crate::time::{MICROS_PER_DAY, Micros};

pub const DORMANT_AFTER_DAYS: f64 = crate::labels::LAPSED_AFTER_DAYS;
pub const AT_RISK_AFTER_DAYS: f64 = 90.0;
pub const NEW_FOR_DAYS: f64 = 90.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LifecycleStage {
    New,
    Active,
    AtRisk,
    Dormant,
    Churned,
    WonBack,
}

impl LifecycleStage {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Active => "active",
            Self::AtRisk => "at_risk",
            Self::Dormant => "dormant",
            Self::Churned => "churned",
            Self::WonBack => "won_back",
        }
    }
}

/// A churn probability's band, as CRM screens show it.
pub fn risk_band(p: f64) -> &'static str {
    if p >= 0.5 {
        "high"
    } else if p >= 0.25 {
        "medium"
    } else {
        "low"
    }
}

/// The stage as of `as_of`, from what was known then. `tenure_days` and `recency_days`
/// are the behavioural features (NaN when undefined).
pub fn stage(
    customer: &CustomerData,
    events: &[StoredEvent],
    as_of: Micros,
    tenure_days: f64,
    churn_probability: Option<f64>,
) -> LifecycleStage {
    if customer.status == CustomerStatus::Churned || customer.churn_time.is_some_and(|t| t <= as_of)
    {
        return LifecycleStage::Churned;
    }
    let mut purchases: Vec<Micros> = events
        .iter()
        .filter(|e| {
            matches!(e.payload, EventPayload::Transaction(_))
                && known_at(e.time, e.record_time, as_of)
        })
        .map(|e| e.time)
        .collect();
    purchases.sort_unstable();
    let days = |m: Micros| m as f64 / MICROS_PER_DAY as f64;
    let recency = purchases.last().map(|&t| days(as_of - t));
    // A subscriber is a customer until their churn time, however long since an add-on
    // purchase: only shop customers go dormant, or at risk, by not buying.
    if matches!(
        crate::labels::standing(customer, events, as_of),
        crate::labels::Standing::Lapsed { .. }
    ) {
        return LifecycleStage::Dormant;
    }
    let quiet = !customer.contractual && recency.is_some_and(|r| r > AT_RISK_AFTER_DAYS);
    if churn_probability.is_some_and(|p| risk_band(p) == "high") || quiet {
        return LifecycleStage::AtRisk;
    }
    if tenure_days.is_finite() && tenure_days < NEW_FOR_DAYS {
        return LifecycleStage::New;
    }
    if let [.., before, last] = purchases.as_slice()
        && days(last - before) > DORMANT_AFTER_DAYS
        && recency.is_some_and(|r| r <= AT_RISK_AFTER_DAYS)
    {
        return LifecycleStage::WonBack;
    }
    LifecycleStage::Active
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::Transaction;

    const DAY: Micros = MICROS_PER_DAY;
    const T: Micros = 2_000 * DAY;

    fn buy(days_before: i64) -> StoredEvent {
        let time = T - days_before * DAY;
        StoredEvent {
            customer_id: "c".into(),
            event_key: format!("k{time}"),
            time,
            record_time: time,
            payload: EventPayload::Transaction(Transaction {
                amount_minor: 100,
                currency: "USD".into(),
                quantity: 1,
                category: String::new(),
                channel: String::new(),
            }),
        }
    }

    #[test]
    fn stages_follow_the_rules_in_order() {
        let c = CustomerData::new("x");
        let stage_of =
            |events: &[StoredEvent], tenure: f64, p: Option<f64>| stage(&c, events, T, tenure, p);
        assert_eq!(stage_of(&[buy(400)], 500.0, None), LifecycleStage::Dormant);
        assert_eq!(stage_of(&[buy(100)], 500.0, None), LifecycleStage::AtRisk);
        assert_eq!(
            stage_of(&[buy(5)], 500.0, Some(0.7)),
            LifecycleStage::AtRisk
        );
        assert_eq!(stage_of(&[buy(5)], 30.0, Some(0.1)), LifecycleStage::New);
        assert_eq!(
            stage_of(&[buy(500), buy(10)], 500.0, Some(0.1)),
            LifecycleStage::WonBack
        );
        assert_eq!(
            stage_of(&[buy(50), buy(10)], 500.0, Some(0.1)),
            LifecycleStage::Active
        );
        let mut gone = CustomerData::new("y");
        gone.contractual = true;
        gone.churn_time = Some(T - DAY);
        assert_eq!(stage(&gone, &[], T, 900.0, None), LifecycleStage::Churned);
        gone.churn_time = Some(T + DAY);
        assert_eq!(stage(&gone, &[], T, 900.0, None), LifecycleStage::Active);
    }

    #[test]
    fn bands() {
        assert_eq!(risk_band(0.5), "high");
        assert_eq!(risk_band(0.3), "medium");
        assert_eq!(risk_band(0.1), "low");
    }
}
