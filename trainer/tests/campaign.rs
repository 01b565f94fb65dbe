//! A campaign played out by `generate --campaign` with an effect known exactly, found by
//! the effect review (`Store::review_campaign`, `vitals-trainer review`) inside its
//! interval; no effect gives an interval around 0; and data generated without a campaign
//! are exactly what they were before campaigns existed.

mod common;

use anyhow::{Context, Result, ensure};
use sha2::{Digest, Sha256};
use vitals_domain::EventPayload;
use vitals_domain::campaign::{TargetRule, Verdict};
use vitals_domain::time::{MICROS_PER_DAY, Micros};
use vitals_store::{CampaignReview, Store};
use vitals_trainer::generate::{
    CampaignOptions, CampaignSummary, GenerateOptions, Generator, Synthetic, generate,
    generate_with_campaign,
};

use common::{generate_options, store};

const SEED: u64 = 20_240_601;
/// Enough customers that a 0.6 effect on a churn rate of about 8% within 90 days is
/// told from chance with a wide margin (about 1,700 members, half of them held out).
const CUSTOMERS: u64 = 6_000;
const HOLDOUT: f64 = 0.5;
const HORIZON_DAYS: u32 = 90;

fn campaign(name: &str, effect: f64) -> CampaignOptions {
    CampaignOptions {
        name: name.into(),
        effect,
        holdout_share: HOLDOUT,
        horizon_days: HORIZON_DAYS,
    }
}

fn show(k: &CampaignSummary, r: &CampaignReview) -> String {
    let e = &r.effect;
    format!(
        "true effect {:+.4} ({} saved of {} reached); treated {}/{} churned ({:.4}), control {}/{} ({:.4}); \
         difference {:+.4}, 95% interval [{:+.4}, {:+.4}], verdict {}; not reached {}, pending {}",
        k.true_effect,
        k.saved,
        k.reached,
        e.treated.churned,
        e.treated.customers,
        e.treated_churn_rate,
        e.control.churned,
        e.control.customers,
        e.control_churn_rate,
        e.difference,
        e.ci_low,
        e.ci_high,
        e.verdict.as_str(),
        r.not_reached,
        r.pending
    )
}

/// The campaign's summary, checked against what the store holds and what the review
/// counts in each arm.
fn check_arms(store: &Store, o: &GenerateOptions, k: &CampaignSummary) -> Result<CampaignReview> {
    ensure!(k.members == k.treated + k.control, "{k:?}");
    ensure!(k.reached <= k.treated && k.saved <= k.reached, "{k:?}");
    ensure!(k.true_effect == -(k.saved as f64) / k.reached as f64);
    let draw = o.end - (i64::from(HORIZON_DAYS) + 30) * MICROS_PER_DAY;
    ensure!(k.draw_time == draw);

    let record = store.get_campaign(&k.name)?.context("campaign stored")?;
    ensure!(record.treated_count == k.treated as i64);
    ensure!(record.control_count == k.control as i64);
    ensure!(record.draw_time == draw && record.create_time > draw);
    ensure!(record.action_kind == "call" && record.target == TargetRule::default());
    ensure!(record.holdout_share == HOLDOUT && record.horizon_days == HORIZON_DAYS);
    ensure!(record.seed == o.seed && record.actor == "vitals-trainer generate");
    let control = store.list_campaign_members(&record.id, Some(true), 100_000, "")?;
    ensure!(control.items.len() as u64 == k.control);
    let all = store.list_campaign_members(&record.id, None, 100_000, "")?;
    ensure!(all.items.len() as u64 == k.members);

    // Reviewed at the window's end, every horizon is over: each control member is
    // counted (alive at the draw), each treated member either counted from their call
    // or not reached (gone before it); none pending, none gone.
    let review = store.review_campaign(&k.name, o.end)?;
    let e = &review.effect;
    ensure!(review.pending == 0, "{review:?}");
    ensure!(e.control.customers == k.control);
    ensure!(e.treated.customers == k.reached);
    ensure!(review.not_reached == k.treated - k.reached);
    ensure!(e.treated.customers + review.not_reached + review.pending == k.treated);
    ensure!(review.treatment_cost_minor == 1_500 * k.reached as i64);
    ensure!(review.currency == "USD");
    Ok(review)
}

/// Customer `n`'s history without the company's actions.
fn own_events(mut s: Synthetic) -> Synthetic {
    s.events
        .retain(|e| !matches!(e.payload, EventPayload::RetentionAction(_)));
    s
}

