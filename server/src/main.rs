//! `vitals-server`: serves the Vitals gRPC API, or applies database migrations.

use anyhow::Context;
use clap::Parser;
use vitals_server::logging;
use vitals_server::settings::{Cli, Command};
use vitals_server::{ServerConfig, serve};
use vitals_store::{Store, redact_url};

/// Every request allocates many small buffers and strings (messages, rows, features);
/// mimalloc does that faster than the system allocator under concurrency.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    logging::init(cli.log_format);
    match cli.command.as_ref().unwrap_or(&Command::Serve) {
        Command::NewKey { name, roles } => new_key(name, roles),
        Command::Migrate => {
            let (store, shown) = open_store(&cli)?;
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
            // The whole configuration (keys read, loopback guard applied) before anything
            // is opened, so a bad flag fails fast.
            let config = ServerConfig::try_from(&cli)?;
            let (store, shown) = open_store(&cli)?;
            if !cli.no_migrate {
                let applied = store
                    .migrate()
                    .with_context(|| format!("migrating {shown}"))?;
                tracing::info!(database = %shown, applied = applied.len(), "database ready");
            }
            if config.api_keys.is_open() {
                tracing::warn!(listen = %cli.listen, "no API keys configured: every caller may do everything");
            } else {
                tracing::info!(keys = config.api_keys.current().len(), file = ?config.api_keys.file(), "API keys loaded");
            }
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

/// The store the flags name, and how to show it in logs (no password).
fn open_store(cli: &Cli) -> anyhow::Result<(Store, String)> {
    let url = cli.data.database_url()?;
    let store = cli.data.open_store()?;
    let shown = match &url {
        vitals_store::DatabaseUrl::Postgres(u) => redact_url(u),
        vitals_store::DatabaseUrl::Sqlite(p) => p.display().to_string(),
    };
    Ok((store, shown))
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
