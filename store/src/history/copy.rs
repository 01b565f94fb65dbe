//! PostgreSQL's fast path for reading a chunk's events: one binary `COPY (SELECT ...) TO
//! STDOUT` per kind table (`crate::pgcopy`), decoded field by field straight into
//! `StoredEvent`s. diesel's row decoding capped the scan at about 200,000 events/s; here
//! the only allocations left are the `String`s a `StoredEvent` owns. The enum-like
//! columns go through the same `parse` functions as `events.rs`.

use std::collections::HashMap;
use std::io::BufRead;

use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::Text;
use vitals_domain::{
    Customer, EventPayload, Feedback, FeedbackKind, Interaction, InteractionKind, Payment,
    Severity, StoredEvent, Transaction,
};

use crate::error::{Result, StoreError};
use crate::pgcopy::{Fields, RowSink, copy_out, copy_source};
use crate::schema::{feedback, interactions, payments, transactions};

/// The chunk's id range reaches the COPY statements as transaction-local settings: COPY
/// accepts no bind parameters, and diesel's COPY target is static SQL. `set_config` takes
/// the ids as ordinary bind parameters, so no id is ever spliced into SQL text.
const SET_RANGE: &str = "SELECT set_config('vitals.scan_first', $1, true), \
                         set_config('vitals.scan_last', $2, true)";

/// A kind table's COPY source: its columns, in the order the decoder reads them, over
/// the current range: a range scan of the table's primary key, whose first column is the
/// customer id (`current_setting` is stable, so PostgreSQL evaluates it once and uses it as
/// an index bound). No ORDER BY: the client groups rows by customer; sorting costs the
/// server more than the whole read when events are not stored by customer.
macro_rules! kind_source {
    ($name:ident, $table:ident, $columns:literal) => {
        copy_source!(
            $name,
            $table,
            concat!(
                "(SELECT ",
                $columns,
                " FROM ",
                stringify!($table),
                " WHERE customer_id BETWEEN current_setting('vitals.scan_first') \
                 AND current_setting('vitals.scan_last'))"
            )
        );
    };
}

kind_source!(
    TransactionsInRange,
    transactions,
    "customer_id, event_key, time, record_time, amount_minor, currency, quantity, category, channel"
);
kind_source!(
    PaymentsInRange,
    payments,
    "customer_id, event_key, time, record_time, invoice_id, amount_minor, currency, due_time, \
     paid_time, method"
);
kind_source!(
    FeedbackInRange,
    feedback,
    "customer_id, event_key, time, record_time, kind, score, comment, channel"
);
kind_source!(
    InteractionsInRange,
    interactions,
    "customer_id, event_key, time, record_time, kind, severity, category, channel, ticket_id, \
     resolved_time"
);

/// Every event of `customers` (sorted by id, as the chunk query returns them), grouped
/// by customer: `out[i]` holds the events of `customers[i]`, unsorted.
///
/// The four COPYs run in one read-only repeatable-read transaction, so the chunk is one
/// consistent snapshot across the kind tables.
pub(super) fn events_of(
    conn: &mut PgConnection,
    customers: &[Customer],
) -> Result<Vec<Vec<StoredEvent>>> {
    let mut out: Vec<Vec<StoredEvent>> = Vec::new();
    out.resize_with(customers.len(), Vec::new);
    let (Some(first), Some(last)) = (customers.first(), customers.last()) else {
        return Ok(out);
    };
    let index: HashMap<&str, usize> = customers
        .iter()
        .enumerate()
        .map(|(i, c)| (c.id.as_str(), i))
        .collect();
    let mut grouper = Grouper {
        customers,
        index,
        current: None,
        out: &mut out,
    };
    conn.build_transaction()
        .read_only()
        .repeatable_read()
        .run::<_, StoreError, _>(|conn| {
            diesel::sql_query(SET_RANGE)
                .bind::<Text, _>(&first.id)
                .bind::<Text, _>(&last.id)
                .execute(conn)?;
            copy_out(
                conn,
                TransactionsInRange,
                &mut KindRows {
                    kind: Kind::Transaction,
                    grouper: &mut grouper,
                },
            )?;
            copy_out(
                conn,
                PaymentsInRange,
                &mut KindRows {
                    kind: Kind::Payment,
                    grouper: &mut grouper,
                },
            )?;
            copy_out(
                conn,
                FeedbackInRange,
                &mut KindRows {
                    kind: Kind::Feedback,
                    grouper: &mut grouper,
                },
            )?;
            copy_out(
                conn,
                InteractionsInRange,
                &mut KindRows {
                    kind: Kind::Interaction,
                    grouper: &mut grouper,
                },
            )?;
            Ok(())
        })?;
    Ok(out)
}

