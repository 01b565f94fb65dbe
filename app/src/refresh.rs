//! Refreshing every customer's evaluation: evaluate a chunk of customers with the models
//! in service, store the snapshots and open the follow-ups their risk or overdue invoices
//! call for, in one transaction per chunk. The server's `RefreshEvaluations` and
//! `vitals-trainer score --store` both run this, so both store the same thing.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::time::Instant;

use rayon::prelude::*;
use vitals_domain::time::{MICROS_PER_DAY, Micros, now_micros};
use vitals_domain::{Customer, StoredEvent};
use vitals_engine::evaluation::{
    Evaluation, LoadedText, Models, VersionedScheme, analyse_comment, evaluate,
};
use vitals_store::{
    CustomerSignal, EvaluationRecord, History, Result, Store, StoreError, VersionedRules,
};

use crate::histories::HistoryCache;

/// Customers read, evaluated and written per step.
const CHUNK: usize = 2_000;
/// Chunks written at once, each on its own connection: one writer left the machine a
/// fifth idle at 1,000,000 customers, waiting on PostgreSQL's single backend.
const WRITERS: usize = 2;

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
    refresh_between(
        store,
        None,
        as_of,
        models,
        scheme,
        (None, None),
        total,
        progress,
    )
}

/// What one chunk stores: its snapshots and the follow-ups they open.
struct ChunkWrite {
    records: Vec<EvaluationRecord>,
    signals: Vec<CustomerSignal>,
    customers: u64,
    now: Micros,
}

/// [`refresh_evaluations`] of the customers with `after < id <= last` (None: unbounded):
/// one chunk of a refresh shared between servers (`work_on_shared_refreshes`). With
/// `held` (a server's live history cache) the histories it holds are evaluated from
/// memory and only the others read: see [`for_each_chunk`].
///
/// Three stages run at once, so every core has work: the store's scan reads the next
/// chunks' histories on its own threads; this thread evaluates a chunk, spread over every
/// core (rayon); two writer threads store the chunks before it. The channel to the writers
/// holds one chunk, which bounds memory at a few chunks whatever the customers' number.
#[allow(clippy::too_many_arguments)]
pub fn refresh_between(
    store: &Store,
    held: Option<&HistoryCache>,
    as_of: Micros,
    models: &Models,
    scheme: &VersionedScheme,
    (after, last): (Option<&str>, Option<&str>),
    customers_total: u64,
    mut progress: impl FnMut(RefreshProgress),
) -> Result<RefreshProgress> {
    use std::sync::Mutex;
    use std::sync::mpsc::{channel, sync_channel};

    let started = Instant::now();
    let mut state = RefreshProgress {
        customers_total,
        ..RefreshProgress::default()
    };
    progress(state);
    reanalyse_comments(store, models.text.as_deref(), (after, last))?;
    let live = as_of >= now_micros().saturating_sub(LIVE_REFRESH_SLACK);
    let rules = if live {
        Some(store.rules_in_force()?)
    } else {
        None
    };
    let rules_version = rules.as_ref().map_or(0, |r| r.version);
    // Histories from the read replica when there is one (caught up with the primary as
    // of now); snapshots, and the probabilities they replace, on the primary.
    let reader = store.fresh_reader()?;
    let (to_writer, chunks) = sync_channel::<ChunkWrite>(1);
    let chunks = Mutex::new(chunks);
    std::thread::scope(|scope| {
        // Unbounded: a few numbers a chunk, and a writer must never wait on this thread
        // while it waits for the writers to finish.
        let (to_counter, written) = channel::<(u64, usize, usize)>();
        let writers: Vec<_> = (0..WRITERS)
            .map(|_| {
                let (chunks, to_counter) = (&chunks, to_counter.clone());
                scope.spawn(move || -> Result<()> {
                    loop {
                        // One writer waits here for the next chunk while the other
                        // writes; the lock is released before writing.
                        let next = chunks.lock().unwrap_or_else(|p| p.into_inner()).recv();
                        let Ok(chunk) = next else {
                            return Ok(());
                        };
                        let (stored, opened) = store.upsert_evaluations_opening(
                            &chunk.records,
                            &chunk.signals,
                            rules_version,
                            chunk.now,
                        )?;
                        if to_counter.send((chunk.customers, stored, opened)).is_err() {
                            return Ok(());
                        }
                    }
                })
            })
            .collect();
        drop(to_counter);
        let count = |state: &mut RefreshProgress, (customers, stored, opened)| {
            state.customers_done += customers;
            state.evaluations_stored += stored as u64;
            state.follow_ups_opened += opened as u64;
            state.seconds = started.elapsed().as_secs_f64();
        };
        let scanned = for_each_chunk(&reader, held, (after, last), |histories| {
            let chunk = evaluate_chunk(store, &histories, as_of, models, scheme, rules.as_ref())?;
            if to_writer.send(chunk).is_err() {
                // The writer stopped on an error, returned below.
                return Ok(std::ops::ControlFlow::Break(()));
            }
            while let Ok(done) = written.try_recv() {
                count(&mut state, done);
                progress(state);
            }
            Ok(std::ops::ControlFlow::Continue(()))
        });
        drop(to_writer);
        let mut wrote = Ok(());
        for writer in writers {
            let outcome = writer.join().unwrap_or_else(|_| {
                Err(vitals_store::StoreError::Internal(
                    "a refresh writer panicked".into(),
                ))
            });
            wrote = wrote.and(outcome);
        }
        for done in written.iter() {
            count(&mut state, done);
            progress(state);
        }
        scanned.and(wrote)
    })?;
    // Customers created during the run make the first count low.
    state.customers_total = state.customers_total.max(state.customers_done);
    state.seconds = started.elapsed().as_secs_f64();
    Ok(state)
}

