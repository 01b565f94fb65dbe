//! A PostgreSQL failover under a write load, with pg_auto_failover (Debian's
//! `postgresql-15-auto-failover`: a monitor and two nodes, synchronous replication) and the
//! server on the formation's multi-host URL (`target_session_attrs=read-write`): no
//! acknowledged event is lost, writes during the switch are answered UNAVAILABLE, the
//! server recovers by itself, and migrations apply on the new primary.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::{Connection, RunQueryDsl, pg::PgConnection};
use tonic::Code;
use vitals_proto::v1 as pb;
use vitals_proto::v1::evaluation_service_client::EvaluationServiceClient;
use vitals_proto::v1::event_service_client::EventServiceClient;

use crate::common::{
    BIN, Server, dollar_purchase, free_port, is_root, new_customer, pg_bin_dir,
    postgres_scratch_dir,
};

/// A monitor and two nodes, each `pg_autoctl ... --run` in the background.
struct Formation {
    dir: tempfile::TempDir,
    keepers: Vec<Child>,
    ports: [u16; 2],
}

impl Formation {
    fn autoctl(dir: &Path, args: &[&str]) -> Command {
        let path = format!(
            "{}:{}",
            pg_bin_dir().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut c = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--", "env"]);
            c
        } else {
            Command::new("env")
        };
        c.arg(format!("PATH={path}"))
            .arg(format!("XDG_CONFIG_HOME={}/config", dir.display()))
            .arg(format!("XDG_DATA_HOME={}/data", dir.display()))
            .arg(format!("XDG_RUNTIME_DIR={}/run", dir.display()))
            .arg("pg_autoctl")
            .args(args);
        c
    }

    fn start() -> Self {
        let dir = postgres_scratch_dir("vitals-failover-");
        let d = dir.path().to_path_buf();
        let monitor_port = free_port();
        let ports = [free_port(), free_port()];
        let spawn = |args: Vec<String>, log: &str| -> Child {
            let log = std::fs::File::create(d.join(log)).expect("log file");
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            Self::autoctl(&d, &args)
                .stdout(log.try_clone().expect("log"))
                .stderr(log)
                .spawn()
                .expect("pg_autoctl starts: apt-get install postgresql-15-auto-failover")
        };
        let mut keepers = vec![spawn(
            vec![
                "create".into(),
                "monitor".into(),
                "--pgdata".into(),
                format!("{}/monitor", d.display()),
                "--pgport".into(),
                monitor_port.to_string(),
                "--hostname".into(),
                "127.0.0.1".into(),
                "--auth".into(),
                "trust".into(),
                "--no-ssl".into(),
                "--run".into(),
            ],
            "monitor.log",
        )];
        wait_until(Duration::from_secs(60), "the monitor", || {
            PgConnection::establish(&format!(
                "postgres://autoctl_node@127.0.0.1:{monitor_port}/pg_auto_failover"
            ))
            .is_ok()
        });
        let monitor = format!(
            "postgres://autoctl_node@127.0.0.1:{monitor_port}/pg_auto_failover?sslmode=disable"
        );
        for (i, port) in ports.iter().enumerate() {
            keepers.push(spawn(
                vec![
                    "create".into(),
                    "postgres".into(),
                    "--pgdata".into(),
                    format!("{}/node{i}", d.display()),
                    "--pgport".into(),
                    port.to_string(),
                    "--hostname".into(),
                    "127.0.0.1".into(),
                    "--auth".into(),
                    "trust".into(),
                    "--no-ssl".into(),
                    "--monitor".into(),
                    monitor.clone(),
                    "--run".into(),
                ],
                &format!("node{i}.log"),
            ));
            // The first node becomes the primary before the second joins.
            std::thread::sleep(Duration::from_secs(2));
        }
        let formation = Self {
            dir,
            keepers,
            ports,
        };
        wait_until(
            Duration::from_secs(120),
            "a primary and a secondary",
            || {
                formation.state().matches("secondary |").count() >= 1
                    && formation.state().contains("primary |             primary")
            },
        );
        formation
    }

