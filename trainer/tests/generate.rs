//! `generate` against a real SQLite database: every kind of event, histories consistent
//! with the churn process, idempotent re-runs, determinism, and a churn model that learns
//! the known drivers.

mod common;

use std::collections::HashSet;

use anyhow::{Context, Result, ensure};
use vitals_domain::time::{MICROS_PER_DAY, Micros};
use vitals_domain::{CustomerStatus, EventPayload};
use vitals_engine::models::churn::Algorithm;
use vitals_engine::registry::Registry;
use vitals_store::{History, Store};
use vitals_trainer::generate::{
    DRIVER_FEATURES, GenerateOptions, GenerateSummary, Generator, default_window, generate,
};
use vitals_trainer::train::{Activation, ChurnChoice, SegmentChoice, TrainConfig, train};

use common::{date, generate_options, store};

const SEED: u64 = 20_240_601;

fn histories(store: &Store) -> Result<Vec<History>> {
    let mut all = Vec::new();
    store.scan_histories(500, |chunk| {
        all.extend(chunk);
        Ok(std::ops::ControlFlow::Continue(()))
    })?;
    Ok(all)
}

fn generated_counts(s: &GenerateSummary) -> [u64; 9] {
    [
        s.customers,
        s.contractual,
        s.churned,
        s.churned_contractual,
        s.events,
        s.transactions,
        s.payments,
        s.feedback,
        s.interactions,
    ]
}

#[test]
fn generated_histories_are_consistent_and_reruns_change_nothing() -> Result<()> {
    let (_dir, store) = store()?;
    let options = generate_options(300, SEED)?;
    let first = generate(&store, &options)?;
    println!("{first}");
    ensure!(first.customers == 300 && first.rejected == 0, "{first:?}");
    for (kind, n) in [
        ("contractual", first.contractual),
        ("churned", first.churned),
        ("churned contractual", first.churned_contractual),
        ("transactions", first.transactions),
        ("payments", first.payments),
        ("feedback", first.feedback),
        ("interactions", first.interactions),
    ] {
        ensure!(n > 0, "no {kind}: {first:?}");
    }
    ensure!(
        first.contractual > 80 && first.contractual < 160,
        "about 40%"
    );
    ensure!(first.customer_writes.created == 300);
    ensure!(first.event_writes.accepted == first.events && first.event_writes.duplicates == 0);
    ensure!(
        first.events == first.transactions + first.payments + first.feedback + first.interactions
    );

    // What is stored is what the generator says, and consistent with the churn process.
    let generator = Generator::new(options.seed, options.start, options.end)?;
    let stored = histories(&store)?;
    ensure!(stored.len() == 300);
    let (mut nps, mut csat, mut complaints, mut unpaid, mut open) = (0, 0, 0, 0, 0);
    let (mut commented, mut noted) = (0, 0);
    let mut stopped_non_contractual = 0;
    for h in &stored {
        let d = &h.customer.data;
        let n: u64 = d
            .external_id
            .strip_prefix(&format!("gen-{SEED}-"))
            .context("external id gen-<seed>-<n>")?
            .parse()?;
        let truth = generator.customer(n);
        ensure!(*d == truth.data, "{}: stored row differs", d.external_id);
        ensure!(h.events.len() == truth.events.len(), "{}", d.external_id);
        ensure!(d.email.is_none() && d.phone.is_none() && d.display_name.is_none());
        let signup = d.signup_time.context("signup time")?;
        ensure!(signup >= options.start && signup < options.end);
        for e in &h.events {
            ensure!(e.time >= signup && e.time < options.end, "{e:?}");
            ensure!(e.record_time == e.time, "backfilled");
        }
        match (d.contractual, truth.churn) {
            (true, Some(c)) => {
                ensure!(d.status == CustomerStatus::Churned && d.churn_time == Some(c));
                ensure!(
                    h.events.iter().all(|e| e.time < c),
                    "{}: an event after churning",
                    d.external_id
                );
            }
            (true, None) => {
                ensure!(d.status == CustomerStatus::Active && d.churn_time.is_none());
            }
            (false, stop) => {
                ensure!(d.status == CustomerStatus::Active && d.churn_time.is_none());
                ensure!(d.attributes.is_empty());
                if let Some(c) = stop {
                    stopped_non_contractual += 1;
                    ensure!(
                        h.events.iter().all(|e| e.time < c),
                        "{}: activity after stopping",
                        d.external_id
                    );
                }
            }
        }
        for e in &h.events {
            match &e.payload {
                EventPayload::Transaction(t) => {
                    ensure!(t.amount_minor > 0 && t.currency == "USD");
                    ensure!(["web", "app", "store"].contains(&t.channel.as_str()));
                }
                EventPayload::Payment(p) => {
                    ensure!(d.contractual, "only contractual customers are invoiced");
                    ensure!(p.due_time == Some(e.time + 14 * MICROS_PER_DAY));
                    unpaid += usize::from(p.paid_time.is_none());
                }
                EventPayload::Feedback(f) => {
                    // Words, when there are any, are one finished sentence.
                    if let Some(c) = &f.comment {
                        ensure!(c.ends_with('.') || c.ends_with('。'), "{c:?}");
                        commented += 1;
                    }
                    ensure!(f.score.is_some_and(|s| f.kind.score_range().contains(&s)));
                    match f.kind {
                        vitals_domain::FeedbackKind::Nps => nps += 1,
                        vitals_domain::FeedbackKind::Csat => csat += 1,
                        _ => {}
                    }
                }
                EventPayload::Interaction(i) => {
                    complaints += usize::from(i.kind == vitals_domain::InteractionKind::Complaint);
                    if i.note.is_some() {
                        ensure!(i.kind == vitals_domain::InteractionKind::Complaint);
                        noted += 1;
                    }
                    open += usize::from(i.resolved_time.is_none());
                    if let Some(r) = i.resolved_time {
                        ensure!(r >= e.time);
                    }
                }
                EventPayload::RetentionAction(_) => {
                    anyhow::bail!("the history reader returns customers' own events only")
                }
            }
        }
    }
    println!(
        "nps {nps}, csat {csat}, complaints {complaints}, unpaid {unpaid}, open tickets {open}, \
         non-contractual stopped {stopped_non_contractual}"
    );
    ensure!(nps > 0 && csat > 0 && complaints > 0 && unpaid > 0 && open > 0);
    // Some answers carry a comment and most complaints a note; not every one.
    ensure!(
        commented > 0 && commented < nps + csat,
        "{commented} comments"
    );
    ensure!(noted > 0 && noted < complaints, "{noted} notes");
    ensure!(stopped_non_contractual == first.churned - first.churned_contractual);

    // The same command again changes nothing and generates the same.
    let second = generate(&store, &options)?;
    println!("{second}");
    ensure!(generated_counts(&second) == generated_counts(&first));
    let (c, e) = (&second.customer_writes, &second.event_writes);
    ensure!(
        c.created == 0 && c.updated == 0 && c.unchanged == 300,
        "{c:?}"
    );
    ensure!(
        e.accepted == 0 && e.duplicates == first.events && second.rejected == 0,
        "{e:?}"
    );
    let json = second.to_json();
    ensure!(json["unchanged"] == 300 && json["duplicates"] == first.events);
    Ok(())
}

