//! `vitals.v1.EvaluationService`: evaluations on demand, in batches and as stored
//! snapshots, what-if scoring, segments, and the scoring scheme.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use vitals_app::histories::{HistoryCache, HistoryLoader};
use vitals_app::schemes::SchemeCache;
use vitals_domain::Violations;
use vitals_domain::features::RawFeatures;
use vitals_domain::labels::Population;
use vitals_domain::time::{Micros, now_micros};
use vitals_domain::{Customer, StoredEvent};
use vitals_engine::evaluation::{
    ChurnAssessment, Evaluation, Models, VersionedScheme, assess_churn, assess_churn_row, evaluate,
};
use vitals_proto::v1 as pb;
use vitals_proto::v1::evaluation_service_server::EvaluationService;
use vitals_store::{AtRiskOrder, AtRiskQuery, CustomerLookup, Store, StoreError, page};

use super::customers::shown_name;
use super::evaluation_proto::{
    behaviour_from_proto, evaluation_to_proto, factors_to_proto, scheme_from_proto, scheme_to_proto,
};
use super::language_of;
use crate::audit::with_record;
use crate::auth::{Caller, Role};
use crate::convert::{attributes_from_proto, micros, status_filter};
use crate::error::{ApiError, blocking, check, check_id, from_store, invalid_field};
use crate::models::ModelHub;
use vitals_domain::words::Language;
use vitals_store::snapshots::parse_scheme;

/// Most ids one EvaluateCustomers call may list.
pub const MAX_EVALUATE_IDS: usize = 10_000;
/// Customers read per chunk by batch evaluation and refresh.
const SCAN_CHUNK: usize = 2_000;
/// Header naming who makes a change, until authentication does.
pub const ACTOR_HEADER: &str = "x-vitals-actor";

