//! Refreshing every customer's evaluation: evaluate a chunk of customers with the models
//! in service, store the snapshots and open the follow-ups their risk or overdue invoices
//! call for, in one transaction per chunk. The server's `RefreshEvaluations` and
//! `vitals-trainer score --store` both run this, so both store the same thing.

use std::time::Instant;

use vitals_domain::time::{MICROS_PER_DAY, Micros, now_micros};
use vitals_engine::evaluation::{Evaluation, Models, VersionedScheme, evaluate};
use vitals_store::{CustomerSignal, EvaluationRecord, Result, Store};

/// Customers read, evaluated and written per step.
const CHUNK: usize = 2_000;

/// Where a refresh stands.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RefreshProgress {
    pub customers_done: u64,
    pub customers_total: u64,
    pub evaluations_stored: u64,
    /// Follow-up tasks the refresh opened (churn risk crossings, overdue invoices).
    pub follow_ups_opened: u64,
    pub seconds: f64,
}

/// A refresh as of more than this before now is a look at the past: it opens no tasks.
const LIVE_REFRESH_SLACK: Micros = MICROS_PER_DAY;

/// Evaluates every customer as of `as_of` and stores the snapshots, a chunk at a time
/// (each chunk one transaction), calling `progress` after each chunk.
pub fn refresh_evaluations(
    store: &Store,
    as_of: Micros,
    models: &Models,
    scheme: &VersionedScheme,
    progress: impl FnMut(RefreshProgress),
) -> Result<RefreshProgress> {
    let total = store.count_customers()?;
    refresh_between(store, as_of, models, scheme, (None, None), total, progress)
}

/// [`refresh_evaluations`] of the customers with `after < id <= last` (None: unbounded):
/// one chunk of a refresh shared between servers (`work_on_shared_refreshes`).
pub fn refresh_between(
    store: &Store,
    as_of: Micros,
    models: &Models,
    scheme: &VersionedScheme,
    (after, last): (Option<&str>, Option<&str>),
    customers_total: u64,
    mut progress: impl FnMut(RefreshProgress),
) -> Result<RefreshProgress> {
    let started = Instant::now();
    let mut state = RefreshProgress {
        customers_total,
        ..RefreshProgress::default()
    };
    progress(state);
    let live = as_of >= now_micros().saturating_sub(LIVE_REFRESH_SLACK);
    let rules = if live {
        Some(store.rules_in_force()?)
    } else {
        None
    };
    // Histories from the read replica when there is one (caught up with the primary as
    // of now); snapshots, and the probabilities they replace, on the primary.
    store
        .fresh_reader()?
        .scan_histories_between(after, last, CHUNK, |histories| {
            let now = now_micros();
            let evaluations: Vec<Evaluation> = histories
                .iter()
                .map(|h| evaluate(&h.customer, &h.events, as_of, models, scheme, now))
                .collect();
            let records = evaluations
                .iter()
                .map(EvaluationRecord::of)
                .collect::<Result<Vec<_>>>()?;
            let mut signals = Vec::new();
            if let Some(rules) = &rules {
                let ids: Vec<String> = histories.iter().map(|h| h.customer.id.clone()).collect();
                let previous = store.stored_probabilities(&ids)?;
                for (h, e) in histories.iter().zip(&evaluations) {
                    let id = &h.customer.id;
                    let risk = e.churn_probability().and_then(|p| {
                        rules
                            .rules
                            .signal_of_risk(previous.get(id).copied(), p, now)
                    });
                    let overdue = rules.rules.signal_of_overdue(&h.events, now);
                    signals.extend(
                        risk.into_iter()
                            .chain(overdue)
                            .map(|signal| CustomerSignal {
                                customer_id: id.clone(),
                                source: "refresh".into(),
                                signal,
                            }),
                    );
                }
            }
            let rules_version = rules.as_ref().map_or(0, |r| r.version);
            let (written, opened) =
                store.upsert_evaluations_opening(&records, &signals, rules_version, now)?;
            state.evaluations_stored += written as u64;
            state.follow_ups_opened += opened as u64;
            state.customers_done += histories.len() as u64;
            state.seconds = started.elapsed().as_secs_f64();
            progress(state);
            Ok(std::ops::ControlFlow::Continue(()))
        })?;
    // Customers created during the run make the first count low.
    state.customers_total = state.customers_total.max(state.customers_done);
    state.seconds = started.elapsed().as_secs_f64();
    Ok(state)
}

/// Leases chunks of the refresh runs in progress (any server may have started them, see
/// `Store::start_refresh_run`) until none is left to lease; returns how many this worker
/// did. See [`work_on_one_shared_chunk`].
pub fn work_on_shared_refreshes(
    store: &Store,
    owner: &str,
    lease: std::time::Duration,
    current: &dyn Fn() -> (std::sync::Arc<Models>, VersionedScheme),
) -> Result<u64> {
    let mut done = 0;
    while work_on_one_shared_chunk(store, owner, lease, current)? {
        done += 1;
    }
    Ok(done)
}

/// Leases one chunk of a refresh run in progress, refreshes it with the models and
/// scheme `current` gives at that moment, and marks it done; false when no chunk was free.
/// A lease lasts `lease`: a chunk whose worker died is leased again once it has run out.
pub fn work_on_one_shared_chunk(
    store: &Store,
    owner: &str,
    lease: std::time::Duration,
    current: &dyn Fn() -> (std::sync::Arc<Models>, VersionedScheme),
) -> Result<bool> {
    let lease = Micros::try_from(lease.as_micros()).unwrap_or(Micros::MAX);
    let now = now_micros();
    let Some(chunk) = store.lease_refresh_chunk(owner, now.saturating_add(lease), now)? else {
        return Ok(false);
    };
    let (models, scheme) = current();
    let outcome = refresh_between(
        store,
        chunk.as_of,
        &models,
        &scheme,
        (chunk.after_id.as_deref(), chunk.last_id.as_deref()),
        0,
        |_| {},
    )?;
    let counted = store.finish_refresh_chunk(
        &chunk,
        owner,
        (
            outcome.customers_done,
            outcome.evaluations_stored,
            outcome.follow_ups_opened,
        ),
        now_micros(),
    )?;
    tracing::info!(
        run = %chunk.run_id,
        chunk = chunk.seq,
        customers = outcome.customers_done,
        counted,
        "refresh chunk done"
    );
    Ok(true)
}
