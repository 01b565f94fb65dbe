//! The scoring scheme in force, kept in memory for scoring.

use std::sync::Arc;

use arc_swap::ArcSwap;
use vitals_domain::evaluation::{ScoringScheme, VersionedScheme};
use vitals_store::{Store, StoreError, StoredScheme};

/// The scoring scheme in force, cached so scoring never waits on the database; replaced
/// on update and on every registry poll (another server may have updated it).
#[derive(Debug)]
pub struct SchemeCache {
    current: ArcSwap<(VersionedScheme, StoredScheme)>,
}

impl SchemeCache {
    /// Reads the latest scheme, storing the default as version 1 on a new database. A
    /// database that cannot be reached at start does not stop the server: the built-in
    /// default serves as version 0 until a poll reads the stored one.
    pub fn load(store: &Store) -> Self {
        let current = store.scheme_in_force().unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot read the scoring scheme yet; using the built-in default as version 0");
            (
                VersionedScheme {
                    version: 0,
                    scheme: ScoringScheme::default(),
                },
                StoredScheme {
                    version: 0,
                    body: String::new(),
                    actor: "vitals (built-in default)".into(),
                    create_time: 0,
                },
            )
        });
        Self {
            current: ArcSwap::from_pointee(current),
        }
    }

    pub fn current(&self) -> Arc<(VersionedScheme, StoredScheme)> {
        self.current.load_full()
    }

    /// Re-reads the latest version (blocking).
    pub fn refresh(&self, store: &Store) -> Result<(), StoreError> {
        let latest = store.scheme_in_force()?;
        if latest.1.version != self.current.load().1.version {
            tracing::info!(version = latest.1.version, "scoring scheme in force");
            self.current.store(Arc::new(latest));
        }
        Ok(())
    }
}
