//! Where the data lives: the settings the server and the trainer share, so a user with
//! defaults types no flags in either.

use std::path::PathBuf;
use std::time::Duration;

use crate::db::{DatabaseUrl, PoolOptions, Store};
use crate::error::Result;

/// Database and data-directory settings (flags and `VITALS_*` environment variables).
#[derive(Debug, Clone, clap::Args)]
pub struct DataArgs {
    /// Directory for the embedded database and the model registry.
    #[arg(
        long,
        env = "VITALS_DATA_DIR",
        default_value = "./vitals-data",
        global = true
    )]
    pub data_dir: PathBuf,

    /// Database: `postgres://user@host:port/db` for PostgreSQL, or `sqlite://PATH`.
    /// Default: the embedded SQLite file `<data-dir>/vitals.db`.
    #[arg(
        long,
        env = "VITALS_DATABASE_URL",
        hide_env_values = true,
        global = true
    )]
    pub database_url: Option<String>,

    /// Most open database connections.
    #[arg(
        long,
        env = "VITALS_DB_MAX_CONNECTIONS",
        default_value_t = 16,
        global = true
    )]
    pub db_max_connections: u32,

    /// Seconds to wait for a database connection before answering UNAVAILABLE.
    #[arg(
        long,
        env = "VITALS_DB_TIMEOUT_SECS",
        default_value_t = 1.0,
        global = true
    )]
    pub db_timeout_secs: f64,

    /// A read replica (a PostgreSQL standby; a multi-host URL with
    /// `target_session_attrs=prefer-standby` works too) for what only reads: evaluations'
    /// histories, timelines, lists, portfolio metrics, refresh and training scans. Writes,
    /// and reads that must see them, stay on the database URL; a history read waits until
    /// the replica has replayed what the primary had committed when it began.
    #[arg(
        long,
        env = "VITALS_READ_DATABASE_URL",
        hide_env_values = true,
        global = true
    )]
    pub read_database_url: Option<String>,
}

impl DataArgs {
    pub fn database_url(&self) -> Result<DatabaseUrl> {
        match &self.database_url {
            Some(url) => DatabaseUrl::parse(url),
            None => Ok(DatabaseUrl::default_in(&self.data_dir)),
        }
    }

    /// The store the flags name, with its read replica when one is given.
    pub fn open_store(&self) -> Result<Store> {
        let store = Store::open(&self.database_url()?, &self.pool_options())?;
        match &self.read_database_url {
            None => Ok(store),
            Some(read) => store.with_replica(&DatabaseUrl::parse(read)?, &self.pool_options()),
        }
    }

    pub fn pool_options(&self) -> PoolOptions {
        PoolOptions {
            max_connections: self.db_max_connections.max(1),
            checkout_timeout: Duration::from_secs_f64(self.db_timeout_secs.clamp(0.05, 60.0)),
        }
    }
}
