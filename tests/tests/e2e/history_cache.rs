//! The server's history cache against a real PostgreSQL: it warms when its listener goes
//! live, and losing the listener's connection stops it serving from memory until it is
//! back (then it warms again). The end-to-end behaviour through the API (every kind of
//! write forgets, memory really answers) is `evaluation::histories_in_memory_follow_every_write`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::{Connection, RunQueryDsl};
use vitals_app::histories::{HistoryCache, listen};
use vitals_domain::portfolio::{PortfolioEvent, Tally};
use vitals_domain::time::{MICROS_PER_DAY, now_micros};
use vitals_domain::{CustomerData, CustomerRef, EventPayload, NewEvent, Transaction};
use vitals_store::portfolio::{Granularity, GroupBy, HeldHistories};
use vitals_store::{CustomerLookup, DatabaseUrl, PoolOptions, RecordMode, Store};
use vitals_tests::{Backend, TestDb, both_backends};

both_backends!(the_portfolio_from_held_histories_equals_the_streamed_one);

async fn wait_for(what: &str, seconds: u64, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {seconds} s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_warms_and_survives_losing_its_listener() {
    let db = TestDb::new(Backend::Postgres);
    let DatabaseUrl::Postgres(url) = &db.url else {
        unreachable!("a PostgreSQL database")
    };
    // A name of its own, so this test finds its listener among every other test's.
    let name = format!("vitals-cache-test-{}", uuid::Uuid::new_v4().simple());
    let url = format!("{url}&application_name={name}");
    let store =
        Store::open(&DatabaseUrl::Postgres(url.clone()), &PoolOptions::default()).expect("open");
    store.migrate().expect("migrate");
    let now = now_micros();
    let customers = (0..30)
        .map(|i| (i, CustomerData::new(format!("w{i}"))))
        .collect();
    store.upsert_customers(customers, now).expect("customers");
    let events = (0..30)
        .map(|i| {
            (
                i as usize,
                NewEvent {
                    event_key: "p".into(),
                    customer: CustomerRef::ExternalId(format!("w{i}")),
                    time: now - MICROS_PER_DAY,
                    payload: EventPayload::Transaction(Transaction {
                        amount_minor: 100 + i,
                        currency: "EUR".into(),
                        quantity: 1,
                        category: String::new(),
                        channel: String::new(),
                    }),
                },
            )
        })
        .collect();
    store
        .record_events(events, RecordMode::Backfill, None, None, now)
        .expect("events");

    let cache = Arc::new(HistoryCache::new(64 << 20));
    let listener = tokio::spawn(listen(cache.clone(), store.clone()));
    // Live, then warmed with every customer without any of them being asked for.
    wait_for("warmed", 10, || cache.stats().entries == 30).await;
    let w7 = CustomerLookup::ExternalId("w7".into());
    let held = cache.get(&w7).expect("w7 held after warming");
    assert_eq!(held.events.len(), 1);

    // The listener's connection dies (an administrator, a failover, a network cut).
    let mut admin =
        diesel::PgConnection::establish(&vitals_tests::postgres_admin_url()).expect("connect");
    let killed = diesel::sql_query(format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE application_name = '{name}' AND query ILIKE '%LISTEN%' OR \
         (application_name = '{name}' AND query = '')"
    ))
    .execute(&mut admin)
    .expect("terminate the listener");
    assert!(killed >= 1, "the listener's backend was not found");
    // Changes could be missed from now on: nothing is served from memory...
    wait_for("dark", 5, || !cache.is_live()).await;
    assert!(cache.get(&w7).is_none());
    // ...until it has reconnected and warmed again.
    wait_for("live and warm again", 15, || {
        cache.is_live() && cache.stats().entries == 30
    })
    .await;
    let held = cache.get(&w7).expect("w7 held again");

    // A write from a session whose search_path does not hold Vitals' schema (psql, a
    // script): the triggers still run and announce on this schema's channel.
    let schema = url
        .split("search_path%3D")
        .nth(1)
        .and_then(|rest| rest.split('&').next())
        .expect("the test URL names its schema");
    let changed = diesel::sql_query(format!(
        "UPDATE {schema}.transactions SET amount_minor = amount_minor + 1 WHERE customer_id = $1"
    ))
    .bind::<diesel::sql_types::Text, _>(&held.customer.id)
    .execute(&mut admin)
    .expect("a write with another search_path");
    assert_eq!(changed, 1);
    wait_for("w7 forgotten", 5, || cache.get(&w7).is_none()).await;
    assert_eq!(cache.stats().entries, 29);
    listener.abort();
}

