//! The COPY reader against the diesel reader on one PostgreSQL database: every chunk,
//! customer and event must come out identical. Needs PostgreSQL (`TEST_DATABASE_URL`,
//! default `postgres://postgres@127.0.0.1:5432/test`) and fails, not skips, without it.

use std::ops::ControlFlow;

use diesel::{Connection, PgConnection, RunQueryDsl};
use vitals_domain::{
    Customer, CustomerData, CustomerRef, EventPayload, Feedback, FeedbackKind, Interaction,
    InteractionKind, NewEvent, Payment, Severity, Transaction,
};

use super::{History, Reader};
use crate::{DatabaseUrl, PoolOptions, RecordMode, Store, StoreError};

const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A schema of its own, dropped when the test ends (passed or not).
struct Schema {
    admin: String,
    name: String,
}

impl Schema {
    fn create() -> Self {
        let admin =
            std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
        let mut conn = PgConnection::establish(&admin).unwrap_or_else(|e| {
            panic!("PostgreSQL is needed for this test (set TEST_DATABASE_URL): {e}")
        });
        let name = format!("t_hist_{}", uuid::Uuid::new_v4().simple());
        diesel::sql_query(format!("CREATE SCHEMA {name}"))
            .execute(&mut conn)
            .expect("create the test schema");
        Self { admin, name }
    }

    fn url(&self) -> String {
        let sep = if self.admin.contains('?') { '&' } else { '?' };
        format!("{}{sep}options=-csearch_path%3D{}", self.admin, self.name)
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        if let Ok(mut conn) = PgConnection::establish(&self.admin) {
            let _ = diesel::sql_query(format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name))
                .execute(&mut conn);
        }
    }
}

fn store(schema: &Schema) -> Store {
    let url = DatabaseUrl::parse(&schema.url()).expect("a PostgreSQL URL");
    let store = Store::open(&url, &PoolOptions::default()).expect("open the store");
    store.migrate().expect("migrate");
    store
}

const DAY: i64 = 86_400_000_000;

/// Customers with a mix of every kind of event, NULLs and not, ties in time, odd text;
/// every third customer has no events at all.
fn load(store: &Store, customers: usize) -> Vec<Customer> {
    let mut created = Vec::new();
    let mut batch = Vec::new();
    for c in 0..customers {
        let customer = store
            .create_customer(CustomerData::new(format!("ext-{c}")), 1_000)
            .expect("create a customer");
        if c % 3 != 2 {
            for e in 0..(c % 7) * 3 + 1 {
                // Times collide within a customer, so ties are broken by event key.
                let time = 1_700_000_000_000_000 + (e as i64 / 2) * DAY - (c as i64);
                let payload = match e % 4 {
                    0 => EventPayload::Transaction(Transaction {
                        amount_minor: if e % 8 == 0 {
                            -1_250
                        } else {
                            i64::MAX - e as i64
                        },
                        currency: "EUR".into(),
                        quantity: e as i32 - 3,
                        category: if e % 8 == 0 {
                            String::new()
                        } else {
                            "bücher 📚".into()
                        },
                        channel: "web".into(),
                    }),
                    1 => EventPayload::Payment(Payment {
                        invoice_id: format!("inv-{c}-{e}"),
                        amount_minor: 9_900,
                        currency: "USD".into(),
                        due_time: (e % 3 != 0).then_some(time + DAY),
                        paid_time: (e % 5 == 1).then_some(time - 1),
                        method: "card".into(),
                    }),
                    2 => EventPayload::Feedback(Feedback {
                        kind: FeedbackKind::ALL[e % 4],
                        score: (e % 7 != 6).then_some((e % 5) as i32),
                        comment: (e % 3 == 0).then(|| format!("it's \"fine\"\\ {c}\n\ttab")),
                        channel: "email".into(),
                    }),
                    _ => EventPayload::Interaction(Interaction {
                        note: (e % 2 == 0).then(|| format!("said \"late\" {c}\n")),
                        kind: InteractionKind::ALL[e % 5],
                        severity: Severity::ALL[(e + c) % 5],
                        category: "billing".into(),
                        channel: "phone".into(),
                        ticket_id: format!("t{e}"),
                        resolved_time: (e % 2 == 1).then_some(time + 3 * DAY),
                    }),
                };
                batch.push((
                    batch.len(),
                    NewEvent {
                        // Keys that sort differently as text and as numbers.
                        event_key: format!("k{}", (e * 7919) % 100),
                        customer: CustomerRef::Id(customer.id.clone()),
                        time,
                        payload,
                    },
                ));
            }
        }
        created.push(customer);
    }
    let outcome = store
        .record_events(batch, RecordMode::Backfill, None, None, 2_000)
        .expect("record the events");
    assert!(outcome.rejected.is_empty(), "{:?}", outcome.rejected);
    created
}

