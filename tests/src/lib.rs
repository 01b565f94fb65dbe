//! The test harness: a real server on an ephemeral port over a real database (a fresh
//! SQLite file or a fresh PostgreSQL schema per test), and real gRPC clients.
//!
//! PostgreSQL comes from `TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`). It is never skipped: a test that cannot
//! reach it fails.

use std::net::SocketAddr;

use diesel::{Connection, RunQueryDsl, pg::PgConnection};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;
use vitals_proto::v1::customer_service_client::CustomerServiceClient;
use vitals_proto::v1::evaluation_service_client::EvaluationServiceClient;
use vitals_proto::v1::event_service_client::EventServiceClient;
use vitals_proto::v1::follow_up_service_client::FollowUpServiceClient;
use vitals_proto::v1::model_service_client::ModelServiceClient;
use vitals_proto::v1::portfolio_service_client::PortfolioServiceClient;
use vitals_server::ServerConfig;
use vitals_store::{DatabaseUrl, PoolOptions, Store};

pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database of its own for one test, removed when dropped.
#[derive(Debug)]
pub struct TestDb {
    pub url: DatabaseUrl,
    _dir: Option<tempfile::TempDir>,
    pg_schema: Option<(String, String)>,
}

pub fn postgres_admin_url() -> String {
    std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned())
}

impl TestDb {
    pub fn new(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::Builder::new()
                    .prefix("vitals-test-")
                    .tempdir()
                    .expect("a temporary directory");
                Self {
                    url: DatabaseUrl::Sqlite(dir.path().join("vitals.db")),
                    _dir: Some(dir),
                    pg_schema: None,
                }
            }
            Backend::Postgres => {
                let admin = postgres_admin_url();
                let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
                let mut conn = PgConnection::establish(&admin).unwrap_or_else(|e| {
                    panic!(
                        "PostgreSQL is required for the tests and could not be reached at {admin} \
                         (set TEST_DATABASE_URL): {e}"
                    )
                });
                diesel::sql_query(format!("CREATE SCHEMA {schema}"))
                    .execute(&mut conn)
                    .expect("create a test schema");
                let sep = if admin.contains('?') { '&' } else { '?' };
                let url = format!("{admin}{sep}options=-csearch_path%3D{schema}");
                Self {
                    url: DatabaseUrl::Postgres(url),
                    _dir: None,
                    pg_schema: Some((admin, schema)),
                }
            }
        }
    }

    pub fn store(&self) -> Store {
        let store = Store::open(&self.url, &PoolOptions::default()).expect("open the store");
        store.migrate().expect("migrate");
        store
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin, schema)) = &self.pg_schema
            && let Ok(mut conn) = PgConnection::establish(admin)
        {
            let _ = diesel::sql_query(format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                .execute(&mut conn);
        }
    }
}

/// A running server and its database.
#[derive(Debug)]
pub struct TestServer {
    pub addr: SocketAddr,
    pub store: Store,
    /// The server's model registry: a temporary directory of its own.
    pub registry: std::path::PathBuf,
    _registry_dir: tempfile::TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
    // Last, so the database outlives the server.
    pub db: TestDb,
}

impl TestServer {
    pub async fn start(backend: Backend) -> Self {
        let db = TestDb::new(backend);
        let store = db.store();
        Self::start_on(db, store, ServerConfig::default()).await
    }

