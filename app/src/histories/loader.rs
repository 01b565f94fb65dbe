//! Gathers concurrent single-customer history reads into one database read.
//!
//! Every `EvaluateCustomer` needs one customer's history: two statements, each with its
//! fixed cost in PostgreSQL (a round trip, locks, executor start-up) and a hand-off to a
//! blocking thread. Under load many arrive together, so the loader reads all those
//! waiting with the same two statements (`Store::customer_histories`). Nothing waits on
//! purpose: a read starts as soon as one of its slots is free, with whatever has queued
//! meanwhile. An idle server reads one customer at a time, as before; a busy one reads
//! larger batches instead of queueing more round trips. What a caller computes from its
//! history runs on the same blocking thread right after the read, off the async workers.
//! A batch that fails as a whole (a row that cannot be decoded, say) is read again one
//! customer at a time, so one bad customer fails only its own callers.
//!
//! In front of it sits the [`HistoryCache`]: a history held in memory is answered at once
//! on the caller's task (an evaluation is tens of microseconds: a hand-off to a blocking
//! thread would cost more than it saves), and every history read is offered to the cache under a ticket
//! taken before the read (so a read that raced a change is not kept).

use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc, oneshot};
use vitals_domain::{Customer, StoredEvent};
use vitals_store::{CustomerLookup, History, Store, StoreError};

use super::cache::HistoryCache;

/// The most customers one read takes.
const MAX_BATCH: usize = 64;
/// Requests waiting for a read; beyond it callers wait to enqueue.
const QUEUE: usize = 4096;

struct Job {
    lookup: CustomerLookup,
    caller: Box<dyn Waiting>,
}

/// A caller waiting for its history, whatever it computes from it.
trait Waiting: Send {
    /// The caller gave up (a deadline, a cancel): no need to read for it.
    fn abandoned(&self) -> bool;
    /// Computes the caller's answer from its history and hands it over.
    fn answer(self: Box<Self>, history: Result<&History, StoreError>);
}

struct Caller<F, T> {
    reply: oneshot::Sender<Result<T, StoreError>>,
    then: F,
}

impl<F, T> Waiting for Caller<F, T>
where
    F: FnOnce(&Customer, &[StoredEvent]) -> T + Send,
    T: Send,
{
    fn abandoned(&self) -> bool {
        self.reply.is_closed()
    }

    fn answer(self: Box<Self>, history: Result<&History, StoreError>) {
        if self.reply.is_closed() {
            return;
        }
        let then = self.then;
        let _ = self
            .reply
            .send(history.map(|h| then(&h.customer, &h.events)));
    }
}

/// Where an answer's history came from; the server tells callers in a response header (for
/// operators and tests: the answer is the same either way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistorySource {
    Memory,
    Database,
}

impl HistorySource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Database => "database",
        }
    }
}

#[derive(Debug, Clone)]
pub struct HistoryLoader {
    jobs: mpsc::Sender<Job>,
    cache: Arc<HistoryCache>,
}

impl HistoryLoader {
    /// Starts the gathering task on the current runtime. Reads in flight at once: one per
    /// core, since each keeps a database backend and a blocking thread busy.
    pub fn start(store: Store, cache: Arc<HistoryCache>) -> Self {
        let (jobs, queue) = mpsc::channel(QUEUE);
        let slots = std::thread::available_parallelism().map_or(2, |n| n.get());
        tokio::spawn(gather(
            store,
            cache.clone(),
            queue,
            Arc::new(Semaphore::new(slots)),
        ));
        Self { jobs, cache }
    }

    /// `then` of one customer's history: from memory when the cache holds it (unpacked
    /// and run right here), else read together with whatever else is waiting (run on the
    /// blocking thread that read it).
    pub async fn load_then<F, T>(
        &self,
        lookup: CustomerLookup,
        then: F,
    ) -> Result<(T, HistorySource), StoreError>
    where
        F: FnOnce(&Customer, &[StoredEvent]) -> T + Send + 'static,
        T: Send + 'static,
    {
        if let Some(cached) = self.cache.get(&lookup) {
            match cached.events.unpack() {
                Ok(events) => return Ok((then(&cached.customer, &events), HistorySource::Memory)),
                // A bug in the packing, never the data: read the database instead.
                Err(e) => {
                    tracing::error!(customer_id = %cached.customer.id, error = %e, "history cache");
                    self.cache.drop_customer(&cached.customer.id);
                }
            }
        }
        let (reply, answer) = oneshot::channel();
        let caller = Box::new(Caller { reply, then });
        self.jobs
            .send(Job { lookup, caller })
            .await
            .map_err(|_| StoreError::Unavailable("the server is shutting down".into()))?;
        let answer = answer.await.unwrap_or_else(|_| {
            Err(StoreError::Internal(
                "a history read ended without an answer".into(),
            ))
        });
        answer.map(|t| (t, HistorySource::Database))
    }
}

async fn gather(
    store: Store,
    cache: Arc<HistoryCache>,
    mut queue: mpsc::Receiver<Job>,
    slots: Arc<Semaphore>,
) {
    while let Some(first) = queue.recv().await {
        // Waiting for a slot is what lets requests gather.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let store = store.clone();
        // Before the read: a change announced after this point spoils what it reads.
        let ticket = cache.ticket();
        let cache = cache.clone();
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            // Callers that gave up meanwhile (a deadline, a cancel) are not read for.
            batch.retain(|job| !job.caller.abandoned());
            if batch.is_empty() {
                return;
            }
            let lookups: Vec<CustomerLookup> = batch.iter().map(|j| j.lookup.clone()).collect();
            // A replica only once it has replayed what the primary had committed by now:
            // after the ticket, so a change announced before it is in what is read.
            let store = match store.fresh_reader() {
                Ok(reader) => reader,
                Err(e) => {
                    let why = e.to_string();
                    for job in batch {
                        job.caller.answer(Err(StoreError::Unavailable(why.clone())));
                    }
                    return;
                }
            };
            // Answered first, then kept (packed) for the next caller.
            let answer =
                |caller: Box<dyn Waiting>, history: vitals_store::Result<History>| match history {
                    Ok(h) => {
                        caller.answer(Ok(&h));
                        if let Some(ticket) = ticket {
                            cache.keep_owned(ticket, h);
                        }
                    }
                    Err(e) => caller.answer(Err(e)),
                };
            match store.customer_histories(&lookups) {
                Ok(histories) => {
                    for (job, history) in batch.into_iter().zip(histories) {
                        answer(job.caller, history);
                    }
                }
                // The database itself is away: every caller gets the same answer.
                Err(StoreError::Unavailable(why)) => {
                    for job in batch {
                        job.caller.answer(Err(StoreError::Unavailable(why.clone())));
                    }
                }
                // Something in the batch could not be read: each on its own, so only the
                // callers of the customer at fault get the error.
                Err(e) if batch.len() == 1 => {
                    if let Some(job) = batch.pop() {
                        job.caller.answer(Err(e));
                    }
                }
                Err(_) => {
                    for job in batch {
                        let history = store
                            .customer_histories(std::slice::from_ref(&job.lookup))
                            .and_then(|mut one| {
                                one.pop().ok_or_else(|| {
                                    StoreError::Internal("a history read answered nothing".into())
                                })
                            })
                            .and_then(|one| one);
                        answer(job.caller, history);
                    }
                }
            }
        });
    }
}
