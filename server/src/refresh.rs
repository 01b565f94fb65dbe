//! RefreshEvaluations shared between servers: every server's worker takes chunks of any
//! run in progress (`vitals_app::work_on_shared_refreshes`), whichever server the run was
//! asked of; a chunk whose server died is taken again when its lease runs out.

use std::sync::Arc;
use std::time::Duration;

use vitals_app::histories::HistoryCache;
use vitals_app::schemes::SchemeCache;
use vitals_engine::evaluation::{Models, VersionedScheme};
use vitals_store::Store;

use crate::models::ModelHub;

/// How this server takes part in shared refreshes.
#[derive(Debug, Clone)]
pub struct RefreshSettings {
    /// Who holds a lease, in the database: unique per server process.
    pub owner: String,
    /// How long a chunk stays leased to a worker that went quiet.
    pub lease: Duration,
    /// Customers per chunk of a new run.
    pub chunk_customers: usize,
    /// How often an idle worker looks for chunks.
    pub poll: Duration,
    /// This server's history cache: chunks are evaluated from the histories it holds.
    pub histories: Arc<HistoryCache>,
}

impl RefreshSettings {
    pub fn new(
        lease: Duration,
        chunk_customers: usize,
        poll: Duration,
        histories: Arc<HistoryCache>,
    ) -> Self {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "vitals".into());
        Self {
            owner: format!(
                "{host}-{}-{:016x}",
                std::process::id(),
                rand::random::<u64>()
            ),
            lease,
            chunk_customers: chunk_customers.max(1),
            poll,
            histories,
        }
    }
}

/// The models and scheme in service now, for a chunk about to be refreshed.
pub fn current(hub: &ModelHub, schemes: &SchemeCache) -> (Arc<Models>, VersionedScheme) {
    (hub.models(), schemes.current().0.clone())
}

/// Every `settings.poll`, takes chunks of the runs in progress until none is left. Runs
/// until aborted.
pub async fn work(
    store: Store,
    hub: Arc<ModelHub>,
    schemes: Arc<SchemeCache>,
    settings: RefreshSettings,
) {
    loop {
        tokio::time::sleep(settings.poll).await;
        let (store, hub, schemes, settings) = (
            store.clone(),
            hub.clone(),
            schemes.clone(),
            settings.clone(),
        );
        let worked = tokio::task::spawn_blocking(move || {
            vitals_app::work_on_shared_refreshes(
                &store,
                Some(&settings.histories),
                &settings.owner,
                settings.lease,
                &|| current(&hub, &schemes),
            )
        })
        .await;
        match worked {
            Ok(Ok(0)) => {}
            Ok(Ok(chunks)) => tracing::info!(chunks, "shared refresh: chunks done"),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "shared refresh: a chunk failed; its lease runs out and it is taken again")
            }
            Err(e) => tracing::error!(error = %e, "shared refresh worker panicked"),
        }
    }
}