/// Every chunk as the reader delivers it.
fn scan(
    store: &Store,
    reader: Reader,
    chunk: usize,
) -> Vec<Vec<(Customer, Vec<vitals_domain::StoredEvent>)>> {
    let mut chunks = Vec::new();
    store
        .scan_with(reader, (None, None), chunk, 1, |histories: Vec<History>| {
            chunks.push(
                histories
                    .into_iter()
                    .map(|h| (h.customer, h.events))
                    .collect::<Vec<_>>(),
            );
            Ok(ControlFlow::Continue(()))
        })
        .expect("scan");
    chunks
}

#[test]
fn copy_reader_returns_what_diesel_returns() {
    let schema = Schema::create();
    let store = store(&schema);
    let customers = load(&store, 40);

    let expected = scan(&store, Reader::Diesel, 1_000);
    assert_eq!(expected.len(), 1);
    assert_eq!(expected[0].len(), customers.len());
    let events: usize = expected[0].iter().map(|(_, e)| e.len()).sum();
    assert!(events > 200, "{events} events");
    for kind in ["transaction", "payment", "feedback", "interaction"] {
        assert!(
            expected[0]
                .iter()
                .flat_map(|(_, e)| e)
                .any(|e| e.payload.kind().as_str() == kind),
            "no {kind} events"
        );
    }
    assert!(expected[0].iter().any(|(_, e)| e.is_empty()));

    // Chunk boundaries everywhere: one customer, a few, all in one.
    for chunk in [1, 2, 3, 7, 40, 1_000] {
        let diesel = scan(&store, Reader::Diesel, chunk);
        let copy = scan(&store, Reader::Copy, chunk);
        assert_eq!(copy.len(), customers.len().div_ceil(chunk), "chunk {chunk}");
        assert!(
            copy == diesel,
            "chunk {chunk}: the COPY reader differs from diesel's"
        );
    }

    // `scan_histories` on PostgreSQL (the COPY reader) and `customer_history` agree too.
    let mut all = Vec::new();
    store
        .scan_histories(5, |histories| {
            all.extend(histories.into_iter().map(|h| (h.customer, h.events)));
            Ok(ControlFlow::Continue(()))
        })
        .expect("scan_histories");
    assert!(all == expected[0]);
    for (customer, events) in &expected[0] {
        let one = store
            .customer_history(customer.clone())
            .expect("one history");
        assert!(&one.events == events);
    }
}

/// A sampled scan reads the first chunk of every `every`, whole and in order: exactly the
/// full scan's chunks 0, every, 2 × every, ...
#[test]
fn a_sampled_scan_reads_every_nth_chunk_and_no_other() {
    let schema = Schema::create();
    let store = store(&schema);
    let customers = load(&store, 23);
    let full = scan(&store, Reader::Copy, 2);
    for every in [1, 3, 5, 40] {
        let mut sampled = Vec::new();
        store
            .scan_histories_sampled(2, every, |histories| {
                sampled.push(
                    histories
                        .into_iter()
                        .map(|h| (h.customer, h.events))
                        .collect::<Vec<_>>(),
                );
                Ok(ControlFlow::Continue(()))
            })
            .expect("sampled scan");
        let expected: Vec<_> = full.iter().step_by(every).cloned().collect();
        assert_eq!(sampled.len(), customers.len().div_ceil(2).div_ceil(every));
        assert!(sampled == expected, "every {every}");
    }
}