    /// Starts a server over `store`; its registry is always a fresh temporary directory
    /// (`self.registry`), whatever `config` says, and it polls it every 100 ms.
    pub async fn start_on(db: TestDb, store: Store, mut config: ServerConfig) -> Self {
        let registry_dir = tempfile::Builder::new()
            .prefix("vitals-registry-")
            .tempdir()
            .expect("a temporary registry");
        config.registry = registry_dir.path().display().to_string();
        config.model_poll_interval = std::time::Duration::from_millis(100);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind an ephemeral port");
        let addr = listener.local_addr().expect("local address");
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(vitals_server::serve(
            store.clone(),
            config,
            listener,
            async {
                let _ = rx.await;
            },
        ));
        Self {
            addr,
            store,
            registry: registry_dir.path().to_path_buf(),
            _registry_dir: registry_dir,
            shutdown: Some(tx),
            task: Some(task),
            db,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn channel(&self) -> Channel {
        Channel::from_shared(self.endpoint())
            .expect("a valid endpoint")
            .connect()
            .await
            .expect("connect to the test server")
    }

    pub async fn customers(&self) -> CustomerServiceClient<Channel> {
        CustomerServiceClient::new(self.channel().await)
    }

    pub async fn events(&self) -> EventServiceClient<Channel> {
        EventServiceClient::new(self.channel().await)
    }

    pub async fn evaluations(&self) -> EvaluationServiceClient<Channel> {
        EvaluationServiceClient::new(self.channel().await)
    }

    pub async fn follow_ups(&self) -> FollowUpServiceClient<Channel> {
        FollowUpServiceClient::new(self.channel().await)
    }

    pub async fn portfolio(&self) -> PortfolioServiceClient<Channel> {
        PortfolioServiceClient::new(self.channel().await)
    }

    pub async fn models(&self) -> ModelServiceClient<Channel> {
        ModelServiceClient::new(self.channel().await)
    }

    /// Creates `customer` through the API (a test's setup: a refusal panics) and returns
    /// its id.
    pub async fn create_customer(&self, customer: vitals_proto::v1::Customer) -> String {
        self.customers()
            .await
            .create_customer(vitals_proto::v1::CreateCustomerRequest {
                customer: Some(customer),
            })
            .await
            .expect("the test's customer is created")
            .into_inner()
            .id
    }

    /// Records live `events` through the API (a test's setup: a failed call panics; events
    /// the server rejects come back in the answer).
    pub async fn record_events(
        &self,
        events: Vec<vitals_proto::v1::Event>,
    ) -> vitals_proto::v1::RecordEventsResponse {
        self.events()
            .await
            .record_events(vitals_proto::v1::RecordEventsRequest {
                events,
                backfill: false,
            })
            .await
            .expect("the test's events are recorded")
            .into_inner()
    }

    /// Fills the server's database with `customers` synthetic customers and their
    /// history (seeded, so reproducible), then trains and publishes churn and segment
    /// models into its registry, activated when `activate`. Returns the churn version.
    /// Blocking work: called from a test on the multi-threaded runtime, it moves off the
    /// async workers (`block_in_place`).
    pub fn train_synthetic(&self, customers: u64, activate: bool) -> u64 {
        tokio::task::block_in_place(|| self.train_synthetic_blocking(customers, activate))
    }

    fn train_synthetic_blocking(&self, customers: u64, activate: bool) -> u64 {
        use vitals_domain::time::MICROS_PER_DAY;
        use vitals_engine::models::churn::Algorithm;
        use vitals_trainer::train::{Activation, ChurnChoice, SegmentChoice, TrainConfig};
        if self.store.count_customers().expect("count customers") == 0 {
            let options = vitals_trainer::generate::GenerateOptions::new(customers, 42);
            vitals_trainer::generate::generate(&self.store, &options).expect("generate history");
        }
        let end = vitals_trainer::generate::GenerateOptions::new(customers, 42).end;
        let config = TrainConfig {
            registry: self.registry.display().to_string(),
            cutoffs: vec![end - 90 * MICROS_PER_DAY],
            horizon: 90 * MICROS_PER_DAY,
            churn: ChurnChoice::Only(Algorithm::Logistic),
            segments: SegmentChoice::K(3),
            seed: 7,
            activation: if activate {
                Activation::Always
            } else {
                Activation::No
            },
            validation_share: 0.2,
            progress: false,
            actor: "test".into(),
            sample_customers: 0,
        };
        vitals_trainer::train::train(&self.store, &config)
            .expect("train")
            .churn_version
    }

    /// Stops the server and waits for it to finish its in-flight requests.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await
                .expect("the server task does not panic")
                .expect("the server stops cleanly");
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Runs an async test body once per backend: `both_backends!(name);` declares
/// `name::sqlite` and `name::postgres` tests calling `async fn name(Backend)`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::Backend::Sqlite).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name($crate::Backend::Postgres).await
                }
            }
        )*
    };
}

/// The field violations of an INVALID_ARGUMENT status, as (field, description) pairs.
pub fn violations(status: &tonic::Status) -> Vec<(String, String)> {
    use tonic_types::StatusExt;
    status
        .get_details_bad_request()
        .map(|b| {
            b.field_violations
                .into_iter()
                .map(|v| (v.field, v.description))
                .collect()
        })
        .unwrap_or_default()
}

/// Asserts an INVALID_ARGUMENT status that names `field` among its violations.
pub fn assert_invalid(result: Result<impl std::fmt::Debug, tonic::Status>, field: &str) {
    let status = result.expect_err("the request must be refused");
    assert_eq!(
        status.code(),
        tonic::Code::InvalidArgument,
        "{field}: {status:?}"
    );
    let v = violations(&status);
    assert!(
        v.iter().any(|(f, _)| f == field),
        "expected a violation of {field}, got {v:?}"
    );
}

pub fn ts(seconds: i64) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds, nanos: 0 }
}

pub fn now_seconds() -> i64 {
    vitals_domain::time::now_micros() / 1_000_000
}

/// A TCP proxy in front of PostgreSQL that a test can cut and restore: the database
/// "stops" for the server (open connections die, new ones are dropped at once) while the
/// real server keeps running for the other tests.
#[derive(Debug)]
pub struct DbProxy {
    pub addr: SocketAddr,
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    connections: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
    accept: JoinHandle<()>,
}

impl DbProxy {
    /// Forwards to `upstream` (`host:port`).
    pub async fn start(upstream: String) -> Self {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let connections = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let accept = {
            let (up, connections) = (up.clone(), connections.clone());
            tokio::spawn(async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    if !up.load(Ordering::SeqCst) {
                        drop(client);
                        continue;
                    }
                    let upstream = upstream.clone();
                    let task = tokio::spawn(async move {
                        if let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        }
                    });
                    if let Ok(mut list) = connections.lock() {
                        list.push(task.abort_handle());
                    }
                }
            })
        };
        Self {
            addr,
            up,
            connections,
            accept,
        }
    }

    /// The database goes away: every open connection is closed, new ones are refused.
    pub fn cut(&self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        if let Ok(mut list) = self.connections.lock() {
            for c in list.drain(..) {
                c.abort();
            }
        }
    }

    /// The database is back.
    pub fn restore(&self) {
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// `url` (a PostgreSQL URL) with its host and port replaced by the proxy's, and the
    /// host:port it named.
    pub fn route(url: &str) -> (String, String) {
        let (scheme, rest) = url.split_once("://").expect("a URL");
        let (userinfo, rest) = rest.split_once('@').map_or(("", rest), |(u, r)| (u, r));
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let hostport = rest[..end].to_owned();
        let at = if userinfo.is_empty() { "" } else { "@" };
        (
            format!("{scheme}://{userinfo}{at}PROXY{}", &rest[end..]),
            hostport,
        )
    }
}

impl Drop for DbProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}
