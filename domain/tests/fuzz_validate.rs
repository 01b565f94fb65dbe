//! Property-based fuzzing of the engine's entry points for untrusted input: request
//! validation (`check_customer`, `check_event`), point-in-time features (`behaviour`,
//! `RawFeatures::of`) over arbitrary stored histories, and `ScoringScheme::validate`.
//!
//! Every property runs a fixed number of cases from a fixed seed, so the suite repeats the
//! same bounded run every time (`PROPTEST_RNG_SEED` is not consulted). Failures are not
//! persisted to a regressions file: with the seed fixed, re-running reproduces a failure,
//! and proptest prints the shrunk input; a panic found this way is kept as an explicit
//! regression test below. For a longer run, raise the case count:
//!
//! ```text
//! PROPTEST_CASES=100000 cargo test -p vitals-engine --test fuzz_validate --release
//! ```

use std::collections::BTreeMap;
use std::fmt::Debug;

use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use vitals_domain::evaluation::{Dimension, ScoringScheme, TierRule};
use vitals_domain::features::{BEHAVIOUR, Behaviour, RawFeatures, behaviour};
use vitals_domain::time::{MICROS_PER_DAY, Micros};
use vitals_domain::validate::{Violations, check_customer, check_event};
use vitals_domain::{
    AttributeValue, Attributes, CustomerData, CustomerRef, CustomerStatus, EventPayload, Feedback,
    FeedbackKind, Interaction, InteractionKind, NewEvent, Payment, Severity, StoredEvent,
    Transaction,
};

/// Cases per property unless `PROPTEST_CASES` says otherwise.
const DEFAULT_CASES: u32 = 1024;
/// The suite's fixed seed (32 bytes for ChaCha).
const SEED: [u8; 32] = *b"vitals-engine fuzz_validate seed";

/// Runs `test` on `cases` values of `strategy` from the fixed seed; panics (failing the
/// test) with the shrunk input when a case fails or panics.
fn fuzz<S>(strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S: Strategy,
    S::Value: Debug,
{
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    let config = Config {
        cases,
        failure_persistence: None,
        rng_algorithm: RngAlgorithm::ChaCha,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &SEED));
    if let Err(e) = runner.run(&strategy, test) {
        panic!("{e}");
    }
}

// ---------------------------------------------------------------------------------------
// Strategies

/// Any string: empty, plausible, arbitrary unicode (control characters included), huge.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => Just(String::new()),
        3 => "[a-zA-Z0-9 _.@+()-]{1,24}",
        3 => prop::collection::vec(any::<char>(), 0..48).prop_map(String::from_iter),
        1 => (any::<char>(), 64usize..6_000).prop_map(|(c, n)| c.to_string().repeat(n)),
        1 => select(vec![" x", "x ", "\u{0}", "\n", "\u{feff}", "é", "👍", "a@b.co", "+1 (555) 123-4567"])
            .prop_map(str::to_owned),
    ]
}

fn opt_text() -> impl Strategy<Value = Option<String>> {
    prop::option::of(text())
}

/// Any time: realistic, around the epoch, the extremes of i64, anything.
fn time() -> impl Strategy<Value = Micros> {
    prop_oneof![
        4 => 0i64..2_000_000_000_000_000,
        2 => any::<i64>(),
        1 => -1_000 * MICROS_PER_DAY..1_000 * MICROS_PER_DAY,
        1 => select(vec![i64::MIN, i64::MIN + 1, -1, 0, 1, i64::MAX - 1, i64::MAX]),
    ]
}

fn int64() -> impl Strategy<Value = i64> {
    prop_oneof![
        3 => -1_000_000i64..1_000_000_000,
        2 => any::<i64>(),
        1 => select(vec![i64::MIN, i64::MIN + 1, -1, 0, 1, i64::MAX - 1, i64::MAX]),
    ]
}

fn int32() -> impl Strategy<Value = i32> {
    prop_oneof![
        3 => -2i32..12,
        1 => any::<i32>(),
        1 => select(vec![i32::MIN, -1, 0, i32::MAX]),
    ]
}

