//! Reading whole customer histories for training and batch scoring.
//!
//! Customers are read in id order, a chunk at a time, with every event of the chunk's
//! customers from the kind tables (which carry `time` and `record_time`, so no join with
//! the ledger is needed). Memory holds one chunk: it grows with the chunk, never with the
//! whole event history.
//!
//! On PostgreSQL the events come by binary COPY (`copy.rs`), several times faster than
//! diesel's row decoding; SQLite, and single-customer reads, use the diesel queries.

mod copy;
mod single;

use std::collections::HashMap;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use std::ops::ControlFlow;

use vitals_domain::{Customer, StoredEvent};

use crate::customers::{CustomerRow, not_found_external_id, not_found_id};
use crate::db::{DbPool, Store, with_conn};
use crate::error::Result;
use crate::events::{
    FeedbackRow, InteractionRow, KindRow, PaymentRow, RetentionActionRow, TransactionRow,
    with_event_kinds,
};
use crate::schema::{customers, feedback, interactions, payments, retention_actions, transactions};

/// How a caller names a customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CustomerLookup {
    Id(String),
    ExternalId(String),
}

/// One customer and everything they did, oldest event first.
#[derive(Debug, Clone)]
pub struct History {
    pub customer: Customer,
    pub events: Vec<StoredEvent>,
}

/// How a chunk's events are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reader {
    /// One diesel query per kind table: either backend.
    Diesel,
    /// One binary COPY per kind table: PostgreSQL only.
    Copy,
}

impl Reader {
    /// Chunks read at once. The COPY reader is limited by PostgreSQL's work per chunk
    /// (events are not stored by customer, so a chunk's range scan visits pages all over
    /// the table), and two backends reading two chunks use two cores. SQLite gets one
    /// reader, as before.
    fn workers(self) -> usize {
        match self {
            Self::Diesel => 1,
            Self::Copy => 2,
        }
    }
}

macro_rules! event_tables {
    ([] $($table:ident: $row:ty),*) => {
        /// The event kind tables, keyed by (customer, event): the four a history read scans
        /// and `retention_actions`, which a customer's timeline and campaign reviews read by
        /// customer too. `cluster_histories` rewrites them in this order.
        pub const EVENT_TABLES: &[&str] = &[$(stringify!($table)),*];
    };
}
crate::events::with_event_kinds!(event_tables);

impl Store {
    /// Rewrites each event kind table in customer order (PostgreSQL's `CLUSTER` on its
    /// primary key, whose first column is the customer id), then refreshes the planner's
    /// statistics; calls `done` after each table with its name and the seconds it took.
    ///
    /// Why: a chunk of customers is one range of each table's key. Events stored in
    /// arrival order put a chunk's rows on pages all over the table, so every chunk
    /// reads most of the table; clustered, a chunk reads its own pages once (measured:
    /// 1.5 M events read at 0.55-0.58 M/s before, 1.1-1.18 M/s after). New events land at
    /// the end again, so this is maintenance to run after large loads.
    ///
    /// `CLUSTER` holds an exclusive lock on each table while it rewrites it (measured on
    /// 2 cores: 3.6 s for 1.5 M events, 6.9 s for 2.2 M): writes and reads of that table
    /// wait. Returns false on
    /// SQLite, which has nothing to do (one process reads it, from the page cache).
    pub fn cluster_histories(&self, mut done: impl FnMut(&str, f64)) -> Result<bool> {
        let DbPool::Postgres(pool) = &self.pool else {
            return Ok(false);
        };
        let mut conn = self.checkout(pool)?;
        for table in EVENT_TABLES {
            let started = std::time::Instant::now();
            // Table and index names are our own constants, never input.
            conn.batch_execute(&format!(
                "CLUSTER {table} USING {table}_pkey; ANALYZE {table}"
            ))?;
            done(table, started.elapsed().as_secs_f64());
        }
        Ok(true)
    }

