//! Who is in a training set at a cutoff T, and whether they churned within the horizon.
//!
//! Eligible at T: signed up at or before T (or, without a signup time, known through an
//! event before T) and not churned by T. Churned within H: a contractual customer whose
//! churn time lies in (T, T+H]; a non-contractual customer with no transaction in (T, T+H].
//! Labels look only at the window after T; features only at what was known before it.

use serde::{Deserialize, Serialize};

use crate::evaluation::Absence;
use crate::records::*;
use crate::time::Micros;
use crate::words::Language;

/// The kinds of customer that churn differently and get churn models of their own:
/// subscribers leave at a churn time (their contract ends); shop customers simply stop
/// buying. Each is trained and validated on its own rows, on the features that exist
/// for it, and a customer is only ever explained by their own population's model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Population {
    Contractual,
    NonContractual,
}

impl Population {
    pub const ALL: [Population; 2] = [Self::Contractual, Self::NonContractual];

    pub fn of(customer: &CustomerData) -> Self {
        if customer.contractual {
            Self::Contractual
        } else {
            Self::NonContractual
        }
    }

    /// The name in files and APIs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Contractual => "contractual",
            Self::NonContractual => "non_contractual",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// What a person calls them.
    pub fn label(self, lang: Language) -> &'static str {
        match self {
            Self::Contractual => lang.pick("subscription customers", "订阅客户"),
            Self::NonContractual => lang.pick("shop customers (no contract)", "零售客户（无合约）"),
        }
    }
}

/// A non-contractual customer with no purchase for longer than this has lapsed: no
/// longer a customer whose churn can be predicted, but one to win back. The lifecycle
/// stage calls them dormant; the same threshold, so the two never disagree.
pub const LAPSED_AFTER_DAYS: f64 = 180.0;

/// Where a customer stands at a time, for churn prediction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Standing {
    /// Not signed up yet, and nothing known of them before this time.
    NotYet,
    /// Churned at or before this time (a churn time at or before it).
    Churned,
    /// Non-contractual, with no purchase for `days` days (more than
    /// [`LAPSED_AFTER_DAYS`]); `bought` says whether they ever bought.
    Lapsed { days: f64, bought: bool },
    /// Still a customer: in a training or scoring set.
    Customer,
}

impl Standing {
    /// Why a customer who is not [`Standing::Customer`] gets no churn probability.
    pub fn absence(self) -> Option<Absence> {
        match self {
            Self::Customer => None,
            Self::NotYet => Some(Absence::NotYetCustomer),
            Self::Churned => Some(Absence::Churned),
            Self::Lapsed { days, bought } => Some(Absence::Lapsed { days, bought }),
        }
    }
}

/// The customer's standing at `as_of`, from what was known then.
pub fn standing(customer: &CustomerData, events: &[StoredEvent], as_of: Micros) -> Standing {
    if customer.churn_time.is_some_and(|c| c <= as_of) {
        return Standing::Churned;
    }
    let known = |e: &&StoredEvent| e.time < as_of && e.record_time <= as_of;
    let since = match customer.signup_time {
        Some(signup) if signup <= as_of => signup,
        Some(_) => return Standing::NotYet,
        None => match events.iter().filter(known).map(|e| e.time).min() {
            Some(first) => first,
            None => return Standing::NotYet,
        },
    };
    if customer.contractual {
        // Only the churn time decides: the status is today's, not the status at `as_of`.
        return Standing::Customer;
    }
    let last_purchase = events
        .iter()
        .filter(known)
        .filter(|e| matches!(e.payload, EventPayload::Transaction(_)))
        .map(|e| e.time)
        .max();
    let quiet_since = last_purchase.unwrap_or(since);
    let days = (as_of - quiet_since) as f64 / crate::time::MICROS_PER_DAY as f64;
    if days > LAPSED_AFTER_DAYS {
        Standing::Lapsed {
            days,
            bought: last_purchase.is_some(),
        }
    } else {
        Standing::Customer
    }
}

/// True when the customer belongs in a training or scoring set at `as_of`: still a
/// customer (see [`standing`]).
pub fn eligible(customer: &CustomerData, events: &[StoredEvent], as_of: Micros) -> bool {
    standing(customer, events, as_of) == Standing::Customer
}

/// True when the customer churned in `(as_of, as_of + horizon]`.
pub fn churned_within(
    customer: &CustomerData,
    events: &[StoredEvent],
    as_of: Micros,
    horizon: Micros,
) -> bool {
    let end = as_of.saturating_add(horizon);
    if customer.contractual {
        customer.churn_time.is_some_and(|c| c > as_of && c <= end)
    } else {
        !events.iter().any(|e| {
            matches!(e.payload, EventPayload::Transaction(_)) && e.time > as_of && e.time <= end
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::MICROS_PER_DAY as DAY;

    const T: Micros = 1_000 * DAY;

    fn buy(time: Micros) -> StoredEvent {
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
    fn contractual_labels_follow_the_churn_time() {
        let mut c = CustomerData::new("x");
        c.contractual = true;
        c.signup_time = Some(T - 100 * DAY);
        assert!(eligible(&c, &[], T));
        assert!(!churned_within(&c, &[], T, 30 * DAY));
        c.churn_time = Some(T + 30 * DAY);
        assert!(
            churned_within(&c, &[], T, 30 * DAY),
            "the horizon's end is inside"
        );
        c.churn_time = Some(T + 31 * DAY);
        assert!(!churned_within(&c, &[], T, 30 * DAY));
        c.churn_time = Some(T);
        assert!(!eligible(&c, &[], T), "churned by T: out");
        c.churn_time = None;
        c.signup_time = Some(T + DAY);
        assert!(!eligible(&c, &[], T), "not yet signed up: out");
    }

    #[test]
    fn non_contractual_labels_follow_purchases() {
        let c = CustomerData::new("x");
        let history = [buy(T - 10 * DAY)];
        assert!(eligible(&c, &history, T));
        assert!(!eligible(&c, &[buy(T + DAY)], T), "first seen after T: out");
        assert!(churned_within(&c, &history, T, 30 * DAY));
        let came_back = [buy(T - 10 * DAY), buy(T + 30 * DAY)];
        assert!(!churned_within(&c, &came_back, T, 30 * DAY));
        let too_late = [buy(T - 10 * DAY), buy(T + 31 * DAY)];
        assert!(churned_within(&c, &too_late, T, 30 * DAY));
    }

    #[test]
    fn a_non_contractual_customer_quiet_for_half_a_year_has_lapsed() {
        let c = CustomerData::new("x");
        assert_eq!(standing(&c, &[buy(T - 180 * DAY)], T), Standing::Customer);
        let lapsed = standing(&c, &[buy(T - 400 * DAY), buy(T - 181 * DAY)], T);
        assert_eq!(
            lapsed,
            Standing::Lapsed {
                days: 181.0,
                bought: true
            }
        );
        let why = lapsed.absence().expect("a reason");
        let reason = why.words(Language::English);
        assert!(reason.contains("no purchase in 181 days"), "{reason}");
        let reason = why.words(Language::Chinese);
        assert!(reason.contains("181 天没有购买"), "{reason}");
        // Signed up long ago and never bought: lapsed as well.
        let mut signed = CustomerData::new("y");
        signed.signup_time = Some(T - 200 * DAY);
        assert!(matches!(
            standing(&signed, &[], T),
            Standing::Lapsed { bought: false, .. }
        ));
        // A contractual customer is a customer until their churn time, bought or not.
        let mut contract = signed.clone();
        contract.contractual = true;
        assert_eq!(standing(&contract, &[], T), Standing::Customer);
    }
}