#[test]
fn the_same_seed_gives_the_same_data_and_another_seed_other_data() -> Result<()> {
    let (_dir, a) = store()?;
    let (_dir2, b) = store()?;
    let first = generate(&a, &generate_options(120, 5)?)?;
    let again = generate(&b, &generate_options(120, 5)?)?;
    ensure!(generated_counts(&first) == generated_counts(&again));
    let other = generate(&b, &generate_options(120, 6)?)?;
    ensure!(generated_counts(&other) != generated_counts(&first));
    ensure!(other.customer_writes.created == 120, "other external ids");
    // Customer n does not depend on how many are generated.
    let g = |o: &GenerateOptions| Generator::new(o.seed, o.start, o.end);
    ensure!(
        g(&generate_options(120, 5)?)?.customer(17)
            == g(&generate_options(5_000, 5)?)?.customer(17)
    );

    // The default window: the two years up to yesterday, midnight UTC.
    let (start, end) = default_window(date("2025-03-31")?);
    ensure!(start == date("2023-03-30")? && end == date("2025-03-30")?);
    ensure!(GenerateOptions::new(1, 1).end % MICROS_PER_DAY == 0);
    Ok(())
}

#[test]
fn a_churn_model_learns_the_known_drivers() -> Result<()> {
    let (dir, store) = store()?;
    let options = generate_options(400, SEED)?;
    generate(&store, &options)?;
    // Cutoffs well inside the window, the last one 90 days before its end.
    let day = MICROS_PER_DAY;
    let last: Micros = options.end - 90 * day;
    let config = TrainConfig {
        registry: dir.path().join("models").display().to_string(),
        cutoffs: (0..4).rev().map(|i| last - i * 60 * day).collect(),
        horizon: 90 * day,
        churn: ChurnChoice::Only(Algorithm::Logistic),
        segments: SegmentChoice::K(3),
        seed: 7,
        activation: Activation::No,
        validation_share: 0.2,
        progress: false,
        actor: "test".into(),
        sample_customers: 0,
    };
    let outcome = train(&store, &config)?;
    let manifest = Registry::open(dir.path().join("models"))?.manifest("churn", 1)?;
    // Each population's model has its own importance; the churn process drives both.
    let mut top: Vec<String> = Vec::new();
    for population in ["contractual", "non_contractual"] {
        let importance: Vec<(String, f64)> = serde_json::from_value(
            manifest.metrics["populations"][population]["importance"].clone(),
        )?;
        let ranks: Vec<(usize, &str)> = importance
            .iter()
            .enumerate()
            .filter(|(_, (n, _))| DRIVER_FEATURES.contains(&n.as_str()))
            .map(|(i, (n, _))| (i + 1, n.as_str()))
            .collect();
        println!("{population}: driver features by rank: {ranks:?}");
        top.extend(importance.iter().take(10).map(|(n, _)| n.clone()));
    }
    println!(
        "ROC-AUC {:.3} on {} validation rows ({} training), base rate {:.3}; top features {top:?}",
        outcome.roc_auc, outcome.validation_rows, outcome.training_rows, outcome.base_rate
    );
    ensure!(outcome.roc_auc > 0.6, "ROC-AUC {}", outcome.roc_auc);
    // A driver of the churn process (not only the purchase rhythm the non-contractual
    // label follows) is among the ten most important inputs.
    let drivers: HashSet<&str> = DRIVER_FEATURES.iter().copied().collect();
    ensure!(
        top.iter().any(|f| drivers.contains(f.as_str())),
        "no churn driver among the top features {top:?}"
    );
    Ok(())
}
