//! Opening the database (embedded SQLite or PostgreSQL, chosen by URL), pooling
//! connections, applying migrations, and running one piece of query code on either.

use std::path::{Path, PathBuf};
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool};
use diesel::sqlite::SqliteConnection;
use diesel::{Connection, RunQueryDsl};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::error::{Result, StoreError};

const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations/postgres");
const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations/sqlite");

/// The PostgreSQL advisory lock held while migrating: this class (a number no other
/// program on the database uses; "vita" in ASCII) and the hash of the schema migrated, so
/// databases' schemas migrate independently and two servers on one schema take turns.
const MIGRATION_LOCK: &str = "1986622561, hashtext(current_schema())";

/// Which database a URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Postgres(String),
    /// A file path for the embedded database.
    Sqlite(PathBuf),
}

impl DatabaseUrl {
    /// `postgres://` or `postgresql://` URLs name PostgreSQL; `sqlite://PATH`, `sqlite:PATH`
    /// or a bare path name an SQLite file.
    pub fn parse(url: &str) -> Result<Self> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres(url.to_owned()));
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        if path.is_empty() || path.contains("://") {
            return Err(StoreError::invalid(
                "database_url",
                format!(
                    "expected postgres://..., sqlite://PATH or a file path, got {:?}",
                    redact_url(url)
                ),
            ));
        }
        Ok(Self::Sqlite(PathBuf::from(path)))
    }

    /// The default embedded database inside a data directory.
    pub fn default_in(data_dir: &Path) -> Self {
        Self::Sqlite(data_dir.join("vitals.db"))
    }
}

/// The URL with any password replaced, safe to log.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            if userinfo.contains(':') {
                format!("{scheme}://{user}:***@{host}")
            } else {
                format!("{scheme}://{user}@{host}")
            }
        }
        None => url.to_owned(),
    }
}

/// Pool settings.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    pub max_connections: u32,
    /// How long a caller waits for a connection before the database counts as unavailable.
    pub checkout_timeout: Duration,
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            checkout_timeout: Duration::from_secs(2),
        }
    }
}

#[derive(Clone)]
pub(crate) enum DbPool {
    Postgres(Pool<ConnectionManager<PgConnection>>),
    Sqlite(Pool<ConnectionManager<SqliteConnection>>),
}

/// The database: cheap to clone, safe to share between threads. Every method blocks;
/// async callers run them on `spawn_blocking`.
#[derive(Clone)]
pub struct Store {
    pub(crate) pool: DbPool,
    /// PostgreSQL's URL, for connections outside the pool (the server's change listener).
    postgres_url: Option<std::sync::Arc<str>>,
    /// Callers waiting for a pooled connection now (the server's metrics).
    waiting: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// A read replica for what only reads (`reader`, `fresh_reader`); None: the primary
    /// reads too.
    replica: Option<std::sync::Arc<Store>>,
}

/// How long a read waits for the replica to replay what the primary had committed when
/// the read began, before it reads the primary instead.
const REPLICA_CATCH_UP: Duration = Duration::from_secs(2);

/// Makes every transaction of a replica's connection read-only: a write sent to the
/// read pool by mistake fails loudly instead of reaching a primary behind a multi-host
/// URL.
#[derive(Debug)]
struct ReadOnlySessions;

impl CustomizeConnection<PgConnection, diesel::r2d2::Error> for ReadOnlySessions {
    fn on_acquire(&self, conn: &mut PgConnection) -> std::result::Result<(), diesel::r2d2::Error> {
        conn.batch_execute("SET default_transaction_read_only = on")
            .map_err(diesel::r2d2::Error::QueryError)
    }
}

/// The connection pool now, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// The most connections the pool opens.
    pub max: u32,
    /// Connections open (in use or idle).
    pub open: u32,
    pub idle: u32,
    /// Callers waiting for a connection.
    pub waiting: usize,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend_name())
            .finish_non_exhaustive()
    }
}

/// SQLite settings every pooled connection needs: WAL so readers never block the writer,
/// a busy timeout instead of immediate "database is locked", and enforced foreign keys.
#[derive(Debug)]
struct SqlitePragmas;

impl CustomizeConnection<SqliteConnection, diesel::r2d2::Error> for SqlitePragmas {
    fn on_acquire(&self, conn: &mut SqliteConnection) -> Result<(), diesel::r2d2::Error> {
        conn.batch_execute(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
             PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;",
        )
        .map_err(diesel::r2d2::Error::QueryError)
    }
}

