//! The training read path: whole histories, a chunk of customers at a time.

use vitals_domain::time::MICROS_PER_DAY;
use vitals_domain::{CustomerData, CustomerRef, EventPayload, NewEvent, Transaction};
use vitals_store::RecordMode;
use vitals_tests::{Backend, TestDb, both_backends};

both_backends!(scan_histories_groups_every_event_by_customer_in_chunks);

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
        .record_events(batch, RecordMode::Backfill, None, now)
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