#[test]
fn a_known_effect_is_inside_the_reviewed_interval() -> Result<()> {
    let (_dir, store) = store()?;
    let o = generate_options(CUSTOMERS, SEED)?;
    let summary = generate_with_campaign(&store, &o, Some(&campaign("winback", 0.6)))?;
    println!("{summary}");
    ensure!(summary.rejected == 0, "{summary:?}");
    let k = summary.campaign.clone().context("campaign summary")?;
    ensure!(k.stored && k.members > 1_000 && k.saved > 0, "{k:?}");
    let review = check_arms(&store, &o, &k)?;
    let e = &review.effect;
    println!("{}", show(&k, &review));
    println!("{}", e.sentence);
    ensure!(
        e.ci_low <= k.true_effect && k.true_effect <= e.ci_high,
        "the true effect is outside the interval: {}",
        show(&k, &review)
    );
    ensure!(e.verdict == Verdict::Helps, "{}", show(&k, &review));

    // The CLI's report: the same numbers, money in major units.
    let report = vitals_trainer::review::review_campaign(&store, "winback", o.end)?;
    println!("{report}");
    ensure!(report.verdict == "helps" && report.evidence == "randomized");
    ensure!(report.difference == e.difference && report.ci_low == e.ci_low);
    ensure!(report.treated.customers == k.reached && report.control.customers == k.control);
    ensure!(report.treatment_cost == 15.0 * k.reached as f64);
    let per_kept = report.cost_per_customer_kept.context("customers kept")?;
    ensure!((per_kept - report.treatment_cost / e.customers_kept).abs() < 1e-9);
    let json = serde_json::to_value(&report)?;
    for key in [
        "treated",
        "control",
        "difference",
        "ci_low",
        "ci_high",
        "customers_kept",
        "cost_per_customer_kept",
        "verdict",
        "sentence",
        "not_reached",
        "pending",
    ] {
        ensure!(json.get(key).is_some(), "no {key} in {json}");
    }
    let unknown = vitals_trainer::review::review_campaign(&store, "no-such", o.end);
    ensure!(
        unknown.is_err_and(|e| e.to_string().contains("no campaign named \"no-such\"")),
        "an unknown campaign is an error that says so"
    );

    // A month after the draw no horizon is over: every counted member is pending.
    let early = store.review_campaign("winback", k.draw_time + 30 * MICROS_PER_DAY)?;
    ensure!(early.pending == k.control + k.reached && early.effect.verdict == Verdict::TooFew);

    // The campaign changes members only: everyone else's history is as without it, and
    // a treated member not saved differs only by the call.
    let plain = Generator::new(o.seed, o.start, o.end)?;
    let played = plain.clone().with_campaign(&campaign("winback", 0.6))?;
    let (mut members, mut saved) = (0, 0);
    for n in 1..=1_500 {
        let (a, b) = (plain.customer(n), played.customer(n));
        match b.campaign {
            None => ensure!(a == b, "customer {n} changed without being a member"),
            Some(role) if role.saved => {
                saved += 1;
                // Kept: the churn went, or came after the window.
                let window_end = role.action.context("saved means called")?
                    + i64::from(HORIZON_DAYS) * MICROS_PER_DAY;
                ensure!(b.churn.is_none_or(|c| c > window_end), "{n}: {:?}", b.churn);
                ensure!(a.churn.is_some_and(|c| c <= window_end));
            }
            Some(_) => {
                members += 1;
                let mut expected = a.clone();
                expected.campaign = b.campaign;
                ensure!(own_events(b) == expected, "customer {n}");
            }
        }
    }
    ensure!(members > 0 && saved > 0);

    // The same command again changes nothing.
    let again = generate_with_campaign(&store, &o, Some(&campaign("winback", 0.6)))?;
    let k2 = again.campaign.context("campaign summary")?;
    ensure!(!k2.stored && k2.members == k.members && k2.saved == k.saved);
    ensure!(again.event_writes.duplicates == summary.events && again.rejected == 0);
    // Another draw under a taken name is refused.
    let other = CampaignOptions {
        holdout_share: 0.3,
        ..campaign("winback", 0.6)
    };
    let err = generate_with_campaign(&store, &generate_options(50, SEED + 1)?, Some(&other));
    ensure!(err.is_err_and(|e| e.to_string().contains("exists already")));
    Ok(())
}

