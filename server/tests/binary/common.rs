//! Starting the shipped binary and talking to it.

use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::{Connection, RunQueryDsl, pg::PgConnection};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::transport::{Channel, ClientTlsConfig};

pub const BIN: &str = env!("CARGO_BIN_EXE_vitals-server");

/// A running `vitals-server`, killed when dropped.
pub struct Server {
    child: Option<Child>,
    /// The address it logged (`0.0.0.0:N` when it listens on every interface).
    pub addr: String,
    logs: Arc<Mutex<String>>,
}

/// What a server that did not come up said.
#[derive(Debug)]
pub struct Refused {
    pub status: ExitStatus,
    pub logs: String,
}

impl Server {
    /// Starts the binary with `args`, JSON logs and a free port unless `args` name
    /// another, and waits until it logs its address.
    pub fn start(data_dir: &Path, args: &[&str]) -> Result<Server, Refused> {
        Self::start_with_env(data_dir, args, &[])
    }

    pub fn start_with_env(
        data_dir: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Server, Refused> {
        let mut command = Command::new(BIN);
        command
            .args(args)
            .env("VITALS_DATA_DIR", data_dir)
            .env("VITALS_LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .env_remove("VITALS_DATABASE_URL")
            .env_remove("VITALS_API_KEYS")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if !args.contains(&"--listen") {
            command.env("VITALS_LISTEN", "127.0.0.1:0");
        }
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("the server binary starts");
        let stderr = child.stderr.take().expect("stderr is piped");
        let logs = Arc::new(Mutex::new(String::new()));
        let (lines_tx, lines_rx) = mpsc::channel::<String>();
        {
            let logs = logs.clone();
            std::thread::spawn(move || {
                use std::io::BufRead;
                for line in std::io::BufReader::new(stderr)
                    .lines()
                    .map_while(Result::ok)
                {
                    if let Ok(mut all) = logs.lock() {
                        all.push_str(&line);
                        all.push('\n');
                    }
                    let _ = lines_tx.send(line);
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match lines_rx.recv_timeout(Duration::from_millis(100)) {
                Ok(line) if line.contains("serving gRPC") => {
                    let addr = json_field(&line, "addr").expect("the serving line names its addr");
                    return Ok(Server {
                        child: Some(child),
                        addr,
                        logs,
                    });
                }
                Ok(_) => {}
                Err(_) => {
                    if let Some(status) = child.try_wait().expect("wait") {
                        // Let the reader thread take the last lines.
                        std::thread::sleep(Duration::from_millis(100));
                        let logs = logs.lock().map(|l| l.clone()).unwrap_or_default();
                        return Err(Refused { status, logs });
                    }
                    assert!(Instant::now() < deadline, "the server did not come up");
                }
            }
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("a port")
    }

    /// `http://127.0.0.1:PORT`: loopback even when it listens on every interface.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port())
    }

    pub async fn channel(&self) -> Channel {
        Channel::from_shared(self.url())
            .expect("endpoint")
            .connect()
            .await
            .expect("connect to the server")
    }

    /// A plaintext channel, or why it could not connect.
    pub async fn plaintext_channel(&self) -> Result<Channel, String> {
        Channel::from_shared(self.url())
            .map_err(|e| e.to_string())?
            .connect()
            .await
            .map_err(|e| format!("{e:?}"))
    }

    /// A TLS channel to `localhost:PORT`.
    pub async fn tls_channel(&self, tls: ClientTlsConfig) -> Result<Channel, String> {
        Channel::from_shared(format!("https://localhost:{}", self.port()))
            .map_err(|e| e.to_string())?
            .tls_config(tls)
            .map_err(|e| e.to_string())?
            .connect()
            .await
            .map_err(|e| format!("{e:?}"))
    }

    pub fn logs(&self) -> String {
        self.logs.lock().map(|l| l.clone()).unwrap_or_default()
    }

    pub fn signal(&self, signal: &str) {
        let child = self.child.as_ref().expect("running");
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// SIGTERM, then waits for the exit; returns the status and every log line.
    pub fn stop(mut self) -> (ExitStatus, String) {
        self.signal("TERM");
        let mut child = self.child.take().expect("running");
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            assert!(Instant::now() < deadline, "the server did not stop");
            std::thread::sleep(Duration::from_millis(20));
        };
        std::thread::sleep(Duration::from_millis(100));
        (status, self.logs())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A string field of a JSON log line.
pub fn json_field(line: &str, field: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    value.get(field)?.as_str().map(str::to_owned)
}

/// `vitals-server new-key`: the key and its keys-file line.
pub fn new_key(name: &str, roles: &str) -> (String, String) {
    let made = Command::new(BIN)
        .args(["new-key", "--name", name, "--roles", roles])
        .output()
        .expect("runs");
    assert!(made.status.success(), "{made:?}");
    let stdout = String::from_utf8_lossy(&made.stdout);
    let key = stdout
        .lines()
        .find_map(|l| l.rsplit_once(": vk_").map(|(_, k)| format!("vk_{k}")))
        .expect("the key is printed");
    let line = stdout.lines().last().expect("a keys-file line").to_owned();
    (key, line)
}

/// `message` with `authorization: Bearer KEY`.
pub fn with_key<T>(message: T, key: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {key}").parse().expect("ascii"),
    );
    request
}

/// Polls `check` every 50 ms until it holds or `within` passes.
pub async fn eventually<F, Fut>(within: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn postgres_admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A new, empty PostgreSQL database, dropped (with its connections) at the end.
pub struct FreshDatabase {
    admin: String,
    pub name: String,
    pub url: String,
}

impl FreshDatabase {
    pub fn create() -> Self {
        let admin = postgres_admin_url();
        let name = format!("vitals_bin_{}", uuid::Uuid::new_v4().simple());
        let mut conn = PgConnection::establish(&admin).unwrap_or_else(|e| {
            panic!("PostgreSQL is required for the tests and could not be reached at {admin}: {e}")
        });
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .expect("create a database");
        let (base, _) = admin.rsplit_once('/').expect("a database URL");
        let url = format!("{base}/{name}");
        Self { admin, name, url }
    }
}

impl Drop for FreshDatabase {
    fn drop(&mut self) {
        if let Ok(mut conn) = PgConnection::establish(&self.admin) {
            let _ = diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut conn);
        }
    }
}

/// `GET path` over plain HTTP/1.1, as Prometheus scrapes: the status line and the body.
pub async fn http_get(port: u16, path: &str) -> (String, String) {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: vitals\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .expect("send");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .expect("read the response");
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head.lines().next().unwrap_or_default().to_owned();
    (status, body.to_owned())
}

/// A scratch directory the `postgres` user may write to (PostgreSQL's programs refuse to
/// run as root, so the tests run them as `postgres`); removed on drop.
pub fn postgres_scratch_dir(prefix: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("a scratch directory");
    let _ = Command::new("chown")
        .arg("postgres")
        .arg(dir.path())
        .status();
    dir
}

/// A free TCP port on loopback (for a process this test starts).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The installed PostgreSQL's server programs (initdb, pg_ctl, pg_basebackup).
pub fn pg_bin_dir() -> std::path::PathBuf {
    let mut versions: Vec<std::path::PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    versions.sort();
    versions
        .pop()
        .map(|v| v.join("bin"))
        .expect("PostgreSQL's server programs under /usr/lib/postgresql")
}

/// Whether the tests run as root, where PostgreSQL's programs must run as `postgres`.
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout == b"0\n")
}

/// A purchase of one US dollar an hour ago by `customer_id`, with its own `key`: what the
/// tests that count writes record.
pub fn dollar_purchase(customer_id: &str, key: &str) -> vitals_proto::v1::RecordEventsRequest {
    use vitals_proto::v1 as pb;
    use vitals_proto::v1::event::{Customer as Who, Payload};
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    pb::RecordEventsRequest {
        events: vec![pb::Event {
            comment_analysis: None,
            event_key: key.into(),
            customer: Some(Who::CustomerId(customer_id.into())),
            time: Some(prost_types::Timestamp {
                seconds: now - 3_600,
                nanos: 0,
            }),
            record_time: None,
            payload: Some(Payload::Transaction(pb::Transaction {
                amount_minor: 100,
                currency: "USD".into(),
                quantity: 1,
                category: String::new(),
                channel: "web".into(),
            })),
        }],
        backfill: false,
    }
}

/// A new customer named `external_id`, created through the server on `channel`.
pub async fn new_customer(
    channel: tonic::transport::Channel,
    external_id: &str,
) -> vitals_proto::v1::Customer {
    use vitals_proto::v1 as pb;
    vitals_proto::v1::customer_service_client::CustomerServiceClient::new(channel)
        .create_customer(pb::CreateCustomerRequest {
            customer: Some(pb::Customer {
                external_id: external_id.into(),
                ..Default::default()
            }),
        })
        .await
        .expect("a customer created")
        .into_inner()
}
