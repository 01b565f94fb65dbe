//! The training read path: whole histories, a chunk of customers at a time.

use vitals_domain::time::MICROS_PER_DAY;
use vitals_domain::{CustomerData, CustomerRef, EventPayload, NewEvent, Transaction};
use vitals_store::{EventFilter, RecordMode};
use vitals_tests::{Backend, TestDb, both_backends};

both_backends!(
    scan_histories_groups_every_event_by_customer_in_chunks,
    a_backfill_batch_keeps_the_request_s_order_where_it_matters,
);

async fn scan_histories_groups_every_event_by_customer_in_chunks(backend: Backend) {
    let db = TestDb::new(backend);
    let store = db.store();
    let now = vitals_domain::time::now_micros();
    let rows = (0..5)
        .map(|i| (i, CustomerData::new(format!("h{i}"))))
        .collect();
    store.upsert_customers(rows, now).expect("customers");
    let mut batch = Vec::new();
    for c in 0..5 {
        // Customer c has c purchases, sent newest first.
        for k in (0..c).rev() {
            batch.push((
                batch.len(),
                NewEvent {
                    event_key: format!("e{k}"),
                    customer: CustomerRef::ExternalId(format!("h{c}")),
                    time: now - (10 - k) * MICROS_PER_DAY,
                    payload: EventPayload::Transaction(Transaction {
                        amount_minor: 100 * (k + 1),
                        currency: "EUR".into(),
                        quantity: 1,
                        category: String::new(),
                        channel: String::new(),
                    }),
                },
            ));
        }
    }
    let outcome = store
        .record_events(batch, RecordMode::Backfill, None, None, now)
        .expect("events");
    assert_eq!(outcome.accepted, 10);

    let mut chunks = Vec::new();
    let mut seen = Vec::new();
    store
        .scan_histories(2, |histories| {
            chunks.push(histories.len());
            for h in histories {
                let times: Vec<_> = h.events.iter().map(|e| e.time).collect();
                let mut sorted = times.clone();
                sorted.sort();
                assert_eq!(times, sorted, "oldest first");
                seen.push((h.customer.data.external_id.clone(), h.events.len()));
            }
            Ok(std::ops::ControlFlow::Continue(()))
        })
        .expect("scan");
    assert_eq!(chunks, [2, 2, 1]);
    seen.sort();
    let expected: Vec<_> = (0..5).map(|i| (format!("h{i}"), i as usize)).collect();
    assert_eq!(seen, expected);
}

/// A backfill batch is written in customer order (for the indexes' sake), yet what it
/// records is what the request said: of a key sent twice with different contents the
/// first is kept and the second rejected under its own index; every other event stored.
async fn a_backfill_batch_keeps_the_request_s_order_where_it_matters(backend: Backend) {
    let db = TestDb::new(backend);
    let store = db.store();
    let now = vitals_domain::time::now_micros();
    let rows = (0..3)
        .map(|i| (i, CustomerData::new(format!("b{i}"))))
        .collect();
    store.upsert_customers(rows, now).expect("customers");
    let buy = |index: usize, customer: &str, key: &str, amount: i64| {
        (
            index,
            NewEvent {
                event_key: key.into(),
                customer: CustomerRef::ExternalId(customer.into()),
                time: now - MICROS_PER_DAY,
                payload: EventPayload::Transaction(Transaction {
                    amount_minor: amount,
                    currency: "EUR".into(),
                    quantity: 1,
                    category: String::new(),
                    channel: String::new(),
                }),
            },
        )
    };
    // Customers and keys in reverse order; "k" for b1 twice, 700 first.
    let batch = vec![
        buy(0, "b2", "z", 100),
        buy(1, "b1", "k", 700),
        buy(2, "b0", "a", 300),
        buy(3, "b1", "k", 999),
        buy(4, "b1", "j", 200),
    ];
    let outcome = store
        .record_events(batch, RecordMode::Backfill, None, None, now)
        .expect("events");
    assert_eq!(outcome.accepted, 4);
    let rejected: Vec<_> = outcome.rejected.iter().map(|r| r.index).collect();
    assert_eq!(rejected, [3], "{:?}", outcome.rejected);
    let b1 = store.get_customer_by_external_id("b1").expect("b1");
    let mut amounts: Vec<(String, i64)> = store
        .list_customer_events(&b1.id, &EventFilter::default(), 10, "")
        .expect("timeline")
        .items
        .into_iter()
        .map(|e| match e.payload {
            EventPayload::Transaction(t) => (e.event_key, t.amount_minor),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    amounts.sort();
    assert_eq!(amounts, [("j".into(), 200), ("k".into(), 700)]);
}
