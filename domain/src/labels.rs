//! Who is in a training set at a cutoff T, and whether they churned within the horizon.
//!
//! Eligible at T: signed up at or before T (or, without a signup time, known through an
//! event before T) and not churned by T. Churned within H: a contractual customer whose
//! churn time lies in (T, T+H]; a non-contractual customer with no transaction in (T, T+H].
//! Labels look only at the window after T; features only at what was known before it.

use crate::records::*;
use crate::time::Micros;

/// True when the customer belongs in a training or scoring set at `as_of`.
pub fn eligible(customer: &CustomerData, events: &[StoredEvent], as_of: Micros) -> bool {
    if customer.churn_time.is_some_and(|c| c <= as_of) {
        return false;
    }
    match customer.signup_time {
        Some(signup) => signup <= as_of,
        None => events
            .iter()
            .any(|e| e.time < as_of && e.record_time <= as_of),
    }
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
}
