//! PostgreSQL's fast path for reading a chunk's events: one binary `COPY (SELECT ...) TO
//! STDOUT` per kind table (`crate::pgcopy`), decoded field by field straight into
//! `StoredEvent`s. diesel's row decoding capped the scan at about 200,000 events/s; here
//! the only allocations left are the `String`s a `StoredEvent` owns. Each kind's columns
//! and their decoding come from its `statement_row!` line (`events/write.rs`) and its
//! `KindRow` (`events/rows.rs`), as for every other read and write.

use std::collections::HashMap;
use std::io::BufRead;
use std::marker::PhantomData;

use diesel::pg::{CopyTarget, Pg, PgConnection};
use diesel::prelude::*;
use diesel::query_builder::AstPass;
use diesel::sql_types::Text;
use vitals_domain::{Customer, StoredEvent};

use crate::error::{Result, StoreError};
use crate::events::{
    FeedbackRow, InteractionRow, KindRow, PaymentRow, RetentionActionRow, StatementRow,
    TransactionRow, with_event_kinds,
};
use crate::pgcopy::{CopyRow, Fields, RowSink, copy_out};

/// The chunk's id range reaches the COPY statements as transaction-local settings: COPY
/// accepts no bind parameters, and diesel's COPY target is static SQL. `set_config` takes
/// the ids as ordinary bind parameters, so no id is ever spliced into SQL text.
const SET_RANGE: &str = "SELECT set_config('vitals.scan_first', $1, true), \
                         set_config('vitals.scan_last', $2, true)";

/// A kind table's COPY source: its columns (`statement_row!`'s list, the order
/// `CopyRow::from_fields` reads them) over the current range: a range scan of the table's
/// primary key, whose first column is the customer id (`current_setting` is stable, so
/// PostgreSQL evaluates it once and uses it as an index bound). No ORDER BY: the client
/// groups rows by customer; sorting costs the server more than the whole read when events
/// are not stored by customer.
struct InRange<K>(PhantomData<K>);

impl<K: CopyRow + StatementRow> CopyTarget for InRange<K> {
    type Table = K::Table;
    type SqlType = <K::Table as CopyTarget>::SqlType;

    fn walk_target(mut pass: AstPass<'_, '_, Pg>) -> QueryResult<()> {
        // Table and column names are the kinds' own constants, never input.
        pass.push_sql(&format!(
            "(SELECT {} FROM {} WHERE customer_id BETWEEN current_setting('vitals.scan_first') \
             AND current_setting('vitals.scan_last'))",
            K::COLUMNS.join(", "),
            K::TABLE
        ));
        Ok(())
    }
}

/// Every event of `customers` (sorted by id, as the chunk query returns them), grouped
/// by customer: `out[i]` holds the events of `customers[i]`, unsorted.
///
/// The kinds' COPYs run in one read-only repeatable-read transaction, so the chunk is one
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
            macro_rules! read_kinds {
                ([] $($table:ident: $row:ty),*) => {
                    $(
                        if <$row as KindRow>::IN_HISTORY {
                            copy_out(
                                conn,
                                InRange::<$row>(PhantomData),
                                &mut KindRows::<$row> {
                                    grouper: &mut grouper,
                                    kind: PhantomData,
                                },
                            )?;
                        }
                    )*
                };
            }
            with_event_kinds!(read_kinds);
            Ok(())
        })?;
    Ok(out)
}

/// Files each row under its customer. The id is looked up only when it differs from the
/// previous row's.
struct Grouper<'a> {
    customers: &'a [Customer],
    index: HashMap<&'a str, usize>,
    /// The customer of the previous row.
    current: Option<usize>,
    out: &'a mut Vec<Vec<StoredEvent>>,
}

impl Grouper<'_> {
    /// The position of the customer whose id is `id`.
    fn position(&mut self, id: &str) -> Result<usize> {
        if let Some(i) = self.current
            && self.customers[i].id == id
        {
            return Ok(i);
        }
        let i = self.index.get(id).copied().ok_or_else(|| {
            StoreError::Internal(format!(
                "COPY returned an event of customer {id:?}, outside the chunk"
            ))
        })?;
        self.current = Some(i);
        Ok(i)
    }
}

/// One kind table's rows, each filed as an event under its customer.
struct KindRows<'g, 'a, K> {
    grouper: &'g mut Grouper<'a>,
    kind: PhantomData<K>,
}

impl<K: CopyRow + StatementRow + KindRow> RowSink for KindRows<'_, '_, K> {
    fn fields(&self) -> i16 {
        // A handful of columns per kind: far below i16::MAX.
        K::COLUMNS.len() as i16
    }

    fn row<R: BufRead>(&mut self, rows: &mut Fields<R>) -> Result<()> {
        let event = K::from_fields(rows)?.into_event()?;
        let customer = self.grouper.position(&event.customer_id)?;
        self.grouper.out[customer].push(event);
        Ok(())
    }
}