fn number() -> impl Strategy<Value = f64> {
    prop_oneof![
        3 => -1e6f64..1e6,
        2 => any::<f64>(),
        1 => select(vec![
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MAX,
            f64::MIN,
            f64::MIN_POSITIVE,
            -0.0,
        ]),
    ]
}

fn attribute_value() -> impl Strategy<Value = AttributeValue> {
    prop_oneof![
        any::<bool>().prop_map(AttributeValue::Bool),
        number().prop_map(AttributeValue::Number),
        text().prop_map(AttributeValue::String),
    ]
}

fn attributes() -> impl Strategy<Value = Attributes> {
    let name = prop_oneof![3 => "[a-zA-Z0-9_.-]{1,70}", 1 => text()];
    prop_oneof![
        4 => prop::collection::btree_map(name.clone(), attribute_value(), 0..6),
        1 => prop::collection::btree_map(name, attribute_value(), 60..70),
    ]
}

fn customer() -> impl Strategy<Value = CustomerData> {
    (
        (text(), opt_text(), opt_text(), opt_text(), text(), text()),
        (
            select(vec![
                CustomerStatus::Active,
                CustomerStatus::Churned,
                CustomerStatus::Erased,
            ]),
            any::<bool>(),
            prop::option::of(time()),
            prop::option::of(time()),
            attributes(),
        ),
    )
        .prop_map(
            |(
                (external_id, display_name, email, phone, region, acquisition_channel),
                (status, contractual, signup_time, churn_time, attributes),
            )| CustomerData {
                external_id,
                display_name,
                email,
                phone,
                region,
                acquisition_channel,
                status,
                contractual,
                signup_time,
                churn_time,
                attributes,
            },
        )
}

/// Short ids from a small pool, so tickets and invoices merge across events.
fn pooled_id() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => select(vec!["", "a", "b", "c"]).prop_map(str::to_owned),
        1 => text(),
    ]
}

fn currency() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => select(vec!["USD", "EUR", "JPY", "usd", "", "XXX", "BHD"]).prop_map(str::to_owned),
        1 => text(),
    ]
}

fn payload() -> impl Strategy<Value = EventPayload> {
    prop_oneof![
        (int64(), currency(), int32(), text(), text()).prop_map(
            |(amount_minor, currency, quantity, category, channel)| {
                EventPayload::Transaction(Transaction {
                    amount_minor,
                    currency,
                    quantity,
                    category,
                    channel,
                })
            }
        ),
        (
            pooled_id(),
            int64(),
            currency(),
            prop::option::of(time()),
            prop::option::of(time()),
            text()
        )
            .prop_map(
                |(invoice_id, amount_minor, currency, due_time, paid_time, method)| {
                    EventPayload::Payment(Payment {
                        invoice_id,
                        amount_minor,
                        currency,
                        due_time,
                        paid_time,
                        method,
                    })
                }
            ),
        (
            select(FeedbackKind::ALL.to_vec()),
            int32(),
            opt_text(),
            text()
        )
            .prop_map(
                |(kind, score, comment, channel)| EventPayload::Feedback(Feedback {
                    kind,
                    score: Some(score),
                    comment,
                    channel,
                })
            ),
        (
            select(InteractionKind::ALL.to_vec()),
            select(Severity::ALL.to_vec()),
            text(),
            text(),
            pooled_id(),
            prop::option::of(time())
        )
            .prop_map(
                |(kind, severity, category, channel, ticket_id, resolved_time)| {
                    EventPayload::Interaction(Interaction {
                        note: None,
                        kind,
                        severity,
                        category,
                        channel,
                        ticket_id,
                        resolved_time,
                    })
                }
            ),
    ]
}

fn new_event() -> impl Strategy<Value = NewEvent> {
    (
        text(),
        prop_oneof![
            text().prop_map(CustomerRef::Id),
            text().prop_map(CustomerRef::ExternalId)
        ],
        time(),
        payload(),
    )
        .prop_map(|(event_key, customer, time, payload)| NewEvent {
            event_key,
            customer,
            time,
            payload,
        })
}