/// Calls `f` with the histories of the customers with `after < id <= last`, a chunk at a
/// time in id order. Without a live cache: the store's scan. With one: the customers are
/// paged from the database (one keyset query a chunk), their events taken from memory
/// where the cache holds this version of the customer (unpacked on every core), and only
/// the others read, then kept. A history held is as current as one the server would
/// answer `EvaluateCustomer` with (the cache forgets every change it is told of); reading
/// 28 M events again was about half the CPU of a refresh over a million customers.
fn for_each_chunk(
    reader: &Store,
    held: Option<&HistoryCache>,
    (after, last): (Option<&str>, Option<&str>),
    mut f: impl FnMut(Vec<History>) -> Result<ControlFlow<()>>,
) -> Result<()> {
    let Some(cache) = held.filter(|c| c.is_live()) else {
        return reader.scan_histories_between(after, last, CHUNK, f);
    };
    let mut after = after.map(str::to_owned);
    loop {
        let customers = reader.customers_after(CHUNK, &mut after, last)?;
        if customers.is_empty() {
            return Ok(());
        }
        let histories = from_memory_or_read(reader, cache, customers)?;
        if f(histories)?.is_break() {
            return Ok(());
        }
    }
}

/// The histories of `customers` (sorted by id), from `cache` where it holds them, the
/// rest read from `reader` and kept.
fn from_memory_or_read(
    reader: &Store,
    cache: &HistoryCache,
    customers: Vec<Customer>,
) -> Result<Vec<History>> {
    // Before the read: a change announced after it spoils what is read.
    let ticket = cache.ticket();
    let held: Vec<Option<Vec<StoredEvent>>> =
        customers.par_iter().map(|c| cache.events_of(c)).collect();
    let missing: Vec<Customer> = customers
        .iter()
        .zip(&held)
        .filter(|(_, events)| events.is_none())
        .map(|(c, _)| c.clone())
        .collect();
    let mut read: HashMap<String, History> = if missing.is_empty() {
        HashMap::new()
    } else {
        reader
            .histories_of(missing)?
            .into_iter()
            .map(|h| (h.customer.id.clone(), h))
            .collect()
    };
    customers
        .into_iter()
        .zip(held)
        .map(|(customer, events)| match events {
            Some(events) => Ok(History { customer, events }),
            None => {
                let history = read.remove(&customer.id).ok_or_else(|| {
                    StoreError::Internal(format!(
                        "the history of customer {} was not read",
                        customer.id
                    ))
                })?;
                if let Some(ticket) = ticket {
                    cache.keep(ticket, &history);
                }
                Ok(history)
            }
        })
        .collect()
}