/// A refresh on a server evaluates the histories its cache holds instead of reading them
/// again: what it stores must be exactly what a refresh from the database stores, also
/// for a customer whose history changed after the cache was warmed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_from_memory_stores_what_one_from_the_database_stores() {
    use vitals_domain::evaluation::{ScoringScheme, VersionedScheme};
    use vitals_engine::evaluation::Models;

    let db = TestDb::new(Backend::Postgres);
    let store = db.store();
    let now = now_micros();
    let customers = (0..20)
        .map(|i| (i, CustomerData::new(format!("r{i}"))))
        .collect();
    store.upsert_customers(customers, now).expect("customers");
    let purchase = |i: usize, key: &str, days_ago: i64, amount: i64| {
        (
            i,
            NewEvent {
                event_key: key.into(),
                customer: CustomerRef::ExternalId(format!("r{i}")),
                time: now - days_ago * MICROS_PER_DAY,
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
    let events = (0..20).map(|i| purchase(i, "p", 400, 1_000)).collect();
    store
        .record_events(events, RecordMode::Backfill, None, None, now)
        .expect("events");

    let cache = Arc::new(HistoryCache::new(64 << 20));
    let listener = tokio::spawn(listen(cache.clone(), store.clone()));
    wait_for("warmed", 10, || cache.stats().entries == 20).await;
    // r3 buys again after the warm-up: announced, so forgotten, so read again.
    store
        .record_events(
            vec![purchase(3, "q", 1, 5_000)],
            RecordMode::Backfill,
            None,
            None,
            now,
        )
        .expect("a later purchase");
    wait_for("r3 forgotten", 5, || cache.stats().entries == 19).await;

    // Refreshes everyone as of now with no models, from `held` when given.
    let refresh = |held: Option<Arc<HistoryCache>>| {
        let refreshing = store.clone();
        tokio::task::spawn_blocking(move || {
            let scheme = VersionedScheme {
                version: 1,
                scheme: ScoringScheme::default(),
            };
            vitals_app::refresh_between(
                &refreshing,
                held.as_deref(),
                now,
                &Models::default(),
                &scheme,
                (None, None),
                20,
                |_| {},
            )
        })
    };
    let bodies = |store: &vitals_store::Store| -> Vec<String> {
        (0..20)
            .map(|i| {
                let c = store
                    .get_customer_by_external_id(&format!("r{i}"))
                    .expect("customer");
                let mut e: serde_json::Value = serde_json::from_str(
                    &store
                        .get_evaluation(&c.id)
                        .expect("read")
                        .expect("stored")
                        .body,
                )
                .expect("json");
                // When it was computed differs between two refreshes; nothing else may.
                e["computed_at"] = serde_json::Value::Null;
                e.to_string()
            })
            .collect()
    };
    let from_memory = refresh(Some(cache.clone()))
        .await
        .expect("joined")
        .expect("refresh from memory");
    assert_eq!(from_memory.evaluations_stored, 20);
    // r3's history read from the database was kept again.
    assert_eq!(cache.stats().entries, 20);
    let remembered = bodies(&store);
    // r3 bought yesterday, r4 last bought 400 days ago: their stages differ.
    let stage = |i: usize| {
        let c = store
            .get_customer_by_external_id(&format!("r{i}"))
            .expect("customer");
        store
            .get_evaluation(&c.id)
            .expect("read")
            .expect("stored")
            .lifecycle_stage
    };
    assert_ne!(stage(3), stage(4), "r3's later purchase counts");

    refresh(None)
        .await
        .expect("joined")
        .expect("refresh from the database");
    assert_eq!(bodies(&store), remembered);
    listener.abort();
}

/// Customer `m<i>`'s event `key`, `days_ago` days before `now`.
fn portfolio_event(
    now: i64,
    i: usize,
    key: String,
    days_ago: i64,
    payload: EventPayload,
) -> (usize, NewEvent) {
    (
        i,
        NewEvent {
            event_key: key,
            customer: CustomerRef::ExternalId(format!("m{i}")),
            time: now - days_ago * MICROS_PER_DAY - i as i64,
            payload,
        },
    )
}

/// 24 customers in three regions, some on contract, with every kind of event the
/// portfolio reads (purchases in two currencies with a refund, answers of every kind with
/// a scoreless review, tickets over two events with a resolution, lone contacts) and one
/// it does not (a payment).
fn portfolio_fixture(store: &Store, now: i64) {
    use vitals_domain::{Feedback, FeedbackKind, Interaction, InteractionKind, Payment, Severity};

    let day = MICROS_PER_DAY;
    let customers = (0..24u64)
        .map(|i| {
            let mut c = CustomerData::new(format!("m{i}"));
            c.region = ["EMEA", "APAC", ""][i as usize % 3].into();
            c.contractual = i % 4 == 0;
            (i, c)
        })
        .collect();
    store.upsert_customers(customers, now).expect("customers");
    let event = |i, key, days_ago, payload| portfolio_event(now, i, key, days_ago, payload);
    let mut events = Vec::new();
    for i in 0..24usize {
        // Purchases every few weeks over two years, in two currencies, one refund.
        for n in 0..(i % 7 + 1) {
            let days_ago = 20 + (n as i64) * (31 + i as i64 * 5);
            events.push(event(
                i,
                format!("t{n}"),
                days_ago,
                EventPayload::Transaction(Transaction {
                    amount_minor: if n == 2 { -500 } else { 1_000 + i as i64 * 10 },
                    currency: if i % 5 == 0 { "EUR" } else { "USD" }.into(),
                    quantity: 1,
                    category: "shoes".into(),
                    channel: "web".into(),
                }),
            ));
        }
        // A payment (counted nowhere), answers of every kind, one review without a score.
        events.push(event(
            i,
            "pay".into(),
            40,
            EventPayload::Payment(Payment {
                invoice_id: format!("inv-{i}"),
                amount_minor: 1_000,
                currency: "USD".into(),
                due_time: Some(now - 30 * day),
                paid_time: None,
                method: "card".into(),
            }),
        ));
        for (n, kind) in FeedbackKind::ALL.into_iter().enumerate() {
            let score = match kind {
                FeedbackKind::Review if i % 2 == 0 => None,
                FeedbackKind::Nps => Some((i % 11) as i32),
                FeedbackKind::Ces => Some(3),
                _ => Some((i % 5 + 1) as i32),
            };
            events.push(event(
                i,
                format!("f{n}"),
                10 + n as i64 * 60,
                EventPayload::Feedback(Feedback {
                    kind,
                    score,
                    comment: score.is_none().then(|| "late again".into()),
                    channel: "email".into(),
                }),
            ));
        }
        // A complaint ticket of two events, resolved later; a contact on its own.
        for (n, days_ago) in [(0, 50), (1, 48)] {
            events.push(event(
                i,
                format!("c{n}"),
                days_ago,
                EventPayload::Interaction(Interaction {
                    kind: if n == 0 && i % 3 == 0 {
                        InteractionKind::Complaint
                    } else {
                        InteractionKind::Support
                    },
                    severity: Severity::Medium,
                    category: "delivery".into(),
                    channel: "phone".into(),
                    ticket_id: format!("tk-{i}"),
                    resolved_time: (n == 1).then(|| now - 45 * day),
                    note: None,
                }),
            ));
        }
        events.push(event(
            i,
            "alone".into(),
            5 + i as i64,
            EventPayload::Interaction(Interaction {
                kind: InteractionKind::Inquiry,
                severity: Severity::Low,
                category: String::new(),
                channel: "chat".into(),
                ticket_id: String::new(),
                resolved_time: Some(now - i as i64 * day / 2),
                note: None,
            }),
        ));
    }
    store
        .record_events(events, RecordMode::Backfill, None, None, now)
        .expect("events");
}

/// Every grouping and granularity of the year before `now`, counted with `held` and
/// streamed from the database, must be equal; and not empty.
fn same_metrics_either_way(store: &Store, now: i64, held: &dyn HeldHistories) {
    let day = MICROS_PER_DAY;
    let (start, end) = (now - 400 * day, now);
    let mut compared = 0;
    for group_by in [
        GroupBy::All,
        GroupBy::Region,
        GroupBy::Segment,
        GroupBy::Tier,
    ] {
        for granularity in [Granularity::Period, Granularity::Week, Granularity::Month] {
            let streamed = store
                .portfolio_metrics(start, end, group_by, granularity)
                .expect("from the database");
            let counted = store
                .portfolio_metrics_held(start, end, group_by, granularity, Some(held))
                .expect("from memory");
            assert_eq!(counted, streamed, "{group_by:?} by {granularity:?}");
            compared += streamed.len();
        }
    }
    // Something was counted: the comparison is not of two empty lists.
    let whole = store
        .portfolio_metrics(start, end, GroupBy::All, Granularity::Period)
        .expect("whole period");
    let all = &whole[0];
    assert!(all.buyers > 10 && all.nps_answers > 10 && all.csat_answers > 10);
    assert!(all.complaints > 0 && all.resolved_interactions > 0);
    assert!(all.revenue_minor.contains_key("EUR") && all.revenue_minor.contains_key("USD"));
    assert!(compared > 30, "{compared} rows compared");
}

/// Portfolio metrics counted from the histories a server holds must be exactly those
/// counted from the database's streams: every kind of event the metrics read, for every
/// grouping and granularity, with one customer's history changed after the warm-up (so
/// read from the database, not held).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portfolio_metrics_from_memory_equal_those_from_the_database() {
    let db = TestDb::new(Backend::Postgres);
    let store = db.store();
    let now = now_micros();
    portfolio_fixture(&store, now);
    let event = |i, key, days_ago, payload| portfolio_event(now, i, key, days_ago, payload);

    let cache = Arc::new(HistoryCache::new(64 << 20));
    let listener = tokio::spawn(listen(cache.clone(), store.clone()));
    wait_for("warmed", 10, || cache.stats().entries == 24).await;
    // m3 buys after the warm-up: forgotten, so counted from the database.
    store
        .record_events(
            vec![event(
                3,
                "late".into(),
                2,
                EventPayload::Transaction(Transaction {
                    amount_minor: 7_700,
                    currency: "USD".into(),
                    quantity: 1,
                    category: String::new(),
                    channel: String::new(),
                }),
            )],
            RecordMode::Backfill,
            None,
            None,
            now,
        )
        .expect("a later purchase");
    wait_for("m3 forgotten", 5, || cache.stats().entries == 23).await;

    let checking = store.clone();
    let held_cache = cache.clone();
    tokio::task::spawn_blocking(move || same_metrics_either_way(&checking, now, &*held_cache))
        .await
        .expect("compared");
    listener.abort();
}

/// The held path on both backends with another holder than the cache (SQLite's server
/// never keeps one: it has no change channel): histories held for every other customer,
/// the rest read.
async fn the_portfolio_from_held_histories_equals_the_streamed_one(backend: Backend) {
    struct Held(std::collections::HashMap<String, Vec<vitals_domain::StoredEvent>>);
    impl HeldHistories for Held {
        fn tally_held(&self, id: &str, member: u32, tally: &mut Tally) -> bool {
            let Some(events) = self.0.get(id) else {
                return false;
            };
            let events: Vec<_> = events.iter().filter_map(PortfolioEvent::of).collect();
            tally.member_events(member, &events);
            true
        }
    }
    let db = TestDb::new(backend);
    let store = db.store();
    let now = now_micros();
    portfolio_fixture(&store, now);
    let mut held = std::collections::HashMap::new();
    for i in (0..24).step_by(2) {
        let customer = store
            .get_customer_by_external_id(&format!("m{i}"))
            .expect("customer");
        let history = store.customer_history(customer).expect("history");
        held.insert(history.customer.id.clone(), history.events);
    }
    let checking = store.clone();
    tokio::task::spawn_blocking(move || same_metrics_either_way(&checking, now, &Held(held)))
        .await
        .expect("compared");
}
