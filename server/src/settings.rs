//! The `vitals-server` command line: flags and `VITALS_*` variables, and the one place
//! that turns them into a [`ServerConfig`]. Every field of the config is named here (no
//! `..Default::default()`), so a new setting cannot be added to the config and silently
//! left out of what the binary runs with.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use vitals_store::DataArgs;

use crate::auth::KeyRing;
use crate::logging::LogFormat;
use crate::server::{ServerConfig, TlsFiles};

/// Every option is `global`: it may come before or after the subcommand
/// (`vitals-server --listen A serve` and `vitals-server serve --listen A` are the same).
#[derive(Debug, Parser)]
#[command(
    name = "vitals-server",
    version,
    about = "Vitals: customer evaluation over gRPC"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub data: DataArgs,

    /// Address to listen on. Default: loopback only. Port 0 takes any free port (the
    /// address is logged).
    #[arg(
        long,
        env = "VITALS_LISTEN",
        default_value = "127.0.0.1:50051",
        global = true
    )]
    pub listen: SocketAddr,

    /// Also serve `GET /metrics` (and gRPC health) in plaintext on this address, for
    /// scrapers that cannot reach the API port (it speaks TLS with HTTP/2 only, when TLS is
    /// on). The API port serves `/metrics` in any case.
    #[arg(long, env = "VITALS_METRICS_LISTEN", global = true)]
    pub metrics_listen: Option<SocketAddr>,

    /// Log format.
    #[arg(
        long,
        env = "VITALS_LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    pub log_format: LogFormat,

    /// Do not apply pending migrations at start.
    #[arg(long, env = "VITALS_NO_MIGRATE", global = true)]
    pub no_migrate: bool,

    /// Deadline for every request, in seconds.
    #[arg(
        long,
        env = "VITALS_REQUEST_TIMEOUT_SECS",
        default_value_t = 30,
        global = true
    )]
    pub request_timeout_secs: u64,

    /// Requests in flight per connection before new ones are refused (RESOURCE_EXHAUSTED).
    #[arg(
        long,
        env = "VITALS_MAX_CONCURRENT_PER_CONNECTION",
        default_value_t = 256,
        global = true
    )]
    pub max_concurrent_per_connection: usize,

    /// The model registry: a directory, or an object store URL (`s3://bucket/prefix`,
    /// `gs://`, `az://`; credentials and endpoint from the standard AWS_*, GOOGLE_*,
    /// AZURE_* variables; any other scheme is refused). Default: `<data-dir>/models`,
    /// where the trainer publishes. An object store's versions are checked and kept in
    /// `<data-dir>/model-cache`.
    #[arg(long, env = "VITALS_REGISTRY", global = true)]
    pub registry: Option<String>,

    /// How long (seconds) a chunk of a refresh shared between servers stays leased to a
    /// server that stopped answering, before another server takes it.
    #[arg(
        long,
        env = "VITALS_REFRESH_LEASE_SECS",
        default_value_t = 30.0,
        global = true
    )]
    pub refresh_lease_secs: f64,

    /// Customers per chunk of a refresh run (the unit servers share out).
    #[arg(
        long,
        env = "VITALS_REFRESH_CHUNK_CUSTOMERS",
        default_value_t = 2_000,
        global = true
    )]
    pub refresh_chunk_customers: usize,

    /// Seconds between checks of the registry for a newly activated model (and of the
    /// API keys file for changes, and for chunks of a shared refresh to take).
    #[arg(
        long,
        env = "VITALS_MODEL_POLL_SECS",
        default_value_t = 5.0,
        global = true
    )]
    pub model_poll_secs: f64,

    /// Seconds between checks that the database answers; while it does not, gRPC health
    /// reports NOT_SERVING.
    #[arg(
        long,
        env = "VITALS_HEALTH_PROBE_SECS",
        default_value_t = 2.0,
        global = true
    )]
    pub health_probe_secs: f64,

    /// API keys file: one key per line, `NAME ROLE[,ROLE...] SHA256HEX` (`new-key` makes
    /// one). Re-read on SIGHUP and when it changes. Without keys every caller may do
    /// everything, so the server then listens on loopback only.
    #[arg(long, env = "VITALS_API_KEYS", global = true)]
    pub api_keys: Option<PathBuf>,

    /// Listen beyond loopback without API keys (anyone who can connect may do anything).
    #[arg(long, env = "VITALS_INSECURE", global = true)]
    pub insecure: bool,

    /// TLS certificate chain (PEM). With --tls-key, the server speaks TLS only.
    #[arg(long, env = "VITALS_TLS_CERT", global = true, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// TLS private key (PEM).
    #[arg(long, env = "VITALS_TLS_KEY", global = true, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// CA certificate (PEM) that client certificates must be signed by (mutual TLS).
    #[arg(
        long,
        env = "VITALS_TLS_CLIENT_CA",
        global = true,
        requires = "tls_cert"
    )]
    pub tls_client_ca: Option<PathBuf>,

    /// Largest accepted request message, in KiB (a larger one is refused with
    /// RESOURCE_EXHAUSTED). Default 16 MiB: a full batch of 10,000 events is 1-3 MiB.
    #[arg(
        long,
        env = "VITALS_MAX_MESSAGE_KIB",
        default_value_t = 16 * 1024,
        global = true,
        value_parser = clap::value_parser!(u64).range(1..=1024 * 1024)
    )]
    pub max_message_kib: u64,

    /// Memory for customers' histories kept between evaluations, in MiB (PostgreSQL only;
    /// 0 turns it off). Histories are kept packed: a customer of 28 events takes about
    /// 2.7 KB, so 1 GiB holds about 400,000 of them and 3 GiB a million; beyond the
    /// budget the rarely asked-for ones are read on demand (hit rate on /metrics).
    #[arg(
        long,
        env = "VITALS_HISTORY_CACHE_MIB",
        default_value_t = 1024,
        global = true
    )]
    pub history_cache_mib: u64,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Make a new API key: prints the key (shown once) and the line for the keys file.
    NewKey {
        /// A single word naming the caller (a service, a team), logged as the actor.
        #[arg(long)]
        name: String,
        /// Comma-separated roles: reader, pii-reader, writer, admin.
        #[arg(long)]
        roles: String,
    },
}

