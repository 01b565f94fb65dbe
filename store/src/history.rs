//! Reading whole customer histories for training and batch scoring.
//!
//! Customers are read in id order, a chunk at a time, with every event of the chunk's
//! customers from the kind tables (which carry `time` and `record_time`, so no join with
//! the ledger is needed). Memory holds one chunk: it grows with the chunk, never with the
//! whole event history.

use std::collections::HashMap;

use diesel::prelude::*;
use vitals_engine::{Customer, StoredEvent};

use crate::customers::CustomerRow;
use crate::db::{Store, with_conn};
use crate::error::Result;
use crate::events::{FeedbackRow, InteractionRow, PaymentRow, TransactionRow};
use crate::schema::{customers, feedback, interactions, payments, transactions};

/// One customer and everything they did, oldest event first.
#[derive(Debug, Clone)]
pub struct History {
    pub customer: Customer,
    pub events: Vec<StoredEvent>,
}

impl Store {
    /// Calls `f` with successive chunks of at most `chunk` customers and their histories,
    /// in customer id order. Stops at the first error `f` returns.
    ///
    /// A reader thread fetches the next chunk while `f` works on the current one, so the
    /// database and the caller's computation overlap.
    pub fn scan_histories(
        &self,
        chunk: usize,
        mut f: impl FnMut(Vec<History>) -> Result<()>,
    ) -> Result<()> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Vec<History>>>(1);
        std::thread::scope(|scope| {
            scope.spawn(move || {
                let mut after: Option<String> = None;
                loop {
                    let next = self.read_chunk(chunk, &mut after);
                    let done = matches!(&next, Ok(h) if h.is_empty()) || next.is_err();
                    // A closed channel means the consumer stopped: so do we.
                    if tx.send(next).is_err() || done {
                        return;
                    }
                }
            });
            for next in rx {
                let histories = next?;
                if histories.is_empty() {
                    return Ok(());
                }
                f(histories)?;
            }
            Ok(())
        })
    }

    /// One customer's whole history, oldest event first: what a single evaluation reads.
    pub fn customer_history(&self, customer: Customer) -> Result<History> {
        let mut events = self
            .events_between(&customer.id, &customer.id)?
            .remove(&customer.id)
            .unwrap_or_default();
        sort_timeline(&mut events);
        Ok(History { customer, events })
    }

    /// The next `chunk` customers after `after`, with their histories; advances `after`.
    fn read_chunk(&self, chunk: usize, after: &mut Option<String>) -> Result<Vec<History>> {
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
            q.load(conn)?
        });
        let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
            return Ok(Vec::new());
        };
        let range = (first.id().to_owned(), last.id().to_owned());
        *after = Some(range.1.clone());
        let customers = rows
            .into_iter()
            .map(CustomerRow::into_domain)
            .collect::<Result<Vec<_>>>()?;
        let mut events = self.events_between(&range.0, &range.1)?;
        Ok(customers
            .into_iter()
            .map(|customer| {
                let mut evs = events.remove(&customer.id).unwrap_or_default();
                sort_timeline(&mut evs);
                History {
                    customer,
                    events: evs,
                }
            })
            .collect())
    }

    /// Every event of the customers with ids in `[first, last]`, grouped by customer: one
    /// range scan of each table's primary key (which starts with the customer id).
    fn events_between(&self, first: &str, last: &str) -> Result<HashMap<String, Vec<StoredEvent>>> {
        let mut out: HashMap<String, Vec<StoredEvent>> = HashMap::new();
        let mut push = |e: StoredEvent| out.entry(e.customer_id.clone()).or_default().push(e);
        with_conn!(self, conn => {
            let rows: Vec<TransactionRow> = transactions::table
                .filter(transactions::customer_id.between(first, last))
                .select(TransactionRow::as_select())
                .load(conn)?;
            for r in rows {
                push(r.into_event()?);
            }
            let rows: Vec<PaymentRow> = payments::table
                .filter(payments::customer_id.between(first, last))
                .select(PaymentRow::as_select())
                .load(conn)?;
            for r in rows {
                push(r.into_event()?);
            }
            let rows: Vec<FeedbackRow> = feedback::table
                .filter(feedback::customer_id.between(first, last))
                .select(FeedbackRow::as_select())
                .load(conn)?;
            for r in rows {
                push(r.into_event()?);
            }
            let rows: Vec<InteractionRow> = interactions::table
                .filter(interactions::customer_id.between(first, last))
                .select(InteractionRow::as_select())
                .load(conn)?;
            for r in rows {
                push(r.into_event()?);
            }
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