#[test]
fn a_bad_stored_value_is_an_error_and_the_pool_stays_usable() {
    let schema = Schema::create();
    let store = store(&schema);
    load(&store, 6);
    let mut conn = PgConnection::establish(&schema.url()).expect("connect");
    // `severity` has no CHECK constraint: a value the domain does not know can be stored.
    let corrupted = diesel::sql_query(
        "UPDATE interactions SET severity = 'catastrophic' WHERE event_key = 'k57'",
    )
    .execute(&mut conn)
    .expect("corrupt a row");
    assert!(corrupted > 0);

    for reader in [Reader::Diesel, Reader::Copy] {
        let err = store
            .scan_with(reader, (None, None), 2, 1, |_| {
                Ok(ControlFlow::Continue(()))
            })
            .expect_err("unknown severity");
        assert!(
            matches!(&err, StoreError::Internal(m) if m.contains("catastrophic")),
            "{reader:?}: {err:?}"
        );
    }
    // The connection that saw the error left COPY mode: the next scans work.
    diesel::sql_query("UPDATE interactions SET severity = 'low' WHERE event_key = 'k57'")
        .execute(&mut conn)
        .expect("repair the row");
    for _ in 0..20 {
        assert_eq!(scan(&store, Reader::Copy, 2).concat().len(), 6);
    }
}

#[test]
fn the_consumer_stopping_early_stops_the_scan() {
    let schema = Schema::create();
    let store = store(&schema);
    load(&store, 10);
    let mut calls = 0;
    store
        .scan_with(Reader::Copy, (None, None), 2, 1, |_| {
            calls += 1;
            Ok(ControlFlow::Break(()))
        })
        .expect("stopping early is not an error");
    assert_eq!(calls, 1);
    let err = store
        .scan_with(Reader::Copy, (None, None), 2, 1, |_| {
            Err(StoreError::Internal("the consumer failed".into()))
        })
        .expect_err("the consumer's error");
    assert!(matches!(err, StoreError::Internal(_)));
    assert_eq!(scan(&store, Reader::Copy, 3).concat().len(), 10);
}

