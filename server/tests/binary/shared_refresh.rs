//! RefreshEvaluations shared between two `vitals-server` processes on one PostgreSQL:
//! both take chunks of the run, a second run is refused while one is going, one server is
//! killed mid-way, and the run still finishes once with every customer evaluated once.

use std::time::{Duration, Instant};

use diesel::{Connection, RunQueryDsl, pg::PgConnection};
use tokio_stream::StreamExt;
use tonic::Code;
use vitals_proto::v1 as pb;
use vitals_proto::v1::customer_service_client::CustomerServiceClient;
use vitals_proto::v1::evaluation_service_client::EvaluationServiceClient;

use crate::common::{FreshDatabase, Server, dollar_purchase, new_customer};

const CUSTOMERS: usize = 2_000;

fn start(db: &FreshDatabase, dir: &std::path::Path) -> Server {
    Server::start_with_env(
        dir,
        &[
            "--refresh-chunk-customers",
            "20",
            "--refresh-lease-secs",
            "2",
            "--model-poll-secs",
            "0.1",
        ],
        &[("VITALS_DATABASE_URL", db.url.as_str())],
    )
    .expect("serving")
}

fn scalar(url: &str, sql: &str) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = PgConnection::establish(url).expect("the database");
    diesel::sql_query(sql)
        .get_result::<N>(&mut conn)
        .expect(sql)
        .n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_is_shared_and_survives_a_server_killed_mid_way() {
    let db = FreshDatabase::create();
    let (dir_a, dir_b) = (
        tempfile::tempdir().expect("a"),
        tempfile::tempdir().expect("b"),
    );
    let a = start(&db, dir_a.path());
    let b = start(&db, dir_b.path());
    let customers: Vec<pb::Customer> = (0..CUSTOMERS)
        .map(|i| pb::Customer {
            external_id: format!("shared-{i:05}"),
            ..Default::default()
        })
        .collect();
    CustomerServiceClient::new(a.channel().await)
        .import_customers(tokio_stream::iter(vec![pb::ImportCustomersRequest {
            customers,
        }]))
        .await
        .expect("imported");

    let mut on_a = EvaluationServiceClient::new(a.channel().await);
    let mut on_b = EvaluationServiceClient::new(b.channel().await);
    let mut progress = on_a
        .refresh_evaluations(pb::RefreshEvaluationsRequest { as_of: None })
        .await
        .expect("a run starts")
        .into_inner();
    // One run at a time, whichever server is asked.
    let refused = on_b
        .refresh_evaluations(pb::RefreshEvaluationsRequest { as_of: None })
        .await
        .expect_err("a second run while one is going");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        refused.message().contains("already running"),
        "{}",
        refused.message()
    );

    // B takes part; killed right after its first chunk, maybe holding a second one.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !b.logs().contains("refresh chunk done") {
        assert!(
            Instant::now() < deadline,
            "B never took a chunk:\n{}",
            b.logs()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    b.signal("KILL");

    let mut last = None;
    while let Some(p) = progress.next().await {
        last = Some(p.expect("progress"));
    }
    let last = last.expect("a last message");
    assert!(last.finished, "{last:?}");
    assert_eq!(last.customers_done, CUSTOMERS as u64, "{last:?}");
    assert_eq!(
        last.evaluations_stored, CUSTOMERS as u64,
        "each chunk counted once: {last:?}"
    );

    assert_eq!(
        scalar(&db.url, "SELECT count(*) AS n FROM evaluations"),
        CUSTOMERS as i64
    );
    assert_eq!(
        scalar(
            &db.url,
            "SELECT count(*) AS n FROM refresh_runs WHERE finish_time IS NOT NULL"
        ),
        1,
        "finished once"
    );
    assert_eq!(
        scalar(
            &db.url,
            "SELECT count(*) AS n FROM refresh_chunks WHERE done_time IS NULL"
        ),
        0
    );
    assert_eq!(
        scalar(
            &db.url,
            "SELECT count(DISTINCT lease_owner) AS n FROM refresh_chunks"
        ),
        2,
        "both servers took chunks"
    );
    // The next run may start now.
    let again = on_a
        .refresh_evaluations(pb::RefreshEvaluationsRequest { as_of: None })
        .await
        .expect("a new run")
        .into_inner()
        .collect::<Vec<_>>()
        .await;
    assert!(
        again
            .last()
            .and_then(|p| p.as_ref().ok())
            .is_some_and(|p| p.finished)
    );
}

/// A write through one server is seen by an evaluation through another: the second
/// server's cached history is dropped by the database's change notice. Between the write's
/// commit and the notice's arrival (milliseconds) the other server may still answer from
/// its cache: this asks until the answer holds and reports how often the first was stale.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_through_one_server_is_seen_through_another() {
    use vitals_proto::v1::event_service_client::EventServiceClient;
    let db = FreshDatabase::create();
    let (dir_a, dir_b) = (
        tempfile::tempdir().expect("a"),
        tempfile::tempdir().expect("b"),
    );
    let (a, b) = (start(&db, dir_a.path()), start(&db, dir_b.path()));
    let created = new_customer(a.channel().await, "across").await;
    let mut writes = EventServiceClient::new(a.channel().await);
    let mut reads = EvaluationServiceClient::new(b.channel().await);
    let evaluate = pb::EvaluateCustomerRequest {
        lookup: Some(pb::evaluate_customer_request::Lookup::CustomerId(
            created.id.clone(),
        )),
        as_of: None,
    };
    let mut stale_first = 0;
    const ROUNDS: i64 = 20;
    for n in 1..=ROUNDS {
        writes
            .record_events(dollar_purchase(&created.id, &format!("across-{n}")))
            .await
            .expect("written through A");
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut first = true;
        loop {
            let value = reads
                .evaluate_customer(evaluate.clone())
                .await
                .expect("evaluated through B")
                .into_inner()
                .value;
            if (value - n as f64).abs() < 1e-9 {
                break;
            }
            if first {
                stale_first += 1;
                first = false;
            }
            assert!(
                Instant::now() < deadline,
                "B still answers ${value} two seconds after the {n}th $1 purchase through A"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    println!("first answers through B stale in {stale_first} of {ROUNDS} rounds");
}
