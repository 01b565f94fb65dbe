//! PostgreSQL's fast path for reading a chunk's events: one binary `COPY (SELECT ...) TO
//! STDOUT` per kind table, decoded field by field straight into `StoredEvent`s.
//!
//! Why not diesel's row decoding: it costs several microseconds per row (libpq result
//! accessors per field, a row object per row, an owned value per column) and capped the
//! scan at about 200,000 events/s. A binary COPY streams the same values as a flat byte
//! stream; decoding it is a few length-prefixed reads per row, and the only allocations
//! left are the `String`s a `StoredEvent` owns.
//!
//! The values are the same as diesel's: text arrives as its UTF-8 bytes (diesel sets
//! `client_encoding` to UTF8), `BIGINT` and `INTEGER` as big-endian two's complement, and
//! the enum-like columns go through the same `parse` functions as `events.rs`.

use std::collections::HashMap;
use std::io::{BufRead, Read};

use diesel::QueryResult;
use diesel::connection::SimpleConnection;
use diesel::pg::{CopyFormat, CopyTarget, Pg, PgConnection};
use diesel::prelude::*;
use diesel::query_builder::AstPass;
use diesel::sql_types::Text;
use vitals_engine::{
    Customer, EventPayload, Feedback, FeedbackKind, Interaction, InteractionKind, Payment,
    Severity, StoredEvent, Transaction,
};

use crate::error::{Result, StoreError};
use crate::schema::{feedback, interactions, payments, transactions};

/// The chunk's id range reaches the COPY statements as transaction-local settings: COPY
/// accepts no bind parameters, and diesel's COPY target is static SQL. `set_config` takes
/// the ids as ordinary bind parameters, so no id is ever spliced into SQL text.
const SET_RANGE: &str = "SELECT set_config('vitals.scan_first', $1, true), \
                         set_config('vitals.scan_last', $2, true)";

/// A COPY source: a SELECT of one kind table's columns, in the order the decoder reads
/// them, over the current range: a range scan of the table's primary key, whose first
/// column is the customer id (`current_setting` is stable, so PostgreSQL evaluates it once
/// and uses it as an index bound). No ORDER BY: events are not stored by customer, so
/// sorting them costs the server more than the whole read (an on-disk sort per chunk);
/// the client groups them by customer instead. `CopyTarget` is how diesel names what a COPY reads; its
/// `walk_target` is hidden from diesel's docs but public, and `Cargo.lock` pins diesel.
macro_rules! copy_source {
    ($name:ident, $table:ident, $columns:literal) => {
        #[derive(Debug, Clone, Copy)]
        struct $name;

        impl CopyTarget for $name {
            type Table = $table::table;
            type SqlType = <$table::table as CopyTarget>::SqlType;

            fn walk_target(mut pass: AstPass<'_, '_, Pg>) -> QueryResult<()> {
                pass.push_sql(concat!(
                    "(SELECT ",
                    $columns,
                    " FROM ",
                    stringify!($table),
                    " WHERE customer_id BETWEEN current_setting('vitals.scan_first') \
                     AND current_setting('vitals.scan_last'))"
                ));
                Ok(())
            }
        }
    };
}

