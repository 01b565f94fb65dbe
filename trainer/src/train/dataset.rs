//! Building point-in-time training sets from the store.

use anyhow::Context;
use indicatif::ProgressBar;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;

use vitals_domain::features::RawFeatures;
use vitals_domain::labels::{Population, churned_within, eligible};
use vitals_domain::time::{MICROS_PER_DAY, Micros};
use vitals_domain::{EventPayload, StoredEvent};
use vitals_engine::models::clv::{RfmSummary, summarize};
use vitals_store::Store;

/// One customer at one cutoff: what was known then, and what happened after.
#[derive(Debug, Clone)]
pub struct Example {
    /// Index into [`TrainingSet::customers`].
    pub customer: usize,
    /// Index into the cutoffs.
    pub cutoff: usize,
    pub raw: RawFeatures,
    pub label: bool,
    /// Which churn model the example trains and validates.
    pub population: Population,
}

/// A customer's identity, kept once however many cutoffs include them.
#[derive(Debug, Clone)]
pub struct CustomerKey {
    pub id: String,
    pub external_id: String,
}

/// Lifetime-value models measure time in weeks (days / 7, as Fader, Hardie and Lee do).
pub const CLV_UNIT: Micros = 7 * MICROS_PER_DAY;

/// One buyer's purchase summary at the last cutoff, and what they did after it.
#[derive(Debug, Clone, Copy)]
pub struct ClvRow {
    /// In weeks ([`CLV_UNIT`]).
    pub summary: RfmSummary,
    /// Purchase days in the horizon after the cutoff (the holdout check's "actual").
    pub holdout_purchases: f64,
}

#[derive(Debug, Clone)]
pub struct TrainingSet {
    pub cutoffs: Vec<Micros>,
    pub horizon: Micros,
    pub customers: Vec<CustomerKey>,
    pub examples: Vec<Example>,
    /// Every customer who had bought by the last cutoff, eligible for churn or not (a
    /// lifetime-value model describes all buyers).
    pub clv: Vec<ClvRow>,
    pub customers_read: usize,
    pub events_read: usize,
    /// sha256 over every customer's id, version, event count and newest record time.
    pub fingerprint: String,
    /// Purchases by currency, over every history read.
    pub purchase_currencies: std::collections::HashMap<String, u64>,
}

impl TrainingSet {
    /// The currency most purchases were in (ties: the first in alphabetical order).
    pub fn main_currency(&self) -> Option<&str> {
        self.purchase_currencies
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))
            .map(|(c, _)| c.as_str())
    }

    pub fn positives(&self) -> usize {
        self.examples.iter().filter(|e| e.label).count()
    }
}

/// Customers per read from the store: bounds memory to one chunk's events.
const SCAN_CHUNK: usize = 2_000;

/// Reads every customer's history once (or those of one chunk in `every`: a systematic
/// sample) and keeps, for each cutoff at which the customer is eligible, their features
/// and label. With `horizon` = 0 no labels are computed (scoring), and every label is
/// `false`.
pub fn build(
    store: &Store,
    cutoffs: &[Micros],
    horizon: Micros,
    every: usize,
    progress: &ProgressBar,
) -> anyhow::Result<TrainingSet> {
    let mut set = TrainingSet {
        cutoffs: cutoffs.to_vec(),
        horizon,
        customers: Vec::new(),
        examples: Vec::new(),
        clv: Vec::new(),
        customers_read: 0,
        events_read: 0,
        fingerprint: String::new(),
        purchase_currencies: Default::default(),
    };
    let mut hasher = Sha256::new();
    // The read replica when there is one (`--read-database-url`), caught up as of now.
    store
        .fresh_reader()?
        .scan_histories_sampled(SCAN_CHUNK, every, |histories| {
            for h in histories {
                set.customers_read += 1;
                set.events_read += h.events.len();
                hasher.update(h.customer.id.as_bytes());
                hasher.update(h.customer.version.to_le_bytes());
                hasher.update((h.events.len() as u64).to_le_bytes());
                let newest = h.events.iter().map(|e| e.record_time).max().unwrap_or(0);
                hasher.update(newest.to_le_bytes());
                for e in &h.events {
                    if let EventPayload::Transaction(t) = &e.payload {
                        match set.purchase_currencies.get_mut(&t.currency) {
                            Some(n) => *n += 1,
                            None => {
                                set.purchase_currencies.insert(t.currency.clone(), 1);
                            }
                        }
                    }
                }
                if let Some(&last) = cutoffs.last()
                    && let Some(summary) = summarize(&h.events, last, CLV_UNIT)
                {
                    set.clv.push(ClvRow {
                        summary,
                        holdout_purchases: purchase_days_after(&h.events, last, horizon),
                    });
                }
                let mut index = None;
                for (c, &t) in cutoffs.iter().enumerate() {
                    if !eligible(&h.customer.data, &h.events, t) {
                        continue;
                    }
                    let customer = *index.get_or_insert_with(|| {
                        set.customers.push(CustomerKey {
                            id: h.customer.id.clone(),
                            external_id: h.customer.data.external_id.clone(),
                        });
                        set.customers.len() - 1
                    });
                    let label =
                        horizon > 0 && churned_within(&h.customer.data, &h.events, t, horizon);
                    set.examples.push(Example {
                        customer,
                        cutoff: c,
                        raw: RawFeatures::of(&h.customer.data, &h.events, t),
                        label,
                        population: Population::of(&h.customer.data),
                    });
                }
            }
            progress.set_position(set.customers_read as u64);
            Ok(std::ops::ControlFlow::Continue(()))
        })
        .context("reading customer histories")?;
    set.fingerprint = hex::encode(&hasher.finalize()[..16]);
    Ok(set)
}

/// Distinct UTC purchase days in `[cutoff, cutoff + horizon)`, not counting a day that
/// already holds a purchase before the cutoff (a day is one purchase, as in the summary).
fn purchase_days_after(events: &[StoredEvent], cutoff: Micros, horizon: Micros) -> f64 {
    let day = |t: Micros| t.div_euclid(MICROS_PER_DAY);
    let purchases = || {
        events
            .iter()
            .filter(|e| matches!(e.payload, EventPayload::Transaction(_)))
    };
    let mut days: BTreeSet<i64> = purchases()
        .filter(|e| e.time >= cutoff && e.time < cutoff + horizon)
        .map(|e| day(e.time))
        .collect();
    let split_day = day(cutoff - 1);
    if purchases().any(|e| e.time < cutoff && day(e.time) == split_day) {
        days.remove(&split_day);
    }
    days.len() as f64
}