#[test]
fn clustering_the_event_tables_changes_no_history() {
    let schema = Schema::create();
    let store = store(&schema);
    load(&store, 25);
    let before = scan(&store, Reader::Copy, 7);
    let mut tables = Vec::new();
    let clustered = store
        .cluster_histories(|table, _| tables.push(table.to_owned()))
        .expect("cluster");
    assert!(clustered);
    assert_eq!(
        tables,
        [
            "transactions",
            "payments",
            "feedback",
            "interactions",
            "retention_actions"
        ]
    );
    // PostgreSQL records the index each table was clustered on: every kind table's key.
    #[derive(diesel::QueryableByName)]
    struct Clustered {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = PgConnection::establish(&schema.url()).expect("connect");
    let marked = diesel::sql_query(
        "SELECT count(*) AS n FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
         WHERE i.indisclustered AND c.relnamespace = current_schema()::regnamespace \
         AND c.relname IN ('transactions_pkey', 'payments_pkey', 'feedback_pkey', \
         'interactions_pkey', 'retention_actions_pkey')",
    )
    .get_result::<Clustered>(&mut conn)
    .expect("read the catalog");
    assert_eq!(marked.n, 5);
    assert!(scan(&store, Reader::Copy, 7) == before);
    // Still readable afterwards, and clustering again is harmless.
    store.cluster_histories(|_, _| {}).expect("cluster again");
    assert!(scan(&store, Reader::Diesel, 7) == before);
}

#[test]
fn several_histories_in_one_read_match_one_at_a_time() {
    use super::CustomerLookup;
    let schema = Schema::create();
    let store = store(&schema);
    let customers = load(&store, 12);
    let lookups = vec![
        CustomerLookup::Id(customers[0].id.clone()),
        CustomerLookup::ExternalId("ext-4".into()),
        CustomerLookup::Id("no-such-customer".into()),
        // Asked for twice, once by each name.
        CustomerLookup::ExternalId("ext-0".into()),
        CustomerLookup::Id(customers[2].id.clone()),
        CustomerLookup::ExternalId("ext-unknown".into()),
    ];
    let got = store.customer_histories(&lookups).expect("one read");
    assert_eq!(got.len(), lookups.len());
    let alone = |i: usize| {
        store
            .customer_history(customers[i].clone())
            .expect("one history")
    };
    for (slot, customer) in [(0, 0), (1, 4), (3, 0), (4, 2)] {
        let h = got[slot].as_ref().expect("found");
        let expected = alone(customer);
        assert_eq!(h.customer, expected.customer, "slot {slot}");
        assert!(h.events == expected.events, "slot {slot}");
    }
    assert!(!got[0].as_ref().expect("found").events.is_empty());
    assert!(
        got[4].as_ref().expect("found").events.is_empty(),
        "ext-2 has none"
    );
    for (slot, name) in [(2, "no-such-customer"), (5, "ext-unknown")] {
        match &got[slot] {
            Err(StoreError::NotFound(m)) => assert!(m.contains(name), "{m}"),
            other => panic!("slot {slot}: {other:?}"),
        }
    }
}

/// Ids and keys compare as bytes in PostgreSQL (migration `000010`, the "C" collation),
/// whatever the database's locale: B-tree inserts into the events' keys compare with
/// memcmp instead of strcoll, and `ORDER BY` on a key is the order Rust compares
/// strings in.
#[test]
fn ids_and_keys_compare_as_bytes() {
    use diesel::sql_types::{Nullable, Text};

    #[derive(diesel::QueryableByName)]
    struct Column {
        #[diesel(sql_type = Text)]
        table_name: String,
        #[diesel(sql_type = Text)]
        column_name: String,
        #[diesel(sql_type = Nullable<Text>)]
        collation_name: Option<String>,
    }
    #[derive(diesel::QueryableByName)]
    struct Key {
        #[diesel(sql_type = Text)]
        external_id: String,
    }

    let schema = Schema::create();
    let store = store(&schema);
    let mut conn = PgConnection::establish(&schema.url()).expect("connect");
    let keys: Vec<Column> = diesel::sql_query(
        "SELECT table_name::text, column_name::text, collation_name::text \
         FROM information_schema.columns \
         WHERE table_schema = current_schema() AND data_type = 'text' \
           AND column_name IN ('id', 'customer_id', 'event_key', 'external_id')",
    )
    .load(&mut conn)
    .expect("the key columns");
    for table in [
        "customers",
        "events",
        "transactions",
        "payments",
        "feedback",
        "interactions",
        "evaluations",
        "comment_analyses",
        "follow_ups",
    ] {
        assert!(
            keys.iter().any(|k| k.table_name == table),
            "{table} has no key column"
        );
    }
    let locale_ordered: Vec<String> = keys
        .iter()
        .filter(|k| k.collation_name.as_deref() != Some("C"))
        .map(|k| {
            format!(
                "{}.{} ({:?})",
                k.table_name, k.column_name, k.collation_name
            )
        })
        .collect();
    assert!(
        locale_ordered.is_empty(),
        "compared under a locale: {locale_ordered:?}"
    );

    // Upper case before lower, punctuation by its byte, accents after every ASCII letter:
    // a locale such as en_US.UTF-8 orders these otherwise.
    let mut external_ids = ["b", "B", "a", "_x", "-x", "é", "Z", "ab", "a-b", "aB"];
    for id in external_ids {
        store
            .create_customer(CustomerData::new(id), 1_000)
            .expect("create a customer");
    }
    let stored: Vec<String> =
        diesel::sql_query("SELECT external_id FROM customers ORDER BY external_id")
            .load::<Key>(&mut conn)
            .expect("the customers in key order")
            .into_iter()
            .map(|k| k.external_id)
            .collect();
    external_ids.sort_unstable();
    assert_eq!(stored, external_ids);
}
