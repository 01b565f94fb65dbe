//! Limits: excess concurrent calls on a connection are shed at once with
//! RESOURCE_EXHAUSTED instead of queueing; a call past the server's deadline ends with
//! an error and writes nothing half.

use std::time::Duration;

use tonic::Code;
use vitals_proto::v1::{self as pb, event::Customer as Who, event::Payload};
use vitals_server::ServerConfig;
use vitals_tests::{Backend, TestDb, TestServer, now_seconds, ts};

fn big_batch(tag: &str, n: usize) -> pb::RecordEventsRequest {
    pb::RecordEventsRequest {
        events: (0..n)
            .map(|i| pb::Event {
                comment_analysis: None,
                event_key: format!("{tag}-{i}"),
                customer: Some(Who::CustomerExternalId("limits-1".into())),
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

async fn server(config: ServerConfig) -> TestServer {
    let db = TestDb::new(Backend::Sqlite);
    let store = db.store();
    let server = TestServer::start_on(db, store, config).await;
    server
        .customers()
        .await
        .create_customer(pb::CreateCustomerRequest {
            customer: Some(pb::Customer {
                external_id: "limits-1".into(),
                ..Default::default()
            }),
        })
        .await
        .expect("create");
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn excess_calls_on_a_connection_are_shed_with_resource_exhausted() {
    let server = server(ServerConfig {
        max_concurrent_per_connection: 1,
        ..ServerConfig::default()
    })
    .await;
    // One connection, eight slow calls at once: one runs, the rest are refused at once.
    let events = server.events().await;
    let calls: Vec<_> = (0..8)
        .map(|i| {
            let mut events = events.clone();
            tokio::spawn(async move {
                events
                    .record_events(big_batch(&format!("c{i}"), 10_000))
                    .await
            })
        })
        .collect();
    let mut ok = 0;
    let mut shed = 0;
    for call in calls {
        match call.await.expect("call task") {
            Ok(_) => ok += 1,
            Err(s) if s.code() == Code::ResourceExhausted => shed += 1,
            Err(s) => panic!("unexpected {s:?}"),
        }
    }
    assert!(ok >= 1, "the first call runs");
    assert!(
        shed >= 1,
        "excess calls are shed, not queued: ok {ok}, shed {shed}"
    );
    // What ran is whole: every batch has all its 10,000 events or none.
    let counts = batch_counts(&server);
    assert_eq!(counts.len(), ok, "{counts:?}");
    assert!(counts.values().all(|&n| n == 10_000), "{counts:?}");
}

/// Events stored per batch tag.
fn batch_counts(server: &TestServer) -> std::collections::BTreeMap<String, usize> {
    let customer = server
        .store
        .get_customer_by_external_id("limits-1")
        .expect("customer");
    let history = server.store.customer_history(customer).expect("history");
    let mut counts = std::collections::BTreeMap::new();
    for e in history.events {
        let tag = e.event_key.split('-').next().unwrap_or_default().to_owned();
        *counts.entry(tag).or_insert(0) += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_past_the_deadline_fails_and_writes_nothing_half() {
    let server = server(ServerConfig {
        request_timeout: Duration::from_millis(1),
        ..ServerConfig::default()
    })
    .await;
    let mut events = server.events().await;
    let r = events.record_events(big_batch("late", 10_000)).await;
    let status = r.expect_err("10,000 events take longer than 1 ms");
    assert!(
        matches!(status.code(), Code::Cancelled | Code::DeadlineExceeded),
        "{status:?}"
    );
    // The work may finish after the deadline answered: then the batch is whole, never half.
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let counts = batch_counts(&server);
    assert!(counts.values().all(|&n| n == 10_000), "{counts:?}");
}