/// Who makes a change: the API key's name, or without keys the actor header.
pub fn actor_of<T>(request: &Request<T>) -> String {
    let caller = Caller::of(request);
    if caller.is_anonymous() {
        request
            .metadata()
            .get(ACTOR_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("unknown")
            .to_owned()
    } else {
        caller.name
    }
}

/// The response header that says where an evaluation's history came from (`memory` or
/// `database`): for operators and tests, the answer is the same either way.
pub const HISTORY_SOURCE_HEADER: &str = "vitals-history-source";

#[derive(Debug, Clone)]
pub struct EvaluationApi {
    store: Store,
    hub: Arc<ModelHub>,
    schemes: Arc<SchemeCache>,
    /// How this server takes part in refreshes shared between servers.
    refresh: crate::refresh::RefreshSettings,
    metrics: Arc<crate::metrics::Metrics>,
    /// Concurrent `EvaluateCustomer` reads, gathered into shared database reads.
    histories: HistoryLoader,
}

impl EvaluationApi {
    pub fn new(
        store: Store,
        hub: Arc<ModelHub>,
        schemes: Arc<SchemeCache>,
        cache: Arc<HistoryCache>,
        metrics: Arc<crate::metrics::Metrics>,
        refresh: crate::refresh::RefreshSettings,
    ) -> Self {
        Self {
            histories: HistoryLoader::start(store.clone(), cache),
            store,
            hub,
            schemes,
            refresh,
            metrics,
        }
    }
}

fn as_of(field: &str, ts: Option<&prost_types::Timestamp>) -> Result<Micros, Status> {
    match ts {
        None => Ok(now_micros()),
        Some(ts) => {
            let mut v = Violations::new();
            let m = micros(&mut v, field, ts);
            check(v)?;
            m.ok_or_else(|| invalid_field(field, "is not a valid timestamp"))
        }
    }
}

/// One evaluation as the caller may see it (`pii`: whether they may see names).
fn evaluate_one(
    customer: &Customer,
    events: &[StoredEvent],
    as_of: Micros,
    models: &Models,
    scheme: &VersionedScheme,
    pii: bool,
    lang: Language,
) -> pb::Evaluation {
    let mut e = evaluation_to_proto(
        &evaluate(customer, events, as_of, models, scheme, now_micros()),
        lang,
    );
    e.display_name = shown_name(
        customer.data.display_name.as_deref(),
        &customer.data.external_id,
        pii,
    );
    e
}

fn score_response(
    a: &ChurnAssessment,
    currency: Option<&str>,
    lang: Language,
) -> pb::ScoreFeaturesResponse {
    pb::ScoreFeaturesResponse {
        churn_probability: a.probability,
        risk_band: a.band.clone(),
        raising: factors_to_proto(&a.raising, currency, lang),
        lowering: factors_to_proto(&a.lowering, currency, lang),
        model_version: a.model_version,
    }
}

type EvaluationStream = ReceiverStream<Result<pb::Evaluation, Status>>;
type ProgressStream = ReceiverStream<Result<pb::RefreshEvaluationsProgress, Status>>;

fn versions(models: &Models, scheme: &VersionedScheme) -> pb::ModelVersions {
    pb::ModelVersions {
        churn: models.churn.as_ref().map_or(0, |c| c.manifest.version),
        segments: models.segments.as_ref().map_or(0, |s| s.manifest.version),
        scoring_scheme: scheme.version,
        clv: models.clv.as_ref().map_or(0, |c| c.manifest.version),
        text: models.text.as_ref().map_or(0, |t| t.manifest.version),
    }
}

/// One page of stored snapshots (the at-risk or the win-back list) as the caller may
/// see them, with the page token for the next.
async fn stored_list(
    store: &Store,
    query: AtRiskQuery,
    pii: bool,
    lang: Language,
) -> Result<(Vec<pb::Evaluation>, String), Status> {
    let store = store.clone();
    let (page, names) = blocking(move || {
        // Stored snapshots may lag a little: the read replica when there is one.
        let store = store.reader();
        let page = store.list_at_risk(&query)?;
        let ids: Vec<&str> = page.items.iter().map(|r| r.customer_id.as_str()).collect();
        let names = store.names_of(&ids)?;
        Ok::<_, StoreError>((page, names))
    })
    .await?;
    let evaluations = page
        .items
        .iter()
        .map(|r| {
            serde_json::from_str::<Evaluation>(&r.body)
                .map(|e| {
                    let mut e = evaluation_to_proto(&e, lang);
                    e.display_name = shown_name(
                        names
                            .get(&r.customer_id)
                            .and_then(|n| n.display_name.as_deref()),
                        &r.external_id,
                        pii,
                    );
                    e
                })
                .map_err(|e| {
                    tracing::error!(customer_id = %r.customer_id, error = %e, "stored evaluation unreadable");
                    Status::from(ApiError::Unreadable(
                        "a stored evaluation is unreadable; run RefreshEvaluations".into(),
                    ))
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((evaluations, page.next_page_token.unwrap_or_default()))
}

impl EvaluationApi {
    /// ScoreFeatures on a real customer: their features now, the request's overriding.
    async fn what_if(
        &self,
        churn: &Arc<vitals_engine::models::churn::LoadedChurn>,
        request: pb::ScoreFeaturesRequest,
        lang: Language,
    ) -> Result<Response<pb::ScoreFeaturesResponse>, Status> {
        let id = request.customer_external_id.clone();
        check_id("customer_external_id", &id)?;
        if !request.model_input.is_empty() {
            return Err(invalid_field(
                "model_input",
                "give either customer_external_id or model_input, not both",
            ));
        }
        let mut v = Violations::new();
        let overrides = behaviour_from_proto(&mut v, &request.features);
        let attributes = attributes_from_proto(&mut v, "", &request.attributes);
        check(v)?;
        let now = now_micros();
        let ((mut raw, currency, population), _) = self
            .histories
            .load_then(CustomerLookup::ExternalId(id), move |customer, events| {
                (
                    RawFeatures::of(&customer.data, events, now),
                    vitals_domain::features::currency_of(&customer.data, events, now),
                    Population::of(&customer.data),
                )
            })
            .await
            .map_err(from_store)?;
        if !request.population.is_empty() && request.population != population.as_str() {
            return Err(invalid_field(
                "population",
                format!(
                    "the customer is one of the {}: leave it empty or say {}",
                    population.label(Language::English),
                    population.as_str()
                ),
            ));
        }
        for (i, value) in overrides.iter().enumerate() {
            if value.is_finite() {
                raw.behaviour[i] = *value;
            }
        }
        raw.attributes.extend(attributes);
        let model = churn.for_population(population).ok_or_else(|| {
            ApiError::FailedPrecondition(format!(
                "churn version {} has no model for {}",
                churn.manifest.version,
                population.label(Language::English)
            ))
        })?;
        let assessment = assess_churn(churn, model, &raw, currency.as_deref());
        Ok(Response::new(score_response(
            &assessment,
            currency.as_deref(),
            lang,
        )))
    }
}

#[tonic::async_trait]
impl EvaluationService for EvaluationApi {
    #[tracing::instrument(skip_all)]
    async fn evaluate_customer(
        &self,
        request: Request<pb::EvaluateCustomerRequest>,
    ) -> Result<Response<pb::Evaluation>, Status> {
        use pb::evaluate_customer_request::Lookup;
        let pii = Caller::of(&request).can(Role::PiiReader);
        let lang = language_of(&request);
        let request = request.into_inner();
        let as_of = as_of("as_of", request.as_of.as_ref())?;
        let lookup = match request.lookup {
            Some(Lookup::CustomerId(id)) => {
                check_id("customer_id", &id)?;
                CustomerLookup::Id(id)
            }
            Some(Lookup::ExternalId(id)) => {
                check_id("external_id", &id)?;
                CustomerLookup::ExternalId(id)
            }
            None => {
                return Err(invalid_field(
                    "customer_id",
                    "give customer_id or external_id",
                ));
            }
        };
        let models = self.hub.models();
        let scheme = self.schemes.current();
        let (evaluation, source) = self
            .histories
            .load_then(lookup, move |customer, events| {
                evaluate_one(customer, events, as_of, &models, &scheme.0, pii, lang)
            })
            .await
            .map_err(from_store)?;
        let mut response = Response::new(evaluation);
        response.metadata_mut().insert(
            HISTORY_SOURCE_HEADER,
            tonic::metadata::MetadataValue::from_static(source.as_str()),
        );
        Ok(response)
    }

    type EvaluateCustomersStream = EvaluationStream;

    #[tracing::instrument(skip_all)]
    async fn evaluate_customers(
        &self,
        request: Request<pb::EvaluateCustomersRequest>,
    ) -> Result<Response<Self::EvaluateCustomersStream>, Status> {
        let pii = Caller::of(&request).can(Role::PiiReader);
        let lang = language_of(&request);
        let request = request.into_inner();
        let as_of = as_of("as_of", request.as_of.as_ref())?;
        let mut v = Violations::new();
        let status = status_filter(&mut v, "status", request.status);
        if request.customer_ids.len() > MAX_EVALUATE_IDS {
            v.push(
                "customer_ids",
                format!(
                    "at most {MAX_EVALUATE_IDS} ids per call, got {}",
                    request.customer_ids.len()
                ),
            );
        }
        for (i, id) in request.customer_ids.iter().enumerate() {
            vitals_domain::validate::check_id(&mut v, &format!("customer_ids[{i}]"), id);
        }
        check(v)?;

        let store = self.store.clone();
        let models = self.hub.models();
        let scheme = self.schemes.current();
        let ids = request.customer_ids;
        // Every listed customer must exist before anything streams, so a typo fails the
        // call instead of cutting a stream short.
        let customers = if ids.is_empty() {
            None
        } else {
            let store = store.clone();
            Some(
                blocking(move || {
                    ids.iter()
                        .map(|id| store.get_customer(id))
                        .collect::<Result<Vec<_>, _>>()
                })
                .await?,
            )
        };
        let region = (!request.region.is_empty()).then_some(request.region);
        let (tx, rx) = mpsc::channel(256);
        tokio::task::spawn_blocking(move || {
            let send = |e: Result<pb::Evaluation, Status>| tx.blocking_send(e).is_ok();
            let scheme = &scheme.0;
            // Histories as of every write committed before the call.
            let store = match store.fresh_reader() {
                Ok(reader) => reader,
                Err(e) => {
                    send(Err(from_store(e)));
                    return;
                }
            };
            if let Some(customers) = customers {
                for customer in customers {
                    let item = store
                        .customer_history(customer)
                        .map(|h| {
                            evaluate_one(&h.customer, &h.events, as_of, &models, scheme, pii, lang)
                        })
                        .map_err(from_store);
                    if !send(item) {
                        return;
                    }
                }
                return;
            }
            let scanned = store.scan_histories(SCAN_CHUNK, |histories| {
                for h in histories {
                    let wanted = status.is_none_or(|s| h.customer.data.status == s)
                        && region.as_ref().is_none_or(|r| &h.customer.data.region == r);
                    if wanted
                        && !send(Ok(evaluate_one(
                            &h.customer,
                            &h.events,
                            as_of,
                            &models,
                            scheme,
                            pii,
                            lang,
                        )))
                    {
                        // The caller went away: stop reading.
                        return Ok(ControlFlow::Break(()));
                    }
                }
                Ok(ControlFlow::Continue(()))
            });
            if let Err(e) = scanned {
                send(Err(from_store(e)));
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    #[tracing::instrument(skip_all)]
    async fn score_features(
        &self,
        request: Request<pb::ScoreFeaturesRequest>,
    ) -> Result<Response<pb::ScoreFeaturesResponse>, Status> {
        let lang = language_of(&request);
        let request = request.into_inner();
        let models = self.hub.models();
        let Some(churn) = models.churn.as_ref() else {
            return Err(ApiError::FailedPrecondition(
                "no churn model is active: run `vitals-trainer train --activate`, or ActivateModel"
                    .into(),
            )
            .into());
        };
        let version = churn.manifest.version;
        if !request.customer_external_id.is_empty() {
            return self.what_if(churn, request, lang).await;
        }
        let model = if request.population.is_empty() {
            match churn.populations.as_slice() {
                [only] => only,
                _ => {
                    return Err(invalid_field(
                        "population",
                        format!(
                            "churn version {version} has a model per population: say which, \
                             contractual or non_contractual"
                        ),
                    ));
                }
            }
        } else {
            let population = Population::parse(&request.population).ok_or_else(|| {
                invalid_field(
                    "population",
                    format!(
                        "{:?} is not a population: contractual or non_contractual",
                        request.population
                    ),
                )
            })?;
            churn.for_population(population).ok_or_else(|| {
                invalid_field(
                    "population",
                    format!(
                        "churn version {version} has no model for {}",
                        population.label(Language::English)
                    ),
                )
            })?
        };
        if !request.model_input.is_empty() {
            if !request.features.is_empty() || !request.attributes.is_empty() {
                return Err(invalid_field(
                    "model_input",
                    "give either model_input or features/attributes, not both",
                ));
            }
            let n = model.schema.len();
            if request.model_input.len() != n {
                return Err(invalid_field(
                    "model_input",
                    format!(
                        "churn version {version} takes {n} inputs, got {}",
                        request.model_input.len()
                    ),
                ));
            }
            if request.model_input.iter().any(|x| !x.is_finite()) {
                return Err(invalid_field("model_input", "every input must be finite"));
            }
            let row: Vec<f32> = request.model_input.iter().map(|&x| x as f32).collect();
            return Ok(Response::new(score_response(
                &assess_churn_row(churn, model, &row, None, None),
                None,
                lang,
            )));
        }
        let mut v = Violations::new();
        let behaviour = behaviour_from_proto(&mut v, &request.features);
        let attributes = attributes_from_proto(&mut v, "", &request.attributes);
        check(v)?;
        let assessment = assess_churn(
            churn,
            model,
            &RawFeatures {
                behaviour,
                attributes,
            },
            // A bare feature record names no currency: amounts are shown as numbers.
            None,
        );
        Ok(Response::new(score_response(&assessment, None, lang)))
    }

    type RefreshEvaluationsStream = ProgressStream;

    #[tracing::instrument(skip_all)]
    async fn refresh_evaluations(
        &self,
        request: Request<pb::RefreshEvaluationsRequest>,
    ) -> Result<Response<Self::RefreshEvaluationsStream>, Status> {
        let as_of = as_of("as_of", request.into_inner().as_of.as_ref())?;
        // One run at a time across every server on this database: the run is cut into
        // chunks that every server's worker takes (`crate::refresh`), this one included.
        let run = {
            let (store, chunk) = (self.store.clone(), self.refresh.chunk_customers);
            blocking(move || store.start_refresh_run(as_of, chunk, now_micros())).await?
        };
        let store = self.store.clone();
        let (hub, schemes) = (self.hub.clone(), self.schemes.clone());
        let models = self.hub.models();
        let scheme = self.schemes.current();
        let metrics = self.metrics.clone();
        let settings = self.refresh.clone();
        let (tx, rx) = mpsc::channel(16);
        tokio::task::spawn_blocking(move || {
            metrics.refresh_running.set(1);
            metrics.refresh_customers_done.set(0);
            metrics.refresh_customers_total.set(0);
            let started = Instant::now();
            let scheme = &scheme.0;
            let versions = versions(&models, scheme);
            // A refresh, once started, finishes even if the caller stops listening:
            // progress that cannot be delivered is dropped.
            let report = |p: &vitals_app::RefreshProgress, finished: bool| {
                let as_gauge = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
                metrics
                    .refresh_customers_done
                    .set(as_gauge(p.customers_done));
                metrics
                    .refresh_customers_total
                    .set(as_gauge(p.customers_total));
                let _ = tx.blocking_send(Ok(pb::RefreshEvaluationsProgress {
                    customers_done: p.customers_done,
                    customers_total: p.customers_total,
                    evaluations_stored: p.evaluations_stored,
                    follow_ups_opened: p.follow_ups_opened,
                    finished,
                    seconds: started.elapsed().as_secs_f64(),
                    versions: Some(versions),
                }));
            };
            let current = || crate::refresh::current(&hub, &schemes);
            // This thread and one more per further core take chunks at once, so one
            // chunk's snapshots are written while the next is read and evaluated.
            let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
            for _ in 1..cores {
                let (store, hub, schemes, settings) = (
                    store.clone(),
                    hub.clone(),
                    schemes.clone(),
                    settings.clone(),
                );
                std::thread::spawn(move || {
                    let current = || crate::refresh::current(&hub, &schemes);
                    if let Err(e) = vitals_app::work_on_shared_refreshes(
                        &store,
                        Some(&settings.histories),
                        &settings.owner,
                        settings.lease,
                        &current,
                    ) {
                        tracing::warn!(error = %e, "shared refresh: a chunk failed; its lease runs out and it is taken again");
                    }
                });
            }
            let outcome = (|| loop {
                let worked = vitals_app::work_on_one_shared_chunk(
                    &store,
                    Some(&settings.histories),
                    &settings.owner,
                    settings.lease,
                    &current,
                )?;
                let p = store.refresh_run_progress(&run, now_micros())?;
                let progress = vitals_app::RefreshProgress {
                    customers_done: p.customers_done,
                    customers_total: p.customers_total,
                    evaluations_stored: p.evaluations_stored,
                    follow_ups_opened: p.follow_ups_opened,
                    seconds: started.elapsed().as_secs_f64(),
                };
                if p.finished {
                    return Ok::<_, StoreError>(progress);
                }
                report(&progress, false);
                if !worked {
                    // Other servers hold the rest: wait for them (or their leases).
                    std::thread::sleep(Duration::from_millis(100));
                }
            })();
            match outcome {
                Ok(p) => {
                    tracing::info!(
                        customers = p.customers_done,
                        stored = p.evaluations_stored,
                        follow_ups_opened = p.follow_ups_opened,
                        seconds = p.seconds,
                        "evaluations refreshed"
                    );
                    report(&p, true);
                }
                Err(e) => {
                    tracing::error!(error = %e, "refresh failed");
                    let _ = tx.blocking_send(Err(from_store(e)));
                }
            }
            metrics.refresh_running.set(0);
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    #[tracing::instrument(skip_all)]
    async fn list_at_risk(
        &self,
        request: Request<pb::ListAtRiskRequest>,
    ) -> Result<Response<pb::ListAtRiskResponse>, Status> {
        let pii = Caller::of(&request).can(Role::PiiReader);
        let lang = language_of(&request);
        let request = request.into_inner();
        let mut v = Violations::new();
        let order = match pb::AtRiskOrder::try_from(request.order_by) {
            Ok(pb::AtRiskOrder::Unspecified | pb::AtRiskOrder::Probability) => {
                AtRiskOrder::Probability
            }
            Ok(pb::AtRiskOrder::ExpectedLoss) => AtRiskOrder::ExpectedLoss,
            Err(_) => {
                v.push("order_by", format!("unknown order {}", request.order_by));
                AtRiskOrder::Probability
            }
        };
        let page_size = match page::page_size(request.page_size) {
            Ok(n) => n,
            Err(StoreError::Invalid(bad)) => {
                v.0.extend(bad.0);
                0
            }
            Err(e) => return Err(from_store(e)),
        };
        let lifecycle_stage = match request.lifecycle_stage.as_str() {
            "" => None,
            stage @ ("new" | "active" | "at_risk" | "won_back") => Some(stage.to_owned()),
            "dormant" | "churned" => {
                v.push(
                    "lifecycle_stage",
                    "dormant and churned customers are not at risk but gone: ask ListWinBack",
                );
                None
            }
            other => {
                v.push(
                    "lifecycle_stage",
                    format!("{other:?} is not a stage: new, active, at_risk or won_back"),
                );
                None
            }
        };
        check(v)?;
        let query = AtRiskQuery {
            order,
            min_probability: request.min_probability,
            segment_id: request.segment_id,
            tier: (!request.tier.is_empty()).then_some(request.tier),
            lifecycle_stage,
            page_size,
            page_token: (!request.page_token.is_empty()).then_some(request.page_token),
        };
        let (evaluations, next_page_token) = stored_list(&self.store, query, pii, lang).await?;
        Ok(Response::new(pb::ListAtRiskResponse {
            evaluations,
            next_page_token,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn list_win_back(
        &self,
        request: Request<pb::ListWinBackRequest>,
    ) -> Result<Response<pb::ListWinBackResponse>, Status> {
        let pii = Caller::of(&request).can(Role::PiiReader);
        let lang = language_of(&request);
        let request = request.into_inner();
        let page_size = page::page_size(request.page_size).map_err(from_store)?;
        let query = AtRiskQuery {
            order: AtRiskOrder::ValueLost,
            min_probability: None,
            segment_id: request.segment_id,
            tier: (!request.tier.is_empty()).then_some(request.tier),
            lifecycle_stage: None,
            page_size,
            page_token: (!request.page_token.is_empty()).then_some(request.page_token),
        };
        let (evaluations, next_page_token) = stored_list(&self.store, query, pii, lang).await?;
        Ok(Response::new(pb::ListWinBackResponse {
            evaluations,
            next_page_token,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn get_risk_summary(
        &self,
        _request: Request<pb::GetRiskSummaryRequest>,
    ) -> Result<Response<pb::RiskSummary>, Status> {
        let store = self.store.clone();
        let summary = blocking(move || store.reader().risk_summary()).await?;
        Ok(Response::new(pb::RiskSummary {
            probability_bins: summary.probability_bins.to_vec(),
            tiers: summary.tiers.into_iter().collect(),
            value_at_risk: summary
                .value_at_risk
                .into_iter()
                .map(|v| pb::ValueAtRisk {
                    currency: v.currency,
                    customers: v.customers,
                    value: v.value,
                    expected_loss: v.expected_loss,
                })
                .collect(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn list_segments(
        &self,
        request: Request<pb::ListSegmentsRequest>,
    ) -> Result<Response<pb::ListSegmentsResponse>, Status> {
        let lang = language_of(&request);
        let models = self.hub.models();
        let Some(segments) = models.segments.clone() else {
            return Err(ApiError::FailedPrecondition(
                "no segments model is active: run `vitals-trainer train --activate`".into(),
            )
            .into());
        };
        let store = self.store.clone();
        let version = segments.manifest.version;
        let summaries = blocking(move || {
            store
                .reader()
                .segment_summaries(i64::try_from(version).unwrap_or(i64::MAX))
        })
        .await?;
        let out = segments
            .profiles()
            .map(|(id, population, p)| {
                let id = i32::try_from(id).unwrap_or(i32::MAX);
                let summary = summaries.iter().find(|s| s.segment_id == id);
                let words = p.words(lang);
                pb::Segment {
                    segment_id: id,
                    name: words.name,
                    description: words.description,
                    traits: words.traits,
                    size: summary.map_or(p.size as u64, |s| s.customers),
                    training_share: p.share,
                    mean_churn_probability: summary.and_then(|s| s.mean_probability),
                    mean_value: summary.and_then(|s| s.mean_value),
                    population: population
                        .map(|p| p.label(lang).to_owned())
                        .unwrap_or_default(),
                }
            })
            .collect();
        Ok(Response::new(pb::ListSegmentsResponse {
            segments: out,
            model_version: version,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn get_scoring_scheme(
        &self,
        request: Request<pb::GetScoringSchemeRequest>,
    ) -> Result<Response<pb::ScoringScheme>, Status> {
        let version = request.into_inner().version;
        if version < 0 {
            return Err(invalid_field(
                "version",
                "must be 0 (in force) or a version",
            ));
        }
        if version == 0 {
            let current = self.schemes.current();
            return Ok(Response::new(scheme_to_proto(
                &current.1,
                &current.0.scheme,
            )));
        }
        let store = self.store.clone();
        let stored = blocking(move || {
            store.get_scoring_scheme(version)?.ok_or_else(|| {
                StoreError::NotFound(format!("scoring scheme version {version} does not exist"))
            })
        })
        .await?;
        let parsed = parse_scheme(&stored).map_err(|e| {
            tracing::error!(error = %e, "stored scoring scheme unreadable");
            Status::from(ApiError::Unreadable(
                "the stored scoring scheme is unreadable".into(),
            ))
        })?;
        Ok(Response::new(scheme_to_proto(&stored, &parsed.scheme)))
    }

    #[tracing::instrument(skip_all)]
    async fn update_scoring_scheme(
        &self,
        request: Request<pb::UpdateScoringSchemeRequest>,
    ) -> Result<Response<pb::ScoringScheme>, Status> {
        let actor = actor_of(&request);
        let Some(wire) = request.into_inner().scheme else {
            return Err(invalid_field("scheme", "is required"));
        };
        let mut v = match scheme_from_proto(&wire) {
            Ok(_) => Violations::new(),
            Err(v) => v,
        };
        if wire.version <= 0 {
            v.push(
                "scheme.version",
                "is required: the version being replaced (GetScoringScheme shows it)",
            );
        }
        check(v)?;
        let scheme = scheme_from_proto(&wire).map_err(ApiError::from)?;
        let body = serde_json::to_string(&scheme).map_err(|e| {
            Status::from(ApiError::Internal(format!("cannot encode a scheme: {e}")))
        })?;
        let store = self.store.clone();
        let expected = wire.version;
        let stored =
            blocking(move || store.insert_scoring_scheme(Some(expected), &body, &actor)).await?;
        let store = self.store.clone();
        let schemes = self.schemes.clone();
        blocking(move || schemes.refresh(&store)).await?;
        tracing::info!(version = stored.version, actor = %stored.actor, "scoring scheme updated");
        let record = format!("scoring scheme v{}", stored.version);
        Ok(with_record(
            Response::new(scheme_to_proto(&stored, &scheme)),
            record,
        ))
    }
}