/// Evaluates a chunk of histories (on every core) and decides the follow-ups it opens.
fn evaluate_chunk(
    store: &Store,
    histories: &[History],
    as_of: Micros,
    models: &Models,
    scheme: &VersionedScheme,
    rules: Option<&VersionedRules>,
) -> Result<ChunkWrite> {
    let now = now_micros();
    let evaluations: Vec<Evaluation> = histories
        .par_iter()
        .map(|h| evaluate(&h.customer, &h.events, as_of, models, scheme, now))
        .collect();
    let records = evaluations
        .par_iter()
        .map(EvaluationRecord::of)
        .collect::<Result<Vec<_>>>()?;
    let mut signals = Vec::new();
    if let Some(rules) = rules {
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
    Ok(ChunkWrite {
        records,
        signals,
        customers: histories.len() as u64,
        now,
    })
}

/// Comments read per page when re-analysing.
const REANALYSE_PAGE: usize = 5_000;

/// Re-analyses the comments of the customers in `(after, last]` that another text model
/// (or the lexicons, when `text` is a model, and the other way round) analysed, so that
/// what `ListComments`, the portfolio and the follow-ups see comes from the model in
/// service. Pages through them in key order, analysing each page on every core.
pub fn reanalyse_comments(
    store: &Store,
    text: Option<&LoadedText>,
    range: (Option<&str>, Option<&str>),
) -> Result<usize> {
    let version = text.map_or(0, |t| t.manifest.version);
    let mut from: Option<(String, String)> = None;
    let mut changed = 0;
    loop {
        let (page, next) = store.comments_analysed_by_another(
            version,
            range,
            from.as_ref().map(|(c, k)| (c.as_str(), k.as_str())),
            REANALYSE_PAGE,
        )?;
        let updates: Vec<(String, String, vitals_domain::comments::CommentAnalysis)> = page
            .par_iter()
            .map(|c| {
                (
                    c.customer_id.clone(),
                    c.event_key.clone(),
                    analyse_comment(text, &c.text),
                )
            })
            .collect();
        changed += store.update_comment_analyses(&updates)?;
        match next {
            Some(next) => from = Some(next),
            None => break,
        }
    }
    if changed > 0 {
        tracing::info!(
            changed,
            version,
            "comments re-analysed with the text model in service"
        );
    }
    Ok(changed)
}

/// Leases chunks of the refresh runs in progress (any server may have started them, see
/// `Store::start_refresh_run`) until none is left to lease; returns how many this worker
/// did. See [`work_on_one_shared_chunk`].
pub fn work_on_shared_refreshes(
    store: &Store,
    held: Option<&HistoryCache>,
    owner: &str,
    lease: std::time::Duration,
    current: &dyn Fn() -> (std::sync::Arc<Models>, VersionedScheme),
) -> Result<u64> {
    let mut done = 0;
    while work_on_one_shared_chunk(store, held, owner, lease, current)? {
        done += 1;
    }
    Ok(done)
}

/// Leases one chunk of a refresh run in progress, refreshes it with the models and
/// scheme `current` gives at that moment, and marks it done; false when no chunk was free.
/// A lease lasts `lease`: a chunk whose worker died is leased again once it has run out.
pub fn work_on_one_shared_chunk(
    store: &Store,
    held: Option<&HistoryCache>,
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
        held,
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
