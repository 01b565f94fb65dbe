//! The server with `--read-database-url` on a real streaming replica, built here from
//! scratch in a second or two: `initdb` a primary on a free port, `pg_basebackup -R -X
//! stream -C -S slot` a standby from it, start both. Reads go to the standby and still see
//! every write the caller made before them; nothing is ever written through it.

use std::path::PathBuf;
use std::process::Command;

use diesel::{Connection, RunQueryDsl, pg::PgConnection};
use vitals_proto::v1 as pb;
use vitals_proto::v1::customer_service_client::CustomerServiceClient;
use vitals_proto::v1::evaluation_service_client::EvaluationServiceClient;
use vitals_proto::v1::event_service_client::EventServiceClient;

use crate::common::{Server, dollar_purchase, free_port, is_root, pg_bin_dir};

fn pg_bin(program: &str) -> PathBuf {
    pg_bin_dir().join(program)
}

/// Runs a PostgreSQL program as the `postgres` user when this is root (PostgreSQL refuses
/// to run as root), as this user otherwise.
fn as_postgres(program: &str, args: &[&str]) {
    let status = if is_root() {
        Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(pg_bin(program))
            .args(args)
            .output()
    } else {
        Command::new(pg_bin(program)).args(args).output()
    }
    .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        status.status.success(),
        "{program} {args:?}: {}{}",
        String::from_utf8_lossy(&status.stdout),
        String::from_utf8_lossy(&status.stderr)
    );
}

/// A primary and its streaming standby on loopback; both stopped and removed on drop.
struct StreamingPair {
    dir: tempfile::TempDir,
    primary_port: u16,
    standby_port: u16,
}

impl StreamingPair {
    fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("vitals-replica-")
            .tempdir()
            .expect("a scratch directory");
        let _ = Command::new("chown")
            .arg("postgres")
            .arg(dir.path())
            .status();
        let path = dir.path().display().to_string();
        let (primary_port, standby_port) = (free_port(), free_port());
        let primary = format!("{path}/primary");
        let standby = format!("{path}/standby");
        as_postgres(
            "initdb",
            &["-D", &primary, "-A", "trust", "-U", "postgres", "--no-sync"],
        );
        let conf = format!(
            "port = {primary_port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{path}'\n\
             wal_level = replica\nmax_wal_senders = 5\nfsync = off\n"
        );
        append(&format!("{primary}/postgresql.conf"), &conf);
        as_postgres(
            "pg_ctl",
            &[
                "-D",
                &primary,
                "-l",
                &format!("{path}/primary.log"),
                "-w",
                "start",
            ],
        );
        as_postgres(
            "pg_basebackup",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &primary_port.to_string(),
                "-U",
                "postgres",
                "-D",
                &standby,
                "-R",
                "-X",
                "stream",
                "-C",
                "-S",
                "vitals_standby",
            ],
        );
        append(
            &format!("{standby}/postgresql.conf"),
            &format!("port = {standby_port}\n"),
        );
        as_postgres(
            "pg_ctl",
            &[
                "-D",
                &standby,
                "-l",
                &format!("{path}/standby.log"),
                "-w",
                "start",
            ],
        );
        Self {
            dir,
            primary_port,
            standby_port,
        }
    }

    fn primary_url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres",
            self.primary_port
        )
    }

    fn standby_url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres",
            self.standby_port
        )
    }
}

fn append(file: &str, text: &str) {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .append(true)
        .open(file)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .unwrap_or_else(|e| panic!("{file}: {e}"));
}

impl Drop for StreamingPair {
    fn drop(&mut self) {
        let path = self.dir.path().display().to_string();
        for node in ["standby", "primary"] {
            let _ = std::panic::catch_unwind(|| {
                as_postgres(
                    "pg_ctl",
                    &["-D", &format!("{path}/{node}"), "-m", "immediate", "stop"],
                );
            });
        }
    }
}