    /// Calls `f` with successive chunks of at most `chunk` customers and their histories,
    /// in customer id order. Stops when `f` returns `ControlFlow::Break` (the caller has
    /// what it needs: not an error) or at the first error.
    ///
    /// Reader threads fetch the next chunks while `f` works on the current one, so the
    /// database and the caller's computation overlap. Memory holds a few chunks at most:
    /// per reader one being read and one waiting, plus the one `f` has.
    pub fn scan_histories(
        &self,
        chunk: usize,
        f: impl FnMut(Vec<History>) -> Result<ControlFlow<()>>,
    ) -> Result<()> {
        self.scan_histories_between(None, None, chunk, f)
    }

    /// [`Store::scan_histories`] over a systematic sample of customers: the first chunk
    /// of every `every` in id order (every chunk when `every` is 1), the others' events
    /// not read at all. Customer ids are time-ordered (UUIDv7), so the chunks taken are
    /// spread evenly over the order in which customers came: what a trainer fits a model
    /// on when reading every history would cost more than the model gains from it.
    pub fn scan_histories_sampled(
        &self,
        chunk: usize,
        every: usize,
        f: impl FnMut(Vec<History>) -> Result<ControlFlow<()>>,
    ) -> Result<()> {
        self.scan_with(self.bulk_reader(), (None, None), chunk, every.max(1), f)
    }

    /// [`Store::scan_histories`] over the customers with `after < id <= last` (None:
    /// unbounded): one chunk of a shared refresh.
    pub fn scan_histories_between(
        &self,
        after: Option<&str>,
        last: Option<&str>,
        chunk: usize,
        f: impl FnMut(Vec<History>) -> Result<ControlFlow<()>>,
    ) -> Result<()> {
        self.scan_with(self.bulk_reader(), (after, last), chunk, 1, f)
    }

    /// How many histories at once are read: binary COPY on PostgreSQL, diesel on SQLite.
    fn bulk_reader(&self) -> Reader {
        if self.is_postgres() {
            Reader::Copy
        } else {
            Reader::Diesel
        }
    }

    /// One thread pages through the customers (cheap: one keyset query per chunk) and
    /// deals the chunks round-robin to `reader.workers()` threads, which read the events;
    /// the caller takes the results round-robin too, so chunks arrive in order with no
    /// reordering buffer. Every channel holds one item, which bounds memory. When `f`
    /// stops, dropping the result receivers stops the workers, whose dropped job
    /// receivers stop the pager. Only the first of every `every` chunks is dealt.
    fn scan_with(
        &self,
        reader: Reader,
        (start, last): (Option<&str>, Option<&str>),
        chunk: usize,
        every: usize,
        mut f: impl FnMut(Vec<History>) -> Result<ControlFlow<()>>,
    ) -> Result<()> {
        use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
        type Job = Result<Vec<Customer>>;
        type Done = Result<Vec<History>>;
        let workers = reader.workers();
        std::thread::scope(|scope| {
            let mut jobs: Vec<SyncSender<Job>> = Vec::with_capacity(workers);
            let mut results: Vec<Receiver<Done>> = Vec::with_capacity(workers);
            for _ in 0..workers {
                let (job_tx, job_rx) = sync_channel::<Job>(1);
                let (done_tx, done_rx) = sync_channel::<Done>(1);
                jobs.push(job_tx);
                results.push(done_rx);
                scope.spawn(move || {
                    for job in job_rx {
                        let done = job.and_then(|customers| self.with_events(reader, customers));
                        if done_tx.send(done).is_err() {
                            return;
                        }
                    }
                });
            }
            scope.spawn(move || {
                let mut after: Option<String> = start.map(str::to_owned);
                let mut dealt = 0;
                for page in 0.. {
                    let next = self.next_customers(chunk, &mut after, last);
                    if matches!(&next, Ok(c) if c.is_empty()) {
                        return;
                    }
                    let failed = next.is_err();
                    if page % every != 0 && !failed {
                        continue;
                    }
                    if jobs[dealt % workers].send(next).is_err() || failed {
                        return;
                    }
                    dealt += 1;
                }
            });
            for n in 0.. {
                // A closed channel: the pager found no more customers.
                let Ok(next) = results[n % workers].recv() else {
                    return Ok(());
                };
                if f(next?)?.is_break() {
                    return Ok(());
                }
            }
            Ok(())
        })
    }

