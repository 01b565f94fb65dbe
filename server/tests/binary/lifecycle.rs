//! The `vitals-server` binary as an operator runs it: configured by flags and `VITALS_*`
//! variables, `migrate` (also by two servers at once on one empty PostgreSQL database),
//! options after the subcommand, and a SIGTERM that lets in-flight requests finish.

use std::process::Command;
use std::time::Duration;

use vitals_proto::v1 as pb;
use vitals_proto::v1::customer_service_client::CustomerServiceClient;
use vitals_proto::v1::event_service_client::EventServiceClient;

use crate::common::{BIN, FreshDatabase, Server};

#[test]
fn migrate_applies_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = || {
        Command::new(BIN)
            .arg("migrate")
            .env("VITALS_DATA_DIR", dir.path())
            .output()
            .expect("runs")
    };
    let first = run();
    assert!(first.status.success(), "{first:?}");
    assert!(String::from_utf8_lossy(&first.stdout).contains("applied"));
    assert!(
        dir.path().join("vitals.db").exists(),
        "the embedded default"
    );
    let second = run();
    assert!(second.status.success());
    assert!(second.stdout.is_empty(), "nothing left to apply");
    let bad = Command::new(BIN)
        .args(["--database-url", "mysql://nope", "migrate"])
        .output()
        .expect("runs");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("postgres://"));
}

#[test]
fn without_api_keys_it_listens_on_loopback_only_and_makes_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let open = Command::new(BIN)
        .args(["--listen", "0.0.0.0:0", "serve"])
        .env("VITALS_DATA_DIR", dir.path())
        .output()
        .expect("runs");
    assert!(!open.status.success(), "refused: {open:?}");
    let stderr = String::from_utf8_lossy(&open.stderr);
    assert!(stderr.contains("without API keys"), "{stderr}");

    let made = Command::new(BIN)
        .args(["new-key", "--name", "crm", "--roles", "reader,pii-reader"])
        .output()
        .expect("runs");
    assert!(made.status.success(), "{made:?}");
    let stdout = String::from_utf8_lossy(&made.stdout);
    let line = stdout.lines().last().expect("a keys-file line");
    assert!(line.starts_with("crm reader,pii-reader "), "{line}");
    let bad = Command::new(BIN)
        .args(["new-key", "--name", "crm", "--roles", "root"])
        .output()
        .expect("runs");
    assert!(!bad.status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_in_flight_requests_and_exits_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &[]).expect("serving");
    let channel = server.channel().await;
    let mut customers = CustomerServiceClient::new(channel.clone());
    let id = customers
        .create_customer(pb::CreateCustomerRequest {
            customer: Some(pb::Customer {
                external_id: "sig".into(),
                email: "secret.person@example.com".into(),
                ..Default::default()
            }),
        })
        .await
        .expect("created")
        .into_inner()
        .id;

    // A full batch is in flight when SIGTERM arrives; it must still be answered.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let events: Vec<pb::Event> = (0..10_000)
        .map(|i| pb::Event {
            comment_analysis: None,
            event_key: format!("k{i}"),
            customer: Some(pb::event::Customer::CustomerId(id.clone())),
            time: Some(prost_types::Timestamp {
                seconds: now - 3_600,
                nanos: 0,
            }),
            record_time: None,
            payload: Some(pb::event::Payload::Transaction(pb::Transaction {
                amount_minor: 100 + i,
                currency: "EUR".into(),
                ..Default::default()
            })),
        })
        .collect();
    let mut events_api = EventServiceClient::new(channel);
    let call = tokio::spawn(async move {
        events_api
            .record_events(pb::RecordEventsRequest {
                events,
                backfill: false,
            })
            .await
    });
    tokio::time::sleep(Duration::from_millis(30)).await;
    let stopping = tokio::task::spawn_blocking(move || server.stop());
    let answer = call.await.expect("task").expect("answered despite SIGTERM");
    assert_eq!(answer.into_inner().accepted, 10_000);
    let status = stopping.await.expect("stopped");
    assert!(status.0.success(), "exit status {:?}", status.0);
    // JSON logs, one line per request, and no PII in them.
    let logs = status.1;
    assert!(
        logs.lines().any(|l| l.contains("\"duration_ms\"")),
        "{logs}"
    );
    assert!(!logs.contains("secret.person"), "PII in the logs: {logs}");
}

#[test]
fn options_may_come_after_the_subcommand() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("elsewhere.db");
    let out = Command::new(BIN)
        .args([
            "migrate",
            "--database-url",
            &db.to_string_lossy(),
            "--log-format",
            "json",
        ])
        .env("VITALS_DATA_DIR", dir.path().join("unused"))
        .output()
        .expect("runs");
    assert!(out.status.success(), "{out:?}");
    assert!(
        db.exists(),
        "the database named after the subcommand is the one migrated"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).starts_with('{'),
        "JSON logs"
    );
}

/// Two servers started at the same instant on one empty database: diesel takes no lock,
/// so without the advisory lock both create the tables and one fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_migrate_one_empty_database_at_once() {
    for round in 0..2 {
        let db = FreshDatabase::create();
        let dir = tempfile::tempdir().expect("tempdir");
        if round == 0 {
            // `migrate` twice at once: both succeed, the migrations are applied once.
            let run = || {
                Command::new(BIN)
                    .args(["migrate", "--database-url", &db.url])
                    .env("VITALS_DATA_DIR", dir.path())
                    .stderr(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::piped())
                    .spawn()
                    .expect("starts")
            };
            let (a, b) = (run(), run());
            let (a, b) = (
                a.wait_with_output().expect("a ends"),
                b.wait_with_output().expect("b ends"),
            );
            assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
            assert!(b.status.success(), "{}", String::from_utf8_lossy(&b.stderr));
            let applied = |o: &std::process::Output| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .filter(|l| l.starts_with("applied "))
                    .count()
            };
            let (na, nb) = (applied(&a), applied(&b));
            assert!(
                na + nb > 0 && na.min(nb) == 0,
                "applied once: {na} and {nb}"
            );
        } else {
            // `serve` twice at once: both come up and answer.
            let args = ["--database-url", db.url.as_str()];
            let (a, b) = std::thread::scope(|s| {
                let a = s.spawn(|| Server::start(dir.path(), &args));
                let b = s.spawn(|| Server::start(dir.path(), &args));
                (a.join().expect("a"), b.join().expect("b"))
            });
            let a = a.unwrap_or_else(|r| panic!("the first server failed: {}", r.logs));
            let b = b.unwrap_or_else(|r| panic!("the second server failed: {}", r.logs));
            for server in [&a, &b] {
                CustomerServiceClient::new(server.channel().await)
                    .list_customers(pb::ListCustomersRequest::default())
                    .await
                    .expect("serves");
            }
            drop((a, b));
        }
    }
}