/// Files each row under its customer. The id is looked up only when it differs from the
/// previous row's; the `customer_id` each event owns is a copy of the customer's.
struct Grouper<'a> {
    customers: &'a [Customer],
    index: HashMap<&'a str, usize>,
    /// The customer of the previous row.
    current: Option<usize>,
    out: &'a mut Vec<Vec<StoredEvent>>,
}

impl Grouper<'_> {
    /// The position of the customer whose id is `id`.
    fn position(&mut self, id: &[u8]) -> Result<usize> {
        if let Some(i) = self.current
            && self.customers[i].id.as_bytes() == id
        {
            return Ok(i);
        }
        let i = std::str::from_utf8(id)
            .ok()
            .and_then(|id| self.index.get(id).copied())
            .ok_or_else(|| {
                StoreError::Internal(format!(
                    "COPY returned an event of customer {:?}, outside the chunk",
                    String::from_utf8_lossy(id)
                ))
            })?;
        self.current = Some(i);
        Ok(i)
    }
}

/// The common head of every kind table's row.
struct Head {
    customer: usize,
    event_key: String,
    time: i64,
    record_time: i64,
}

/// Which kind table a COPY reads: how many fields its rows have and how to decode them.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Transaction,
    Payment,
    Feedback,
    Interaction,
}

impl Kind {
    fn fields(self) -> i16 {
        match self {
            Self::Transaction => 9,
            Self::Payment | Self::Interaction => 10,
            Self::Feedback => 8,
        }
    }

    /// The payload: the fields after the head.
    fn decode<R: BufRead>(self, r: &mut Fields<R>) -> Result<EventPayload> {
        match self {
            Self::Transaction => decode_transaction(r),
            Self::Payment => decode_payment(r),
            Self::Feedback => decode_feedback(r),
            Self::Interaction => decode_interaction(r),
        }
    }
}

/// One kind table's rows, each filed as an event under its customer.
struct KindRows<'g, 'a> {
    kind: Kind,
    grouper: &'g mut Grouper<'a>,
}

impl RowSink for KindRows<'_, '_> {
    fn fields(&self) -> i16 {
        self.kind.fields()
    }

    fn row<R: BufRead>(&mut self, rows: &mut Fields<R>) -> Result<()> {
        let customer = self.grouper.position(rows.bytes()?)?;
        let head = Head {
            customer,
            event_key: rows.string()?,
            time: rows.i64()?,
            record_time: rows.i64()?,
        };
        let payload = self.kind.decode(rows)?;
        self.grouper.out[head.customer].push(StoredEvent {
            customer_id: self.grouper.customers[head.customer].id.clone(),
            event_key: head.event_key,
            time: head.time,
            record_time: head.record_time,
            payload,
        });
        Ok(())
    }
}

fn decode_transaction<R: BufRead>(r: &mut Fields<R>) -> Result<EventPayload> {
    Ok(EventPayload::Transaction(Transaction {
        amount_minor: r.i64()?,
        currency: r.string()?,
        quantity: r.i32()?,
        category: r.string()?,
        channel: r.string()?,
    }))
}

fn decode_payment<R: BufRead>(r: &mut Fields<R>) -> Result<EventPayload> {
    Ok(EventPayload::Payment(Payment {
        invoice_id: r.string()?,
        amount_minor: r.i64()?,
        currency: r.string()?,
        due_time: r.opt_i64()?,
        paid_time: r.opt_i64()?,
        method: r.string()?,
    }))
}

fn decode_feedback<R: BufRead>(r: &mut Fields<R>) -> Result<EventPayload> {
    let kind = r.parsed("feedback kind", FeedbackKind::parse)?;
    Ok(EventPayload::Feedback(Feedback {
        kind,
        score: r.i32()?,
        comment: r.opt_string()?,
        channel: r.string()?,
    }))
}

fn decode_interaction<R: BufRead>(r: &mut Fields<R>) -> Result<EventPayload> {
    Ok(EventPayload::Interaction(Interaction {
        kind: r.parsed("interaction kind", InteractionKind::parse)?,
        severity: r.parsed("severity", Severity::parse)?,
        category: r.string()?,
        channel: r.string()?,
        ticket_id: r.string()?,
        resolved_time: r.opt_i64()?,
    }))
}
