//! `vitals-server`: serves the Vitals gRPC API, or applies database migrations.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use vitals_server::logging::{self, LogFormat};
use vitals_server::{ServerConfig, serve};
use vitals_store::{DataArgs, Store, redact_url};

#[derive(Debug, Parser)]
#[command(
    name = "vitals-server",
    version,
    about = "Vitals: customer evaluation over gRPC"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    #[command(flatten)]
    data: DataArgs,

    /// Address to listen on. Default: loopback only.
    #[arg(
        long,
        env = "VITALS_LISTEN",
        default_value = "127.0.0.1:50051",
        global = true
    )]
    listen: SocketAddr,

    /// Log format.
    #[arg(
        long,
        env = "VITALS_LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    log_format: LogFormat,

    /// Do not apply pending migrations at start.
    #[arg(long, env = "VITALS_NO_MIGRATE", global = true)]
    no_migrate: bool,

    /// Deadline for every request, in seconds.
    #[arg(
        long,
        env = "VITALS_REQUEST_TIMEOUT_SECS",
        default_value_t = 30,
        global = true
    )]
    request_timeout_secs: u64,

    /// The model registry. Default: `<data-dir>/models`, where the trainer publishes.
    #[arg(long, env = "VITALS_REGISTRY", global = true)]
    registry: Option<std::path::PathBuf>,

    /// Seconds between checks of the registry for a newly activated model.
    #[arg(
        long,
        env = "VITALS_MODEL_POLL_SECS",
        default_value_t = 5.0,
        global = true
    )]
    model_poll_secs: f64,

    /// API keys file: one key per line, `NAME ROLE[,ROLE...] SHA256HEX` (`new-key` makes
    /// one). Without keys every caller may do everything, so the server then listens on
    /// loopback only.
    #[arg(long, env = "VITALS_API_KEYS", global = true)]
    api_keys: Option<std::path::PathBuf>,

    /// Listen beyond loopback without API keys (anyone who can connect may do anything).
    #[arg(long, env = "VITALS_INSECURE", global = true)]
    insecure: bool,

    /// TLS certificate chain (PEM). With --tls-key, the server speaks TLS only.
    #[arg(long, env = "VITALS_TLS_CERT", global = true, requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,

    /// TLS private key (PEM).
    #[arg(long, env = "VITALS_TLS_KEY", global = true, requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,

    /// CA certificate (PEM) that client certificates must be signed by (mutual TLS).
    #[arg(
        long,
        env = "VITALS_TLS_CLIENT_CA",
        global = true,
        requires = "tls_cert"
    )]
    tls_client_ca: Option<std::path::PathBuf>,

    /// Largest accepted request message, in MiB.
    #[arg(
        long,
        env = "VITALS_MAX_MESSAGE_MIB",
        default_value_t = 16,
        global = true
    )]
    max_message_mib: usize,

    /// Memory for customers' histories kept between evaluations, in MiB (PostgreSQL only;
    /// 0 turns it off). A history takes about 450 bytes per event: 1 GiB holds about
    /// 100,000 customers of 22 events each.
    #[arg(
        long,
        env = "VITALS_HISTORY_CACHE_MIB",
        default_value_t = 1024,
        global = true
    )]
    history_cache_mib: u64,
}

#[derive(Debug, Subcommand)]
enum Command {
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

/// Every request allocates many small buffers and strings (messages, rows, features);
/// mimalloc does that faster than the system allocator under concurrency.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    logging::init(cli.log_format);
    if let Some(Command::NewKey { name, roles }) = &cli.command {
        return new_key(name, roles);
    }
    let url = cli.data.database_url()?;
    let store = Store::open(&url, &cli.data.pool_options())?;
    let shown = match &url {
        vitals_store::DatabaseUrl::Postgres(u) => redact_url(u),
        vitals_store::DatabaseUrl::Sqlite(p) => p.display().to_string(),
    };
    let api_keys = match &cli.api_keys {
        Some(path) => vitals_server::auth::ApiKeys::load(path).map_err(anyhow::Error::msg)?,
        None => vitals_server::auth::ApiKeys::default(),
    };
    if api_keys.is_empty() {
        if !cli.listen.ip().is_loopback() && !cli.insecure {
            anyhow::bail!(
                "refusing to listen on {} without API keys: anyone who can connect could read and \
                 change everything. Give --api-keys FILE (see `vitals-server new-key`), listen on \
                 loopback, or pass --insecure if that is really what you want",
                cli.listen
            );
        }
        tracing::warn!(listen = %cli.listen, "no API keys configured: every caller may do everything");
    } else {
        tracing::info!(keys = api_keys.len(), "API keys loaded");
    }
    match cli.command.unwrap_or(Command::Serve) {
        Command::NewKey { .. } => Ok(()),
        Command::Migrate => {
            let applied = store
                .migrate()
                .with_context(|| format!("migrating {shown}"))?;
            tracing::info!(database = %shown, applied = applied.len(), "migrations applied");
            for name in applied {
                println!("applied {name}");
            }
            Ok(())
        }
        Command::Serve => {
            if !cli.no_migrate {
                let applied = store
                    .migrate()
                    .with_context(|| format!("migrating {shown}"))?;
                tracing::info!(database = %shown, applied = applied.len(), "database ready");
            }
            let config = ServerConfig {
                max_message_bytes: cli.max_message_mib.max(1) * 1024 * 1024,
                history_cache_bytes: cli.history_cache_mib.saturating_mul(1024 * 1024),
                request_timeout: Duration::from_secs(cli.request_timeout_secs.max(1)),
                registry: cli
                    .registry
                    .clone()
                    .unwrap_or_else(|| cli.data.data_dir.join("models")),
                model_poll_interval: Duration::from_secs_f64(
                    cli.model_poll_secs.clamp(0.05, 3600.0),
                ),
                ..ServerConfig::default()
            };
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(async {
                let listener = tokio::net::TcpListener::bind(cli.listen)
                    .await
                    .with_context(|| format!("binding {}", cli.listen))?;
                serve(store, config, listener, shutdown_signal()).await
            })
        }
    }
}

/// Prints a fresh random key and its keys-file line; the key itself is never stored.
fn new_key(name: &str, roles: &str) -> anyhow::Result<()> {
    use rand::RngCore;
    if name.is_empty() || name.chars().any(char::is_whitespace) {
        anyhow::bail!("--name must be one word");
    }
    let line_roles = roles
        .split(',')
        .map(|r| {
            vitals_server::auth::Role::parse(r.trim())
                .map(|role| role.as_str())
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "unknown role {r:?}; roles are reader, pii-reader, writer, admin"
                    )
                })
        })
        .collect::<anyhow::Result<Vec<_>>>()?
        .join(",");
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let key = format!("vk_{}", hex::encode(bytes));
    println!("key (give it to the caller; it is not stored anywhere): {key}");
    println!("line for the keys file:");
    println!(
        "{name} {line_roles} {}",
        vitals_server::auth::hash_key(&key)
    );
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown requested: finishing in-flight requests");
}
