//! The models in service: loaded from the registry at start and whenever it changes,
//! checked before they are swapped in, and read without locks on the scoring path.
//!
//! Every request takes one `Arc<Models>` snapshot (`ModelHub::models`), so a request
//! never sees half of a swap; a swap is one atomic pointer store (arc-swap). A version
//! that fails its hash or schema check is refused with an error in the log, and the
//! version in service keeps serving.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use vitals_engine::evaluation::{
    CHURN_KIND, CLV_KIND, Models, SEGMENTS_KIND, TEXT_KIND, load_segments, load_text,
};
use vitals_engine::models::churn::load_churn;
use vitals_engine::models::clv::load_clv;
use vitals_engine::registry::{ModelRegistry, RegistryError};

/// The kinds the server serves, in the order they are reported.
pub const SERVED_KINDS: [&str; 4] = [CHURN_KIND, SEGMENTS_KIND, CLV_KIND, TEXT_KIND];

/// What the server knows about one kind after a reload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KindStatus {
    pub kind: String,
    pub serving: Option<u64>,
    pub active: Option<u64>,
    /// Why the active version is not serving, when it is not.
    pub problem: Option<String>,
}

/// One kind as the metrics page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServingStatus {
    pub kind: &'static str,
    pub serving: Option<u64>,
    /// The registry's active version at the last reload.
    pub active: Option<u64>,
    /// The active version, when this server refused to serve it.
    pub refused: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The version exists but cannot be served (bad hashes, unknown schema, ...).
    #[error("{kind} version {version} cannot be served: {reason}")]
    Unservable {
        kind: String,
        version: u64,
        reason: String,
    },
}

pub struct ModelHub {
    /// Where versions are published: the filesystem registry today, any
    /// [`ModelRegistry`] tomorrow.
    registry: Arc<dyn ModelRegistry>,
    models: ArcSwap<Models>,
    /// Serializes reloads and activations (never taken on the scoring path), and
    /// remembers refused versions so a bad version is logged once, not every poll.
    reloads: Mutex<BTreeMap<String, (u64, String)>>,
    /// The last reload's outcome per kind, for metrics (read without the reload lock).
    last_reload: ArcSwap<Vec<KindStatus>>,
}

impl std::fmt::Debug for ModelHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelHub")
            .field("registry", &self.registry.location())
            .finish_non_exhaustive()
    }
}

impl ModelHub {
    /// Opens the registry at `location` (a directory, created if needed, or an object
    /// store URL whose verified versions go to `cache`); loads nothing yet.
    pub fn open(location: &str, cache: &Path) -> Result<Self, HubError> {
        Ok(Self::with_registry(vitals_object_registry::open(
            location, cache,
        )?))
    }

    /// Serves from `registry`; loads nothing yet.
    pub fn with_registry(registry: Arc<dyn ModelRegistry>) -> Self {
        Self {
            registry,
            models: ArcSwap::from_pointee(Models::default()),
            reloads: Mutex::new(BTreeMap::new()),
            last_reload: ArcSwap::from_pointee(Vec::new()),
        }
    }

    /// The registry, shared: for what reads it beside the hub (the training reports).
    pub fn registry_handle(&self) -> Arc<dyn ModelRegistry> {
        self.registry.clone()
    }

    pub fn registry(&self) -> &dyn ModelRegistry {
        self.registry.as_ref()
    }

    /// The models in service now: one consistent snapshot for a whole request.
    pub fn models(&self) -> Arc<Models> {
        self.models.load_full()
    }

    pub fn serving(&self, kind: &str) -> Option<u64> {
        let models = self.models.load();
        match kind {
            CHURN_KIND => models.churn.as_ref().map(|c| c.manifest.version),
            SEGMENTS_KIND => models.segments.as_ref().map(|s| s.manifest.version),
            CLV_KIND => models.clv.as_ref().map(|c| c.manifest.version),
            TEXT_KIND => models.text.as_ref().map(|t| t.manifest.version),
            _ => None,
        }
    }

