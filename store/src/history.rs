//! Reading whole customer histories for training and batch scoring.
//!
//! Customers are read in id order, a chunk at a time, with every event of the chunk's
//! customers from the kind tables (which carry `time` and `record_time`, so no join with
//! the ledger is needed). Memory holds one chunk: it grows with the chunk, never with the
//! whole event history.

use std::collections::HashMap;

use diesel::prelude::*;
use vitals_engine::{
    Customer, EventPayload, Feedback, FeedbackKind, Interaction, InteractionKind, Payment,
    Severity, StoredEvent, Transaction,
};

use crate::customers::CustomerRow;
use crate::db::{Store, with_conn};
use crate::error::{Result, StoreError};
use crate::schema::{customers, feedback, interactions, payments, transactions};

/// One customer and everything they did, oldest event first.
#[derive(Debug, Clone)]
pub struct History {
    pub customer: Customer,
    pub events: Vec<StoredEvent>,
}

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Internal(format!("stored event has unknown {what} {value:?}"))
}

impl Store {
    /// Calls `f` with successive chunks of at most `chunk` customers and their histories,
    /// in customer id order. Stops at the first error `f` returns.
    pub fn scan_histories(
        &self,
        chunk: usize,
        mut f: impl FnMut(Vec<History>) -> Result<()>,
    ) -> Result<()> {
        let limit = i64::try_from(chunk.max(1)).unwrap_or(i64::MAX);
        let mut after: Option<String> = None;
        loop {
            let rows: Vec<CustomerRow> = with_conn!(self, conn => {
                let mut q = customers::table
                    .select(CustomerRow::as_select())
                    .order(customers::id.asc())
                    .limit(limit)
                    .into_boxed();
                if let Some(after) = &after {
                    q = q.filter(customers::id.gt(after.clone()));
                }
                q.load(conn)?
            });
            let Some(last) = rows.last() else {
                return Ok(());
            };
            after = Some(last.id().to_owned());
            let customers = rows
                .into_iter()
                .map(CustomerRow::into_domain)
                .collect::<Result<Vec<_>>>()?;
            let ids: Vec<&str> = customers.iter().map(|c| c.id.as_str()).collect();
            let mut events = self.events_of(&ids)?;
            let histories = customers
                .into_iter()
                .map(|customer| {
                    let mut evs = events.remove(&customer.id).unwrap_or_default();
                    evs.sort_by(|a, b| {
                        a.time
                            .cmp(&b.time)
                            .then_with(|| a.event_key.cmp(&b.event_key))
                    });
                    History {
                        customer,
                        events: evs,
                    }
                })
                .collect();
            f(histories)?;
        }
    }

    /// Every event of the given customers, grouped by customer.
    fn events_of(&self, ids: &[&str]) -> Result<HashMap<String, Vec<StoredEvent>>> {
        let mut out: HashMap<String, Vec<StoredEvent>> = HashMap::new();
        let mut push =
            |customer_id: String, event_key: String, time: i64, record_time: i64, payload| {
                out.entry(customer_id.clone())
                    .or_default()
                    .push(StoredEvent {
                        customer_id,
                        event_key,
                        time,
                        record_time,
                        payload,
                    });
            };
        with_conn!(self, conn => {
            let rows: Vec<(String, String, i64, i64, i64, String, i32, String, String)> =
                transactions::table
                    .filter(transactions::customer_id.eq_any(ids))
                    .select((
                        transactions::customer_id,
                        transactions::event_key,
                        transactions::time,
                        transactions::record_time,
                        transactions::amount_minor,
                        transactions::currency,
                        transactions::quantity,
                        transactions::category,
                        transactions::channel,
                    ))
                    .load(conn)?;
            for (c, k, t, rt, amount_minor, currency, quantity, category, channel) in rows {
                push(c, k, t, rt, EventPayload::Transaction(Transaction {
                    amount_minor,
                    currency,
                    quantity,
                    category,
                    channel,
                }));
            }
            let rows: Vec<(String, String, i64, i64, String, i64, String, Option<i64>, Option<i64>, String)> =
                payments::table
                    .filter(payments::customer_id.eq_any(ids))
                    .select((
                        payments::customer_id,
                        payments::event_key,
                        payments::time,
                        payments::record_time,
                        payments::invoice_id,
                        payments::amount_minor,
                        payments::currency,
                        payments::due_time,
                        payments::paid_time,
                        payments::method,
                    ))
                    .load(conn)?;
            for (c, k, t, rt, invoice_id, amount_minor, currency, due_time, paid_time, method) in rows {
                push(c, k, t, rt, EventPayload::Payment(Payment {
                    invoice_id,
                    amount_minor,
                    currency,
                    due_time,
                    paid_time,
                    method,
                }));
            }
            let rows: Vec<(String, String, i64, i64, String, i32, Option<String>, String)> =
                feedback::table
                    .filter(feedback::customer_id.eq_any(ids))
                    .select((
                        feedback::customer_id,
                        feedback::event_key,
                        feedback::time,
                        feedback::record_time,
                        feedback::kind,
                        feedback::score,
                        feedback::comment,
                        feedback::channel,
                    ))
                    .load(conn)?;
            for (c, k, t, rt, kind, score, comment, channel) in rows {
                let kind = FeedbackKind::parse(&kind).ok_or_else(|| corrupt("feedback kind", &kind))?;
                push(c, k, t, rt, EventPayload::Feedback(Feedback {
                    kind,
                    score,
                    comment,
                    channel,
                }));
            }
            let rows: Vec<(String, String, i64, i64, String, String, String, String, String, Option<i64>)> =
                interactions::table
                    .filter(interactions::customer_id.eq_any(ids))
                    .select((
                        interactions::customer_id,
                        interactions::event_key,
                        interactions::time,
                        interactions::record_time,
                        interactions::kind,
                        interactions::severity,
                        interactions::category,
                        interactions::channel,
                        interactions::ticket_id,
                        interactions::resolved_time,
                    ))
                    .load(conn)?;
            for (c, k, t, rt, kind, severity, category, channel, ticket_id, resolved_time) in rows {
                let kind = InteractionKind::parse(&kind)
                    .ok_or_else(|| corrupt("interaction kind", &kind))?;
                let severity = Severity::parse(&severity).ok_or_else(|| corrupt("severity", &severity))?;
                push(c, k, t, rt, EventPayload::Interaction(Interaction {
                    kind,
                    severity,
                    category,
                    channel,
                    ticket_id,
                    resolved_time,
                }));
            }
        });
        Ok(out)
    }
}