    /// The next `chunk` customers by id after `*after` and at most `last`, moving `after`
    /// past them: the pages of [`Self::scan_histories_between`], for a caller that holds
    /// most histories already (the server's cache) and reads only the rest
    /// ([`Self::histories_of`]).
    pub fn customers_after(
        &self,
        chunk: usize,
        after: &mut Option<String>,
        last: Option<&str>,
    ) -> Result<Vec<Customer>> {
        self.next_customers(chunk, after, last)
    }

    /// The histories of `customers` (sorted by id), read as the scan reads a chunk, in
    /// the same order.
    pub fn histories_of(&self, customers: Vec<Customer>) -> Result<Vec<History>> {
        self.with_events(self.bulk_reader(), customers)
    }

    /// One customer's whole history, oldest event first: what a single evaluation reads.
    pub fn customer_history(&self, customer: Customer) -> Result<History> {
        let mut events = self
            .events_by_customer(&[customer.id.as_str()])?
            .remove(&customer.id)
            .unwrap_or_default();
        sort_timeline(&mut events);
        Ok(History { customer, events })
    }

    /// The histories of several customers, each found by id or external id, in two
    /// statements whatever their number: `out[i]` answers `lookups[i]`, `NotFound` for a
    /// customer that does not exist. The server gathers concurrent evaluations into one
    /// call, so a busy server makes fewer, larger reads.
    pub fn customer_histories(&self, lookups: &[CustomerLookup]) -> Result<Vec<Result<History>>> {
        let mut ids: Vec<&str> = Vec::new();
        let mut external: Vec<&str> = Vec::new();
        for l in lookups {
            match l {
                CustomerLookup::Id(id) => ids.push(id),
                CustomerLookup::ExternalId(id) => external.push(id),
            }
        }
        let rows: Vec<CustomerRow> = with_conn!(self, conn => {
            customers::table
                .filter(
                    customers::id
                        .eq_any(&ids)
                        .or(customers::external_id.eq_any(&external)),
                )
                .select(CustomerRow::as_select())
                .load(conn)?
        });
        let found: Vec<Customer> = rows
            .into_iter()
            .map(CustomerRow::into_domain)
            .collect::<Result<_>>()?;
        let found_ids: Vec<&str> = found.iter().map(|c| c.id.as_str()).collect();
        let mut events = self.events_by_customer(&found_ids)?;
        let by_id: HashMap<&str, &Customer> = found.iter().map(|c| (c.id.as_str(), c)).collect();
        let by_external: HashMap<&str, &Customer> = found
            .iter()
            .map(|c| (c.data.external_id.as_str(), c))
            .collect();
        let mut out: Vec<Result<History>> = Vec::with_capacity(lookups.len());
        // Where each customer's history went first: a customer asked for twice is cloned.
        let mut first: HashMap<&str, usize> = HashMap::new();
        for l in lookups {
            let customer = match l {
                CustomerLookup::Id(id) => by_id.get(id.as_str()).ok_or_else(|| not_found_id(id)),
                CustomerLookup::ExternalId(id) => by_external
                    .get(id.as_str())
                    .ok_or_else(|| not_found_external_id(id)),
            };
            let history = match customer {
                Err(e) => Err(e),
                Ok(customer) => match first.get(customer.id.as_str()) {
                    // The first answer for this customer is a history, never an error.
                    Some(&i) => match &out[i] {
                        Ok(h) => Ok(h.clone()),
                        Err(_) => Err(not_found_id(&customer.id)),
                    },
                    None => {
                        first.insert(&customer.id, out.len());
                        let mut mine = events.remove(&customer.id).unwrap_or_default();
                        sort_timeline(&mut mine);
                        Ok(History {
                            customer: (*customer).clone(),
                            events: mine,
                        })
                    }
                },
            };
            out.push(history);
        }
        Ok(out)
    }