/// The last statement of each of the standby's client sessions but this one: what the
/// server's read pool last asked there. (Its statistics counters would do, but pooled
/// sessions report them only after ten idle seconds.)
fn standby_queries(url: &str) -> Vec<String> {
    #[derive(diesel::QueryableByName)]
    struct Query {
        #[diesel(sql_type = diesel::sql_types::Text)]
        query: String,
    }
    let mut conn = PgConnection::establish(url).expect("the standby answers");
    diesel::sql_query(
        "SELECT query FROM pg_stat_activity WHERE backend_type = 'client backend' \
         AND pid <> pg_backend_pid() AND query <> ''",
    )
    .load::<Query>(&mut conn)
    .expect("activity")
    .into_iter()
    .map(|q| q.query)
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_go_to_the_replica_and_still_see_the_caller_s_writes() {
    let pair = StreamingPair::start();
    let dir = tempfile::tempdir().expect("data dir");
    let server = Server::start_with_env(
        dir.path(),
        &[],
        &[
            ("VITALS_DATABASE_URL", pair.primary_url().as_str()),
            ("VITALS_READ_DATABASE_URL", pair.standby_url().as_str()),
        ],
    )
    .expect("serving with a read replica");
    let channel = server.channel().await;
    let created = CustomerServiceClient::new(channel.clone())
        .create_customer(pb::CreateCustomerRequest {
            customer: Some(pb::Customer {
                external_id: "replica-1".into(),
                ..Default::default()
            }),
        })
        .await
        .expect("created on the primary")
        .into_inner();
    let (mut events, mut evaluations) = (
        EventServiceClient::new(channel.clone()),
        EvaluationServiceClient::new(channel.clone()),
    );
    const WRITES: i64 = 40;
    for n in 1..=WRITES {
        events
            .record_events(dollar_purchase(&created.id, &format!("buy-{n}")))
            .await
            .expect("recorded on the primary");
        // Straight after the write: the replica has replayed it by the time it is read.
        let e = evaluations
            .evaluate_customer(pb::EvaluateCustomerRequest {
                lookup: Some(pb::evaluate_customer_request::Lookup::CustomerId(
                    created.id.clone(),
                )),
                as_of: None,
            })
            .await
            .expect("evaluated")
            .into_inner();
        assert!(
            (e.value - n as f64).abs() < 1e-9,
            "after {n} purchases of $1 the value at stake is ${}: a stale read",
            e.value
        );
        let timeline = events
            .list_customer_events(pb::ListCustomerEventsRequest {
                customer: Some(pb::list_customer_events_request::Customer::CustomerId(
                    created.id.clone(),
                )),
                page_size: 100,
                ..Default::default()
            })
            .await
            .expect("timeline")
            .into_inner();
        assert_eq!(
            timeline.events.len() as i64,
            n,
            "the timeline after {n} writes"
        );
    }
    let queries = standby_queries(&pair.standby_url());
    assert!(
        queries
            .iter()
            .any(|q| q.contains("transactions") || q.contains("events")),
        "the server's reads reach the standby: its sessions last ran {queries:?}"
    );
    // Lists and metrics read the replica; the scheme and rules loaders never wrote there.
    evaluations
        .list_at_risk(pb::ListAtRiskRequest::default())
        .await
        .expect("at risk from the replica");
    let logs = server.logs();
    assert!(
        !logs.contains("read-only transaction"),
        "something wrote through the read pool:\n{logs}"
    );
}

#[test]
fn a_read_replica_beside_sqlite_is_refused() {
    let dir = tempfile::tempdir().expect("data dir");
    let refused = Server::start_with_env(
        dir.path(),
        &[],
        &[(
            "VITALS_READ_DATABASE_URL",
            "postgres://postgres@127.0.0.1:5432/postgres",
        )],
    )
    .err()
    .expect("no server on SQLite with a replica");
    assert!(!refused.status.success());
    assert!(
        refused.logs.contains("a read replica is for PostgreSQL"),
        "{}",
        refused.logs
    );
}