copy_source!(
    TransactionsInRange,
    transactions,
    "customer_id, event_key, time, record_time, amount_minor, currency, quantity, category, channel"
);
copy_source!(
    PaymentsInRange,
    payments,
    "customer_id, event_key, time, record_time, invoice_id, amount_minor, currency, due_time, \
     paid_time, method"
);
copy_source!(
    FeedbackInRange,
    feedback,
    "customer_id, event_key, time, record_time, kind, score, comment, channel"
);
copy_source!(
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
            copy(conn, TransactionsInRange, Kind::Transaction, &mut grouper)?;
            copy(conn, PaymentsInRange, Kind::Payment, &mut grouper)?;
            copy(conn, FeedbackInRange, Kind::Feedback, &mut grouper)?;
            copy(conn, InteractionsInRange, Kind::Interaction, &mut grouper)?;
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

/// Runs one COPY and files each row's event under its customer.
fn copy<T: CopyTarget>(
    conn: &mut PgConnection,
    source: T,
    kind: Kind,
    grouper: &mut Grouper<'_>,
) -> Result<()> {
    let raw = diesel::copy_to(source)
        .with_format(CopyFormat::Binary)
        .load_raw(conn)?;
    let mut rows = Fields {
        input: raw,
        scratch: Vec::new(),
    };
    let result = (|| {
        rows.header()?;
        while rows.next_row(kind.fields())? {
            let customer = grouper.position(rows.bytes()?)?;
            let head = Head {
                customer,
                event_key: rows.string()?,
                time: rows.i64()?,
                record_time: rows.i64()?,
            };
            let payload = kind.decode(&mut rows)?;
            grouper.out[head.customer].push(StoredEvent {
                customer_id: grouper.customers[head.customer].id.clone(),
                event_key: head.event_key,
                time: head.time,
                record_time: head.record_time,
                payload,
            });
        }
        rows.end()
    })();
    if result.is_err() {
        // Read what is left (at most this chunk's rows) rather than leave the connection
        // in the middle of a COPY.
        let _ = std::io::copy(&mut rows.input, &mut std::io::sink());
    }
    drop(rows);
    // diesel's COPY reader stops at the end of the data and leaves the statement's
    // completion unread, so the next diesel query would fail with "another command is
    // already in progress". `batch_execute` goes through libpq's `PQexec`, which first
    // collects that completion (and drops any COPY data still unread), then runs its own
    // statement: afterwards the connection is ready for anything, including the pool.
    let finished = conn.batch_execute("SELECT 'copy finished'");
    result?;
    finished?;
    Ok(())
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

/// PostgreSQL's binary COPY stream: a signature, flags and a header extension, then per
/// row a field count and per field a length (-1 for NULL) and that many bytes, then a
/// field count of -1. Reads go through `Read`, so they do not depend on how the server
/// split the stream into messages.
struct Fields<R> {
    input: R,
    /// The bytes of the last field read with `bytes`.
    scratch: Vec<u8>,
}

const SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";

impl<R: BufRead> Fields<R> {
    fn header(&mut self) -> Result<()> {
        let mut head = [0u8; 19];
        self.read(&mut head)?;
        if &head[..11] != SIGNATURE {
            return Err(bad(
                "the stream does not start with the binary COPY signature",
            ));
        }
        // Bit 16 (OIDs included) and the other critical bits must be clear.
        if u32::from_be_bytes([head[11], head[12], head[13], head[14]]) & 0xffff_0000 != 0 {
            return Err(bad("the COPY header has unsupported flags"));
        }
        let extension = u32::from_be_bytes([head[15], head[16], head[17], head[18]]);
        std::io::copy(
            &mut (&mut self.input).take(u64::from(extension)),
            &mut std::io::sink(),
        )
        .map_err(io)?;
        Ok(())
    }

    /// Starts the next row: true if there is one, false at the end of the stream.
    fn next_row(&mut self, fields: i16) -> Result<bool> {
        let mut count = [0u8; 2];
        self.read(&mut count)?;
        match i16::from_be_bytes(count) {
            -1 => Ok(false),
            n if n == fields => Ok(true),
            n => Err(bad(&format!("a row has {n} fields, expected {fields}"))),
        }
    }

    /// After the trailer: nothing may follow. (The stream ending early, without a
    /// trailer, is an error in `read`: a COPY the server aborted is never taken as complete.)
    fn end(&mut self) -> Result<()> {
        if self.input.fill_buf().map_err(io)?.is_empty() {
            Ok(())
        } else {
            Err(bad("data after the COPY trailer"))
        }
    }

    fn read(&mut self, buf: &mut [u8]) -> Result<()> {
        read_exact(&mut self.input, buf)
    }

    /// A field's length, or None for NULL.
    fn len(&mut self) -> Result<Option<usize>> {
        let mut len = [0u8; 4];
        self.read(&mut len)?;
        let len = i32::from_be_bytes(len);
        if len == -1 {
            return Ok(None);
        }
        usize::try_from(len)
            .map(Some)
            .map_err(|_| bad(&format!("a field has length {len}")))
    }

    fn not_null(&mut self) -> Result<usize> {
        self.len()?
            .ok_or_else(|| bad("NULL in a column that is NOT NULL"))
    }

    fn fixed<const N: usize>(&mut self, len: usize) -> Result<[u8; N]> {
        if len != N {
            return Err(bad(&format!(
                "an integer field of {len} bytes, expected {N}"
            )));
        }
        let mut v = [0u8; N];
        self.read(&mut v)?;
        Ok(v)
    }

    fn i64(&mut self) -> Result<i64> {
        let len = self.not_null()?;
        self.fixed::<8>(len).map(i64::from_be_bytes)
    }

    fn opt_i64(&mut self) -> Result<Option<i64>> {
        match self.len()? {
            None => Ok(None),
            Some(len) => self.fixed::<8>(len).map(|v| Some(i64::from_be_bytes(v))),
        }
    }

    fn i32(&mut self) -> Result<i32> {
        let len = self.not_null()?;
        self.fixed::<4>(len).map(i32::from_be_bytes)
    }

    /// A text field into a `String` of its own: the one allocation it needs.
    fn text(&mut self, len: usize) -> Result<String> {
        let mut v = vec![0u8; len];
        self.read(&mut v)?;
        String::from_utf8(v).map_err(|_| bad("a text field is not UTF-8"))
    }

    fn string(&mut self) -> Result<String> {
        let len = self.not_null()?;
        self.text(len)
    }

    fn opt_string(&mut self) -> Result<Option<String>> {
        match self.len()? {
            None => Ok(None),
            Some(len) => self.text(len).map(Some),
        }
    }

    /// A text field's bytes, borrowed until the next read: for values that need no copy.
    fn bytes(&mut self) -> Result<&[u8]> {
        let len = self.not_null()?;
        self.scratch.resize(len, 0);
        read_exact(&mut self.input, &mut self.scratch)?;
        Ok(&self.scratch)
    }

    /// A text column holding one of an enum's names.
    fn parsed<T>(&mut self, what: &str, parse: fn(&str) -> Option<T>) -> Result<T> {
        let bytes = self.bytes()?;
        let text = String::from_utf8_lossy(bytes);
        parse(&text).ok_or_else(|| {
            StoreError::Internal(format!("stored event has unknown {what} {text:?}"))
        })
    }
}

fn read_exact(input: &mut impl Read, buf: &mut [u8]) -> Result<()> {
    input.read_exact(buf).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            StoreError::Unavailable("the COPY of histories ended early".into())
        } else {
            io(e)
        }
    })
}

fn bad(what: &str) -> StoreError {
    StoreError::Internal(format!("reading histories by COPY: {what}"))
}

fn io(e: std::io::Error) -> StoreError {
    // A failed read of COPY data means libpq lost the connection or the server aborted
    // the statement: either way the database, not the data, is the problem.
    StoreError::Unavailable(format!("reading histories by COPY: {e}"))
}