    /// Takes the reload lock. A panic while it was held leaves only the refused-version
    /// memo behind, which is safe to keep using.
    fn serialized(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, (u64, String)>> {
        match self.reloads.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Loads one version and swaps it in; the other kinds stay as they are.
    fn load_and_swap(&self, kind: &str, version: u64) -> Result<(), HubError> {
        let unservable = |reason: String| HubError::Unservable {
            kind: kind.to_owned(),
            version,
            reason,
        };
        let mut next = Models::clone(&self.models.load());
        match kind {
            CHURN_KIND => {
                let churn = load_churn(self.registry.as_ref(), version)
                    .map_err(|e| unservable(e.to_string()))?;
                next.churn = Some(Arc::new(churn));
            }
            SEGMENTS_KIND => {
                let segments = load_segments(self.registry.as_ref(), version)
                    .map_err(|e| unservable(e.to_string()))?;
                next.segments = Some(Arc::new(segments));
            }
            CLV_KIND => {
                let clv = load_clv(self.registry.as_ref(), version)
                    .map_err(|e| unservable(e.to_string()))?;
                next.clv = Some(Arc::new(clv));
            }
            TEXT_KIND => {
                let text = load_text(self.registry.as_ref(), version)
                    .map_err(|e| unservable(e.to_string()))?;
                next.text = Some(Arc::new(text));
            }
            other => {
                return Err(unservable(format!(
                    "the server serves only {SERVED_KINDS:?}, not {other:?}"
                )));
            }
        }
        self.models.store(Arc::new(next));
        Ok(())
    }

    /// Each served kind: the version in service now, and the active and refused versions
    /// as the last reload found them.
    pub fn status(&self) -> Vec<ServingStatus> {
        let last = self.last_reload.load();
        SERVED_KINDS
            .iter()
            .map(|&kind| {
                let reloaded = last.iter().find(|s| s.kind == kind);
                let active = reloaded.and_then(|s| s.active);
                ServingStatus {
                    kind,
                    serving: self.serving(kind),
                    active,
                    refused: reloaded
                        .filter(|s| s.problem.is_some() && s.serving != s.active)
                        .and(active),
                }
            })
            .collect()
    }

    /// Brings every served kind to the registry's active version. Blocking (reads and
    /// hashes files): call it off the async threads.
    pub fn reload(&self) -> Vec<KindStatus> {
        let statuses = self.reload_serialized();
        self.last_reload.store(Arc::new(statuses.clone()));
        statuses
    }

    fn reload_serialized(&self) -> Vec<KindStatus> {
        let mut refused = self.serialized();
        SERVED_KINDS
            .iter()
            .map(|&kind| {
                let serving = self.serving(kind);
                let mut status = KindStatus {
                    kind: kind.to_owned(),
                    serving,
                    active: None,
                    problem: None,
                };
                match self.registry.active(kind) {
                    Err(e) => {
                        status.problem = Some(format!("cannot read the active version: {e}"));
                        if refused.get(kind).map(|r| &r.1) != status.problem.as_ref() {
                            tracing::error!(kind, error = %e, ?serving, "cannot read the registry's active version; the version in service keeps serving");
                            refused.insert(kind.to_owned(), (0, status.problem.clone().unwrap_or_default()));
                        }
                    }
                    Ok(None) => {}
                    Ok(Some(active)) if Some(active) == serving => {
                        status.active = Some(active);
                        refused.remove(kind);
                    }
                    Ok(Some(active)) => {
                        status.active = Some(active);
                        if let Some((version, reason)) = refused.get(kind)
                            && *version == active
                        {
                            status.problem = Some(reason.clone());
                            return status;
                        }
                        match self.load_and_swap(kind, active) {
                            Ok(()) => {
                                tracing::info!(kind, version = active, previous = ?serving, "model version in service");
                                status.serving = Some(active);
                                refused.remove(kind);
                            }
                            Err(e) => {
                                tracing::error!(kind, version = active, serving = ?serving, error = %e, "refused a model version; the version in service keeps serving");
                                status.problem = Some(e.to_string());
                                refused.insert(kind.to_owned(), (active, e.to_string()));
                            }
                        }
                    }
                }
                status
            })
            .collect()
    }

    /// Makes `version` active after loading and checking it, and serves it; returns the
    /// version that was active before. Nothing changes when the version cannot be served.
    pub fn activate(
        &self,
        kind: &str,
        version: u64,
        actor: &str,
        reason: &str,
    ) -> Result<Option<u64>, HubError> {
        let _serialized = self.serialized();
        // A version that does not exist is NOT_FOUND, not "cannot be served".
        self.registry.manifest(kind, version)?;
        // Load first: only a version that can be served becomes active.
        let before = Models::clone(&self.models.load());
        self.load_and_swap(kind, version)?;
        match self.registry.activate(kind, version, actor, reason) {
            Ok(previous) => {
                tracing::info!(kind, version, ?previous, actor, "model version activated");
                Ok(previous)
            }
            Err(e) => {
                self.models.store(Arc::new(before));
                Err(e.into())
            }
        }
    }
}
