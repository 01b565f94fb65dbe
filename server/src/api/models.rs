//! `vitals.v1.ModelService`: the registry as this server sees it.

use std::sync::Arc;

use tonic::{Request, Response, Status};
use vitals_engine::registry::{Manifest, ModelRegistry, RegistryError, validate_kind};
use vitals_proto::v1 as pb;
use vitals_proto::v1::model_service_server::ModelService;

use crate::api::evaluation::ACTOR_HEADER;
use crate::audit::with_record;
use crate::auth::Caller;
use crate::error::{ApiError, invalid_field};
use crate::models::{HubError, ModelHub};

#[derive(Debug, Clone)]
pub struct ModelApi {
    hub: Arc<ModelHub>,
}

impl ModelApi {
    pub fn new(hub: Arc<ModelHub>) -> Self {
        Self { hub }
    }
}

fn from_registry(e: RegistryError) -> Status {
    ApiError::from(e).into()
}

fn from_hub(e: HubError) -> Status {
    ApiError::from(e).into()
}

/// Numbers at the top level of a manifest's metrics (nested objects are in the JSON).
fn numeric_metrics(m: &Manifest) -> std::collections::HashMap<String, f64> {
    m.metrics
        .as_object()
        .map(|o| {
            o.iter()
                .filter_map(|(k, v)| v.as_f64().map(|x| (k.clone(), x)))
                .collect()
        })
        .unwrap_or_default()
}

fn version_to_proto(
    hub: &ModelHub,
    m: &Manifest,
    active: Option<u64>,
    with_manifest: bool,
) -> pb::ModelVersion {
    pb::ModelVersion {
        kind: m.kind.clone(),
        version: m.version,
        algorithm: m.algorithm.clone(),
        created: m.created.clone(),
        active: active == Some(m.version),
        serving: hub.serving(&m.kind) == Some(m.version),
        metrics: numeric_metrics(m),
        manifest_json: if with_manifest {
            serde_json::to_string_pretty(m).unwrap_or_default()
        } else {
            String::new()
        },
    }
}

fn check_kind(kind: &str) -> Result<(), Status> {
    validate_kind(kind).map_err(|e| invalid_field("kind", e.to_string()))
}

/// Registry reads hash files and walk directories: off the async threads.
async fn off_thread<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Status> + Send + 'static,
) -> Result<T, Status> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Status::from(ApiError::Internal(format!("blocking task failed: {e}"))))?
}

fn list(
    hub: &ModelHub,
    registry: &dyn ModelRegistry,
    kind: &str,
) -> Result<Vec<pb::ModelVersion>, Status> {
    let active = registry.active(kind).map_err(from_registry)?;
    let mut out = Vec::new();
    for version in registry.versions(kind).map_err(from_registry)? {
        // A version whose manifest cannot be read is listed by number only, so a bad
        // file never hides the good ones.
        match registry.manifest(kind, version) {
            Ok(m) => out.push(version_to_proto(hub, &m, active, false)),
            Err(e) => {
                tracing::warn!(kind, version, error = %e, "unreadable manifest");
                out.push(pb::ModelVersion {
                    kind: kind.to_owned(),
                    version,
                    algorithm: format!("(unreadable manifest: {e})"),
                    active: active == Some(version),
                    ..Default::default()
                });
            }
        }
    }
    Ok(out)
}

#[tonic::async_trait]
impl ModelService for ModelApi {
    async fn list_models(
        &self,
        request: Request<pb::ListModelsRequest>,
    ) -> Result<Response<pb::ListModelsResponse>, Status> {
        let kind = request.into_inner().kind;
        if !kind.is_empty() {
            check_kind(&kind)?;
        }
        let hub = self.hub.clone();
        let models = off_thread(move || {
            let registry = hub.registry();
            let kinds = if kind.is_empty() {
                registry.kinds().map_err(from_registry)?
            } else {
                vec![kind]
            };
            let mut out = Vec::new();
            for kind in kinds {
                out.extend(list(&hub, registry, &kind)?);
            }
            Ok(out)
        })
        .await?;
        Ok(Response::new(pb::ListModelsResponse { models }))
    }