    /// The next `chunk` customers after `after`, in id order; advances `after`.
    fn next_customers(
        &self,
        chunk: usize,
        after: &mut Option<String>,
        last: Option<&str>,
    ) -> Result<Vec<Customer>> {
        let limit = i64::try_from(chunk.max(1)).unwrap_or(i64::MAX);
        let rows: Vec<CustomerRow> = with_conn!(self, conn => {
            let mut q = customers::table
                .select(CustomerRow::as_select())
                .order(customers::id.asc())
                .limit(limit)
                .into_boxed();
            if let Some(after) = after.as_ref() {
                q = q.filter(customers::id.gt(after.clone()));
            }
            if let Some(last) = last {
                q = q.filter(customers::id.le(last.to_owned()));
            }
            q.load(conn)?
        });
        if let Some(last) = rows.last() {
            *after = Some(last.id().to_owned());
        }
        rows.into_iter().map(CustomerRow::into_domain).collect()
    }

    /// `customers` (sorted by id) with their histories.
    fn with_events(&self, reader: Reader, customers: Vec<Customer>) -> Result<Vec<History>> {
        let events = match (&self.pool, reader) {
            (DbPool::Postgres(pool), Reader::Copy) => {
                let mut conn = self.checkout(pool)?;
                copy::events_of(&mut conn, &customers)?
            }
            _ => self.events_of(&customers)?,
        };
        Ok(customers
            .into_iter()
            .zip(events)
            .map(|(customer, mut events)| {
                sort_timeline(&mut events);
                History { customer, events }
            })
            .collect())
    }

    /// Every event of `customers` (sorted by id), grouped: `out[i]` holds the events of
    /// `customers[i]`.
    fn events_of(&self, customers: &[Customer]) -> Result<Vec<Vec<StoredEvent>>> {
        let (Some(first), Some(last)) = (customers.first(), customers.last()) else {
            return Ok(Vec::new());
        };
        let mut events = self.events_between(&first.id, &last.id)?;
        Ok(customers
            .iter()
            .map(|c| events.remove(&c.id).unwrap_or_default())
            .collect())
    }

    /// Every event of the customers with ids in `[first, last]`, grouped by customer: one
    /// range scan of each table's primary key (which starts with the customer id).
    fn events_between(&self, first: &str, last: &str) -> Result<HashMap<String, Vec<StoredEvent>>> {
        let mut out: HashMap<String, Vec<StoredEvent>> = HashMap::new();
        let mut push = |e: StoredEvent| out.entry(e.customer_id.clone()).or_default().push(e);
        with_conn!(self, conn => {
            macro_rules! load_kinds {
                ([] $($table:ident: $row:ty),*) => {
                    $(
                        if <$row as KindRow>::IN_HISTORY {
                            let rows: Vec<$row> = $table::table
                                .filter($table::customer_id.between(first, last))
                                .select(<$row>::as_select())
                                .load(conn)?;
                            for r in rows {
                                push(r.into_event()?);
                            }
                        }
                    )*
                };
            }
            with_event_kinds!(load_kinds);
        });
        Ok(out)
    }
}

/// Oldest first; ties in time broken by event key, so the order is deterministic.
fn sort_timeline(events: &mut [StoredEvent]) {
    events.sort_by(|a, b| {
        a.time
            .cmp(&b.time)
            .then_with(|| a.event_key.cmp(&b.event_key))
    });
}

#[cfg(test)]
mod tests;
