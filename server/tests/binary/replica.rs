//! The server with `--read-database-url` on a real streaming replica, built here from
//! scratch in a second or two: `initdb` a primary on a free port, `pg_basebackup -R -X
//! stream -C -S slot` a standby from it, start both. Reads go to the standby and still see
//! every write the caller made before them; nothing is ever written through it.

use std::path::PathBuf;
use std::process::Command;

use diesel::{Connection, RunQueryDsl, pg::PgConnection};
use vitals_proto::v1 as pb;
use vitals_proto::v1::evaluation_service_client::EvaluationServiceClient;
use vitals_proto::v1::event_service_client::EventServiceClient;

use crate::common::{
    Server, dollar_purchase, free_port, is_root, new_customer, pg_bin_dir, postgres_scratch_dir,
};

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
        let dir = postgres_scratch_dir("vitals-replica-");
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
    // The flag as an operator gives it (`VITALS_READ_DATABASE_URL` is the same setting).
    let server = Server::start_with_env(
        dir.path(),
        &["--read-database-url", &pair.standby_url()],
        &[("VITALS_DATABASE_URL", pair.primary_url().as_str())],
    )
    .expect("serving with a read replica");
    let channel = server.channel().await;
    let created = new_customer(channel.clone(), "replica-1").await;
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

/// `vitals-trainer` from the same build (`cargo test --workspace` builds every binary).
fn trainer_binary() -> PathBuf {
    let path = std::path::Path::new(crate::common::BIN).with_file_name("vitals-trainer");
    assert!(
        path.is_file(),
        "{} is not built: run `cargo build --bins` (cargo test --workspace does)",
        path.display()
    );
    path
}

fn trainer(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(trainer_binary())
        .args(args)
        .env("VITALS_DATA_DIR", dir)
        .env("RUST_LOG", "warn")
        .env_remove("VITALS_DATABASE_URL")
        .env_remove("VITALS_READ_DATABASE_URL")
        .output()
        .expect("the trainer runs")
}

/// The data fingerprint of the newest churn version: what the training rows were.
fn trained_on(dir: &std::path::Path, registry: &str) -> String {
    let out = trainer(
        dir,
        &[
            "models",
            "show",
            "churn",
            "latest",
            "--json",
            "--registry",
            registry,
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let manifest: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a manifest");
    manifest["data_fingerprint"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn the_trainer_reads_the_replica_and_never_a_stale_one() {
    let pair = StreamingPair::start();
    let dir = tempfile::tempdir().expect("data dir");
    let registry = dir.path().join("models").display().to_string();
    let (primary, standby) = (pair.primary_url(), pair.standby_url());
    let ok = |out: std::process::Output| {
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    // 300 more generated customers in the primary.
    let generate = |seed: &str| {
        ok(trainer(
            dir.path(),
            &[
                "generate",
                "--customers",
                "300",
                "--seed",
                seed,
                "--database-url",
                &primary,
            ],
        ))
    };
    generate("5");
    let train = |read: Option<&str>| {
        let mut args = vec![
            "train",
            "--database-url",
            primary.as_str(),
            "--registry",
            registry.as_str(),
        ];
        if let Some(read) = read {
            args.extend(["--read-database-url", read]);
        }
        let logs = ok(trainer(dir.path(), &args));
        (trained_on(dir.path(), &registry), logs)
    };
    // Caught up: the replica's rows are the primary's.
    let (from_primary, _) = train(None);
    let (from_replica, logs) = train(Some(&standby));
    assert_eq!(from_replica, from_primary, "{logs}");
    assert!(!logs.contains("behind"), "{logs}");

    // The standby stops replaying; the primary gets more customers. Training through the
    // replica waits for it, then reads the primary: the rows are the new ones, not stale.
    let mut conn = PgConnection::establish(&standby).expect("the standby");
    diesel::sql_query("SELECT pg_wal_replay_pause()")
        .execute(&mut conn)
        .expect("replay paused");
    generate("6");
    let (now_primary, _) = train(None);
    assert_ne!(now_primary, from_primary, "the second generate added rows");
    let (now_replica, logs) = train(Some(&standby));
    assert_eq!(
        now_replica, now_primary,
        "a stale read of the paused standby"
    );
    assert!(
        logs.contains("reading the primary"),
        "the trainer asked the replica first: {logs}"
    );
    diesel::sql_query("SELECT pg_wal_replay_resume()")
        .execute(&mut conn)
        .expect("replay resumed");

    // A replica beside the embedded SQLite database makes no sense: refused, clearly.
    let refused = trainer(
        dir.path(),
        &[
            "train",
            "--registry",
            &registry,
            "--read-database-url",
            &standby,
        ],
    );
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("a read replica is for PostgreSQL"), "{err}");
}
