//! The `vitals-server` binary as an operator runs it: configured by flags and `VITALS_*`
//! variables, `migrate`, serving, and a SIGTERM that lets in-flight requests finish.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use vitals_proto::v1 as pb;
use vitals_proto::v1::customer_service_client::CustomerServiceClient;
use vitals_proto::v1::event_service_client::EventServiceClient;

const BIN: &str = env!("CARGO_BIN_EXE_vitals-server");

async fn connect(addr: &str) -> tonic::transport::Channel {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match tonic::transport::Channel::from_shared(format!("http://{addr}"))
            .expect("endpoint")
            .connect()
            .await
        {
            Ok(c) => return c,
            Err(e) if Instant::now() > deadline => panic!("the server did not come up: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

fn terminate(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

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
    // Port 0: the server binds a free port itself and logs it, so no other test can take
    // the port between our choosing it and the server binding it.
    let mut child = Command::new(BIN)
        .env("VITALS_DATA_DIR", dir.path())
        .env("VITALS_LISTEN", "127.0.0.1:0")
        .env("VITALS_LOG_FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    let stderr = child.stderr.take().expect("stderr is piped");
    let (lines_tx, lines_rx) = std::sync::mpsc::channel::<String>();
    let log_reader = std::thread::spawn(move || {
        use std::io::BufRead;
        let mut all = String::new();
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = lines_tx.send(line.clone());
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let addr = loop {
        let line = lines_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the server logs its address");
        if line.contains("serving gRPC") {
            let start = line.find("\"addr\":\"").expect("an addr field") + 8;
            let end = line[start..].find('"').expect("end of addr") + start;
            break line[start..end].to_owned();
        }
    };
    let channel = connect(&addr).await;
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
    terminate(&child);
    let answer = call.await.expect("task").expect("answered despite SIGTERM");
    assert_eq!(answer.into_inner().accepted, 10_000);

    let status = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                let logs = log_reader.join().expect("the log reader ends");
                return (status, logs);
            }
            assert!(Instant::now() < deadline, "the server did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    })
    .await
    .expect("waited");
    assert!(status.0.success(), "exit status {:?}", status.0);
    // JSON logs, one line per request, and no PII in them.
    let logs = status.1;
    assert!(
        logs.lines().any(|l| l.contains("\"duration_ms\"")),
        "{logs}"
    );
    assert!(!logs.contains("secret.person"), "PII in the logs: {logs}");
}