impl TryFrom<&Cli> for ServerConfig {
    type Error = anyhow::Error;

    /// Reads the keys file and applies the loopback guard: without keys the server would
    /// let anyone who can connect do anything, so it listens beyond loopback only when
    /// told `--insecure`.
    fn try_from(cli: &Cli) -> anyhow::Result<Self> {
        let api_keys = match &cli.api_keys {
            Some(path) => KeyRing::from_file(path).map_err(anyhow::Error::msg)?,
            None => KeyRing::default(),
        };
        if api_keys.is_open() && !cli.listen.ip().is_loopback() && !cli.insecure {
            anyhow::bail!(
                "refusing to listen on {} without API keys: anyone who can connect could read and \
                 change everything. Give --api-keys FILE (see `vitals-server new-key`), listen on \
                 loopback, or pass --insecure if that is really what you want",
                cli.listen
            );
        }
        let tls = match (&cli.tls_cert, &cli.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
                client_ca: cli.tls_client_ca.clone(),
            }),
            // clap's `requires` makes the two go together; this is the case of neither.
            _ => None,
        };
        Ok(Self {
            max_message_bytes: usize::try_from(cli.max_message_kib.saturating_mul(1024))
                .unwrap_or(usize::MAX),
            request_timeout: Duration::from_secs(cli.request_timeout_secs.max(1)),
            max_concurrent_per_connection: cli.max_concurrent_per_connection.max(1),
            registry: cli
                .registry
                .clone()
                .unwrap_or_else(|| cli.data.data_dir.join("models").display().to_string()),
            model_cache: cli.data.data_dir.join("model-cache"),
            refresh_lease: seconds(cli.refresh_lease_secs, "--refresh-lease-secs")?,
            refresh_chunk_customers: cli.refresh_chunk_customers.max(1),
            model_poll_interval: seconds(cli.model_poll_secs, "--model-poll-secs")?,
            health_probe_interval: seconds(cli.health_probe_secs, "--health-probe-secs")?,
            api_keys,
            tls,
            history_cache_bytes: cli.history_cache_mib.saturating_mul(1024 * 1024),
            metrics_listen: cli.metrics_listen,
        })
    }
}