/// A stored event; its record time is usually its time (backfill), sometimes anything.
fn stored_event() -> impl Strategy<Value = StoredEvent> {
    (pooled_id(), time(), prop::option::of(time()), payload()).prop_map(
        |(event_key, time, record_time, payload)| StoredEvent {
            customer_id: "c".into(),
            event_key,
            time,
            record_time: record_time.unwrap_or(time),
            payload,
        },
    )
}

fn history() -> impl Strategy<Value = Vec<StoredEvent>> {
    prop_oneof![
        4 => prop::collection::vec(stored_event(), 0..24),
        1 => prop::collection::vec(stored_event(), 100..300),
    ]
}

/// As-of times: mostly after the realistic event range, sometimes anywhere or extreme.
fn as_of() -> impl Strategy<Value = Micros> {
    prop_oneof![
        2 => 1_000_000_000_000_000i64..2_100_000_000_000_000,
        2 => time(),
    ]
}

// ---------------------------------------------------------------------------------------
// Validation

fn now() -> impl Strategy<Value = Micros> {
    prop_oneof![
        4 => Just(vitals_domain::time::now_micros()),
        1 => time(),
    ]
}

/// Every violation names a field under the prefix and says something.
fn well_formed(v: &Violations, prefix: &str) -> Result<(), TestCaseError> {
    for f in &v.0 {
        prop_assert!(f.field.starts_with(prefix), "{f:?}");
        prop_assert!(!f.description.is_empty(), "{f:?}");
    }
    Ok(())
}

#[test]
fn check_customer_never_panics() {
    fuzz((customer(), now()), |(c, now)| {
        let mut v = Violations::new();
        check_customer(&mut v, "customer", &c, now);
        well_formed(&v, "customer.")?;
        // Rules the property can state on its own: they must be reported.
        if c.external_id.is_empty() {
            prop_assert!(v.0.iter().any(|f| f.field == "customer.external_id"));
        }
        let non_finite = c
            .attributes
            .values()
            .any(|a| matches!(a, AttributeValue::Number(x) if !x.is_finite()));
        if non_finite || c.signup_time.is_some_and(|t| t < 0) {
            prop_assert!(!v.is_empty());
        }
        Ok(())
    });
}

