//! The leases of a shared refresh in the store, on both backends: chunks cover every
//! customer once, a lease is held by one worker, one that ran out is taken by another and
//! only the holder's finish counts, the run finishes once.

use std::collections::HashSet;

use vitals_domain::CustomerData;
use vitals_store::StoreError;
use vitals_tests::{Backend, TestDb, both_backends};

both_backends!(
    chunks_are_leased_once_and_expired_leases_move,
    servers_starting_a_run_at_once_start_one,
);

async fn chunks_are_leased_once_and_expired_leases_move(backend: Backend) {
    let db = TestDb::new(backend);
    let store = db.store();
    for i in 0..25 {
        store
            .create_customer(CustomerData::new(format!("lease-{i:02}")), 1)
            .expect("customer");
    }
    let now = 1_000_000_000;
    let run = store.start_refresh_run(now, 10, now).expect("a run");
    // 25 customers by 10: 2 full chunks and an open-ended last one.
    let err = store
        .start_refresh_run(now, 10, now)
        .expect_err("one run at a time");
    assert!(matches!(err, StoreError::FailedPrecondition(_)), "{err}");

    let first = store
        .lease_refresh_chunk("dead", now + 5, now)
        .expect("lease")
        .expect("a chunk");
    let second = store
        .lease_refresh_chunk("alive", now + 100, now)
        .expect("lease")
        .expect("another chunk");
    assert_ne!(first.seq, second.seq, "a leased chunk is not leased again");
    // The dead worker's lease runs out: the chunk goes to the living one.
    let later = now + 10;
    let mut leased = vec![second.clone()];
    while let Some(chunk) = store
        .lease_refresh_chunk("alive", later + 100, later)
        .expect("lease")
    {
        leased.push(chunk);
    }
    assert!(
        leased.iter().any(|c| c.seq == first.seq),
        "the expired chunk moved"
    );
    assert_eq!(leased.len(), 3, "every chunk once: {leased:?}");
    // Each chunk's customers, by its bounds: together every customer, once.
    let mut seen = HashSet::new();
    for chunk in &leased {
        store
            .scan_histories_between(
                chunk.after_id.as_deref(),
                chunk.last_id.as_deref(),
                4,
                |hs| {
                    for h in hs {
                        assert!(seen.insert(h.customer.id), "a customer in two chunks");
                    }
                    Ok(std::ops::ControlFlow::Continue(()))
                },
            )
            .expect("scan");
    }
    assert_eq!(seen.len(), 25);
    // Only the holder's finish counts.
    assert!(
        !store
            .finish_refresh_chunk(&first, "dead", (10, 10, 0), later)
            .expect("finish")
    );
    for chunk in &leased {
        let n = if chunk.last_id.is_none() { 5 } else { 10 };
        assert!(
            store
                .finish_refresh_chunk(chunk, "alive", (n, n, 0), later)
                .expect("finish")
        );
    }
    let p = store.refresh_run_progress(&run, later).expect("progress");
    assert!(p.finished, "{p:?}");
    assert_eq!((p.customers_done, p.chunks_done, p.chunks), (25, 3, 3));
    // A new run may start now.
    store
        .start_refresh_run(later, 10, later)
        .expect("the next run");
}

async fn servers_starting_a_run_at_once_start_one(backend: Backend) {
    let db = TestDb::new(backend);
    let store = db.store();
    for i in 0..30 {
        store
            .create_customer(CustomerData::new(format!("race-{i:02}")), 1)
            .expect("customer");
    }
    const STARTERS: usize = 6;
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(STARTERS));
    let outcomes: Vec<Result<String, StoreError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..STARTERS)
            .map(|_| {
                let (store, barrier) = (store.clone(), barrier.clone());
                scope.spawn(move || {
                    // A connection each first, so that the starts really overlap.
                    store.ping().expect("a connection");
                    barrier.wait();
                    store.start_refresh_run(1_000, 10, 1_000)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("starter"))
            .collect()
    });
    let started = outcomes.iter().filter(|o| o.is_ok()).count();
    assert_eq!(started, 1, "{outcomes:?}");
    for refused in outcomes.iter().filter_map(|o| o.as_ref().err()) {
        assert!(
            matches!(refused, StoreError::FailedPrecondition(_)),
            "{refused}"
        );
    }
}