    async fn get_model(
        &self,
        request: Request<pb::GetModelRequest>,
    ) -> Result<Response<pb::ModelVersion>, Status> {
        let request = request.into_inner();
        check_kind(&request.kind)?;
        let hub = self.hub.clone();
        let model = off_thread(move || {
            let registry = hub.registry();
            let active = registry.active(&request.kind).map_err(from_registry)?;
            let version = match (request.version, active) {
                (0, Some(v)) => v,
                (0, None) => {
                    return Err(ApiError::NotFound(format!(
                        "model kind {:?} has no active version",
                        request.kind
                    ))
                    .into());
                }
                (v, _) => v,
            };
            let m = registry
                .manifest(&request.kind, version)
                .map_err(from_registry)?;
            Ok(version_to_proto(&hub, &m, active, true))
        })
        .await?;
        Ok(Response::new(model))
    }

    async fn activate_model(
        &self,
        request: Request<pb::ActivateModelRequest>,
    ) -> Result<Response<pb::ActivateModelResponse>, Status> {
        let caller = Caller::of(&request);
        let header_actor = request
            .metadata()
            .get(ACTOR_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let request = request.into_inner();
        check_kind(&request.kind)?;
        if request.version == 0 {
            return Err(invalid_field("version", "is required"));
        }
        // An authenticated caller is who they are; without keys, the caller may say.
        let actor = if caller.is_anonymous() {
            header_actor
                .or_else(|| (!request.actor.is_empty()).then(|| request.actor.clone()))
                .unwrap_or_else(|| "unknown".to_owned())
        } else {
            caller.name
        };
        let reason = if request.reason.is_empty() {
            "ActivateModel".to_owned()
        } else {
            request.reason.clone()
        };
        let (kind, version) = (request.kind.clone(), request.version);
        let hub = self.hub.clone();
        let response = off_thread(move || {
            let previous = hub
                .activate(&request.kind, request.version, &actor, &reason)
                .map_err(from_hub)?;
            let registry = hub.registry();
            let m = registry
                .manifest(&request.kind, request.version)
                .map_err(from_registry)?;
            Ok(pb::ActivateModelResponse {
                previous_version: previous.unwrap_or(0),
                model: Some(version_to_proto(&hub, &m, Some(request.version), false)),
            })
        })
        .await?;
        Ok(with_record(
            Response::new(response),
            format!("{kind} v{version}"),
        ))
    }

    async fn reload_models(
        &self,
        _request: Request<pb::ReloadModelsRequest>,
    ) -> Result<Response<pb::ReloadModelsResponse>, Status> {
        let hub = self.hub.clone();
        let kinds = off_thread(move || Ok(hub.reload())).await?;
        Ok(Response::new(pb::ReloadModelsResponse {
            kinds: kinds
                .into_iter()
                .map(|k| pb::KindStatus {
                    kind: k.kind,
                    serving_version: k.serving.unwrap_or(0),
                    active_version: k.active.unwrap_or(0),
                    problem: k.problem.unwrap_or_default(),
                })
                .collect(),
        }))
    }

    async fn list_activations(
        &self,
        request: Request<pb::ListActivationsRequest>,
    ) -> Result<Response<pb::ListActivationsResponse>, Status> {
        let kind = request.into_inner().kind;
        check_kind(&kind)?;
        let hub = self.hub.clone();
        let activations = off_thread(move || {
            let history = hub.registry().history(&kind).map_err(from_registry)?;
            Ok(history
                .into_iter()
                .map(|a| pb::Activation {
                    kind: kind.clone(),
                    version: a.version,
                    previous_version: a.previous.unwrap_or(0),
                    time: chrono::DateTime::parse_from_rfc3339(&a.time).ok().map(|t| {
                        prost_types::Timestamp {
                            seconds: t.timestamp(),
                            nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0),
                        }
                    }),
                    actor: a.actor,
                    reason: a.reason,
                })
                .collect())
        })
        .await?;
        Ok(Response::new(pb::ListActivationsResponse { activations }))
    }
}
