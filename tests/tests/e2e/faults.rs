//! The database stops in the middle of a load: calls get UNAVAILABLE quickly, no batch is
//! half-written, and the server serves again by itself once the database is back.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use tonic::Code;
use vitals_proto::v1::{self as pb, event::Customer as Who, event::Payload};
use vitals_server::ServerConfig;
use vitals_store::{DatabaseUrl, PoolOptions, Store};
use vitals_tests::{Backend, DbProxy, TestDb, TestServer, now_seconds, ts};

const BATCH: usize = 100;

fn batch(n: usize) -> pb::RecordEventsRequest {
    pb::RecordEventsRequest {
        events: (0..BATCH)
            .map(|i| pb::Event {
                comment_analysis: None,
                event_key: format!("b{n}-e{i}"),
                customer: Some(Who::CustomerExternalId(format!("fault-{}", i % 10))),
                time: Some(ts(now_seconds() - 3_600)),
                record_time: None,
                payload: Some(Payload::Transaction(pb::Transaction {
                    amount_minor: 100,
                    currency: "USD".into(),
                    quantity: 1,
                    category: String::new(),
                    channel: String::new(),
                })),
            })
            .collect(),
        ..Default::default()
    }
}

#[derive(QueryableByName)]
struct BatchCount {
    #[diesel(sql_type = Text)]
    batch: String,
    #[diesel(sql_type = BigInt)]
    events: i64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_outage_mid_load_loses_nothing_and_heals_by_itself() {
    let db = TestDb::new(Backend::Postgres);
    let DatabaseUrl::Postgres(direct) = db.url.clone() else {
        panic!("a PostgreSQL test database");
    };
    let (template, upstream) = DbProxy::route(&direct);
    let proxy = DbProxy::start(upstream).await;
    let proxied = template.replace("PROXY", &proxy.addr.to_string());
    let store = Store::open(
        &DatabaseUrl::Postgres(proxied),
        &PoolOptions {
            max_connections: 4,
            checkout_timeout: Duration::from_millis(500),
        },
    )
    .expect("open through the proxy");
    store.migrate().expect("migrate");
    let server = TestServer::start_on(db, store, ServerConfig::default()).await;
    let mut customers = server.customers().await;
    for i in 0..10 {
        customers
            .create_customer(pb::CreateCustomerRequest {
                customer: Some(pb::Customer {
                    external_id: format!("fault-{i}"),
                    ..Default::default()
                }),
            })
            .await
            .expect("create");
    }

    // Two callers load batches continuously; the database goes away in the middle of it
    // (batches in flight included) and comes back.
    type Outcomes = BTreeMap<usize, (Result<(), Code>, Duration)>;
    let outcomes = std::sync::Arc::new(std::sync::Mutex::new(Outcomes::new()));
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for _ in 0..2 {
        let mut events = server.events().await;
        let (outcomes, next, stop) = (outcomes.clone(), next.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            use std::sync::atomic::Ordering;
            while !stop.load(Ordering::SeqCst) {
                let n = next.fetch_add(1, Ordering::SeqCst);
                let started = Instant::now();
                let r = events.record_events(batch(n)).await;
                let took = started.elapsed();
                if let Ok(mut o) = outcomes.lock() {
                    o.insert(n, (r.map(|_| ()).map_err(|s| s.code()), took));
                }
            }
        }));
    }
    let ok_count = |o: &Outcomes| o.values().filter(|(r, _)| r.is_ok()).count();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let before = ok_count(&outcomes.lock().expect("outcomes"));
    assert!(before > 0, "the load ran before the outage");
    proxy.cut();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let read = customers
        .list_customers(pb::ListCustomersRequest::default())
        .await
        .expect_err("reads fail during the outage");
    assert_eq!(read.code(), Code::Unavailable, "{read:?}");
    let during = outcomes.lock().expect("outcomes").clone();
    proxy.restore();
    // The server serves again by itself: new batches succeed without a restart.
    let healed = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if ok_count(&outcomes.lock().expect("outcomes")) > ok_count(&during) + 5 {
            break;
        }
        assert!(healed.elapsed() < Duration::from_secs(15), "never healed");
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for w in writers {
        w.await.expect("writer");
    }
    let outcomes = outcomes.lock().expect("outcomes").clone();
    let failed: Vec<_> = outcomes.values().filter(|(r, _)| r.is_err()).collect();
    assert!(!failed.is_empty(), "the outage was felt");
    for (r, took) in &failed {
        assert_eq!(
            *r,
            Err(Code::Unavailable),
            "failures are UNAVAILABLE: {outcomes:?}"
        );
        assert!(
            *took < Duration::from_secs(3),
            "UNAVAILABLE comes quickly, not after a hang: {took:?}"
        );
    }

    // No batch is half-written: each one is all there or not there at all, and every
    // batch answered OK is all there.
    let mut conn = PgConnection::establish(&direct).expect("connect directly");
    let counts: Vec<BatchCount> = diesel::sql_query(
        "SELECT split_part(event_key, '-', 1) AS batch, count(*) AS events \
         FROM events GROUP BY 1",
    )
    .load(&mut conn)
    .expect("count events per batch");
    let counts: BTreeMap<String, i64> = counts.into_iter().map(|c| (c.batch, c.events)).collect();
    for (batch, events) in &counts {
        assert_eq!(*events, BATCH as i64, "batch {batch} is half-written");
    }
    for (n, (outcome, _)) in &outcomes {
        if outcome.is_ok() {
            assert!(
                counts.contains_key(&format!("b{n}")),
                "batch {n} answered OK but is missing"
            );
        }
    }
    drop(proxy);
}