/// A poll interval from a flag: 50 ms to an hour.
fn seconds(value: f64, flag: &str) -> anyhow::Result<Duration> {
    if !(0.05..=3600.0).contains(&value) {
        anyhow::bail!("{flag} takes 0.05 to 3600 seconds, got {value}");
    }
    Ok(Duration::from_secs_f64(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        let mut all = vec!["vitals-server"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all).expect("parses")
    }

    #[test]
    fn options_may_follow_the_subcommand() {
        let before = parse(&["--listen", "127.0.0.1:1", "--database-url", "x.db", "serve"]);
        let after = parse(&["serve", "--listen", "127.0.0.1:1", "--database-url", "x.db"]);
        assert_eq!(before.listen, after.listen);
        assert_eq!(before.data.database_url, after.data.database_url);
    }

    #[test]
    fn every_flag_reaches_the_config() {
        let dir = tempfile::tempdir().expect("tempdir");
        let keys = dir.path().join("keys.txt");
        std::fs::write(
            &keys,
            format!("ops admin {}\n", crate::auth::hash_key("secret")),
        )
        .expect("write keys");
        let keys = keys.to_string_lossy().into_owned();
        let cli = parse(&[
            "--listen",
            "0.0.0.0:1",
            "--api-keys",
            &keys,
            "--tls-cert",
            "c.pem",
            "--tls-key",
            "k.pem",
            "--tls-client-ca",
            "ca.pem",
            "--max-message-kib",
            "64",
            "--request-timeout-secs",
            "7",
            "--max-concurrent-per-connection",
            "9",
            "--registry",
            "/r",
            "--model-poll-secs",
            "0.5",
            "--health-probe-secs",
            "3",
            "--history-cache-mib",
            "2",
            "--metrics-listen",
            "127.0.0.1:9",
        ]);
        let config = ServerConfig::try_from(&cli).expect("a config");
        assert_eq!(config.max_message_bytes, 64 * 1024);
        assert_eq!(config.request_timeout, Duration::from_secs(7));
        assert_eq!(config.max_concurrent_per_connection, 9);
        assert_eq!(config.registry, "/r");
        assert_eq!(config.model_poll_interval, Duration::from_millis(500));
        assert_eq!(config.health_probe_interval, Duration::from_secs(3));
        assert_eq!(config.history_cache_bytes, 2 * 1024 * 1024);
        assert_eq!(config.metrics_listen, Some(([127, 0, 0, 1], 9).into()));
        assert_eq!(config.api_keys.current().len(), 1);
        let tls = config.tls.expect("TLS configured");
        assert_eq!(tls.client_ca, Some(PathBuf::from("ca.pem")));
    }

    #[test]
    fn the_loopback_guard_and_empty_keys_files() {
        let open = parse(&["--listen", "0.0.0.0:1"]);
        let refused = ServerConfig::try_from(&open).expect_err("refused");
        assert!(
            refused.to_string().contains("without API keys"),
            "{refused}"
        );
        let insecure = parse(&["--listen", "0.0.0.0:1", "--insecure"]);
        assert!(ServerConfig::try_from(&insecure).is_ok());

        let dir = tempfile::tempdir().expect("tempdir");
        let empty = dir.path().join("keys.txt");
        std::fs::write(&empty, "# nobody yet\n").expect("write");
        let cli = parse(&["--api-keys", &empty.to_string_lossy()]);
        let refused = ServerConfig::try_from(&cli).expect_err("an empty keys file");
        assert!(refused.to_string().contains("lists no key"), "{refused}");
    }
}