#[test]
fn check_event_never_panics() {
    fuzz((new_event(), now()), |(e, now)| {
        let mut v = Violations::new();
        check_event(&mut v, "events[7]", &e, now);
        well_formed(&v, "events[7].")?;
        if e.time < 0 || e.event_key.is_empty() {
            prop_assert!(!v.is_empty());
        }
        if let EventPayload::Feedback(f) = &e.payload
            && f.score.is_some_and(|s| !f.kind.score_range().contains(&s))
        {
            prop_assert!(v.0.iter().any(|x| x.field == "events[7].feedback.score"));
        }
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------
// Features

/// The module promises `NaN` for undefined values and numbers otherwise; inputs are
/// integers, so no feature may be infinite.
fn finite_or_nan(b: &[f64; 28]) -> Result<(), TestCaseError> {
    for (name, x) in BEHAVIOUR.iter().zip(b) {
        prop_assert!(!x.is_infinite(), "{name} = {x}");
    }
    Ok(())
}

#[test]
fn behaviour_never_panics_on_any_history() {
    fuzz(
        (prop::option::of(time()), history(), as_of()),
        |(signup, events, as_of)| {
            let b = behaviour(signup, &events, as_of);
            finite_or_nan(&b)?;
            // Any order is accepted too. (The values may differ: when two events of one
            // ticket or invoice disagree, the later one in the slice wins.)
            let mut reversed = events.clone();
            reversed.reverse();
            finite_or_nan(&behaviour(signup, &reversed, as_of))?;
            // Counts are counts.
            let count = |n: &str| Behaviour::from_name(n).map_or(f64::NAN, |f| f.of(&b));
            for n in [
                "frequency_total",
                "feedback_count",
                "open_tickets",
                "payments_due",
            ] {
                let c = count(n);
                prop_assert!(c >= 0.0 && c.fract() == 0.0, "{n} = {c}");
            }
            Ok(())
        },
    );
}

#[test]
fn raw_features_never_panic() {
    fuzz((customer(), history(), as_of()), |(c, events, as_of)| {
        let raw = RawFeatures::of(&c, &events, as_of);
        finite_or_nan(&raw.behaviour)?;
        // Attributes pass through as given (compared as text: NaN is not equal to itself).
        prop_assert_eq!(
            format!("{:?}", raw.attributes),
            format!("{:?}", c.attributes)
        );
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------
// Scoring scheme

fn weights() -> impl Strategy<Value = BTreeMap<Dimension, f64>> {
    let normalized = prop::collection::vec((select(Dimension::ALL.to_vec()), 0.0f64..10.0), 0..8)
        .prop_map(|pairs| {
            let mut w: BTreeMap<Dimension, f64> = pairs.into_iter().collect();
            let sum: f64 = w.values().sum();
            if sum > 0.0 {
                w.values_mut().for_each(|x| *x /= sum);
            }
            w
        });
    prop_oneof![
        3 => normalized.clone(),
        1 => (normalized, select(Dimension::ALL.to_vec()), number()).prop_map(|(mut w, d, x)| {
            w.insert(d, x);
            w
        }),
        1 => prop::collection::btree_map(select(Dimension::ALL.to_vec()), number(), 0..7),
    ]
}

fn tiers() -> impl Strategy<Value = Vec<TierRule>> {
    let name = prop_oneof![
        3 => select(vec!["gold", "Gold", "silver", "bronze", "x", " ", ""]).prop_map(str::to_owned),
        1 => text(),
    ];
    let decreasing =
        prop::collection::vec((name.clone(), 0.0f64..=100.0), 0..12).prop_map(|mut t| {
            t.sort_by(|a, b| b.1.total_cmp(&a.1));
            if let Some(last) = t.last_mut() {
                last.1 = 0.0;
            }
            t.into_iter()
                .map(|(name, min_score)| TierRule { name, min_score })
                .collect::<Vec<_>>()
        });
    prop_oneof![
        3 => decreasing,
        1 => prop::collection::vec((name, number()), 0..12).prop_map(|t| {
            t.into_iter()
                .map(|(name, min_score)| TierRule { name, min_score })
                .collect()
        }),
    ]
}

#[test]
fn scoring_scheme_validate_never_panics_and_accepts_only_sound_schemes() {
    fuzz((weights(), tiers()), |(weights, tiers)| {
        let scheme = ScoringScheme { weights, tiers };
        match scheme.validate() {
            Ok(()) => {
                let sum: f64 = scheme.weights.values().sum();
                prop_assert!((sum - 1.0).abs() <= 1e-6, "weights sum to {sum}");
                prop_assert!(scheme.weights.values().all(|w| w.is_finite() && *w >= 0.0));
                prop_assert!(!scheme.tiers.is_empty());
                for pair in scheme.tiers.windows(2) {
                    prop_assert!(
                        pair[0].min_score > pair[1].min_score,
                        "{} then {}",
                        pair[0].min_score,
                        pair[1].min_score
                    );
                }
                prop_assert_eq!(scheme.tiers.last().map(|t| t.min_score), Some(0.0));
                // Every composite score then has a tier.
                for score in [0.0, 50.0, 100.0] {
                    prop_assert!(scheme.tier(score).is_some());
                }
            }
            Err(v) => {
                prop_assert!(!v.is_empty());
                well_formed(&v, "")?;
            }
        }
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------
// Regressions found by the properties above

/// Extreme times overflowed the window and duration arithmetic (a panic in debug builds).
#[test]
fn behaviour_survives_extreme_times() {
    let purchase = |time: Micros| StoredEvent {
        customer_id: "c".into(),
        event_key: "k".into(),
        time,
        record_time: i64::MIN,
        payload: EventPayload::Transaction(Transaction {
            amount_minor: i64::MAX,
            currency: "USD".into(),
            quantity: 1,
            category: String::new(),
            channel: String::new(),
        }),
    };
    let events = [purchase(i64::MIN), purchase(i64::MIN + 1)];
    for as_of in [i64::MIN, i64::MIN + 1, 0, i64::MAX] {
        for signup in [None, Some(i64::MIN), Some(i64::MAX)] {
            let b = behaviour(signup, &events, as_of);
            assert!(b.iter().all(|x| !x.is_infinite()), "{as_of}: {b:?}");
        }
    }
}