    fn state(&self) -> String {
        let out = Self::autoctl(
            self.dir.path(),
            &["show", "state", "--pgdata", &self.monitor_dir()],
        )
        .output()
        .expect("show state");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn monitor_dir(&self) -> String {
        format!("{}/monitor", self.dir.path().display())
    }

    /// What every client of the formation connects with: both nodes, the writable one.
    fn url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/postgres?target_session_attrs=read-write&sslmode=disable",
            self.ports[0], self.ports[1]
        )
    }

    fn perform_failover(&self) {
        let out = Self::autoctl(
            self.dir.path(),
            &["perform", "failover", "--pgdata", &self.monitor_dir()],
        )
        .output()
        .expect("perform failover");
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Formation {
    fn drop(&mut self) {
        // Each keeper stops its PostgreSQL; anything left of the formation (a keeper
        // started through runuser outlives the runuser process) is killed by its path.
        for node in ["node1", "node0", "monitor"] {
            let pgdata = self.dir.path().join(node).display().to_string();
            let _ = Self::autoctl(
                self.dir.path(),
                &["stop", "--pgdata", &pgdata, "--immediate"],
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        for keeper in &mut self.keepers {
            while Instant::now() < deadline && matches!(keeper.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = keeper.kill();
            let _ = keeper.wait();
        }
        let _ = Command::new("pkill")
            .args(["-KILL", "-f", &self.dir.path().display().to_string()])
            .status();
    }
}

fn wait_until(limit: Duration, what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ready() {
        assert!(
            Instant::now() < deadline,
            "{what} not ready after {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_under_writes_loses_no_acknowledged_event() {
    let formation = tokio::task::spawn_blocking(Formation::start)
        .await
        .expect("the formation");
    let url = formation.url();
    let dir = tempfile::tempdir().expect("data dir");
    let server = Server::start_with_env(
        dir.path(),
        &["--db-timeout-secs", "0.5"],
        &[("VITALS_DATABASE_URL", url.as_str())],
    )
    .expect("serving on the formation");
    let channel = server.channel().await;
    let customer = new_customer(channel.clone(), "through-failover").await;

    // A writer that never stops until told, keeping what was acknowledged and how the
    // others were refused.
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let refused = Arc::new(Mutex::new(Vec::<(Code, String)>::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (acknowledged, refused, stop) = (acknowledged.clone(), refused.clone(), stop.clone());
        let mut events = EventServiceClient::new(channel.clone());
        let id = customer.id.clone();
        tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                n += 1;
                let key = format!("w-{n}");
                match events.record_events(dollar_purchase(&id, &key)).await {
                    Ok(r) if r.get_ref().accepted == 1 => {
                        acknowledged.lock().expect("acks").push(key)
                    }
                    Ok(r) => panic!("an event neither accepted nor refused: {:?}", r.get_ref()),
                    Err(status) => {
                        refused
                            .lock()
                            .expect("refusals")
                            .push((status.code(), status.message().to_owned()));
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
        })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = acknowledged.lock().expect("acks").len();
    assert!(before > 0, "writes go through before the failover");
    let switch = Instant::now();
    let formation = tokio::task::spawn_blocking(move || {
        formation.perform_failover();
        formation
    })
    .await
    .expect("failover");
    let switched = switch.elapsed();
    // Recovered by itself: writes are acknowledged again, within seconds.
    let during = acknowledged.lock().expect("acks").len();
    let deadline = Instant::now() + Duration::from_secs(30);
    while acknowledged.lock().expect("acks").len() < during + 20 {
        assert!(
            Instant::now() < deadline,
            "writes did not come back after the failover"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.await.expect("the writer");

    let acked = acknowledged.lock().expect("acks").clone();
    let refusals = refused.lock().expect("refusals").clone();
    assert!(
        refusals.iter().all(|(code, _)| *code == Code::Unavailable),
        "refused otherwise than UNAVAILABLE: {refusals:?}"
    );
    // Every acknowledged event is on the new primary.
    #[derive(diesel::QueryableByName)]
    struct Key {
        #[diesel(sql_type = diesel::sql_types::Text)]
        event_key: String,
    }
    let mut conn = PgConnection::establish(&url).expect("the new primary");
    let stored: std::collections::HashSet<String> = diesel::sql_query(format!(
        "SELECT event_key FROM events WHERE customer_id = '{}'",
        customer.id
    ))
    .load::<Key>(&mut conn)
    .expect("events")
    .into_iter()
    .map(|k| k.event_key)
    .collect();
    let lost: Vec<&String> = acked.iter().filter(|k| !stored.contains(*k)).collect();
    assert!(lost.is_empty(), "acknowledged and lost: {lost:?}");
    // The evaluation reads the same history (the change listener found the new primary).
    let mut evaluations = EvaluationServiceClient::new(channel.clone());
    let value = evaluations
        .evaluate_customer(pb::EvaluateCustomerRequest {
            lookup: Some(pb::evaluate_customer_request::Lookup::CustomerId(
                customer.id.clone(),
            )),
            as_of: None,
        })
        .await
        .expect("evaluated after the failover")
        .into_inner()
        .value;
    assert!(
        (value - stored.len() as f64).abs() < 1e-9,
        "{value} vs {}",
        stored.len()
    );
    // Migrations run against the formation apply on the new primary.
    let migrate = Command::new(BIN)
        .args(["migrate", "--database-url", &url])
        .env("VITALS_DATA_DIR", dir.path())
        .output()
        .expect("migrate runs");
    assert!(
        migrate.status.success(),
        "{}",
        String::from_utf8_lossy(&migrate.stderr)
    );
    println!(
        "failover took {switched:.1?}: {} events acknowledged ({before} before), {} refused with UNAVAILABLE, none lost",
        acked.len(),
        refusals.len()
    );
    drop(formation);
}