impl Store {
    /// Opens a pool on the database. Nothing is connected yet for PostgreSQL, so a server
    /// can start while its database is briefly down; SQLite's file is created if missing.
    pub fn open(url: &DatabaseUrl, options: &PoolOptions) -> Result<Self> {
        let pool = match url {
            DatabaseUrl::Postgres(url) => DbPool::Postgres(
                Pool::builder()
                    .max_size(options.max_connections)
                    .min_idle(Some(0))
                    .connection_timeout(options.checkout_timeout)
                    .build_unchecked(ConnectionManager::new(url.clone())),
            ),
            DatabaseUrl::Sqlite(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        StoreError::Unavailable(format!("cannot create {}: {e}", dir.display()))
                    })?;
                }
                let path = path.to_string_lossy().into_owned();
                DbPool::Sqlite(
                    Pool::builder()
                        .max_size(options.max_connections.clamp(1, 8))
                        .min_idle(Some(0))
                        .connection_timeout(options.checkout_timeout)
                        .connection_customizer(Box::new(SqlitePragmas))
                        .build_unchecked(ConnectionManager::new(path)),
                )
            }
        };
        let postgres_url = match url {
            DatabaseUrl::Postgres(url) => Some(std::sync::Arc::from(url.as_str())),
            DatabaseUrl::Sqlite(_) => None,
        };
        Ok(Self {
            pool,
            postgres_url,
            waiting: std::sync::Arc::default(),
            replica: None,
        })
    }

    /// This store with a read replica (a PostgreSQL standby, or a multi-host URL with
    /// `target_session_attrs=prefer-standby`) for what only reads. Its sessions are
    /// read-only. Refused on SQLite and for a URL that is not PostgreSQL.
    pub fn with_replica(mut self, url: &DatabaseUrl, options: &PoolOptions) -> Result<Self> {
        let (DbPool::Postgres(_), DatabaseUrl::Postgres(read)) = (&self.pool, url) else {
            return Err(StoreError::invalid(
                "read_database_url",
                "a read replica is for PostgreSQL: both the database URL and the read URL \
                 must be postgres:// URLs",
            ));
        };
        let pool = Pool::builder()
            .max_size(options.max_connections)
            .min_idle(Some(0))
            .connection_timeout(options.checkout_timeout)
            .connection_customizer(Box::new(ReadOnlySessions))
            .build_unchecked(ConnectionManager::new(read.clone()));
        self.replica = Some(std::sync::Arc::new(Self {
            pool: DbPool::Postgres(pool),
            postgres_url: Some(std::sync::Arc::from(read.as_str())),
            waiting: std::sync::Arc::default(),
            replica: None,
        }));
        Ok(self)
    }

    /// Whether reads go to a replica.
    pub fn has_replica(&self) -> bool {
        self.replica.is_some()
    }

    /// Where what only reads and may lag a little goes (lists of stored snapshots,
    /// portfolio metrics): the replica when there is one, else this store.
    pub fn reader(&self) -> Store {
        self.replica
            .as_deref()
            .map_or_else(|| self.clone(), Clone::clone)
    }

    /// Where a read that must see every write committed before it goes: the replica once
    /// it has replayed the primary's WAL position taken now (a writer reads its own
    /// writes; a history read after a change notice sees the change), or the primary when
    /// the replica is not there within two seconds. Without a replica, this store.
    pub fn fresh_reader(&self) -> Result<Store> {
        let Some(replica) = self.replica.as_deref() else {
            return Ok(self.clone());
        };
        let DbPool::Postgres(primary) = &self.pool else {
            return Ok(self.clone());
        };
        let position: String = {
            let mut conn = self.checkout(primary)?;
            diesel::select(diesel::dsl::sql::<diesel::sql_types::Text>(
                "pg_current_wal_lsn()::text",
            ))
            .get_result(&mut conn)?
        };
        let DbPool::Postgres(pool) = &replica.pool else {
            return Ok(self.clone());
        };
        let started = std::time::Instant::now();
        let mut pause = Duration::from_micros(200);
        loop {
            let caught_up: bool = {
                let mut conn = replica.checkout(pool)?;
                // NULL when the read URL is not a standby at all: nothing to wait for.
                diesel::select(diesel::dsl::sql::<diesel::sql_types::Bool>(&format!(
                    "COALESCE(pg_last_wal_replay_lsn() >= '{position}'::pg_lsn, true)"
                )))
                .get_result(&mut conn)?
            };
            if caught_up {
                return Ok(replica.clone());
            }
            if started.elapsed() >= REPLICA_CATCH_UP {
                tracing::warn!(
                    %position,
                    "the read replica is more than {}s behind: reading the primary",
                    REPLICA_CATCH_UP.as_secs()
                );
                return Ok(self.clone());
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }

    /// A pooled connection, counted among the waiting callers while it is awaited.
    pub(crate) fn checkout<M: diesel::r2d2::ManageConnection>(
        &self,
        pool: &Pool<M>,
    ) -> std::result::Result<diesel::r2d2::PooledConnection<M>, diesel::r2d2::PoolError> {
        use std::sync::atomic::Ordering;
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let conn = pool.get();
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        conn
    }

    /// Connections open, idle and awaited now.
    pub fn pool_stats(&self) -> PoolStats {
        let (max, state) = match &self.pool {
            DbPool::Postgres(pool) => (pool.max_size(), pool.state()),
            DbPool::Sqlite(pool) => (pool.max_size(), pool.state()),
        };
        PoolStats {
            max,
            open: state.connections,
            idle: state.idle_connections,
            waiting: self.waiting.load(std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// The PostgreSQL URL this store connects with (`None` on SQLite), for a connection
    /// that must live outside the pool, such as one that LISTENs.
    pub fn postgres_url(&self) -> Option<&str> {
        self.postgres_url.as_deref()
    }

    pub(crate) fn is_postgres(&self) -> bool {
        matches!(self.pool, DbPool::Postgres(_))
    }

    pub fn backend_name(&self) -> &'static str {
        match self.pool {
            DbPool::Postgres(_) => "postgres",
            DbPool::Sqlite(_) => "sqlite",
        }
    }

    /// Applies every pending migration; returns the names of those applied.
    pub fn migrate(&self) -> Result<Vec<String>> {
        let applied = match &self.pool {
            DbPool::Postgres(pool) => {
                let mut conn = self.checkout(pool)?;
                // diesel takes no lock: two servers starting at once on an empty database
                // would both create its tables and one would fail. A session-level
                // advisory lock makes the second wait, then find nothing left to apply.
                conn.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))?;
                let applied = conn
                    .run_pending_migrations(PG_MIGRATIONS)
                    .map(|applied| applied.iter().map(ToString::to_string).collect::<Vec<_>>());
                // Released before the connection returns to the pool, whatever happened.
                conn.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"))?;
                applied.map_err(|e| StoreError::Internal(format!("migration failed: {e}")))?
            }
            DbPool::Sqlite(pool) => {
                let mut conn = self.checkout(pool)?;
                conn.run_pending_migrations(SQLITE_MIGRATIONS)
                    .map_err(|e| StoreError::Internal(format!("migration failed: {e}")))?
                    .iter()
                    .map(ToString::to_string)
                    .collect()
            }
        };
        Ok(applied)
    }

    /// Checks that the database answers.
    pub fn ping(&self) -> Result<()> {
        with_conn!(self, conn => {
            diesel::sql_query("SELECT 1").execute(conn)?;
            Ok(())
        })
    }
}

/// Runs `$body` with `$conn` bound to a pooled connection of whichever backend the
/// store uses. The body is compiled once per backend, so one piece of query code
/// serves both, with each backend's full diesel feature set.
macro_rules! with_conn {
    ($store:expr, $conn:ident => $body:expr) => {
        match &$store.pool {
            $crate::db::DbPool::Postgres(pool) => {
                let mut pooled = $store.checkout(pool)?;
                let $conn: &mut ::diesel::pg::PgConnection = &mut pooled;
                $body
            }
            $crate::db::DbPool::Sqlite(pool) => {
                let mut pooled = $store.checkout(pool)?;
                let $conn: &mut ::diesel::sqlite::SqliteConnection = &mut pooled;
                $body
            }
        }
    };
}
pub(crate) use with_conn;

/// A write transaction. On SQLite it takes the write lock up front (`BEGIN IMMEDIATE`),
/// so two writers never deadlock upgrading read locks; on PostgreSQL it is a plain one.
pub(crate) trait WriteTransaction: Connection {
    fn write_transaction<T, F>(&mut self, f: F) -> Result<T>
    where
        F: FnOnce(&mut Self) -> Result<T>;
}

impl WriteTransaction for PgConnection {
    fn write_transaction<T, F>(&mut self, f: F) -> Result<T>
    where
        F: FnOnce(&mut Self) -> Result<T>,
    {
        self.transaction(f)
    }
}

impl WriteTransaction for SqliteConnection {
    fn write_transaction<T, F>(&mut self, f: F) -> Result<T>
    where
        F: FnOnce(&mut Self) -> Result<T>,
    {
        self.immediate_transaction(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        assert_eq!(
            DatabaseUrl::parse("sqlite://./vitals-data/vitals.db").ok(),
            Some(DatabaseUrl::Sqlite("./vitals-data/vitals.db".into()))
        );
        assert_eq!(
            DatabaseUrl::parse("data.db").ok(),
            Some(DatabaseUrl::Sqlite("data.db".into()))
        );
        assert!(matches!(
            DatabaseUrl::parse("postgresql://u@h/db"),
            Ok(DatabaseUrl::Postgres(_))
        ));
        assert!(DatabaseUrl::parse("mysql://x").is_err());
        assert!(DatabaseUrl::parse("").is_err());
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
    }
}