#[test]
fn no_effect_gives_an_interval_around_zero() -> Result<()> {
    let (_dir, store) = store()?;
    let o = generate_options(CUSTOMERS, SEED)?;
    let summary = generate_with_campaign(&store, &o, Some(&campaign("placebo", 0.0)))?;
    ensure!(summary.rejected == 0, "{summary:?}");
    let k = summary.campaign.context("campaign summary")?;
    ensure!(k.saved == 0 && k.true_effect == 0.0, "{k:?}");
    let review = check_arms(&store, &o, &k)?;
    let e = &review.effect;
    println!("{}", show(&k, &review));
    ensure!(
        e.ci_low <= 0.0 && 0.0 <= e.ci_high,
        "no effect, yet the interval excludes 0: {}",
        show(&k, &review)
    );
    ensure!(e.verdict == Verdict::Inconclusive);

    // Without an effect, the campaign only adds the calls.
    let plain = Generator::new(o.seed, o.start, o.end)?;
    let played = plain.clone().with_campaign(&campaign("placebo", 0.0))?;
    for n in 1..=500 {
        let mut b = own_events(played.customer(n));
        b.campaign = None;
        ensure!(plain.customer(n) == b, "customer {n}");
    }
    Ok(())
}

/// A digest of customers 1 to 300 of `SEED` over the window, by what the random streams
/// decide (signup, churn, event keys and times), taken before campaigns existed.
const PINNED_DIGEST: &str = "f41ecb09ac879f5439bb9fcb3aedca979867256b2ba8bcbf8a6d6a34404eba59";
const PINNED_EVENTS: u64 = 9_432;

fn digest(g: &Generator, customers: u64) -> (String, u64) {
    let mut h = Sha256::new();
    let mut events = 0;
    for n in 1..=customers {
        let c = g.customer(n);
        h.update(format!(
            "{n}|{:?}|{:?}|{:?}|",
            c.data.signup_time, c.data.churn_time, c.churn
        ));
        for e in &c.events {
            events += 1;
            h.update(format!("{}|{};", e.event_key, e.time));
        }
    }
    (hex::encode(h.finalize()), events)
}

#[test]
fn data_without_a_campaign_are_unchanged() -> Result<()> {
    let o = generate_options(300, SEED)?;
    let (hash, events) = digest(&Generator::new(o.seed, o.start, o.end)?, 300);
    ensure!(events == PINNED_EVENTS, "{events} events");
    ensure!(
        hash == PINNED_DIGEST,
        "the generator's output changed: {hash}"
    );

    let (_dir, store) = store()?;
    let summary = generate(&store, &o)?;
    ensure!(summary.campaign.is_none() && summary.events == PINNED_EVENTS);
    ensure!(
        summary.events
            == summary.transactions + summary.payments + summary.feedback + summary.interactions
    );
    ensure!(summary.to_json().get("campaign").is_none());
    ensure!(store.get_campaign("winback")?.is_none());
    ensure!(store.list_campaigns(10, "")?.items.is_empty());
    Ok(())
}

#[test]
fn campaign_options_are_checked() -> Result<()> {
    let o = generate_options(10, SEED)?;
    let g = || Generator::new(o.seed, o.start, o.end);
    for (bad, why) in [
        (campaign("", 0.5), "--campaign"),
        (campaign(" x", 0.5), "--campaign"),
        (campaign("x", 1.5), "--campaign-effect"),
        (
            CampaignOptions {
                holdout_share: 0.0,
                ..campaign("x", 0.5)
            },
            "--campaign-holdout",
        ),
        (
            CampaignOptions {
                horizon_days: 0,
                ..campaign("x", 0.5)
            },
            "--campaign-horizon-days",
        ),
        // Drawn 730 + 30 days before the end of a two-year window: before its start.
        (
            CampaignOptions {
                horizon_days: 730,
                ..campaign("x", 0.5)
            },
            "too short",
        ),
    ] {
        let err = g()?.with_campaign(&bad);
        ensure!(
            err.as_ref().is_err_and(|e| e.to_string().contains(why)),
            "{bad:?}: {:?}",
            err.map(|_| ())
        );
    }
    let ok = g()?.with_campaign(&CampaignOptions::new("x"))?;
    let draw: Option<Micros> = ok.campaign_draw_time();
    ensure!(draw == Some(o.end - 120 * MICROS_PER_DAY));
    Ok(())
}
